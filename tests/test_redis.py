"""
RedisTaskStore beyond the shared contract: many processes, a server that
dies and comes back, faults, key layout, expiry and cleanup cost.

The contract itself (``test_contract.py`` and friends) runs on Redis through
``conftest.BACKENDS``; these tests cover what only a shared server has.
"""

from __future__ import annotations

import importlib
import multiprocessing
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tasks_store import (
    InvalidCursor,
    NotFound,
    StoreConfig,
    StoreError,
    TaskPage,
    TaskSecurityConfig,
    TaskStatus,
)
from tasks_store.store.redis import RedisTaskStore

from . import redis_workers
from .conftest import FakeClock
from .redis_server import RedisServer, free_port

pytestmark = pytest.mark.redis

OWNER = "alice@example.com"
METHOD = "tools/call"


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


# -- many processes -----------------------------------------------------------


@pytest.mark.timeout(180)
def test_processes_and_threads_keep_the_quota_and_lose_nothing(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """4 processes x 8 threads: the quota holds exactly, every write lands, one winner per race."""
    ctx = multiprocessing.get_context("spawn")
    procs = 4
    barrier = ctx.Barrier(procs * redis_workers.THREADS)
    results = ctx.Queue()
    workers = [
        ctx.Process(
            target=redis_workers.quota_worker, args=(p, redis_server.url, barrier, results)
        )
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

    store = RedisTaskStore(redis_client)
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
def test_wait_is_woken_by_another_process(
    redis_server: RedisServer, make: Callable[..., RedisTaskStore]
) -> None:
    """A waiter blocked in wait() wakes when another process completes the task."""
    store = make(clock=time.time)  # the other process uses the wall clock
    task_id = store.create(OWNER, METHOD).task_id
    ctx = multiprocessing.get_context("spawn")
    channel = f"{store.key_prefix}:ev:{task_id}"
    other = ctx.Process(
        target=redis_workers.complete_when_waited,
        args=(redis_server.url, task_id, OWNER, channel),
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
    channel = f"{waiter_store.key_prefix}:ev:{task_id}".encode()

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
    redis_client.delete("tasks_store:count")
    redis_client.rpush("tasks_store:count", "not a counter")
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
    make: Callable[..., RedisTaskStore], redis_client: redis.Redis
) -> None:
    """A script run twice with one token (redis-py's retry after a lost reply) applies once."""
    store = make()

    def twice(script: Any) -> Callable[..., Any]:
        def run(**kwargs: Any) -> Any:
            script(**kwargs)  # applied; its reply "lost"
            return script(**kwargs)

        return run

    store._create = twice(store._create)  # type: ignore[method-assign]
    store._swap = twice(store._swap)  # type: ignore[method-assign]
    record = store.create(OWNER, METHOD)
    moved = store.update_status(record.task_id, OWNER, "input_required")
    assert 1 == len(store)
    assert TaskStatus.INPUT_REQUIRED == moved.status == store.get(record.task_id, OWNER).status
    store._check()


# -- layout -------------------------------------------------------------------


@pytest.mark.parametrize("intruder", ["a:t", "t", "1:a", "a:o:1:a", "", "b"])
def test_owner_is_part_of_every_task_key(
    make: Callable[..., RedisTaskStore], redis_client: redis.Redis, intruder: str
) -> None:
    """Owner ids that look like key parts never reach another owner's task."""
    store = make(security=TaskSecurityConfig(allow_anonymous=True))
    task_id = store.create("a", METHOD).task_id
    assert {f"tasks_store:o:1:a:t:{task_id}".encode()} == set(
        redis_client.keys("tasks_store:o:*:t:*")
    )
    for owner, asked in [(intruder, task_id), ("a", f"t:{task_id}"), (intruder, f"a:t:{task_id}")]:
        with pytest.raises(NotFound):
            store.get(asked, owner)


def test_decoded_responses_client_and_unicode_owners_work(redis_server: RedisServer) -> None:
    """A decode_responses=True client works, with non-ASCII owners and lone surrogates."""
    client = redis_server.client(decode_responses=True)
    try:
        store = RedisTaskStore(client, key_prefix="decoded")
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
    key = f"tasks_store:o:{len(OWNER)}:{OWNER}:t:{timed}"
    pttl = redis_client.pttl(key)
    assert 60_000 + store.retention_ms - 5_000 < pttl <= 60_000 + store.retention_ms
    assert pttl == pytest.approx(redis_client.pttl(f"tasks_store:id:{timed}"), abs=5_000)
    unlimited = make(config=StoreConfig(default_ttl_ms=None, max_ttl_ms=None))
    forever = unlimited.create(OWNER, METHOD).task_id
    assert -1 == redis_client.pttl(f"tasks_store:o:{len(OWNER)}:{OWNER}:t:{forever}")


def test_tasks_dropped_by_the_backstop_leave_list_and_are_cleaned(
    make: Callable[..., RedisTaskStore], redis_client: redis.Redis, clock: FakeClock
) -> None:
    """A task Redis dropped natively is not listed nor found; cleanup removes its index entries."""
    store = make()
    gone, kept = (store.create(OWNER, METHOD, ttl=1_000).task_id for _ in range(2))
    redis_client.delete(f"tasks_store:o:{len(OWNER)}:{OWNER}:t:{gone}")  # what PEXPIREAT does
    assert [kept] == [t.task_id for t in store.list(OWNER).tasks]
    with pytest.raises(NotFound):
        store.get(gone, OWNER)
    clock.advance(2)
    assert 2 == store.cleanup_expired()
    assert 0 == len(store)
    assert {b"tasks_store:seq", b"tasks_store:secret", b"tasks_store:count"} == _keys(
        redis_client
    )


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
    assert 1 == stats["cmdstat_evalsha"]["calls"]
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

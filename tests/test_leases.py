"""
Leases (issue 13, item 3): the lease tables, recovery of lapsed tasks, and a real SIGKILL.

A runner holds a lease on each task it has queued or running and renews it;
a task whose lease lapsed is failed "worker lost" by any process, through
the store's public write; a worker process killed mid-task on Redis is
recovered by another process (its janitor) over real HTTP.
"""

# Asserts read ``expected == actual`` (project convention), which SIM300 calls Yoda.

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tasks_store import JsonRpcError, TaskSecurityConfig, TaskStatus
from tasks_store.mcp import McpServer, TaskContext, TaskRunner, Tool
from tasks_store.store.janitor import Janitor
from tasks_store.store.leases import (
    LEASE_SHARDS,
    WORKER_LOST,
    InMemoryLeases,
    LeaseTable,
    RedisLeases,
    leases_for,
    recover_lapsed,
)

from .conftest import FakeClock
from .http_harness import WAIT, Session, eventually, serve

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).parents[1]



class Table:
    """A lease table of either backend, and a way to let its leases lapse."""

    def __init__(self, table: LeaseTable, clock: FakeClock | None) -> None:
        self.table = table
        self.clock = clock

    def lapse(self, seconds: float) -> None:
        """Let *seconds* pass for the table (fake clock, or a real sleep for Redis)."""
        if self.clock is not None:
            self.clock.advance(seconds)
        else:
            time.sleep(seconds)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def table(request: pytest.FixtureRequest) -> Table:
    if request.param == "memory":
        clock = FakeClock(0.0)
        return Table(InMemoryLeases(clock=clock), clock)
    return Table(RedisLeases(request.getfixturevalue("redis_client")), None)


# -- the table ------------------------------------------------------------------------


def test_acquire_renew_release(table: Table) -> None:
    """A held lease is renewed by its holder only, and released by its holder only."""
    leases = table.table
    leases.acquire("t-1", "alice", "w1", 0.2)
    leases.acquire("t-2", "bob", "w1", 0.2)
    assert 2 == len(leases)
    assert "w1" == leases.holder("t-1")
    assert ["t-3"] == leases.renew("w1", ["t-1", "t-2", "t-3"], 30)
    assert ["t-1"] == leases.renew("w2", ["t-1"], 30)
    table.lapse(0.3)
    assert [] == leases.claim_lapsed("sweeper", 10, 30)  # renewed: not lapsed
    assert not leases.release("w2", "t-1")
    assert leases.release("w1", "t-1")
    assert not leases.release("w1", "t-1")
    assert leases.holder("t-1") is None
    assert 1 == len(leases)


def test_a_lapsed_lease_is_claimed_once(table: Table) -> None:
    """Claiming hands the lease to the claimer: its old holder has lost it, nobody else gets it."""
    leases = table.table
    leases.acquire("t-1", "alice", "w1", 0.05)
    leases.acquire("t-2", "user:bob", "w1", 30)
    table.lapse(0.15)
    claimed = leases.claim_lapsed("sweeper", 10, 30)
    assert [("t-1", "alice", "w1")] == [tuple(c) for c in claimed]
    assert [] == leases.claim_lapsed("other", 10, 30)
    assert "sweeper" == leases.holder("t-1")
    assert ["t-1"] == leases.renew("w1", ["t-1", "t-2"], 30)
    assert leases.release("sweeper", "t-1")


def test_claims_are_bounded_and_soonest_first(table: Table) -> None:
    """claim_lapsed takes at most *limit*; the index serves the lapsed ones, not every lease."""
    leases = table.table
    for i in range(40):
        leases.acquire(f"lapsing-{i}", "alice", "w1", 0.05)
    for i in range(40):
        leases.acquire(f"alive-{i}", "alice", "w2", 60)
    table.lapse(0.15)
    first = leases.claim_lapsed("sweeper", 25, 30)
    rest = leases.claim_lapsed("sweeper", 25, 30)
    assert 25 == len(first)
    assert 15 == len(rest)
    assert {f"lapsing-{i}" for i in range(40)} == {c.task_id for c in first + rest}
    assert [] == leases.claim_lapsed("sweeper", 25, 30)


@pytest.mark.parametrize("bad", [0, -1, float("inf"), True, "1"])
def test_bad_lease_lengths_and_holders(bad: Any) -> None:
    leases = InMemoryLeases()
    with pytest.raises(ValueError, match="seconds"):
        leases.acquire("t", "alice", "w", bad)
    with pytest.raises(ValueError, match="holder"):
        leases.acquire("t", "alice", "a|b", 1)


@pytest.mark.redis
def test_redis_leases_touch_one_slot_per_shard(redis_client: redis.Redis) -> None:
    """Every key carries its shard's hash tag, <p>:{leases:<k>}: one slot per script call."""
    leases = RedisLeases(redis_client, "app")
    for i in range(64):
        leases.acquire(f"task-{i}", "alice", "w1", 30)
    keys = sorted(k.decode() for k in redis_client.scan_iter(match="*leases*"))
    assert 2 * LEASE_SHARDS >= len(keys) > 2
    for key in keys:
        assert key.startswith("app:{leases:")
        tag = key[key.index("{") + 1 : key.index("}")]
        assert 0 <= int(tag.removeprefix("leases:")) < LEASE_SHARDS
        assert key.endswith(("}:held", "}:due"))
    with pytest.raises(ValueError, match="braces"):
        RedisLeases(redis_client, "a{b}")


def test_leases_for_matches_the_store(make_store: Any) -> None:
    """One table per in-memory store object; a RedisLeases for a RedisTaskStore."""
    store = make_store()
    table = leases_for(store)
    if type(store).__name__ == "RedisTaskStore":
        assert isinstance(table, RedisLeases)
    else:
        assert table is leases_for(store)
        assert table is not leases_for(make_store())


# -- recovery -----------------------------------------------------------------------


def held_table(store: Any, clock: FakeClock) -> LeaseTable:
    if type(store).__name__ == "RedisTaskStore":
        return leases_for(store)
    return InMemoryLeases(clock=clock)


def lapse(store: Any, clock: FakeClock) -> None:
    if type(store).__name__ == "RedisTaskStore":
        time.sleep(0.15)
    else:
        clock.advance(0.15)


def test_recovery_fails_lapsed_tasks_as_worker_lost(store: Any) -> None:
    """A lapsed task is failed "worker lost" (with a -32603 result); an ended one is left alone."""
    lease_clock = FakeClock(0.0)
    leases = held_table(store, lease_clock)
    lost = store.create("alice", "tools/call")
    ended = store.create("alice", "tools/call")
    alive = store.create("bob", "tools/call")
    for record, seconds in ((lost, 0.05), (ended, 0.05), (alive, 60)):
        leases.acquire(record.task_id, record.owner_id, "dead-worker", seconds)
    store.complete_with_result(ended.task_id, "alice", "completed", None, {"ok": 1})
    lapse(store, lease_clock)
    assert 1 == recover_lapsed(store, leases)
    record = store.get(lost.task_id, "alice")
    assert (TaskStatus.FAILED, WORKER_LOST) == (record.status, record.task.status_message)
    assert JsonRpcError(-32603, WORKER_LOST) == store.get_result(lost.task_id, "alice")
    assert TaskStatus.COMPLETED == store.get(ended.task_id, "alice").status
    assert TaskStatus.WORKING == store.get(alive.task_id, "bob").status
    assert 1 == len(leases)  # only the live one is left
    assert 0 == recover_lapsed(store, leases)


def test_concurrent_recoveries_fail_each_task_once(store: Any) -> None:
    """Eight recoverers started together: every lapsed task failed once, the counts add up."""
    lease_clock = FakeClock(0.0)
    leases = held_table(store, lease_clock)
    ids = []
    for i in range(60):
        record = store.create(f"owner-{i % 3}", "tools/call")
        leases.acquire(record.task_id, record.owner_id, "dead-worker", 0.05)
        ids.append((record.task_id, record.owner_id))
    lapse(store, lease_clock)
    barrier = threading.Barrier(8)
    counts = [0] * 8

    def recover(n: int) -> None:
        barrier.wait(WAIT)
        counts[n] = recover_lapsed(store, leases, batch=7, claimer=f"r{n}")

    threads = [threading.Thread(target=recover, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert 60 == sum(counts)
    assert 0 == len(leases)
    for task_id, owner in ids:
        assert WORKER_LOST == store.get(task_id, owner).task.status_message
    if hasattr(store, "_check"):
        store._check()


def test_a_runner_holds_and_renews_leases_then_releases_them(store: Any) -> None:
    """While its tool runs the task is leased to the runner, renewed; released once it ends."""
    leases = InMemoryLeases()
    release = threading.Event()

    def work(ctx: TaskContext) -> Any:
        release.wait(WAIT)
        return {"ok": True}

    with TaskRunner(store, max_workers=1, lease_seconds=0.3, leases=leases) as runner:
        first = runner.start("alice", "tools/call", work)["task"]["taskId"]
        second = runner.start("alice", "tools/call", work)["task"]["taskId"]  # queued
        assert runner.holder == leases.holder(first) == leases.holder(second)
        deadline = leases._held[first][0]
        eventually(lambda: leases._held[first][0] > deadline, "a renewal")
        assert 0 == recover_lapsed(store, leases)
        release.set()
        store.wait(second, "alice", timeout=WAIT)
        eventually(lambda: len(leases) == 0, "both leases released")
    assert TaskStatus.COMPLETED == store.get(first, "alice").status


def test_a_runner_without_leases(store: Any) -> None:
    with TaskRunner(store, lease_seconds=None) as runner:
        assert runner.leases is None
        task_id = runner.start("alice", "tools/call", lambda ctx: {"ok": 1})["task"]["taskId"]
        assert TaskStatus.COMPLETED == store.wait(task_id, "alice", timeout=WAIT).status


def test_a_lost_lease_drops_the_late_result(store: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A runner whose lease was taken over (it missed renewals) logs it; the task stays lost."""
    clock = FakeClock(0.0)
    leases = InMemoryLeases(clock=clock)
    started, release = threading.Event(), threading.Event()

    def work(ctx: TaskContext) -> Any:
        started.set()
        release.wait(WAIT)
        return {"ok": 1}

    with TaskRunner(store, max_workers=1, lease_seconds=0.3, leases=leases) as runner:
        task_id = runner.start("alice", "tools/call", work)["task"]["taskId"]
        assert started.wait(WAIT)
        clock.advance(1.0)  # the lease lapses on the table's clock, whatever the runner does
        assert 1 == recover_lapsed(store, leases)
        eventually(
            lambda: any("taken over" in r.getMessage() for r in caplog.records), "the warning"
        )
        release.set()
    record = store.get(task_id, "alice")
    assert (TaskStatus.FAILED, WORKER_LOST) == (record.status, record.task.status_message)


# -- a worker process killed with SIGKILL, on Redis, over HTTP ---------------------------

LEASE_S = 1.0
INTERVAL_S = 0.5


@pytest.fixture
def worker(redis_server: Any, redis_client: redis.Redis) -> Iterator[subprocess.Popen[str]]:
    """The worker process (tests/lease_worker.py), killed at the end if still alive."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.lease_worker", redis_server.url, str(LEASE_S)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(WAIT)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.redis
def test_a_worker_killed_mid_task_is_recovered_by_another_process(
    worker: subprocess.Popen[str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    """
    The issue's orphan: a worker process running a tool is SIGKILLed; another process's
    janitor fails the task "worker lost" (lease + interval after the last renewal at most),
    and the client sees that through the surviving process, in the same session.
    """
    from tasks_store.store.redis import RedisTaskStore

    assert worker.stdout is not None
    port = int(worker.stdout.readline())
    client = Session(port)
    created = client.call("tools/call", {"name": "forever", "task": {"ttl": 600_000}})
    task_id = created.result["task"]["taskId"]
    eventually(
        lambda: client.call("tasks/get", {"taskId": task_id}).result.get("_meta", {}).get(
            "started"
        ),
        "the tool runs",
    )
    leases = RedisLeases(redis_client)
    holder = leases.holder(task_id)
    assert holder is not None
    assert f":{worker.pid}:" in holder
    killed = time.monotonic()
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(WAIT)

    store = RedisTaskStore(redis_client, security=TaskSecurityConfig(max_tasks_per_owner=50))
    tools = [Tool(name="forever", fn=lambda a, c: {"content": []}, task_support="required")]
    with McpServer(store, tools, janitor_interval=INTERVAL_S) as survivor, serve(
        survivor.wsgi_app(), threads=4
    ) as served:
        assert survivor.janitor is not None
        again = Session(served.port)
        again.id = client.id  # the session lives in Redis: the same owner, another process
        eventually(
            lambda: again.call("tasks/get", {"taskId": task_id}).result["status"] == "failed",
            "the task is recovered",
            bound=LEASE_S + INTERVAL_S + WAIT,
        )
        recovered = time.monotonic() - killed
        task = again.call("tasks/get", {"taskId": task_id}).result
        assert WORKER_LOST == task["statusMessage"]
        error = again.call("tasks/result", {"taskId": task_id}).error
        assert {"code": -32603, "message": WORKER_LOST} == error
        assert leases.holder(task_id) is None
        assert survivor.janitor.last is not None
        again.close()
    client.close()
    store._check()
    figures = {"recovered_after_s": round(recovered, 3), "lease_s": LEASE_S,
               "interval_s": INTERVAL_S}  # fmt: skip
    (tmp_path / "kill.json").write_text(json.dumps(figures))
    print(f"\nkill test: {figures}")


# -- the janitor sweeps lapsed leases in memory too ------------------------------------


def test_the_janitor_recovers_in_memory_too() -> None:
    """On the in-memory store, the janitor's sweep fails a lapsed task like on Redis."""
    from tasks_store import InMemoryTaskStore

    store = InMemoryTaskStore()
    clock = FakeClock(0.0)
    leases = InMemoryLeases(clock=clock)
    record = store.create("alice", "tools/call")
    leases.acquire(record.task_id, "alice", "gone", 1.0)
    janitor = Janitor(store, interval=60, leases=leases)
    assert (0, 0) == (janitor.sweep().removed, janitor.last.recovered)  # type: ignore[union-attr]
    clock.advance(2.0)
    done = janitor.sweep()
    assert done is not None
    assert 1 == done.recovered
    assert WORKER_LOST == store.get(record.task_id, "alice").task.status_message


@pytest.mark.redis
def test_leases_rate_limits_and_the_sweep_lock_on_a_redis_cluster(cluster_client: Any) -> None:
    """
    On a real 3-node Redis Cluster: every lease shard, rate bucket and the sweep lock is
    one hash slot per script, so all of them work there (and a janitor recovers a task).
    """
    from tasks_store.store.janitor import RedisSweepLock
    from tasks_store.store.ratelimit import Bucket, RedisRateLimiter
    from tasks_store.store.redis import RedisTaskStore

    store = RedisTaskStore(cluster_client, security=TaskSecurityConfig(max_tasks_per_owner=100))
    leases = leases_for(store)
    assert isinstance(leases, RedisLeases)
    records = [store.create(f"owner-{i % 5}", "tools/call") for i in range(48)]
    for record in records:
        leases.acquire(record.task_id, record.owner_id, "dead-worker", 0.05)
    assert 48 == len(leases)
    time.sleep(0.15)
    janitor = Janitor(store, interval=60, leases=leases)
    sweep = janitor.sweep()
    assert sweep is not None
    assert 48 == sweep.recovered
    assert 0 == len(leases)
    for record in records:
        assert WORKER_LOST == store.get(record.task_id, record.owner_id).task.status_message
    limiter = RedisRateLimiter(cluster_client)
    bucket = Bucket(rate=0.01, burst=3)
    for owner in ("alice", "bob", "carol"):
        assert [0.0] * 3 == [limiter.take(f"ops:{owner}", bucket) for _ in range(3)]
        assert limiter.take(f"ops:{owner}", bucket) > 0
    lock = RedisSweepLock(cluster_client)
    assert lock.acquire("a", 1000)
    assert not lock.acquire("b", 1000)
    lock.release("a")
    assert lock.acquire("b", 1000)
    lock.release("b")

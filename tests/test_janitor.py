"""
The janitor (issue 13, item 8): cleanup_expired and lease recovery on a schedule, one at a time.
"""

# Asserts read ``expected == actual`` (project convention), which SIM300 calls Yoda.

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

import pytest
import redis

from tasks_store import InMemoryTaskStore, StoreError, TaskSecurityConfig
from tasks_store.mcp import McpServer, Tool
from tasks_store.store.janitor import (
    InMemorySweepLock,
    Janitor,
    RedisSweepLock,
    start_janitor,
    sweep_lock_for,
)

from .conftest import FakeClock
from .http_harness import WAIT, Session, eventually, serve

pytestmark = pytest.mark.timeout(60)



def janitor_threads(before: Iterable[threading.Thread] = ()) -> list[threading.Thread]:
    """The live janitor threads that are not in *before* (a test's own, not an earlier leak)."""
    old = set(before)
    return [
        t for t in threading.enumerate()
        if t.name == "tasks_store-janitor" and t.is_alive() and t not in old
    ]  # fmt: skip


def test_the_janitor_removes_expired_tasks_on_its_own(make_store: Any, clock: FakeClock) -> None:
    """start_janitor sweeps every interval: expired tasks go without anyone calling cleanup."""
    store = make_store(security=TaskSecurityConfig(max_tasks_per_owner=500))
    for i in range(30):
        store.create(f"o{i % 3}", "tools/call", ttl=1_000)
    keep = store.create("o0", "tools/call", ttl=None)
    janitor = start_janitor(store, 0.05)
    try:
        assert janitor.running
        clock.advance(2)
        eventually(lambda: len(store) == 1, "the expired tasks are removed")
        assert keep.task_id == store.get(keep.task_id, "o0").task_id
        eventually(lambda: janitor.sweeps >= 2, "it keeps sweeping")
    finally:
        janitor.stop()
    assert not janitor.running
    if hasattr(store, "_check"):
        store._check()


def test_a_failing_sweep_is_logged_and_the_next_one_runs(caplog: pytest.LogCaptureFixture) -> None:
    """A backend fault in one sweep never kills the thread."""

    class Flaky(InMemoryTaskStore):
        failures = 2

        def cleanup_expired(self) -> int:
            if Flaky.failures:
                Flaky.failures -= 1
                raise StoreError("redis is down")
            return super().cleanup_expired()

    with caplog.at_level(logging.ERROR, logger="tasks_store"), Janitor(
        Flaky(), interval=0.02
    ) as janitor:
        eventually(lambda: janitor.sweeps >= 2, "sweeps after the failures")
    assert 2 == sum("the sweep failed" in r.getMessage() for r in caplog.records)


def test_janitor_arguments() -> None:
    store = InMemoryTaskStore()
    for bad in (0, -1, True, "5", float("inf")):
        with pytest.raises(ValueError, match="interval"):
            Janitor(store, interval=bad)
    with pytest.raises(TypeError, match="leases"):
        Janitor(store, leases=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="store"):
        Janitor(object())  # type: ignore[arg-type]
    assert sweep_lock_for(store) is sweep_lock_for(store)
    assert isinstance(sweep_lock_for(store), InMemorySweepLock)


def test_start_twice_and_stop_twice() -> None:
    before = janitor_threads()
    janitor = Janitor(InMemoryTaskStore(), interval=60)
    assert janitor.start() is janitor.start()
    assert 1 == len(janitor_threads(before))
    janitor.stop()
    janitor.stop()
    assert [] == janitor_threads(before)


@pytest.mark.redis
def test_janitors_of_many_processes_sweep_one_at_a_time(redis_server: Any) -> None:
    """
    Six janitors, each with its own client (as in six processes), started together on one
    Redis: the server-side lock lets one sweep at a time, and every expired task is removed
    exactly once.
    """
    from tasks_store.store.redis import RedisTaskStore

    clients = [redis_server.client() for _ in range(6)]
    clients[0].flushall()
    clock = FakeClock()
    security = TaskSecurityConfig(max_tasks_per_owner=10_000)
    stores = [RedisTaskStore(c, security=security, clock=clock) for c in clients]
    for i in range(1500):
        stores[0].create(f"owner-{i % 20}", "tools/call", ttl=1_000)
    clock.advance(2)
    lock = threading.Lock()
    inside = [0, 0]  # sweeping now, most at once

    def counted(cleanup: Any) -> Any:
        def cleanup_expired() -> int:
            with lock:
                inside[0] += 1
                inside[1] = max(inside)
            try:
                time.sleep(0.002)  # widen the window a second sweeper would hit
                return int(cleanup())
            finally:
                with lock:
                    inside[0] -= 1

        return cleanup_expired

    for store in stores:
        store.cleanup_expired = counted(store.cleanup_expired)  # type: ignore[method-assign]
    janitors = [Janitor(store, interval=60) for store in stores]
    barrier = threading.Barrier(6)
    done: list[Any] = []

    def run(janitor: Janitor) -> None:
        barrier.wait(WAIT)
        for _ in range(20):
            sweep = janitor.sweep()
            if sweep is not None:
                with lock:
                    done.append(sweep)

    threads = [threading.Thread(target=run, args=(j,)) for j in janitors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert 1500 == sum(s.removed for s in done)
    assert 1 == inside[1], "two janitors swept at once"
    assert sum(j.skipped for j in janitors) > 0
    assert 0 == len(stores[0])
    stores[0]._check()
    for client in clients:
        client.close()


@pytest.mark.redis
def test_a_dead_janitors_lock_expires(redis_client: redis.Redis) -> None:
    """A janitor that died holding the lock holds the others up only until the lock expires."""
    from tasks_store.store.redis import RedisTaskStore

    store = RedisTaskStore(redis_client)
    held = RedisSweepLock(redis_client)
    assert held.acquire("dead", 200)
    janitor = Janitor(store, interval=0.1)
    assert janitor.sweep() is None
    held.release("someone else")  # not its token: nothing happens
    assert janitor.sweep() is None
    time.sleep(0.3)
    assert janitor.sweep() is not None
    assert redis_client.get(held.key) is None  # released after the sweep


def test_mcp_server_janitor_stops_with_the_app() -> None:
    """McpServer(janitor_interval=...) starts one; closing the WSGI app stops it."""
    before = len(janitor_threads())
    app = McpServer(InMemoryTaskStore(), janitor_interval=0.05).wsgi_app()
    assert app.server.janitor is not None
    assert app.server.janitor.running
    assert app.server.start_janitor() is app.server.janitor
    app.close()
    assert before == len(janitor_threads())
    assert McpServer(InMemoryTaskStore()).janitor is None


def test_expired_tasks_disappear_over_http(make_store: Any) -> None:
    """Through waitress: a task past its TTL is removed by the janitor; tasks/get then says so."""
    store = make_store(clock=time.time)
    echo = Tool(name="echo", fn=lambda a, c: {"content": []}, task_support="optional")
    with McpServer(store, [echo], janitor_interval=0.05) as server, serve(
        server.wsgi_app(), threads=4
    ) as served:
        client = Session(served.port)
        task_id = client.call("tools/call", {"name": "echo", "task": {"ttl": 100}}).result[
            "task"
        ]["taskId"]
        eventually(
            lambda: "error" in client.call("tasks/get", {"taskId": task_id}).body,
            "the janitor removes it",
        )
        error = client.call("tasks/get", {"taskId": task_id}).error
        assert -32602 == error["code"]
        assert "not found" in error["message"]
        client.close()

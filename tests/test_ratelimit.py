"""
Rate limits (issue 13, item 4): per-owner token buckets, off by default, shared on Redis, 429.
"""

# Asserts read ``expected == actual`` (project convention), which SIM300 calls Yoda.

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tasks_store import InMemoryTaskStore, TaskSecurityConfig
from tasks_store.errors import INTERNAL_ERROR
from tasks_store.mcp import McpServer, Tool
from tasks_store.mcp.limits import ServerLimits
from tasks_store.store.ratelimit import (
    Bucket,
    InMemoryRateLimiter,
    RateLimited,
    RateLimits,
    RedisRateLimiter,
    limiter_for,
)

from .conftest import FakeClock
from .http_harness import WAIT, Reply, Session, Stateless, serve
from .mcp_schema import check_response

pytestmark = pytest.mark.timeout(60)


# -- configuration -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"rate": 0, "burst": 1}, ValueError),
        ({"rate": float("inf"), "burst": 1}, ValueError),
        ({"rate": True, "burst": 1}, ValueError),
        ({"rate": 1, "burst": 0}, ValueError),
        ({"rate": 1, "burst": 2.5}, ValueError),
    ],
)
def test_bucket_is_checked(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        Bucket(**kwargs)


def test_rate_limits_are_off_by_default_and_checked() -> None:
    assert not RateLimits().enabled
    assert not ServerLimits().rate_limits.enabled
    assert RateLimits(throttle_polling=True).enabled
    with pytest.raises(TypeError):
        RateLimits(operations=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        RateLimits(throttle_polling=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="poll_burst"):
        RateLimits(poll_burst=0)


def test_rate_limited_error() -> None:
    """-32603, the scope and seconds in data; Retry-After rounds up to whole seconds, >= 1."""
    error = RateLimited("operations", 0.2)
    assert INTERNAL_ERROR == error.code
    assert "1" == error.retry_after_header
    assert "3" == RateLimited("creates", 2.01).retry_after_header
    assert {"limit": "operations", "retryAfter": 0.2} == error.to_jsonrpc_error()["data"]


# -- the limiters -------------------------------------------------------------------


def test_memory_bucket_refills_at_its_rate() -> None:
    """Full at first, one token per call, refilled at rate; a refusal says how long to wait."""
    clock = FakeClock(0.0)
    limiter = InMemoryRateLimiter(clock=clock)
    bucket = Bucket(rate=2, burst=3)
    assert [0.0, 0.0, 0.0] == [limiter.take("a", bucket) for _ in range(3)]
    assert 0.5 == limiter.take("a", bucket)
    assert 0.0 == limiter.take("b", bucket)  # another key, its own bucket
    clock.advance(0.5)
    assert 0.0 == limiter.take("a", bucket)
    assert 0.5 == limiter.take("a", bucket)
    clock.advance(100)
    assert [0.0, 0.0, 0.0] == [limiter.take("a", bucket) for _ in range(3)]  # capped at burst


def test_memory_limiter_is_bounded() -> None:
    """At most max_buckets keys; the least recently used is forgotten (and comes back full)."""
    limiter = InMemoryRateLimiter(max_buckets=3, clock=lambda: 0.0)
    bucket = Bucket(rate=1, burst=1)
    for key in "abcd":
        assert 0.0 == limiter.take(key, bucket)
    assert 3 == len(limiter)
    assert 0.0 == limiter.take("a", bucket)  # forgotten, so full again
    assert 1.0 == limiter.take("d", bucket)


@pytest.mark.redis
def test_redis_bucket_is_shared_by_every_client(redis_client: redis.Redis) -> None:
    """Two limiters (two processes' worth of clients) take from one bucket."""
    kwargs = redis_client.connection_pool.connection_kwargs
    other = redis.Redis(host=kwargs["host"], port=kwargs["port"])
    first, second = RedisRateLimiter(redis_client), RedisRateLimiter(other, "tasks_store")
    bucket = Bucket(rate=0.001, burst=4)
    assert [0.0, 0.0] == [first.take("ops:alice", bucket) for _ in range(2)]
    assert [0.0, 0.0] == [second.take("ops:alice", bucket) for _ in range(2)]
    assert first.take("ops:alice", bucket) > 100
    assert 0.0 == second.take("ops:bob", bucket)
    ttl = redis_client.pttl(b"tasks_store:rl:{ops:alice}")
    assert 0 < ttl  # the key goes once the bucket would be full again
    other.close()


@pytest.mark.redis
def test_a_spent_redis_bucket_is_refused_without_a_round_trip(redis_client: redis.Redis) -> None:
    """Once Redis said a bucket is empty for w seconds, refusals within w ask Redis nothing."""

    def scripts() -> int:
        stats = redis_client.info("commandstats")
        return sum(int(v["calls"]) for k, v in stats.items() if k in ("cmdstat_evalsha",
                                                                        "cmdstat_eval"))

    limiter = RedisRateLimiter(redis_client)
    bucket = Bucket(rate=0.01, burst=2)
    assert [0.0, 0.0] == [limiter.take("ops:mallory", bucket) for _ in range(2)]
    first = limiter.take("ops:mallory", bucket)
    assert 90 < first <= 100
    before = scripts()
    waits = [limiter.take("ops:mallory", bucket) for _ in range(50)]
    assert before == scripts()
    assert all(0 < w <= first for w in waits)
    assert 0.0 == limiter.take("ops:alice", bucket)  # another bucket still asks Redis
    assert before + 1 == scripts()


@pytest.mark.parametrize("backend", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
def test_a_bucket_under_a_barrier_lets_exactly_burst_through(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """16 threads started together, 20 takes each, from a bucket of 50 that barely refills."""
    if backend == "redis":
        client = request.getfixturevalue("redis_client")
        limiters: list[Any] = [RedisRateLimiter(client) for _ in range(2)]
    else:
        shared = InMemoryRateLimiter()
        limiters = [shared, shared]
    bucket = Bucket(rate=1e-6, burst=50)
    barrier = threading.Barrier(16)
    passed = [0] * 16

    def work(n: int) -> None:
        barrier.wait(WAIT)
        for _ in range(20):
            if limiters[n % 2].take("ops:shared", bucket) == 0.0:
                passed[n] += 1

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert 50 == sum(passed)


def test_limiter_for_matches_the_backend(make_store: Any) -> None:
    store = make_store()
    limiter = limiter_for(store)
    expected = "RedisRateLimiter" if type(store).__name__ == "RedisTaskStore" else (
        "InMemoryRateLimiter"
    )
    assert expected == type(limiter).__name__


# -- through waitress ---------------------------------------------------------------


def echo(arguments: dict[str, Any], ctx: Any) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": "ok"}]}


TOOLS = [Tool(name="echo", fn=echo, task_support="optional")]


@pytest.fixture
def limited(make_store: Any) -> Iterator[Any]:
    """Build McpServers with the given RateLimits under waitress; close them all."""
    stack: list[Any] = []

    def make(limits: RateLimits, store: Any = None, **store_kwargs: Any) -> tuple[Any, Any]:
        if store is None:
            store_kwargs.setdefault("security", TaskSecurityConfig(max_tasks_per_owner=100))
            store = make_store(clock=time.time, **store_kwargs)
        server = McpServer(store, TOOLS, limits=ServerLimits(rate_limits=limits))
        serving = serve(server.wsgi_app(), threads=4)
        served = serving.__enter__()
        stack.append((server, serving))
        return store, served

    yield make
    for server, serving in reversed(stack):
        serving.__exit__(None, None, None)
        server.close(cancel=True)


def assert_429(reply: Reply, scope: str, request_id: int) -> None:
    assert 429 == reply.status, reply
    retry = int(reply.headers["retry-after"])
    assert retry >= 1
    check_response(reply.body)
    assert request_id == reply.body["id"]
    assert INTERNAL_ERROR == reply.error["code"]
    assert scope == reply.error["data"]["limit"]
    assert reply.error["data"]["retryAfter"] > 0


def test_operations_over_the_limit_get_429_per_owner(limited: Any) -> None:
    """Five operations, then 429 with Retry-After; another owner has its own bucket."""
    _, served = limited(RateLimits(operations=Bucket(rate=0.01, burst=5)))
    alice, bob = Session(served.port), Session(served.port)
    task_id = alice.call("tools/call", {"name": "echo", "task": {}}).result["task"]["taskId"]
    for _ in range(4):
        assert 200 == alice.call("tasks/get", {"taskId": task_id}).status
    assert_429(alice.call("tasks/get", {"taskId": task_id}), "operations", alice.next_id)
    assert_429(alice.call("tasks/list"), "operations", alice.next_id)
    assert 200 == alice.call("ping").status  # not a task operation
    assert 200 == alice.call("tools/call", {"name": "echo"}).status  # inline: no task
    assert 200 == bob.call("tasks/list").status
    for session in (alice, bob):
        session.close()


def test_creations_have_their_own_bucket_on_both_generations(limited: Any) -> None:
    """Two task creations, then 429 'creates'; inline calls are not creations."""
    _, served = limited(RateLimits(creates=Bucket(rate=0.01, burst=2)))
    session = Session(served.port)
    for _ in range(2):
        assert 200 == session.call("tools/call", {"name": "echo", "task": {}}).status
    assert_429(session.call("tools/call", {"name": "echo", "task": {}}), "creates", session.next_id)
    assert 200 == session.call("tools/call", {"name": "echo"}).status
    stateless = Stateless(served.port)  # the anonymous owner "local" of 2026-07-28
    session.close()
    reply = stateless.call("tools/call", {"name": "echo", "arguments": {}})
    assert 200 == reply.status  # anonymous tasks are off: it ran inline, no creation
    stateless.close()


def test_creations_on_2026_are_charged(limited: Any, make_store: Any) -> None:
    """A 2026-07-28 tools/call declaring the tasks extension is a creation, and is charged."""
    store = make_store(
        clock=time.time, security=TaskSecurityConfig(allow_anonymous=True, max_tasks_per_owner=50)
    )
    _, served = limited(RateLimits(creates=Bucket(rate=0.01, burst=1)), store)
    client = Stateless(served.port)
    first = client.call("tools/call", {"name": "echo", "arguments": {}})
    assert "task" == first.result["resultType"]
    assert_429(client.call("tools/call", {"name": "echo", "arguments": {}}), "creates",
               client.next_id)  # fmt: skip
    client.close()


def test_polling_faster_than_poll_interval_is_throttled(limited: Any) -> None:
    """With throttle_polling, a task polled again within pollInterval, past the burst: 429."""
    _, served = limited(RateLimits(throttle_polling=True, poll_burst=2), poll_interval_ms=60_000)
    session = Session(served.port)
    first = session.call("tools/call", {"name": "echo", "task": {}}).result["task"]
    second = session.call("tools/call", {"name": "echo", "task": {}}).result["task"]
    assert 60_000 == first["pollInterval"]
    for _ in range(2):
        assert 200 == session.call("tasks/get", {"taskId": first["taskId"]}).status
    reply = session.call("tasks/get", {"taskId": first["taskId"]})
    assert_429(reply, "polls", session.next_id)
    assert int(reply.headers["retry-after"]) <= 60
    assert 200 == session.call("tasks/get", {"taskId": second["taskId"]}).status
    assert 200 == session.call("tasks/result", {"taskId": first["taskId"]}).status
    session.close()


@pytest.mark.redis
def test_two_workers_on_one_redis_share_the_bucket(
    limited: Any, redis_client: redis.Redis
) -> None:
    """Two servers (two workers' worth) on one Redis: one owner's bucket is spent through both."""
    from tasks_store.store.redis import RedisTaskStore

    limits = RateLimits(operations=Bucket(rate=0.01, burst=4))
    security = TaskSecurityConfig(max_tasks_per_owner=50)
    store, one = limited(limits, RedisTaskStore(redis_client, security=security))
    _, two = limited(limits, RedisTaskStore(redis_client, security=security))
    via_one = Session(one.port)
    via_two = Session(two.port)
    via_two.id = via_one.id  # sessions live in Redis: one session, so one owner, on both
    for session in (via_one, via_two, via_one, via_two):
        assert 200 == session.call("tasks/list").status
    assert_429(via_two.call("tasks/list"), "operations", via_two.next_id)
    assert_429(via_one.call("tasks/list"), "operations", via_one.next_id)
    via_one.close()
    via_two.close()
    store._check()  # the buckets' keys live beside the store's, outside its shards


def test_no_limit_charges_nothing() -> None:
    """The default server keeps no bucket at all."""
    server = McpServer(InMemoryTaskStore(), TOOLS)
    assert not server.limits.rate_limits.enabled
    assert server._rate_guard._limiter is None
    server.close()

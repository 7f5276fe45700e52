"""
tasks_store.store.sessions: issued ids, lookups, closing, both lifetimes, both backends.

Time is a fake clock for every decision the code makes itself; on Redis the
idle expiry is Redis's own (PEXPIRE), so those tests read the key's TTL
instead of waiting.
"""

# Asserts read ``expected == actual`` (project convention), which SIM300 calls Yoda.

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tasks_store import InMemoryTaskStore
from tasks_store.errors import StoreError
from tasks_store.store.redis import RedisTaskStore
from tasks_store.store.sessions import (
    InMemorySessions,
    RedisSessions,
    SessionStore,
    check_session_store,
    new_session_id,
    session_hash,
    sessions_for,
)

from .conftest import FakeClock
from .redis_server import free_port

pytestmark = pytest.mark.timeout(30)

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")


def _memory(request: pytest.FixtureRequest) -> Callable[..., SessionStore]:
    return InMemorySessions


def _redis(request: pytest.FixtureRequest) -> Callable[..., SessionStore]:
    client = request.getfixturevalue("redis_client")

    def make(**kwargs: Any) -> SessionStore:
        return RedisSessions(client, "test", **kwargs)

    return make


@pytest.fixture(
    params=[
        pytest.param(_memory, id="memory"),
        pytest.param(_redis, id="redis", marks=pytest.mark.redis),
    ]
)
def make_sessions(request: pytest.FixtureRequest, clock: FakeClock) -> Callable[..., Any]:
    factory = request.param(request)

    def make(**kwargs: Any) -> Any:
        kwargs.setdefault("clock", clock)
        return factory(**kwargs)

    return make


def test_new_ids_are_random_visible_ascii() -> None:
    """256 random bits, URL-safe base64: 43 visible ASCII characters, never repeated."""
    ids = {new_session_id() for _ in range(1000)}
    assert 1000 == len(ids)
    assert all(ID_PATTERN.fullmatch(i) for i in ids)


def test_open_lookup_close(make_sessions: Callable[..., Any]) -> None:
    """open issues an id that looks up to its version until close; close says if it was open."""
    sessions = make_sessions()
    session = sessions.open("2025-11-25")
    other = sessions.open("2025-06-18")
    assert ID_PATTERN.fullmatch(session)
    assert "2025-11-25" == sessions.protocol_version(session)
    assert "2025-06-18" == sessions.protocol_version(other)
    assert sessions.is_open(session)
    assert sessions.close(session)
    assert not sessions.is_open(session)
    assert sessions.protocol_version(session) is None
    assert not sessions.close(session)
    assert sessions.is_open(other)


@pytest.mark.parametrize("session_id", ["never-issued", "", "x" * 10_000, 5, None])
def test_unknown_ids_are_not_open(make_sessions: Callable[..., Any], session_id: Any) -> None:
    """Ids never issued (or not even strings) are simply not found."""
    sessions = make_sessions()
    sessions.open("2025-11-25")
    assert sessions.protocol_version(session_id) is None
    assert not sessions.close(session_id)


def test_idle_timeout_ends_an_unused_session(clock: FakeClock) -> None:
    """
    In memory: a session unused for idle_timeout ends; each lookup restarts the clock.
    (Redis expires idle keys itself: test_redis_idle_timeout_is_the_keys_ttl.)
    """
    sessions = InMemorySessions(idle_timeout=10, max_lifetime=None, clock=clock)
    session = sessions.open("2025-11-25")
    for _ in range(5):
        clock.advance(9)
        assert sessions.is_open(session)
    clock.advance(10)
    assert not sessions.is_open(session)


def test_max_lifetime_ends_even_a_busy_session(
    make_sessions: Callable[..., Any], clock: FakeClock
) -> None:
    """A session ends max_lifetime after it opened, however often it is used."""
    sessions = make_sessions(idle_timeout=10, max_lifetime=30)
    session = sessions.open("2025-11-25")
    for _ in range(3):
        clock.advance(9)
        assert sessions.is_open(session)
    clock.advance(3)  # 30 s after opening
    assert not sessions.is_open(session)
    assert not sessions.close(session)


def test_no_limits_keeps_sessions_until_closed(
    make_sessions: Callable[..., Any], clock: FakeClock
) -> None:
    """Both limits None: only close ends a session."""
    sessions = make_sessions(idle_timeout=None, max_lifetime=None)
    session = sessions.open("2025-11-25")
    clock.advance(10**7)
    assert sessions.is_open(session)
    assert sessions.close(session)


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), True, "10"])
def test_bad_limits_are_refused(make_sessions: Callable[..., Any], value: Any) -> None:
    """A limit must be a finite number > 0, or None."""
    for name in ("idle_timeout", "max_lifetime"):
        with pytest.raises(ValueError, match=name):
            make_sessions(**{name: value})


@pytest.mark.parametrize("version", ["", "a|b", 5, None])
def test_bad_protocol_version_is_refused(make_sessions: Callable[..., Any], version: Any) -> None:
    """open needs a non-empty version string (without the separator the Redis value uses)."""
    with pytest.raises(ValueError, match="protocol_version"):
        make_sessions().open(version)


def test_in_memory_sweeps_expired_sessions(clock: FakeClock) -> None:
    """Expired sessions do not pile up: opening new ones sweeps them."""
    sessions = InMemorySessions(idle_timeout=1, max_lifetime=None, clock=clock)
    for _ in range(200):
        sessions.open("2025-11-25")
        clock.advance(2)
    assert len(sessions) <= 64


def test_in_memory_keeps_only_hashes() -> None:
    """The in-memory table is keyed by the SHA-256 of the id, never the id."""
    sessions = InMemorySessions()
    session = sessions.open("2025-11-25")
    held = repr(sessions._sessions)
    assert session not in held
    assert session_hash(session) in held


@pytest.mark.redis
def test_redis_keeps_only_the_hash(redis_client: redis.Redis, clock: FakeClock) -> None:
    """Redis holds <prefix>:session:<sha256 hex> -> "<opened ms>|<version>": no id anywhere."""
    sessions = RedisSessions(redis_client, "pfx", clock=clock)
    session = sessions.open("2025-11-25")
    keys = [k.decode() for k in redis_client.keys("*")]
    assert [f"pfx:session:{hashlib.sha256(session.encode()).hexdigest()}"] == keys
    value = redis_client.get(keys[0])
    assert f"{int(clock.now * 1000)}|2025-11-25".encode() == value
    assert session.encode() not in value


@pytest.mark.redis
def test_redis_idle_timeout_is_the_keys_ttl(redis_client: redis.Redis, clock: FakeClock) -> None:
    """The key expires after idle_timeout; a lookup sets the TTL back to it."""
    sessions = RedisSessions(redis_client, "pfx", idle_timeout=100, max_lifetime=None, clock=clock)
    session = sessions.open("2025-11-25")
    key = f"pfx:session:{session_hash(session)}"
    assert 0 < redis_client.pttl(key) <= 100_000
    redis_client.pexpire(key, 5_000)
    assert sessions.is_open(session)
    assert redis_client.pttl(key) > 5_000
    redis_client.delete(key)  # what Redis does when the TTL runs out
    assert not sessions.is_open(session)


@pytest.mark.redis
def test_redis_ttl_never_outlives_max_lifetime(
    redis_client: redis.Redis, clock: FakeClock
) -> None:
    """Near the end of its lifetime, a lookup shortens the key's TTL to what is left."""
    sessions = RedisSessions(redis_client, "pfx", idle_timeout=100, max_lifetime=120, clock=clock)
    session = sessions.open("2025-11-25")
    key = f"pfx:session:{session_hash(session)}"
    clock.advance(110)
    assert sessions.is_open(session)
    assert 0 < redis_client.pttl(key) <= 10_000


@pytest.mark.redis
def test_redis_sessions_are_shared_by_every_client(redis_server: Any) -> None:
    """A session opened through one client (process) is open through another."""
    one, two = redis_server.client(), redis_server.client()
    try:
        session = RedisSessions(one, "shared").open("2025-11-25")
        assert "2025-11-25" == RedisSessions(two, "shared").protocol_version(session)
        assert not RedisSessions(two, "other-prefix").is_open(session)
        assert RedisSessions(two, "shared").close(session)
        assert not RedisSessions(one, "shared").is_open(session)
    finally:
        one.close()
        two.close()


def test_redis_failure_is_store_error() -> None:
    """A server that cannot be reached raises StoreError with the cause chained."""
    client = redis.Redis(
        host="127.0.0.1", port=free_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )  # no retries: the first refusal is the fault
    sessions = RedisSessions(client)
    for call in (
        lambda: sessions.open("2025-11-25"),
        lambda: sessions.protocol_version("x" * 43),
        lambda: sessions.close("x" * 43),
    ):
        with pytest.raises(StoreError) as caught:
            call()
        assert isinstance(caught.value.__cause__, redis.RedisError)
    client.close()


@pytest.mark.redis
def test_sessions_for_matches_the_store(redis_client: redis.Redis) -> None:
    """In-memory store -> InMemorySessions; RedisTaskStore -> RedisSessions on its prefix."""
    assert isinstance(sessions_for(InMemoryTaskStore()), InMemorySessions)
    found = sessions_for(RedisTaskStore(redis_client, key_prefix="mine"), idle_timeout=5)
    assert isinstance(found, RedisSessions)
    assert ("mine", 5.0) == (found.key_prefix, found.idle_timeout)
    with pytest.raises(TypeError, match="pass sessions="):
        sessions_for(object())


def test_check_session_store() -> None:
    """Anything with the four methods is a SessionStore; anything else is a TypeError."""
    sessions = InMemorySessions()
    assert sessions is check_session_store(sessions)
    with pytest.raises(TypeError, match="SessionStore"):
        check_session_store({"open": 1})


def test_concurrent_opens_and_closes(make_sessions: Callable[..., Any]) -> None:
    """Threads opening, looking up and closing at once never see another's session."""
    sessions = make_sessions()
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(50):
                session = sessions.open("2025-11-25")
                assert sessions.is_open(session)
                assert sessions.close(session)
                assert not sessions.is_open(session)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert [] == failures

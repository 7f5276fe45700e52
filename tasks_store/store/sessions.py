"""
Server-issued MCP sessions (2025-11-25 ``Mcp-Session-Id``), kept in the store's backend.

A session id is a bearer credential: 32 random bytes from :mod:`secrets`,
URL-safe base64 (43 characters, visible ASCII only).  A backend never keeps
the id itself, only its SHA-256 (so a dump of the backend holds nothing a
client could send), with the protocol version ``initialize`` negotiated.

Lifetime, both configurable, whichever comes first ends the session:

* ``idle_timeout`` (seconds, default 3600): a session not used for that long
  ends.  Every successful lookup (:meth:`SessionStore.protocol_version`)
  restarts the clock, so an active client keeps its session.
* ``max_lifetime`` (seconds, default 86400): a session ends that long after
  it was opened, however busy.  It bounds how long a leaked id is useful.

Either may be None (no such limit); then only the other, or ``close``, ends
a session.

:class:`InMemorySessions` serves one process (pair it with
``InMemoryTaskStore``); :class:`RedisSessions` serves every process on one
Redis (pair it with ``RedisTaskStore``: same client, same key prefix).
:func:`sessions_for` picks the one matching a store.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from ..errors import StoreError
from ._base import redis_backend

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_LIFETIME",
    "InMemorySessions",
    "RedisSessions",
    "SessionStore",
    "check_session_store",
    "new_session_id",
    "session_hash",
    "sessions_for",
]

DEFAULT_IDLE_TIMEOUT = 3600.0
DEFAULT_MAX_LIFETIME = 86400.0

#: Longest session id a lookup considers; the ids issued are 43 characters.
MAX_SESSION_ID_LENGTH = 256


def new_session_id() -> str:
    """Return a fresh session id: 256 random bits, URL-safe base64 (visible ASCII)."""
    return secrets.token_urlsafe(32)


def session_hash(session_id: str) -> str:
    """Return the SHA-256 hex digest of *session_id*: what a backend keeps."""
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


@runtime_checkable
class SessionStore(Protocol):
    """
    Where sessions live.  Every method is thread-safe.

    ``open`` issues an id; ``protocol_version`` looks one up (and keeps it
    alive); ``close`` ends it.  An id that was never issued, was closed or
    has expired is simply not found.
    """

    def open(self, protocol_version: str) -> str:
        """
        Start a session that negotiated *protocol_version*; return its new id.

        Raises:
            StoreError: the backend failed.
        """
        ...

    def protocol_version(self, session_id: str) -> str | None:
        """
        Return the session's protocol version, or None when it is not open.

        A hit restarts the idle timer.

        Raises:
            StoreError: the backend failed.
        """
        ...

    def is_open(self, session_id: str) -> bool:
        """Return whether *session_id* is an open session (restarts its idle timer)."""
        ...

    def close(self, session_id: str) -> bool:
        """
        End the session; return whether it was open.

        Raises:
            StoreError: the backend failed.
        """
        ...


def check_session_store(sessions: object) -> SessionStore:
    """
    Return *sessions* if it is a :class:`SessionStore`.

    Raises:
        TypeError: it lacks one of the methods.
    """
    if not isinstance(sessions, SessionStore):
        msg = (
            "sessions must be a SessionStore (open, protocol_version, is_open, close), "
            f"got {type(sessions).__name__}"
        )
        raise TypeError(msg)
    return sessions


def _check_seconds(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        msg = f"{name} must be a number > 0 or None, got {value!r}"
        raise ValueError(msg)
    if value != value or value == float("inf"):
        msg = f"{name} must be finite, got {value!r}"
        raise ValueError(msg)
    return float(value)


def _check_version(protocol_version: object) -> str:
    if not isinstance(protocol_version, str) or not protocol_version or "|" in protocol_version:
        msg = f"protocol_version must be a non-empty str without '|', got {protocol_version!r}"
        raise ValueError(msg)
    return protocol_version


def _usable(session_id: object) -> bool:
    return isinstance(session_id, str) and 0 < len(session_id) <= MAX_SESSION_ID_LENGTH


class _Lifetime:
    """The two limits, checked once."""

    def __init__(self, idle_timeout: float | None, max_lifetime: float | None) -> None:
        self.idle = _check_seconds("idle_timeout", idle_timeout)
        self.max = _check_seconds("max_lifetime", max_lifetime)


class InMemorySessions:
    """
    Sessions in this process's memory (one worker process only).

    Args:
        idle_timeout: seconds without use after which a session ends; None
            for no idle limit.
        max_lifetime: seconds after opening at which a session ends; None
            for no absolute limit.
        clock: epoch seconds (tests move it).

    Raises:
        ValueError: a limit that is not a finite number > 0 (or None).

    Expired sessions are dropped when looked up, and swept now and then when
    new ones open, so memory stays bounded by the sessions alive.
    """

    def __init__(
        self,
        *,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        max_lifetime: float | None = DEFAULT_MAX_LIFETIME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._limits = _Lifetime(idle_timeout, max_lifetime)
        if not callable(clock):
            msg = f"clock must be callable, got {type(clock).__name__}"
            raise TypeError(msg)
        self._clock = clock
        self._lock = threading.Lock()
        # hash -> [protocol_version, opened_at, last_used_at]
        self._sessions: dict[str, list[Any]] = {}
        self._next_sweep = 64

    @property
    def idle_timeout(self) -> float | None:
        """Seconds of idleness that end a session (None: no limit)."""
        return self._limits.idle

    @property
    def max_lifetime(self) -> float | None:
        """Seconds after opening that end a session (None: no limit)."""
        return self._limits.max

    def __len__(self) -> int:
        """Return how many sessions are held (expired ones not yet swept included)."""
        return len(self._sessions)

    def _expired(self, entry: list[Any], now: float) -> bool:
        limits = self._limits
        if limits.max is not None and now >= entry[1] + limits.max:
            return True
        return limits.idle is not None and now >= entry[2] + limits.idle

    def open(self, protocol_version: str) -> str:
        """Start a session; see :meth:`SessionStore.open`."""
        version = _check_version(protocol_version)
        session_id = new_session_id()
        now = self._clock()
        with self._lock:
            self._sessions[session_hash(session_id)] = [version, now, now]
            if len(self._sessions) >= self._next_sweep:
                for key in [k for k, e in self._sessions.items() if self._expired(e, now)]:
                    del self._sessions[key]
                self._next_sweep = max(64, 2 * len(self._sessions))
        return session_id

    def protocol_version(self, session_id: str) -> str | None:
        """Look a session up; see :meth:`SessionStore.protocol_version`."""
        if not _usable(session_id):
            return None
        key = session_hash(session_id)
        now = self._clock()
        with self._lock:
            entry = self._sessions.get(key)
            if entry is None:
                return None
            if self._expired(entry, now):
                del self._sessions[key]
                return None
            entry[2] = now
            return str(entry[0])

    def is_open(self, session_id: str) -> bool:
        """See :meth:`SessionStore.is_open`."""
        return self.protocol_version(session_id) is not None

    def close(self, session_id: str) -> bool:
        """End a session; see :meth:`SessionStore.close`."""
        if not _usable(session_id):
            return False
        now = self._clock()
        with self._lock:
            entry = self._sessions.pop(session_hash(session_id), None)
        return entry is not None and not self._expired(entry, now)


# KEYS[1] the session key.  ARGV: now ms, idle ms (0 = none), max ms (0 = none).
# The value is "<opened ms>|<protocol version>".  Returns the version, or
# false when absent or past its absolute lifetime (then deletes it).
_TOUCH = """
local v = redis.call('GET', KEYS[1])
if not v then return false end
local sep = string.find(v, '|', 1, true)
if not sep then return false end
local opened = tonumber(string.sub(v, 1, sep - 1))
local now = tonumber(ARGV[1])
local idle = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local ttl = idle
if max > 0 then
  local left = opened + max - now
  if left <= 0 then
    redis.call('DEL', KEYS[1])
    return false
  end
  if ttl == 0 or left < ttl then ttl = left end
end
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return string.sub(v, sep + 1)
"""


class RedisSessions:
    """
    Sessions on a Redis server, shared by every process using it.

    Args:
        client: a ``redis.Redis`` client (the store's own, normally).
        key_prefix: the first part of every key; keys are
            ``<prefix>:session:<sha256 hex of the id>``.
        idle_timeout, max_lifetime: as :class:`InMemorySessions`; Redis
            expires the keys itself (``PEXPIRE``), nothing to sweep.
        clock: epoch seconds; the processes' clocks should agree to within
            a small part of *max_lifetime*.

    Raises:
        ValueError: a bad limit or an empty *key_prefix*.

    Each call is one round trip; a lookup is one small script (read and
    extend the expiry atomically).  Connection or server errors raise
    :class:`~tasks_store.errors.StoreError` with the cause chained.
    """

    def __init__(
        self,
        client: Any,
        key_prefix: str = "tasks_store",
        *,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        max_lifetime: float | None = DEFAULT_MAX_LIFETIME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(key_prefix, str) or not key_prefix:
            msg = f"key_prefix must be a non-empty str, got {key_prefix!r}"
            raise ValueError(msg)
        self._limits = _Lifetime(idle_timeout, max_lifetime)
        if not callable(clock):
            msg = f"clock must be callable, got {type(clock).__name__}"
            raise TypeError(msg)
        self._clock = clock
        self._client = client
        self._prefix = key_prefix
        self._touch = client.register_script(_TOUCH)

    @property
    def idle_timeout(self) -> float | None:
        """Seconds of idleness that end a session (None: no limit)."""
        return self._limits.idle

    @property
    def max_lifetime(self) -> float | None:
        """Seconds after opening that end a session (None: no limit)."""
        return self._limits.max

    @property
    def key_prefix(self) -> str:
        """The first part of every key."""
        return self._prefix

    def _key(self, session_id: str) -> str:
        return f"{self._prefix}:session:{session_hash(session_id)}"

    def _ttl_ms(self) -> int | None:
        limits = [x for x in (self._limits.idle, self._limits.max) if x is not None]
        return max(1, int(min(limits) * 1000)) if limits else None

    def open(self, protocol_version: str) -> str:
        """Start a session; see :meth:`SessionStore.open`."""
        version = _check_version(protocol_version)
        session_id = new_session_id()
        value = f"{int(self._clock() * 1000)}|{version}"
        try:
            self._client.set(self._key(session_id), value, px=self._ttl_ms())
        except Exception as exc:
            msg = f"could not open a session: {type(exc).__name__}"
            raise StoreError(msg) from exc
        return session_id

    def protocol_version(self, session_id: str) -> str | None:
        """Look a session up; see :meth:`SessionStore.protocol_version`."""
        if not _usable(session_id):
            return None
        idle = 0 if self._limits.idle is None else max(1, int(self._limits.idle * 1000))
        most = 0 if self._limits.max is None else max(1, int(self._limits.max * 1000))
        try:
            found = self._touch(
                keys=[self._key(session_id)], args=[int(self._clock() * 1000), idle, most]
            )
        except Exception as exc:
            msg = f"could not look a session up: {type(exc).__name__}"
            raise StoreError(msg) from exc
        if found is None:
            return None
        return found.decode("utf-8") if isinstance(found, bytes) else str(found)

    def is_open(self, session_id: str) -> bool:
        """See :meth:`SessionStore.is_open`."""
        return self.protocol_version(session_id) is not None

    def close(self, session_id: str) -> bool:
        """End a session; see :meth:`SessionStore.close`."""
        if not _usable(session_id):
            return False
        try:
            return bool(self._client.delete(self._key(session_id)))
        except Exception as exc:
            msg = f"could not close a session: {type(exc).__name__}"
            raise StoreError(msg) from exc


def sessions_for(
    store: object,
    *,
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
    max_lifetime: float | None = DEFAULT_MAX_LIFETIME,
) -> SessionStore:
    """
    Return the session store that matches a task store's backend.

    ``RedisTaskStore`` -> :class:`RedisSessions` on its client and key
    prefix (valid on every worker); ``InMemoryTaskStore`` ->
    :class:`InMemorySessions` (one process, like the store).

    Raises:
        TypeError: another kind of store; pass ``sessions=`` explicitly.
    """
    from .memory import InMemoryTaskStore

    if isinstance(store, InMemoryTaskStore):
        return InMemorySessions(idle_timeout=idle_timeout, max_lifetime=max_lifetime)
    redis = redis_backend(store)
    if redis is not None:
        client, prefix = redis
        return RedisSessions(
            client, prefix, idle_timeout=idle_timeout, max_lifetime=max_lifetime
        )
    msg = (
        f"no session store is known for {type(store).__name__}: "
        "pass sessions=InMemorySessions() or RedisSessions(client) explicitly"
    )
    raise TypeError(msg)

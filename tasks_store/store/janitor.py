"""
The janitor: an optional background thread that runs ``cleanup_expired`` and lease recovery.

``start_janitor(store, interval)`` (or ``McpServer(..., janitor_interval=s)``,
which stops it in ``close()``) starts a daemon thread that, every *interval*
seconds, runs one :meth:`Janitor.sweep`:

1. ``store.cleanup_expired()``: expired tasks are removed (their waiters
   woken), so nobody has to write their own timer;
2. :func:`~tasks_store.store.leases.recover_lapsed`: tasks whose worker's
   lease lapsed are failed ``"worker lost"``.

A sweep holds the store's **sweep lock** while it runs, so however many
processes run a janitor, one sweeps at a time:

- on Redis, ``SET <p>:janitor:lock <token> NX PX <ms>`` (one key, one
  slot), released by a compare-and-delete script (``lua/janitor.lua``): a
  process that finds the lock taken skips that round.  The lock expires by
  itself after ``min(max(interval, 1), 30)`` seconds, so a janitor that dies
  mid-sweep holds up the others that long at most.  Both steps are safe to
  run twice anyway (``cleanup.lua`` and lease claims are atomic), so the lock
  saves work; it does not guard correctness.
- in memory, a non-blocking lock per store object.

A sweep that fails (the backend is down) is logged and tried again at the
next interval; the thread never dies of it.  :meth:`Janitor.stop` ends the
thread (it finishes a sweep under way first).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from importlib import resources
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

import attrs

from ..errors import StoreError
from ._base import PerStore, TaskStore, redis_backend, redis_key_prefix, require_store
from .leases import LeaseTable, leases_for, new_holder_id, recover_lapsed

__all__ = [
    "InMemorySweepLock",
    "Janitor",
    "RedisSweepLock",
    "Sweep",
    "SweepLock",
    "start_janitor",
    "sweep_lock_for",
]

logger = logging.getLogger("tasks_store")


@attrs.frozen
class Sweep:
    """What one sweep did: tasks ``removed`` by ``cleanup_expired``, tasks ``recovered`` as lost."""

    removed: int
    recovered: int
    started: float  # time.time() when the sweep began
    seconds: float  # how long it took


@runtime_checkable
class SweepLock(Protocol):
    """A lock every janitor of one store takes before sweeping; never blocks."""

    def acquire(self, token: str, ttl_ms: int) -> bool:
        """Take the lock for *ttl_ms* (it then expires by itself); False if it is taken."""

    def release(self, token: str) -> None:
        """Give the lock back if *token* still holds it."""


class InMemorySweepLock:
    """The sweep lock of one process: a ``threading.Lock`` taken without blocking."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token: str | None = None

    def acquire(self, token: str, ttl_ms: int) -> bool:
        if not self._lock.acquire(blocking=False):
            return False
        self._token = token
        return True

    def release(self, token: str) -> None:
        if self._token == token:
            self._token = None
            self._lock.release()


class RedisSweepLock:
    """
    The sweep lock on Redis, shared by every process: ``SET NX PX``, compare-and-delete.

    Args:
        client: a ``redis.Redis`` or ``RedisCluster``.
        key_prefix: the store's ``key_prefix``.
    """

    def __init__(self, client: Any, key_prefix: str = "tasks_store") -> None:
        self.key = b"%s:janitor:lock" % redis_key_prefix(key_prefix)
        self._client = client
        text = resources.files("tasks_store.store").joinpath("lua").joinpath("janitor.lua")
        self._release = client.register_script(text.read_text("utf-8"))

    def acquire(self, token: str, ttl_ms: int) -> bool:
        import redis

        try:
            return bool(self._client.set(self.key, token, nx=True, px=ttl_ms))
        except redis.RedisError as exc:
            msg = f"Redis failed taking the sweep lock: {type(exc).__name__}: {exc}"
            raise StoreError(msg) from exc

    def release(self, token: str) -> None:
        import redis

        try:
            self._release(keys=[self.key], args=[token])
        except redis.RedisError as exc:  # it expires by itself
            logger.warning("could not release the sweep lock: %s", exc)


_memory_locks: PerStore[InMemorySweepLock] = PerStore(InMemorySweepLock)


def sweep_lock_for(store: object) -> SweepLock:
    """Return the sweep lock of a store: on Redis shared by every process, else per store object."""
    redis = redis_backend(store)
    if redis is not None:
        return RedisSweepLock(*redis)
    return _memory_locks(store)


class Janitor:
    """
    Sweep a store every *interval* seconds on a background thread; see the module docstring.

    Args:
        store: the task store.
        interval: seconds between the starts of two sweeps.
        leases: the lease table to recover from; by default ``leases_for(store)``.
        recover: whether sweeps recover lapsed leases (else only ``cleanup_expired``).
        lock: the sweep lock; by default ``sweep_lock_for(store)``.

    Raises:
        ValueError: *interval* is not a number > 0.
        TypeError: *store*, *leases* or *lock* of the wrong type.

    A context manager: leaving the block stops it.
    """

    def __init__(
        self,
        store: TaskStore,
        *,
        interval: float = 30.0,
        leases: LeaseTable | None = None,
        recover: bool = True,
        lock: SweepLock | None = None,
    ) -> None:
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not (
            0 < interval < 10**6
        ):
            msg = f"interval must be a number of seconds > 0, got {interval!r}"
            raise ValueError(msg)
        self._store = require_store(store)
        if leases is not None and not isinstance(leases, LeaseTable):
            msg = f"leases must be a LeaseTable, got {type(leases).__name__}"
            raise TypeError(msg)
        if lock is not None and not isinstance(lock, SweepLock):
            msg = f"lock must be a SweepLock, got {type(lock).__name__}"
            raise TypeError(msg)
        self._interval = float(interval)
        if recover and leases is None:
            leases = leases_for(self._store)
        self._leases = leases if recover else None
        self._lock = lock if lock is not None else sweep_lock_for(self._store)
        self._claimer = f"janitor:{new_holder_id()}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._state = threading.Lock()
        self.sweeps = 0  # sweeps done by this janitor
        self.skipped = 0  # rounds skipped: another janitor held the lock
        self.last: Sweep | None = None

    @property
    def interval(self) -> float:
        """Seconds between two sweeps."""
        return self._interval

    @property
    def running(self) -> bool:
        """Whether the background thread runs."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def sweep(self) -> Sweep | None:
        """
        Run one sweep now, under the sweep lock; None if another janitor holds it.

        Raises:
            StoreError: the backend failed (the thread logs it and goes on).
        """
        token = secrets.token_hex(8)
        ttl_ms = int(min(max(self._interval, 1.0), 30.0) * 1000)
        if not self._lock.acquire(token, ttl_ms):
            self.skipped += 1
            return None
        try:
            started, clock = time.time(), time.monotonic()
            removed = self._store.cleanup_expired()
            recovered = 0
            if self._leases is not None:
                recovered = recover_lapsed(self._store, self._leases, claimer=self._claimer)
            done = Sweep(removed, recovered, started, time.monotonic() - clock)
        finally:
            self._lock.release(token)
        self.sweeps += 1
        self.last = done
        if removed or recovered:
            logger.info("janitor: %d expired tasks removed, %d lost tasks failed",
                        removed, recovered)  # fmt: skip
        return done

    def start(self) -> Janitor:
        """Start the background thread (once; again after :meth:`stop`).  Returns self."""
        with self._state:
            if self.running:
                return self
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._loop, name="tasks_store-janitor", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread, after the sweep under way; wait up to *timeout* seconds (None: all)."""
        with self._state:
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                self.sweep()
            except Exception:
                logger.exception("janitor: the sweep failed; trying again in %gs", self._interval)
            self._stop.wait(max(0.0, self._interval - (time.monotonic() - began)))

    def __enter__(self) -> Janitor:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_janitor(
    store: TaskStore,
    interval: float = 30.0,
    *,
    leases: LeaseTable | None = None,
    recover: bool = True,
) -> Janitor:
    """
    Start a :class:`Janitor` on *store*, sweeping every *interval* seconds; stop it with ``stop()``.

    >>> from tasks_store import InMemoryTaskStore
    >>> janitor = start_janitor(InMemoryTaskStore(), 60.0)
    >>> janitor.running
    True
    >>> janitor.stop()
    >>> janitor.running
    False
    """
    return Janitor(store, interval=interval, leases=leases, recover=recover).start()

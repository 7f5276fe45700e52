"""
Per-owner token buckets over task operations: :class:`RateLimits`, limiters, :class:`RateLimited`.

Both protocol generations' security sections say a server SHOULD rate-limit
task operations, and MAY throttle polling faster than ``pollInterval``.  This
module is the storage side of that: a token bucket per owner (and scope),
kept where the tasks are, so that every worker sharing a Redis server shares
each owner's buckets.  The protocol layer
(:class:`tasks_store.mcp.limits.RateGuard`) decides what a request costs and
answers HTTP 429 with ``Retry-After``.

A bucket holds at most ``burst`` tokens and gains ``rate`` tokens a second;
each operation takes one.  An empty bucket refuses, and says how long until
a token is back.  Three scopes, each off unless configured:

- ``operations``: every task operation of an owner (``tasks/*`` and a
  ``tools/call`` that makes a task);
- ``creates``: task creations of an owner;
- ``polls`` (``throttle_polling=True``): ``tasks/get`` of one task, at one
  token per ``pollInterval`` with a burst of ``poll_burst``, so a client that
  polls at the interval it was given is never refused.

Backends (:func:`limiter_for` picks the one that matches a store):

- :class:`InMemoryRateLimiter`: one process; a lock and a dict, at most
  ``max_buckets`` buckets (the least recently used goes first, which can only
  make a limit more lenient).
- :class:`RedisRateLimiter`: one key per bucket, one script
  (``lua/ratelimit.lua``) per call on the server's clock; a bucket's key
  expires once it would be full again, so idle owners cost no memory; a
  bucket known to be spent is refused locally until it can refill.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from importlib import resources
from typing import Any, Protocol, runtime_checkable

import attrs

from ..errors import INTERNAL_ERROR, StoreError, TaskError
from ._base import redis_backend, redis_key_prefix

__all__ = [
    "Bucket",
    "InMemoryRateLimiter",
    "RateLimited",
    "RateLimiter",
    "RateLimits",
    "RedisRateLimiter",
    "limiter_for",
]


class RateLimited(TaskError):
    """
    An owner went over one of its rate limits; try again after ``retry_after`` seconds.

    Answered as JSON-RPC -32603 with HTTP 429 and a ``Retry-After`` header
    (whole seconds, rounded up); ``data`` holds ``retryAfter`` (seconds, a
    number) and ``limit`` (the scope: ``operations``, ``creates`` or ``polls``).

    >>> RateLimited("creates", 1.5).to_jsonrpc_error()["data"]
    {'limit': 'creates', 'retryAfter': 1.5}
    """

    code = INTERNAL_ERROR
    _fields = ("scope", "retry_after")

    def __init__(self, scope: str, retry_after: float) -> None:
        super().__init__(
            f"Rate limit exceeded ({scope}): retry after {retry_after:.3g} seconds"
        )
        self.scope = scope
        self.retry_after = retry_after

    @property
    def retry_after_header(self) -> str:
        """The ``Retry-After`` value: whole seconds, at least 1."""
        return str(max(1, math.ceil(self.retry_after)))

    def _data(self) -> dict[str, Any]:
        return {"limit": self.scope, "retryAfter": round(self.retry_after, 3)}


def _check_positive(name: str) -> Callable[[Any, Any, Any], None]:
    def check(_: Any, attribute: Any, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            0 < value < float("inf")
        ):
            msg = f"{name} must be a finite number > 0, got {value!r}"
            raise ValueError(msg)

    return check


def _check_count(name: str) -> Callable[[Any, Any, Any], None]:
    def check(_: Any, attribute: Any, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            msg = f"{name} must be an int >= 1, got {value!r}"
            raise ValueError(msg)

    return check


@attrs.frozen
class Bucket:
    """
    A token bucket's shape: ``rate`` tokens a second, at most ``burst`` held.

    Raises:
        ValueError: *rate* is not a finite number > 0, or *burst* not an int >= 1.

    >>> Bucket(rate=5, burst=20)
    Bucket(rate=5, burst=20)
    """

    rate: float = attrs.field(validator=_check_positive("rate"))
    burst: int = attrs.field(validator=_check_count("burst"))


def _optional_bucket(_: object, attribute: Any, value: object) -> None:
    if value is not None and not isinstance(value, Bucket):
        msg = f"{attribute.name} must be a Bucket or None, got {type(value).__name__}"
        raise TypeError(msg)


def _check_bool(_: object, attribute: Any, value: object) -> None:
    if not isinstance(value, bool):
        msg = f"{attribute.name} must be a bool, got {type(value).__name__}"
        raise TypeError(msg)


@attrs.frozen
class RateLimits:
    """
    Which rate limits apply, per owner.  Every one is off by default.

    Args:
        operations: the bucket every task operation of an owner takes from
            (``tasks/get``, ``tasks/result``, ``tasks/list``, ``tasks/cancel``,
            ``tasks/update`` and a task-making ``tools/call``); None: no limit.
        creates: the bucket each task creation takes from; None: no limit.
        throttle_polling: refuse a ``tasks/get`` of one task faster than the
            store's ``pollInterval`` (with a burst of *poll_burst*).
        poll_burst: how many polls of one task may come closer together than
            ``pollInterval`` before the next is refused.

    Raises:
        TypeError, ValueError: a field of the wrong type or range.

    >>> RateLimits().enabled
    False
    >>> RateLimits(creates=Bucket(rate=1, burst=10)).enabled
    True
    """

    operations: Bucket | None = attrs.field(default=None, validator=_optional_bucket)
    creates: Bucket | None = attrs.field(default=None, validator=_optional_bucket)
    throttle_polling: bool = attrs.field(default=False, validator=_check_bool)
    poll_burst: int = attrs.field(default=2, validator=_check_count("poll_burst"))

    @property
    def enabled(self) -> bool:
        """Whether any limit is on."""
        return self.operations is not None or self.creates is not None or self.throttle_polling


@runtime_checkable
class RateLimiter(Protocol):
    """Token buckets by key; thread-safe."""

    def take(self, key: str, bucket: Bucket, cost: int = 1) -> float:
        """
        Take *cost* tokens from the bucket *key* (made full, of shape *bucket*, on first use).

        Returns:
            0.0 when taken; else the seconds until the bucket would hold
            *cost* tokens (nothing is taken).

        Raises:
            StoreError: the backend failed.
        """


class InMemoryRateLimiter:
    """
    Token buckets in this process, under one lock.

    Args:
        max_buckets: the most buckets kept; beyond it the least recently
            used is forgotten (it comes back full: only ever more lenient).
        clock: seconds, monotonic; tests pass a fake one.

    Cost: O(1) a call.

    >>> limiter = InMemoryRateLimiter(clock=lambda: 0.0)
    >>> [limiter.take("alice", Bucket(rate=1, burst=2)) for _ in range(3)]
    [0.0, 0.0, 1.0]
    """

    def __init__(
        self, *, max_buckets: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if isinstance(max_buckets, bool) or not isinstance(max_buckets, int) or max_buckets < 1:
            msg = f"max_buckets must be an int >= 1, got {max_buckets!r}"
            raise ValueError(msg)
        self._max = max_buckets
        self._clock = clock
        self._lock = threading.Lock()
        #: key -> (tokens, reading in seconds), least recently used first
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        """How many buckets are kept."""
        return len(self._buckets)

    def take(self, key: str, bucket: Bucket, cost: int = 1) -> float:
        """Take *cost* tokens; see :meth:`RateLimiter.take`."""
        with self._lock:
            now = self._clock()
            found = self._buckets.pop(key, None)
            if found is None:
                tokens = float(bucket.burst)
            else:
                tokens, at = found
                tokens = min(float(bucket.burst), tokens + max(0.0, now - at) * bucket.rate)
            wait = 0.0
            if tokens >= cost:
                tokens -= cost
            else:
                wait = (cost - tokens) / bucket.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        return wait


class RedisRateLimiter:
    """
    Token buckets on a Redis server, shared by every process using it.

    Args:
        client: a ``redis.Redis`` (or ``RedisCluster``) client.
        key_prefix: the first part of every key (the store's ``key_prefix``).

    One key per bucket, ``<prefix>:rl:{<key>}`` (the bucket is its hash
    tag), so each call (one script, ``lua/ratelimit.lua``, on the server's
    clock) touches one slot.  Cost: one round trip a call, except that a
    bucket Redis said is empty for the next *w* seconds is refused here for
    those *w* seconds without asking again: no token can come back sooner
    (other workers only take more), so the local answer is exact, and a
    client hammering a spent bucket costs no round trip at all.
    """

    #: The most spent buckets remembered locally.
    max_remembered: int = 10_000

    def __init__(self, client: Any, key_prefix: str = "tasks_store") -> None:
        self._prefix = redis_key_prefix(key_prefix)
        self._client = client
        text = resources.files("tasks_store.store").joinpath("lua").joinpath("ratelimit.lua")
        self._script = client.register_script(text.read_text("utf-8"))
        self._lock = threading.Lock()
        #: (key, cost) -> time.monotonic() until which the bucket cannot hold cost tokens
        self._spent: dict[tuple[str, int], float] = {}

    def take(self, key: str, bucket: Bucket, cost: int = 1) -> float:
        """Take *cost* tokens; see :meth:`RateLimiter.take`."""
        import redis

        now = time.monotonic()
        until = self._spent.get((key, cost))
        if until is not None:
            if now < until:
                return until - now
            with self._lock:
                self._spent.pop((key, cost), None)
        raw = key.encode("utf-8", "surrogatepass")
        try:
            taken, wait_ms = self._script(
                keys=[self._prefix + b":rl:{" + raw + b"}"],
                args=[repr(float(bucket.rate)), bucket.burst, cost],
            )
        except redis.RedisError as exc:
            msg = f"Redis failed during rate limiting: {type(exc).__name__}: {exc}"
            raise StoreError(msg) from exc
        if int(taken):
            return 0.0
        wait = max(0.001, int(wait_ms) / 1000)
        with self._lock:
            if len(self._spent) >= self.max_remembered:
                self._spent.clear()  # forgetting only costs round trips
            self._spent[(key, cost)] = now + wait
        return wait


def limiter_for(store: object) -> RateLimiter:
    """
    Return the rate limiter that matches a task store's backend.

    A ``RedisTaskStore`` gets a :class:`RedisRateLimiter` on its client and
    key prefix (shared by every worker); any other store an
    :class:`InMemoryRateLimiter` (this process only).
    """
    redis = redis_backend(store)
    if redis is not None:
        return RedisRateLimiter(*redis)
    return InMemoryRateLimiter()

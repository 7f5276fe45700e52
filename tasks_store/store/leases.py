"""
Leases on running tasks, and the recovery of tasks whose worker is gone.

A worker (:class:`~tasks_store.mcp.runner.TaskRunner`) takes a lease on each
task it has queued or is running, and renews every lease it holds every
``lease_seconds / 3``.  If the worker's process dies (a deploy, an OOM kill,
``SIGKILL``), nobody renews: the lease lapses ``lease_seconds`` after the
last renewal, and :func:`recover_lapsed`, run by any process (the janitor,
:mod:`tasks_store.store.janitor`), fails the task with statusMessage
``"worker lost"`` and the result ``JsonRpcError(-32603, "worker lost")``,
through the store's public ``complete_with_result``: the state machine, the
audit log and the waiters' wake-up stay the write path's.  A task that
ended meanwhile is left as it is.  With the janitor sweeping every
``interval`` seconds, a dead worker's tasks are failed within
``lease_seconds + interval`` of its death.

Tuning: a short lease recovers sooner but needs the worker to renew in time
(a renewal is one round trip for all its leases on Redis, every
``lease_seconds / 3``); a worker that misses its renewals for a whole lease
(a stop-the-world pause, an overloaded host) has its tasks failed as lost,
and its late results are dropped.  The default, 30 s, survives long pauses;
tens of seconds is right for most deployments, a few seconds for tests.

The table is an index by deadline, so a sweep costs O(lapsed), not O(held):

- :class:`InMemoryLeases`: one process (a worker's lease outlives only its
  threads, which is what the in-memory store can lose); a dict and a
  ``SortedList`` of ``(deadline, task id)`` under one lock.  Cost: acquire,
  renew and release O(log n) each; a sweep O(k log n) for k lapsed.
- :class:`RedisLeases`: shared by every process on the server.
  :data:`LEASE_SHARDS` shards, each a hash (task id -> holder and owner) and
  a sorted set (task id -> deadline, on the server's clock) under the
  shard's hash tag, ``<p>:{leases:<k>}:...``, one script (``lua/leases.lua``)
  per call: one slot per call, Redis Cluster included.  Claiming a lapsed
  lease hands it to the claimer (with a fresh deadline) in the same step, so
  two processes never recover one task, and a recovery that dies half way
  is taken up by the next sweep.

:func:`leases_for` returns the table that matches a store (the same one for
every caller of one in-memory store).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any, NamedTuple, Protocol, runtime_checkable

from sortedcontainers import SortedList  # type: ignore[import-untyped]

from ..errors import INTERNAL_ERROR, Expired, InvalidTransition, NotFound, StoreError, TaskError
from ..records import JsonRpcError
from ..status import TaskStatus
from ._base import PerStore, TaskStore, redis_backend, redis_key_prefix

__all__ = [
    "LEASE_SHARDS",
    "WORKER_LOST",
    "InMemoryLeases",
    "Lapsed",
    "LeaseTable",
    "RedisLeases",
    "leases_for",
    "new_holder_id",
    "recover_lapsed",
]

logger = logging.getLogger("tasks_store")

#: The statusMessage (and the result's message) of a task whose lease lapsed.
WORKER_LOST = "worker lost"
#: Shards of the Redis lease table (each one slot of a cluster).
LEASE_SHARDS = 16


class Lapsed(NamedTuple):
    """A lease a sweep took over: the task, its owner, and who held it."""

    task_id: str
    owner_id: str
    holder: str


def new_holder_id() -> str:
    """A holder id unique to this process and call: ``<host>:<pid>:<random>``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


@runtime_checkable
class LeaseTable(Protocol):
    """Leases by task id, with an index by deadline; thread-safe."""

    def acquire(self, task_id: str, owner_id: str, holder: str, seconds: float) -> None:
        """Hold the lease on *task_id* (of *owner_id*) for *seconds*; replaces any other."""

    def renew(self, holder: str, task_ids: Sequence[str], seconds: float) -> list[str]:
        """Extend each lease *holder* holds to now + *seconds*; return the ids it lost."""

    def release(self, holder: str, task_id: str) -> bool:
        """Drop the lease if *holder* holds it; return whether it did."""

    def claim_lapsed(self, claimer: str, limit: int, seconds: float) -> list[Lapsed]:
        """
        Take over at most *limit* lapsed leases, each now held by *claimer* for *seconds*.

        Atomic per lease: two claimers never get the same one.
        """

    def holder(self, task_id: str) -> str | None:
        """Who holds the lease on *task_id*, or None (for tests and operators)."""

    def __len__(self) -> int:
        """How many leases are held."""


def _check_seconds(seconds: float) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not (
        0 < seconds < 10**7
    ):
        msg = f"seconds must be a number > 0, got {seconds!r}"
        raise ValueError(msg)
    return max(1, round(seconds * 1000))


def _check_holder(holder: str) -> str:
    if not isinstance(holder, str) or not holder or "|" in holder:
        msg = f"holder must be a non-empty str without '|', got {holder!r}"
        raise ValueError(msg)
    return holder


class InMemoryLeases:
    """
    The lease table in this process's memory.

    Args:
        clock: seconds, monotonic; tests pass a fake one.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        #: task id -> (deadline ms, owner, holder)
        self._held: dict[str, tuple[int, str, str]] = {}
        #: (deadline ms, task id) of every held lease, soonest first
        self._due = SortedList()

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def __len__(self) -> int:
        return len(self._held)

    def __repr__(self) -> str:
        return f"<InMemoryLeases held={len(self._held)}>"

    def acquire(self, task_id: str, owner_id: str, holder: str, seconds: float) -> None:
        """Hold the lease; see :meth:`LeaseTable.acquire`.  Cost: O(log n)."""
        ms = _check_seconds(seconds)
        _check_holder(holder)
        with self._lock:
            deadline = self._now_ms() + ms
            old = self._held.get(task_id)
            if old is not None:
                self._due.remove((old[0], task_id))
            self._held[task_id] = (deadline, owner_id, holder)
            self._due.add((deadline, task_id))

    def renew(self, holder: str, task_ids: Sequence[str], seconds: float) -> list[str]:
        """Extend *holder*'s leases; see :meth:`LeaseTable.renew`.  Cost: O(k log n)."""
        ms = _check_seconds(seconds)
        lost = []
        with self._lock:
            deadline = self._now_ms() + ms
            for task_id in task_ids:
                found = self._held.get(task_id)
                if found is None or found[2] != holder:
                    lost.append(task_id)
                    continue
                self._due.remove((found[0], task_id))
                self._held[task_id] = (deadline, found[1], holder)
                self._due.add((deadline, task_id))
        return lost

    def release(self, holder: str, task_id: str) -> bool:
        """Drop the lease if *holder* holds it.  Cost: O(log n)."""
        with self._lock:
            found = self._held.get(task_id)
            if found is None or found[2] != holder:
                return False
            del self._held[task_id]
            self._due.remove((found[0], task_id))
            return True

    def claim_lapsed(self, claimer: str, limit: int, seconds: float) -> list[Lapsed]:
        """Take over lapsed leases; see :meth:`LeaseTable.claim_lapsed`.  Cost: O(k log n)."""
        ms = _check_seconds(seconds)
        _check_holder(claimer)
        out: list[Lapsed] = []
        with self._lock:
            now = self._now_ms()
            due = self._due
            while due and len(out) < limit and due[0][0] <= now:
                task_id = due.pop(0)[1]
                _, owner, holder = self._held[task_id]
                self._held[task_id] = (now + ms, owner, claimer)
                due.add((now + ms, task_id))
                out.append(Lapsed(task_id, owner, holder))
        return out

    def holder(self, task_id: str) -> str | None:
        found = self._held.get(task_id)
        return None if found is None else found[2]


class RedisLeases:
    """
    The lease table on a Redis server (or cluster), shared by every process.

    Args:
        client: a ``redis.Redis`` or ``redis.cluster.RedisCluster``.
        key_prefix: the store's ``key_prefix``.

    Raises:
        ValueError: *key_prefix* is empty or holds a brace (the hash tag's).
    """

    def __init__(self, client: Any, key_prefix: str = "tasks_store") -> None:
        prefix = redis_key_prefix(key_prefix)
        self._client = client
        self._keys = [
            (b"%s:{leases:%d}:held" % (prefix, k), b"%s:{leases:%d}:due" % (prefix, k))
            for k in range(LEASE_SHARDS)
        ]
        text = resources.files("tasks_store.store").joinpath("lua").joinpath("leases.lua")
        self._script = client.register_script(text.read_text("utf-8"))

    def __repr__(self) -> str:
        return "<RedisLeases>"

    @staticmethod
    def shard(task_id: str) -> int:
        """The shard of *task_id*: crc32 of its UTF-8, mod :data:`LEASE_SHARDS`."""
        return zlib.crc32(task_id.encode("utf-8", "surrogatepass")) % LEASE_SHARDS

    def _run(self, shard: int, args: Sequence[Any]) -> Any:
        import redis

        try:
            return self._script(keys=self._keys[shard], args=args)
        except redis.RedisError as exc:
            msg = f"Redis failed during {args[0]} of leases: {type(exc).__name__}: {exc}"
            raise StoreError(msg) from exc

    def acquire(self, task_id: str, owner_id: str, holder: str, seconds: float) -> None:
        """Hold the lease; one round trip."""
        ms = _check_seconds(seconds)
        _check_holder(holder)
        self._run(self.shard(task_id), ("acquire", holder, ms, task_id, json.dumps(owner_id)))

    def renew(self, holder: str, task_ids: Sequence[str], seconds: float) -> list[str]:
        """Extend *holder*'s leases; one round trip per shard that holds some."""
        ms = _check_seconds(seconds)
        by_shard: dict[int, list[str]] = {}
        for task_id in task_ids:
            by_shard.setdefault(self.shard(task_id), []).append(task_id)
        lost: list[str] = []
        for shard, ids in by_shard.items():
            reply = self._run(shard, ("renew", holder, ms, *ids))
            lost.extend(_text(item) for item in reply)
        return lost

    def release(self, holder: str, task_id: str) -> bool:
        """Drop the lease if *holder* holds it; one round trip."""
        return bool(int(self._run(self.shard(task_id), ("release", holder, task_id))))

    def claim_lapsed(self, claimer: str, limit: int, seconds: float) -> list[Lapsed]:
        """Take over lapsed leases, shard by shard; one round trip per shard."""
        ms = _check_seconds(seconds)
        _check_holder(claimer)
        out: list[Lapsed] = []
        for shard in range(LEASE_SHARDS):
            if len(out) >= limit:
                break
            reply = self._run(shard, ("claim", claimer, ms, limit - len(out)))
            for i in range(0, len(reply), 2):
                holder, _, owner = _text(reply[i + 1]).partition("|")
                out.append(Lapsed(_text(reply[i]), json.loads(owner), holder))
        return out

    def holder(self, task_id: str) -> str | None:
        held = self._keys[self.shard(task_id)][0]
        value = self._client.hget(held, task_id)
        return None if value is None else _text(value).partition("|")[0]

    def __len__(self) -> int:
        return sum(int(self._client.hlen(held)) for held, _ in self._keys)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "surrogatepass") if isinstance(value, bytes) else value


_memory_tables: PerStore[InMemoryLeases] = PerStore(InMemoryLeases)


def leases_for(store: object) -> LeaseTable:
    """
    Return the lease table that matches a task store's backend.

    A ``RedisTaskStore`` gets a :class:`RedisLeases` on its client and key
    prefix (shared by every process); any other store the one
    :class:`InMemoryLeases` of that store object (shared by every runner and
    janitor of it in this process).
    """
    redis = redis_backend(store)
    if redis is not None:
        return RedisLeases(*redis)
    return _memory_tables(store)


def recover_lapsed(
    store: TaskStore,
    leases: LeaseTable,
    *,
    batch: int = 500,
    claim_seconds: float = 60.0,
    claimer: str | None = None,
) -> int:
    """
    Fail every task whose lease lapsed with statusMessage ``"worker lost"``; return how many.

    Each lapsed lease is claimed (so no other process recovers it too), the
    task is failed through ``store.complete_with_result`` with the result
    ``JsonRpcError(-32603, "worker lost")``, and the lease is dropped.  A
    task that ended, expired or was removed meanwhile is left as it is (its
    lease is dropped).  If the write fails (the backend is down), the
    claimed lease lapses again after *claim_seconds* and a later sweep
    retries.  Cost: O(k) writes for k lapsed leases, in batches of *batch*.
    """
    claimer = claimer or f"recovery:{new_holder_id()}"
    error = JsonRpcError(INTERNAL_ERROR, WORKER_LOST)
    recovered = 0
    while True:
        claimed = leases.claim_lapsed(claimer, batch, claim_seconds)
        for lease in claimed:
            try:
                store.complete_with_result(
                    lease.task_id, lease.owner_id, TaskStatus.FAILED, WORKER_LOST, error
                )
            except (InvalidTransition, NotFound, Expired):
                pass  # it ended, expired or is gone: nothing was lost
            except StoreError:
                logger.warning("task %s: could not fail it as lost; retried later", lease.task_id)
                continue
            except TaskError as exc:
                logger.warning("task %s: could not fail it as lost: %s", lease.task_id, exc)
            else:
                recovered += 1
                logger.warning(
                    "task %s (owner %r): worker %s lost (its lease lapsed); failed",
                    lease.task_id, lease.owner_id, lease.holder,
                )  # fmt: skip
            leases.release(claimer, lease.task_id)
        if len(claimed) < batch:
            return recovered

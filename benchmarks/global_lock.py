"""
:class:`GlobalLockStore`: the straightforward design, as a rival to beat.

One ``threading.Lock`` guards one dict of records.  Every method takes the
lock, reads included, and every record a read hands out is a fresh copy
built under the lock, as a store of mutable records must copy (the copy is
kept so that reads cost what that design costs).  The per-owner quota and
``list`` scan every task in the store, and ``cleanup_expired`` scans them
all.  This is the design of the Rust original and of most ports.

It keeps the same contract as :class:`tasks_store.InMemoryTaskStore` (same
signatures, same checks in the same order, same errors, same logging): its
five writes are :class:`tasks_store.store._base.BaseTaskStore`'s, on the
locked path only (under the one lock: load, build with the rules, store),
and the rest calls :mod:`tasks_store.rules` for every check and for
building records, so the benchmark compares designs, not features.  It
lives here, not in the package: it exists to be measured.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from tasks_store import rules
from tasks_store.config import StoreConfig, TaskSecurityConfig
from tasks_store.errors import NotFound, WaitTimeout
from tasks_store.records import Task, TaskPage, TaskRecord
from tasks_store.store._base import LockedTaskStore, log_created, log_foreign

__all__ = ["GlobalLockStore"]


def _copy(record: TaskRecord) -> TaskRecord:
    """Return a fresh copy of *record*: what a read hands out, never the stored one."""
    task = record.task
    return TaskRecord(
        task=Task(
            task_id=task.task_id,
            status=task.status,
            status_message=task.status_message,
            created_at=task.created_at,
            last_updated_at=task.last_updated_at,
            ttl=task.ttl,
            poll_interval=task.poll_interval,
            meta=task.meta,
        ),
        owner_id=record.owner_id,
        request_method=record.request_method,
        created_ms=record.created_ms,
        seq=record.seq,
        expires_at_ms=record.expires_at_ms,
        variables_json=record.variables_json,
        result_json=record.result_json,
    )


class GlobalLockStore(LockedTaskStore[str]):
    """
    A thread-safe task store behind one lock; the benchmarks' baseline.

    Args:
        config: limits; ``StoreConfig()`` when None.
        security: quota and anonymous access; ``TaskSecurityConfig()`` when None.
        poll_interval_ms: the ``pollInterval`` given to new tasks.
        clock: returns the time in epoch seconds.

    Cost: ``get`` O(1) plus a copy; writes O(1) plus building the new
    record; ``create`` (quota), ``list`` and ``cleanup_expired`` O(n) in
    every task in the store.
    Locks: ``_lock`` guards ``_tasks``, for every call; a write takes it
    twice (to read the caller's task, then to load, build and store).

    >>> store = GlobalLockStore()
    >>> record = store.create("alice", "tools/call")
    >>> store.get(record.task_id, "alice").status.value
    'working'
    """

    def __init__(
        self,
        *,
        config: StoreConfig | None = None,
        security: TaskSecurityConfig | None = None,
        poll_interval_ms: int = 5000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            config=config, security=security, poll_interval_ms=poll_interval_ms, clock=clock
        )
        self._lock = threading.Lock()  # guards _tasks
        self._cond = threading.Condition(self._lock)
        self._tasks: dict[str, TaskRecord] = {}
        self._seq = itertools.count(1)
        self._secret = os.urandom(16)

    def __len__(self) -> int:
        """Return how many tasks are held, expired ones included."""
        with self._lock:
            return len(self._tasks)

    # -- create ---------------------------------------------------------------

    def _new_record(self, owner_id: str, request_method: str, ttl_ms: int | None) -> TaskRecord:
        return rules.new_record(
            rules.new_task_id(),
            owner_id,
            request_method,
            ttl_ms,
            self._now_ms(),
            self._poll_interval_ms,
            next(self._seq),
        )

    def create(self, owner_id: str, request_method: str, ttl: int | None = None) -> TaskRecord:
        """
        Create a working task; see :meth:`tasks_store.TaskStore.create`.

        Cost: O(n): the quota counts the owner's live tasks by scanning all.
        """
        owner_id = rules.check_caller(owner_id, self._security)
        request_method = rules.check_request_method(request_method)
        ttl_ms = rules.resolve_ttl(ttl, self._config)
        record = self._new_record(owner_id, request_method, ttl_ms)
        now_ms = record.created_ms
        with self._lock:
            live = 0
            for held in self._tasks.values():
                if held.owner_id == owner_id and (
                    held.expires_at_ms is None or held.expires_at_ms > now_ms
                ):
                    live += 1
            rules.check_quota(live, self._security)
            self._tasks[record.task.task_id] = record
        log_created(record)
        return record

    def preload(self, owner_id: str, ttl: int | None = None) -> str:
        """
        Insert a task exactly as :meth:`create` would, without the quota scan.

        For filling a store before measuring: creating n tasks through
        :meth:`create` costs O(n^2).  Returns the task id.
        """
        record = self._new_record(owner_id, "tools/call", rules.resolve_ttl(ttl, self._config))
        with self._lock:
            self._tasks[record.task.task_id] = record
        return record.task.task_id

    # -- reads ----------------------------------------------------------------

    def _held(self, task_id: str, owner_id: str) -> TaskRecord:
        """Return the caller's stored record (not a copy).  Caller holds ``_lock``."""
        try:
            record = self._tasks.get(task_id)
        except TypeError:  # unhashable id
            record = None
        if record is None or record.owner_id != owner_id:
            rules.check_task_id(task_id)
            owner = rules.check_caller(owner_id, self._security)
            if record is not None:
                log_foreign(record.task.task_id, owner, record.owner_id)
            raise NotFound(task_id)
        return record

    def get(self, task_id: str, owner_id: str) -> TaskRecord:
        """Return a copy of the task's record; see :meth:`tasks_store.TaskStore.get`."""
        with self._lock:
            return _copy(self._held(task_id, owner_id))

    def get_result(self, task_id: str, owner_id: str) -> Any:
        """Return the result of a terminal task; see :meth:`tasks_store.TaskStore.get_result`."""
        record = self.get(task_id, owner_id)
        return rules.read_result(record, self._now_ms())

    def list(
        self, owner_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> TaskPage:
        """
        Return a page of the owner's tasks, newest first; see :meth:`tasks_store.TaskStore.list`.

        Cost: O(n + m log m): a scan of every task, a sort of the owner's m.
        """
        owner_id = rules.check_caller(owner_id, self._security)
        size = rules.check_limit(limit)
        tag = rules.owner_tag(self._secret, owner_id)
        position = None if cursor is None else rules.decode_cursor(cursor, tag)
        with self._lock:
            owned = [
                ((record.created_ms, record.seq), record)
                for record in self._tasks.values()
                if record.owner_id == owner_id
                and (position is None or (record.created_ms, record.seq) < position)
            ]
            owned.sort(key=lambda pair: pair[0], reverse=True)
            page = [_copy(record) for _, record in owned[:size]]
        next_cursor = None
        if len(owned) > size:
            last = page[-1]
            next_cursor = rules.encode_cursor(last.created_ms, last.seq, tag)
        return TaskPage(tuple(page), next_cursor)

    # -- writes: the storage interface of BaseTaskStore ------------------------
    #
    # A handle on a task is its id; every write loads, builds and stores
    # under the one lock (no optimistic path).

    def _read_for_write(self, task_id: str, owner_id: str) -> str:
        """Check the caller's task under the lock; return its id."""
        with self._lock:
            return self._held(task_id, owner_id).task.task_id

    def _lock_for(self, ref: str) -> threading.Lock:
        return self._lock

    def _load(self, ref: str) -> TaskRecord:
        record = self._tasks.get(ref)
        if record is None:
            raise NotFound(ref)  # removed by cleanup_expired meanwhile
        return record

    def _store(self, ref: str, new: TaskRecord, wake: bool) -> None:
        self._tasks[ref] = new
        if wake:
            self._cond.notify_all()

    # -- expiry ---------------------------------------------------------------

    def cleanup_expired(self) -> int:
        """
        Remove every expired task; return how many were removed.

        Cost: O(n): a scan of every task, under the lock.
        """
        now_ms = self._now_ms()
        with self._lock:
            tasks = self._tasks
            expired = [
                task_id
                for task_id, record in tasks.items()
                if record.expires_at_ms is not None and record.expires_at_ms <= now_ms
            ]
            for task_id in expired:
                del tasks[task_id]
            if expired:
                self._cond.notify_all()
        return len(expired)

    def wait(
        self, task_id: str, owner_id: str, *, timeout: float | None = None
    ) -> TaskRecord:
        """Block until the task is terminal; see :meth:`tasks_store.TaskStore.wait`."""
        record = self.get(task_id, owner_id)
        limit = rules.check_timeout(timeout)
        if rules.wait_done(record, self._now_ms()):
            return record
        deadline = None if limit is None else time.monotonic() + limit
        with self._cond:
            while True:
                current = self._tasks.get(task_id)
                if current is None:
                    raise NotFound(task_id)
                now_ms = self._now_ms()
                if rules.wait_done(current, now_ms):
                    return _copy(current)
                sleep = None
                if deadline is not None:
                    sleep = deadline - time.monotonic()
                    if sleep <= 0:
                        raise WaitTimeout(task_id, limit)  # type: ignore[arg-type]
                if current.expires_at_ms is not None:
                    to_expiry = (current.expires_at_ms - now_ms) / 1000
                    sleep = to_expiry if sleep is None else min(sleep, to_expiry)
                self._cond.wait(sleep)


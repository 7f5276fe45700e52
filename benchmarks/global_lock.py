"""
:class:`GlobalLockStore`: the straightforward design, as a rival to beat.

One ``threading.Lock`` guards one dict of *mutable* records.  Every method
takes the lock; writes change the record in place; every record handed out
is a fresh frozen copy built under the lock.  The per-owner quota and
``list`` scan every task in the store, and ``cleanup_expired`` scans them
all.  This is the design of the Rust original and of most ports.

It keeps the same contract as :class:`tasks_store.InMemoryTaskStore` (same
signatures, same checks in the same order, same errors, same logging) by
calling :mod:`tasks_store.rules` for every check and for building records,
so the benchmark compares designs, not features.  It lives here, not in the
package: it exists to be measured.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from tasks_store import rules
from tasks_store.config import StoreConfig, TaskSecurityConfig
from tasks_store.errors import Expired, NotFound, WaitTimeout
from tasks_store.records import Task, TaskPage, TaskRecord
from tasks_store.status import TaskStatus, coerce_status
from tasks_store.store._base import StoreSettings, log_created, log_foreign, logger
from tasks_store.wire import dump_result, format_timestamp

__all__ = ["GlobalLockStore"]


class _Entry:
    """One task, changed in place under the store's lock."""

    __slots__ = (
        "created_at",
        "created_ms",
        "expires_at_ms",
        "last_updated_at",
        "owner_id",
        "poll_interval",
        "request_method",
        "result_json",
        "seq",
        "status",
        "status_message",
        "task_id",
        "ttl",
        "variables_json",
    )

    def __init__(self, record: TaskRecord) -> None:
        task = record.task
        self.task_id = task.task_id
        self.status = task.status
        self.status_message = task.status_message
        self.created_at = task.created_at
        self.last_updated_at = task.last_updated_at
        self.ttl = task.ttl
        self.poll_interval = task.poll_interval
        self.owner_id = record.owner_id
        self.request_method = record.request_method
        self.created_ms = record.created_ms
        self.seq = record.seq
        self.expires_at_ms = record.expires_at_ms
        self.variables_json = record.variables_json
        self.result_json = record.result_json

    def copy(self) -> TaskRecord:
        """Return a frozen snapshot: what callers get, never the entry itself."""
        task = Task(
            task_id=self.task_id,
            status=self.status,
            status_message=self.status_message,
            created_at=self.created_at,
            last_updated_at=self.last_updated_at,
            ttl=self.ttl,
            poll_interval=self.poll_interval,
        )
        return TaskRecord(
            task=task,
            owner_id=self.owner_id,
            request_method=self.request_method,
            created_ms=self.created_ms,
            seq=self.seq,
            expires_at_ms=self.expires_at_ms,
            variables_json=self.variables_json,
            result_json=self.result_json,
        )

    def ensure_live(self, now_ms: int) -> None:
        """Raise :class:`Expired` as :func:`tasks_store.rules.ensure_live` does."""
        expires = self.expires_at_ms
        if expires is not None and now_ms >= expires:
            raise Expired(self.task_id, datetime.fromtimestamp(expires / 1000, timezone.utc))

    def is_live(self, now_ms: int) -> bool:
        """Whether the task counts against its owner's quota at *now_ms*."""
        return self.expires_at_ms is None or self.expires_at_ms > now_ms


class GlobalLockStore(StoreSettings):
    """
    A thread-safe task store behind one lock; the benchmarks' baseline.

    Args:
        config: limits; ``StoreConfig()`` when None.
        security: quota and anonymous access; ``TaskSecurityConfig()`` when None.
        poll_interval_ms: the ``pollInterval`` given to new tasks.
        clock: returns the time in epoch seconds.

    Cost: ``get`` and writes O(1) plus a copy; ``create`` (quota), ``list``
    and ``cleanup_expired`` O(n) in every task in the store.
    Locks: ``_lock`` guards ``_tasks`` and every entry in it, for every call.

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
        self._lock = threading.Lock()  # guards _tasks and every _Entry in it
        self._cond = threading.Condition(self._lock)
        self._tasks: dict[str, _Entry] = {}
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
            for entry in self._tasks.values():
                if entry.owner_id == owner_id and entry.is_live(now_ms):
                    live += 1
            rules.check_quota(live, self._security)
            self._tasks[record.task.task_id] = _Entry(record)
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
            self._tasks[record.task.task_id] = _Entry(record)
        return record.task.task_id

    # -- reads ----------------------------------------------------------------

    def _entry(self, task_id: str, owner_id: str) -> _Entry:
        """Return the caller's entry.  Caller holds ``_lock``."""
        try:
            entry = self._tasks.get(task_id)
        except TypeError:  # unhashable id
            entry = None
        if entry is None or entry.owner_id != owner_id:
            rules.check_task_id(task_id)
            owner = rules.check_caller(owner_id, self._security)
            if entry is not None:
                log_foreign(entry.task_id, owner, entry.owner_id)
            raise NotFound(task_id)
        return entry

    def get(self, task_id: str, owner_id: str) -> TaskRecord:
        """Return a copy of the task's record; see :meth:`tasks_store.TaskStore.get`."""
        with self._lock:
            return self._entry(task_id, owner_id).copy()

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
                ((entry.created_ms, entry.seq), entry)
                for entry in self._tasks.values()
                if entry.owner_id == owner_id
                and (position is None or (entry.created_ms, entry.seq) < position)
            ]
            owned.sort(key=lambda pair: pair[0], reverse=True)
            page = [entry.copy() for _, entry in owned[:size]]
        next_cursor = None
        if len(owned) > size:
            last = page[-1]
            next_cursor = rules.encode_cursor(last.created_ms, last.seq, tag)
        return TaskPage(tuple(page), next_cursor)

    # -- writes ---------------------------------------------------------------
    #
    # Each write runs whole under the lock, in the contract's order: the ids
    # and the owner (NotFound), then the other arguments, then expiry, then
    # the operation's rules.

    def _move(
        self,
        entry: _Entry,
        status: TaskStatus,
        status_message: str | None,
        result_json: str | None,
        now_ms: int,
    ) -> tuple[TaskRecord, TaskStatus]:
        """Move *entry* to *status* in place; return its copy and the old status.

        Caller holds ``_lock``.
        """
        entry.ensure_live(now_ms)
        old = entry.status
        old.validate_transition(entry.task_id, status)
        entry.status = status
        entry.status_message = status_message
        entry.last_updated_at = format_timestamp(now_ms)
        if result_json is not None:
            entry.result_json = result_json
        if status.is_terminal:
            self._cond.notify_all()
        return entry.copy(), old

    @staticmethod
    def _log_move(record: TaskRecord, old: TaskStatus) -> None:
        """Write, outside the lock, the line ``log_status`` writes (without a copy of the old)."""
        logger.info(
            "task %s (owner %r): %s -> %s",
            record.task.task_id,
            record.owner_id,
            old.value,
            record.task.status.value,
        )

    def update_status(
        self,
        task_id: str,
        owner_id: str,
        new_status: TaskStatus | str,
        status_message: str | None = None,
    ) -> TaskRecord:
        """Move the task to *new_status*; see :meth:`tasks_store.TaskStore.update_status`."""
        now_ms = self._now_ms()
        with self._lock:
            entry = self._entry(task_id, owner_id)
            status = coerce_status(new_status)
            message = rules.check_message(status_message)
            record, old = self._move(entry, status, message, None, now_ms)
        self._log_move(record, old)
        return record

    def set_variables(
        self, task_id: str, owner_id: str, variables: Mapping[str, Any]
    ) -> TaskRecord:
        """
        Merge *variables* into the task's; see :meth:`tasks_store.TaskStore.set_variables`.

        Cost: O(size of the variables), under the lock.
        """
        now_ms = self._now_ms()
        limit = self._config.max_variable_size_bytes
        with self._lock:
            entry = self._entry(task_id, owner_id)
            updates = rules.check_variables(variables)
            entry.ensure_live(now_ms)
            entry.variables_json = rules.merge_variables(entry.variables_json, updates, limit)
            entry.last_updated_at = format_timestamp(now_ms)
            return entry.copy()

    def set_result(self, task_id: str, owner_id: str, result: Any) -> None:
        """Store *result* on a task not ended; see :meth:`tasks_store.TaskStore.set_result`."""
        now_ms = self._now_ms()
        with self._lock:
            entry = self._entry(task_id, owner_id)
            text = dump_result(result)
            rules.with_result(entry.copy(), text, now_ms)  # raises as the rules say
            entry.result_json = text
            entry.last_updated_at = format_timestamp(now_ms)

    def complete_with_result(
        self,
        task_id: str,
        owner_id: str,
        status: TaskStatus | str,
        status_message: str | None,
        result: Any,
    ) -> TaskRecord:
        """End the task with *status* and *result*; see ``TaskStore.complete_with_result``."""
        now_ms = self._now_ms()
        with self._lock:
            entry = self._entry(task_id, owner_id)
            target = rules.check_terminal_status(status)
            message = rules.check_message(status_message)
            text = dump_result(result)
            record, old = self._move(entry, target, message, text, now_ms)
        self._log_move(record, old)
        return record

    def cancel(
        self, task_id: str, owner_id: str, status_message: str | None = None
    ) -> TaskRecord:
        """Cancel the task; see :meth:`tasks_store.TaskStore.cancel`."""
        return self.update_status(task_id, owner_id, TaskStatus.CANCELLED, status_message)

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
                for task_id, entry in tasks.items()
                if entry.expires_at_ms is not None and entry.expires_at_ms <= now_ms
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
                entry = self._tasks.get(task_id)
                if entry is None:
                    raise NotFound(task_id)
                now_ms = self._now_ms()
                if entry.status.is_terminal:
                    return entry.copy()
                entry.ensure_live(now_ms)
                sleep = None
                if deadline is not None:
                    sleep = deadline - time.monotonic()
                    if sleep <= 0:
                        raise WaitTimeout(task_id, limit)  # type: ignore[arg-type]
                if entry.expires_at_ms is not None:
                    to_expiry = (entry.expires_at_ms - now_ms) / 1000
                    sleep = to_expiry if sleep is None else min(sleep, to_expiry)
                self._cond.wait(sleep)


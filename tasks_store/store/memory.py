"""
:class:`InMemoryTaskStore`: striped locks, frozen records, lock-free reads.

Locking
=======

What each lock guards:

- **Stripe locks** ``_locks[i]`` (a fixed tuple of ``threading.RLock``; task
  ``t`` belongs to stripe ``hash(t) % stripes``).  Stripe ``i`` guards every
  write of ``_records[t]`` for its tasks, its expiry queue ``_expiry[i]`` and
  its waiter count ``_waiting[i]``.  ``_conds[i]`` is a Condition on the same lock.
- **Owner locks** ``_Owner.lock`` (one ``threading.Lock`` per owner holding
  tasks).  It guards that owner's ordered keys (for ``list``), its expiry heap
  and live count (for the quota), and its ``closed`` flag.

Order: a stripe lock, then an owner lock.  A thread holds at most one stripe
lock and at most one owner lock, and never takes a stripe lock while it holds
an owner lock.  ``tests/test_locking.py`` wraps the locks and checks this.

Reads: ``get`` and ``get_result`` take no lock.  ``_records`` maps each id to a
frozen :class:`TaskRecord` that a write replaces whole, so a reader sees the
old record or the new one, never a mix.  ``list`` holds its owner's lock only
to bisect and copy a slice of keys; it reads the records unlocked.

Never under a lock: logging, JSON encoding (a result is encoded before the
lock; variables are merged outside it and swapped in only if the record did
not change meanwhile, with a locked retry after three lost races), and
anything a caller passed in, except the injected clock, which ``wait`` reads
while holding its stripe.

Watches (:meth:`InMemoryTaskStore.watch`, behind ``wait_input`` and the
server's streams) are woken after a write is stored, outside every stripe
and owner lock (:class:`~tasks_store.store._base.LocalWatchers`: a lock-free
lookup, and each watch's own leaf lock).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from heapq import heappop, heappush
from typing import Any, ClassVar, Protocol

from sortedcontainers import SortedList  # type: ignore[import-untyped]

from .. import rules
from ..config import StoreConfig, TaskSecurityConfig
from ..errors import NotFound, WaitTimeout
from ..records import TaskPage, TaskRecord
from ._base import (
    LocalWatchers,
    LockedTaskStore,
    TaskWatch,
    block,
    log_created,
    log_foreign,
)

__all__ = ["InMemoryTaskStore"]

# Lock factories; tests replace them to watch the lock order.
_StripeLock: Callable[[], Any] = threading.RLock
_OwnerLock: Callable[[], Any] = threading.Lock

#: Expiry buckets span 2**10 = 1024 ms.
_BUCKET_SHIFT = 10


class _ExpiryQueue:
    """
    One stripe's tasks with a TTL, by expiry time; guarded by the stripe's lock.

    Entries sit in buckets of 1024 ms, and a heap orders the buckets, not the
    entries: a bucket wholly in the past is removed in one go, with no
    comparisons, and only the bucket that holds *now* is sorted through.
    Cost: O(1) amortised to add; O(k + b log b) to pop k entries from b buckets.
    """

    __slots__ = ("buckets", "order")

    def __init__(self) -> None:
        #: bucket number (expires_at_ms >> 10) -> (expires_at_ms, task_id) entries.
        self.buckets: dict[int, list[tuple[int, str]]] = {}
        #: heap of the bucket numbers in ``buckets``.
        self.order: list[int] = []

    def add(self, entry: tuple[int, str]) -> None:
        number = entry[0] >> _BUCKET_SHIFT
        bucket = self.buckets.get(number)
        if bucket is None:
            self.buckets[number] = [entry]
            heappush(self.order, number)
        else:
            bucket.append(entry)

    def pop_due(self, now_ms: int) -> list[str]:
        """Remove and return the ids of every entry expired at *now_ms*."""
        due: list[str] = []
        order, buckets = self.order, self.buckets
        current = now_ms >> _BUCKET_SHIFT
        while order and order[0] <= current:
            number = order[0]
            bucket = buckets[number]
            if number < current:  # the whole bucket lies before now_ms
                due.extend([task_id for _, task_id in bucket])
            else:
                due.extend([task_id for expires, task_id in bucket if expires <= now_ms])
                keep = [entry for entry in bucket if entry[0] > now_ms]
                if keep:
                    buckets[number] = keep
                    break
            heappop(order)
            del buckets[number]
        return due

    def entries(self) -> list[tuple[int, str]]:
        """Every entry, in no order (for ``_check``)."""
        return [entry for bucket in self.buckets.values() for entry in bucket]


#: An owner's key of one task: (created_ms, seq, task_id), the order of ``list``.
_Key = tuple[int, int, str]


class _SortedKeys(Protocol):
    """What ``_Owner.keys`` is used as: a ``sortedcontainers.SortedList`` of keys."""

    def add(self, value: _Key) -> None: ...
    def remove(self, value: _Key) -> None: ...
    def bisect_left(self, value: tuple[int, int]) -> int: ...
    def __getitem__(self, index: slice) -> list[_Key]: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[_Key]: ...


class _Owner:
    """Per-owner bookkeeping; every field is guarded by ``lock``."""

    __slots__ = ("closed", "expiry", "keys", "live", "lock")

    def __init__(self) -> None:
        self.lock = _OwnerLock()
        #: the key of every task held, ascending.  A SortedList: add, remove
        #: and bisect are O(log n), a slice O(log n + its length).
        self.keys: _SortedKeys = SortedList()
        #: heap of (expires_at_ms, task_id) of tasks counted live with a TTL.
        self.expiry: list[tuple[int, str]] = []
        #: tasks counted against the quota: unexpired ones, TTL or not.
        self.live = 0
        #: set once removed from the store's map; creators then look again.
        self.closed = False

    def prune(self, now_ms: int) -> None:
        """Stop counting tasks that have expired at *now_ms*.  Cost: O(k log n)."""
        heap = self.expiry
        while heap and heap[0][0] <= now_ms:
            heappop(heap)
            self.live -= 1


class InMemoryTaskStore(LockedTaskStore[TaskRecord]):
    """
    A thread-safe task store in this process's memory.

    Args:
        config: limits; ``StoreConfig()`` when None.
        security: quota and anonymous access; ``TaskSecurityConfig()`` when None.
        poll_interval_ms: the ``pollInterval`` given to new tasks.
        stripes: how many stripe locks writes are spread over.
        clock: returns the time in epoch seconds; every timestamp and expiry
            decision uses it, so tests can move time without sleeping.

    Raises:
        TypeError: *config*, *security* or *clock* is of the wrong type.
        ValueError: *poll_interval_ms* is not an int >= 0, or *stripes* not
            an int >= 1.

    >>> from tasks_store import InMemoryTaskStore, TaskSecurityConfig
    >>> store = InMemoryTaskStore(security=TaskSecurityConfig(max_tasks_per_owner=5))
    >>> record = store.create("alice", "tools/call", ttl=60_000)
    >>> record.status.value
    'working'
    >>> done = store.complete_with_result(record.task_id, "alice", "completed", None, {"ok": True})
    >>> done.status.value
    'completed'
    >>> store.get_result(record.task_id, "alice")
    {'ok': True}

    The five writes are :class:`BaseTaskStore`'s, through
    :class:`LockedTaskStore`: ``update_status``, ``set_result``,
    ``complete_with_result`` and ``cancel`` build the new record under the
    task's stripe lock; ``set_variables`` merges outside it and swaps the
    record in if it did not change meanwhile (three tries, then once more
    under the lock).  Cost: O(1), plus encoding a result or merging
    variables, outside the lock.  Locks: the task's stripe only.
    """

    #: set_variables merges outside the lock, three tries before the locked path.
    _costly_tries: ClassVar[int] = 3

    def __init__(
        self,
        *,
        config: StoreConfig | None = None,
        security: TaskSecurityConfig | None = None,
        poll_interval_ms: int = 5000,
        stripes: int = 64,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            config=config, security=security, poll_interval_ms=poll_interval_ms, clock=clock
        )
        if type(stripes) is not int or stripes < 1:
            msg = f"stripes must be an int >= 1, got {stripes!r}"
            raise ValueError(msg)
        self._stripes = stripes
        self._records: dict[str, TaskRecord] = {}
        self._locks = tuple(_StripeLock() for _ in range(stripes))
        self._conds = tuple(threading.Condition(lock) for lock in self._locks)
        self._waiting = [0] * stripes
        self._expiry = tuple(_ExpiryQueue() for _ in range(stripes))
        self._owners: dict[str, _Owner] = {}
        self._seq = itertools.count(1)
        self._secret = os.urandom(16)
        self._watchers = LocalWatchers()

    def __len__(self) -> int:
        """Return how many tasks are held, expired ones included.  Cost: O(1)."""
        return len(self._records)

    def __repr__(self) -> str:
        return f"<InMemoryTaskStore tasks={len(self._records)} stripes={self._stripes}>"

    # -- create ---------------------------------------------------------------

    def create(
        self, owner_id: str, request_method: str, ttl: int | None = None
    ) -> TaskRecord:
        """
        Create a working task for *owner_id*; see :meth:`TaskStore.create`.

        Cost: O(log n) in the owner's own tasks; independent of other owners'.
        Locks: the new task's stripe, then the owner's lock.
        """
        owner_id = rules.check_caller(owner_id, self._security)
        request_method = rules.check_request_method(request_method)
        ttl_ms = rules.resolve_ttl(ttl, self._config)
        now_ms = self._now_ms()
        task_id = rules.new_task_id()
        record = rules.new_record(
            task_id,
            owner_id,
            request_method,
            ttl_ms,
            now_ms,
            self._poll_interval_ms,
            next(self._seq),
        )
        expires = record.expires_at_ms
        key = (now_ms, record.seq, task_id)
        i = hash(task_id) % self._stripes
        owners = self._owners
        while True:
            owner = owners.get(owner_id)
            if owner is None:
                owner = owners.setdefault(owner_id, _Owner())
            with self._locks[i], owner.lock:
                if owner.closed:
                    continue  # emptied and dropped meanwhile: look it up again
                owner.prune(now_ms)
                if owner.live >= self._security.max_tasks_per_owner:
                    if not owner.keys:
                        self._close(owner_id, owner)
                    rules.check_quota(owner.live, self._security)
                owner.live += 1
                owner.keys.add(key)
                if expires is not None:
                    entry = (expires, task_id)  # one tuple, shared by both heaps
                    heappush(owner.expiry, entry)
                    self._expiry[i].add(entry)
                self._records[task_id] = record
            break
        log_created(record)
        return record

    def _close(self, owner_id: str, owner: _Owner) -> None:
        """Drop an owner that holds no task.  Caller holds ``owner.lock``."""
        owner.closed = True
        if self._owners.get(owner_id) is owner:
            del self._owners[owner_id]

    # -- reads ----------------------------------------------------------------

    def get(self, task_id: str, owner_id: str) -> TaskRecord:
        """
        Return the task's record; see :meth:`TaskStore.get`.

        Cost: O(1): one dict lookup.  Locks: none.
        """
        try:
            record = self._records.get(task_id)
        except TypeError:  # unhashable id: reported by _not_found
            record = None
        if record is None or record.owner_id != owner_id:
            self._not_found(task_id, owner_id, record)
        return record  # type: ignore[return-value]

    def _not_found(self, task_id: object, owner_id: object, record: TaskRecord | None) -> None:
        rules.check_task_id(task_id)
        owner = rules.check_caller(owner_id, self._security)
        if record is not None:
            log_foreign(record.task.task_id, owner, record.owner_id)
        raise NotFound(task_id)  # type: ignore[arg-type]

    def get_result(self, task_id: str, owner_id: str) -> Any:
        """
        Return the result of a terminal task; see :meth:`TaskStore.get_result`.

        Cost: O(1) plus decoding the result.  Locks: none.
        """
        record = self.get(task_id, owner_id)
        return rules.read_result(record, self._now_ms())

    def list(
        self, owner_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> TaskPage:
        """
        Return a page of the owner's tasks, newest first; see :meth:`TaskStore.list`.

        Cost: O(log n + limit) in the owner's own tasks; independent of other
        owners'.  Locks: the owner's lock, for a bisect and a slice copy.
        """
        owner_id = rules.check_caller(owner_id, self._security)
        size = rules.check_limit(limit)
        tag = rules.owner_tag(self._secret, owner_id)
        position = None if cursor is None else rules.decode_cursor(cursor, tag)
        owner = self._owners.get(owner_id)
        if owner is None:
            return TaskPage((), None)
        with owner.lock:
            keys = owner.keys
            end = len(keys) if position is None else keys.bisect_left(position)
            start = max(0, end - size)
            chunk = keys[start:end]
        records = self._records
        tasks = []
        for key in reversed(chunk):
            record = records.get(key[2])
            if record is not None:  # None: removed since the slice was taken
                tasks.append(record)
        next_cursor = None
        if start > 0 and chunk:
            next_cursor = rules.encode_cursor(chunk[0][0], chunk[0][1], tag)
        return TaskPage(tuple(tasks), next_cursor)

    # -- writes: the storage interface of BaseTaskStore ------------------------
    #
    # A handle on a task is its frozen record: the record is its own version.

    def _read_for_write(self, task_id: str, owner_id: str) -> TaskRecord:
        """Return the caller's record, read without a lock."""
        return self.get(task_id, owner_id)

    def _lock_for(self, ref: TaskRecord) -> Any:
        return self._locks[hash(ref.task.task_id) % self._stripes]

    def _load(self, ref: TaskRecord) -> TaskRecord:
        current = self._records.get(ref.task.task_id)
        if current is None:
            raise NotFound(ref.task.task_id)  # removed by cleanup_expired meanwhile
        return current

    def _store(self, ref: TaskRecord, new: TaskRecord, wake: bool) -> None:
        task_id = ref.task.task_id
        self._records[task_id] = new  # one assignment: readers see old or new
        if wake:
            i = hash(task_id) % self._stripes
            if self._waiting[i]:
                self._conds[i].notify_all()

    def _record_at(self, ref: TaskRecord) -> TaskRecord:
        return ref

    def _compare_and_swap(
        self, ref: TaskRecord, new: TaskRecord, wake: bool
    ) -> TaskRecord | None:
        """Under the task's stripe: store *new* if the record is still *ref*, else return it."""
        with self._lock_for(ref):
            current = self._load(ref)
            if current is not ref:
                return current
            self._store(ref, new, wake)
        return None

    def _changed(self, old: TaskRecord, new: TaskRecord) -> None:
        """Wake the task's watches (after the write, outside the locks)."""
        self._watchers.notify(new.owner_id, new.task.task_id)

    def watch(self, owner_id: str, task_ids: Iterable[str]) -> TaskWatch:
        """
        Watch *owner_id*'s tasks *task_ids*; see :meth:`TaskStore.watch`.

        Every write through this store wakes the watches on its task once
        stored; so does the task's removal by :meth:`cleanup_expired`.
        Cost: O(len(task_ids)) to open and close.  Locks: none held.
        """
        if not isinstance(owner_id, str):
            msg = f"owner_id must be a str, got {type(owner_id).__name__}"
            raise TypeError(msg)
        ids = [rules.check_task_id(task_id) for task_id in task_ids]
        return self._watchers.open(owner_id, ids)

    # -- expiry ---------------------------------------------------------------

    def cleanup_expired(self) -> int:
        """
        Remove every expired task; return how many were removed.

        Cost: O(stripes + k log n) for k tasks removed, n the most tasks one
        of their owners holds: each removal takes its key out of the owner's
        sorted keys in O(log n).  No scan of the store.
        Locks: each stripe in turn, and within it the owners of removed tasks.
        """
        now_ms = self._now_ms()
        records = self._records
        owners = self._owners
        removed = 0
        current = now_ms >> _BUCKET_SHIFT
        gone: list[tuple[str, str]] = []
        for i in range(self._stripes):
            order = self._expiry[i].order
            try:
                if order[0] > current:
                    continue  # unlocked peek: a stale answer only defers to the next call
            except IndexError:
                continue
            with self._locks[i]:
                due = self._expiry[i].pop_due(now_ms)
                if not due:
                    continue
                for task_id in due:
                    record = records.pop(task_id, None)
                    if record is None:
                        continue
                    removed += 1
                    if self._watchers:
                        gone.append((record.owner_id, task_id))
                    # The owner's expiry heap keeps the entry: the owner's next
                    # prune drops it (it is due), so live stays exact.
                    owner = owners[record.owner_id]
                    with owner.lock:
                        owner.keys.remove((record.created_ms, record.seq, task_id))
                        if not owner.keys:
                            self._close(record.owner_id, owner)
                if self._waiting[i]:
                    self._conds[i].notify_all()
        for owner_id, task_id in gone:  # outside the locks, as for writes
            self._watchers.notify(owner_id, task_id)
        return removed

    # -- wait -----------------------------------------------------------------

    def wait(
        self, task_id: str, owner_id: str, *, timeout: float | None = None
    ) -> TaskRecord:
        """
        Block until the task is terminal; see :meth:`TaskStore.wait`.

        A waiter checks the record and sleeps on its stripe's Condition under
        one lock; every terminal write and every removal notifies under that
        lock, so no wake-up is lost.  A task with a TTL is re-checked when it
        expires.

        Locks: the task's stripe, released while sleeping.
        """
        record = self.get(task_id, owner_id)
        limit = rules.check_timeout(timeout)
        if rules.wait_done(record, self._now_ms()):
            return record
        deadline = None if limit is None else time.monotonic() + limit
        i = hash(task_id) % self._stripes
        cond = self._conds[i]
        with cond:
            self._waiting[i] += 1
            try:
                while True:
                    current = self._records.get(task_id)
                    if current is None:
                        raise NotFound(task_id)
                    now_ms = self._now_ms()
                    if rules.wait_done(current, now_ms):
                        return current
                    sleep = None
                    if deadline is not None:
                        sleep = deadline - time.monotonic()
                        if sleep <= 0:
                            raise WaitTimeout(task_id, limit)  # type: ignore[arg-type]
                    if current.expires_at_ms is not None:
                        to_expiry = (current.expires_at_ms - now_ms) / 1000
                        sleep = to_expiry if sleep is None else min(sleep, to_expiry)
                    block(cond.wait, sleep)
            finally:
                self._waiting[i] -= 1

    # -- invariants -----------------------------------------------------------

    def _check(self) -> None:
        """
        Assert every internal invariant.  For tests; call with no writer running.

        Raises:
            AssertionError: naming the broken invariant.
        """
        records = self._records
        by_owner: dict[str, list[TaskRecord]] = {}
        for task_id, record in records.items():
            assert record.task.task_id == task_id, f"{task_id}: keyed under another id"
            by_owner.setdefault(record.owner_id, []).append(record)
        assert set(by_owner) == set(self._owners), "owners map != owners holding tasks"
        for owner_id, owned in by_owner.items():
            owner = self._owners[owner_id]
            assert not owner.closed, f"{owner_id!r}: closed owner still mapped"
            expected = sorted((r.created_ms, r.seq, r.task.task_id) for r in owned)
            assert list(owner.keys) == expected, f"{owner_id!r}: keys out of step with records"
            counted = {task_id for _, task_id in owner.expiry}
            assert len(counted) == len(owner.expiry), f"{owner_id!r}: duplicate expiry"
            owned_ids = {r.task.task_id for r in owned}
            # Entries of tasks cleanup removed stay until the owner's next prune.
            for task_id in counted - owned_ids:
                assert task_id not in records, f"{task_id}: counted under another owner"
            unlimited = sum(r.expires_at_ms is None for r in owned)
            assert owner.live == unlimited + len(counted), f"{owner_id!r}: live count off"
        for i, queue in enumerate(self._expiry):
            entries = queue.entries()
            ids = [task_id for _, task_id in entries]
            assert len(ids) == len(set(ids)), f"stripe {i}: duplicate expiry entry"
            for task_id in ids:
                assert hash(task_id) % self._stripes == i, f"{task_id}: wrong stripe"
            for number, bucket in queue.buckets.items():
                assert bucket, f"stripe {i}: empty bucket {number}"
                for expires, task_id in bucket:
                    assert expires >> _BUCKET_SHIFT == number, f"{task_id}: wrong bucket"
            assert sorted(queue.order) == sorted(queue.buckets), f"stripe {i}: bucket order"
        timed = {t for t, r in records.items() if r.expires_at_ms is not None}
        queued = {task_id for queue in self._expiry for _, task_id in queue.entries()}
        assert timed <= queued, "a task with a TTL is missing from the expiry queues"
        assert not any(self._waiting), "waiter count left above zero"

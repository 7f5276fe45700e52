"""
The contract every task store keeps, the write path they share, and the audit log.

:class:`TaskStore` is a :class:`typing.Protocol`: its docstrings are the
contract, and ``tests/test_contract.py`` runs it against every backend.
:class:`BaseTaskStore` writes the five public writes once; a backend gives it
a read and an atomic commit (see its docstring).

Rules every method follows:

- Checks run in this order: the ids' types, then owner (:class:`NotFound`),
  then the other arguments (:class:`InvalidParams`), then expiry
  (:class:`Expired`, for changes only), then the operation's own rules.  A
  foreign caller always gets :class:`NotFound`, whatever else is wrong.
- An unknown id and another owner's id raise the same :class:`NotFound`.
- A failed call changes nothing.
- Every method that takes a status also takes its string value.
- ``status_message`` arguments replace the previous message; None clears it.

Input requests (a task asking its client for input, then blocking for the
answer) are part of the contract: :meth:`TaskStore.request_input`,
:meth:`~TaskStore.respond_input`, :meth:`~TaskStore.wait_input`,
:meth:`~TaskStore.withdraw_input`; so are progress messages
(:meth:`~TaskStore.set_status_message`) and watching tasks for changes
(:meth:`~TaskStore.watch`, which every blocking wait of the server is built
on).  Every blocking wait goes through :func:`block`, the one place a gate
on blocked threads can wrap.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

from .. import rules
from ..config import StoreConfig, TaskSecurityConfig
from ..errors import InvalidParams, StoreError, WaitTimeout
from ..records import TaskPage, TaskRecord
from ..status import TaskStatus, coerce_status
from ..wire import dump_result
from .offpath import OffPathLog

__all__ = [
    "BaseTaskStore",
    "Build",
    "Change",
    "LocalWatchers",
    "LockedTaskStore",
    "PerStore",
    "StoreSettings",
    "TaskStore",
    "TaskWatch",
    "block",
    "foreign_log",
    "log_created",
    "log_foreign",
    "log_status",
    "logger",
    "redis_backend",
    "redis_key_prefix",
    "require_store",
    "wakes_waiters",
]

logger = logging.getLogger("tasks_store")


#: Foreign-access warnings, written off the request path (issue 13): see offpath.py.
foreign_log = OffPathLog(logger, "foreign-access warnings")


def redis_backend(store: object) -> tuple[Any, str] | None:
    """
    Return the redis-py client and key prefix of a ``RedisTaskStore``, else None.

    The class is recognised by its name and module, so that nothing outside
    the Redis backend imports redis-py. Sessions, leases, rate limits and the
    janitor's lock use it to keep their keys beside the store's.
    """
    kind = type(store)
    if kind.__name__ == "RedisTaskStore" and kind.__module__ == f"{__package__}.redis":
        return store.client, store.key_prefix  # type: ignore[attr-defined]
    return None


def redis_key_prefix(key_prefix: object) -> bytes:
    """
    Check the key prefix of a Redis-backed part and return it as key bytes.

    Raises:
        ValueError: not a non-empty str, or it holds a brace (which would cut
            the keys' hash tag, ``<prefix>:{<tag>}:...``, on Redis Cluster).
    """
    if not isinstance(key_prefix, str) or not key_prefix or "{" in key_prefix or (
        "}" in key_prefix
    ):
        msg = (
            "key_prefix must be a non-empty str without braces (a brace would cut the "
            f"keys' hash tag), got {key_prefix!r}"
        )
        raise ValueError(msg)
    return key_prefix.encode("utf-8", "surrogatepass")


_Made = TypeVar("_Made")


class PerStore(Generic[_Made]):
    """One ``factory()`` per store object, made on first use and dropped with the store."""

    def __init__(self, factory: Callable[[], _Made]) -> None:
        self._factory = factory
        self._made: weakref.WeakKeyDictionary[Any, _Made] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def __call__(self, store: object) -> _Made:
        with self._lock:
            made = self._made.get(store)
            if made is None:
                made = self._made[store] = self._factory()
            return made


def log_foreign(task_id: str, caller: str, owner: str) -> None:
    """
    Log, at WARNING, a caller asking for a task another owner holds.

    The line is queued and written by a background thread (bounded, at most
    100 a second; :class:`~tasks_store.store.offpath.OffPathLog`), so a
    foreign id costs its caller what an unknown id costs, and the time of the
    answer does not tell which ids exist.  ``foreign_log.flush()`` waits for it.
    """
    foreign_log.log("task %s: denied to owner %r; it belongs to owner %r", task_id, caller, owner)


def log_created(record: TaskRecord) -> None:
    """Log, at INFO, a task's creation."""
    logger.info(
        "task %s created by owner %r for %s (ttl=%s ms)",
        record.task.task_id,
        record.owner_id,
        record.request_method,
        record.task.ttl,
    )


def log_status(old: TaskRecord, new: TaskRecord) -> None:
    """Log, at INFO, a status change or completion."""
    logger.info(
        "task %s (owner %r): %s -> %s",
        new.task.task_id,
        new.owner_id,
        old.task.status.value,
        new.task.status.value,
    )


def block(wait: Callable[[float | None], bool], timeout: float | None) -> bool:
    """
    Block the calling thread in ``wait(timeout)``; return what it returns.

    The one place a store or server thread blocks waiting for something to
    happen (a task changing, an answer arriving, a stream's next event):
    :class:`LocalWatch`, :meth:`BaseTaskStore.wait_input` and every streamed
    response go through it, so that a limit on blocked threads can wrap this
    one function.  *timeout* is in seconds, None for no limit.
    """
    return wait(timeout)


class TaskWatch(ABC):
    """
    A watch on some of one owner's tasks: :meth:`wait` returns once any of
    them changed (a write, or its removal) since the watch was opened or
    since the previous :meth:`wait` returned True.

    Open it before reading what it watches (``with store.watch(...) as
    watch:``, then read, then ``watch.wait(...)``): a change after the read
    is then never missed.  One thread uses a watch; close it when done.
    """

    @abstractmethod
    def wait(self, timeout: float | None) -> bool:
        """Block until a watched task changed (True) or *timeout* seconds passed (False)."""

    @abstractmethod
    def close(self) -> None:
        """Stop watching; idempotent."""

    @abstractmethod
    def wake(self) -> None:
        """
        Wake the waiting thread as if a watched task changed (from any thread):
        lets a server merge other events (a tools list change, a shutdown)
        into one wait.
        """

    def __enter__(self) -> TaskWatch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class LocalWatch(TaskWatch):
    """A :class:`TaskWatch` woken by writes in this process (:class:`LocalWatchers`)."""

    __slots__ = ("_changed", "_closed", "_cond", "_keys", "_registry")

    def __init__(self, registry: LocalWatchers, keys: tuple[tuple[str, str], ...]) -> None:
        self._registry = registry
        self._keys = keys
        self._cond = threading.Condition(threading.Lock())
        self._changed = False
        self._closed = False

    def notify(self) -> None:
        """Mark a change and wake the waiting thread (called by writers, from any thread)."""
        with self._cond:
            self._changed = True
            self._cond.notify_all()

    wake = notify

    def wait(self, timeout: float | None) -> bool:
        """Block until a watched task changed (True) or *timeout* seconds passed (False)."""
        with self._cond:
            if not self._changed:
                block(self._cond.wait, timeout)
            changed, self._changed = self._changed, False
        return changed

    def close(self) -> None:
        """Stop watching; idempotent."""
        if not self._closed:
            self._closed = True
            self._registry.remove(self)


class LocalWatchers:
    """
    Who watches which task, in one process: ``(owner, task id)`` to watches.

    Writers call :meth:`notify` after storing a change, outside their locks;
    the lookup takes no lock (each entry is a frozenset, replaced whole), and
    a watch's own lock is a leaf (nothing is taken while holding it).  A
    watch registered before a writer's lookup is woken; one registered after
    it reads the record the writer stored: no wake-up is lost.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards replacing entries of _by_key
        self._by_key: dict[tuple[str, str], frozenset[LocalWatch]] = {}

    def open(self, owner_id: str, task_ids: Iterable[str]) -> LocalWatch:
        """Return a new watch on *owner_id*'s tasks *task_ids*, registered now."""
        keys = tuple(dict.fromkeys((owner_id, task_id) for task_id in task_ids))
        watch = LocalWatch(self, keys)
        with self._lock:
            for key in keys:
                self._by_key[key] = self._by_key.get(key, frozenset()) | {watch}
        return watch

    def remove(self, watch: LocalWatch) -> None:
        """Unregister *watch* (its keys)."""
        with self._lock:
            for key in watch._keys:
                left = self._by_key.get(key, frozenset()) - {watch}
                if left:
                    self._by_key[key] = left
                else:
                    self._by_key.pop(key, None)

    def notify(self, owner_id: str, task_id: str) -> None:
        """Wake every watch on *owner_id*'s task *task_id*.  Cost: O(1) with no watcher."""
        watches = self._by_key.get((owner_id, task_id))
        if watches:
            for watch in watches:
                watch.notify()

    def __len__(self) -> int:
        """How many (owner, task) pairs are watched."""
        return len(self._by_key)


def log_input(record: TaskRecord, what: str, keys: Iterable[str]) -> None:
    """Log, at INFO, an input request event (asked, answered, withdrawn) naming its keys."""
    shown = ", ".join(repr(k) if len(k) <= 40 else repr(k[:37] + "...") for k in keys)
    logger.info(
        "task %s (owner %r): input %s: %s", record.task.task_id, record.owner_id, what, shown
    )


class StoreSettings:
    """
    The settings every backend takes, checked once, and their properties.

    Args:
        config: limits; ``StoreConfig()`` when None.
        security: quota and anonymous access; ``TaskSecurityConfig()`` when None.
        poll_interval_ms: the ``pollInterval`` given to new tasks.
        clock: returns the time in epoch seconds; every timestamp and expiry
            decision uses it.

    Raises:
        TypeError: *config*, *security* or *clock* is of the wrong type.
        ValueError: *poll_interval_ms* is not an int >= 0.
    """

    def __init__(
        self,
        *,
        config: StoreConfig | None = None,
        security: TaskSecurityConfig | None = None,
        poll_interval_ms: int = 5000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        config = StoreConfig() if config is None else config
        security = TaskSecurityConfig() if security is None else security
        if not isinstance(config, StoreConfig):
            msg = f"config must be a StoreConfig, got {type(config).__name__}"
            raise TypeError(msg)
        if not isinstance(security, TaskSecurityConfig):
            msg = f"security must be a TaskSecurityConfig, got {type(security).__name__}"
            raise TypeError(msg)
        if type(poll_interval_ms) is not int or poll_interval_ms < 0:
            msg = f"poll_interval_ms must be an int >= 0, got {poll_interval_ms!r}"
            raise ValueError(msg)
        if not callable(clock):
            msg = f"clock must be callable, got {type(clock).__name__}"
            raise TypeError(msg)
        self._config = config
        self._security = security
        self._poll_interval_ms = poll_interval_ms
        self._clock = clock

    @property
    def config(self) -> StoreConfig:
        """The limits this store enforces."""
        return self._config

    @property
    def security(self) -> TaskSecurityConfig:
        """Quota and anonymous-access settings."""
        return self._security

    @property
    def poll_interval_ms(self) -> int:
        """The ``pollInterval`` given to new tasks."""
        return self._poll_interval_ms

    def _now_ms(self) -> int:
        """One reading of the clock, in epoch milliseconds."""
        return int(self._clock() * 1000)


#: A write's rules: the record to store in place of the current one (or raise).
Build = Callable[[TaskRecord], TaskRecord]


class Change:
    """
    One write, as its rules (:attr:`build`) and as data.

    :attr:`build` is the whole rule: ``build(current)`` returns the record to
    store in place of *current*, or raises the write's error.  The other
    attributes say the same change as plain values, for a backend that
    applies it in one step on its own side (:meth:`BaseTaskStore._apply`, a
    Redis script) instead of storing what ``build`` returned:

    - ``status``: the status the task moves to (None: unchanged; the move
      must be in the transition table of :mod:`tasks_store.status`);
    - ``sets_message``/``message``: whether ``statusMessage`` is replaced,
      and by what (None clears it);
    - ``result_json``: the result stored (None: unchanged; a task that has
      ended refuses it);
    - ``now_ms``: the write's one clock reading, its ``lastUpdatedAt`` and
      the instant expiry is judged at;
    - ``costly``: the rule is costly to run (the variables merge); such a
      change has no data form and is always stored from ``build``.

    Every change also refuses an expired task.
    """

    __slots__ = ("build", "costly", "message", "now_ms", "result_json", "sets_message", "status")

    def __init__(
        self,
        build: Build,
        now_ms: int,
        *,
        status: TaskStatus | None = None,
        sets_message: bool = False,
        message: str | None = None,
        result_json: str | None = None,
        costly: bool = False,
    ) -> None:
        self.build = build
        self.now_ms = now_ms
        self.status = status
        self.sets_message = sets_message
        self.message = message
        self.result_json = result_json
        self.costly = costly


#: What a backend needs to write one task back: its id, the version it read.
RefT = TypeVar("RefT")


class _NothingToStore(Exception):
    """Raised by a build to say its write has nothing to store (the call changes nothing)."""


_SECRETS_LOCK = threading.Lock()


def wakes_waiters(old: TaskRecord, new: TaskRecord) -> bool:
    """Whether storing *new* in place of *old* must wake the task's waiters: it ended."""
    return new.task.status is not old.task.status and new.task.status.is_terminal


class BaseTaskStore(StoreSettings, ABC, Generic[RefT]):
    """
    The five public writes, written once, over a small storage interface.

    ``update_status``, ``set_variables``, ``set_result``,
    ``complete_with_result`` and ``cancel`` each check in the contract's
    order (module docstring): :meth:`_read_for_write` checks the ids' types
    and the owner (:class:`NotFound`); then the write checks its other
    arguments (a bad one after :meth:`_found`), encodes a result, and reads
    the clock once; then :meth:`_write` replaces the record by
    ``change.build(current)``, where ``build`` applies the operation's rules
    from :mod:`tasks_store.rules` (expiry first) and :class:`Change` says
    the same change as data.  :meth:`_write` logs a status change
    (:func:`log_status`) once the change is stored, outside any lock, and
    asks the backend to wake the task's waiters exactly when
    :func:`wakes_waiters` says so.

    Three paths store the new record:

    - **applied** (:meth:`_write_applied`): a backend that can apply a cheap
      change in one atomic step on its own side (:meth:`_apply`: one Redis
      script, one round trip) does so; the record returned is still
      ``build``'s, from the record the backend judged, and a refusal raises
      ``build``'s own error.  Tried first; a backend without it takes the
      other two.
    - **optimistic** (:meth:`_write_optimistic`): build outside any lock from
      the record last read, and swap it in only if that record is still the
      current one; otherwise build again from the current record.  At most
      :attr:`_costly_tries` tries for a costly build (the variables merge),
      :attr:`_cheap_tries` for a cheap one.
    - **locked** (:meth:`_write_locked`): build and store under the task's
      lock.  Taken by a write with no optimistic tries, and as the fallback
      once every try lost.

    A backend implements this storage interface (*ref* is its own handle on
    one version of one task, type ``RefT``):

    ``_read_for_write(task_id, owner_id) -> ref``
        Check the ids' types, then the caller; return a handle on the
        caller's task as stored now.  Raises :class:`InvalidParams`,
        :class:`AnonymousAccessDenied`, and :class:`NotFound` alike for an
        unknown id and another owner's (logging the latter with
        :func:`log_foreign`).  Changes nothing; holds no lock on return.
        A backend with :meth:`_apply` may return a handle that has not read
        the task yet (then :meth:`_found`, :meth:`_apply` and
        :meth:`_record_at` raise the :class:`NotFound`).
    ``_write_locked(ref, build) -> (old, new)``
        Atomically with respect to every other write of the task: read its
        current record *old* (not the one *ref* was read at), store
        ``new = build(old)`` so that readers see the old record or the new
        one whole, and wake the task's waiters if ``wakes_waiters(old, new)``.
        If ``build`` raises, nothing is stored and the error propagates.
        Raises :class:`NotFound` if the task is gone (removed by
        ``cleanup_expired``).  :class:`LockedTaskStore` writes it once from
        a lock, a load and a store.  A backend with no lock raises
        :class:`StoreError` here (it is then reached only after every
        optimistic try lost).

    and, if it sets :attr:`_costly_tries` or :attr:`_cheap_tries` above 0:

    ``_record_at(ref) -> record``
        The record *ref* was read at.  No I/O, unless the handle has not
        read the task yet (see ``_read_for_write``): then it reads it.
    ``_compare_and_swap(ref, new, wake) -> ref | None``
        Atomically: if the task's record is still the version *ref* was read
        at, store *new*, wake the task's waiters if *wake*, and return None;
        otherwise store nothing and return a handle on the current version.
        Raises :class:`NotFound` if the task is gone.
    ``_lost_race(ref, attempt) -> ref | None``
        Optional: called after try *attempt* (from 0) lost, before the next
        one, with the handle the swap returned; returns the handle the next
        try builds from, or None to stop trying and take the locked path at
        once (another writer holds the task's lock).  A backend that backs
        off here must read the task again after its pause (a handle from
        before it is likely stale).  By default: *ref*, at once.

    ``_verified(ref) -> ref | None``
        Optional: for a backend whose ``_record_at`` may hand out a record it
        did not read just now (one it keeps decoded; the swap still checks
        its version): if *ref*'s record is such a one, return a handle on the
        task as stored now (raising :class:`NotFound` if it is gone), else
        None.  The optimistic path calls it when ``build`` refuses an
        unread record, and builds again from the task as stored, so a stale
        copy never decides an error.  By default None.

    and, to apply changes on its own side:

    ``_apply(ref, change) -> (applied, current) | None``
        Optional: apply a cheap *change* (:class:`Change`) in one atomic
        step, checking what its rules check (expiry, then the transition
        table or "not terminal"), and return whether it was applied and the
        record *current* it was judged against; None to take the paths
        above.  The write path then runs ``change.build(current)``: the
        stored record when applied, the rule's own error when refused.
        Raises :class:`NotFound` if the task is missing or another owner's.
    ``_found(ref)``
        Optional: raise :class:`NotFound` if the task is missing or another
        owner's (logging the latter).  For a backend whose
        ``_read_for_write`` does not read: a write whose arguments are bad
        calls it first, so that a foreign caller still gets
        :class:`NotFound`.  By default nothing (the read already checked).
    """

    #: The longest a :meth:`wait_input` sleeps without a change before reading
    #: the task again (None: it trusts its watch; a backend whose watch can
    #: miss a message, as pub/sub while reconnecting, sets it).
    _watch_recheck_s: ClassVar[float | None] = None
    #: Optimistic tries of a write whose build is costly (the variables
    #: merge) before the locked path; 0 goes straight to the locked path.
    _costly_tries: ClassVar[int] = 0
    #: The same for a write whose build is cheap (a status change, a result).
    _cheap_tries: ClassVar[int] = 0

    # -- the storage interface ------------------------------------------------

    @abstractmethod
    def _read_for_write(self, task_id: str, owner_id: str) -> RefT:
        """Return a handle on the caller's task; see the class docstring."""

    @abstractmethod
    def _write_locked(self, ref: RefT, build: Build) -> tuple[TaskRecord, TaskRecord]:
        """Store ``build(current)`` under the task's lock; see the class docstring."""

    def _record_at(self, ref: RefT) -> TaskRecord:
        """Return the record *ref* was read at; see the class docstring."""
        raise NotImplementedError(f"{type(self).__name__} makes no optimistic writes")

    def _compare_and_swap(self, ref: RefT, new: TaskRecord, wake: bool) -> RefT | None:
        """Store *new* if *ref* is still current; see the class docstring."""
        raise NotImplementedError(f"{type(self).__name__} makes no optimistic writes")

    def _lost_race(self, ref: RefT, attempt: int) -> RefT | None:
        """Return the handle the try after *attempt* builds from; *ref* by default."""
        return ref

    def _verified(self, ref: RefT) -> RefT | None:
        """A handle on the task as stored now if *ref*'s record was not read; None by default."""
        return None

    def _changed(self, old: TaskRecord, new: TaskRecord) -> None:
        """
        A write stored *new* in place of *old*: tell the task's watchers.

        Called once per write, after it is stored, outside any lock.  Nothing
        by default: a backend whose commit announces every change itself
        (a Redis script publishing) needs nothing here.
        """

    def _apply(self, ref: RefT, change: Change) -> tuple[bool, TaskRecord] | None:
        """Apply *change* on the backend's side; None by default (not supported)."""
        return None

    def _found(self, ref: RefT) -> None:
        """Raise NotFound if the task is missing or another owner's; nothing by default."""

    def _arguments(self, ref: RefT) -> _ArgumentChecks:
        """Check a write's other arguments: a bad one raises, after NotFound if due."""
        return _ArgumentChecks(self, ref)

    # -- the paths ------------------------------------------------------------

    def _write(self, ref: RefT, change: Change) -> TaskRecord:
        """Replace the task's record by ``change.build(current)``; log a status change."""
        done = self._write_applied(ref, change)
        if done is None:
            build = change.build
            tries = self._costly_tries if change.costly else self._cheap_tries
            done = self._write_optimistic(ref, build, tries) if tries else None
            if done is None:
                done = self._write_locked(ref, build)
        old, new = done
        self._changed(old, new)
        if new.task.status is not old.task.status:
            log_status(old, new)
        return new

    def _write_applied(
        self, ref: RefT, change: Change
    ) -> tuple[TaskRecord, TaskRecord] | None:
        """
        Let the backend apply *change* itself (:meth:`_apply`); None if it does not.

        The record returned is the rules' (``change.build``) from the one
        the backend judged; a refusal raises the rules' own error.
        """
        if change.costly:
            return None
        outcome = self._apply(ref, change)
        if outcome is None:
            return None
        applied, current = outcome
        try:
            new = change.build(current)
        except Exception as exc:
            if not applied:
                raise  # the rule's own error, as every backend raises it
            msg = f"Task {current.task.task_id}: a change was stored that the rules refuse"
            raise StoreError(msg) from exc
        if not applied:
            msg = f"Task {current.task.task_id}: a change the rules allow was refused"
            raise StoreError(msg)
        return current, new

    def _write_optimistic(
        self, ref: RefT, build: Build, tries: int
    ) -> tuple[TaskRecord, TaskRecord] | None:
        """
        Build outside any lock and swap in if unchanged, up to *tries* times.

        Returns ``(old, new)`` once a swap succeeded, None if every try lost.
        """
        for attempt in range(tries):
            old = self._record_at(ref)
            try:
                new = build(old)
            except Exception:
                fresh = self._verified(ref)
                if fresh is None:
                    raise
                ref, old = fresh, self._record_at(fresh)
                new = build(old)
            newer = self._compare_and_swap(ref, new, wakes_waiters(old, new))
            if newer is None:
                return old, new
            if attempt + 1 < tries:
                after = self._lost_race(newer, attempt)
                if after is None:
                    break
                ref = after
        return None

    # -- the five writes ------------------------------------------------------

    def update_status(
        self,
        task_id: str,
        owner_id: str,
        new_status: TaskStatus | str,
        status_message: str | None = None,
    ) -> TaskRecord:
        """Move the task to *new_status*; see :meth:`TaskStore.update_status`."""
        ref = self._read_for_write(task_id, owner_id)
        with self._arguments(ref):
            status = coerce_status(new_status)
            message = rules.check_message(status_message)
        now_ms = self._now_ms()
        change = Change(
            lambda cur: rules.transition(cur, status, message, now_ms),
            now_ms,
            status=status,
            sets_message=True,
            message=message,
        )
        return self._write(ref, change)

    def set_variables(
        self, task_id: str, owner_id: str, variables: Mapping[str, Any]
    ) -> TaskRecord:
        """
        Merge *variables* into the task's; see :meth:`TaskStore.set_variables`.

        The merge and its size check are the costly build: optimistic where
        the backend allows it.
        """
        ref = self._read_for_write(task_id, owner_id)
        with self._arguments(ref):
            updates = rules.check_variables(variables)
        now_ms = self._now_ms()
        limit = self._config.max_variable_size_bytes

        def build(current: TaskRecord) -> TaskRecord:
            rules.ensure_live(current, now_ms)
            merged = rules.merge_variables(current.variables_json, updates, limit)
            return rules.with_variables(current, merged, now_ms)

        return self._write(ref, Change(build, now_ms, costly=True))

    def set_result(self, task_id: str, owner_id: str, result: Any) -> None:
        """
        Store *result* on a task that has not ended; see :meth:`TaskStore.set_result`.

        The result is encoded before the write, outside any lock.
        """
        ref = self._read_for_write(task_id, owner_id)
        with self._arguments(ref):
            text = dump_result(result)
        now_ms = self._now_ms()
        change = Change(
            lambda cur: rules.with_result(cur, text, now_ms), now_ms, result_json=text
        )
        self._write(ref, change)

    def complete_with_result(
        self,
        task_id: str,
        owner_id: str,
        status: TaskStatus | str,
        status_message: str | None,
        result: Any,
    ) -> TaskRecord:
        """
        End the task with *status* and *result* in one step; see
        :meth:`TaskStore.complete_with_result`.

        The result is encoded before the write, outside any lock.
        """
        ref = self._read_for_write(task_id, owner_id)
        with self._arguments(ref):
            target = rules.check_terminal_status(status)
            message = rules.check_message(status_message)
            text = dump_result(result)
        now_ms = self._now_ms()
        change = Change(
            lambda cur: rules.complete(cur, target, message, text, now_ms),
            now_ms,
            status=target,
            sets_message=True,
            message=message,
            result_json=text,
        )
        return self._write(ref, change)

    def cancel(
        self, task_id: str, owner_id: str, status_message: str | None = None
    ) -> TaskRecord:
        """Cancel the task; see :meth:`TaskStore.cancel`."""
        return self.update_status(task_id, owner_id, TaskStatus.CANCELLED, status_message)

    # -- progress messages and input requests ---------------------------------

    @abstractmethod
    def get(self, task_id: str, owner_id: str) -> TaskRecord:
        """Return the caller's task; see :meth:`TaskStore.get`."""

    def set_status_message(
        self,
        task_id: str,
        owner_id: str,
        status_message: str | None,
        *,
        variables: Mapping[str, Any] | None = None,
    ) -> TaskRecord:
        """Replace the status message; see :meth:`TaskStore.set_status_message`."""
        ref = self._read_for_write(task_id, owner_id)
        with self._arguments(ref):
            message = rules.check_message(status_message)
            updates = None if variables is None else rules.check_variables(variables)
        now_ms = self._now_ms()
        limit = self._config.max_variable_size_bytes
        new = self._write(
            ref,
            Change(
                lambda cur: rules.with_status_message(cur, message, updates, limit, now_ms),
                now_ms,
                costly=True,
            ),
        )
        logger.info(
            "task %s (owner %r): status message set (status %s)",
            new.task.task_id,
            new.owner_id,
            new.task.status.value,
        )
        return new

    def request_input(
        self,
        task_id: str,
        owner_id: str,
        requests: Mapping[str, Mapping[str, Any]],
        status_message: str | None = None,
    ) -> TaskRecord:
        """Ask the client for input, one step; see :meth:`TaskStore.request_input`."""
        ref = self._read_for_write(task_id, owner_id)
        with self._arguments(ref):
            checked = rules.check_input_requests(requests)
            message = rules.check_message(status_message)
        now_ms = self._now_ms()
        limit = self._config.max_variable_size_bytes
        new = self._write(
            ref,
            Change(
                lambda cur: rules.request_input(cur, checked, message, now_ms, limit),
                now_ms,
                costly=True,
            ),
        )
        log_input(new, "requested", checked)
        return new

    def respond_input(
        self, task_id: str, owner_id: str, responses: Mapping[str, Any]
    ) -> tuple[str, ...]:
        """Record responses to outstanding requests; see :meth:`TaskStore.respond_input`."""
        ref = self._read_for_write(task_id, owner_id)
        with self._arguments(ref):
            checked = rules.check_input_responses(responses)
        now_ms = self._now_ms()
        limit = self._config.max_variable_size_bytes
        accepted: list[tuple[str, ...]] = []

        def build(current: TaskRecord) -> TaskRecord:
            outcome = rules.respond_input(current, checked, now_ms, limit)
            if outcome is None:
                raise _NothingToStore
            new, keys = outcome
            accepted[:] = [keys]  # the last build is the one stored
            return new

        try:
            new = self._write(ref, Change(build, now_ms, costly=True))
        except _NothingToStore:
            return ()
        log_input(new, "answered", accepted[0])
        return accepted[0]

    def withdraw_input(
        self, task_id: str, owner_id: str, keys: Iterable[str]
    ) -> TaskRecord:
        """Supersede outstanding requests; see :meth:`TaskStore.withdraw_input`."""
        ref = self._read_for_write(task_id, owner_id)
        with self._arguments(ref):
            wanted = rules.check_input_keys(keys)
        now_ms = self._now_ms()

        def build(current: TaskRecord) -> TaskRecord:
            new = rules.withdraw_input(current, wanted, now_ms)
            if new is None:
                raise _NothingToStore
            return new

        try:
            new = self._write(ref, Change(build, now_ms, costly=True))
        except _NothingToStore:
            return self.get(task_id, owner_id)
        log_input(new, "withdrawn", wanted)
        return new

    def wait_input(
        self,
        task_id: str,
        owner_id: str,
        keys: Iterable[str],
        *,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """
        Block until every request of *keys* is answered; take the responses.
        See :meth:`TaskStore.wait_input`.

        Opens a :meth:`watch` on the task before each read of it, so an
        answer (or a cancellation) stored after the read wakes the waiter;
        it also wakes at the task's expiry and at *timeout*.  It never polls.
        """
        self.get(task_id, owner_id)  # the ids' types, then the owner
        wanted = rules.check_input_keys(keys)
        limit = rules.check_timeout(timeout)
        deadline = None if limit is None else time.monotonic() + limit
        with self.watch(owner_id, (task_id,)) as watch:
            while True:
                record = self.get(task_id, owner_id)
                now_ms = self._now_ms()
                if rules.input_ready(record, wanted, now_ms):
                    taken = self._take_input(task_id, owner_id, wanted)
                    if taken is not None:
                        return taken
                    continue  # another waiter took them first: judge afresh
                sleep = None
                if deadline is not None:
                    sleep = deadline - time.monotonic()
                    if sleep <= 0:
                        raise WaitTimeout(task_id, limit)  # type: ignore[arg-type]
                if record.expires_at_ms is not None:
                    to_expiry = max(0.0, (record.expires_at_ms - now_ms) / 1000)
                    sleep = to_expiry if sleep is None else min(sleep, to_expiry)
                recheck = self._watch_recheck_s
                if recheck is not None:
                    sleep = recheck if sleep is None else min(sleep, recheck)
                watch.wait(sleep)

    def _take_input(
        self, task_id: str, owner_id: str, keys: tuple[str, ...]
    ) -> dict[str, Any] | None:
        """Take the answered responses to *keys* in one write; None if they are gone."""
        ref = self._read_for_write(task_id, owner_id)
        now_ms = self._now_ms()
        taken: list[dict[str, Any]] = []

        def build(current: TaskRecord) -> TaskRecord:
            if not rules.input_ready(current, keys, now_ms):
                raise _NothingToStore
            new, responses = rules.take_input(current, keys, now_ms)
            taken[:] = [responses]
            return new

        try:
            self._write(ref, Change(build, now_ms, costly=True))
        except _NothingToStore:
            return None
        return taken[0]

    def watch(self, owner_id: str, task_ids: Iterable[str]) -> TaskWatch:
        """Watch *owner_id*'s tasks for changes; see :meth:`TaskStore.watch`."""
        raise NotImplementedError(f"{type(self).__name__} cannot watch tasks")

    def shared_secret(self, name: str) -> bytes:
        """
        Return the secret called *name*; see :meth:`TaskStore.shared_secret`.

        By default one per store object (32 random bytes, drawn on first use):
        right for a store that lives in one process.
        """
        if not isinstance(name, str) or not name:
            msg = f"name must be a non-empty str, got {name!r}"
            raise TypeError(msg)
        secrets = self.__dict__.setdefault("_shared_secrets", {})
        with _SECRETS_LOCK:
            return secrets.setdefault(name, os.urandom(32))  # type: ignore[no-any-return]



class _ArgumentChecks:
    """
    ``with store._arguments(ref):`` around a write's argument checks: an
    :class:`InvalidParams` raised inside is preceded by the ``NotFound`` that
    is due when the task is missing or another owner's (``store._found``).

    A class rather than a ``@contextmanager`` generator: this runs on every
    write, and a generator-based manager costs about 1.5 µs more.
    """

    __slots__ = ("_ref", "_store")

    def __init__(self, store: BaseTaskStore[Any], ref: Any) -> None:
        self._store = store
        self._ref = ref

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None and issubclass(exc_type, InvalidParams):
            self._store._found(self._ref)  # raises NotFound, the InvalidParams as its context


class LockedTaskStore(BaseTaskStore[RefT]):
    """
    A :class:`BaseTaskStore` whose writes of one task take one lock.

    It writes :meth:`_write_locked` from three smaller methods:

    ``_lock_for(ref) -> lock``
        The lock every write of the task holds (a context manager); the
        same one for every handle on the task.
    ``_load(ref) -> record``
        Called holding that lock: the task's current record.  Raises
        :class:`NotFound` if the task is gone.
    ``_store(ref, new, wake)``
        Called holding that lock: make *new* the task's record in one step
        (a reader sees the old record or the new one, never a mix), and
        wake the task's waiters if *wake*.
    """

    @abstractmethod
    def _lock_for(self, ref: RefT) -> AbstractContextManager[Any]:
        """The lock every write of the task holds."""

    @abstractmethod
    def _load(self, ref: RefT) -> TaskRecord:
        """Return the task's current record; the caller holds its lock."""

    @abstractmethod
    def _store(self, ref: RefT, new: TaskRecord, wake: bool) -> None:
        """Make *new* the task's record, waking its waiters if *wake*; the caller holds its lock."""

    def _write_locked(self, ref: RefT, build: Build) -> tuple[TaskRecord, TaskRecord]:
        """Under the task's lock: load the current record, build from it, store."""
        with self._lock_for(ref):
            old = self._load(ref)
            new = build(old)
            self._store(ref, new, wakes_waiters(old, new))
        return old, new


@runtime_checkable
class TaskStore(Protocol):
    """
    A thread-safe store of MCP tasks, each visible only to its owner.

    Every method is synchronous and may be called from any thread.
    """

    @property
    def config(self) -> StoreConfig:
        """The limits this store enforces."""

    @property
    def security(self) -> TaskSecurityConfig:
        """Quota and anonymous-access settings."""

    def __len__(self) -> int:
        """Return how many tasks the store holds, expired ones included."""

    def create(
        self, owner_id: str, request_method: str, ttl: int | None = None
    ) -> TaskRecord:
        """
        Create a task for *owner_id*, working, and return its record.

        Args:
            owner_id: the caller; see :func:`resolve_owner_id`.
            request_method: the request the task runs, e.g. ``"tools/call"``.
            ttl: milliseconds to keep the task from creation; None for the
                store's default.

        Raises:
            InvalidParams: an argument has the wrong type or value.
            AnonymousAccessDenied: anonymous owner while that is off.
            TtlExceeded: *ttl* is above ``config.max_ttl_ms`` (never clamped).
            ResourceExhausted: the owner already holds
                ``security.max_tasks_per_owner`` live tasks.
        """

    def get(self, task_id: str, owner_id: str) -> TaskRecord:
        """
        Return the task's record; an expired one not yet removed included.

        Raises:
            NotFound: no such task for this owner.
        """

    def update_status(
        self,
        task_id: str,
        owner_id: str,
        new_status: TaskStatus | str,
        status_message: str | None = None,
    ) -> TaskRecord:
        """
        Move the task to *new_status*; return the new record.

        Raises:
            NotFound, Expired: see the module rules.
            InvalidTransition: the state machine forbids the move.
        """

    def set_variables(
        self, task_id: str, owner_id: str, variables: Mapping[str, Any]
    ) -> TaskRecord:
        """
        Merge *variables* into the task's: add, overwrite, and delete on None.

        Raises:
            NotFound, Expired: see the module rules.
            InvalidParams: a key is not a str or a value is not JSON.
            VariableSizeExceeded: the merged map's compact UTF-8 JSON is over
                ``config.max_variable_size_bytes``.
        """

    def set_result(self, task_id: str, owner_id: str, result: Any) -> None:
        """
        Store *result* for a task that has not ended; its status is unchanged.

        Raises:
            NotFound, Expired: see the module rules.
            InvalidParams: *result* is not JSON (nor a ``JsonRpcError``).
            InvalidTransition: the task is terminal.
        """

    def get_result(self, task_id: str, owner_id: str) -> Any:
        """
        Return the result of a terminal task.

        Raises:
            NotFound: see the module rules.
            NotReady: the task is not terminal, or ended without a result.
            Expired: the task expired before it ended.
        """

    def complete_with_result(
        self,
        task_id: str,
        owner_id: str,
        status: TaskStatus | str,
        status_message: str | None,
        result: Any,
    ) -> TaskRecord:
        """
        Move the task to the terminal *status* and store *result*, in one step.

        Raises:
            NotFound, Expired: see the module rules.
            InvalidParams: *status* is not terminal, or *result* is not JSON.
            InvalidTransition: the task is already terminal.
        """

    def list(
        self, owner_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> TaskPage:
        """
        Return one page of the owner's tasks, newest first.

        Ties in creation time go to the later-created task first.  Expired
        tasks not yet removed are included.  Following ``next_cursor`` to the
        end returns every task that existed throughout exactly once, whatever
        is created or removed meanwhile.

        Raises:
            InvalidParams: *limit* is not an int in 1..1000 (default 50).
            InvalidCursor: *cursor* is malformed or was issued to another owner.
        """

    def cancel(
        self, task_id: str, owner_id: str, status_message: str | None = None
    ) -> TaskRecord:
        """
        Move the task to cancelled; return the new record.

        Raises:
            NotFound, Expired: see the module rules.
            InvalidTransition: the task is already terminal.
        """

    def cleanup_expired(self) -> int:
        """Remove every expired task; return how many were removed."""

    def wait(
        self, task_id: str, owner_id: str, *, timeout: float | None = None
    ) -> TaskRecord:
        """
        Block until the task is terminal and return its record.

        Returns at once when it already is.  No wake-up is lost.

        Raises:
            NotFound: no such task, or it was removed while waiting.
            Expired: the task expired before it ended.
            WaitTimeout: *timeout* seconds passed first.
            InvalidParams: *timeout* is not a number >= 0 or None.
        """


    def set_status_message(
        self,
        task_id: str,
        owner_id: str,
        status_message: str | None,
        *,
        variables: Mapping[str, Any] | None = None,
    ) -> TaskRecord:
        """
        Replace the task's status message (a progress message), and merge
        *variables* when given, in one step; the status does not change.
        ``lastUpdatedAt`` moves; the change is logged.

        Raises:
            NotFound, Expired: see the module rules.
            InvalidParams: *status_message* is not a str or None; bad
                *variables* (as :meth:`set_variables`).
            VariableSizeExceeded: the merged variables are over the limit.
            InvalidTransition: the task is terminal.
        """

    def request_input(
        self,
        task_id: str,
        owner_id: str,
        requests: Mapping[str, Mapping[str, Any]],
        status_message: str | None = None,
    ) -> TaskRecord:
        """
        Add input requests (key to ``{"method", "params"}``) to the task and
        move it to ``input_required``, in one step; return the new record.

        A task already ``input_required`` stays so, with the new requests
        added to those outstanding.  *status_message* replaces the old one.

        Raises:
            NotFound, Expired: see the module rules.
            InvalidParams: *requests* is malformed, or a key was issued
                before: a key is unique over the task's whole lifetime.
            InputSizeExceeded: the outstanding requests and unconsumed
                responses, as compact JSON, would be over
                ``config.max_variable_size_bytes``.
            InvalidTransition: the task is terminal.
        """

    def respond_input(
        self, task_id: str, owner_id: str, responses: Mapping[str, Any]
    ) -> tuple[str, ...]:
        """
        Record *responses* (key to a JSON object, or a :class:`JsonRpcError`)
        for the keys outstanding right now; return the keys accepted.

        Keys never issued, already answered or withdrawn are ignored, and so
        is every key of a terminal task; when none is accepted nothing is
        written.  Once no request is outstanding an ``input_required`` task
        is back to ``working`` (its status message cleared), in the same
        step; a partial answer leaves it ``input_required``.

        Raises:
            NotFound: see the module rules.
            Expired: the task expired before it ended.
            InvalidParams: *responses* is not a mapping of str to objects.
            InputSizeExceeded: the responses would take the input state
                over the size limit.
        """

    def withdraw_input(
        self, task_id: str, owner_id: str, keys: Iterable[str]
    ) -> TaskRecord:
        """
        Supersede the requests *keys*: they are no longer outstanding, and
        responses to them, received or to come, are dropped.  Return the
        record (unchanged when none of them was outstanding or answered).
        Once none is outstanding an ``input_required`` task is back to
        ``working``.

        Raises:
            NotFound: see the module rules.
            Expired: the task expired before it ended.
            InvalidParams: *keys* is not a non-empty collection of str.
        """

    def wait_input(
        self,
        task_id: str,
        owner_id: str,
        keys: Iterable[str],
        *,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """
        Block until every request of *keys* is answered, then take the
        responses (each is handed out once) and return them, key to response.

        Works across processes wherever the store's data is shared, with no
        lost wake-up and no polling.  A client's error answer comes back as
        a :class:`JsonRpcError`.

        Raises:
            NotFound: no such task, or it was removed while waiting.
            TaskEnded: the task is, or became, terminal (e.g. cancelled).
            Expired: the task expired before it ended.
            WaitTimeout: *timeout* seconds passed first.
            InvalidParams: *keys* is malformed, names a request that is
                neither outstanding nor answered (never issued, withdrawn,
                already taken), or *timeout* is not a number >= 0 or None.
        """

    def watch(self, owner_id: str, task_ids: Iterable[str]) -> TaskWatch:
        """
        Return a :class:`TaskWatch` on *owner_id*'s tasks *task_ids*, open now.

        Its ``wait(timeout)`` returns True once any of them changed (any
        write through any process sharing the store, or its removal) since
        the watch opened or since the previous True, False at the timeout.
        Open it before reading the tasks.  Watching an id the owner does not
        hold is allowed and never fires (another owner's writes are not seen).
        """

    def shared_secret(self, name: str) -> bytes:
        """
        Return a secret of at least 32 bytes, called *name*, made once and the
        same for every process sharing this store's data (the MCP layer signs
        its request states with one).
        """


def require_store(store: object) -> TaskStore:
    """
    Return *store* if it has every method and property of :class:`TaskStore`.

    Raises:
        TypeError: it does not (None, a client, a class instead of an instance).
    """
    if isinstance(store, type) or not isinstance(store, TaskStore):
        msg = f"store must be a task store (InMemoryTaskStore, RedisTaskStore, ...), got {store!r}"
        raise TypeError(msg)
    return store


"""
:class:`TaskRunner`: run tasks' work on worker threads, fairly and bounded; record the outcome.

``start`` creates the task, queues ``fn(ctx)`` and returns the
``CreateTaskResult`` at once.  When ``fn`` returns, its value completes the
task (a ``CallToolResult`` with ``isError: true`` included: the store keeps
the Tasks extension's meaning, and the 2025-11-25 wire reports such a task
``failed``); when it raises, the task fails.  A task that ended meanwhile
(cancelled by ``tasks/cancel``, or completed by ``fn`` through its context)
keeps its end: the late completion is dropped, quietly.

The queue
=========

- **Bounded, with a per-owner share.**  At most ``max_queued`` tasks wait
  for a worker, and at most ``max_queued_per_owner`` of one owner; ``start``
  beyond either raises :class:`~tasks_store.errors.ResourceExhausted`
  (-32603) before any task is created.
- **Fair.**  Each owner has its own first-in first-out queue, and the
  workers take from the owners in turn (round robin): one owner's flood
  delays another owner's task by at most one task per waiting owner.
- **Nothing runs that nobody wants.**  When a task's turn comes, its record
  is read again: a task cancelled, expired or removed while it waited never
  runs its tool.
- **No silent expiry.**  A waiting task whose TTL is about to run out
  (within ``ttl_margin_ms``) is failed with the statusMessage
  ``"The task's TTL ran out before a worker was free"`` (and the result
  ``JsonRpcError(-32603, ...)``), rather than left ``working`` to expire.

Leases
======

With ``lease_seconds`` set (30 by default), the runner holds a lease
(:mod:`tasks_store.store.leases`) on every task it has queued or running,
renewed every ``lease_seconds / 3`` by one supervisor thread (one call for
all of them), and released once the task's outcome is recorded.  If the
process dies, the leases lapse, and any process's janitor fails those
tasks ``"worker lost"``.  If this process misses its renewals for a whole
lease (a long pause), another process may fail its tasks as lost; the
runner then logs a WARNING and the late results are dropped.

Shutdown
========

``shutdown(wait=True, cancel=False)`` stops accepting work (``start``
raises ``RuntimeError``) and:

- without *cancel*: the queued tasks still run, and the running ones finish;
- with *cancel*: every task not yet ended is cancelled in the store first:
  queued ones never run, running ones see ``ctx.is_cancelled()``;
- with *wait*: it returns once every worker thread (and the supervisor) has
  finished; without, at once, and the threads finish by themselves.

Leases are released as tasks end.  The worker threads are daemon threads:
at interpreter exit without a ``shutdown``, queued and running work is
abandoned, and (with leases) other processes' janitors fail those tasks
``"worker lost"``.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any

from ..errors import (
    INTERNAL_ERROR,
    INTERNAL_MESSAGE,
    Expired,
    InvalidParams,
    InvalidTransition,
    NotFound,
    ResourceExhausted,
    StoreError,
    TaskError,
)
from ..records import MODEL_IMMEDIATE_RESPONSE_META_KEY, CreateTaskResult, JsonRpcError
from ..status import TaskStatus
from ..store import TaskStore
from ..store._base import require_store
from ..store.leases import LeaseTable, leases_for, new_holder_id
from .context import TaskContext

__all__ = ["TTL_RAN_OUT", "TaskFn", "TaskRunner"]

logger = logging.getLogger("tasks_store")

#: A task's work: receives its context, returns the task's result.
TaskFn = Callable[[TaskContext], Any]

#: The statusMessage of a task whose TTL ran out while it waited for a worker.
TTL_RAN_OUT = "The task's TTL ran out before a worker was free"
_SHUTTING_DOWN = "The server is shutting down."
_STATUS_MESSAGE_LIMIT = 200

_QUEUED, _RUNNING, _DONE = "queued", "running", "done"


class _Job:
    """One started task: queued, then running, then done."""

    __slots__ = ("ctx", "expires_at_ms", "fn", "request_method", "state")

    def __init__(
        self, ctx: TaskContext, request_method: str, fn: TaskFn, expires_at_ms: int | None
    ) -> None:
        self.ctx = ctx
        self.request_method = request_method
        self.fn = fn
        self.expires_at_ms = expires_at_ms
        self.state = _QUEUED

    @property
    def task_id(self) -> str:
        return self.ctx.task_id

    @property
    def owner_id(self) -> str:
        return self.ctx.owner_id


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = f"{name} must be a positive int, got {value!r}"
        raise ValueError(msg)
    return value


class TaskRunner:
    """
    Run tasks' work on worker threads; see the module docstring for the queue, leases, shutdown.

    Args:
        store: where the tasks live.
        max_workers: worker threads (started as work arrives).
        max_queued: the most tasks waiting for a worker, all owners together.
        max_queued_per_owner: the most tasks of one owner waiting for a worker.
        lease_seconds: the lease held on each queued or running task, renewed
            every third of it; None takes no leases.
        leases: the lease table; by default ``leases_for(store)``.
        ttl_margin_ms: a waiting task is failed once its TTL has this little
            left (or its turn comes that late), before it expires.

    Raises:
        ValueError: a limit that is not a positive int, a bad *lease_seconds*
            or *ttl_margin_ms*.
        TypeError: *store* or *leases* of the wrong type.

    Use it as a context manager, or call :meth:`shutdown`; leaving the
    ``with`` block waits for running work.
    """

    def __init__(
        self,
        store: TaskStore,
        *,
        max_workers: int = 8,
        max_queued: int = 1000,
        max_queued_per_owner: int = 100,
        lease_seconds: float | None = 30.0,
        leases: LeaseTable | None = None,
        ttl_margin_ms: int = 1000,
    ) -> None:
        self._engine = _Engine(
            store, max_workers=max_workers, max_queued=max_queued,
            max_queued_per_owner=max_queued_per_owner, lease_seconds=lease_seconds,
            leases=leases, ttl_margin_ms=ttl_margin_ms,
        )  # fmt: skip
        # The threads hold the engine, never the runner: once the runner is
        # garbage collected, they finish the queue and end (as a
        # ThreadPoolExecutor's do).
        weakref.finalize(self, self._engine.abandon)

    @property
    def store(self) -> TaskStore:
        """The store tasks are created in."""
        return self._engine.store

    @property
    def leases(self) -> LeaseTable | None:
        """The lease table (None without leases)."""
        return self._engine.leases

    @property
    def lease_seconds(self) -> float | None:
        """How long a lease lasts without renewal (None: no leases)."""
        return self._engine.lease_seconds

    @property
    def holder(self) -> str:
        """This runner's holder id in the lease table."""
        return self._engine.holder

    def __enter__(self) -> TaskRunner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()

    def __len__(self) -> int:
        """Return how many started tasks are queued or running."""
        return len(self._engine)

    def stats(self) -> dict[str, int]:
        """Counts: ``queued``, ``running``, ``owners_waiting``, ``workers``, ``idle``."""
        return self._engine.stats()

    def start(
        self,
        owner_id: str,
        request_method: str,
        fn: TaskFn,
        *,
        ttl: int | None = None,
        immediate_response: str | None = None,
    ) -> dict[str, Any]:
        """
        Create a task and queue ``fn(ctx)`` for it.

        Args:
            owner_id: the caller, who owns the task.
            request_method: the request the task runs (``"tools/call"``).
            fn: the work.  Its return value completes the task (a
                ``tools/call`` result with ``isError: true`` too: a tool
                error is not a protocol fault; the 2025-11-25 wire shows
                that task ``failed``).  An exception fails the task with a
                ``JsonRpcError`` result (-32603 "Internal error", or the
                code and message of a :class:`TaskError`).
            ttl: milliseconds to keep the task; None for the store's default.
            immediate_response: text for the model while the task runs, put
                in ``_meta["io.modelcontextprotocol/model-immediate-response"]``.

        Returns:
            The ``CreateTaskResult`` as its wire dict.

        Raises:
            TypeError: *fn* is not callable (nothing is created).
            RuntimeError: the runner is shut down.
            ResourceExhausted: the queue, or the owner's share of it, is full
                (nothing is created).
            TaskError: from ``store.create`` (quota, ttl, anonymous owner).
            StoreError: the lease could not be taken (the task is failed).
        """
        return self._engine.start(
            owner_id, request_method, fn, ttl=ttl, immediate_response=immediate_response
        )

    def shutdown(self, *, wait: bool = True, cancel: bool = False) -> None:
        """
        Stop accepting work, and wait for or cancel what is under way.

        Args:
            wait: block until every worker thread (and the supervisor) has
                finished.
            cancel: first cancel every task that has not ended, in the
                store: queued ones never run, running ones see
                ``ctx.is_cancelled()``.  Without it, queued tasks still run.

        Idempotent.
        """
        self._engine.shutdown(wait=wait, cancel=cancel)


class _Engine:
    """The runner's state and threads; holds no reference to its :class:`TaskRunner`."""

    def __init__(
        self,
        store: TaskStore,
        *,
        max_workers: int = 8,
        max_queued: int = 1000,
        max_queued_per_owner: int = 100,
        lease_seconds: float | None = 30.0,
        leases: LeaseTable | None = None,
        ttl_margin_ms: int = 1000,
    ) -> None:
        self._max_workers = _positive_int("max_workers", max_workers)
        self._max_queued = _positive_int("max_queued", max_queued)
        self._max_per_owner = _positive_int("max_queued_per_owner", max_queued_per_owner)
        if lease_seconds is not None and (
            isinstance(lease_seconds, bool)
            or not isinstance(lease_seconds, (int, float))
            or not 0 < lease_seconds < 10**6
        ):
            msg = f"lease_seconds must be a number > 0 or None, got {lease_seconds!r}"
            raise ValueError(msg)
        if isinstance(ttl_margin_ms, bool) or not isinstance(ttl_margin_ms, int) or (
            ttl_margin_ms < 0
        ):
            msg = f"ttl_margin_ms must be an int >= 0, got {ttl_margin_ms!r}"
            raise ValueError(msg)
        self._store = require_store(store)
        if leases is not None and not isinstance(leases, LeaseTable):
            msg = f"leases must be a LeaseTable, got {type(leases).__name__}"
            raise TypeError(msg)
        self._lease_seconds = lease_seconds
        self._leases: LeaseTable | None = None
        if lease_seconds is not None:
            self._leases = leases if leases is not None else leases_for(self._store)
        self._holder = new_holder_id()
        self._margin_ms = ttl_margin_ms
        clock = getattr(self._store, "_now_ms", None)
        self._now_ms: Callable[[], int] = (
            clock if callable(clock) else (lambda: int(time.time() * 1000))
        )
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # workers wait here
        self._tick = threading.Condition(self._lock)  # the supervisor waits here
        self._pending: dict[str, deque[_Job]] = {}  # owner -> its queued jobs, FIFO
        self._rotation: deque[str] = deque()  # owners with queued jobs, in turn
        self._queued = 0  # queued jobs, with reservations of starts under way
        self._queued_by_owner: dict[str, int] = {}
        self._jobs: dict[str, _Job] = {}  # every job queued or running
        self._deadlines: list[tuple[int, int, _Job]] = []  # (fail at ms, seq, job), a heap
        self._seq = itertools.count()
        self._workers: list[threading.Thread] = []
        self._idle = 0
        self._supervisor: threading.Thread | None = None
        self._closed = False

    # -- properties -----------------------------------------------------------

    @property
    def store(self) -> TaskStore:
        """The store tasks are created in."""
        return self._store

    @property
    def leases(self) -> LeaseTable | None:
        """The lease table (None without leases)."""
        return self._leases

    @property
    def lease_seconds(self) -> float | None:
        """How long a lease lasts without renewal (None: no leases)."""
        return self._lease_seconds

    @property
    def holder(self) -> str:
        """This runner's holder id in the lease table."""
        return self._holder

    def __len__(self) -> int:
        """Return how many started tasks are queued or running."""
        with self._lock:
            return len(self._jobs)

    def stats(self) -> dict[str, int]:
        """Counts: ``queued``, ``running``, ``owners_waiting``, ``workers``, ``idle``."""
        with self._lock:
            return {
                "queued": sum(len(q) for q in self._pending.values()),
                "running": sum(job.state == _RUNNING for job in self._jobs.values()),
                "owners_waiting": len(self._pending),
                "workers": sum(t.is_alive() for t in self._workers),
                "idle": self._idle,
            }

    # -- start ----------------------------------------------------------------

    def start(
        self,
        owner_id: str,
        request_method: str,
        fn: TaskFn,
        *,
        ttl: int | None = None,
        immediate_response: str | None = None,
    ) -> dict[str, Any]:
        """Create the task and queue its work; see :meth:`TaskRunner.start`."""
        if not callable(fn):
            msg = f"fn must be callable, got {type(fn).__name__}"
            raise TypeError(msg)
        self._reserve(owner_id)
        try:
            record = self._store.create(owner_id, request_method, ttl)
        except BaseException:
            self._unreserve(owner_id)
            raise
        ctx = TaskContext(self._store, record.task_id, owner_id)
        job = _Job(ctx, request_method, fn, record.expires_at_ms)
        if self._leases is not None:
            try:
                self._leases.acquire(job.task_id, owner_id, self._holder, self._lease())
            except Exception:
                self._unreserve(owner_id)
                logger.exception("task %s: could not take its lease", job.task_id)
                self._fail(ctx, None, "The task could not be started: no lease.")
                raise
        if not self._enqueue(job):
            self._finish(ctx, TaskStatus.CANCELLED, _SHUTTING_DOWN, None)
            self._release(job)
            msg = "TaskRunner is shut down"
            raise RuntimeError(msg)
        meta = None
        if immediate_response is not None:
            meta = {MODEL_IMMEDIATE_RESPONSE_META_KEY: immediate_response}
        return CreateTaskResult(task=record.task, meta=meta).to_wire()

    def _lease(self) -> float:
        assert self._lease_seconds is not None
        return self._lease_seconds

    def _reserve(self, owner_id: str) -> None:
        """Hold a place in the queue for a start under way, or refuse."""
        with self._lock:
            if self._closed:
                msg = "TaskRunner is shut down"
                raise RuntimeError(msg)
            mine = self._queued_by_owner.get(owner_id, 0)
            if mine >= self._max_per_owner:
                raise ResourceExhausted(
                    f"This caller has {mine} tasks waiting for a worker; "
                    "try again once they run"
                )
            if self._queued >= self._max_queued:
                raise ResourceExhausted(
                    f"The server has {self._queued} tasks waiting for a worker; "
                    "try again later"
                )
            self._queued += 1
            self._queued_by_owner[owner_id] = mine + 1

    def _unreserve(self, owner_id: str) -> None:
        with self._lock:
            self._dequeued(owner_id)

    def _dequeued(self, owner_id: str) -> None:
        """Count one job (or reservation) of *owner_id* out of the queue.  Holding the lock."""
        self._queued -= 1
        left = self._queued_by_owner[owner_id] - 1
        if left:
            self._queued_by_owner[owner_id] = left
        else:
            del self._queued_by_owner[owner_id]

    def _enqueue(self, job: _Job) -> bool:
        """Queue a reserved job and wake a worker; False (unreserved) once shut down."""
        with self._lock:
            if self._closed:
                self._dequeued(job.owner_id)
                return False
            owner = job.owner_id
            queue = self._pending.get(owner)
            if queue is None:
                queue = self._pending[owner] = deque()
                self._rotation.append(owner)
            queue.append(job)
            self._jobs[job.task_id] = job
            if job.expires_at_ms is not None:
                fail_at = job.expires_at_ms - self._margin_ms
                heapq.heappush(self._deadlines, (fail_at, next(self._seq), job))
            if self._idle == 0 and len(self._workers) < self._max_workers:
                self._spawn_worker()
            self._work.notify()
            if self._supervisor is None:
                self._supervisor = threading.Thread(
                    target=self._supervise, name="tasks_store-runner-supervisor", daemon=True
                )
                self._supervisor.start()
            else:
                self._tick.notify()
            return True

    def _spawn_worker(self) -> None:
        thread = threading.Thread(
            target=self._worker, name=f"tasks_store-runner_{len(self._workers)}", daemon=True
        )
        self._workers.append(thread)
        thread.start()

    def _unqueue(self, job: _Job) -> None:
        """Take a queued job out of the queue for good.  Holding the lock."""
        owner = job.owner_id
        queue = self._pending[owner]
        queue.remove(job)
        if not queue:
            del self._pending[owner]
            self._rotation.remove(owner)
        self._dequeued(owner)
        job.state = _DONE
        del self._jobs[job.task_id]

    # -- shutdown -------------------------------------------------------------

    def abandon(self) -> None:
        """The runner was garbage collected: stop taking work; the threads drain and end."""
        with self._lock:
            self._closed = True
            self._work.notify_all()
            self._tick.notify_all()

    def shutdown(self, *, wait: bool = True, cancel: bool = False) -> None:
        """Stop accepting work; see :meth:`TaskRunner.shutdown`."""
        dropped: list[_Job] = []
        with self._lock:
            self._closed = True
            running = [job for job in self._jobs.values() if job.state == _RUNNING]
            if cancel:
                dropped = [job for queue in self._pending.values() for job in queue]
                for job in dropped:
                    self._unqueue(job)
            self._work.notify_all()
            self._tick.notify_all()
            workers = list(self._workers)
            supervisor = self._supervisor
        if cancel:
            for job in dropped + running:
                self._finish(job.ctx, TaskStatus.CANCELLED, _SHUTTING_DOWN, None)
            for job in dropped:
                self._release(job)
        if wait:
            for thread in workers:
                thread.join()
            if supervisor is not None:
                supervisor.join()

    # -- workers --------------------------------------------------------------

    def _next_job(self) -> _Job | None:
        """Wait for the next job, taking owners in turn; None once shut down and drained."""
        with self._lock:
            self._idle += 1
            try:
                while not self._rotation:
                    if self._closed:
                        return None
                    self._work.wait()
            finally:
                self._idle -= 1
            owner = self._rotation.popleft()
            queue = self._pending[owner]
            job = queue.popleft()
            if queue:
                self._rotation.append(owner)
            else:
                del self._pending[owner]
            self._dequeued(owner)
            job.state = _RUNNING
            return job

    def _worker(self) -> None:
        while True:
            job = self._next_job()
            if job is None:
                return
            try:
                self._execute(job)
            except Exception:
                logger.exception("task %s: could not record the outcome", job.task_id)
            finally:
                with self._lock:
                    job.state = _DONE
                    self._jobs.pop(job.task_id, None)
                    if not self._jobs:
                        self._tick.notify()
                self._release(job)

    def _execute(self, job: _Job) -> None:
        """Run the job's work unless its task ended, expired or went while it waited."""
        ctx = job.ctx
        try:
            record = self._store.get(ctx.task_id, ctx.owner_id)
        except NotFound:
            logger.debug("task %s: removed before its turn; not run", ctx.task_id)
            return
        if record.status.is_terminal:
            logger.debug("task %s: %s before its turn; not run", ctx.task_id, record.status.value)
            return
        expires = record.expires_at_ms
        if expires is not None:
            now = self._now_ms()
            if expires <= now:
                logger.info("task %s: expired before its turn; not run", ctx.task_id)
                return
            if expires - now <= self._margin_ms:
                self._fail_ttl(job)
                return
        self._run_once(ctx, job.request_method, job.fn)

    def _run_once(self, ctx: TaskContext, request_method: str, fn: TaskFn) -> None:
        try:
            result = fn(ctx)
        except Exception as exc:
            logger.warning(
                "task %s: handler raised %s", ctx.task_id, type(exc).__name__, exc_info=True
            )
            self._fail(ctx, exc)
            return
        if result is None:
            try:
                ended = ctx.record().status.is_terminal
            except NotFound:
                ended = True
            if not ended:
                self._fail(ctx, None)
            return
        status, message = _outcome(request_method, result)
        try:
            self._finish(ctx, status, message, result, raise_invalid=True)
        except InvalidParams as exc:  # the result is not JSON
            logger.warning("task %s: %s", ctx.task_id, exc.message)
            self._fail(ctx, exc, "The task handler returned a result that is not JSON.")

    def _fail_ttl(self, job: _Job) -> None:
        logger.warning("task %s: %s", job.task_id, TTL_RAN_OUT)
        result = JsonRpcError(INTERNAL_ERROR, TTL_RAN_OUT)
        self._finish(job.ctx, TaskStatus.FAILED, TTL_RAN_OUT, result)

    def _fail(self, ctx: TaskContext, exc: Exception | None, message: str | None = None) -> None:
        if isinstance(exc, TaskError) and message is None:
            error = exc
            status_message = f"Task handler failed: {exc.message}"
        else:
            error = TaskError(INTERNAL_MESSAGE)  # -32603, and no detail
            if message is None:
                message = (
                    "The task handler returned no result."
                    if exc is None
                    else f"The task handler raised {type(exc).__name__}."
                )
            status_message = message
        wire = error.to_jsonrpc_error()
        result = JsonRpcError(wire["code"], wire["message"], wire.get("data"))
        self._finish(ctx, TaskStatus.FAILED, _clip(status_message), result)

    def _finish(
        self,
        ctx: TaskContext,
        status: TaskStatus,
        message: str | None,
        result: Any,
        *,
        raise_invalid: bool = False,
    ) -> None:
        """End the task; drop the write if it has already ended or is gone."""
        try:
            if status is TaskStatus.CANCELLED:
                self._store.cancel(ctx.task_id, ctx.owner_id, message)
            else:
                self._store.complete_with_result(
                    ctx.task_id, ctx.owner_id, status, message, result
                )
        except (InvalidTransition, NotFound, Expired) as exc:
            logger.debug("task %s: late %s dropped (%s)", ctx.task_id, status.value, exc)
        except InvalidParams:
            if raise_invalid:
                raise
            logger.exception("task %s: could not record %s", ctx.task_id, status.value)
        except Exception:
            logger.exception("task %s: could not record %s", ctx.task_id, status.value)

    def _release(self, job: _Job) -> None:
        if self._leases is None:
            return
        try:
            self._leases.release(self._holder, job.task_id)
        except Exception:  # it lapses by itself; the task has ended, so nothing is lost
            logger.warning("task %s: could not release its lease", job.task_id, exc_info=True)

    # -- the supervisor: TTL deadlines of queued tasks, lease renewals ----------

    def _supervise(self) -> None:
        renew_every = None if self._lease_seconds is None else self._lease_seconds / 3
        next_renew = None if renew_every is None else time.monotonic() + renew_every
        while True:
            due: list[_Job] = []
            held: list[str] = []
            with self._lock:
                while True:
                    if self._closed and not self._jobs:
                        return
                    now_ms = self._now_ms()
                    heap = self._deadlines
                    while heap and (heap[0][2].state != _QUEUED or heap[0][0] <= now_ms):
                        job = heapq.heappop(heap)[2]
                        if job.state == _QUEUED:
                            self._unqueue(job)
                            due.append(job)
                    renew = next_renew is not None and time.monotonic() >= next_renew
                    if due or renew:
                        break
                    timeout = None if next_renew is None else next_renew - time.monotonic()
                    if heap:  # re-read the store's clock at least twice a second
                        soon = min(0.5, max(0.0, (heap[0][0] - now_ms) / 1000))
                        timeout = soon if timeout is None else min(timeout, soon)
                    self._tick.wait(timeout)
                if renew:
                    held = list(self._jobs)
            try:
                for job in due:
                    self._fail_ttl(job)
                    self._release(job)
            except Exception:  # never let the supervisor die: the renewals must go on
                logger.exception("could not fail tasks whose TTL ran out in the queue")
            if renew and renew_every is not None:
                next_renew = time.monotonic() + renew_every
                self._renew(held)

    def _renew(self, task_ids: list[str]) -> None:
        if not task_ids or self._leases is None:
            return
        try:
            lost = self._leases.renew(self._holder, task_ids, self._lease())
        except StoreError as exc:
            logger.warning("could not renew %d leases: %s", len(task_ids), exc)
            return
        except Exception:
            logger.exception("could not renew %d leases", len(task_ids))
            return
        with self._lock:
            lost = [task_id for task_id in lost if task_id in self._jobs]
        for task_id in lost:
            logger.warning(
                "task %s: its lease was taken over (this worker missed its renewals); "
                "its outcome will be dropped",
                task_id,
            )


def _outcome(request_method: str, result: Any) -> tuple[TaskStatus, str | None]:
    """
    Return the status and status message a finished task's *result* means.

    Always ``completed``, with no message: a ``tools/call`` result with
    ``isError: true`` is a tool execution error, not a protocol fault, and the
    Tasks extension (2026-07-28) keeps such a task ``completed``.  The
    2025-11-25 wire, which calls that task ``failed``, derives its status
    from the stored result (:func:`tasks_store.mcp.jsonrpc.wire_task_2025`).
    Only a protocol fault (an exception, a :class:`TaskError`) fails a task.
    """
    return TaskStatus.COMPLETED, None


def _clip(text: str) -> str:
    limit = _STATUS_MESSAGE_LIMIT
    return text if len(text) <= limit else f"{text[: limit - 3]}..."

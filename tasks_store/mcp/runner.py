"""
:class:`TaskRunner`: run a task's work in a thread pool and record the outcome.

``start`` creates the task, hands ``fn(ctx)`` to a worker and returns the
``CreateTaskResult`` at once.  When ``fn`` returns, its value completes the
task (a ``CallToolResult`` with ``isError: true`` included: the store keeps
the Tasks extension's meaning, and the 2025-11-25 wire reports such a task
``failed``); when it raises, the task fails.  A task that ended meanwhile (cancelled
by ``tasks/cancel``, or completed by ``fn`` through its context) keeps its
end: the late completion is dropped, quietly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

from ..errors import (
    INTERNAL_MESSAGE,
    Expired,
    InvalidParams,
    InvalidTransition,
    NotFound,
    TaskError,
)
from ..records import MODEL_IMMEDIATE_RESPONSE_META_KEY, CreateTaskResult, JsonRpcError
from ..status import TaskStatus
from ..store import TaskStore
from ..store._base import require_store
from .context import TaskContext

__all__ = ["TaskFn", "TaskRunner"]

logger = logging.getLogger("tasks_store")

#: A task's work: receives its context, returns the task's result.
TaskFn = Callable[[TaskContext], Any]

_STATUS_MESSAGE_LIMIT = 200


class TaskRunner:
    """
    Run tasks' work on a :class:`~concurrent.futures.ThreadPoolExecutor`.

    Args:
        store: where the tasks live.
        max_workers: worker threads; tasks beyond that wait their turn
            (still ``working`` in the store).

    Raises:
        ValueError: *max_workers* is not a positive int.

    Use it as a context manager, or call :meth:`shutdown`; leaving the
    ``with`` block waits for running work.
    """

    def __init__(self, store: TaskStore, *, max_workers: int = 8) -> None:
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            msg = f"max_workers must be a positive int, got {max_workers!r}"
            raise ValueError(msg)
        self._store = require_store(store)
        self._executor = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="tasks_store-runner"
        )
        self._lock = threading.Lock()  # guards _running and _closed
        self._running: dict[str, tuple[str, Future[None]]] = {}
        self._closed = False

    @property
    def store(self) -> TaskStore:
        """The store tasks are created in."""
        return self._store

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
        """Return how many started tasks have not finished running yet."""
        with self._lock:
            return len(self._running)

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
        Create a task and run ``fn(ctx)`` for it in a worker.

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
            TaskError: from ``store.create`` (quota, ttl, anonymous owner).
        """
        if not callable(fn):
            msg = f"fn must be callable, got {type(fn).__name__}"
            raise TypeError(msg)
        with self._lock:
            if self._closed:
                msg = "TaskRunner is shut down"
                raise RuntimeError(msg)
        record = self._store.create(owner_id, request_method, ttl)
        task_id = record.task_id
        ctx = TaskContext(self._store, task_id, owner_id)
        with self._lock:
            if self._closed:
                future = None
            else:
                future = self._executor.submit(self._run, ctx, request_method, fn)
                self._running[task_id] = (owner_id, future)
        if future is None:
            self._finish(ctx, TaskStatus.CANCELLED, "The server is shutting down.", None)
            msg = "TaskRunner is shut down"
            raise RuntimeError(msg)
        future.add_done_callback(lambda _: self._forget(task_id))
        meta = None
        if immediate_response is not None:
            meta = {MODEL_IMMEDIATE_RESPONSE_META_KEY: immediate_response}
        return CreateTaskResult(task=record.task, meta=meta).to_wire()

    def shutdown(self, *, wait: bool = True, cancel: bool = False) -> None:
        """
        Stop accepting work, and wait for or cancel what is under way.

        Args:
            wait: block until every worker thread has finished.
            cancel: first cancel every task that has not ended, in the
                store (their handlers see ``ctx.is_cancelled()``), and drop
                queued work that has not started.

        Idempotent.
        """
        with self._lock:
            self._closed = True
            running = list(self._running.items())
        if cancel:
            for task_id, (owner_id, future) in running:
                future.cancel()
                ctx = TaskContext(self._store, task_id, owner_id)
                self._finish(ctx, TaskStatus.CANCELLED, "The server is shutting down.", None)
        self._executor.shutdown(wait=wait, cancel_futures=cancel)

    def _forget(self, task_id: str) -> None:
        with self._lock:
            self._running.pop(task_id, None)

    # -- worker ---------------------------------------------------------------

    def _run(self, ctx: TaskContext, request_method: str, fn: TaskFn) -> None:
        """Run *fn* and record its outcome.  Never raises."""
        try:
            self._run_once(ctx, request_method, fn)
        except Exception:
            logger.exception("task %s: could not record the outcome", ctx.task_id)

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

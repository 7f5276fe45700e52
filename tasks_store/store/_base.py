"""
The contract every task store keeps, and the audit log they share.

:class:`TaskStore` is a :class:`typing.Protocol`: its docstrings are the
contract, and ``tests/test_contract.py`` runs it against every backend.

Rules every method follows:

- Checks run in this order: the ids' types, then owner (:class:`NotFound`),
  then the other arguments (:class:`InvalidParams`), then expiry
  (:class:`Expired`, for changes only), then the operation's own rules.  A
  foreign caller always gets :class:`NotFound`, whatever else is wrong.
- An unknown id and another owner's id raise the same :class:`NotFound`.
- A failed call changes nothing.
- Every method that takes a status also takes its string value.
- ``status_message`` arguments replace the previous message; None clears it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from ..config import StoreConfig, TaskSecurityConfig
from ..records import TaskPage, TaskRecord
from ..status import TaskStatus

__all__ = [
    "StoreSettings",
    "TaskStore",
    "log_created",
    "log_foreign",
    "log_status",
    "logger",
    "require_store",
]

logger = logging.getLogger("tasks_store")


def log_foreign(task_id: str, caller: str, owner: str) -> None:
    """Log, at WARNING, a caller asking for a task another owner holds."""
    logger.warning(
        "task %s: denied to owner %r; it belongs to owner %r", task_id, caller, owner
    )


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

"""
Frozen records: the wire :class:`Task` and the stored :class:`TaskRecord`.

Records are never mutated.  A write builds a new record and swaps it in whole,
so a reader holding one always sees a consistent task.  A record keeps its
variables and result as canonical JSON text: reading ``record.variables`` or
``record.result`` decodes a fresh copy, so nothing a caller does to what it
got back can reach the store.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any

import attrs

from .status import TaskStatus

__all__ = [
    "MODEL_IMMEDIATE_RESPONSE_META_KEY",
    "RELATED_TASK_META_KEY",
    "CreateTaskResult",
    "JsonRpcError",
    "Task",
    "TaskPage",
    "TaskRecord",
    "related_task_meta",
]

RELATED_TASK_META_KEY = "io.modelcontextprotocol/related-task"
MODEL_IMMEDIATE_RESPONSE_META_KEY = "io.modelcontextprotocol/model-immediate-response"

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def related_task_meta(task_id: str) -> dict[str, Any]:
    """
    Return the ``_meta`` entry that ties a message to a task.

    >>> related_task_meta("786af6b0")
    {'io.modelcontextprotocol/related-task': {'taskId': '786af6b0'}}
    """
    return {RELATED_TASK_META_KEY: {"taskId": task_id}}


@attrs.frozen(kw_only=True)
class Task:
    """
    A task as the protocol shows it (``$defs.Task`` of the 2025-11-25 schema).

    Timestamps are ISO 8601 strings; the store writes them in UTC with
    milliseconds and a ``Z`` (``2025-11-25T10:30:00.000Z``).  ``ttl`` and
    ``poll_interval`` are milliseconds; ``ttl=None`` means unlimited.
    """

    task_id: str
    status: TaskStatus
    status_message: str | None = None
    created_at: str
    last_updated_at: str
    ttl: int | None
    poll_interval: int | None = None
    meta: Mapping[str, Any] | None = None

    def to_wire(self) -> dict[str, Any]:
        """
        Return the protocol's JSON object (camelCase keys).

        ``ttl`` is always present; ``statusMessage``, ``pollInterval`` and
        ``_meta`` only when set.
        """
        return _wire.task_to_wire(self)

    @classmethod
    def from_wire(cls, data: Any) -> Task:
        """
        Build a Task from the protocol's JSON object.

        Unknown keys are ignored, as the schema allows.

        Raises:
            InvalidParams: *data* is not a valid ``Task``; the message names
                each offending key.
        """
        return _wire.task_from_wire(data)


@attrs.frozen(kw_only=True)
class CreateTaskResult:
    """The answer to a task-augmented request: the new task and optional ``_meta``."""

    task: Task
    meta: Mapping[str, Any] | None = None

    def to_wire(self) -> dict[str, Any]:
        """Return ``{"task": {...}, "_meta"?: {...}}``."""
        return _wire.create_result_to_wire(self)

    @classmethod
    def from_wire(cls, data: Any) -> CreateTaskResult:
        """
        Build a CreateTaskResult from its JSON object.

        Raises:
            InvalidParams: *data* is not a valid ``CreateTaskResult``.
        """
        return _wire.create_result_from_wire(data)


@attrs.frozen
class JsonRpcError:
    """
    A JSON-RPC error, stored as a task's result to mean "the request failed".

    Every store round-trips it: ``get_result`` gives back an equal object.
    """

    code: int
    message: str
    data: Any = None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-RPC error object (``data`` only when set)."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


@attrs.frozen(kw_only=True)
class TaskRecord:
    """
    What a store holds for one task, and what it hands out.

    Args:
        task: the wire view, kept current by the store.
        owner_id: who created the task; only they can see it.
        request_method: the request that started it (``"tools/call"``).
        created_ms: creation time, epoch milliseconds (orders ``list``).
        seq: creation sequence number (breaks ties in ``list``).
        expires_at_ms: epoch milliseconds at which the task expires; None
            for never.
        variables_json: the variables as compact JSON text.
        result_json: the result as JSON text; None until one is set.

    Prefer the decoded views :attr:`variables`, :attr:`result` and
    :attr:`expires_at`.
    """

    task: Task
    owner_id: str
    request_method: str
    created_ms: int
    seq: int
    expires_at_ms: int | None
    variables_json: str = "{}"
    result_json: str | None = None

    @property
    def task_id(self) -> str:
        """The task's id."""
        return self.task.task_id

    @property
    def status(self) -> TaskStatus:
        """The task's status."""
        return self.task.status

    @property
    def variables(self) -> Mapping[str, Any]:
        """
        The variables, as a read-only mapping decoded afresh on each access.

        Cost: O(size of the variables).
        """
        if self.variables_json == "{}":
            return _EMPTY
        return MappingProxyType(json.loads(self.variables_json))

    @property
    def has_result(self) -> bool:
        """Whether a result has been set."""
        return self.result_json is not None

    @property
    def result(self) -> Any:
        """
        The result, decoded afresh on each access; None until one is set.

        A :class:`JsonRpcError` stored as the result comes back as one.
        """
        if self.result_json is None:
            return None
        return _wire.load_result(self.result_json)

    @property
    def expires_at(self) -> datetime | None:
        """When the task expires (aware, UTC); None for never."""
        if self.expires_at_ms is None:
            return None
        return datetime.fromtimestamp(self.expires_at_ms / 1000, timezone.utc)

    def is_expired(self, now: float | None = None) -> bool:
        """
        Return whether the task has expired at *now* (epoch seconds).

        *now* defaults to the wall clock.  A task expires at the instant
        ``expires_at``: ``is_expired(expires_at)`` is True.
        """
        if self.expires_at_ms is None:
            return False
        if now is None:
            now = time.time()
        return int(now * 1000) >= self.expires_at_ms

    def to_wire_task(self) -> Task:
        """Return the wire :class:`Task`."""
        return self.task

    def to_wire_task_with_variables(self) -> Task:
        """
        Return the wire Task with the variables merged into ``meta``.

        Variables win over ``meta`` keys of the same name.  Without
        variables, the Task is returned unchanged.
        """
        if self.variables_json == "{}":
            return self.task
        meta = dict(self.task.meta or {})
        meta.update(json.loads(self.variables_json))
        return attrs.evolve(self.task, meta=meta)


@attrs.frozen
class TaskPage:
    """One page of ``list``: the tasks, newest first, and the next cursor."""

    tasks: tuple[TaskRecord, ...]
    next_cursor: str | None = None


from . import wire as _wire  # noqa: E402  (wire imports the classes above)

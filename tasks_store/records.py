"""
Frozen records: the wire :class:`Task` and the stored :class:`TaskRecord`.

Records are never mutated.  A write builds a new record and swaps it in whole,
so a reader holding one always sees a consistent task.  A record keeps its
variables and result as canonical JSON text: reading ``record.variables`` or
``record.result`` decodes a fresh copy, so nothing a caller does to what it
got back can reach the store.

The records' wire form lives here too, below the classes: :data:`converter`,
the one cattrs converter every ``to_wire``/``from_wire`` goes through (strict:
a ``str`` field takes only a ``str``, an ``int`` field only an int; unknown
keys are tolerated, as the schema does), and :func:`load_result`.  camelCase
exists only in this module; how each :class:`Task` field is encoded:

=================  ==================  ======================================
attribute          JSON key            encoding
=================  ==================  ======================================
task_id            taskId              string
status             status              one of the five status strings
status_message     statusMessage       string, omitted when None
created_at         createdAt           ISO 8601 string (kept as given)
last_updated_at    lastUpdatedAt       ISO 8601 string (kept as given)
ttl                ttl                 integer ms, or null (always present)
poll_interval      pollInterval        integer ms, omitted when None
meta               _meta               object, omitted when None
=================  ==================  ======================================

:mod:`tasks_store.wire` (the JSON text the store keeps) imports this module,
never the reverse.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .errors import InvalidParams
from .status import TaskStatus, coerce_status

__all__ = [
    "MODEL_IMMEDIATE_RESPONSE_META_KEY",
    "RELATED_TASK_META_KEY",
    "CreateTaskResult",
    "JsonRpcError",
    "Task",
    "TaskPage",
    "TaskRecord",
    "converter",
    "load_result",
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
        return _task_to_wire(self)

    @classmethod
    def from_wire(cls, data: Any) -> Task:
        """
        Build a Task from the protocol's JSON object.

        Unknown keys are ignored, as the schema allows.

        Raises:
            InvalidParams: *data* is not a valid ``Task``; the message names
                each offending key.
        """
        return _task_from_wire(data)


@attrs.frozen(kw_only=True)
class CreateTaskResult:
    """The answer to a task-augmented request: the new task and optional ``_meta``."""

    task: Task
    meta: Mapping[str, Any] | None = None

    def to_wire(self) -> dict[str, Any]:
        """Return ``{"task": {...}, "_meta"?: {...}}``."""
        return _create_to_wire(self)

    @classmethod
    def from_wire(cls, data: Any) -> CreateTaskResult:
        """
        Build a CreateTaskResult from its JSON object.

        Raises:
            InvalidParams: *data* is not a valid ``CreateTaskResult``.
        """
        return _create_from_wire(data)


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
        inputs_json: the task's input requests as compact JSON text: ``"{}"``
            until the task first asks its client for input, then
            ``{"issued": [every key ever issued, in order], "open": {key:
            request still outstanding}, "answered": {key: response not yet
            consumed by the tool}}`` (see :mod:`tasks_store.rules`); once
            the task has ended nothing in it is outstanding.  Never part of
            the wire ``Task``.

    Prefer the decoded views :attr:`variables`, :attr:`result`,
    :attr:`input_requests`, :attr:`input_responses` and :attr:`expires_at`.
    """

    task: Task
    owner_id: str
    request_method: str
    created_ms: int
    seq: int
    expires_at_ms: int | None
    variables_json: str = "{}"
    result_json: str | None = None
    inputs_json: str = "{}"

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
        return load_result(self.result_json)

    @property
    def input_requests(self) -> Mapping[str, Any]:
        """
        The input requests still outstanding, key to ``{"method", "params"}``,
        decoded afresh on each access (read-only).  Empty once every request
        is answered or withdrawn, and once the task has ended.
        """
        if self.inputs_json == "{}" or self.task.status.is_terminal:
            return _EMPTY
        return MappingProxyType(json.loads(self.inputs_json)["open"])

    @property
    def input_responses(self) -> Mapping[str, Any]:
        """
        The responses received and not yet consumed by the waiting tool, key
        to response (a :class:`JsonRpcError` when the client answered with an
        error), decoded afresh on each access (read-only).  Empty once the
        task has ended.
        """
        if self.inputs_json == "{}" or self.task.status.is_terminal:
            return _EMPTY
        answered = json.loads(self.inputs_json)["answered"]
        return MappingProxyType({key: _load_value(value) for key, value in answered.items()})

    @property
    def input_keys(self) -> tuple[str, ...]:
        """Every input request key the task ever issued, in order (none is ever reused)."""
        if self.inputs_json == "{}":
            return ()
        return tuple(json.loads(self.inputs_json)["issued"])

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


# -- the wire form: the converter ---------------------------------------------

converter = cattrs.Converter(detailed_validation=True)
"""The converter for the protocol's JSON (camelCase keys, strict types)."""


def _strict(kind: type, name: str) -> Any:
    def structure(value: Any, _: Any) -> Any:
        if type(value) is bool and kind is not bool:
            msg = f"expected {name}, got a boolean"
            raise TypeError(msg)
        if isinstance(value, kind):
            return value
        if kind is int and isinstance(value, float) and value.is_integer():
            return int(value)  # JSON Schema's "integer" includes 5.0
        msg = f"expected {name}, got {type(value).__name__}"
        raise TypeError(msg)

    return structure


converter.register_structure_hook(str, _strict(str, "a string"))
converter.register_structure_hook(int, _strict(int, "an integer"))
converter.register_structure_hook(bool, _strict(bool, "a boolean"))
converter.register_structure_hook(TaskStatus, lambda v, _: coerce_status(v))
converter.register_unstructure_hook(TaskStatus, lambda s: s.value)


def _structure_object(value: Any, _: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        msg = f"expected an object, got {type(value).__name__}"
        raise TypeError(msg)
    return value


def _is_object(tp: Any) -> bool:
    return bool(tp == Mapping[str, Any])


converter.register_structure_hook_func(_is_object, _structure_object)
converter.register_unstructure_hook_func(_is_object, dict)

# ISO 8601 date-time: a date, a time (fraction optional), an optional offset.
_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:[.,](\d+))?([Zz]|[+-]\d{2}:?\d{2})?"
)


def _structure_timestamp(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        msg = f"expected an ISO 8601 timestamp string, got {type(value).__name__}"
        raise TypeError(msg)
    match = _TIMESTAMP.fullmatch(value)
    ok = match is not None
    if match is not None:
        fraction, offset = match.group(1), match.group(2)
        text = value[:19]
        if fraction:
            text += "." + (fraction + "000000")[:6]
        if offset:
            offset = "+00:00" if offset in "Zz" else offset
            if ":" not in offset:
                offset = f"{offset[:3]}:{offset[3:]}"
            text += offset
        try:
            datetime.fromisoformat(text.replace("t", "T"))
        except ValueError:
            ok = False
    if not ok:
        msg = f"expected an ISO 8601 timestamp, got {value[:64]!r}"
        raise ValueError(msg)
    return value


_CAMEL = {
    "task_id": "taskId",
    "status_message": "statusMessage",
    "created_at": "createdAt",
    "last_updated_at": "lastUpdatedAt",
    "poll_interval": "pollInterval",
    "meta": "_meta",
}
_OMIT_IF_NONE = ("status_message", "poll_interval", "meta")
_TIMESTAMPS = ("created_at", "last_updated_at")


def _overrides(cls: type, omit_if_none: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        a.name: override(
            rename=_CAMEL.get(a.name),
            omit_if_default=a.name in omit_if_none,
            struct_hook=_structure_timestamp if a.name in _TIMESTAMPS else None,
        )
        for a in cls.__attrs_attrs__  # type: ignore[attr-defined]
    }


def _objects_only(structure: Any) -> Any:
    """Wrap a class's structure hook so a non-object says so (not a TypeError from indexing)."""

    def structure_object(value: Any, cls: Any) -> Any:
        if not isinstance(value, dict):
            msg = f"expected an object, got {type(value).__name__}"
            raise TypeError(msg)
        return structure(value, cls)

    return structure_object


_T = TypeVar("_T")


def _codec(
    cls: type[_T], what: str
) -> tuple[Callable[[_T], dict[str, Any]], Callable[[Any], _T]]:
    """
    Register *cls*'s hooks on :data:`converter`; return its (to_wire, from_wire).

    *what* names the class in the messages of :class:`InvalidParams`.
    """
    structure = make_dict_structure_fn(cls, converter, **_overrides(cls))
    unstructure = make_dict_unstructure_fn(cls, converter, **_overrides(cls, _OMIT_IF_NONE))
    converter.register_structure_hook(cls, _objects_only(structure))
    converter.register_unstructure_hook(cls, unstructure)

    def from_wire(data: Any) -> _T:
        if not isinstance(data, dict):
            msg = f"Invalid {what}: expected a JSON object, got {type(data).__name__}"
            raise InvalidParams(msg)
        try:
            return structure(data, cls)
        except Exception as exc:  # cattrs groups every field's error
            lines = cattrs.transform_error(exc, path="$", format_exception=_reason)
            problems = "; ".join(_PATH_KEY.sub(_camel_path, line) for line in lines)
            msg = f"Invalid {what}: {problems}"
            raise InvalidParams(msg) from None

    return unstructure, from_wire


_PATH_KEY = re.compile(r"\.(\w+)")


def _camel_path(match: re.Match[str]) -> str:
    return "." + _CAMEL.get(match.group(1), match.group(1))


def _reason(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, InvalidParams):
        return exc.message
    return str(exc) or type(exc).__name__


# Task first: CreateTaskResult's hooks call Task's.
_task_to_wire, _task_from_wire = _codec(Task, "Task")
_create_to_wire, _create_from_wire = _codec(CreateTaskResult, "CreateTaskResult")


# -- results ------------------------------------------------------------------

#: The key a stored :class:`JsonRpcError` result is tagged with
#: (``tasks_store.wire.dump_result`` writes it).
_ERROR_TAG = "__tasks_store.JsonRpcError__"


def load_result(text: str) -> Any:
    """Decode a result's JSON text (:func:`tasks_store.wire.dump_result` wrote it)."""
    return _load_value(json.loads(text))


def _load_value(value: Any) -> Any:
    """A decoded result or input response: a tagged error becomes a :class:`JsonRpcError`."""
    if type(value) is dict and len(value) == 1 and _ERROR_TAG in value:
        error = value[_ERROR_TAG]
        return JsonRpcError(error["code"], error["message"], error.get("data"))
    return value

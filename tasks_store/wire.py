"""
The protocol's JSON: one cattrs converter, and the JSON text the store keeps.

camelCase exists only in this module.  :data:`converter` is the converter
every ``to_wire``/``from_wire`` goes through; it is strict (a ``str`` field
takes only a ``str``, an ``int`` field only an int) and tolerates unknown keys,
as the schema does.  How each field is encoded:

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

Variables and results are stored as compact JSON text (:func:`dump_json`),
which is also how their size is measured.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .errors import InvalidParams
from .records import CreateTaskResult, JsonRpcError, Task
from .status import TaskStatus, coerce_status

__all__ = [
    "check_json",
    "compact_json",
    "converter",
    "dump_json",
    "dump_result",
    "format_timestamp",
    "load_result",
]

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


for _cls in (Task, CreateTaskResult):
    converter.register_structure_hook(
        _cls, _objects_only(make_dict_structure_fn(_cls, converter, **_overrides(_cls)))
    )
    converter.register_unstructure_hook(
        _cls,
        make_dict_unstructure_fn(
            _cls, converter, **_overrides(_cls, _OMIT_IF_NONE)
        ),
    )
_task_to_wire = converter.get_unstructure_hook(Task)
_create_to_wire = converter.get_unstructure_hook(CreateTaskResult)


def _structure(data: Any, cls: type[Any], what: str) -> Any:
    if not isinstance(data, dict):
        msg = f"Invalid {what}: expected a JSON object, got {type(data).__name__}"
        raise InvalidParams(msg)
    try:
        return converter.structure(data, cls)
    except Exception as exc:  # cattrs groups every field's error
        lines = cattrs.transform_error(exc, path="$", format_exception=_reason)
        problems = "; ".join(_PATH_KEY.sub(_camel_path, line) for line in lines)
        msg = f"Invalid {what}: {problems}"
        raise InvalidParams(msg) from None


_PATH_KEY = re.compile(r"\.(\w+)")


def _camel_path(match: re.Match[str]) -> str:
    return "." + _CAMEL.get(match.group(1), match.group(1))


def _reason(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, InvalidParams):
        return exc.message
    return str(exc) or type(exc).__name__


def task_to_wire(task: Task) -> dict[str, Any]:
    """Return *task* as the protocol's JSON object."""
    return _task_to_wire(task)  # type: ignore[no-any-return]


def task_from_wire(data: Any) -> Task:
    """Build a :class:`Task` from JSON; :class:`InvalidParams` if invalid."""
    return _structure(data, Task, "Task")  # type: ignore[no-any-return]


def create_result_to_wire(result: CreateTaskResult) -> dict[str, Any]:
    """Return *result* as the protocol's JSON object."""
    return _create_to_wire(result)  # type: ignore[no-any-return]


def create_result_from_wire(data: Any) -> CreateTaskResult:
    """Build a :class:`CreateTaskResult` from JSON; :class:`InvalidParams` if invalid."""
    return _structure(data, CreateTaskResult, "CreateTaskResult")  # type: ignore[no-any-return]


# -- timestamps ---------------------------------------------------------------

_second_cache: tuple[int, str] = (-1, "")


def format_timestamp(epoch_ms: int) -> str:
    """
    Return *epoch_ms* as ISO 8601 UTC with milliseconds and ``Z``.

    >>> format_timestamp(1764066600123)
    '2025-11-25T10:30:00.123Z'

    Cost: O(1); the date part is cached per second.
    """
    global _second_cache
    seconds, millis = divmod(epoch_ms, 1000)
    cached_second, prefix = _second_cache  # one read: safe against other threads
    if cached_second != seconds:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _second_cache = (seconds, prefix)
    return f"{prefix}.{millis:03d}Z"


# -- JSON text of variables and results ---------------------------------------

_PLAIN = frozenset({str, int, bool, type(None)})


class _NotJson(Exception):
    """Raised inside :func:`_walk`; ``where`` collects the path, innermost first."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.where: list[str] = []


def _walk(value: Any) -> None:
    # No path is built unless something is wrong: this runs on every write.
    kind = type(value)
    if kind in _PLAIN:
        return
    if kind is dict or isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise _NotJson(f"has a key of type {type(key).__name__}; keys must be str")
            try:
                _walk(item)
            except _NotJson as bad:
                bad.where.append(f"[{key!r}]")
                raise
        return
    if kind is list or kind is tuple or isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            try:
                _walk(item)
            except _NotJson as bad:
                bad.where.append(f"[{index}]")
                raise
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _NotJson(f"is {value!r}, which JSON cannot represent")
        return
    if isinstance(value, (str, int)):  # subclasses; bool is an int
        return
    raise _NotJson(f"is of type {type(value).__name__}, which is not a JSON value")


def check_json(value: Any, path: str) -> None:
    """
    Raise :class:`InvalidParams` unless *value* is plain JSON.

    Plain JSON: dicts with str keys, lists and tuples, str, int, finite float,
    bool and None; nested no deeper than the interpreter's recursion limit
    (a circular value is refused the same way).  *path* names the value in
    the message, which also gives the offending item's place.
    """
    try:
        _walk(value)
    except _NotJson as bad:
        msg = f"{path}{''.join(reversed(bad.where))} {bad.reason}"
        raise InvalidParams(msg) from None
    except RecursionError:
        msg = f"{path} is nested too deeply (or contains itself)"
        raise InvalidParams(msg) from None


compact_json = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), check_circular=False
).encode
"""Return a JSON value as compact text, unchecked (one encoder, built once)."""


def dump_json(value: Any, what: str = "value") -> str:
    """
    Return *value* as compact JSON text (UTF-8, no ASCII escaping).

    Tuples become arrays.  *what* names the value in error messages.

    Raises:
        InvalidParams: *value* holds something JSON cannot encode exactly: a
            non-string key, NaN or infinity, a lone surrogate, another type.
    """
    check_json(value, what)
    text = compact_json(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        msg = f"{what} holds a string that is not valid Unicode (lone surrogate)"
        raise InvalidParams(msg) from None
    return text


_ERROR_TAG = "__tasks_store.JsonRpcError__"


def dump_result(result: Any) -> str:
    """
    Return a task result as JSON text; a :class:`JsonRpcError` is tagged.

    Raises:
        InvalidParams: *result* is not JSON-encodable.
    """
    if isinstance(result, JsonRpcError):
        return dump_json({_ERROR_TAG: result.to_dict()}, "result")
    return dump_json(result, "result")


def load_result(text: str) -> Any:
    """Decode what :func:`dump_result` wrote."""
    value = json.loads(text)
    if type(value) is dict and len(value) == 1 and _ERROR_TAG in value:
        error = value[_ERROR_TAG]
        return JsonRpcError(error["code"], error["message"], error.get("data"))
    return value

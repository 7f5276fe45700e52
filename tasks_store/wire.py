"""
The protocol's JSON: timestamps, and the JSON text the store keeps.

Variables and results are stored as compact JSON text (:func:`dump_json`),
which is also how their size is measured; :func:`check_json` says whether a
value is plain JSON.  :data:`converter`, the cattrs converter behind every
``to_wire``/``from_wire`` (camelCase and the field table), is defined with
the records in :mod:`tasks_store.records` and re-exported here, as is
:func:`load_result`.  This module imports :mod:`tasks_store.records`, never
the reverse.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import Any

from .errors import InvalidParams
from .records import _ERROR_TAG, CreateTaskResult, JsonRpcError, Task, converter, load_result

__all__ = [
    "check_json",
    "compact_json",
    "converter",
    "dump_json",
    "dump_result",
    "format_timestamp",
    "json_type",
    "load_result",
]


def task_to_wire(task: Task) -> dict[str, Any]:
    """Return *task* as the protocol's JSON object (:meth:`Task.to_wire`)."""
    return task.to_wire()


def task_from_wire(data: Any) -> Task:
    """Build a :class:`Task` from JSON (:meth:`Task.from_wire`)."""
    return Task.from_wire(data)


def create_result_to_wire(result: CreateTaskResult) -> dict[str, Any]:
    """Return *result* as the protocol's JSON object (:meth:`CreateTaskResult.to_wire`)."""
    return result.to_wire()


def create_result_from_wire(data: Any) -> CreateTaskResult:
    """Build a :class:`CreateTaskResult` from JSON; :class:`InvalidParams` if invalid."""
    return CreateTaskResult.from_wire(data)


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


def dump_result(result: Any) -> str:
    """
    Return a task result as JSON text; a :class:`JsonRpcError` is tagged.

    Raises:
        InvalidParams: *result* is not JSON-encodable.
    """
    if isinstance(result, JsonRpcError):
        return dump_json({_ERROR_TAG: result.to_dict()}, "result")
    return dump_json(result, "result")


def json_type(value: object) -> str:
    """
    Name *value*'s JSON type, for error messages ("a string", "null", ...).

    >>> json_type([1]), json_type(None), json_type(True)
    ('an array', 'null', 'a boolean')
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__

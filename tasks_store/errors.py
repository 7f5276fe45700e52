"""
Errors raised by tasks_store, and the JSON-RPC codes they answer with.

Every error is a :class:`TaskError` with a JSON-RPC ``code``; some also
subclass the builtin they resemble (:class:`InvalidParams` is a
:class:`ValueError`, :class:`WaitTimeout` a :class:`TimeoutError`).  Messages
name the task and the rule that was broken, never an owner: a caller must not
learn who owns a task that is not theirs.

This module is the one error table: each JSON-RPC code constant is defined
here once, each class's ``code`` is the only place a class gets its code, and
:meth:`TaskError.to_jsonrpc_error` builds every error object (:func:`error_object`
for an arbitrary exception).  The protocol-level errors of a JSON-RPC server
(:class:`ParseError`, :class:`InvalidRequest`, :class:`MethodNotFound`) are
here too, so that every error object is built the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

__all__ = [
    "HEADER_MISMATCH",
    "INTERNAL_ERROR",
    "INTERNAL_MESSAGE",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "MISSING_REQUIRED_CLIENT_CAPABILITY",
    "PARSE_ERROR",
    "UNSUPPORTED_PROTOCOL_VERSION",
    "AnonymousAccessDenied",
    "Expired",
    "HeaderMismatch",
    "InputNotAvailable",
    "InputRequestFailed",
    "InputSizeExceeded",
    "InvalidCursor",
    "InvalidParams",
    "InvalidRequest",
    "InvalidRequestState",
    "InvalidTransition",
    "MethodNotFound",
    "MissingRequiredClientCapability",
    "NotFound",
    "NotReady",
    "ParseError",
    "ResourceExhausted",
    "StoreError",
    "TaskEnded",
    "TaskError",
    "TtlExceeded",
    "UnsupportedProtocolVersion",
    "VariableSizeExceeded",
    "WaitTimeout",
    "error_code",
    "error_object",
]

# The JSON-RPC 2.0 error codes (https://www.jsonrpc.org/specification#error_object).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

# The codes MCP 2026-07-28 reserves in -32020..-32099 (basic/index, "Error Codes").
HEADER_MISMATCH = -32020
MISSING_REQUIRED_CLIENT_CAPABILITY = -32021
UNSUPPORTED_PROTOCOL_VERSION = -32022

#: The message of an internal fault that is not a :class:`TaskError`: it
#: reveals nothing (the details go to the log only).
INTERNAL_MESSAGE = "Internal error"


class TaskError(Exception):
    """
    Root of every error tasks_store raises on purpose.

    ``code`` is the JSON-RPC error code a server should answer with;
    :meth:`to_jsonrpc_error` builds that error object.
    """

    code: ClassVar[int] = INTERNAL_ERROR
    #: Constructor arguments, in order; also what ``data`` and pickling use.
    _fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), tuple(getattr(self, f) for f in self._fields))

    def _data(self) -> dict[str, Any] | None:
        return None

    def to_jsonrpc_error(self) -> dict[str, Any]:
        """
        Return the JSON-RPC error object: ``{"code", "message", "data"?}``.

        ``data`` carries the error's fields in camelCase (never an owner).
        """
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        data = self._data()
        if data is not None:
            error["data"] = data
        return error


class InvalidParams(TaskError, ValueError):
    """An argument has the wrong type or value."""

    code = INVALID_PARAMS
    _fields = ("message",)


class NotFound(TaskError, LookupError):
    """
    No task with this id is visible to the caller.

    Raised alike for an unknown id and for another owner's task: same message,
    same fields.
    """

    code = INVALID_PARAMS
    _fields = ("task_id",)

    def __init__(self, task_id: str) -> None:
        super().__init__(f"Task not found: {_show(task_id)}")
        self.task_id = task_id

    def _data(self) -> dict[str, Any]:
        return {"taskId": self.task_id}


class InvalidTransition(TaskError):
    """The task's status cannot move to the requested one."""

    code = INVALID_PARAMS
    _fields = ("task_id", "from_status", "to_status", "suggested_action")

    def __init__(
        self,
        task_id: str,
        from_status: str,
        to_status: str,
        suggested_action: str | None = None,
    ) -> None:
        from_s, to_s = str(from_status), str(to_status)
        msg = f"Task {_show(task_id)}: cannot change status from {from_s} to {to_s}"
        if suggested_action:
            msg = f"{msg}. {suggested_action}"
        super().__init__(msg)
        self.task_id = task_id
        self.from_status = from_status
        self.to_status = to_status
        self.suggested_action = suggested_action

    def _data(self) -> dict[str, Any]:
        data = {
            "taskId": self.task_id,
            "fromStatus": str(self.from_status),
            "toStatus": str(self.to_status),
        }
        if self.suggested_action:
            data["suggestedAction"] = self.suggested_action
        return data


class Expired(TaskError):
    """The task outlived its TTL: it can still be read, no longer changed."""

    code = INVALID_PARAMS
    _fields = ("task_id", "expired_at")

    def __init__(self, task_id: str, expired_at: datetime) -> None:
        super().__init__(f"Task {_show(task_id)} expired at {_iso(expired_at)}")
        self.task_id = task_id
        self.expired_at = expired_at

    def _data(self) -> dict[str, Any]:
        return {"taskId": self.task_id, "expiredAt": _iso(self.expired_at)}


class NotReady(TaskError):
    """The task has no result yet: it is not terminal, or ended without one."""

    code = INVALID_PARAMS
    _fields = ("task_id", "current_status")

    def __init__(self, task_id: str, current_status: str) -> None:
        status = str(current_status)
        super().__init__(f"Task {_show(task_id)} has no result (status: {status})")
        self.task_id = task_id
        self.current_status = current_status

    def _data(self) -> dict[str, Any]:
        return {"taskId": self.task_id, "status": str(self.current_status)}


class VariableSizeExceeded(TaskError):
    """The merged variables would encode to more bytes than allowed."""

    code = INVALID_PARAMS
    _fields = ("limit_bytes", "actual_bytes")

    def __init__(self, limit_bytes: int, actual_bytes: int) -> None:
        super().__init__(
            f"Task variables would take {actual_bytes} bytes of JSON; "
            f"the limit is {limit_bytes}"
        )
        self.limit_bytes = limit_bytes
        self.actual_bytes = actual_bytes

    def _data(self) -> dict[str, Any]:
        return {"limitBytes": self.limit_bytes, "actualBytes": self.actual_bytes}


class TtlExceeded(TaskError):
    """The requested TTL is above the store's ceiling (it is never clamped)."""

    code = INVALID_PARAMS
    _fields = ("requested_ms", "max_ms")

    def __init__(self, requested_ms: int, max_ms: int) -> None:
        super().__init__(
            f"Requested ttl of {requested_ms} ms exceeds the maximum of {max_ms} ms"
        )
        self.requested_ms = requested_ms
        self.max_ms = max_ms

    def _data(self) -> dict[str, Any]:
        return {"requestedMs": self.requested_ms, "maxMs": self.max_ms}


class AnonymousAccessDenied(TaskError):
    """The caller has no identity and the store does not allow anonymous use."""

    code = INVALID_PARAMS

    def __init__(self) -> None:
        super().__init__(
            "Anonymous access to tasks is disabled; authenticate, or send a "
            "client or session id"
        )


class InvalidCursor(TaskError):
    """A ``list`` cursor is malformed or was not issued to this caller."""

    code = INVALID_PARAMS
    _fields = ("cursor",)

    def __init__(self, cursor: object) -> None:
        text = repr(cursor)
        if len(text) > 80:
            text = text[:77] + "..."
        super().__init__(f"Invalid cursor: {text}")
        self.cursor = cursor

    def _data(self) -> dict[str, Any] | None:
        return {"cursor": self.cursor} if isinstance(self.cursor, str) else None


class ResourceExhausted(TaskError):
    """The caller holds as many live tasks as allowed."""

    code = INTERNAL_ERROR
    _fields = ("suggested_action",)

    def __init__(self, suggested_action: str | None = None) -> None:
        msg = "Too many tasks"
        if suggested_action:
            msg = f"{msg}. {suggested_action}"
        super().__init__(msg)
        self.suggested_action = suggested_action

    def _data(self) -> dict[str, Any] | None:
        if not self.suggested_action:
            return None
        return {"suggestedAction": self.suggested_action}


class StoreError(TaskError):
    """The storage behind the store failed (a backend fault, not bad input)."""

    code = INTERNAL_ERROR
    _fields = ("message",)


class WaitTimeout(TaskError, TimeoutError):
    """:meth:`wait` gave up before the task reached a terminal status."""

    code = INTERNAL_ERROR
    _fields = ("task_id", "timeout")

    def __init__(self, task_id: str, timeout: float) -> None:
        super().__init__(
            f"Task {_show(task_id)} did not finish within {timeout:g} seconds"
        )
        self.task_id = task_id
        self.timeout = timeout

    def _data(self) -> dict[str, Any]:
        return {"taskId": self.task_id, "timeout": self.timeout}


# -- input requests: a task asking its client for input (issue 11) ------------


class InputSizeExceeded(VariableSizeExceeded):
    """
    A task's input requests and unconsumed responses would encode to more
    bytes than allowed (they share the variables' limit, counted apart).
    """

    def __init__(self, limit_bytes: int, actual_bytes: int) -> None:
        TaskError.__init__(
            self,
            f"Task input requests and responses would take {actual_bytes} bytes of JSON; "
            f"the limit is {limit_bytes}",
        )
        self.limit_bytes = limit_bytes
        self.actual_bytes = actual_bytes


class TaskEnded(TaskError):
    """
    The task ended (cancelled, or ended by someone else) while its tool was
    waiting for input: nobody will read what the tool would produce.
    """

    code = INVALID_PARAMS
    _fields = ("task_id", "status")

    def __init__(self, task_id: str, status: str) -> None:
        shown = str(status)
        super().__init__(f"Task {_show(task_id)} ended ({shown}) while waiting for input")
        self.task_id = task_id
        self.status = status

    def _data(self) -> dict[str, Any]:
        return {"taskId": self.task_id, "status": str(self.status)}


class InputRequestFailed(TaskError):
    """
    The client answered one of the task's input requests with a JSON-RPC
    error instead of a result (*error* is that error object).
    """

    code = INTERNAL_ERROR
    _fields = ("task_id", "key", "error")

    def __init__(self, task_id: str, key: str, error: dict[str, Any]) -> None:
        reason = error.get("message") if isinstance(error, dict) else None
        super().__init__(
            f"Task {_show(task_id)}: the client refused input request {_show(key)!r}: "
            f"{reason if isinstance(reason, str) else 'no message'}"
        )
        self.task_id = task_id
        self.key = key
        self.error = error

    def _data(self) -> dict[str, Any]:
        return {"taskId": self.task_id, "key": self.key, "clientError": self.error}


class InputNotAvailable(TaskError):
    """
    A tool asked its client for input where no input flow exists: an inline
    2025-11-25 call (only a task, or a 2026-07-28 request, can ask).
    """

    code = INVALID_PARAMS
    _fields = ("message",)


class InvalidRequestState(TaskError):
    """
    A 2026-07-28 retry carried a ``requestState`` that fails verification:
    tampered with, expired, issued for another request or another caller.
    """

    code = INVALID_PARAMS
    _fields = ("message",)


# -- protocol-level errors: the request itself is wrong, no task involved -------


class ParseError(TaskError):
    """The request body is not JSON."""

    code = PARSE_ERROR
    _fields = ("message",)


class InvalidRequest(TaskError):
    """The message is not a valid JSON-RPC 2.0 request object."""

    code = INVALID_REQUEST
    _fields = ("message",)


class MethodNotFound(TaskError):
    """The method does not exist here."""

    code = METHOD_NOT_FOUND
    _fields = ("message",)


# -- MCP 2026-07-28: the stateless wire's own errors (each answered with HTTP 400) -----


class HeaderMismatch(TaskError):
    """
    A standard HTTP header (``MCP-Protocol-Version``, ``Mcp-Method``,
    ``Mcp-Name``) is missing, malformed, or disagrees with the body.
    """

    code = HEADER_MISMATCH
    _fields = ("message",)


class MissingRequiredClientCapability(TaskError):
    """
    The request needs a client capability its ``_meta`` did not declare.

    *required_capabilities* is shaped like ``ClientCapabilities``, e.g.
    ``{"sampling": {}}`` or ``{"extensions": {"io.modelcontextprotocol/tasks": {}}}``;
    it is the error's ``data.requiredCapabilities``.

    >>> MissingRequiredClientCapability({"sampling": {}}).to_jsonrpc_error()["data"]
    {'requiredCapabilities': {'sampling': {}}}
    """

    code = MISSING_REQUIRED_CLIENT_CAPABILITY
    _fields = ("required_capabilities", "message")

    def __init__(
        self, required_capabilities: dict[str, Any], message: str | None = None
    ) -> None:
        if message is None:
            names = ", ".join(_capability_names(required_capabilities)) or "(none)"
            message = f"Missing required client capability: {names}"
        super().__init__(message)
        self.required_capabilities = required_capabilities

    def _data(self) -> dict[str, Any]:
        return {"requiredCapabilities": self.required_capabilities}


class UnsupportedProtocolVersion(TaskError):
    """The request's protocol version is not one this server serves on that wire."""

    code = UNSUPPORTED_PROTOCOL_VERSION
    _fields = ("requested", "supported", "message")

    def __init__(
        self, requested: str, supported: tuple[str, ...] | list[str], message: str | None = None
    ) -> None:
        if message is None:
            message = f"Unsupported protocol version: {_show(requested)}"
        super().__init__(message)
        self.requested = requested
        self.supported = tuple(supported)

    def _data(self) -> dict[str, Any]:
        return {"supported": list(self.supported), "requested": self.requested}


def _capability_names(capabilities: dict[str, Any]) -> list[str]:
    """``{"sampling": {}, "extensions": {"x/y": {}}}`` -> ``["sampling", "x/y"]``."""
    names: list[str] = []
    for name, value in capabilities.items():
        if name == "extensions" and isinstance(value, dict):
            names.extend(str(key) for key in value)
        else:
            names.append(str(name))
    return names


def error_code(exc: BaseException) -> int:
    """
    Return the JSON-RPC code for *exc*: its class's ``code``, else -32603.

    >>> error_code(NotFound("t-1"))
    -32602
    >>> error_code(KeyError("x"))
    -32603
    """
    return exc.code if isinstance(exc, TaskError) else INTERNAL_ERROR


def error_object(exc: BaseException) -> dict[str, Any]:
    """
    Return the JSON-RPC error object (``{"code", "message", "data"?}``) for *exc*.

    A :class:`TaskError` gives its own :meth:`~TaskError.to_jsonrpc_error`;
    anything else becomes the generic -32603 ``"Internal error"`` with no
    detail (log it yourself).

    >>> error_object(KeyError("/etc/passwd"))
    {'code': -32603, 'message': 'Internal error'}
    """
    if isinstance(exc, TaskError):
        return exc.to_jsonrpc_error()
    return TaskError(INTERNAL_MESSAGE).to_jsonrpc_error()


def _show(task_id: object) -> str:
    """Return *task_id* for a message, cut short if it is long."""
    text = str(task_id)
    return text if len(text) <= 100 else f"{text[:97]}..."


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")

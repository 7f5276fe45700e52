"""
The MCP ``tasks/*`` JSON-RPC handler: :class:`TasksRpc`.

One JSON-RPC 2.0 request in, one response out, shaped as the 2025-11-25
schema says.  Every error response is built by the error's own
``to_jsonrpc_error()`` (:func:`~tasks_store.errors.error_object` for any
exception); each code is written once, on its class in
:mod:`tasks_store.errors`.  :data:`ERROR_CODES` is a read-only view derived
from those classes, kept for callers that looked codes up in it.

Methods: ``tasks/get``, ``tasks/result``, ``tasks/list``, ``tasks/cancel``;
with tools configured (see :meth:`TasksRpc.with_tools`) also ``tools/call``
(the tool table and the tool call itself: :mod:`tasks_store.mcp.tools`).
This is the 2025-11-25 ``tasks/*`` wire; the whole 2025-11-25 protocol
(``initialize``, sessions, ``tools/list``) is :mod:`tasks_store.mcp.v2025`,
which answers ``tasks/*`` through a :class:`TasksRpc`.

The store keeps the Tasks extension's meaning of a tool error: a
``tools/call`` task whose result has ``isError: true`` is ``completed``.
2025-11-25 calls that task ``failed``, so :func:`wire_task_2025` (used by
``tasks/get``, ``tasks/list`` and ``tasks/cancel``) reports it ``failed``,
with the tool's text as ``statusMessage``; ``tasks/result`` still returns
the result.

Responses to requests whose id cannot be read (parse errors, malformed
envelopes) carry no ``id`` member: JSON-RPC 2.0 would send ``"id": null``,
but the MCP schema's ``RequestId`` is a string or an integer, and its
``JSONRPCErrorResponse`` makes ``id`` optional.

Strict JSON.  :func:`parse_message` is the one parser of a request body
(``McpServer.handle`` and :meth:`TasksRpc.handle_json` use it).  It accepts
only what RFC 8259 calls interoperable, and refuses the rest before any
method sees it:

- not UTF-8, not JSON, or nested too deeply: -32700, HTTP 400, no ``id``;
- ``NaN``, ``Infinity``, ``-Infinity``: -32700, 400;
- a number outside IEEE double range (``1e400``, an integer of more than
  309 digits): -32700, 400;
- a duplicate key in an object inside the message: -32700, 400;
- a duplicate key in the request object itself: -32600, 400;
- a lone surrogate escape (``"\\ud800"``) in the envelope (``jsonrpc``,
  ``id``, ``method``, any key of the request object, or a non-object
  message): -32600, 400, no ``id``;
- a lone surrogate escape anywhere in ``params``: -32602, HTTP 200 under
  the request's ``id`` (400 without a readable one).

Each refusal is a :class:`BodyRejected` carrying the error, its HTTP status
and the request id (when readable); none is logged with a traceback.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..errors import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    InvalidParams,
    InvalidRequest,
    MethodNotFound,
    NotFound,
    ParseError,
    StoreError,
    TaskError,
    WaitTimeout,
    error_code,
    error_object,
)
from ..records import RELATED_TASK_META_KEY, JsonRpcError, TaskRecord
from ..status import TaskStatus
from ..store import TaskStore
from ..store._base import require_store
from ..wire import json_type as _json_type
from .limits import (
    BlockingGate,
    ClientDisconnected,
    TooManyBlockingCalls,
    current_probe,
    wait_for_end,
)
from .tools import Tool, ToolFn, ToolRegistry, answer_tools_call, check_tools

if TYPE_CHECKING:
    from .runner import TaskRunner

__all__ = [
    "ERROR_CODES",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "MAX_TASK_ID_LENGTH",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "BodyRejected",
    "InvalidRequest",
    "MethodNotFound",
    "ParseError",
    "TasksRpc",
    "ToolFn",
    "encode_response",
    "error_code",
    "error_object",
    "error_response",
    "parse_error_reason",
    "parse_message",
    "wire_task_2025",
]

logger = logging.getLogger("tasks_store")

#: Longest ``taskId`` a request may carry; longer ones answer -32602 at once.
MAX_TASK_ID_LENGTH = 256


class _ErrorCodes(Mapping[type[BaseException], int]):
    """
    Each :class:`TaskError` class (subclasses defined later included) to its
    ``code``, read from the class on every lookup: a view, not a table.
    """

    def __getitem__(self, cls: type[BaseException]) -> int:
        if isinstance(cls, type) and issubclass(cls, TaskError):
            return cls.code
        raise KeyError(cls)

    def __iter__(self) -> Iterator[type[BaseException]]:
        return iter(_error_classes())

    def __len__(self) -> int:
        return len(_error_classes())

    def __repr__(self) -> str:
        return f"ERROR_CODES({ {cls.__name__: code for cls, code in self.items()} })"


def _error_classes() -> list[type[TaskError]]:
    """Return TaskError and every subclass of it, each once, parents first."""
    seen: dict[type[TaskError], None] = {}
    todo = [TaskError]
    while todo:
        cls = todo.pop(0)
        if cls not in seen:
            seen[cls] = None
            todo.extend(cls.__subclasses__())
    return list(seen)


#: Read-only view: error class -> JSON-RPC code, derived from each class's
#: ``code`` (the only place a code is written).  Prefer :func:`error_code`.
ERROR_CODES: Mapping[type[BaseException], int] = _ErrorCodes()


def error_response(request_id: str | int | None, error: Mapping[str, Any]) -> dict[str, Any]:
    """Return a JSON-RPC error response; no ``id`` member when *request_id* is None."""
    response: dict[str, Any] = {"jsonrpc": "2.0"}
    if request_id is not None:
        response["id"] = request_id
    response["error"] = dict(error)
    return response


def encode_response(response: Mapping[str, Any]) -> bytes:
    """
    Return *response* as compact UTF-8 JSON.

    Never raises: a response JSON cannot encode (NaN, a lone surrogate, a
    foreign type) is logged and replaced by a -32603 error response.
    """
    try:
        return json.dumps(
            response, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        logger.exception("could not encode a JSON-RPC response")
        request_id = response.get("id")
        if type(request_id) not in (str, int):
            request_id = None
        fallback = error_response(request_id, error_object(exc))
        return json.dumps(fallback, ensure_ascii=True).encode("ascii")


_STATUS_MESSAGE_LIMIT = 200


def tool_error_text(record: TaskRecord) -> str | None:
    """
    Return the tool's text when *record* is a completed ``tools/call`` task
    whose result has ``isError: true``; else None.

    The text is the result's first text block (clipped to 200 characters),
    or ``"The tool reported an error."`` when it has none.
    """
    if (
        record.status is not TaskStatus.COMPLETED
        or record.request_method != "tools/call"
        or not record.has_result
        or '"isError"' not in (record.result_json or "")
    ):
        return None
    result = record.result
    if not isinstance(result, Mapping) or result.get("isError") is not True:
        return None
    content = result.get("content")
    if isinstance(content, list):
        for block in content:
            if isinstance(block, Mapping) and isinstance(block.get("text"), str):
                return _clip(block["text"], _STATUS_MESSAGE_LIMIT)
    return "The tool reported an error."


def wire_task_2025(record: TaskRecord, *, with_variables: bool = False) -> dict[str, Any]:
    """
    Return *record*'s Task as the 2025-11-25 wire shows it.

    As ``record.task.to_wire()`` (variables merged into ``_meta`` when
    *with_variables*), except that a completed ``tools/call`` task whose
    result has ``isError: true`` is ``failed``, with the tool's text as
    ``statusMessage`` (2025-11-25: "the task SHOULD be failed").
    """
    task = record.to_wire_task_with_variables() if with_variables else record.task
    wire = task.to_wire()
    text = tool_error_text(record)
    if text is not None:
        wire["status"] = TaskStatus.FAILED.value
        wire["statusMessage"] = text
    return wire


def _is_request_id(value: object) -> bool:
    return type(value) is str or type(value) is int


class TasksRpc:
    """
    Answer MCP ``tasks/*`` requests from one :class:`TaskStore`.

    Args:
        store: where the tasks live.
        result_timeout: seconds ``tasks/result`` blocks waiting for a task
            to end; None blocks until it does.  When the time runs out the
            answer is a -32603 error whose ``data`` holds ``taskId``,
            ``timeout`` and the task's current ``status``: the task goes on,
            and the client polls ``tasks/get`` or asks again.

        gate: bounds how many ``tasks/result`` calls wait at once (in all and
            per owner); None: no bound.  A call over it is answered at once
            with -32603 and the task's current ``status`` in ``data``.
        disconnect_check_s: how often a waiting ``tasks/result`` asks whether
            its client hung up (where the WSGI server can tell; see
            :mod:`tasks_store.mcp.limits`).

    Raises:
        ValueError: *result_timeout* is negative or not a number.
        TypeError: *gate* is not a :class:`BlockingGate`.

    Thread-safe: one instance serves every request thread.
    """

    def __init__(
        self,
        store: TaskStore,
        *,
        result_timeout: float | None = 60.0,
        tools: Mapping[str, ToolFn] | None = None,
        runner: TaskRunner | None = None,
        gate: BlockingGate | None = None,
        disconnect_check_s: float = 0.5,
    ) -> None:
        if result_timeout is not None and (
            isinstance(result_timeout, bool)
            or not isinstance(result_timeout, (int, float))
            or not result_timeout >= 0
        ):
            msg = f"result_timeout must be a number >= 0 or None, got {result_timeout!r}"
            raise ValueError(msg)
        if (tools is None) != (runner is None):
            msg = "tools and runner go together: give both or neither"
            raise ValueError(msg)
        if tools is not None:
            check_tools(tools)
        self._store = require_store(store)
        self._result_timeout = result_timeout
        self._tools: Mapping[str, ToolFn] = MappingProxyType(dict(tools or {}))
        self._registry = ToolRegistry(
            Tool(name=name, fn=_inline_ctx_none(fn), task_support="optional")
            for name, fn in self._tools.items()
        )
        self._runner = runner
        if gate is not None and not isinstance(gate, BlockingGate):
            msg = f"gate must be a BlockingGate or None, got {type(gate).__name__}"
            raise TypeError(msg)
        self._gate = gate
        self._disconnect_check_s = disconnect_check_s
        self._methods: Mapping[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
            "tasks/get": self._tasks_get,
            "tasks/result": self._tasks_result,
            "tasks/list": self._tasks_list,
            "tasks/cancel": self._tasks_cancel,
        }
        if runner is not None:
            self._methods = {**self._methods, "tools/call": self._tools_call}

    @property
    def store(self) -> TaskStore:
        """The store this handler answers from."""
        return self._store

    @property
    def result_timeout(self) -> float | None:
        """Seconds ``tasks/result`` waits; None for no limit."""
        return self._result_timeout

    @property
    def tools(self) -> Mapping[str, ToolFn]:
        """The tools ``tools/call`` can run (read-only; empty without tools)."""
        return self._tools

    def with_tools(self, tools: Mapping[str, ToolFn], runner: TaskRunner) -> TasksRpc:
        """
        Return a handler on the same store that also answers ``tools/call``.

        Args:
            tools: tool name to ``fn(arguments, ctx)`` returning a
                ``CallToolResult`` dict.
            runner: runs task-augmented calls in the background.

        Returns:
            A new :class:`TasksRpc`; this one is unchanged.
        """
        return TasksRpc(
            self._store, result_timeout=self._result_timeout, tools=tools, runner=runner,
            gate=self._gate, disconnect_check_s=self._disconnect_check_s,
        )  # fmt: skip

    # -- entry points ---------------------------------------------------------

    def handle(self, message: Any, owner_id: str) -> dict[str, Any] | None:
        """
        Answer one JSON-RPC message on behalf of *owner_id*.

        Args:
            message: the decoded JSON (normally a Mapping; anything else is
                answered with -32600).
            owner_id: the caller, as :func:`resolve_owner_id` gives it.

        Returns:
            The response object, or None for a notification or a response
            (messages that get no answer; they are not acted on).

        Never raises, and never puts a traceback in a response: internal
        faults answer -32603 ``"Internal error"`` and are logged on the
        ``tasks_store`` logger.
        """
        request_id: str | int | None = None
        try:
            if not isinstance(message, Mapping):
                msg = f"Invalid request: expected a JSON object, got {_json_type(message)}"
                raise InvalidRequest(msg)
            if "id" in message and _is_request_id(message["id"]):
                request_id = message["id"]
            method, params, notification = self._envelope(message)
            if notification:
                return None
            handler = self._methods.get(method)
            if handler is None:
                msg = f"Method not found: {_clip(method)}"
                raise MethodNotFound(msg)
            result = handler(params, owner_id)
        except _Answer as answer:
            return error_response(request_id, answer.error)
        except Exception as exc:  # every fault becomes a response
            return self._error(request_id, exc)
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    def handle_json(self, body: bytes | str, owner_id: str) -> dict[str, Any] | None:
        """
        Decode *body* as JSON and answer it with :meth:`handle`.

        Returns:
            The response object (-32700 without ``id`` if *body* is not
            UTF-8 JSON), or None when no answer is due.

        Never raises.
        """
        try:
            message = parse_message(body)
        except BodyRejected as exc:
            return error_response(exc.request_id, exc.error.to_jsonrpc_error())
        return self.handle(message, owner_id)

    # -- envelope -------------------------------------------------------------

    @staticmethod
    def envelope(message: Mapping[str, Any]) -> tuple[str, dict[str, Any], bool]:
        """
        Check a JSON-RPC 2.0 envelope; return ``(method, params, is_notification)``.

        A client's response (``result`` or ``error`` and an id, no method)
        counts as a notification: ``("", {}, True)``.

        Raises:
            InvalidRequest: ``jsonrpc`` is not ``"2.0"``, the id is not a
                string or integer, ``method`` is missing or not a string.
            InvalidParams: ``params`` is not an object.
        """
        return TasksRpc._envelope(message)

    @staticmethod
    def _envelope(message: Mapping[str, Any]) -> tuple[str, dict[str, Any], bool]:
        """Check the JSON-RPC envelope; return (method, params, is_notification)."""
        if message.get("jsonrpc") != "2.0":
            msg = 'Invalid request: "jsonrpc" must be "2.0"'
            raise InvalidRequest(msg)
        has_id = "id" in message
        if has_id and not _is_request_id(message["id"]):
            msg = (
                'Invalid request: "id" must be a string or an integer, '
                f"got {_json_type(message['id'])}"
            )
            raise InvalidRequest(msg)
        if "method" not in message:
            if has_id and ("result" in message or "error" in message):
                return "", {}, True  # a response from the client: nothing to answer
            msg = 'Invalid request: "method" is missing'
            raise InvalidRequest(msg)
        method = message["method"]
        if not isinstance(method, str):
            msg = f'Invalid request: "method" must be a string, got {_json_type(method)}'
            raise InvalidRequest(msg)
        if not has_id:
            return method, {}, True
        params = message.get("params", {})
        if not isinstance(params, dict):
            msg = f"params must be an object, got {_json_type(params)}"
            raise InvalidParams(msg)
        return method, params, False

    def _error(self, request_id: str | int | None, exc: Exception) -> dict[str, Any]:
        if not isinstance(exc, TaskError):  # a fault, answered -32603 "Internal error"
            logger.exception("internal error answering request %r", _clip(repr(request_id)))
        return error_response(request_id, error_object(exc))

    # -- tasks/* --------------------------------------------------------------

    def _tasks_get(self, params: dict[str, Any], owner_id: str) -> dict[str, Any]:
        record = self._store.get(_task_id(params), owner_id)
        return wire_task_2025(record, with_variables=True)

    def _tasks_result(self, params: dict[str, Any], owner_id: str) -> dict[str, Any]:
        task_id = _task_id(params)
        store = self._store
        record = store.get(task_id, owner_id)
        if not record.status.is_terminal:
            self._wait_for_end(record, owner_id)
        result = store.get_result(task_id, owner_id)
        if isinstance(result, JsonRpcError):
            raise _Answer(result.to_dict())
        if not isinstance(result, dict):
            msg = f"task {task_id} holds a result that is not a JSON object"
            logger.error("%s", msg)
            raise StoreError(msg)
        meta = result.get("_meta")
        meta = dict(meta) if isinstance(meta, dict) else {}
        meta[RELATED_TASK_META_KEY] = {"taskId": task_id}
        return {**result, "_meta": meta}

    def _wait_for_end(self, record: TaskRecord, owner_id: str) -> None:
        """
        Block until the task ends, holding a gate slot; answer at once when none is free.

        Over the gate's limit, or when ``result_timeout`` runs out, the answer
        is -32603 with the task's current ``status`` in ``data`` (the task
        goes on).  A client that hangs up ends the wait (:class:`ClientDisconnected`).
        """
        task_id = record.task.task_id
        store = self._store
        slot = None
        if self._gate is not None:
            try:
                slot = self._gate.acquire(owner_id, "tasks/result")
            except TooManyBlockingCalls as exc:
                error = exc.to_jsonrpc_error()
                error["data"] = {**error["data"], "taskId": task_id, "status": record.status.value}
                raise _Answer(error) from None
        try:
            wait_for_end(
                store, task_id, owner_id, timeout=self._result_timeout,
                probe=current_probe(), check_every=self._disconnect_check_s,
            )  # fmt: skip
        except WaitTimeout as exc:
            error = exc.to_jsonrpc_error()
            try:
                status = store.get(task_id, owner_id).status.value
            except NotFound:
                raise exc from None
            error["data"] = {**error.get("data", {}), "status": status}
            raise _Answer(error) from None
        except ClientDisconnected:
            logger.info("task %s: tasks/result ended: the client disconnected", task_id)
            raise
        finally:
            if slot is not None:
                slot.release()

    def _tasks_list(self, params: dict[str, Any], owner_id: str) -> dict[str, Any]:
        cursor = params.get("cursor")
        if cursor is not None and not isinstance(cursor, str):
            msg = f"cursor must be a string, got {_json_type(cursor)}"
            raise InvalidParams(msg)
        page = self._store.list(owner_id, cursor=cursor)
        result: dict[str, Any] = {"tasks": [wire_task_2025(r) for r in page.tasks]}
        if page.next_cursor is not None:
            result["nextCursor"] = page.next_cursor
        return result

    def _tasks_cancel(self, params: dict[str, Any], owner_id: str) -> dict[str, Any]:
        record = self._store.cancel(
            _task_id(params), owner_id, "The task was cancelled by request."
        )
        return wire_task_2025(record, with_variables=True)

    # -- tools/call -----------------------------------------------------------

    def _tools_call(self, params: dict[str, Any], owner_id: str) -> dict[str, Any]:
        assert self._runner is not None  # tools/call is only routed with a runner
        return answer_tools_call(params, owner_id, tools=self._registry, runner=self._runner)


def _inline_ctx_none(fn: ToolFn) -> ToolFn:
    """Adapt an old-style tool: inline calls get ``ctx=None``, as they always did."""

    def tool(arguments: dict[str, Any], ctx: Any) -> Mapping[str, Any]:
        return fn(arguments, ctx if getattr(ctx, "in_task", False) else None)

    return tool


class _Answer(Exception):
    """Carries a ready error object out of a method handler."""

    def __init__(self, error: Mapping[str, Any]) -> None:
        super().__init__(error.get("message"))
        self.error = error


def _task_id(params: Mapping[str, Any]) -> str:
    """Return the request's ``taskId``, checked."""
    if "taskId" not in params:
        msg = "taskId is required"
        raise InvalidParams(msg)
    task_id = params["taskId"]
    if not isinstance(task_id, str):
        msg = f"taskId must be a string, got {_json_type(task_id)}"
        raise InvalidParams(msg)
    if len(task_id) > MAX_TASK_ID_LENGTH:
        msg = f"taskId is longer than {MAX_TASK_ID_LENGTH} characters"
        raise InvalidParams(msg)
    return task_id



def _clip(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def parse_error_reason(exc: BaseException) -> str:
    """Say why a body failed to parse, for a -32700 message (no body text in it)."""
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at position {exc.pos}"
    if isinstance(exc, UnicodeDecodeError):
        return "the body is not valid UTF-8"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return "invalid JSON"


# -- strict JSON -----------------------------------------------------------------


class BodyRejected(Exception):
    """
    A request body :func:`parse_message` refuses, and how to answer it.

    Attributes:
        error: the JSON-RPC error (:class:`ParseError`, :class:`InvalidRequest`
            or :class:`InvalidParams`).
        status: the HTTP status of the answer (400, or 200 when the request
            id is readable and only ``params`` is at fault).
        request_id: the id to answer under, or None (no ``id`` member).
    """

    def __init__(
        self, error: TaskError, status: int = 400, request_id: str | int | None = None
    ) -> None:
        super().__init__(error.message)
        self.error = error
        self.status = status
        self.request_id = request_id


class _Refused(ValueError):
    """Raised inside the decoder's hooks: the body is not strict JSON."""


#: The largest finite double, as an int: an integer above it is out of range.
_MAX_DOUBLE_INT = int(sys.float_info.max)
#: Digits of _MAX_DOUBLE_INT: a longer integer is out of range at once.
_MAX_DOUBLE_DIGITS = len(str(_MAX_DOUBLE_INT))
#: A ``\\u`` escape of a UTF-16 surrogate (D800-DFFF): only such an escape can
#: put a lone surrogate into decoded text (strict UTF-8 cannot).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _parse_constant(name: str) -> Any:
    raise _Refused(f"{name} is not JSON")


def _parse_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _Refused(f"the number {_clip(text, 40)} is outside the range of a double")
    return value


def _parse_int(text: str) -> int:
    digits = len(text) - (text[0] == "-")
    if digits > _MAX_DOUBLE_DIGITS or (
        digits == _MAX_DOUBLE_DIGITS and abs(int(text)) > _MAX_DOUBLE_INT
    ):
        raise _Refused(f"an integer of {digits} digits is outside the range of a double")
    return int(text)


class _Duplicates:
    """An ``object_pairs_hook`` that builds dicts and remembers those with a repeated key."""

    __slots__ = ("found",)

    def __init__(self) -> None:
        self.found: list[tuple[dict[str, Any], str]] = []

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    self.found.append((obj, key))
                    break
                seen.add(key)
        return obj


def _shown(key: str) -> str:
    """A key for a message: ASCII only (it may hold a lone surrogate), clipped."""
    return _clip(ascii(key), 60)


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _lone_surrogate_in(value: Any) -> bool:
    """Whether any string (key or value) in the decoded JSON *value* holds a lone surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _has_lone_surrogate(item):
                return True
        elif isinstance(item, dict):
            for key, inner in item.items():
                if _has_lone_surrogate(key):
                    return True
                stack.append(inner)
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_message(body: bytes | str) -> Any:
    """
    Decode one request body as strict JSON; see the module docstring.

    Returns:
        The decoded message (any JSON value: the envelope checks come after).

    Raises:
        BodyRejected: the body is not strict JSON, or holds a lone
            surrogate; it says how to answer.

    >>> parse_message(b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}')["method"]
    'ping'
    >>> parse_message(b'{"x": NaN}')
    Traceback (most recent call last):
    ...
    tasks_store.mcp.jsonrpc.BodyRejected: Parse error: NaN is not JSON
    """
    duplicates = _Duplicates()
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        message = json.loads(
            text,
            parse_constant=_parse_constant,
            parse_float=_parse_float,
            parse_int=_parse_int,
            object_pairs_hook=duplicates,
        )
    except _Refused as exc:
        raise BodyRejected(ParseError(f"Parse error: {exc}")) from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BodyRejected(ParseError(f"Parse error: {parse_error_reason(exc)}")) from None
    for obj, key in duplicates.found:
        if obj is not message:
            msg = f"Parse error: duplicate key {_shown(key)} in an object"
            raise BodyRejected(ParseError(msg))
    if duplicates.found:
        key = duplicates.found[0][1]
        msg = f"Invalid request: duplicate key {_shown(key)} in the request object"
        raise BodyRejected(InvalidRequest(msg))
    raw = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
    if _SURROGATE_ESCAPE.search(raw) is not None:
        _check_surrogates(message)
    return message


def _check_surrogates(message: Any) -> None:
    """Refuse a lone surrogate: in ``params`` -32602 (under the id), elsewhere -32600."""
    if not isinstance(message, dict):
        if _lone_surrogate_in(message):
            msg = "Invalid request: a string holds a lone surrogate (not Unicode text)"
            raise BodyRejected(InvalidRequest(msg))
        return
    for key, value in message.items():
        if key == "params" or not (_has_lone_surrogate(key) or _lone_surrogate_in(value)):
            continue
        msg = "Invalid request: the request object holds a lone surrogate (not Unicode text)"
        raise BodyRejected(InvalidRequest(msg))
    if "params" in message and _lone_surrogate_in(message["params"]):
        request_id = message.get("id")
        if not _is_request_id(request_id):
            request_id = None
        msg = "Invalid params: a string in params holds a lone surrogate (not Unicode text)"
        raise BodyRejected(InvalidParams(msg), 200 if request_id is not None else 400, request_id)

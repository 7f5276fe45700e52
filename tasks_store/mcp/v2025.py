"""
The 2025-11-25 session protocol: ``initialize``, sessions, ``ping``, tools, ``tasks/*``.

:func:`handle` answers one parsed POST body that
:class:`~tasks_store.mcp.server.McpServer` routed here; :func:`end_session`
answers ``DELETE``.

Sessions.  ``initialize`` opens one in the server's
:class:`~tasks_store.store.sessions.SessionStore` and returns its id in the
``Mcp-Session-Id`` response header.  Every other message must carry it:

==================================================  ======  ===========================
request                                             status  body
==================================================  ======  ===========================
no ``Mcp-Session-Id`` (after ``initialize``)        400     -32600
``Mcp-Session-Id`` not visible ASCII, or too long   400     -32600
an id never issued, closed, or expired              404     -32600 "Session not found"
``MCP-Protocol-Version`` not a supported revision   400     -32600
``MCP-Protocol-Version`` not the session's revision 400     -32600
``DELETE`` with a live id                           204     empty (the session ends)
==================================================  ======  ===========================

``MCP-Protocol-Version`` may be left out: the transport spec's fallback to
2025-03-26 applies only when the server "has no other way to identify the
version", and here the session always has its negotiated revision.

Versions.  ``initialize`` answers the requested revision when it is one of
:data:`~tasks_store.mcp.server.SUPPORTED_2025_VERSIONS`, else the latest
(2025-11-25).  Only 2025-11-25 sessions get the ``tasks`` capability, the
``tasks/*`` methods and task-augmented ``tools/call``; older sessions get
-32601 for those and a ``tools/list`` without ``execution`` and without the
tools that require a task.

Input flows.  A ``tasks/result`` on a task that is ``input_required`` is
answered with an SSE stream (when the client's ``Accept`` allows
``text/event-stream``; :class:`~tasks_store.mcp.streams.ResultStream`): the
task's outstanding input requests as requests from the server (with the
related-task ``_meta``), ``notifications/tasks/status`` on each change, and
at the end the ``tasks/result`` response.  The client POSTs its JSON-RPC
responses to those requests; they are stored
(:func:`~tasks_store.mcp.streams.route_response`) and reach the waiting tool
on whichever worker runs it.  Every other answer is plain JSON.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..errors import InvalidParams, InvalidRequest, MethodNotFound, TaskError
from ..status import TaskStatus
from ..store.sessions import MAX_SESSION_ID_LENGTH
from .http import EVENT_STREAM_MEDIA_TYPE, HttpRequest, HttpResponse, accepts_media
from .jsonrpc import error_object
from .server import LATEST_2025_VERSION, SUPPORTED_2025_VERSIONS, error_reply
from .streams import EventStream, ResultStream, route_response
from .tools import answer_tools_call

if TYPE_CHECKING:
    from .server import McpServer

__all__ = ["TASKS_CAPABILITY", "end_session", "handle", "initialize_result"]

logger = logging.getLogger("tasks_store")

#: The ``tasks`` server capability of a 2025-11-25 session.
TASKS_CAPABILITY: Mapping[str, Any] = MappingProxyType(
    {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
)

_TASK_METHODS = frozenset({"tasks/get", "tasks/result", "tasks/list", "tasks/cancel"})


def _readable_id(message: Mapping[str, Any]) -> str | int | None:
    value = message.get("id")
    return value if type(value) is str or type(value) is int else None


def _visible_ascii(text: str) -> bool:
    return all("\x21" <= c <= "\x7e" for c in text)


def _check_version_header(request: HttpRequest) -> str | TaskError | None:
    """Return the header's revision (None when absent), or the error to answer."""
    header = request.header("mcp-protocol-version")
    if header is None:
        return None
    version = header.strip()
    if version not in SUPPORTED_2025_VERSIONS:
        shown = version if len(version) <= 40 else version[:37] + "..."
        return InvalidRequest(
            f"Bad Request: unsupported MCP-Protocol-Version {shown!r}; "
            f"supported: {', '.join(SUPPORTED_2025_VERSIONS)}"
        )
    return version


def _session(
    server: McpServer, request: HttpRequest, request_id: str | int | None
) -> tuple[str, str] | HttpResponse:
    """Return (session id, its revision), or the reply refusing the request."""
    session_id = request.header("mcp-session-id")
    if session_id is None:
        error = InvalidRequest(
            "Bad Request: Mcp-Session-Id header is required; send initialize first"
        )
        return error_reply(400, error, request_id)
    session_id = session_id.strip()
    if (
        not session_id
        or len(session_id) > MAX_SESSION_ID_LENGTH
        or not _visible_ascii(session_id)
    ):
        error = InvalidRequest(
            "Bad Request: Mcp-Session-Id must be 1 to "
            f"{MAX_SESSION_ID_LENGTH} visible ASCII characters"
        )
        return error_reply(400, error, request_id)
    version = server.sessions.protocol_version(session_id)
    if version is None:
        logger.info("session %s: not found (never issued, ended or expired)",
                    server.log_id(session_id))
        error = InvalidRequest("Session not found: send initialize to start a new session")
        return error_reply(404, error, request_id)
    return session_id, version


def end_session(server: McpServer, request: HttpRequest) -> HttpResponse:
    """Answer ``DELETE``: end the session named by ``Mcp-Session-Id`` (204)."""
    checked = _check_version_header(request)
    if isinstance(checked, TaskError):
        return error_reply(400, checked)
    found = _session(server, request, None)
    if isinstance(found, HttpResponse):
        return found
    session_id, version = found
    if checked is not None and checked != version:
        return error_reply(400, _mismatch(checked, version))
    server.sessions.close(session_id)
    logger.info("session %s: ended by DELETE", server.log_id(session_id))
    return HttpResponse.empty(204)


def _mismatch(header: str, version: str) -> InvalidRequest:
    return InvalidRequest(
        f"Bad Request: MCP-Protocol-Version {header} is not this session's revision ({version})"
    )


def initialize_result(server: McpServer, version: str) -> dict[str, Any]:
    """Return the ``InitializeResult`` for a session on revision *version*."""
    capabilities: dict[str, Any] = {"tools": {}}
    if version == LATEST_2025_VERSION:
        capabilities["tasks"] = json.loads(json.dumps(dict(TASKS_CAPABILITY)))
    result: dict[str, Any] = {
        "protocolVersion": version,
        "capabilities": capabilities,
        "serverInfo": server.server_info,
    }
    if server.instructions is not None:
        result["instructions"] = server.instructions
    return result


def _initialize(server: McpServer, params: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    requested = params.get("protocolVersion")
    if not isinstance(requested, str):
        msg = "protocolVersion is required and must be a string"
        raise InvalidParams(msg)
    if not isinstance(params.get("capabilities"), Mapping):
        msg = "capabilities is required and must be an object"
        raise InvalidParams(msg)
    info = params.get("clientInfo")
    if not isinstance(info, Mapping) or not all(
        isinstance(info.get(k), str) for k in ("name", "version")
    ):
        msg = "clientInfo is required: an object with string name and version"
        raise InvalidParams(msg)
    version = requested if requested in SUPPORTED_2025_VERSIONS else LATEST_2025_VERSION
    session_id = server.sessions.open(version)
    logger.info(
        "session %s: opened (protocol %s, requested %s)",
        server.log_id(session_id),
        version,
        requested if len(requested) <= 40 else requested[:37] + "...",
    )
    return initialize_result(server, version), session_id


def _tools_list(server: McpServer, params: Mapping[str, Any], version: str) -> dict[str, Any]:
    cursor = params.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        msg = "cursor must be a string"
        raise InvalidParams(msg)
    with_tasks = version == LATEST_2025_VERSION
    tools, next_cursor = server.tools.page(cursor, page_size=server.tools_page_size)
    listed = [
        tool.to_wire(execution=with_tasks)
        for tool in tools
        if with_tasks or tool.task_support != "required"
    ]
    result: dict[str, Any] = {"tools": listed}
    if next_cursor is not None:
        result["nextCursor"] = next_cursor
    return result


def _answer(
    request_id: str | int, result: dict[str, Any] | None, error: Exception | None
) -> HttpResponse:
    if error is not None:
        if not isinstance(error, TaskError):
            logger.error("internal error answering a request", exc_info=error)
        return error_reply(200, error_object(error), request_id)
    return HttpResponse.json(200, {"jsonrpc": "2.0", "id": request_id, "result": result})


def _result_stream(
    server: McpServer,
    request: HttpRequest,
    params: Mapping[str, Any],
    owner: str,
    request_id: str | int,
) -> HttpResponse | None:
    """
    Return the SSE stream answering ``tasks/result`` of a task waiting for
    input; None to answer it as JSON (any other task, an error to report,
    a client that does not accept ``text/event-stream``).

    Raises:
        TooManyBlockingCalls: the gate is full (answered as JSON).
    """
    task_id = params.get("taskId")
    if not isinstance(task_id, str) or not accepts_media(
        request.header("accept"), EVENT_STREAM_MEDIA_TYPE
    ):
        return None
    try:
        record = server.store.get(task_id, owner)
    except TaskError:
        return None  # answered by the JSON path, with the same error
    if record.status is not TaskStatus.INPUT_REQUIRED:
        return None
    stream = EventStream.open(
        server,
        owner,
        (task_id,),
        lambda watch: ResultStream(server, owner, task_id, request_id),
        request,
    )
    logger.info("task %s: tasks/result answered with a stream (input required)", task_id)
    return HttpResponse.sse(stream)


def handle(server: McpServer, request: HttpRequest, message: Any) -> HttpResponse:
    """
    Answer one 2025-11-25 message (a POST body already parsed as JSON).

    A request answers 200 with its JSON-RPC response (errors included); a
    notification or a client's response answers 202; a malformed message
    400 without ``id``; the session and header faults as the module table
    says.
    """
    if not isinstance(message, Mapping):
        kind = "an array (batches are not supported)" if isinstance(message, list) else (
            type(message).__name__
        )
        error = InvalidRequest(f"Invalid request: expected a JSON object, got {kind}")
        return error_reply(400, error)
    request_id = _readable_id(message)
    checked = _check_version_header(request)
    if isinstance(checked, TaskError):
        return error_reply(400, checked, request_id)
    try:
        method, params, notification = server.rpc.envelope(message)
    except TaskError as exc:
        status = 400 if request_id is None else 200
        return error_reply(status, exc, request_id)
    if method == "initialize" and not notification:
        assert request_id is not None  # not a notification: the envelope read an id
        try:
            result, session_id = _initialize(server, params)
        except TaskError as exc:
            return error_reply(200, exc, request_id)
        return HttpResponse.json(
            200,
            {"jsonrpc": "2.0", "id": request_id, "result": result},
            (("Mcp-Session-Id", session_id),),
        )
    found = _session(server, request, request_id)
    if isinstance(found, HttpResponse):
        return found
    session_id, version = found
    if checked is not None and checked != version:
        return error_reply(400, _mismatch(checked, version), request_id)
    owner = server.owner_for(request.principal, session_id)
    if notification:
        if "method" not in message and version == LATEST_2025_VERSION:
            route_response(server, owner, message)  # an answer to a task's input request?
        return HttpResponse.empty(202)
    assert request_id is not None
    with_tasks = version == LATEST_2025_VERSION
    try:
        if method == "ping":
            result = {}
        elif method == "tools/list":
            result = _tools_list(server, params, version)
        elif method == "tools/call":
            result = answer_tools_call(
                params, owner, tools=server.tools, runner=server.runner, tasks_allowed=with_tasks
            )
        elif method in _TASK_METHODS and with_tasks:
            if method == "tasks/result":
                streamed = _result_stream(server, request, params, owner, request_id)
                if streamed is not None:
                    return streamed
            response = server.rpc.handle(message, owner)
            assert response is not None  # a request with an id gets an answer
            return HttpResponse.json(200, response)
        else:
            shown = method if len(method) <= 100 else method[:97] + "..."
            msg = f"Method not found: {shown}"
            if method in _TASK_METHODS:
                msg += f" (protocol revision {version} has no tasks)"
            raise MethodNotFound(msg)
    except Exception as exc:  # every fault becomes a JSON-RPC error response
        return _answer(request_id, None, exc)
    return _answer(request_id, result, None)

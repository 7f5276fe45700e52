"""
:class:`TasksApp`: the WSGI transport for :class:`~tasks_store.mcp.jsonrpc.TasksRpc`.

Transport only: HTTP method, content type, body size, owner resolution,
status codes.  Every JSON-RPC decision is the handler's.  Needs no WSGI
server package; serve it with any threaded one (``waitress``, ``cheroot``).

HTTP answers:

======================================  ======  ===============================
request                                 status  body (JSON-RPC)
======================================  ======  ===============================
a request (valid or not, with an id)    200     its response
notification, or a client response      202     empty
unparsable JSON / no readable id        400     error -32700 / -32600, no id
not POST                                405     error -32600 (``Allow: POST``)
no ``Content-Length`` (not chunked)     411     error -32600
body above ``max_body_bytes``           413     error -32600
content type not ``application/json``   415     error -32600
fault in the app itself                 500     error -32603
======================================  ======  ===============================
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..errors import INTERNAL_MESSAGE, InvalidRequest, TaskError
from ..security import resolve_owner_id
from .jsonrpc import TasksRpc, encode_response, error_response
from .runner import TaskRunner
from .tools import ToolFn, check_tools

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["TasksApp", "default_owner_from_environ"]

logger = logging.getLogger("tasks_store")

_JSON = "application/json"


def default_owner_from_environ(environ: Mapping[str, Any]) -> str:
    """
    Return the owner for a request: ``REMOTE_USER``, else the ``Mcp-Session-Id``.

    The same as ``resolve_owner_id(REMOTE_USER, None, Mcp-Session-Id)``;
    ``"local"`` (anonymous) when neither is there.

    >>> default_owner_from_environ({"HTTP_MCP_SESSION_ID": "s-1"})
    's-1'
    """
    user = environ.get("REMOTE_USER")
    session = environ.get("HTTP_MCP_SESSION_ID")
    return resolve_owner_id(
        user if isinstance(user, str) else None,
        None,
        session if isinstance(session, str) else None,
    )


class TasksApp:
    """
    A WSGI application answering MCP JSON-RPC over HTTP POST.

    Args:
        rpc: the handler.
        owner_from_environ: ``fn(environ) -> owner_id``; by default
            :func:`default_owner_from_environ`.
        max_body_bytes: largest request body accepted (413 above it).
        tools: tool name to ``fn(arguments, ctx)``; when given,
            ``tools/call`` is answered too, and calls with a ``task`` run in
            the background on a :class:`TaskRunner`.
        runner: the runner for those calls; by default the app makes one
            (and :meth:`close` shuts it down).

    Raises:
        ValueError: *max_body_bytes* is not a positive int, or *runner* is
            given without *tools*.
    """

    def __init__(
        self,
        rpc: TasksRpc,
        *,
        owner_from_environ: Callable[[Mapping[str, Any]], str] | None = None,
        max_body_bytes: int = 1_048_576,
        tools: Mapping[str, ToolFn] | None = None,
        runner: TaskRunner | None = None,
    ) -> None:
        if (
            isinstance(max_body_bytes, bool)
            or not isinstance(max_body_bytes, int)
            or max_body_bytes < 1
        ):
            msg = f"max_body_bytes must be a positive int, got {max_body_bytes!r}"
            raise ValueError(msg)
        if runner is not None and tools is None:
            msg = "runner needs tools"
            raise ValueError(msg)
        if not isinstance(rpc, TasksRpc):
            msg = f"rpc must be a TasksRpc, got {type(rpc).__name__}"
            raise TypeError(msg)
        if owner_from_environ is not None and not callable(owner_from_environ):
            msg = f"owner_from_environ must be callable, got {type(owner_from_environ).__name__}"
            raise TypeError(msg)
        if tools is not None:
            check_tools(tools)
        self._owned_runner: TaskRunner | None = None
        if tools is not None:
            if runner is None:
                runner = self._owned_runner = TaskRunner(rpc.store)
            rpc = rpc.with_tools(tools, runner)
        self._rpc = rpc
        self._owner_from_environ = owner_from_environ or default_owner_from_environ
        self._max_body_bytes = max_body_bytes

    @property
    def rpc(self) -> TasksRpc:
        """The handler requests go to."""
        return self._rpc

    def close(self, *, wait: bool = True, cancel: bool = False) -> None:
        """Shut down the runner the app made, if any; see :meth:`TaskRunner.shutdown`."""
        if self._owned_runner is not None:
            self._owned_runner.shutdown(wait=wait, cancel=cancel)

    def __enter__(self) -> TasksApp:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """Answer one HTTP request."""
        try:
            status, headers, body = self._respond(environ)
        except Exception:
            logger.exception("internal error in TasksApp")
            status, headers, body = _error(500, TaskError(INTERNAL_MESSAGE))
        headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [body]

    def _respond(self, environ: WSGIEnvironment) -> tuple[str, list[tuple[str, str]], bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            status, headers, body = _error(405, InvalidRequest("Only POST is allowed"))
            headers.append(("Allow", "POST"))
            return status, headers, body
        media_type = str(environ.get("CONTENT_TYPE", "")).split(";")[0].strip().lower()
        if media_type != _JSON:
            return _error(415, InvalidRequest(f"Content-Type must be {_JSON}"))
        limit = self._max_body_bytes
        length_text = str(environ.get("CONTENT_LENGTH") or "").strip()
        stream = environ["wsgi.input"]
        if length_text:
            if not length_text.isdigit():
                return _error(400, InvalidRequest("Invalid Content-Length"))
            length = int(length_text)
            if length > limit:
                return _error(413, InvalidRequest(f"Request body exceeds {limit} bytes"))
            body = stream.read(length) if length else b""
        elif environ.get("wsgi.input_terminated"):
            body = stream.read(limit + 1)
            if len(body) > limit:
                return _error(413, InvalidRequest(f"Request body exceeds {limit} bytes"))
        else:
            return _error(411, InvalidRequest("Content-Length is required"))
        try:
            owner_id = self._owner_from_environ(environ)
        except TaskError as exc:  # e.g. InvalidParams from resolve_owner_id
            logger.warning("could not resolve the owner: %s", exc)
            response: dict[str, Any] | None = error_response(None, exc.to_jsonrpc_error())
        else:  # any other exception: a fault of the app, answered 500 by __call__
            response = self._rpc.handle_json(body, owner_id)
        if response is None:
            return "202 Accepted", [], b""
        status = "200 OK"
        if "error" in response and "id" not in response:
            status = "400 Bad Request"
        return status, [("Content-Type", _JSON)], encode_response(response)


_REASONS = {
    400: "Bad Request",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
}


def _error(http_status: int, error: TaskError) -> tuple[str, list[tuple[str, str]], bytes]:
    body = encode_response(error_response(None, error.to_jsonrpc_error()))
    return f"{http_status} {_REASONS[http_status]}", [("Content-Type", _JSON)], body

"""
:class:`TasksApp`: the WSGI adapter over :class:`~tasks_store.mcp.server.McpServer`.

Transport only: it turns the WSGI environ into an
:class:`~tasks_store.mcp.http.HttpRequest` (reading the body within
``max_body_bytes``, and asking ``principal_from_environ`` who the
authenticated user is), hands it to the server, and writes the
:class:`~tasks_store.mcp.http.HttpResponse` back.  Every protocol decision is
the server's.  Needs no WSGI server package; serve it with any threaded one
(``waitress``, ``cheroot``, gunicorn with threads).

Build it either way::

    server = McpServer(store, tools)
    app = TasksApp(server)                 # or: app = server.wsgi_app()

The adapter's own answers (before the server sees the request):

======================================  ======  ===============================
request                                 status  body (JSON-RPC)
======================================  ======  ===============================
invalid ``Content-Length``              400     error -32600
no ``Content-Length`` (not chunked)     411     error -32600
body above ``max_body_bytes``           413     error -32600 (the body is unread)
``principal_from_environ`` raised a     400     its error
  ``TaskError``
fault in the adapter itself             500     error -32603
======================================  ======  ===============================

Streamed replies (``text/event-stream``: ``tasks/result`` of a task waiting
for input, ``subscriptions/listen``) are written as the server yields them,
with no ``Content-Length`` (HTTP/1.1 chunked); the WSGI iterable's
``close()`` ends the stream.  The stream notices a client that went away
through the request's probe (:func:`~tasks_store.mcp.limits.probe_from_environ`:
waitress's ``waitress.client_disconnected``, with
``channel_request_lookahead=1``; gunicorn's socket), or else when a
keep-alive write fails.

The old construction, ``TasksApp(TasksRpc(store), tools={name: fn},
owner_from_environ=...)``, still works and warns (:class:`DeprecationWarning`):
it builds an :class:`McpServer` whose tools are the table's (each
``taskSupport: optional``, ``inputSchema`` ``{"type": "object"}``, and
``ctx=None`` for inline calls as before).  What ``owner_from_environ``
returns is taken as the principal (``user:<it>``); clients no longer name
their owner through ``Mcp-Session-Id``: the server issues sessions.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..errors import INTERNAL_MESSAGE, InvalidRequest, TaskError
from ..security import ANONYMOUS_OWNERS, resolve_owner_id
from .http import HttpRequest, HttpResponse
from .jsonrpc import TasksRpc, _inline_ctx_none
from .limits import connection_scope, probe_from_environ
from .runner import TaskRunner
from .server import McpServer, error_reply
from .tools import Tool, ToolFn, check_tools

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["TasksApp", "default_owner_from_environ", "remote_user"]

logger = logging.getLogger("tasks_store")

#: ``fn(environ) -> principal or None``.
PrincipalFn = Callable[[Mapping[str, Any]], "str | None"]


def remote_user(environ: Mapping[str, Any]) -> str | None:
    """
    Return ``REMOTE_USER`` (what the WSGI server or a middleware authenticated), or None.

    >>> remote_user({"REMOTE_USER": "alice"}), remote_user({})
    ('alice', None)
    """
    user = environ.get("REMOTE_USER")
    return user if isinstance(user, str) and user else None


def default_owner_from_environ(environ: Mapping[str, Any]) -> str:
    """
    Deprecated: the owner the old app used, ``REMOTE_USER`` else ``Mcp-Session-Id``.

    Kept for callers that imported it.  :class:`TasksApp` no longer takes
    the session from the client: passed as ``owner_from_environ`` it is
    treated as :func:`remote_user`.

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


def _legacy_principal(owner_from_environ: Callable[[Mapping[str, Any]], str]) -> PrincipalFn:
    def principal(environ: Mapping[str, Any]) -> str | None:
        owner = owner_from_environ(environ)
        if not isinstance(owner, str):
            msg = f"owner_from_environ must return a str, got {type(owner).__name__}"
            raise TypeError(msg)
        return None if owner in ANONYMOUS_OWNERS else owner

    return principal


def _check_max_body(max_body_bytes: object) -> int:
    if (
        isinstance(max_body_bytes, bool)
        or not isinstance(max_body_bytes, int)
        or max_body_bytes < 1
    ):
        msg = f"max_body_bytes must be a positive int, got {max_body_bytes!r}"
        raise ValueError(msg)
    return max_body_bytes


class TasksApp:
    """
    A WSGI application serving an :class:`McpServer`.

    Args:
        server: the protocol core.  (Deprecated: a :class:`TasksRpc`, with
            the old keywords below.)
        principal_from_environ: ``fn(environ) -> str | None``, the
            authenticated user (the owner of their tasks, whatever the
            session); by default :func:`remote_user`.
        max_body_bytes: largest request body accepted (413 above it).
        owner_from_environ: deprecated, with a :class:`TasksRpc` only; its
            result is the principal (``"local"`` or ``""``: none).
        tools: deprecated, with a :class:`TasksRpc` only: name to
            ``fn(arguments, ctx)``.
        runner: deprecated, with a :class:`TasksRpc` only.

    Raises:
        TypeError: *server* is neither, an old keyword with an
            :class:`McpServer`, or a function that is not callable.
        ValueError: *max_body_bytes* is not a positive int, or *runner* is
            given without *tools*.

    :meth:`close` closes the server (its runner).  The app is a context
    manager.
    """

    def __init__(
        self,
        server: McpServer | TasksRpc,
        *,
        principal_from_environ: PrincipalFn | None = None,
        max_body_bytes: int = 1_048_576,
        owner_from_environ: Callable[[Mapping[str, Any]], str] | None = None,
        tools: Mapping[str, ToolFn] | None = None,
        runner: TaskRunner | None = None,
    ) -> None:
        self._max_body_bytes = _check_max_body(max_body_bytes)
        if principal_from_environ is not None and not callable(principal_from_environ):
            msg = (
                "principal_from_environ must be callable, got "
                f"{type(principal_from_environ).__name__}"
            )
            raise TypeError(msg)
        if owner_from_environ is not None and not callable(owner_from_environ):
            msg = f"owner_from_environ must be callable, got {type(owner_from_environ).__name__}"
            raise TypeError(msg)
        if isinstance(server, McpServer):
            if owner_from_environ is not None or tools is not None or runner is not None:
                msg = (
                    "owner_from_environ, tools and runner belong to the old TasksApp(TasksRpc) "
                    "form; give the tools and runner to McpServer, and use "
                    "principal_from_environ"
                )
                raise TypeError(msg)
            self._server = server
        elif isinstance(server, TasksRpc):
            if tools is not None:
                check_tools(tools)  # a malformed table is a TypeError before anything else
            server = self._legacy_server(server, tools, runner)
            self._server = server
            if owner_from_environ is not None and principal_from_environ is not None:
                msg = "give principal_from_environ or owner_from_environ, not both"
                raise TypeError(msg)
            if owner_from_environ is not None and owner_from_environ is not (
                default_owner_from_environ
            ):
                principal_from_environ = _legacy_principal(owner_from_environ)
        else:
            msg = (
                "server must be an McpServer (or, in the deprecated form, rpc must be a "
                f"TasksRpc), got {type(server).__name__}"
            )
            raise TypeError(msg)
        self._principal = principal_from_environ or remote_user

    @staticmethod
    def _legacy_server(
        rpc: TasksRpc, tools: Mapping[str, ToolFn] | None, runner: TaskRunner | None
    ) -> McpServer:
        warnings.warn(
            "TasksApp(TasksRpc(...), tools=..., owner_from_environ=...) is deprecated: "
            "build TasksApp(McpServer(store, tools)) or McpServer(...).wsgi_app()",
            DeprecationWarning,
            stacklevel=3,
        )
        if runner is not None and tools is None:
            msg = "runner needs tools"
            raise ValueError(msg)
        table: dict[str, ToolFn] = dict(rpc.tools)
        if tools is not None:
            table.update(check_tools(tools))
        records = [
            Tool(name=name, fn=_inline_ctx_none(fn), task_support="optional")
            for name, fn in table.items()
        ]
        return McpServer(
            rpc.store, records, result_timeout=rpc.result_timeout, runner=runner
        )

    @property
    def server(self) -> McpServer:
        """The protocol core requests go to."""
        return self._server

    @property
    def rpc(self) -> TasksRpc:
        """The server's ``tasks/*`` handler (kept for the old API)."""
        return self._server.rpc

    @property
    def max_body_bytes(self) -> int:
        """The largest body accepted."""
        return self._max_body_bytes

    def close(self, *, wait: bool = True, cancel: bool = False) -> None:
        """Close the server: see :meth:`McpServer.close`."""
        self._server.close(wait=wait, cancel=cancel)

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
            with connection_scope(environ):  # blocking calls see a client hang up
                response = self._respond(environ)
        except Exception:
            logger.exception("internal error in TasksApp")
            response = error_reply(500, TaskError(INTERNAL_MESSAGE))
        if response.stream is not None:
            start_response(response.status_line, list(response.headers))
            return _Streamed(response.stream)
        headers = [*response.headers, ("Content-Length", str(len(response.body)))]
        start_response(response.status_line, headers)
        return [response.body]

    def request_from_environ(self, environ: Mapping[str, Any]) -> HttpRequest | HttpResponse:
        """
        Return the :class:`HttpRequest` in *environ*, or the reply refusing it.

        Reads the body (POST only) within ``max_body_bytes``, and calls
        ``principal_from_environ``.
        """
        method = str(environ.get("REQUEST_METHOD") or "GET").upper()
        headers: dict[str, str] = {}
        for key, value in environ.items():
            if key.startswith("HTTP_") and isinstance(value, str):
                headers[key[5:].replace("_", "-").lower()] = value
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            value = environ.get(key)
            if isinstance(value, str) and value:
                headers[key.replace("_", "-").lower()] = value
        body = b""
        if method == "POST":
            read = self._read_body(environ)
            if isinstance(read, HttpResponse):
                return read
            body = read
        try:
            principal = self._principal(environ)
        except TaskError as exc:
            logger.warning("could not resolve the principal: %s", exc)
            return error_reply(400, exc)
        if principal is not None and not isinstance(principal, str):
            kind = type(principal).__name__
            msg = f"principal_from_environ must return a str or None, got {kind}"
            raise TypeError(msg)
        path = f"{environ.get('SCRIPT_NAME', '')}{environ.get('PATH_INFO', '')}" or "/"
        return HttpRequest(
            method, path, headers, body, principal or None,
            client_gone=probe_from_environ(environ),
        )  # fmt: skip

    def _read_body(self, environ: Mapping[str, Any]) -> bytes | HttpResponse:
        limit = self._max_body_bytes
        length_text = str(environ.get("CONTENT_LENGTH") or "").strip()
        stream = environ["wsgi.input"]
        if length_text:
            if not (length_text.isascii() and length_text.isdigit()):  # "²" is a digit too
                return error_reply(400, InvalidRequest("Invalid Content-Length"))
            length = int(length_text)
            if length > limit:
                return error_reply(413, InvalidRequest(f"Request body exceeds {limit} bytes"))
            body: bytes = stream.read(length) if length else b""
            return body
        if environ.get("wsgi.input_terminated"):
            body = stream.read(limit + 1)
            if len(body) > limit:
                return error_reply(413, InvalidRequest(f"Request body exceeds {limit} bytes"))
            return body
        return error_reply(411, InvalidRequest("Content-Length is required"))

    def _respond(self, environ: WSGIEnvironment) -> HttpResponse:
        request = self.request_from_environ(environ)
        if isinstance(request, HttpResponse):
            return request
        return self._server.handle(request)


class _Streamed:
    """The WSGI iterable of a streamed reply: its chunks, and ``close()`` ending it."""

    __slots__ = ("_iterator", "_stream")

    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream
        self._iterator = iter(stream)

    def __iter__(self) -> _Streamed:
        return self

    def __next__(self) -> bytes:
        return next(self._iterator)

    def close(self) -> None:
        """Called by the WSGI server when the body ended or the client went away."""
        for part in (self._iterator, self._stream):
            close = getattr(part, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:
                    logger.exception("internal error closing a streamed reply")

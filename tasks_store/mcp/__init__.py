"""
The MCP protocol layer: serving tools and tasks over HTTP, both protocol generations.

``http`` (:class:`HttpRequest`, :class:`HttpResponse`: one exchange as plain
data), ``server`` (:class:`McpServer`, the protocol core: one request in, one
reply out, and the switch between the generations), ``v2025`` (the
2025-11-25 session protocol: ``initialize``, sessions, ``tools/*``,
``tasks/*``), ``v2026`` (the stateless 2026-07-28 generation, when present),
``jsonrpc`` (:class:`TasksRpc`, the JSON-RPC 2.0 envelope and the 2025-11-25
``tasks/*`` wire), ``tools`` (:class:`Tool`, :class:`ToolRegistry`, running
one call), ``context`` (:class:`TaskContext`, a tool's handle on its task;
:class:`CallContext` for an inline call), ``runner`` (:class:`TaskRunner`,
background execution) and ``wsgi`` (:class:`TasksApp`, the WSGI adapter).
Sessions live in :mod:`tasks_store.store.sessions`.  The protocol-level
errors (:class:`ParseError`, :class:`InvalidRequest`,
:class:`MethodNotFound`) live with every other error in
:mod:`tasks_store.errors` and are re-exported here.  Everything here sits on
the storage layer (``tasks_store.store``) and the domain modules; nothing
below imports it.
"""

from ..errors import InvalidRequest, MethodNotFound, ParseError
from .context import CallContext, TaskContext
from .http import HttpRequest, HttpResponse
from .jsonrpc import TasksRpc, encode_response, error_response
from .runner import TaskFn, TaskRunner
from .server import McpServer, protocol_generation
from .tools import Tool, ToolFn, ToolRegistry
from .wsgi import TasksApp, default_owner_from_environ, remote_user

__all__ = [
    "CallContext",
    "HttpRequest",
    "HttpResponse",
    "InvalidRequest",
    "McpServer",
    "MethodNotFound",
    "ParseError",
    "TaskContext",
    "TaskFn",
    "TaskRunner",
    "TasksApp",
    "TasksRpc",
    "Tool",
    "ToolFn",
    "ToolRegistry",
    "default_owner_from_environ",
    "encode_response",
    "error_response",
    "protocol_generation",
    "remote_user",
]

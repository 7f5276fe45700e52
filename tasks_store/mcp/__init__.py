"""
The MCP protocol layer: serving ``tasks/*`` (and ``tools/call``) over JSON-RPC.

``jsonrpc`` (:class:`TasksRpc`, the JSON-RPC 2.0 envelope), ``tools`` (the
tool table and running one tool call), ``context`` (:class:`TaskContext`, a
tool's handle on its task), ``runner`` (:class:`TaskRunner`, background
execution) and ``wsgi`` (:class:`TasksApp`, the HTTP transport).  The
protocol-level errors (:class:`ParseError`, :class:`InvalidRequest`,
:class:`MethodNotFound`) live with every other error in
:mod:`tasks_store.errors` and are re-exported here.  Everything here sits on the storage layer
(``tasks_store.store``) and the domain modules; nothing below imports it.
"""

from ..errors import InvalidRequest, MethodNotFound, ParseError
from .context import TaskContext
from .jsonrpc import TasksRpc, encode_response, error_response
from .runner import TaskFn, TaskRunner
from .tools import ToolFn
from .wsgi import TasksApp, default_owner_from_environ

__all__ = [
    "InvalidRequest",
    "MethodNotFound",
    "ParseError",
    "TaskContext",
    "TaskFn",
    "TaskRunner",
    "TasksApp",
    "TasksRpc",
    "ToolFn",
    "default_owner_from_environ",
    "encode_response",
    "error_response",
]

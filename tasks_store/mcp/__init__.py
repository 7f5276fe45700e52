"""
The MCP protocol layer: serving ``tasks/*`` (and ``tools/call``) over JSON-RPC.

``jsonrpc`` (:class:`TasksRpc`, the JSON-RPC 2.0 envelope), ``context``
(:class:`TaskContext`, a tool's handle on its task), ``runner``
(:class:`TaskRunner`, background execution) and ``wsgi`` (:class:`TasksApp`,
the HTTP transport).  Everything here sits on the storage layer
(``tasks_store.store``) and the domain modules; nothing below imports it.
"""

from .context import TaskContext
from .jsonrpc import TasksRpc, ToolFn, encode_response, error_response
from .runner import TaskFn, TaskRunner
from .wsgi import TasksApp, default_owner_from_environ

__all__ = [
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

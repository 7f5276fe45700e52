"""
Tools for ``tools/call``: the :data:`ToolFn` type, the check of a tool table,
and running one tool call.

A tool is ``fn(arguments, ctx)`` returning a ``CallToolResult`` dict.  Inline
calls (no ``task`` in the request) get ``ctx=None``; task-augmented calls run
on a :class:`~tasks_store.mcp.runner.TaskRunner` and get the task's
:class:`~tasks_store.mcp.context.TaskContext`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import InvalidParams, StoreError
from ..wire import check_json

if TYPE_CHECKING:
    from .context import TaskContext

__all__ = ["ToolFn", "call_tool", "check_tools"]

logger = logging.getLogger("tasks_store")

#: A tool: ``fn(arguments, ctx)`` returning a ``CallToolResult`` dict;
#: *ctx* is None when the tool runs inline (no ``task`` in the request).
ToolFn = Callable[[dict[str, Any], "TaskContext | None"], Mapping[str, Any]]


def check_tools(tools: object) -> Mapping[str, ToolFn]:
    """
    Return *tools* if it maps tool names (str) to callables.

    Raises:
        TypeError: it is not a mapping, a name is not a str, or a tool is not
            callable.
    """
    if not isinstance(tools, Mapping):
        msg = f"tools must be a mapping of tool name to function, got {type(tools).__name__}"
        raise TypeError(msg)
    for name, tool in tools.items():
        if not isinstance(name, str) or not callable(tool):
            msg = f"tools must map str names to callables; got {name!r}: {tool!r}"
            raise TypeError(msg)
    return tools


def call_tool(
    tool: ToolFn, name: str, arguments: dict[str, Any], ctx: TaskContext | None
) -> dict[str, Any]:
    """
    Run *tool*; return its ``CallToolResult`` as a fresh dict.

    An exception inside the tool becomes a result with ``isError: true`` and
    the exception's message as text (no traceback).

    Raises:
        StoreError: the tool returned something that is not a
            ``CallToolResult`` (a server bug: -32603).
    """
    try:
        out = tool(json.loads(json.dumps(arguments)), ctx)
    except Exception as exc:
        logger.info("tool %r raised %s", name, type(exc).__name__, exc_info=True)
        text = str(exc) or type(exc).__name__
        return {"content": [{"type": "text", "text": text}], "isError": True}
    if not isinstance(out, Mapping) or not isinstance(out.get("content"), list):
        msg = f"tool {name!r} returned something that is not a CallToolResult"
        logger.error("%s", msg)
        raise StoreError(msg)
    result = dict(out)
    try:
        check_json(result, "tool result")
    except InvalidParams as exc:
        msg = f"tool {name!r}: {exc.message}"
        logger.error("%s", msg)
        raise StoreError(msg) from None
    return result


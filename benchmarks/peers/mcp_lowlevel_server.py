"""
Peer: the official Python SDK (mcp==1.30.0) low-level server, experimental tasks, on uvicorn.

Run with the python of the benchmark's mcp 1.30.0 virtualenv (never the
project's)::

    python benchmarks/peers/mcp_lowlevel_server.py --port N [--poll-ms 100]

It serves 2025-11-25 at ``http://127.0.0.1:N/mcp``: the SDK's
``StreamableHTTPSessionManager`` (stateful, JSON responses) and
``server.experimental.enable_tasks()`` (its own ``tasks/*`` handlers and
in-memory store, whose ``pollInterval`` is set to ``--poll-ms``).  One tool,
``work {ms}`` (``taskSupport: optional``): sleeps ``ms`` milliseconds, returns
``done``.  Prints ``listening`` once it serves.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from collections.abc import AsyncIterator
from typing import Any

import anyio
import mcp.types as types
import uvicorn
from mcp.server.experimental.task_context import ServerTaskContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.experimental.tasks.in_memory_task_store import InMemoryTaskStore
from starlette.applications import Starlette
from starlette.routing import Route

POLL_MS = 100


class Store(InMemoryTaskStore):
    """The SDK's store, advertising the benchmark's poll interval (its own is fixed at 500)."""

    async def create_task(self, metadata: types.TaskMetadata, task_id: str | None = None) -> Any:
        task = await super().create_task(metadata, task_id)
        self._tasks[task.taskId].task.pollInterval = POLL_MS
        task.pollInterval = POLL_MS
        return task


server: Server[Any, Any] = Server("bench-mcp-lowlevel")
WORK = types.Tool(
    name="work",
    description="Sleep `ms` milliseconds, then return 'done'.",
    inputSchema={
        "type": "object",
        "properties": {"ms": {"type": "integer", "minimum": 0}},
        "required": ["ms"],
    },
    execution=types.ToolExecution(taskSupport=types.TASK_OPTIONAL),
)


@server.list_tools()
async def list_tools() -> list[types.Tool]:
    return [WORK]


@server.call_tool()
async def call_tool(name: str, arguments: dict[str, Any]) -> Any:
    ms = int(arguments["ms"])
    done = types.CallToolResult(content=[types.TextContent(type="text", text="done")])
    ctx = server.request_context
    if not ctx.experimental.is_task:
        await anyio.sleep(ms / 1000)
        return done

    async def work(task: ServerTaskContext) -> types.CallToolResult:
        await anyio.sleep(ms / 1000)
        # Re-read the task (update_status does): when tasks/cancel ended it
        # meanwhile, run_task then skips completing it.  Without this, its
        # complete() raises on the terminal task, fail() raises again, and the
        # exception ends the SDK's task group: no task runs after that.
        await task.update_status("finishing", notify=False)
        return done

    return await ctx.experimental.run_task(work)


def main() -> None:
    global POLL_MS
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--poll-ms", type=int, default=POLL_MS)
    args = parser.parse_args()
    POLL_MS = args.poll_ms
    with warnings.catch_warnings():  # 1.30 deprecates its experimental tasks API
        warnings.simplefilter("ignore", DeprecationWarning)
        server.experimental.enable_tasks(store=Store())
    manager = StreamableHTTPSessionManager(app=server, json_response=True)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with manager.run():
            print("listening", file=sys.stderr, flush=True)
            yield

    class Endpoint:  # serve /mcp itself, without a redirect to /mcp/
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await manager.handle_request(scope, receive, send)

    app = Starlette(routes=[Route("/mcp", endpoint=Endpoint())], lifespan=lifespan)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

"""
A reference MCP server built from the official Python SDK, mcp==1.30.0 only.

It exists so that the client flow scripts (ts_flow.mjs, py_flow.py) and the
conformance runner (tests/conformance.py) can be checked against a server that
is not ours.  Run it with the python of ``node_tools.python_client_env()``
(never the project's environment)::

    "$(python -c 'from tests.node_tools import python_client_env as p; print(p())')" \
        tests/clients/reference_server.py --host 127.0.0.1 --port 8799 [--json-response]

Serves protocol 2025-11-25 (stateful: the SDK's ``StreamableHTTPSessionManager``
issues ``Mcp-Session-Id``) at ``http://HOST:PORT/mcp`` under uvicorn, with the
SDK's experimental tasks (``server.experimental.enable_tasks()``: its own
``tasks/get``, ``tasks/result``, ``tasks/list``, ``tasks/cancel`` handlers and
in-memory task store).  Tools, listed in this order:

* ``test_simple_text``, ``test_error_handling``: the conformance fixtures of
  2025-11-25 (``tools-call-simple-text``, ``tools-call-error``).
* ``echo {text}``: returns ``text`` (taskSupport absent, i.e. forbidden).
* ``slow_count {steps, delay=0.25}``: taskSupport ``optional``.  As a task it
  counts ``steps`` steps of ``delay`` seconds each, stops at the next step once
  ``tasks/cancel`` marked it cancelled, and completes with
  ``Counted to <steps>.``; called plainly it counts inline.

It prints ``listening on http://HOST:PORT/mcp`` to stderr once it serves.
``--store``/``--redis-url`` are accepted and ignored (the command line of
examples/conformance_server.py; the SDK's store is in memory only).
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
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

SIMPLE_TEXT = "This is a simple text response for testing."
ERROR_TEXT = "This tool intentionally returns an error for testing"

server: Server[Any, Any] = Server("tasks-store-reference-server", version="1.30.0-reference")
with warnings.catch_warnings():  # mcp 1.30 deprecates its experimental tasks API (SEP-1686)
    warnings.simplefilter("ignore", DeprecationWarning)
    support = server.experimental.enable_tasks()

TOOLS = [
    types.Tool(
        name="test_simple_text",
        description="Returns a fixed text (conformance fixture)",
        inputSchema={"type": "object", "properties": {}},
    ),
    types.Tool(
        name="test_error_handling",
        description="Returns a tool error (conformance fixture)",
        inputSchema={"type": "object", "properties": {}},
    ),
    types.Tool(
        name="echo",
        description="Returns its text argument",
        inputSchema={"type": "object", "properties": {"text": {"type": "string"}}},
    ),
    types.Tool(
        name="slow_count",
        description="Counts to steps, delay seconds per step; stops when cancelled",
        inputSchema={
            "type": "object",
            "properties": {
                "steps": {"type": "integer", "minimum": 1, "maximum": 100},
                "delay": {"type": "number", "minimum": 0, "maximum": 10},
            },
            "required": ["steps"],
        },
        execution=types.ToolExecution(taskSupport=types.TASK_OPTIONAL),
    ),
]


def _text(text: str, *, error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], isError=error)


@server.list_tools()
async def list_tools() -> list[types.Tool]:
    return TOOLS


async def _count(steps: int, delay: float, task: ServerTaskContext | None) -> types.CallToolResult:
    for step in range(1, steps + 1):
        await anyio.sleep(delay)
        if task is not None:
            # update_status re-reads the task from the store, so a cancellation
            # made by tasks/cancel (which only marks the stored task) shows here.
            await task.update_status(f"step {step} of {steps}", notify=False)
            if task.task.status == types.TASK_STATUS_CANCELLED:
                return _text(f"cancelled at step {step}", error=True)
    return _text(f"Counted to {steps}.")


@server.call_tool()
async def call_tool(
    name: str, arguments: dict[str, Any]
) -> types.CallToolResult | types.CreateTaskResult:
    ctx = server.request_context
    if name == "test_simple_text":
        return _text(SIMPLE_TEXT)
    if name == "test_error_handling":
        return _text(ERROR_TEXT, error=True)
    if name == "echo":
        return _text(str(arguments.get("text", "")))
    if name == "slow_count":
        steps = int(arguments["steps"])
        delay = float(arguments.get("delay", 0.25))
        if not ctx.experimental.is_task:
            return await _count(steps, delay, None)

        async def work(task: ServerTaskContext) -> types.CallToolResult:
            return await _count(steps, delay, task)

        return await ctx.experimental.run_task(work)
    return _text(f"Unknown tool: {name}", error=True)


def build_app(*, json_response: bool, host: str, port: int) -> Starlette:
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{host}:{port}", f"localhost:{port}"],
        allowed_origins=[f"http://{host}:{port}", f"http://localhost:{port}"],
    )
    manager = StreamableHTTPSessionManager(
        app=server, json_response=json_response, security_settings=security
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with manager.run():
            print(f"listening on http://{host}:{port}/mcp", file=sys.stderr, flush=True)
            yield

    class Endpoint:  # an ASGI app, so that Route serves /mcp itself (no redirect to /mcp/)
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await manager.handle_request(scope, receive, send)

    return Starlette(routes=[Route("/mcp", endpoint=Endpoint())], lifespan=lifespan)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--json-response", action="store_true", help="answer POSTs with JSON, not SSE streams"
    )
    # Taken, and ignored, so that the conformance runner can start this server with the
    # command line of examples/conformance_server.py: the SDK has its in-memory store only.
    parser.add_argument("--store", choices=("memory", "redis"), help="ignored")
    parser.add_argument("--redis-url", help="ignored")
    args = parser.parse_args(argv)
    app = build_app(json_response=args.json_response, host=args.host, port=args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()

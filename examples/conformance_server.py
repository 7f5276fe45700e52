"""
The fixture server of the official MCP conformance suite (``@modelcontextprotocol/conformance``).

Run it as the suite's runner does (tests/conformance.py)::

    python examples/conformance_server.py --host 127.0.0.1 --port N \\
        [--store memory|redis] [--redis-url URL]

It serves ``http://HOST:PORT/mcp``: the tools of
``../shared/spec/conformance-fixtures.md`` that need no input flow, each with
the task support the fixtures table gives.  The suite sends no credentials,
so anonymous callers are allowed here (never in a real deployment) and the
quota is generous.

:data:`TOOLS` is a plain list of :class:`Tool` definitions, in the order
``tools/list`` shows them (``test_simple_text`` first, as the suite
requires): add a fixture by adding a ``Tool(...)`` to it.
"""

from __future__ import annotations

import argparse
import logging
import signal
import time
from typing import Any

import waitress

from tasks_store import InMemoryTaskStore, StoreError, TaskSecurityConfig, TaskStore
from tasks_store.mcp import McpServer, Tool
from tasks_store.mcp.context import TaskContext
from tasks_store.mcp.tools import ToolContext
from tasks_store.mcp.v2026 import RequestCallContext

EMPTY: dict[str, Any] = {"type": "object", "properties": {}}


def _text(text: str, *, is_error: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {"content": [{"type": "text", "text": text}]}
    if is_error:
        result["isError"] = True
    return result


def _sleep(ctx: ToolContext, seconds: float) -> bool:
    """Sleep *seconds* in small steps; return False when the task got cancelled."""
    deadline = time.monotonic() + seconds
    while True:
        if ctx.is_cancelled():
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            return True
        time.sleep(min(left, 0.05))


def simple_text(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    return _text("This is a simple text response for testing.")


def error_handling(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    return _text("This tool intentionally returns an error for testing", is_error=True)


def greet(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    return _text(f"Hello, {arguments['name']}!")


def slow_compute(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    seconds = arguments.get("seconds", 1)
    label = arguments.get("label", "job")
    if not _sleep(ctx, seconds):
        return _text(f"{label}: cancelled")
    return _text(f"{label}: computed after {seconds} s")


def failing_job(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    _sleep(ctx, 1.0)
    return _text("failing_job failed on purpose (a tool error)", is_error=True)


def protocol_error_job(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    _sleep(ctx, 0.2)
    msg = "protocol_error_job hit a protocol-level fault on purpose"
    raise StoreError(msg)  # a TaskError: the request fails (-32603), the task is failed


def missing_capability(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    if isinstance(ctx, RequestCallContext):  # 2026-07-28: this request's capabilities
        ctx.require_capability("sampling")  # -32021, data.requiredCapabilities {sampling: {}}
        return _text("The client declared sampling for this request.")
    return _text("This tool needs the client's sampling capability.", is_error=True)


def streaming_elicitation(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """2026-07-28: ask through an InputRequiredResult, never a request on the stream."""
    if not isinstance(ctx, RequestCallContext):
        return _text("Elicitation is asked through InputRequiredResult on 2026-07-28 only.")
    return {
        "resultType": "input_required",
        "inputRequests": {
            "user_name": {
                "method": "elicitation/create",
                "params": {
                    "mode": "form",
                    "message": "What is your name?",
                    "requestedSchema": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}},
                        "required": ["name"],
                    },
                },
            }
        },
    }


#: How long confirm_delete waits in input_required before it gives up.
CONFIRM_TIMEOUT = 30.0


def confirm_delete(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """
    A task that asks for confirmation (status input_required).

    Storing what it asks and delivering the client's answer through
    ``tasks/update`` is issue 11's (input flows); until then the task waits in
    ``input_required`` until it is cancelled, or gives up after
    :data:`CONFIRM_TIMEOUT` seconds.
    """
    filename = arguments["filename"]
    if not isinstance(ctx, TaskContext):
        return _text(f"Not deleting {filename}: confirmation needs a task.", is_error=True)
    ctx.require_input(f"Confirm deleting {filename}?")
    if not _sleep(ctx, CONFIRM_TIMEOUT):
        return _text(f"{filename}: cancelled")
    return _text(f"Not deleting {filename}: no confirmation arrived.", is_error=True)


def logging_tool(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    return _text("Logging tool done (no log notifications were requested).")


TOOLS: list[Tool] = [
    Tool(
        name="test_simple_text",
        description="Returns a simple text response.",
        input_schema=EMPTY,
        fn=simple_text,
    ),
    Tool(
        name="test_error_handling",
        description="Always returns a tool error (isError: true).",
        input_schema=EMPTY,
        fn=error_handling,
    ),
    Tool(
        name="greet",
        description="Greets someone by name.",
        input_schema={
            "type": "object",
            "properties": {"name": {"type": "string"}},
            "required": ["name"],
        },
        fn=greet,
    ),
    Tool(
        name="slow_compute",
        description="Sleeps `seconds`, then returns; cancellable.",
        input_schema={
            "type": "object",
            "properties": {
                "seconds": {"type": "number", "minimum": 0, "maximum": 600},
                "label": {"type": "string"},
            },
        },
        task_support="optional",
        fn=slow_compute,
    ),
    Tool(
        name="failing_job",
        description="A task that ends with a tool error after about a second.",
        input_schema=EMPTY,
        task_support="required",
        fn=failing_job,
    ),
    Tool(
        name="protocol_error_job",
        description="A task that fails with a protocol-level error.",
        input_schema=EMPTY,
        task_support="optional",
        fn=protocol_error_job,
    ),
    Tool(
        name="test_missing_capability",
        description="Needs the client's sampling capability.",
        input_schema=EMPTY,
        fn=missing_capability,
    ),
    Tool(
        name="test_streaming_elicitation",
        description="Asks for the user's name through an InputRequiredResult (2026-07-28).",
        input_schema=EMPTY,
        fn=streaming_elicitation,
    ),
    Tool(
        name="confirm_delete",
        description="A task that asks the user to confirm deleting a file.",
        input_schema={
            "type": "object",
            "properties": {"filename": {"type": "string"}},
            "required": ["filename"],
        },
        task_support="optional",
        fn=confirm_delete,
    ),
    Tool(
        name="test_logging_tool",
        description="Returns at once and sends no log notifications.",
        input_schema=EMPTY,
        fn=logging_tool,
    ),
]


def make_store(kind: str, redis_url: str | None) -> TaskStore:
    """Return the task store: anonymous callers allowed, a generous quota."""
    security = TaskSecurityConfig(max_tasks_per_owner=100_000, allow_anonymous=True)
    if kind == "memory":
        return InMemoryTaskStore(poll_interval_ms=200, security=security)
    import redis

    from tasks_store.store.redis import RedisTaskStore

    client = redis.Redis.from_url(
        redis_url or "redis://127.0.0.1:6379/0", socket_timeout=5, socket_connect_timeout=2
    )
    return RedisTaskStore(client, poll_interval_ms=200, security=security)


def make_server(store: TaskStore) -> McpServer:
    """Return the MCP server over *store* with :data:`TOOLS`."""
    return McpServer(
        store,
        TOOLS,
        server_info={"name": "tasks_store-conformance", "version": "1.0.0"},
        result_timeout=120.0,
        max_workers=32,
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--store", choices=("memory", "redis"), default="memory")
    parser.add_argument("--redis-url", help="with --store redis (redis://127.0.0.1:6379/0)")
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args(argv)
    if args.redis_url and args.store != "redis":
        parser.error("--redis-url needs --store redis")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    mcp = make_server(make_store(args.store, args.redis_url))
    app = mcp.wsgi_app()
    server = waitress.create_server(
        app,
        host=args.host,
        port=args.port,
        threads=args.threads,
        max_request_body_size=app.max_body_bytes + 1,  # waitress refuses >= this, unread
        channel_request_lookahead=1,  # so a blocked tasks/result sees its client hang up
    )
    signal.signal(signal.SIGTERM, _interrupt)
    print(
        f"MCP conformance fixtures listening on http://{args.host}:{server.effective_port}/mcp "
        f"(store: {args.store})",
        flush=True,
    )
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        app.close(cancel=True)


if __name__ == "__main__":
    main()

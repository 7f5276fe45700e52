"""
The fixture server of the official MCP conformance suite (``@modelcontextprotocol/conformance``).

Run it as the suite's runner does (tests/conformance.py)::

    python examples/conformance_server.py --host 127.0.0.1 --port N \\
        [--store memory|redis] [--redis-url URL]

It serves ``http://HOST:PORT/mcp``: the tools (and the one prompt) that the
suite's fixtures table (``conformance-fixtures.md`` of the specification
texts) names, each with the task support that table gives; this module is
their only copy in the repository: the input flows of tasks (``confirm_delete``,
``multi_input``: a task asks through ``ctx.elicit`` and ``tasks/update``
answers), a tool that gathers input before its task
(``test_tool_with_task``), the multi round-trip fixtures
(``test_input_required_result_*``: ``ctx.elicit`` and friends on a
2026-07-28 request, answered ``input_required`` until the retry carries the
answers), and ``test_trigger_tool_change``, which adds a tool (so that
``subscriptions/listen`` streams get ``notifications/tools/list_changed``).
The suite sends no credentials, so anonymous callers are allowed here
(never in a real deployment) and the quota is generous.

:data:`TOOLS` is a plain list of :class:`Tool` definitions, in the order
``tools/list`` shows them (``test_simple_text`` first, as the suite
requires): add a fixture by adding a ``Tool(...)`` to it.  :data:`PROMPTS`
holds the prompts.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import signal
import threading
import time
from typing import Any

import waitress

from tasks_store import InMemoryTaskStore, StoreError, TaskSecurityConfig, TaskStore, WaitTimeout
from tasks_store.mcp import McpServer, Tool
from tasks_store.mcp.limits import ServerLimits
from tasks_store.mcp.mrtr import elicitation_request, roots_request, sampling_request
from tasks_store.mcp.prompts import Prompt, PromptRegistry
from tasks_store.mcp.tools import ToolContext, ToolRegistry
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


#: How long confirm_delete and multi_input wait for the client before they give up.
CONFIRM_TIMEOUT = 120.0

CONFIRM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"confirm": {"type": "boolean"}},
}
NAME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}},
    "required": ["name"],
}


def _accepted(answer: dict[str, Any]) -> dict[str, Any] | None:
    """The submitted form of an ``ElicitResult``, or None when not accepted."""
    content = answer.get("content")
    return content if answer.get("action") == "accept" and isinstance(content, dict) else None


def confirm_delete(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """
    Ask the user to confirm, then "delete" the file.

    In a task, ``ctx.elicit`` stores the question with the task
    (``input_required``; ``tasks/get`` shows it, ``tasks/update`` answers
    it) and blocks until the answer arrives, through whichever worker.  On
    a 2026-07-28 call answered inline it is a multi round-trip request.
    """
    filename = arguments["filename"]
    try:
        answer = ctx.elicit(f"Delete {filename}?", CONFIRM_SCHEMA, timeout=CONFIRM_TIMEOUT)
    except WaitTimeout:
        return _text(f"Not deleting {filename}: no confirmation arrived.", is_error=True)
    form = _accepted(answer)
    if form is None or form.get("confirm") is not True:
        return _text(f"Not deleting {filename}: the user said no.")
    return _text(f"Deleted {filename}.")


def multi_input(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """Ask two questions at once (two keys outstanding); go on once both are answered."""
    answers = ctx.request_input(
        {
            "name": elicitation_request("What is your name?", NAME_SCHEMA),
            "confirm": elicitation_request("Go ahead?", CONFIRM_SCHEMA),
        },
        status_message="Waiting for two answers",
        timeout=CONFIRM_TIMEOUT,
    )
    names = [str((_accepted(a) or {}).get("name", "?")) for a in answers.values()]
    return _text(f"multi_input done: {', '.join(names)}")


def ask_name_first(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """test_tool_with_task's prepare step: ask the user's name before the task exists."""
    form = _accepted(ctx.elicit("What is your name?", NAME_SCHEMA, key="user_name")) or {}
    return {**arguments, "name": str(form.get("name", "stranger"))}


def tool_with_task(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """The task, made on the final round with the name gathered first."""
    _sleep(ctx, 0.2)
    return _text(f"Hello, {arguments.get('name', 'stranger')}! (greeted from a task)")


# -- multi round-trip requests (SEP-2322): the tool asks, the retry answers ------


def mrtr_elicitation(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    form = _accepted(ctx.elicit("What is your name?", NAME_SCHEMA, key="user_name")) or {}
    return _text(f"Hello, {form.get('name', 'stranger')}!")


def mrtr_sampling(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    answer = ctx.create_message("What is the capital of France?", 100, key="capital_question")
    content = answer.get("content")
    text = content.get("text") if isinstance(content, dict) else None
    return _text(f"The model said: {text}")


def mrtr_list_roots(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    roots = ctx.list_roots(key="client_roots").get("roots") or []
    names = [str(r.get("name") or r.get("uri")) for r in roots if isinstance(r, dict)]
    return _text(f"Roots: {', '.join(names) or '(none)'}")


def mrtr_request_state(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    if isinstance(ctx, RequestCallContext) and ctx.state is None:
        ctx.state = {"asked": "confirm"}  # carried, signed, to the retry
    ok_schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    form = _accepted(ctx.elicit("Confirm?", ok_schema, key="confirm")) or {}
    state = ctx.state if isinstance(ctx, RequestCallContext) else None
    if state != {"asked": "confirm"}:
        return _text("the request state did not come back", is_error=True)
    return _text(f"state-ok: confirmed={form.get('ok')}")


def mrtr_multiple_inputs(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    answers = ctx.request_input(
        {
            "user_name": elicitation_request("What is your name?", NAME_SCHEMA),
            "greeting": sampling_request("Say hello.", 50),
            "client_roots": roots_request(),
        }
    )
    name = (_accepted(answers["user_name"]) or {}).get("name", "?")
    content = answers["greeting"].get("content")
    greeting = content.get("text") if isinstance(content, dict) else "?"
    roots = len(answers["client_roots"].get("roots") or [])
    return _text(f"{greeting} {name} ({roots} root(s))")


def mrtr_multi_round(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    name = (_accepted(ctx.elicit("What is your name?", NAME_SCHEMA, key="step1")) or {}).get(
        "name", "?"
    )
    color_schema = {"type": "object", "properties": {"color": {"type": "string"}}}
    color = (_accepted(ctx.elicit("Favourite colour?", color_schema, key="step2")) or {}).get(
        "color", "?"
    )
    return _text(f"{name} likes {color}.")


def mrtr_tampered_state(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    ok_schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    form = _accepted(ctx.elicit("Confirm?", ok_schema, key="confirm")) or {}
    return _text(f"confirmed={form.get('ok')}")


def mrtr_capabilities(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """Ask only with what this very request declared."""
    if not isinstance(ctx, RequestCallContext):
        return _text("Asks only on 2026-07-28.", is_error=True)
    requests: dict[str, Any] = {}
    if ctx.has_capability("sampling"):
        requests["sampling_check"] = sampling_request("Say yes.", 10)
    if ctx.has_capability("elicitation"):
        requests["elicitation_check"] = elicitation_request("Say yes.", CONFIRM_SCHEMA)
    if ctx.has_capability("roots"):
        requests["roots_check"] = roots_request()
    if not requests:
        return _text("The client declared nothing to ask with.")
    answers = ctx.request_input(requests)
    return _text(f"Asked with: {', '.join(sorted(answers))}")


def mrtr_prompt(arguments: dict[str, str], ctx: Any) -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {"context": {"type": "string"}},
        "required": ["context"],
    }
    answer = ctx.elicit("What context should the prompt use?", schema, key="user_context")
    form = _accepted(answer) or {}
    text = f"Answer with this context in mind: {form.get('context', '')}"
    return {"messages": [{"role": "user", "content": {"type": "text", "text": text}}]}


# -- the tools list changing (subscriptions/listen) ----------------------------

_registries: list[ToolRegistry] = []  # the running server's tools (make_server sets it)
_prompt_registries: list[PromptRegistry] = []  # and its prompts
_dynamic = itertools.count(1)
_dynamic_lock = threading.Lock()


def trigger_prompt_change(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """Add a prompt to the running server: its prompts list changes."""
    with _dynamic_lock:
        name = f"test_dynamic_prompt_{next(_dynamic)}"
    for registry in _prompt_registries:
        registry.add(Prompt(name=name, description="Added by test_trigger_prompt_change.",
                            fn=lambda arguments, ctx: {"messages": []}))  # fmt: skip
    return _text(f"Added {name}.")


def trigger_tool_change(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """Add a tool to the running server: its tools list changes."""
    with _dynamic_lock:
        name = f"test_dynamic_tool_{next(_dynamic)}"
    for registry in _registries:
        tool = Tool(
            name=name,
            description="Added by test_trigger_tool_change.",
            input_schema=EMPTY,
            fn=simple_text,
        )
        registry.add(tool)
    return _text(f"Added {name}.")


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
    Tool(
        name="multi_input",
        description="A task that asks two questions at once.",
        input_schema=EMPTY,
        task_support="optional",
        fn=multi_input,
    ),
    Tool(
        name="test_tool_with_task",
        description="Asks the user's name first (multi round-trip), then greets from a task.",
        input_schema=EMPTY,
        task_support="required",
        fn=tool_with_task,
        prepare=ask_name_first,
    ),
    Tool(
        name="test_trigger_tool_change",
        description="Adds a tool, so that the tools list changes.",
        input_schema=EMPTY,
        fn=trigger_tool_change,
    ),
    Tool(
        name="test_trigger_prompt_change",
        description="Adds a prompt, so that the prompts list changes.",
        input_schema=EMPTY,
        fn=trigger_prompt_change,
    ),
    *(
        Tool(
            name=f"test_input_required_result_{suffix}",
            description=description,
            input_schema=EMPTY,
            fn=fn,
        )
        for suffix, description, fn in [
            ("elicitation", "Asks the user's name (user_name).", mrtr_elicitation),
            ("sampling", "Asks the model (capital_question).", mrtr_sampling),
            ("list_roots", "Asks for the client's roots (client_roots).", mrtr_list_roots),
            ("request_state", "Asks a confirmation, carrying state.", mrtr_request_state),
            ("multiple_inputs", "Asks three things at once.", mrtr_multiple_inputs),
            ("multi_round", "Asks two things, one round each.", mrtr_multi_round),
            ("tampered_state", "Asks a confirmation; verifies the state.", mrtr_tampered_state),
            ("capabilities", "Asks only with declared capabilities.", mrtr_capabilities),
        ]
    ),
]

PROMPTS: list[Prompt] = [
    Prompt(
        name="test_input_required_result_prompt",
        description="Asks for context (multi round-trip) before it is built.",
        fn=mrtr_prompt,
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
    server = McpServer(
        store,
        TOOLS,
        server_info={"name": "tasks_store-conformance", "version": "1.0.0"},
        result_timeout=120.0,
        max_workers=32,
        prompts=PROMPTS,
        # The suite's calls are all the one anonymous owner, and it opens
        # listen streams back to back (each ends once the server sees its
        # client gone): room for a few at once.
        limits=ServerLimits(max_blocking=16, max_blocking_per_owner=8),
    )
    _registries[:] = [server.tools]
    _prompt_registries[:] = [server.prompts]
    return server


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
        channel_request_lookahead=1,  # a blocked tasks/result or a stream sees its client leave
    )

    def interrupt(signum: int, frame: object) -> None:
        # End the open streams and blocked calls first: waitress's run()
        # catches the KeyboardInterrupt and waits (up to 5 s) for its threads
        # before the finally below would get to close the app.
        app.close(cancel=True)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
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

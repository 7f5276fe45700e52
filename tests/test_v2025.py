"""
McpServer.handle on the 2025-11-25 session protocol, with no WSGI in between.

Lifecycle (initialize, version negotiation, notifications/initialized, ping),
sessions (issued ids, 400/404, DELETE), the transport's header checks
(MCP-Protocol-Version, Origin, Content-Type, Accept), the switch to the
2026-07-28 generation, tools/list and tools/call (taskSupport, argument
checks, tool errors), owners (principal over session, namespaces), and the
2025-11-25 wire of tool-error tasks.  Every JSON body is checked against the
2025-11-25 schema.  Runs once per store backend.
"""

# Asserts read ``expected == actual`` (project convention), which SIM300 calls Yoda.

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tasks_store import InvalidParams, TaskSecurityConfig, TaskStatus
from tasks_store.mcp import HttpRequest, HttpResponse, McpServer, Tool, ToolRegistry
from tasks_store.mcp import server as server_module
from tasks_store.mcp.context import CallContext, TaskContext
from tasks_store.mcp.tools import ToolContext
from tasks_store.store._base import foreign_log

from .mcp_schema import check_response

pytestmark = pytest.mark.timeout(30)

WAIT = 10.0  # bound on event waits; never asserted on
LATEST = "2025-11-25"
OLDER = ["2025-06-18", "2025-03-26", "2024-11-05"]


def echo(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": arguments["text"]}]}


def boom(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    raise RuntimeError("kaboom")


def protocol_fault(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    raise InvalidParams("the tool refused its input")


def tool_error(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": "it went wrong"}], "isError": True}


SEEN: list[Any] = []


def record_ctx(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    SEEN.append(ctx)
    ctx.set_variable("seen", True)
    return {"content": [{"type": "text", "text": str(ctx.get_variable("seen"))}]}


TEXT = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}


def make_tools() -> ToolRegistry:
    return ToolRegistry(
        [
            Tool(name="echo", fn=echo, description="Echo.", input_schema=TEXT),
            Tool(name="echo_any", fn=echo, input_schema=TEXT, task_support="optional"),
            Tool(name="echo_task", fn=echo, input_schema=TEXT, task_support="required"),
            Tool(name="boom", fn=boom, task_support="optional"),
            Tool(name="protocol_fault", fn=protocol_fault, task_support="optional"),
            Tool(name="tool_error", fn=tool_error, task_support="optional"),
            Tool(name="record_ctx", fn=record_ctx, task_support="optional"),
        ]
    )


@pytest.fixture
def server(make_store: Any) -> Iterator[McpServer]:
    import time

    store = make_store(clock=time.time, security=TaskSecurityConfig(max_tasks_per_owner=50))
    with McpServer(store, make_tools(), result_timeout=WAIT) as server:
        yield server


def request(
    body: Any,
    *,
    session: str | None = None,
    version: str | None = None,
    method: str = "POST",
    principal: str | None = None,
    raw: bytes | None = None,
    **headers: str,
) -> HttpRequest:
    all_headers = {"Content-Type": "application/json"}
    if session is not None:
        all_headers["Mcp-Session-Id"] = session
    if version is not None:
        all_headers["MCP-Protocol-Version"] = version
    all_headers.update({k.replace("_", "-"): v for k, v in headers.items()})
    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    return HttpRequest(method, "/mcp", all_headers, data, principal)


def body_of(response: HttpResponse) -> Any:
    assert "application/json" == response.header("content-type")
    payload = json.loads(response.body)
    check_response(payload)
    return payload


def message(method: str, params: Any = None, request_id: int | str = 1) -> dict[str, Any]:
    out: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        out["params"] = params
    return out


def init_params(version: str = LATEST) -> dict[str, Any]:
    return {
        "protocolVersion": version,
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1.0"},
    }


def initialize(server: McpServer, version: str = LATEST, **kwargs: Any) -> tuple[str, Any]:
    """Return (session id, initialize result)."""
    response = server.handle(request(message("initialize", init_params(version)), **kwargs))
    assert 200 == response.status
    payload = body_of(response)
    check_response(payload, "InitializeResult")
    session = response.header("mcp-session-id")
    assert session is not None
    return session, payload["result"]


class Session:
    """A client of *server* holding one issued session."""

    def __init__(self, server: McpServer, version: str = LATEST, principal: str | None = None):
        self.server = server
        self.principal = principal
        self.id, self.init = initialize(server, version)
        self.version = version if version in (LATEST, *OLDER) else LATEST
        notified = self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        assert (202, b"") == (notified.status, notified.body)

    def send(self, body: Any, **kwargs: Any) -> HttpResponse:
        kwargs.setdefault("session", self.id)
        kwargs.setdefault("version", self.version)
        kwargs.setdefault("principal", self.principal)
        return self.server.handle(request(body, **kwargs))

    def call(self, method: str, params: Any = None, result_def: str | None = None) -> Any:
        response = self.send(message(method, params))
        assert 200 == response.status, response
        payload = body_of(response)
        if result_def is not None and "result" in payload:
            check_response(payload, result_def)
        return payload

    def ok(self, method: str, params: Any = None, result_def: str | None = None) -> Any:
        payload = self.call(method, params, result_def)
        assert "result" in payload, payload
        return payload["result"]

    def error(self, method: str, params: Any = None) -> dict[str, Any]:
        payload = self.call(method, params)
        assert "error" in payload, payload
        return payload["error"]  # type: ignore[no-any-return]


# -- initialize ---------------------------------------------------------------------


def test_initialize_issues_a_session_and_answers_the_capabilities(server: McpServer) -> None:
    """initialize: 2025-11-25, tools and tasks capabilities, serverInfo, a visible-ASCII id."""
    session, result = initialize(server)
    assert LATEST == result["protocolVersion"]
    assert {
        "tools": {},
        "tasks": {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}},
    } == result["capabilities"]
    assert "tasks_store" == result["serverInfo"]["name"]
    assert 43 == len(session)
    assert all(0x21 <= ord(c) <= 0x7E for c in session)


def test_every_initialize_issues_a_new_random_session(server: McpServer) -> None:
    """Ids never repeat, even for the same client."""
    ids = {initialize(server)[0] for _ in range(20)}
    assert 20 == len(ids)


@pytest.mark.parametrize("version", OLDER)
def test_older_revision_is_served_without_tasks(server: McpServer, version: str) -> None:
    """A client asking for an older dated revision gets it, without the tasks capability."""
    _, result = initialize(server, version)
    assert version == result["protocolVersion"]
    assert {"tools": {}} == result["capabilities"]


@pytest.mark.parametrize("version", ["2099-01-01", "2025-01-01", "1.0", ""])
def test_unknown_revision_gets_the_latest(server: McpServer, version: str) -> None:
    """An unknown protocolVersion is answered with the server's latest, 2025-11-25."""
    _, result = initialize(server, version)
    assert LATEST == result["protocolVersion"]
    assert "tasks" in result["capabilities"]


def test_server_info_and_instructions_are_the_servers(make_store: Any) -> None:
    """serverInfo and instructions come from the constructor."""
    info = {"name": "demo", "version": "2.0", "title": "Demo"}
    with McpServer(make_store(), server_info=info, instructions="Be nice.") as server:
        _, result = initialize(server)
    assert info == result["serverInfo"]
    assert "Be nice." == result["instructions"]


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({}, "protocolVersion"),
        ({"protocolVersion": 20251125, "capabilities": {}, "clientInfo": {}}, "protocolVersion"),
        ({"protocolVersion": LATEST, "clientInfo": {"name": "a", "version": "1"}}, "capabilities"),
        ({"protocolVersion": LATEST, "capabilities": {}}, "clientInfo"),
        ({"protocolVersion": LATEST, "capabilities": {}, "clientInfo": {"name": "a"}},
         "clientInfo"),
    ],
    ids=repr,
)
def test_initialize_with_bad_params_is_invalid_params(
    server: McpServer, params: dict[str, Any], reason: str
) -> None:
    """A malformed InitializeRequest answers -32602 naming the field, and opens no session."""
    response = server.handle(request(message("initialize", params)))
    assert 200 == response.status
    assert response.header("mcp-session-id") is None
    error = body_of(response)["error"]
    assert -32602 == error["code"]
    assert reason in error["message"]


def test_ping_answers_an_empty_result(server: McpServer) -> None:
    """ping -> exactly {}."""
    client = Session(server)
    assert {"jsonrpc": "2.0", "id": 1, "result": {}} == client.call("ping")


def test_notifications_and_client_responses_are_202(server: McpServer) -> None:
    """Notifications (any) and JSON-RPC responses from the client answer 202, empty."""
    client = Session(server)
    for body in (
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}},
        {"jsonrpc": "2.0", "method": "notifications/whatever"},
        {"jsonrpc": "2.0", "id": 5, "result": {}},
    ):
        response = client.send(body)
        assert (202, b"") == (response.status, response.body)


# -- sessions -----------------------------------------------------------------------


def test_request_without_session_is_400(server: McpServer) -> None:
    """Any message but initialize needs the header: 400, with the request's id."""
    for body in (message("ping", request_id=9), {"jsonrpc": "2.0", "method": "notifications/x"}):
        response = server.handle(request(body))
        assert 400 == response.status
        payload = body_of(response)
        assert -32600 == payload["error"]["code"]
        assert "Mcp-Session-Id" in payload["error"]["message"]
    assert 9 == body_of(server.handle(request(message("ping", request_id=9))))["id"]


@pytest.mark.parametrize("session", ["made-up", "A" * 43, "x" * 256])
def test_unknown_session_is_404(server: McpServer, session: str) -> None:
    """An id the server never issued: 404."""
    initialize(server)
    response = server.handle(request(message("ping"), session=session))
    assert 404 == response.status
    assert -32600 == body_of(response)["error"]["code"]


@pytest.mark.parametrize("session", ["has space", "caf\u00e9", "tab\there", "", "x" * 257])
def test_malformed_session_header_is_400(server: McpServer, session: str) -> None:
    """A header that cannot be an issued id (not 1..256 visible ASCII): 400."""
    response = server.handle(request(message("ping"), session=session))
    assert 400 == response.status


def test_delete_ends_the_session(server: McpServer) -> None:
    """DELETE with the id -> 204; then that id is 404 everywhere, DELETE included."""
    client = Session(server)
    deleted = server.handle(request(None, method="DELETE", session=client.id))
    assert (204, b"") == (deleted.status, deleted.body)
    assert 404 == client.send(message("ping")).status
    assert 404 == server.handle(request(None, method="DELETE", session=client.id)).status


def test_delete_without_session_is_400(server: McpServer) -> None:
    """DELETE needs the header."""
    assert 400 == server.handle(request(None, method="DELETE")).status


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "HEAD", "OPTIONS"])
def test_other_http_methods_are_405(server: McpServer, method: str) -> None:
    """No server stream: GET (and anything but POST and DELETE) answers 405 with Allow."""
    client = Session(server)
    response = client.send(None, method=method)
    assert 405 == response.status
    assert "POST, DELETE" == response.header("allow")


def test_sessions_work_across_servers_on_one_store(make_store: Any) -> None:
    """A session issued by one server (worker) is valid on another sharing the backend."""
    store = make_store()
    from tasks_store.store.sessions import InMemorySessions, RedisSessions, sessions_for

    sessions = sessions_for(store)
    assert isinstance(sessions, (InMemorySessions, RedisSessions))
    # In-memory sessions live in one process: share the object, as one process would.
    shared = sessions if isinstance(sessions, InMemorySessions) else None
    with McpServer(store, sessions=shared) as one, McpServer(store, sessions=shared) as two:
        session, _ = initialize(one)
        response = two.handle(request(message("ping"), session=session))
        assert 200 == response.status
        two.handle(request(None, method="DELETE", session=session))
        assert 404 == one.handle(request(message("ping"), session=session)).status


# -- MCP-Protocol-Version and other headers ------------------------------------------


def test_protocol_version_header_may_be_absent(server: McpServer) -> None:
    """Without the header the session's negotiated revision applies (tasks included)."""
    client = Session(server)
    response = server.handle(request(message("tasks/list"), session=client.id))
    assert 200 == response.status
    check_response(body_of(response), "ListTasksResult")


@pytest.mark.parametrize("version", ["2025-01-01", "2024-10-07", "2025-13-45", "1999-12-31"])
def test_unsupported_protocol_version_header_is_400(server: McpServer, version: str) -> None:
    """A 2025-or-older dated value that no revision has: 400 (transports spec)."""
    client = Session(server)
    response = client.send(message("ping"), version=version)
    assert 400 == response.status
    assert "MCP-Protocol-Version" in body_of(response)["error"]["message"]
    init = request(message("initialize", init_params()), version=version)
    assert 400 == server.handle(init).status


def test_protocol_version_header_other_than_the_sessions_is_400(server: McpServer) -> None:
    """A supported revision that is not the session's negotiated one: 400."""
    client = Session(server)
    response = client.send(message("ping"), version="2025-06-18")
    assert 400 == response.status
    old = Session(server, "2025-06-18")
    assert 400 == old.send(message("ping"), version=LATEST).status


def test_origin_not_allowed_is_403(server: McpServer) -> None:
    """An Origin that is not loopback (or allowed) -> 403 before anything else."""
    client = Session(server)
    for origin in ("http://evil.example.com", "null", "https://127.0.0.1.evil.example"):
        assert 403 == client.send(message("ping"), Origin=origin).status
    for origin in ("http://localhost:3000", "http://127.0.0.1:8765", "http://[::1]"):
        assert 200 == client.send(message("ping"), Origin=origin).status


def test_allowed_origins_are_accepted(make_store: Any) -> None:
    """allowed_origins adds exact origins; "*" accepts any."""
    with McpServer(make_store(), allowed_origins=["https://app.example"]) as server:
        session, _ = initialize(server, Origin="https://app.example")
        ping = request(message("ping"), session=session, Origin="https://other.example")
        assert 403 == server.handle(ping).status
    with McpServer(make_store(), allowed_origins=["*"]) as server:
        initialize(server, Origin="https://anything.example")


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "json", ""])
def test_non_json_content_type_is_415(server: McpServer, content_type: str) -> None:
    """The body must be application/json."""
    response = server.handle(request(message("ping"), **{"Content-Type": content_type}))
    assert 415 == response.status


@pytest.mark.parametrize(
    ("accept", "status"),
    [
        ("text/event-stream", 406),
        ("text/html", 406),
        ("application/json;q=0", 406),
        ("application/json, text/event-stream", 200),
        ("*/*", 200),
        ("application/*", 200),
        ("text/event-stream, application/json;q=0.5", 200),
    ],
)
def test_accept_must_allow_json(server: McpServer, accept: str, status: int) -> None:
    """An Accept header that rules out JSON: 406; none at all is fine."""
    init = request(message("initialize", init_params()), Accept=accept)
    assert status == server.handle(init).status


@pytest.mark.parametrize(
    ("raw", "code"),
    [(b"not json", -32700), (b"\xff\xfe", -32700), (b"", -32700), (b"[1, 2]", -32600),
     (b'"text"', -32600), (b"[]", -32600)],
)
def test_unreadable_bodies_are_400_without_id(server: McpServer, raw: bytes, code: int) -> None:
    """Parse errors and messages that are not one JSON object: 400, no id."""
    response = server.handle(request(None, raw=raw))
    assert 400 == response.status
    payload = body_of(response)
    assert code == payload["error"]["code"]
    assert "id" not in payload


def test_bad_envelope_with_an_id_is_200(server: McpServer) -> None:
    """jsonrpc not 2.0 with a readable id: the JSON-RPC error, HTTP 200."""
    client = Session(server)
    response = client.send({"jsonrpc": "1.0", "id": 3, "method": "ping"})
    assert 200 == response.status
    assert -32600 == body_of(response)["error"]["code"]


# -- the generation switch -------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "params", "generation"),
    [
        ({}, None, "2025-11-25"),
        ({"MCP-Protocol-Version": "2025-11-25"}, None, "2025-11-25"),
        ({"MCP-Protocol-Version": "2024-11-05"}, None, "2025-11-25"),
        ({"MCP-Protocol-Version": "2026-07-28"}, None, "2026-07-28"),
        ({"MCP-Protocol-Version": "v999.0.0"}, None, "2026-07-28"),
        ({}, {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}, "2026-07-28"),
        ({"MCP-Protocol-Version": "2025-11-25"},
         {"_meta": {"io.modelcontextprotocol/protocolVersion": "x"}}, "2026-07-28"),
        ({}, {"_meta": {"other": 1}}, "2025-11-25"),
    ],
)
def test_protocol_generation(
    headers: dict[str, str], params: Any, generation: str
) -> None:
    """2026-07-28 by a non-2025 header or by _meta's protocolVersion; else 2025-11-25."""
    msg = message("tools/list", params)
    got = server_module.protocol_generation(
        HttpRequest("POST", "/mcp", headers, json.dumps(msg).encode()), msg
    )
    assert generation == got


def test_2026_requests_go_to_the_v2026_hook(
    server: McpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 2026 request is handed to v2026.handle(server, request, message), whatever it answers."""
    calls: list[tuple[Any, ...]] = []

    def fake(srv: McpServer, req: HttpRequest, msg: Any) -> HttpResponse:
        calls.append((srv, req, msg))
        return HttpResponse.json(200, {"jsonrpc": "2.0", "id": 1, "result": {"fake": True}})

    monkeypatch.setattr(server_module, "_v2026_handler", fake)
    sent = request(message("server/discover"), version="2026-07-28")
    assert {"fake": True} == body_of(server.handle(sent))["result"]
    assert [(server, sent, message("server/discover"))] == calls


def test_2026_requests_without_v2026_are_404(
    server: McpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until tasks_store.mcp.v2026 exists, a 2026 request answers 404 with -32601 and its id."""
    monkeypatch.setattr(server_module, "_v2026_handler", server_module._V2026_MISSING)
    response = server.handle(request(message("tools/list", request_id=4), version="2026-07-28"))
    assert 404 == response.status
    payload = json.loads(response.body)
    assert (-32601, 4) == (payload["error"]["code"], payload["id"])


# -- tools/list -------------------------------------------------------------------------


def test_tools_list_in_registration_order_with_task_support(server: McpServer) -> None:
    """tools/list lists every tool, in order, with execution.taskSupport."""
    client = Session(server)
    result = client.ok("tools/list", result_def="ListToolsResult")
    assert [t.name for t in server.tools] == [t["name"] for t in result["tools"]]
    assert {"name": "echo", "description": "Echo.", "inputSchema": TEXT,
            "execution": {"taskSupport": "forbidden"}} == result["tools"][0]
    support = {t["name"]: t["execution"]["taskSupport"] for t in result["tools"]}
    assert ("optional", "required") == (support["echo_any"], support["echo_task"])
    assert "nextCursor" not in result
    assert result == client.ok("tools/list")


def test_tools_list_pages_with_cursors(make_store: Any) -> None:
    """With more tools than a page, nextCursor walks them all, each once, in order."""
    tools = [Tool(name=f"t{n}", fn=echo) for n in range(7)]
    with McpServer(make_store(), tools, tools_page_size=3) as server:
        client = Session(server)
        names: list[str] = []
        cursor = None
        pages = 0
        while True:
            result = client.ok(
                "tools/list", {} if cursor is None else {"cursor": cursor}, "ListToolsResult"
            )
            names += [t["name"] for t in result["tools"]]
            pages += 1
            cursor = result.get("nextCursor")
            if cursor is None:
                break
        assert ([f"t{n}" for n in range(7)], 3) == (names, pages)
        for bad in ("nope", "dG9vbHM6OTk=", 5):
            assert -32602 == client.error("tools/list", {"cursor": bad})["code"]


def test_older_revision_lists_no_execution_and_no_task_only_tools(server: McpServer) -> None:
    """Revisions without tasks: no execution field, no required-task tools."""
    client = Session(server, "2025-06-18")
    tools = client.ok("tools/list")["tools"]
    assert "echo_task" not in [t["name"] for t in tools]
    assert all("execution" not in t for t in tools)


# -- tools/call -------------------------------------------------------------------------


def test_forbidden_tool_runs_inline_and_refuses_a_task(server: McpServer) -> None:
    """taskSupport forbidden: plain call works; with task -32601 and no task is created."""
    client = Session(server)
    assert {"content": [{"type": "text", "text": "hi"}]} == client.ok(
        "tools/call", {"name": "echo", "arguments": {"text": "hi"}}, "CallToolResult"
    )
    error = client.error("tools/call", {"name": "echo", "arguments": {"text": "hi"}, "task": {}})
    assert -32601 == error["code"]
    assert [] == client.ok("tasks/list")["tasks"]


def test_required_tool_refuses_a_plain_call(server: McpServer) -> None:
    """taskSupport required: without task -32601; with task a CreateTaskResult."""
    client = Session(server)
    assert -32601 == client.error("tools/call", {"name": "echo_task", "arguments": {"text": "x"}})[
        "code"
    ]
    created = client.ok(
        "tools/call", {"name": "echo_task", "arguments": {"text": "x"}, "task": {}},
        "CreateTaskResult",
    )
    task_id = created["task"]["taskId"]
    result = client.ok("tasks/result", {"taskId": task_id}, "CallToolResult")
    assert "x" == result["content"][0]["text"]


def test_optional_tool_runs_either_way(server: McpServer) -> None:
    """taskSupport optional: inline and as a task."""
    client = Session(server)
    inline = client.ok("tools/call", {"name": "echo_any", "arguments": {"text": "a"}})
    assert "a" == inline["content"][0]["text"]
    created = client.ok(
        "tools/call", {"name": "echo_any", "arguments": {"text": "b"}, "task": {"ttl": 60_000}}
    )
    assert 60_000 == created["task"]["ttl"]
    done = client.ok("tasks/result", {"taskId": created["task"]["taskId"]})
    assert "b" == done["content"][0]["text"]


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ({}, "'text' is a required property"),
        ({"text": 5}, "5 is not of type 'string' (at arguments.text)"),
        (None, None),
        ([1], None),
        ("text", None),
    ],
    ids=repr,
)
def test_bad_arguments_are_invalid_params_with_the_reason(
    server: McpServer, arguments: Any, reason: str | None
) -> None:
    """Arguments that miss the inputSchema: -32602 saying why; nothing runs or is created."""
    client = Session(server)
    for params in (
        {"name": "echo_any", "arguments": arguments},
        {"name": "echo_any", "arguments": arguments, "task": {}},
    ):
        error = client.error("tools/call", params)
        assert -32602 == error["code"]
        if reason is not None:
            assert f"Invalid arguments for tool 'echo_any': {reason}" == error["message"]
    assert [] == client.ok("tasks/list")["tasks"]


def test_unknown_tool_is_invalid_params(server: McpServer) -> None:
    """An unknown tool is -32602 (tools spec), with or without task."""
    client = Session(server)
    assert -32602 == client.error("tools/call", {"name": "nope"})["code"]
    assert -32602 == client.error("tools/call", {"name": "nope", "task": {}})["code"]


def test_tool_exception_inline_is_a_tool_error(server: McpServer) -> None:
    """A tool that raises answers isError with its message (no traceback), not an error."""
    client = Session(server)
    result = client.ok("tools/call", {"name": "boom"}, "CallToolResult")
    assert {"content": [{"type": "text", "text": "kaboom"}], "isError": True} == result


def test_task_error_inline_is_a_json_rpc_error(server: McpServer) -> None:
    """A tool raising a TaskError is a protocol error: its code and message."""
    client = Session(server)
    error = client.error("tools/call", {"name": "protocol_fault"})
    assert (-32602, "the tool refused its input") == (error["code"], error["message"])


def test_inline_call_gets_a_call_context(server: McpServer) -> None:
    """A call without a task gets a CallContext; with one, the task's TaskContext."""
    client = Session(server)
    SEEN.clear()
    assert "True" == client.ok("tools/call", {"name": "record_ctx"})["content"][0]["text"]
    created = client.ok("tools/call", {"name": "record_ctx", "task": {}})
    client.ok("tasks/result", {"taskId": created["task"]["taskId"]})
    inline, in_task = SEEN
    assert isinstance(inline, CallContext)
    assert (None, False) == (inline.task_id, inline.in_task)
    assert isinstance(in_task, TaskContext)
    assert created["task"]["taskId"] == in_task.task_id


def test_tool_error_task_is_completed_in_store_and_failed_on_the_wire(server: McpServer) -> None:
    """isError in a task: stored completed; 2025-11-25 shows failed with the tool's text."""
    client = Session(server)
    for name, text in (("tool_error", "it went wrong"), ("boom", "kaboom")):
        created = client.ok("tools/call", {"name": name, "task": {}})
        task_id = created["task"]["taskId"]
        result = client.ok("tasks/result", {"taskId": task_id}, "CallToolResult")
        assert True is result["isError"]
        got = client.ok("tasks/get", {"taskId": task_id}, "GetTaskResult")
        assert ("failed", text) == (got["status"], got["statusMessage"])
        owner = server.owner_for(None, client.id)
        assert TaskStatus.COMPLETED == server.store.get(task_id, owner).status


def test_protocol_fault_in_a_task_fails_it_with_the_error(server: McpServer) -> None:
    """A TaskError in a task: failed, and tasks/result answers that error."""
    client = Session(server)
    created = client.ok("tools/call", {"name": "protocol_fault", "task": {}})
    task_id = created["task"]["taskId"]
    error = client.error("tasks/result", {"taskId": task_id})
    assert -32602 == error["code"]
    assert "failed" == client.ok("tasks/get", {"taskId": task_id})["status"]


@pytest.mark.parametrize("version", OLDER)
def test_older_revision_has_no_tasks(server: McpServer, version: str) -> None:
    """Without tasks: tasks/* -32601, tools/call with task -32601, plain calls work."""
    client = Session(server, version)
    for method in ("tasks/get", "tasks/result", "tasks/list", "tasks/cancel"):
        assert -32601 == client.error(method, {"taskId": "x"})["code"], method
    error = client.error("tools/call", {"name": "echo_any", "arguments": {"text": "a"}, "task": {}})
    assert -32601 == error["code"]
    assert "a" == client.ok("tools/call", {"name": "echo_any", "arguments": {"text": "a"}})[
        "content"
    ][0]["text"]


def test_unknown_method_is_method_not_found(server: McpServer) -> None:
    """Methods this server does not serve: -32601."""
    client = Session(server)
    for method in ("resources/list", "prompts/list", "logging/setLevel", "tasks/explode"):
        assert -32601 == client.error(method)["code"]


# -- owners ------------------------------------------------------------------------------


def test_owner_namespaces() -> None:
    """user:<principal>; session:<sha256>; neither: the anonymous owner."""
    import hashlib

    from tasks_store import InMemoryTaskStore

    with McpServer(InMemoryTaskStore()) as server:
        assert "user:alice" == server.owner_for("alice", "sid")
        digest = hashlib.sha256(b"sid").hexdigest()
        assert f"session:{digest}" == server.owner_for(None, "sid")
        assert f"session:{digest}" == server.owner_for("", "sid")
        assert "local" == server.owner_for(None, None)


def test_sessions_do_not_see_each_other(server: McpServer) -> None:
    """Another session's task answers exactly as an unknown id does, for every method."""
    alice, bob = Session(server), Session(server)
    created = alice.ok("tools/call", {"name": "echo_task", "arguments": {"text": "x"}, "task": {}})
    task_id = created["task"]["taskId"]
    unknown = "00000000-0000-4000-8000-000000000000"
    for method in ("tasks/get", "tasks/result", "tasks/cancel"):
        foreign = bob.error(method, {"taskId": task_id})
        missing = bob.error(method, {"taskId": unknown})
        assert -32602 == foreign["code"]
        assert missing["message"].replace(unknown, task_id) == foreign["message"]
        assert json.dumps(missing).replace(unknown, task_id) == json.dumps(foreign)
    assert [] == bob.ok("tasks/list")["tasks"]
    assert [task_id] == [t["taskId"] for t in alice.ok("tasks/list")["tasks"]]


def test_principal_wins_over_the_session(server: McpServer) -> None:
    """The same user in two sessions sees one set of tasks; the bare sessions see none."""
    first = Session(server, principal="alice")
    second = Session(server, principal="alice")
    created = first.ok("tools/call", {"name": "echo_task", "arguments": {"text": "x"}, "task": {}})
    task_id = created["task"]["taskId"]
    assert [task_id] == [t["taskId"] for t in second.ok("tasks/list")["tasks"]]
    bare = body_of(first.send(message("tasks/list"), principal=None))
    assert [] == bare["result"]["tasks"]
    owner = server.store.get(task_id, "user:alice").owner_id
    assert "user:alice" == owner


def test_a_session_named_like_a_user_shares_nothing_with_that_user(
    server: McpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even a session whose id is literally a user's name or owner id is its own owner."""
    alice = Session(server, principal="alice")
    created = alice.ok("tools/call", {"name": "echo_task", "arguments": {"text": "x"}, "task": {}})
    task_id = created["task"]["taskId"]
    for name in ("alice", "user:alice"):
        monkeypatch.setattr(
            "tasks_store.store.sessions.new_session_id", lambda name=name: name
        )
        impostor = Session(server)
        assert name == impostor.id
        assert [] == impostor.ok("tasks/list")["tasks"]
        assert -32602 == impostor.error("tasks/get", {"taskId": task_id})["code"]
        assert server.owner_for(None, name) not in ("alice", "user:alice")
        server.handle(request(None, method="DELETE", session=name))


def test_anonymous_owner_is_refused_by_default(server: McpServer) -> None:
    """The owner nobody is (no principal, no session) is refused unless allow_anonymous."""
    from tasks_store import AnonymousAccessDenied

    with pytest.raises(AnonymousAccessDenied):
        server.store.list(server.owner_for(None, None))


# -- faults --------------------------------------------------------------------------------


def test_a_fault_is_500_without_details(server: McpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception inside handle is logged and answered 500 -32603 'Internal error'."""
    client = Session(server)

    def broken(session_id: str) -> str:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(server.sessions, "protocol_version", broken)
    response = client.send(message("ping"))
    assert 500 == response.status
    payload = body_of(response)
    assert {"code": -32603, "message": "Internal error"} == payload["error"]
    assert b"secret detail" not in response.body


def test_concurrent_sessions_and_calls(server: McpServer) -> None:
    """Many threads initializing and calling at once all get their own answers."""
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            client = Session(server)
            for i in range(5):
                text = f"{n}-{i}"
                got = client.ok("tools/call", {"name": "echo", "arguments": {"text": text}})
                assert text == got["content"][0]["text"]
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert [] == failures


def test_no_log_line_holds_a_session_id(
    server: McpServer, caplog: pytest.LogCaptureFixture
) -> None:
    """
    Every log record of a full flow (server, runner, the store's INFO/WARNING audit
    lines, at DEBUG) names sessions only by hash: no issued id appears anywhere.
    """
    import logging

    caplog.set_level(logging.DEBUG)
    alice, bob = Session(server), Session(server)
    created = alice.ok("tools/call", {"name": "boom", "task": {}})
    task_id = created["task"]["taskId"]
    alice.ok("tasks/result", {"taskId": task_id})
    alice.ok("tasks/get", {"taskId": task_id})
    bob.error("tasks/get", {"taskId": task_id})  # a foreign access: WARNING
    other = bob.ok("tools/call", {"name": "echo_task", "arguments": {"text": "x"}, "task": {}})
    bob.call("tasks/cancel", {"taskId": other["task"]["taskId"]})
    alice.ok("tools/call", {"name": "boom"})  # an inline tool error: INFO with traceback
    server.handle(request(None, method="DELETE", session=alice.id))
    assert 404 == alice.send(message("ping")).status
    foreign_log.flush()  # the foreign-access WARNING is written off the request path
    text = "\n".join(
        f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records
    ) + caplog.text
    assert "denied to owner" in text
    assert server.log_id(alice.id) in text
    for session in (alice.id, bob.id):
        assert session not in text

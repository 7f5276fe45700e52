"""
MCP 2026-07-28 through ``McpServer.handle``: every error path with its exact
JSON-RPC code and HTTP status, the stateless core, and the Tasks extension,
on both store backends.  Every response body is validated against the
vendored 2026-07-28 schema and the extension's schema (tests/mcp_schema_2026.py).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks_store import StoreError, TaskSecurityConfig
from tasks_store.errors import MissingRequiredClientCapability
from tasks_store.mcp.context import TaskContext
from tasks_store.mcp.http import HttpRequest
from tasks_store.mcp.server import McpServer
from tasks_store.mcp.tools import Tool, ToolContext
from tasks_store.mcp.v2026 import RequestCallContext, http_status
from tasks_store.mcp.v2026_wire import (
    CLIENT_CAPABILITIES_KEY,
    CLIENT_INFO_KEY,
    PROTOCOL_VERSION_KEY,
    SERVER_INFO_KEY,
    SUPPORTED_VERSIONS,
    TASKS_EXTENSION,
)
from tasks_store.records import RELATED_TASK_META_KEY

from .mcp_schema_2026 import check_response_2026
from .strategies import json_objects, json_values, texts

VERSION = "2026-07-28"
TASKS = {"extensions": {TASKS_EXTENSION: {}}}
SERVER_INFO = {"name": "test-server", "version": "9.9"}
ANONYMOUS = "local"
WAIT = 30.0  # an upper bound for a task to end, never an assertion


@attrs.frozen
class Reply:
    status: int
    body: dict[str, Any] | None
    headers: tuple[tuple[str, str], ...]

    @property
    def result(self) -> dict[str, Any]:
        assert self.body is not None
        assert "result" in self.body, self.body
        result: dict[str, Any] = self.body["result"]
        return result

    @property
    def error(self) -> dict[str, Any]:
        assert self.body is not None
        assert "error" in self.body, self.body
        error: dict[str, Any] = self.body["error"]
        return error


class Client:
    """Sends well-formed 2026-07-28 requests; each part can be overridden or dropped."""

    def __init__(self, server: McpServer, principal: str | None = None) -> None:
        self.server = server
        self.principal = principal
        self.next_id = 1

    def raw(self, body: Any, headers: Mapping[str, str], *, method: str | None = None) -> Reply:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = self.server.handle(
            HttpRequest("POST", "/mcp", dict(headers), data, self.principal)
        )
        parsed = json.loads(response.body) if response.body else None
        if parsed is not None:
            check_response_2026(parsed, method)
        return Reply(response.status, parsed, response.headers)

    def send(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        capabilities: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        drop: tuple[str, ...] = (),
        request_id: Any = None,
    ) -> Reply:
        body_params = dict(params or {})
        if meta is None:
            meta = {
                PROTOCOL_VERSION_KEY: VERSION,
                CLIENT_INFO_KEY: {"name": "tests", "version": "1"},
                CLIENT_CAPABILITIES_KEY: dict(capabilities or {}),
            }
        if "_meta" not in drop:
            body_params["_meta"] = dict(meta)
        if request_id is None:
            request_id = self.next_id
            self.next_id += 1
        all_headers = {
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": VERSION,
            "Mcp-Method": method,
        }
        name = {"tools/call": "name", "tasks/get": "taskId", "tasks/update": "taskId",
                "tasks/cancel": "taskId"}.get(method)  # fmt: skip
        if name is not None and isinstance(body_params.get(name), str):
            all_headers["Mcp-Name"] = body_params[name]
        all_headers.update(headers or {})
        for header in drop:
            all_headers.pop(header, None)
        body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": body_params}
        reply = self.raw(body, all_headers, method=method)
        if reply.body is not None and reply.status != 403:  # 403: before the body is read
            assert request_id == reply.body.get("id"), reply.body  # every answer echoes the id
        return reply

    def call(self, name: str, arguments: Any = None, **kwargs: Any) -> Reply:
        params: dict[str, Any] = {"name": name}
        if arguments is not None:
            params["arguments"] = arguments
        return self.send("tools/call", params, **kwargs)

    def task(self, method: str, task_id: str, **kwargs: Any) -> Reply:
        kwargs.setdefault("capabilities", TASKS)
        params = {"taskId": task_id, **kwargs.pop("extra", {})}
        return self.send(method, params, **kwargs)


def _expect_error(reply: Reply, status: int, code: int) -> dict[str, Any]:
    assert status == reply.status, reply
    assert code == reply.error["code"], reply.error
    return reply.error


# -- the server under test ----------------------------------------------------------


@attrs.define
class Gate:
    """Holds the ``slow`` tool until released (or the task is cancelled)."""

    released: threading.Event = attrs.field(factory=threading.Event)
    started: threading.Event = attrs.field(factory=threading.Event)


def _text(text: str, **extra: Any) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], **extra}


def _tools(gate: Gate) -> list[Tool]:
    def echo(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        return _text(f"echo {arguments.get('text', '')}")

    def slow(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        gate.started.set()
        while not gate.released.wait(0.01):
            if ctx.is_cancelled():
                return _text("cancelled")
        if isinstance(ctx, TaskContext):
            ctx.set_variable("progress", 1.0)
        return _text("slow done")

    def tool_error(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        return _text("it went wrong", isError=True)

    def protocol_error(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        raise StoreError("backend down")

    def crash(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        raise RuntimeError("disk full")

    def wants_input(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        return {
            "resultType": "input_required",
            "inputRequests": {
                "name": {
                    "method": "elicitation/create",
                    "params": {
                        "mode": "form",
                        "message": "Name?",
                        "requestedSchema": {
                            "type": "object",
                            "properties": {"name": {"type": "string"}},
                            "required": ["name"],
                        },
                    },
                }
            },
        }

    def needs_sampling(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        assert isinstance(ctx, RequestCallContext)
        ctx.require_capability("sampling")
        return _text(f"sampling ok; roots declared: {ctx.has_capability('roots')}")

    def waits_for_input(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        assert isinstance(ctx, TaskContext)
        ctx.require_input("Confirm?")
        gate.started.set()
        while not gate.released.wait(0.01):
            if ctx.is_cancelled():
                break
        return _text("resumed")

    schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
    return [
        Tool(name="echo", description="Echo.", input_schema=schema, fn=echo),
        Tool(name="slow", description="Slow.", task_support="optional", fn=slow),
        Tool(name="required_job", description="R.", task_support="required", fn=slow),
        Tool(name="tool_error", description="E.", task_support="optional", fn=tool_error),
        Tool(name="protocol_error", description="P.", task_support="optional", fn=protocol_error),
        Tool(name="crash", description="C.", fn=crash),
        Tool(name="wants_input", description="I.", fn=wants_input),
        Tool(name="needs_sampling", description="S.", fn=needs_sampling),
        Tool(name="waits", description="W.", task_support="required", fn=waits_for_input),
    ]


@pytest.fixture
def gate() -> Iterator[Gate]:
    gate = Gate()
    yield gate
    gate.released.set()  # no tool thread outlives the test


@pytest.fixture
def make_server(make_store: Callable[..., Any], gate: Gate) -> Iterator[Callable[..., McpServer]]:
    servers: list[McpServer] = []

    def make(*, anonymous: bool = True, **kwargs: Any) -> McpServer:
        store = make_store(security=TaskSecurityConfig(allow_anonymous=anonymous))
        kwargs.setdefault("server_info", SERVER_INFO)
        server = McpServer(store, _tools(gate), **kwargs)
        servers.append(server)
        return server

    yield make
    gate.released.set()
    for server in servers:
        server.close(cancel=True)


@pytest.fixture
def server(make_server: Callable[..., McpServer]) -> McpServer:
    return make_server()


@pytest.fixture
def client(server: McpServer) -> Client:
    return Client(server)


def _wait(server: McpServer, task_id: str, owner: str = ANONYMOUS) -> None:
    server.store.wait(task_id, owner, timeout=WAIT)


# -- envelope -------------------------------------------------------------------------

JSON_HEADERS = {
    "Content-Type": "application/json",
    "MCP-Protocol-Version": VERSION,
    "Mcp-Method": "tools/list",
}


@pytest.mark.parametrize(
    "body",
    [
        [{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}],
        42,
        "tools/list",
        {"jsonrpc": "2.0", "id": None, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 1.5, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": True, "method": "tools/list"},
    ],
)
def test_unreadable_requests_are_invalid_without_id(client: Client, body: Any) -> None:
    """Not a request with a usable id: 400, -32600, no id in the answer."""
    reply = client.raw(body, JSON_HEADERS)
    _expect_error(reply, 400, -32600)
    assert reply.body is not None
    assert "id" not in reply.body


@pytest.mark.parametrize(
    "body",
    [
        {"jsonrpc": "1.0", "id": 7, "method": "tools/list"},
        {"id": 7, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 7, "method": 12},
        {"jsonrpc": "2.0", "id": 7},
        {"jsonrpc": "2.0", "id": 7, "result": {}},
    ],
)
def test_malformed_requests_are_invalid_with_id(client: Client, body: Any) -> None:
    """A malformed envelope whose id is readable: 400, -32600, that id."""
    reply = client.raw(body, JSON_HEADERS)
    _expect_error(reply, 400, -32600)
    assert reply.body is not None
    assert 7 == reply.body["id"]


def test_notification_is_accepted_with_202(client: Client) -> None:
    body = {
        "jsonrpc": "2.0",
        "method": "notifications/initialized",
        "params": {"_meta": {PROTOCOL_VERSION_KEY: VERSION}},
    }
    reply = client.raw(body, {**JSON_HEADERS, "Mcp-Method": "notifications/initialized"})
    assert 202 == reply.status
    assert reply.body is None


@pytest.mark.parametrize("params", [[], "x", 3, None])
def test_params_not_an_object_is_invalid_params(client: Client, params: Any) -> None:
    body = {"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": params}
    reply = client.raw(body, JSON_HEADERS)
    _expect_error(reply, 400, -32602)
    assert reply.body is not None
    assert 3 == reply.body["id"]


def test_a_string_id_is_echoed(client: Client) -> None:
    reply = client.send("tools/list", request_id="req-é")
    assert 200 == reply.status
    assert reply.body is not None
    assert "req-é" == reply.body["id"]


# -- _meta ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "meta",
    [
        {},
        {CLIENT_CAPABILITIES_KEY: {}},
        {PROTOCOL_VERSION_KEY: VERSION},
        {PROTOCOL_VERSION_KEY: 2026, CLIENT_CAPABILITIES_KEY: {}},
        {PROTOCOL_VERSION_KEY: VERSION, CLIENT_CAPABILITIES_KEY: "all"},
        {PROTOCOL_VERSION_KEY: VERSION, CLIENT_CAPABILITIES_KEY: {}, CLIENT_INFO_KEY: []},
    ],
)
def test_malformed_meta_is_400_invalid_params(client: Client, meta: dict[str, Any]) -> None:
    """Missing or malformed per-request fields: -32602 with HTTP 400 (headers agree)."""
    headers = {}
    if isinstance(meta.get(PROTOCOL_VERSION_KEY), str):
        headers["MCP-Protocol-Version"] = meta[PROTOCOL_VERSION_KEY]
    _expect_error(client.send("server/discover", meta=meta, headers=headers), 400, -32602)


def test_missing_meta_is_400_invalid_params(client: Client) -> None:
    _expect_error(client.send("server/discover", drop=("_meta",)), 400, -32602)


def test_client_info_is_optional(client: Client) -> None:
    meta = {PROTOCOL_VERSION_KEY: VERSION, CLIENT_CAPABILITIES_KEY: {}}
    assert 200 == client.send("server/discover", meta=meta).status


def test_meta_is_checked_before_headers(client: Client) -> None:
    """A request lacking protocolVersion is -32602, not a header mismatch."""
    meta = {CLIENT_CAPABILITIES_KEY: {}}
    _expect_error(client.send("server/discover", meta=meta), 400, -32602)


# -- headers -------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["MCP-Protocol-Version", "Mcp-Method"])
def test_missing_standard_header_is_header_mismatch(client: Client, header: str) -> None:
    """A request marked 2026-07-28 by its _meta still needs every standard header."""
    _expect_error(client.send("tools/list", drop=(header,)), 400, -32020)


def test_missing_name_header_is_header_mismatch(client: Client) -> None:
    _expect_error(client.call("echo", {"text": "a"}, drop=("Mcp-Name",)), 400, -32020)


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        ("tools/list", {"MCP-Protocol-Version": "2025-11-25"}),
        ("tools/list", {"Mcp-Method": "prompts/list"}),
        ("tools/list", {"Mcp-Method": "TOOLS/LIST"}),
        ("tools/list", {"Mcp-Method": "tools/list\x01"}),
        ("tools/call", {"Mcp-Name": "other"}),
        ("tools/call", {"Mcp-Name": "=?base64?ZWNobw?="}),
    ],
)
def test_disagreeing_header_is_header_mismatch(
    client: Client, method: str, headers: dict[str, str]
) -> None:
    params = {"name": "echo", "arguments": {"text": "a"}} if method == "tools/call" else {}
    _expect_error(client.send(method, params, headers=headers), 400, -32020)


def test_header_and_meta_versions_must_agree(client: Client) -> None:
    """Header 2026-07-28 but _meta v999: -32020, not -32022 (server-stateless)."""
    meta = {PROTOCOL_VERSION_KEY: "v999.0.0", CLIENT_CAPABILITIES_KEY: {}}
    _expect_error(client.send("server/discover", meta=meta), 400, -32020)


@pytest.mark.parametrize(
    "headers",
    [
        {"mcp-method": "tools/call", "mcp-name": "echo"},
        {"MCP-METHOD": "tools/call", "MCP-NAME": "echo"},
        {"Mcp-Name": "  echo  "},
        {"Mcp-Name": "=?base64?ZWNobw==?="},
        {"Mcp-Method": "\ttools/call "},
    ],
)
def test_header_names_any_case_values_trimmed(client: Client, headers: dict[str, str]) -> None:
    reply = client.call("echo", {"text": "a"}, headers=headers)
    assert 200 == reply.status, reply
    assert "echo a" == reply.result["content"][0]["text"]


def test_task_method_name_header_must_be_the_task_id(client: Client) -> None:
    task_id = client.call("slow", {}, capabilities=TASKS).result["taskId"]
    reply = client.task("tasks/get", task_id, headers={"Mcp-Name": "some-other-task"})
    _expect_error(reply, 400, -32020)
    _expect_error(client.task("tasks/cancel", task_id, drop=("Mcp-Name",)), 400, -32020)
    assert 200 == client.task("tasks/get", task_id).status


# -- versions ---------------------------------------------------------------------------


def test_unsupported_version_is_32022_with_the_list(client: Client) -> None:
    meta = {PROTOCOL_VERSION_KEY: "v999.0.0", CLIENT_CAPABILITIES_KEY: {}}
    reply = client.send("server/discover", meta=meta, headers={"MCP-Protocol-Version": "v999.0.0"})
    error = _expect_error(reply, 400, -32022)
    assert {"supported": list(SUPPORTED_VERSIONS), "requested": "v999.0.0"} == error["data"]
    discovered = client.send("server/discover").result["supportedVersions"]
    assert set(error["data"]["supported"]) <= set(discovered)


def test_legacy_version_in_meta_points_to_initialize(client: Client) -> None:
    meta = {PROTOCOL_VERSION_KEY: "2025-11-25", CLIENT_CAPABILITIES_KEY: {}}
    reply = client.send("tools/list", meta=meta, headers={"MCP-Protocol-Version": "2025-11-25"})
    error = _expect_error(reply, 400, -32022)
    assert "initialize" in error["message"]


# -- methods ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method",
    [
        "initialize",
        "ping",
        "logging/setLevel",
        "resources/subscribe",
        "resources/unsubscribe",
        "unknown/method",
        "prompts/list",
        "resources/list",
        "tasks/result",
        "tasks/list",
    ],
)
@pytest.mark.parametrize("capabilities", [{}, TASKS], ids=["plain", "tasks"])
def test_unserved_methods_are_404_method_not_found(
    client: Client, method: str, capabilities: dict[str, Any]
) -> None:
    """Removed, unknown and undeclared methods (tasks/result, tasks/list too): 404, -32601."""
    params = {"taskId": "t-1"} if method == "tasks/result" else {}
    _expect_error(client.send(method, params, capabilities=capabilities), 404, -32601)


def test_discover(client: Client) -> None:
    result = client.send("server/discover").result
    assert VERSION in result["supportedVersions"]
    capabilities = result["capabilities"]
    assert {"tools": {"listChanged": True}, "extensions": {TASKS_EXTENSION: {}}} == capabilities
    assert "tasks" not in capabilities
    assert SERVER_INFO == result["_meta"][SERVER_INFO_KEY]
    assert result["cacheScope"] in ("public", "private")
    assert isinstance(result["ttlMs"], int)
    assert result["ttlMs"] >= 0


def test_discover_gives_the_instructions(make_server: Callable[..., McpServer]) -> None:
    server = make_server(instructions="Use slow for long work.")
    assert (
        "Use slow for long work." == Client(server).send("server/discover").result["instructions"]
    )


def test_every_result_names_the_server(client: Client) -> None:
    task_id = client.call("slow", {}, capabilities=TASKS).result["taskId"]
    for reply in (
        client.send("tools/list"),
        client.call("echo", {"text": "x"}),
        client.task("tasks/get", task_id),
        client.task("tasks/update", task_id, extra={"inputResponses": {}}),
        client.task("tasks/cancel", task_id),
    ):
        assert SERVER_INFO == reply.result["_meta"][SERVER_INFO_KEY]


# -- tools/list ---------------------------------------------------------------------------


def test_tools_list(client: Client, server: McpServer) -> None:
    result = client.send("tools/list").result
    assert [tool.name for tool in server.tools] == [tool["name"] for tool in result["tools"]]
    for tool in result["tools"]:
        assert "execution" not in tool  # the server alone decides on this wire
        assert "object" == tool["inputSchema"]["type"]
    assert {"resultType", "tools", "cacheScope", "ttlMs", "_meta"} == set(result)


def test_tools_list_pages(make_server: Callable[..., McpServer]) -> None:
    client = Client(make_server(tools_page_size=4))
    names: list[str] = []
    cursor: str | None = None
    while True:
        result = client.send("tools/list", {"cursor": cursor} if cursor else {}).result
        names += [tool["name"] for tool in result["tools"]]
        cursor = result.get("nextCursor")
        if cursor is None:
            break
    assert [tool.name for tool in client.server.tools] == names


@pytest.mark.parametrize("cursor", ["not-a-cursor", 5])
def test_tools_list_bad_cursor_is_invalid_params(client: Client, cursor: Any) -> None:
    _expect_error(client.send("tools/list", {"cursor": cursor}), 200, -32602)


# -- tools/call -----------------------------------------------------------------------------


@pytest.mark.parametrize("capabilities", [{}, TASKS], ids=["plain", "tasks"])
def test_forbidden_tool_runs_inline(client: Client, capabilities: dict[str, Any]) -> None:
    result = client.call("echo", {"text": "hi"}, capabilities=capabilities).result
    assert "complete" == result["resultType"]
    assert [{"type": "text", "text": "echo hi"}] == result["content"]
    assert "taskId" not in result


def test_legacy_task_param_is_ignored(client: Client, server: McpServer) -> None:
    params = {"name": "echo", "arguments": {"text": "x"}, "task": {"ttl": 60_000}}
    result = client.send("tools/call", params, capabilities=TASKS).result
    assert "complete" == result["resultType"]
    assert 0 == len(server.store)


def test_optional_tool_without_extension_runs_inline(
    client: Client, server: McpServer, gate: Gate
) -> None:
    gate.released.set()
    result = client.call("slow", {}).result
    assert "complete" == result["resultType"]
    assert "slow done" == result["content"][0]["text"]
    assert 0 == len(server.store)


def test_optional_tool_with_extension_is_a_task(
    client: Client, server: McpServer, gate: Gate
) -> None:
    """A flat CreateTaskResult, and the task resolves at once through tasks/get."""
    created = client.call("slow", {}, capabilities=TASKS).result
    assert "task" == created["resultType"]
    assert "working" == created["status"]
    assert isinstance(created["ttlMs"], int)
    assert created["ttlMs"] > 0
    got = client.task("tasks/get", created["taskId"]).result
    assert created["taskId"] == got["taskId"]
    assert "working" == got["status"]
    gate.released.set()
    _wait(server, created["taskId"])
    done = client.task("tasks/get", created["taskId"]).result
    assert "completed" == done["status"]
    assert "slow done" == done["result"]["content"][0]["text"]
    assert "complete" == done["result"]["resultType"]
    assert RELATED_TASK_META_KEY not in done["result"].get("_meta", {})
    assert {"progress": 1.0}.items() <= done["_meta"].items()


def test_extension_counts_only_on_its_own_request(client: Client) -> None:
    """Declaring the extension once does not make later calls tasks."""
    client.call("echo", {"text": "x"}, capabilities=TASKS)
    reply = client.call("required_job", {})
    error = _expect_error(reply, 400, -32021)
    assert {"requiredCapabilities": TASKS} == error["data"]


def test_required_tool_with_extension_is_a_task(
    client: Client, server: McpServer, gate: Gate
) -> None:
    created = client.call("required_job", {}, capabilities=TASKS).result
    assert "task" == created["resultType"]
    gate.released.set()
    _wait(server, created["taskId"])


def test_tool_error_is_a_completed_task(client: Client, server: McpServer) -> None:
    """isError: true is a tool result: completed, never failed (SEP-2663)."""
    created = client.call("tool_error", {}, capabilities=TASKS).result
    _wait(server, created["taskId"])
    got = client.task("tasks/get", created["taskId"]).result
    assert "completed" == got["status"]
    assert got["result"]["isError"] is True
    assert "error" not in got


def test_protocol_error_is_a_failed_task(client: Client, server: McpServer) -> None:
    created = client.call("protocol_error", {}, capabilities=TASKS).result
    _wait(server, created["taskId"])
    got = client.task("tasks/get", created["taskId"]).result
    assert "failed" == got["status"]
    assert {"code": -32603, "message": "backend down"} == got["error"]
    assert "result" not in got


def test_protocol_error_inline_is_a_jsonrpc_error(client: Client) -> None:
    _expect_error(client.call("protocol_error", {}), 200, -32603)


def test_crash_inline_is_a_tool_error(client: Client) -> None:
    result = client.call("crash", {}).result
    assert result["isError"] is True
    assert "complete" == result["resultType"]


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"name": "nope"}, "Unknown tool"),
        ({"name": 3}, "name"),
        ({}, "name"),
        ({"name": "echo", "arguments": [1]}, "arguments"),
        ({"name": "echo", "arguments": None}, "arguments"),
    ],
)
def test_bad_calls_are_invalid_params(client: Client, params: dict[str, Any], says: str) -> None:
    error = _expect_error(client.send("tools/call", params), 200, -32602)
    assert says in error["message"]


def test_arguments_against_the_schema_are_a_tool_error(client: Client) -> None:
    """2026-07-28: input validation errors are tool execution errors (isError)."""
    result = client.call("echo", {"text": 5}).result
    assert result["isError"] is True
    assert "complete" == result["resultType"]
    assert "text" in result["content"][0]["text"]


def test_arguments_may_be_left_out(client: Client, gate: Gate) -> None:
    gate.released.set()
    assert "slow done" == client.call("slow").result["content"][0]["text"]


def test_inline_input_required_result(client: Client) -> None:
    reply = client.call("wants_input", {}, capabilities={"elicitation": {}})
    assert "input_required" == reply.result["resultType"]
    assert "elicitation/create" == reply.result["inputRequests"]["name"]["method"]


def test_input_request_needs_its_capability(client: Client) -> None:
    error = _expect_error(client.call("wants_input", {}), 400, -32021)
    assert {"requiredCapabilities": {"elicitation": {}}} == error["data"]


def test_tool_sees_this_requests_capabilities(client: Client) -> None:
    error = _expect_error(client.call("needs_sampling", {}, capabilities={}), 400, -32021)
    assert {"requiredCapabilities": {"sampling": {}}} == error["data"]
    reply = client.call("needs_sampling", {}, capabilities={"sampling": {}, "roots": {}})
    assert "sampling ok; roots declared: True" == reply.result["content"][0]["text"]


# -- tasks/* -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["tasks/get", "tasks/update", "tasks/cancel"])
def test_task_methods_need_the_extension(client: Client, method: str) -> None:
    extra = {"inputResponses": {}} if method == "tasks/update" else {}
    reply = client.task(method, "t-1", capabilities={"sampling": {}}, extra=extra)
    error = _expect_error(reply, 400, -32021)
    assert {"requiredCapabilities": TASKS} == error["data"]


@pytest.mark.parametrize("method", ["tasks/get", "tasks/update", "tasks/cancel"])
def test_unknown_task_is_invalid_params(client: Client, method: str) -> None:
    extra = {"inputResponses": {}} if method == "tasks/update" else {}
    reply = client.task(method, "tasks-conformance-nonexistent-12345", extra=extra)
    _expect_error(reply, 200, -32602)


@pytest.mark.parametrize("task_id", [None, 12, "x" * 257])
def test_bad_task_id_is_invalid_params(client: Client, task_id: Any) -> None:
    params = {} if task_id is None else {"taskId": task_id}
    _expect_error(client.send("tasks/get", params, capabilities=TASKS), 200, -32602)


def test_cancel_a_running_task(client: Client, server: McpServer, gate: Gate) -> None:
    task_id = client.call("slow", {}, capabilities=TASKS).result["taskId"]
    gate.started.wait(WAIT)
    ack = client.task("tasks/cancel", task_id).result
    assert {"resultType"} == set(ack) - {"_meta"}
    assert "complete" == ack["resultType"]
    assert "cancelled" == client.task("tasks/get", task_id).result["status"]


def test_cancel_a_terminal_task_is_the_same_ack(client: Client, server: McpServer) -> None:
    task_id = client.call("tool_error", {}, capabilities=TASKS).result["taskId"]
    _wait(server, task_id)
    ack = client.task("tasks/cancel", task_id).result
    assert {"resultType"} == set(ack) - {"_meta"}
    assert "completed" == client.task("tasks/get", task_id).result["status"]


def test_update_is_acknowledged(client: Client, server: McpServer, gate: Gate) -> None:
    """A response to a key never issued is ignored: the task keeps waiting for input."""
    task_id = client.call("waits", {}, capabilities=TASKS).result["taskId"]
    gate.started.wait(WAIT)
    got = client.task("tasks/get", task_id).result
    assert "input_required" == got["status"]
    assert {} == got["inputRequests"]
    responses = {"unknown-key": {"ignored": True}}
    ack = client.task("tasks/update", task_id, extra={"inputResponses": responses}).result
    assert {"resultType"} == set(ack) - {"_meta"}
    assert "input_required" == client.task("tasks/get", task_id).result["status"]
    client.task("tasks/cancel", task_id)
    assert "cancelled" == client.task("tasks/get", task_id).result["status"]


@pytest.mark.parametrize(
    "extra", [{}, {"inputResponses": None}, {"inputResponses": []}, {"inputResponses": {"k": 5}}]
)
def test_update_needs_input_responses(client: Client, extra: dict[str, Any]) -> None:
    task_id = client.call("tool_error", {}, capabilities=TASKS).result["taskId"]
    _expect_error(client.task("tasks/update", task_id, extra=extra), 200, -32602)


# -- owners --------------------------------------------------------------------------------


def test_anonymous_needs_allow_anonymous(make_server: Callable[..., McpServer], gate: Gate) -> None:
    """No anonymous tasks: an optional tool runs inline, a required one is refused."""
    server = make_server(anonymous=False)
    client = Client(server)
    gate.released.set()
    result = client.call("slow", {}, capabilities=TASKS).result
    assert "complete" == result["resultType"]
    assert "slow done" == result["content"][0]["text"]
    error = _expect_error(client.call("required_job", {}, capabilities=TASKS), 200, -32602)
    assert "Anonymous" in error["message"]
    _expect_error(client.task("tasks/get", "t-1"), 200, -32602)
    assert 0 == len(server.store)
    created = Client(server, "dora").call("slow", {}, capabilities=TASKS).result
    assert "task" == created["resultType"]  # a principal owns tasks as ever


def test_principals_own_their_tasks(server: McpServer, gate: Gate) -> None:
    """A user's task is the same -32602 as an unknown id to anyone else."""
    alice, bob, anonymous = Client(server, "alice"), Client(server, "bob"), Client(server)
    task_id = alice.call("slow", {}, capabilities=TASKS).result["taskId"]
    assert "user:alice" == server.store.get(task_id, "user:alice").owner_id
    for other in (bob, anonymous):
        error = _expect_error(other.task("tasks/get", task_id), 200, -32602)
        assert task_id in error["message"]
        _expect_error(other.task("tasks/cancel", task_id), 200, -32602)
    assert "working" == alice.task("tasks/get", task_id).result["status"]
    gate.released.set()
    _wait(server, task_id, "user:alice")


def test_anonymous_task_id_is_the_capability(server: McpServer, gate: Gate) -> None:
    """Without a principal any caller holding the id reaches the task: no session needed."""
    first, second = Client(server), Client(server)
    task_id = first.call("slow", {}, capabilities=TASKS).result["taskId"]
    assert "working" == second.task("tasks/get", task_id).result["status"]
    second.task("tasks/cancel", task_id)
    assert "cancelled" == first.task("tasks/get", task_id).result["status"]


def test_a_2026_task_is_seen_through_the_2025_wire(server: McpServer, gate: Gate) -> None:
    """One task, stored once, in either generation's shape (same principal)."""
    task_id = Client(server, "carol").call("slow", {}, capabilities=TASKS).result["taskId"]
    gate.released.set()
    _wait(server, task_id, "user:carol")
    headers = {"Content-Type": "application/json", "Accept": "application/json"}

    def post(body: dict[str, Any], extra: Mapping[str, str] | None = None) -> Any:
        request = HttpRequest(
            "POST", "/mcp", {**headers, **(extra or {})}, json.dumps(body).encode(), "carol"
        )
        return server.handle(request)

    init = post(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
    )
    session = init.header("mcp-session-id")
    assert session is not None
    reply = post(
        {"jsonrpc": "2.0", "id": 2, "method": "tasks/get", "params": {"taskId": task_id}},
        {"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"},
    )
    task = json.loads(reply.body)["result"]
    assert task_id == task["taskId"]
    assert "completed" == task["status"]
    assert "ttl" in task
    assert "ttlMs" not in task


# -- DNS rebinding (McpServer, before either generation) -----------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example.com"},
        {"Host": "evil.example.com"},
        {"Host": "evil.example.com", "Origin": "http://evil.example.com"},
        {"Host": "127.0.0.1.evil.example.com:80"},
    ],
)
def test_foreign_host_or_origin_is_403(client: Client, headers: dict[str, str]) -> None:
    assert 403 == client.send("server/discover", headers=headers).status


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "127.0.0.1:8765", "Origin": "http://127.0.0.1:8765"},
        {"Host": "localhost"},
        {"Host": "[::1]:8080", "Origin": "http://[::1]:8080"},
    ],
)
def test_loopback_host_and_origin_are_served(client: Client, headers: dict[str, str]) -> None:
    assert 200 == client.send("server/discover", headers=headers).status


def test_allowed_hosts_extend_loopback(make_server: Callable[..., McpServer]) -> None:
    client = Client(make_server(allowed_hosts=["mcp.example.com"]))
    assert 200 == client.send("server/discover", headers={"Host": "mcp.example.com:443"}).status
    assert 403 == client.send("server/discover", headers={"Host": "other.example.com"}).status


# -- the status table ------------------------------------------------------------------------


def test_http_status_table() -> None:
    from tasks_store.errors import (
        HeaderMismatch,
        InvalidParams,
        InvalidRequest,
        MethodNotFound,
        NotFound,
        UnsupportedProtocolVersion,
    )
    from tasks_store.mcp.v2026_wire import MalformedMeta

    assert 400 == http_status(MalformedMeta("m"))
    assert 400 == http_status(HeaderMismatch("h"))
    assert 400 == http_status(MissingRequiredClientCapability({"sampling": {}}))
    assert 400 == http_status(UnsupportedProtocolVersion("v", ("2026-07-28",)))
    assert 400 == http_status(InvalidRequest("r"))
    assert 404 == http_status(MethodNotFound("x"))
    assert 200 == http_status(InvalidParams("p"))
    assert 200 == http_status(NotFound("t"))
    assert 500 == http_status(RuntimeError("boom"))


# -- no message makes it raise ------------------------------------------------------------

_METHOD_NAMES = st.sampled_from(
    ["server/discover", "tools/list", "tools/call", "tasks/get", "tasks/update",
     "tasks/cancel", "tasks/result", "initialize", "x"]
)  # fmt: skip
_CAPABILITIES = st.one_of(
    st.just({}), st.just(TASKS), st.just({"elicitation": {}, "sampling": {}}), json_objects
)
_PARAMS = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.sampled_from(["echo", "slow", "tool_error", "wants_input"]), texts),
        "arguments": st.one_of(json_objects, json_values),
        "taskId": st.one_of(texts, json_values),
        "inputResponses": st.one_of(json_objects, json_values),
        "cursor": st.one_of(texts, json_values),
        "task": json_values,
        "_meta": st.one_of(
            st.fixed_dictionaries(
                {
                    PROTOCOL_VERSION_KEY: st.sampled_from([VERSION, "v9"]),
                    CLIENT_CAPABILITIES_KEY: _CAPABILITIES,
                }
            ),
            json_values,
        ),
    },
)
_HEADERS = st.fixed_dictionaries(
    {
        "content-type": st.just("application/json"),
        # always a 2026 (or unknown, not 2025) version: the request is this generation's
        "mcp-protocol-version": st.sampled_from([VERSION, "v9", "", f" {VERSION} "]),
    },
    optional={
        "mcp-method": st.one_of(_METHOD_NAMES, st.text(max_size=5)),
        "mcp-name": st.one_of(
            st.sampled_from(["echo", "=?base64?ZWNobw==?=", "=?base64?@?="]), st.text(max_size=5)
        ),
    },
)
_MESSAGES = st.one_of(
    st.fixed_dictionaries(
        {"jsonrpc": st.just("2.0"), "method": _METHOD_NAMES},
        optional={"id": st.one_of(st.integers(), texts, json_values), "params": _PARAMS},
    ),
    json_values,
)


@settings(
    max_examples=200,
    deadline=None,
    # one server for every example: it keeps no state between requests but the tasks
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(message=_MESSAGES, headers=_HEADERS)
def test_no_message_makes_handle_raise(
    server: McpServer, gate: Gate, message: Any, headers: dict[str, str]
) -> None:
    """Every message gets an answer: 202, or a schema-valid JSON-RPC response, never a 500."""
    gate.released.set()
    body = json.dumps(message).encode()
    request = HttpRequest("POST", "/mcp", headers, body, None)
    response = server.handle(request)
    assert response.status in (200, 202, 400, 404), response
    if response.status == 202:
        assert b"" == response.body
        return
    answer = json.loads(response.body)
    method = message.get("method") if isinstance(message, dict) else None
    check_response_2026(answer, method if isinstance(method, str) else None)

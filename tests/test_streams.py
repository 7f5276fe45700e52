"""
Streamed replies (SSE), through ``McpServer.handle`` on every backend.

- 2026-07-28 ``subscriptions/listen``: the acknowledgement first, then
  ``notifications/tasks`` (the full ``DetailedTask``, equal to ``tasks/get``)
  on every change, ``notifications/tools/list_changed``, the filter, the
  subscription id on every message, the limits (the server's blocking-call
  gate, per owner and in total), the end when the client goes away, the
  graceful end when the server closes.
- 2025-11-25 ``tasks/result`` of an ``input_required`` task: the outstanding
  requests as server-to-client requests with the related-task ``_meta``, the
  client's responses POSTed back and routed to the tool, status
  notifications, and the result at the end.

This also stands in for the suite's ``tasks-status-notifications``, a
placeholder in conformance 0.2.0-alpha.12.  Every message is validated
against the 2026-07-28 core schema, the Tasks extension's schema, or the
2025-11-25 schema.  Waits are bounded by ``WAIT``, never asserted on.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from tasks_store import TaskSecurityConfig, TaskStatus
from tasks_store.errors import TaskEnded
from tasks_store.mcp import HttpRequest, HttpResponse, McpServer, Tool
from tasks_store.mcp.limits import ServerLimits
from tasks_store.mcp.mrtr import elicitation_request
from tasks_store.mcp.prompts import Prompt
from tasks_store.mcp.streams import INPUT_REQUEST_ID_PREFIX, SUBSCRIPTION_ID_KEY
from tasks_store.mcp.tools import ToolContext
from tasks_store.mcp.v2026_wire import (
    CLIENT_CAPABILITIES_KEY,
    PROTOCOL_VERSION_KEY,
    TASKS_EXTENSION,
)
from tasks_store.records import RELATED_TASK_META_KEY

from .mcp_schema import check_response
from .mcp_schema import validator as schema_2025
from .mcp_schema_2026 import check_response_2026, core_validator, ext_validator

pytestmark = pytest.mark.timeout(120)

WAIT = 30.0  # an upper bound for an event to arrive, never an assertion
V2026 = "2026-07-28"
TASKS = {"extensions": {TASKS_EXTENSION: {}}}
ANON = "local"
NAME_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


def _text(text: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}]}


def ask_name(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    answer = ctx.elicit("What is your name?", NAME_SCHEMA, timeout=WAIT)
    name = (answer.get("content") or {}).get("name", "?")
    ctx.report_progress(f"greeting {name}")
    return _text(f"Hello, {name}!")


def ask_twice(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    first = ctx.request_input({"a": elicitation_request("A?", NAME_SCHEMA)}, timeout=WAIT)
    second = ctx.request_input({"b": elicitation_request("B?", NAME_SCHEMA)}, timeout=WAIT)
    return _text(f"{first['a']['content']['name']} {second['b']['content']['name']}")


TOOLS = [
    Tool(name="ask_name", description="Asks.", task_support="optional", fn=ask_name),
    Tool(name="ask_twice", description="Asks twice.", task_support="optional", fn=ask_twice),
]


@pytest.fixture
def make_server(make_store: Callable[..., Any]) -> Iterator[Callable[..., McpServer]]:
    servers: list[McpServer] = []

    def make(**kwargs: Any) -> McpServer:
        store = make_store(security=TaskSecurityConfig(allow_anonymous=True))
        kwargs.setdefault("result_timeout", WAIT)
        server = McpServer(store, TOOLS, **kwargs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close(cancel=True)


@pytest.fixture
def server(make_server: Callable[..., McpServer]) -> McpServer:
    return make_server()


class Stream(threading.Thread):
    """Reads a streamed reply's SSE events into a queue; ``leave()`` is the client going away."""

    def __init__(self, response: HttpResponse, gone: threading.Event) -> None:
        super().__init__(daemon=True)
        assert 200 == response.status
        assert "text/event-stream" == response.header("content-type")
        assert response.stream is not None
        self.response = response
        self.gone = gone
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.comments = 0
        self.start()

    def run(self) -> None:
        assert self.response.stream is not None
        for chunk in self.response.stream:
            for block in chunk.decode("utf-8").split("\n\n"):
                lines = [line for line in block.split("\n") if line]
                data = [line[5:].strip() for line in lines if line.startswith("data:")]
                if data:
                    assert ["event: message"] == [x for x in lines if x.startswith("event:")]
                    self.events.put(json.loads(data[0]))
                elif lines:
                    assert all(line.startswith(":") for line in lines), lines
                    self.comments += 1

    def next(self) -> dict[str, Any]:
        return self.events.get(timeout=WAIT)

    def leave(self) -> None:
        self.gone.set()
        self.join(WAIT)
        assert not self.is_alive(), "the stream did not end when its client left"

    def ended(self) -> None:
        self.join(WAIT)
        assert not self.is_alive(), "the stream did not end"


def post_2026(
    server: McpServer,
    method: str,
    params: Mapping[str, Any],
    *,
    capabilities: Mapping[str, Any] | None = None,
    principal: str | None = None,
    gone: threading.Event | None = None,
    request_id: int | str = 7,
    accept: str = "application/json, text/event-stream",
) -> HttpResponse:
    body_params = {
        **params,
        "_meta": {PROTOCOL_VERSION_KEY: V2026, CLIENT_CAPABILITIES_KEY: dict(capabilities or {})},
    }
    headers = {
        "Content-Type": "application/json",
        "Accept": accept,
        "MCP-Protocol-Version": V2026,
        "Mcp-Method": method,
    }
    if "taskId" in params:
        headers["Mcp-Name"] = params["taskId"]
    body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": body_params}
    probe = gone.is_set if gone is not None else None
    request = HttpRequest(
        "POST", "/mcp", headers, json.dumps(body).encode(), principal, client_gone=probe
    )
    return server.handle(request)


def listen(
    server: McpServer,
    notifications: Mapping[str, Any],
    *,
    capabilities: Mapping[str, Any] | None = TASKS,
    principal: str | None = None,
    request_id: int | str = 7,
) -> Stream:
    gone = threading.Event()
    response = post_2026(
        server,
        "subscriptions/listen",
        {"notifications": dict(notifications)},
        capabilities=capabilities,
        principal=principal,
        gone=gone,
        request_id=request_id,
    )
    return Stream(response, gone)


def json_body(response: HttpResponse) -> dict[str, Any]:
    assert response.stream is None
    parsed: dict[str, Any] = json.loads(response.body)
    return parsed


def tasks_get(server: McpServer, task_id: str, principal: str | None = None) -> dict[str, Any]:
    body = json_body(post_2026(server, "tasks/get", {"taskId": task_id}, capabilities=TASKS,
                               principal=principal))  # fmt: skip
    check_response_2026(body, "tasks/get")
    result: dict[str, Any] = body["result"]
    return result


def next_response(stream: Stream) -> dict[str, Any]:
    """Read past the stream's notifications to its next message with an id."""
    while "id" not in (message := stream.next()):
        pass
    return message


def check_notification(message: dict[str, Any], subscription_id: int | str) -> None:
    """A listen-stream notification: its shape, and the subscription id it carries."""
    assert "id" not in message
    assert subscription_id == message["params"]["_meta"][SUBSCRIPTION_ID_KEY]
    if message["method"] == "notifications/tasks":
        ext_validator("TaskStatusNotification").validate(message)
    else:
        core_validator("JSONRPCNotification").validate(message)
        name = {
            "notifications/subscriptions/acknowledged": "SubscriptionsAcknowledgedNotification",
            "notifications/tools/list_changed": "ToolListChangedNotification",
            "notifications/prompts/list_changed": "PromptListChangedNotification",
        }[message["method"]]
        core_validator(name).validate(message)


# -- 2026-07-28: subscriptions/listen -------------------------------------------------------


def test_listen_acknowledges_first(server: McpServer) -> None:
    store = server.store
    mine = store.create(ANON, "tools/call").task_id
    theirs = store.create("user:bob", "tools/call").task_id
    stream = listen(
        server,
        {"taskIds": [mine, theirs, "made-up", mine], "toolsListChanged": True,
         "resourcesListChanged": True, "promptsListChanged": True},
        request_id="sub-1",
    )  # fmt: skip
    ack = stream.next()
    check_notification(ack, "sub-1")
    assert "notifications/subscriptions/acknowledged" == ack["method"]
    assert {"toolsListChanged": True, "taskIds": [mine]} == ack["params"]["notifications"]
    first = stream.next()  # the task as it is now
    check_notification(first, "sub-1")
    assert mine == first["params"]["taskId"]
    stream.leave()


def test_task_notifications_follow_every_change(server: McpServer) -> None:
    store = server.store
    task_id = store.create(ANON, "tools/call").task_id
    stream = listen(server, {"taskIds": [task_id]})
    assert "notifications/subscriptions/acknowledged" == stream.next()["method"]
    seen: list[dict[str, Any]] = []

    def expect(status: str) -> dict[str, Any]:
        message = stream.next()
        check_notification(message, 7)
        assert "notifications/tasks" == message["method"]
        params = message["params"]
        assert status == params["status"]
        expected = tasks_get(server, task_id)  # the same DetailedTask tasks/get answers
        del expected["resultType"]
        params_meta = {k: v for k, v in params["_meta"].items() if k != SUBSCRIPTION_ID_KEY}
        expected_meta = {k: v for k, v in expected.pop("_meta", {}).items()
                         if k != "io.modelcontextprotocol/serverInfo"}  # fmt: skip
        assert expected_meta == params_meta
        assert expected == {k: v for k, v in params.items() if k != "_meta"}
        seen.append(params)
        return params

    expect("working")
    store.set_status_message(task_id, ANON, "10%", variables={"progress": 0.1})
    assert "10%" == expect("working")["statusMessage"]
    store.request_input(task_id, ANON, {"q": elicitation_request("Q?", NAME_SCHEMA)})
    got = expect("input_required")
    assert ["q"] == list(got["inputRequests"])
    assert "requestState" not in got
    store.respond_input(task_id, ANON, {"q": {"action": "accept", "content": {"name": "x"}}})
    expect("working")
    store.complete_with_result(task_id, ANON, "completed", None, _text("done"))
    assert _text("done")["content"] == expect("completed")["result"]["content"]
    store.set_variables(store.create(ANON, "tools/call").task_id, ANON, {"x": 1})  # not watched
    assert stream.events.empty()
    stream.leave()


def test_tools_list_changes_reach_only_streams_that_asked(server: McpServer) -> None:
    tools = listen(server, {"toolsListChanged": True}, capabilities={}, request_id=1)
    prompts = listen(server, {"promptsListChanged": True}, capabilities={}, request_id=2)
    assert {"toolsListChanged": True} == tools.next()["params"]["notifications"]
    assert {} == prompts.next()["params"]["notifications"]  # no prompts: not honoured
    server.tools.add(Tool(name="added", description="New.", fn=ask_name))
    changed = tools.next()
    check_notification(changed, 1)
    assert "notifications/tools/list_changed" == changed["method"]
    tools.leave()
    prompts.leave()
    assert prompts.events.empty()


def test_prompts_list_changes(make_server: Callable[..., McpServer]) -> None:
    def prompt(arguments: dict[str, str], ctx: Any) -> dict[str, Any]:
        return {"messages": []}

    server = make_server(prompts=[Prompt(name="p1", fn=prompt)])
    stream = listen(server, {"promptsListChanged": True}, capabilities={})
    assert {"promptsListChanged": True} == stream.next()["params"]["notifications"]
    server.prompts.add(Prompt(name="p2", fn=prompt))
    changed = stream.next()
    check_notification(changed, 7)
    assert "notifications/prompts/list_changed" == changed["method"]
    stream.leave()


@pytest.mark.parametrize(
    ("notifications", "capabilities", "status", "code"),
    [
        ({"taskIds": ["t"]}, {}, 400, -32021),
        ({"taskIds": "t"}, TASKS, 200, -32602),
        ({"taskIds": [1]}, TASKS, 200, -32602),
        ({"taskIds": ["t"] * 101}, TASKS, 200, -32602),
        ("all", TASKS, 200, -32602),
    ],
)
def test_listen_refuses_a_bad_filter(
    server: McpServer, notifications: Any, capabilities: Any, status: int, code: int
) -> None:
    response = post_2026(
        server, "subscriptions/listen", {"notifications": notifications}, capabilities=capabilities
    )
    body = json_body(response)
    check_response_2026(body)
    assert (status, code) == (response.status, body["error"]["code"])
    if code == -32021:
        required = body["error"]["data"]["requiredCapabilities"]
        assert {"extensions": {TASKS_EXTENSION: {}}} == required


def test_listen_needs_an_event_stream(server: McpServer) -> None:
    response = post_2026(
        server, "subscriptions/listen", {"notifications": {}}, accept="application/json"
    )
    assert 400 == response.status
    assert -32600 == json_body(response)["error"]["code"]


def test_streams_are_bounded_per_owner_and_in_total(
    make_server: Callable[..., McpServer],
) -> None:
    server = make_server(limits=ServerLimits(max_blocking=2, max_blocking_per_owner=1))
    alice = listen(server, {}, capabilities={}, principal="alice")
    alice.next()

    def refused(principal: str) -> dict[str, Any]:
        response = post_2026(
            server, "subscriptions/listen", {"notifications": {}}, principal=principal
        )
        body = json_body(response)
        check_response_2026(body)
        assert -32603 == body["error"]["code"]
        error: dict[str, Any] = body["error"]
        return error

    assert {"scope": "owner", "limit": 1} == refused("alice")["data"]
    bob = listen(server, {}, capabilities={}, principal="bob")
    bob.next()
    error = refused("carol")
    assert {"scope": "server", "limit": 2} == error["data"]
    assert "Too many" in error["message"]
    alice.leave()  # her place is given back once her stream has ended
    again = listen(server, {}, capabilities={}, principal="alice")
    again.next()
    again.leave()
    bob.leave()
    assert 0 == server.gate.active()
    assert 0 == len(server.streams)


def test_a_stream_ends_when_its_client_leaves(server: McpServer) -> None:
    task_id = server.store.create(ANON, "tools/call").task_id
    stream = listen(server, {"taskIds": [task_id], "toolsListChanged": True})
    stream.next()
    stream.next()
    stream.leave()
    assert 0 == server.gate.active()
    assert 0 == len(server.streams)
    if hasattr(server.store, "_watchers"):
        assert 0 == len(server.store._watchers)  # no watch left behind


def test_closing_the_server_ends_its_streams_gracefully(
    make_server: Callable[..., McpServer],
) -> None:
    server = make_server()
    stream = listen(server, {"toolsListChanged": True}, capabilities={}, request_id=42)
    stream.next()
    server.close()
    end = stream.next()
    stream.ended()
    core_validator("JSONRPCResultResponse").validate(end)
    core_validator("SubscriptionsListenResult").validate(end["result"])
    assert 42 == end["id"]
    assert {"resultType": "complete"} == {"resultType": end["result"]["resultType"]}
    assert 42 == end["result"]["_meta"][SUBSCRIPTION_ID_KEY]
    refused = post_2026(server, "subscriptions/listen", {"notifications": {}})
    assert -32603 == json_body(refused)["error"]["code"]


# -- 2025-11-25: tasks/result of a task waiting for input ----------------------------------


class Session:
    """A 2025-11-25 session on the server: ``initialize``, then requests with its id."""

    def __init__(self, server: McpServer, principal: str | None = None) -> None:
        self.server = server
        self.principal = principal
        reply = self.post(
            {"jsonrpc": "2.0", "id": 0, "method": "initialize",
             "params": {"protocolVersion": "2025-11-25", "capabilities": {"elicitation": {}},
                        "clientInfo": {"name": "t", "version": "1"}}},
            session=False,
        )  # fmt: skip
        session_id = reply.header("mcp-session-id")
        assert session_id is not None
        self.session_id = session_id
        self.next_id = 1

    def post(
        self,
        message: Mapping[str, Any],
        *,
        session: bool = True,
        accept: str = "application/json, text/event-stream",
        gone: threading.Event | None = None,
    ) -> HttpResponse:
        headers = {"Content-Type": "application/json", "Accept": accept}
        if session:
            headers["Mcp-Session-Id"] = self.session_id
            headers["MCP-Protocol-Version"] = "2025-11-25"
        request = HttpRequest(
            "POST",
            "/mcp",
            headers,
            json.dumps(message).encode(),
            self.principal,
            client_gone=None if gone is None else gone.is_set,
        )
        return self.server.handle(request)

    def call(self, method: str, params: Mapping[str, Any], **kwargs: Any) -> HttpResponse:
        self.next_id += 1
        message = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": dict(params)}
        return self.post(message, **kwargs)

    def result(self, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        body = json_body(self.call(method, params))
        check_response(body)
        assert "result" in body, body
        result: dict[str, Any] = body["result"]
        return result

    def start(self, tool: str) -> str:
        params = {"name": tool, "arguments": {}, "task": {"ttl": 60_000}}
        created = self.result("tools/call", params)
        task_id: str = created["task"]["taskId"]
        return task_id

    def wait_for(self, task_id: str, status: str) -> None:
        with self.server.store.watch(self.server.owner_for(self.principal, self.session_id),
                                     [task_id]) as watch:  # fmt: skip
            for _ in range(1000):
                if status == self.result("tasks/get", {"taskId": task_id})["status"]:
                    return
                watch.wait(WAIT)
        raise AssertionError(f"task {task_id} never became {status}")

    def result_stream(self, task_id: str) -> Stream:
        gone = threading.Event()
        response = self.call("tasks/result", {"taskId": task_id}, gone=gone)
        return Stream(response, gone)

    def respond(self, request_id: Any, result: Any = None, error: Any = None) -> int:
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id}
        if error is not None:
            message["error"] = error
        else:
            message["result"] = result
        response = self.post(message)
        assert b"" == response.body
        return response.status


def check_2025(message: dict[str, Any], name: str) -> None:
    schema_2025(name).validate(message)


def test_result_stream_carries_the_requests_and_ends_with_the_result(server: McpServer) -> None:
    session = Session(server)
    task_id = session.start("ask_twice")
    session.wait_for(task_id, "input_required")
    stream = session.result_stream(task_id)
    first = stream.next()
    check_2025(first, "ElicitRequest")
    check_2025(first, "JSONRPCRequest")
    assert first["id"] == f"{INPUT_REQUEST_ID_PREFIX}{task_id}:a"
    assert {"taskId": task_id} == first["params"]["_meta"][RELATED_TASK_META_KEY]
    assert "A?" == first["params"]["message"]
    assert 202 == session.respond(first["id"], {"action": "accept", "content": {"name": "x"}})
    statuses = []
    while True:  # status notifications, then the second round's request
        message = stream.next()
        if message.get("method") == "notifications/tasks/status":
            check_2025(message, "TaskStatusNotification")
            assert RELATED_TASK_META_KEY not in message["params"].get("_meta", {})
            statuses.append(message["params"]["status"])
            continue
        break
    check_2025(message, "ElicitRequest")
    assert message["id"] == f"{INPUT_REQUEST_ID_PREFIX}{task_id}:b"
    assert 202 == session.respond(message["id"], {"action": "accept", "content": {"name": "y"}})
    while True:
        message = stream.next()
        if "id" in message:
            break
        check_2025(message, "TaskStatusNotification")
        statuses.append(message["params"]["status"])
    stream.ended()
    check_response(message)
    assert session.next_id == message["id"]
    assert _text("x y")["content"] == message["result"]["content"]
    assert {"taskId": task_id} == message["result"]["_meta"][RELATED_TASK_META_KEY]
    assert "completed" == statuses[-1]
    assert 0 == server.gate.active()


def test_an_error_answer_fails_the_tool(server: McpServer) -> None:
    session = Session(server)
    task_id = session.start("ask_name")
    session.wait_for(task_id, "input_required")
    stream = session.result_stream(task_id)
    request = stream.next()
    assert 202 == session.respond(request["id"], error={"code": -32000, "message": "closed"})
    message = next_response(stream)
    stream.ended()
    check_response(message)
    assert "error" in message
    assert "failed" == session.result("tasks/get", {"taskId": task_id})["status"]


def test_answers_from_another_session_are_ignored(server: McpServer) -> None:
    alice = Session(server)
    task_id = alice.start("ask_name")
    alice.wait_for(task_id, "input_required")
    stream = alice.result_stream(task_id)
    request = stream.next()
    other = Session(server)
    assert 202 == other.respond(request["id"], {"action": "accept", "content": {"name": "m"}})
    assert 202 == alice.respond(f"{INPUT_REQUEST_ID_PREFIX}{task_id}:unknown", {"x": 1})
    assert 202 == alice.respond("tasks_store-input:malformed", {"x": 1})
    assert "input_required" == alice.result("tasks/get", {"taskId": task_id})["status"]
    assert 202 == alice.respond(request["id"], {"action": "accept", "content": {"name": "A"}})
    message = next_response(stream)
    assert _text("Hello, A!")["content"] == message["result"]["content"]


def test_plain_json_unless_the_task_waits_and_sse_is_accepted(
    make_server: Callable[..., McpServer],
) -> None:
    server = make_server(result_timeout=0.2)
    session = Session(server)
    task_id = session.start("ask_name")
    session.wait_for(task_id, "input_required")
    plain = session.call("tasks/result", {"taskId": "made-up"})
    assert -32602 == json_body(plain)["error"]["code"]
    refused = session.call("tasks/result", {"taskId": task_id}, accept="application/json")
    body = json_body(refused)  # JSON: the plain blocking wait, up to result_timeout
    check_response(body)
    assert "input_required" == body["error"]["data"]["status"]
    server.store.cancel(task_id, server.owner_for(None, session.session_id))
    after = session.call("tasks/result", {"taskId": task_id})
    check_response(json_body(after))


def test_a_result_stream_times_out_like_a_plain_wait(make_server: Callable[..., McpServer]) -> None:
    server = make_server(result_timeout=0.3)
    session = Session(server)
    task_id = session.start("ask_name")
    session.wait_for(task_id, "input_required")
    stream = session.result_stream(task_id)
    assert "elicitation/create" == stream.next()["method"]
    end = stream.next()
    stream.ended()
    check_response(end)
    assert -32603 == end["error"]["code"]
    assert {"taskId": task_id, "status": "input_required"} == {
        k: end["error"]["data"][k] for k in ("taskId", "status")
    }
    assert TaskStatus.INPUT_REQUIRED is server.store.get(
        task_id, server.owner_for(None, session.session_id)
    ).status  # the task goes on


def test_cancelling_ends_the_stream_and_the_tool(server: McpServer) -> None:
    session = Session(server)
    task_id = session.start("ask_name")
    session.wait_for(task_id, "input_required")
    stream = session.result_stream(task_id)
    stream.next()
    owner = server.owner_for(None, session.session_id)
    server.store.cancel(task_id, owner, "stop")
    message = next_response(stream)
    stream.ended()
    check_response(message)
    assert "error" in message  # a cancelled task has no result
    record = server.store.get(task_id, owner)
    assert TaskStatus.CANCELLED is record.status
    assert isinstance(TaskEnded(task_id, "cancelled"), Exception)

"""
Multi round-trip requests (SEP-2322) and the 2026-07-28 task input flow, on
every backend.

- :class:`RequestStateCodec`: what it binds (method, salient parameters,
  caller, expiry) and what it refuses (tampering, another request, another
  caller, an expired or malformed state).
- Through ``McpServer.handle``: a tool (or prompt, or a tool's ``prepare``
  step) asking with ``ctx.elicit`` is answered ``input_required`` with a
  signed ``requestState``; the retry completes it; multi-round state; the
  capability rule; malformed ``inputResponses``; a task created on the final
  round (and ``requestState`` never in its shape); ``tasks/get`` inlining only
  the outstanding ``inputRequests`` and ``tasks/update`` answering them.

Every response is validated against the 2026-07-28 schema and the Tasks
extension's schema.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from tasks_store import TaskSecurityConfig
from tasks_store.errors import InvalidParams, InvalidRequestState
from tasks_store.mcp import HttpRequest, McpServer, Tool
from tasks_store.mcp.context import TaskContext
from tasks_store.mcp.mrtr import (
    InputRequired,
    InputRound,
    RequestStateCodec,
    elicitation_request,
    input_responses,
    roots_request,
    salient_digest,
    sampling_request,
)
from tasks_store.mcp.prompts import Prompt
from tasks_store.mcp.tools import ToolContext
from tasks_store.mcp.v2026 import RequestCallContext
from tasks_store.mcp.v2026_wire import (
    CLIENT_CAPABILITIES_KEY,
    PROTOCOL_VERSION_KEY,
    TASKS_EXTENSION,
)

from .mcp_schema_2026 import check_response_2026

pytestmark = pytest.mark.timeout(120)

WAIT = 30.0
V2026 = "2026-07-28"
TASKS = {"extensions": {TASKS_EXTENSION: {}}}
ALL = {"elicitation": {}, "sampling": {}, "roots": {}}
NAME = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


def accept(**content: Any) -> dict[str, Any]:
    return {"action": "accept", "content": content}


# -- the codec ----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_state_opens_only_for_its_request_and_caller() -> None:
    clock = Clock()
    codec = RequestStateCodec(b"s" * 32, ttl_s=60, clock=clock)
    state = codec.seal({"a": {"x": 1}}, method="tools/call", digest="d1", owner="alice")
    assert {"a": {"x": 1}} == codec.open(state, method="tools/call", digest="d1", owner="alice")
    cases = {
        "another request": {"method": "tools/call", "digest": "d2", "owner": "alice"},
        "another method": {"method": "prompts/get", "digest": "d1", "owner": "alice"},
        "another caller": {"method": "tools/call", "digest": "d1", "owner": "bob"},
    }
    for reason, bound in cases.items():
        with pytest.raises(InvalidRequestState, match="another"):
            codec.open(state, **bound)
        assert reason
    clock.now += 60
    with pytest.raises(InvalidRequestState, match="expired"):
        codec.open(state, method="tools/call", digest="d1", owner="alice")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s + "-TAMPERED",
        lambda s: s[:-2] + ("A" if s[-2] != "A" else "B") + s[-1],
        lambda s: s.replace("v1.", "v2."),
        lambda s: "v1." + s.split(".")[1],
        lambda s: "not a state",
        lambda s: "",
    ],
)
def test_a_tampered_state_is_refused(mangle: Callable[[str], str]) -> None:
    codec = RequestStateCodec(b"k" * 32)
    state = codec.seal({"ok": True}, method="tools/call", digest="d", owner="o")
    with pytest.raises(InvalidRequestState):
        codec.open(mangle(state), method="tools/call", digest="d", owner="o")
    other = RequestStateCodec(b"j" * 32)  # another server's key
    with pytest.raises(InvalidRequestState, match="tampered"):
        other.open(state, method="tools/call", digest="d", owner="o")
    with pytest.raises(InvalidRequestState):
        codec.open(12345, method="tools/call", digest="d", owner="o")


def test_the_codec_checks_its_settings() -> None:
    with pytest.raises(ValueError, match="16"):
        RequestStateCodec(b"short")
    with pytest.raises(ValueError, match="ttl_s"):
        RequestStateCodec(b"k" * 32, ttl_s=0)


def test_the_salient_digest_ignores_what_a_retry_adds() -> None:
    base = {"name": "t", "arguments": {"a": 1}}
    retry = {**base, "_meta": {"x": 1}, "inputResponses": {"k": {}}, "requestState": "s"}
    assert salient_digest("tools/call", base) == salient_digest("tools/call", retry)
    assert salient_digest("tools/call", base) != salient_digest("tools/call", {**base, "name": "u"})
    assert salient_digest("tools/call", base) != salient_digest("prompts/get", base)


def test_input_responses_are_objects_of_objects() -> None:
    assert {} == input_responses({})
    assert {"k": {"x": 1}} == input_responses({"inputResponses": {"k": {"x": 1}}})
    for bad in (None, [], "x", {"k": 5}, {"k": None}):
        with pytest.raises(InvalidParams):
            input_responses({"inputResponses": bad})


def test_a_round_asks_for_what_is_missing_and_carries_what_it_got() -> None:
    round_ = InputRound({"b": accept(name="B")}, answers={"a": accept(name="A")}, number=1)
    with pytest.raises(InputRequired) as asked:
        round_.ask({"a": roots_request(), "c": roots_request()})
    assert ["c"] == list(asked.value.requests)
    assert {"b": accept(name="B")} == round_.ask({"b": sampling_request("x", 5)})
    carried = round_.carried()
    assert {"a", "b"} == set(carried["a"])
    again = InputRound.from_state({}, carried)
    assert 2 == again.number
    assert accept(name="B") == again.response("b")
    assert ["elicitation-1", "elicitation-2"] == [again.next_key("elicitation") for _ in "ab"]


def test_request_builders_check_their_arguments() -> None:
    with pytest.raises(InvalidParams):
        elicitation_request("m", {"type": "string"})
    with pytest.raises(InvalidParams):
        elicitation_request(5, NAME)  # type: ignore[arg-type]
    with pytest.raises(InvalidParams):
        sampling_request("m", 0)
    with pytest.raises(InvalidParams):
        sampling_request(5, 10)  # type: ignore[arg-type]
    params = sampling_request("m", 3, systemPrompt="s")["params"]
    assert "s" == params["systemPrompt"]


# -- through the server ------------------------------------------------------------


def greet(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    name = ctx.elicit("Name?", NAME, key="user_name")["content"]["name"]
    return {"content": [{"type": "text", "text": f"Hello, {name}!"}]}


def two_rounds(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    first = ctx.elicit("Name?", NAME)["content"]["name"]  # elicitation-1
    second = ctx.create_message("Colour?", 10)["content"]["text"]  # sampling-2
    return {"content": [{"type": "text", "text": f"{first} likes {second}"}]}


def stateful(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    assert isinstance(ctx, RequestCallContext)
    if ctx.round == 1:
        ctx.state = {"secret plan": [1, 2]}
    ctx.list_roots(key="roots")
    return {"content": [{"type": "text", "text": json.dumps([ctx.round, ctx.state])}]}


def returns_its_own(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    assert isinstance(ctx, RequestCallContext)
    if ctx.state is None:
        return {"resultType": "input_required", "requestState": "tool-says-round-2"}
    return {"content": [{"type": "text", "text": str(ctx.state)}]}


def ask_first(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    answer = ctx.elicit("Name?", NAME, key="user_name")
    return {**arguments, "name": answer["content"]["name"]}


def greet_from_task(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    assert isinstance(ctx, TaskContext)
    return {"content": [{"type": "text", "text": f"Hello from a task, {arguments['name']}!"}]}


def confirm(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    answers = ctx.request_input(
        {"a": elicitation_request("A?", NAME), "b": elicitation_request("B?", NAME)},
        timeout=WAIT,
    )
    return {"content": [{"type": "text", "text": " ".join(sorted(answers))}]}


def prompt(arguments: dict[str, str], ctx: Any) -> dict[str, Any]:
    context = ctx.elicit("Context?", NAME, key="ctx")["content"]["name"]
    return {"messages": [{"role": "user", "content": {"type": "text", "text": context}}]}


TOOLS = [
    Tool(name="greet", description="g", fn=greet),
    Tool(name="two_rounds", description="t", fn=two_rounds),
    Tool(name="stateful", description="s", fn=stateful),
    Tool(name="returns_its_own", description="r", fn=returns_its_own),
    Tool(
        name="composed",
        description="c",
        task_support="required",
        fn=greet_from_task,
        prepare=ask_first,
    ),
    Tool(name="confirm", description="c", task_support="optional", fn=confirm),
]


@pytest.fixture
def server(make_store: Callable[..., Any]) -> Iterator[McpServer]:
    store = make_store(security=TaskSecurityConfig(allow_anonymous=True))
    server = McpServer(store, TOOLS, prompts=[Prompt(name="p", fn=prompt)], result_timeout=WAIT)
    yield server
    server.close(cancel=True)


def send(
    server: McpServer,
    method: str,
    params: Mapping[str, Any],
    *,
    capabilities: Mapping[str, Any] = ALL,
    principal: str | None = None,
) -> tuple[int, dict[str, Any]]:
    body_params = {
        **params,
        "_meta": {PROTOCOL_VERSION_KEY: V2026, CLIENT_CAPABILITIES_KEY: dict(capabilities)},
    }
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": V2026,
        "Mcp-Method": method,
    }
    for field in ("name", "taskId"):
        if isinstance(params.get(field), str):
            headers["Mcp-Name"] = params[field]
    message = {"jsonrpc": "2.0", "id": 1, "method": method, "params": body_params}
    response = server.handle(
        HttpRequest("POST", "/mcp", headers, json.dumps(message).encode(), principal)
    )
    body: dict[str, Any] = json.loads(response.body)
    check_response_2026(body, method)
    return response.status, body


def call(server: McpServer, name: str, **extra: Any) -> dict[str, Any]:
    capabilities = extra.pop("capabilities", ALL)
    principal = extra.pop("principal", None)
    status, body = send(server, "tools/call", {"name": name, "arguments": {}, **extra},
                        capabilities=capabilities, principal=principal)  # fmt: skip
    assert 200 == status, body
    assert "result" in body, body
    result: dict[str, Any] = body["result"]
    return result


def error_of(server: McpServer, method: str, params: Mapping[str, Any], **kwargs: Any) -> Any:
    status, body = send(server, method, params, **kwargs)
    assert "error" in body, body
    return status, body["error"]


def test_a_tool_asks_and_the_retry_completes(server: McpServer) -> None:
    first = call(server, "greet")
    assert "input_required" == first["resultType"]
    assert ["user_name"] == list(first["inputRequests"])
    assert "elicitation/create" == first["inputRequests"]["user_name"]["method"]
    state = first["requestState"]
    done = call(server, "greet", inputResponses={"user_name": accept(name="Ada")},
                requestState=state)  # fmt: skip
    assert "complete" == done["resultType"]
    assert "Hello, Ada!" == done["content"][0]["text"]
    # The state is optional: a retry without it starts afresh, with its answers.
    fresh = call(server, "greet", inputResponses={"user_name": accept(name="Bo"), "extra": {}})
    assert "Hello, Bo!" == fresh["content"][0]["text"]
    again = call(server, "greet", inputResponses={"wrong_key": accept(name="x")})
    assert "input_required" == again["resultType"]


def test_a_state_is_refused_on_any_other_request(server: McpServer) -> None:
    state = call(server, "greet")["requestState"]
    answers = {"user_name": accept(name="Ada")}
    for params, principal in [
        ({"name": "greet", "arguments": {}, "requestState": state + "-TAMPERED"}, None),
        ({"name": "greet", "arguments": {"x": 1}, "requestState": state}, None),
        ({"name": "two_rounds", "arguments": {}, "requestState": state}, None),
        ({"name": "greet", "arguments": {}, "requestState": state}, "mallory"),
        ({"name": "greet", "arguments": {}, "requestState": 7}, None),
    ]:
        status, error = error_of(server, "tools/call", {**params, "inputResponses": answers},
                                 principal=principal)  # fmt: skip
        assert (200, -32602) == (status, error["code"]), error


@pytest.mark.parametrize("responses", [None, [], "x", {"user_name": 12345}])
def test_malformed_input_responses_are_invalid_params(server: McpServer, responses: Any) -> None:
    status, error = error_of(
        server, "tools/call", {"name": "greet", "arguments": {}, "inputResponses": responses}
    )
    assert (200, -32602) == (status, error["code"])


def test_rounds_carry_the_answers_so_far(server: McpServer) -> None:
    first = call(server, "two_rounds")
    assert ["elicitation-1"] == list(first["inputRequests"])
    second = call(server, "two_rounds", inputResponses={"elicitation-1": accept(name="Ann")},
                  requestState=first["requestState"])  # fmt: skip
    assert ["sampling-2"] == list(second["inputRequests"])
    assert first["requestState"] != second["requestState"]
    sampled = {"role": "assistant", "content": {"type": "text", "text": "blue"},
               "model": "m", "stopReason": "endTurn"}  # fmt: skip
    done = call(server, "two_rounds", inputResponses={"sampling-2": sampled},
                requestState=second["requestState"])  # fmt: skip
    assert "Ann likes blue" == done["content"][0]["text"]


def test_the_tools_own_state_comes_back(server: McpServer) -> None:
    first = call(server, "stateful")
    assert "secret plan" not in json.dumps(first["inputRequests"])
    done = call(server, "stateful", inputResponses={"roots": {"roots": []}},
                requestState=first["requestState"])  # fmt: skip
    assert [2, {"secret plan": [1, 2]}] == json.loads(done["content"][0]["text"])
    own = call(server, "returns_its_own")
    assert "inputRequests" not in own
    assert "tool-says-round-2" != own["requestState"]  # always the server's signed state
    back = call(server, "returns_its_own", requestState=own["requestState"])
    assert "tool-says-round-2" == back["content"][0]["text"]


def test_nothing_is_asked_without_the_capability(server: McpServer) -> None:
    status, error = error_of(server, "tools/call", {"name": "greet", "arguments": {}},
                             capabilities={"sampling": {}})  # fmt: skip
    assert (400, -32021) == (status, error["code"])
    assert {"elicitation": {}} == error["data"]["requiredCapabilities"]


def test_a_prompt_asks_too(server: McpServer) -> None:
    _, body = send(server, "server/discover", {})
    assert {"listChanged": True} == body["result"]["capabilities"]["prompts"]
    _, body = send(server, "prompts/list", {})
    assert [{"name": "p"}] == body["result"]["prompts"]
    _, body = send(server, "prompts/get", {"name": "p"})
    first = body["result"]
    assert "input_required" == first["resultType"]
    _, body = send(server, "prompts/get", {"name": "p", "inputResponses": {
        "ctx": accept(name="the context")}, "requestState": first["requestState"]})  # fmt: skip
    assert "the context" == body["result"]["messages"][0]["content"]["text"]
    _, error = error_of(server, "prompts/get", {"name": "nope"})
    assert -32602 == error["code"]
    # A tool's state does not open a prompt's request.
    tool_state = call(server, "greet")["requestState"]
    _, error = error_of(server, "prompts/get", {"name": "p", "requestState": tool_state})
    assert -32602 == error["code"]


def test_input_first_then_a_task_on_the_final_round(server: McpServer) -> None:
    first = call(server, "composed", capabilities={**ALL, **TASKS})
    assert "input_required" == first["resultType"]
    assert "taskId" not in first
    created = call(server, "composed", capabilities={**ALL, **TASKS},
                   inputResponses={"user_name": accept(name="Alice")},
                   requestState=first["requestState"])  # fmt: skip
    assert "task" == created["resultType"]
    assert "requestState" not in created
    assert "inputRequests" not in created
    task_id = created["taskId"]
    done = server.store.wait(task_id, "local", timeout=WAIT)
    assert "Hello from a task, Alice!" == done.result["content"][0]["text"]
    _, body = send(server, "tasks/get", {"taskId": task_id}, capabilities=TASKS)
    assert "requestState" not in json.dumps(body)


def test_tasks_get_shows_the_outstanding_requests_and_update_answers_them(
    server: McpServer,
) -> None:
    task_id = call(server, "confirm", capabilities={**ALL, **TASKS})["taskId"]
    with server.store.watch("local", [task_id]) as watch:
        while server.store.get(task_id, "local").status.value != "input_required":
            watch.wait(WAIT)
    _, body = send(server, "tasks/get", {"taskId": task_id}, capabilities=TASKS)
    assert ["a", "b"] == sorted(body["result"]["inputRequests"])
    _, body = send(server, "tasks/update", {"taskId": task_id, "inputResponses": {
        "a": accept(name="1"), "never": {}}}, capabilities=TASKS)  # fmt: skip
    assert {"resultType"} == set(body["result"]) - {"_meta"}
    _, body = send(server, "tasks/get", {"taskId": task_id}, capabilities=TASKS)
    assert "input_required" == body["result"]["status"]
    assert ["b"] == list(body["result"]["inputRequests"])
    send(server, "tasks/update", {"taskId": task_id, "inputResponses": {"b": accept(name="2")}},
         capabilities=TASKS)  # fmt: skip
    done = server.store.wait(task_id, "local", timeout=WAIT)
    assert "a b" == done.result["content"][0]["text"]
    _, body = send(server, "tasks/update", {"taskId": task_id, "inputResponses": {
        "b": accept(name="late")}}, capabilities=TASKS)  # fmt: skip
    assert "result" in body  # a finished task: still the ack
    _, error = error_of(server, "tasks/update", {"taskId": "made-up", "inputResponses": {}},
                        capabilities=TASKS)  # fmt: skip
    assert -32602 == error["code"]


def test_the_same_tool_asks_in_a_task_on_2025_11_25(server: McpServer) -> None:
    """On 2025-11-25 a prepare step runs in the task, where ctx.elicit blocks for the answer."""
    owner = "user:alice"
    tool = server.tools.get("composed")
    assert tool is not None
    created = server.runner.start(owner, "tools/call", lambda ctx: tool.call({}, ctx))
    task_id = created["task"]["taskId"]
    with server.store.watch(owner, [task_id]) as watch:
        while not server.store.get(task_id, owner).input_requests:
            watch.wait(WAIT)
    assert ["user_name"] == list(server.store.get(task_id, owner).input_requests)
    threading.Thread(
        target=server.store.respond_input, args=(task_id, owner, {"user_name": accept(name="Z")})
    ).start()
    done = server.store.wait(task_id, owner, timeout=WAIT)
    assert "Hello from a task, Z!" == done.result["content"][0]["text"]

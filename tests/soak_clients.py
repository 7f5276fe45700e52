"""
The client processes of the soak test (``tests/test_soak.py``), run with multiprocessing (spawn).

``legit(...)``: N threads, each its own 2025-11-25 session, each looping
create -> poll ``tasks/get`` at the task's ``pollInterval`` -> ``tasks/result``
(now and then ``tasks/list``), timing every ``tasks/get``; it reports
``(when, seconds)`` samples, its session ids and its error counts.

``abuser(...)``: one session doing everything a hostile client does at
once: 16 threads holding ``tasks/result`` on tasks that never end, a create
flood, and a stream of malformed bodies; it never honours ``Retry-After``.
It reports its session id, its long tasks and what it was answered.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import threading
import time
from collections import Counter
from typing import Any

HOST = "127.0.0.1"
TIMEOUT = 30.0


class _Conn:
    """One keep-alive connection and a session on it (reconnects when closed)."""

    def __init__(self, port: int, session: str | None = None) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT)
        self.session = session or ""
        self.next_id = 0
        if not self.session:
            init = {"protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": {"name": "soak", "version": "1"}}  # fmt: skip
            status, headers, _ = self.post(self.message("initialize", init))
            assert status == 200, status
            self.session = headers["mcp-session-id"]
            self.post(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')

    def message(self, method: str, params: Any = None) -> bytes:
        self.next_id += 1
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            body["params"] = params
        return json.dumps(body).encode()

    def post(self, body: bytes) -> tuple[int, dict[str, str], Any]:
        headers = {"Content-Type": "application/json", "MCP-Protocol-Version": "2025-11-25"}
        if self.session:
            headers["Mcp-Session-Id"] = self.session
        for attempt in range(2):
            try:
                self.conn.request("POST", "/mcp", body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=TIMEOUT)
                if attempt:
                    raise
        names = {k.lower(): v for k, v in response.getheaders()}
        if names.get("connection", "").lower() == "close":
            self.conn.close()
        payload = json.loads(data) if data and names.get("content-type", "").startswith(
            "application/json"
        ) else None
        return response.status, names, payload

    def call(self, method: str, params: Any = None) -> tuple[int, Any]:
        status, _, payload = self.post(self.message(method, params))
        return status, payload


def legit(port: int, clients: int, start_at: float, stop_at: float, results: Any) -> None:
    """Run *clients* well-behaved clients from *start_at* to *stop_at* (time.monotonic())."""
    samples: list[tuple[float, float]] = []
    sessions: list[str] = []
    errors: Counter[str] = Counter()
    lock = threading.Lock()
    ready = threading.Barrier(clients + 1)

    def client(n: int) -> None:
        rng = random.Random(n)
        conn = _Conn(port)
        mine: list[tuple[float, float]] = []
        with lock:
            sessions.append(conn.session)
        ready.wait(TIMEOUT)
        while time.monotonic() < start_at:
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.25))  # spread the clients out
        while time.monotonic() < stop_at:
            status, reply = conn.call(
                "tools/call",
                {"name": "work", "arguments": {"ms": rng.randint(50, 250)},
                 "task": {"ttl": 600_000}},
            )  # fmt: skip
            if status != 200 or "result" not in (reply or {}):
                with lock:
                    errors[f"create {status} {json.dumps(reply)[:120]}"] += 1
                time.sleep(0.25)
                continue
            task = reply["result"]["task"]
            while time.monotonic() < stop_at:
                time.sleep(task.get("pollInterval", 250) / 1000)
                began = time.perf_counter()
                status, reply = conn.call("tasks/get", {"taskId": task["taskId"]})
                mine.append((time.monotonic(), time.perf_counter() - began))
                if status != 200 or "result" not in (reply or {}):
                    with lock:
                        errors[f"get {status} {json.dumps(reply)[:120]}"] += 1
                    break
                if reply["result"]["status"] in ("completed", "failed", "cancelled"):
                    status, reply = conn.call("tasks/result", {"taskId": task["taskId"]})
                    if status != 200 or "result" not in (reply or {}):
                        with lock:
                            errors[f"result {status} {json.dumps(reply)[:120]}"] += 1
                    break
            if rng.random() < 0.1:
                conn.call("tasks/list")
        conn.conn.close()
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait(TIMEOUT)
    results.put(("ready", None))
    for thread in threads:
        thread.join()
    results.put(("legit", {"samples": samples, "sessions": sessions, "errors": dict(errors)}))


#: Bodies no strict server accepts (each answered 4xx at once).
MALFORMED = [
    b'{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"taskId":NaN}}',
    b'{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"taskId":1e400}}',
    b'{"jsonrpc":"2.0","id":1,"method":"tasks/cancel","method":"tasks/list"}',
    b'{"jsonrpc":"2.0","id":"\\ud800","method":"tasks/get"}',
    b'{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"taskId":"\\udfff"}}',
    b"\xff\xfe garbage",
    b'{"jsonrpc":"2.0","id":1,"meth',
    b"[" * 5000,
    b'{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"a":1,"a":2}}',
]


def abuser(port: int, start_at: float, stop_at: float, results: Any) -> None:
    """One hostile client: 16 blocking calls, a create flood, malformed bodies; ignores 429."""
    answers: Counter[str] = Counter()
    lock = threading.Lock()
    main = _Conn(port)
    long_tasks = []
    for _ in range(2):
        _status, reply = main.call("tools/call", {"name": "forever", "task": {"ttl": 600_000}})
        long_tasks.append(reply["result"]["task"]["taskId"])
    results.put(("abuser", {"session": main.session, "tasks": long_tasks}))
    while time.monotonic() < start_at:
        time.sleep(0.01)

    def count(kind: str, status: int, reply: Any) -> None:
        code = reply.get("error", {}).get("code") if isinstance(reply, dict) else None
        with lock:
            answers[f"{kind} {status} {code}"] += 1

    def blocking(n: int) -> None:
        conn = _Conn(port, main.session)
        while time.monotonic() < stop_at:
            status, reply = conn.call("tasks/result", {"taskId": long_tasks[n % 2]})
            count("blocking", status, reply)
        conn.conn.close()

    def flood() -> None:
        conn = _Conn(port, main.session)
        while time.monotonic() < stop_at:
            status, reply = conn.call(
                "tools/call", {"name": "work", "arguments": {"ms": 1}, "task": {}}
            )
            count("create", status, reply)
        conn.conn.close()

    def malformed(n: int) -> None:
        conn = _Conn(port, main.session)
        i = n
        while time.monotonic() < stop_at:
            status, _, reply = conn.post(MALFORMED[i % len(MALFORMED)])
            count("malformed", status, reply)
            i += 1
        conn.conn.close()

    def oversized() -> None:
        while time.monotonic() < stop_at:  # a huge Content-Length: refused unread
            with socket.create_connection((HOST, port), timeout=TIMEOUT) as sock:
                sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                             b"application/json\r\nContent-Length: 209715200\r\n\r\n")  # fmt: skip
                response = http.client.HTTPResponse(sock)
                response.begin()
                response.read()
                count("oversized", response.status, None)

    threads = [threading.Thread(target=blocking, args=(n,)) for n in range(16)]
    threads += [threading.Thread(target=flood) for _ in range(2)]
    threads += [threading.Thread(target=malformed, args=(n,)) for n in range(2)]
    threads += [threading.Thread(target=oversized)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    main.conn.close()
    results.put(("answers", dict(answers)))

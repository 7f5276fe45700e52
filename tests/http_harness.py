"""
A real waitress server on 127.0.0.1 for the issue-13 tests, and clients of both generations.

``serve(app)`` runs the WSGI app under waitress in a background thread on an
ephemeral port (with ``channel_request_lookahead`` so that
``waitress.client_disconnected`` works) and stops it on exit.  ``Session``
speaks 2025-11-25 (``initialize``, then its ``Mcp-Session-Id``); ``Stateless``
speaks 2026-07-28 (``_meta`` and the ``Mcp-*`` headers on every request).
Every client holds one keep-alive connection and reconnects when the server
closes it.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import attrs
import waitress
from waitress import wasyncore

HOST = "127.0.0.1"
WAIT = 20.0  # bound on joins and socket reads; never asserted on
V2026 = "2026-07-28"
TASKS_EXTENSION = "io.modelcontextprotocol/tasks"


def eventually(condition: Any, what: str, bound: float = WAIT) -> None:
    """Wait (bounded by *bound*, never asserted on as a time) until *condition()* holds."""
    deadline = time.monotonic() + bound
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.01)


@attrs.frozen
class Reply:
    """One HTTP answer: status, headers (lower-cased names), decoded JSON body or None."""

    status: int
    headers: Mapping[str, str]
    body: Any

    @property
    def result(self) -> Any:
        assert isinstance(self.body, dict), (self.status, self.body)
        assert "result" in self.body, (self.status, self.body)
        return self.body["result"]

    @property
    def error(self) -> dict[str, Any]:
        assert isinstance(self.body, dict), (self.status, self.body)
        assert "error" in self.body, (self.status, self.body)
        error: dict[str, Any] = self.body["error"]
        return error


@attrs.define
class Served:
    """A running server: its port and how many waitress threads it has."""

    port: int
    threads: int


class TeardownWarning(UserWarning):
    """A server stopped another way than planned; shown in the run's warnings, never an error."""


_ROUND = 0.05  # seconds one round of the loop may wait in select() before it checks its stop flag


class _Log(logging.Handler):
    """Collects what the ``waitress`` logger says at WARNING and above while a server runs."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextmanager
def running(server: Any, name: str) -> Iterator[None]:
    """
    Run a waitress *server*'s loop in a thread named *name* for the block, then stop it.

    The loop runs in rounds of at most ``_ROUND`` seconds and checks a stop flag
    between them; on stop it closes every socket in its own thread.  Stopping
    needs neither ``server.close()`` from another thread (which races with
    ``select()``, Pylons/waitress#468) nor the trigger pipe: waitress closes
    the trigger with the server when its listener's ``handle_error`` runs, and
    pulling a closed trigger raised EBADF at teardown (seen three times in CI).  When
    the listener did close itself while serving, the server still stops, and a
    TeardownWarning gives what waitress logged.
    """
    stop = threading.Event()
    log = _Log()
    logger = logging.getLogger("waitress")
    logger.addHandler(log)

    def loop() -> None:
        try:
            while server._map and not stop.is_set():
                server.asyncore.loop(
                    timeout=_ROUND,
                    map=server._map,
                    use_poll=server.adj.asyncore_use_poll,
                    count=1,
                )
        finally:
            wasyncore.close_all(server._map, ignore_all=True)

    thread = threading.Thread(target=loop, name=name)
    thread.start()
    try:
        yield
    finally:
        listening = server.accepting
        stop.set()
        thread.join(WAIT)
        logger.removeHandler(log)
        server.task_dispatcher.shutdown()
        assert not thread.is_alive(), "the waitress loop did not stop"
        if not listening:
            warnings.warn(
                f"waitress closed its listening socket while serving; it logged: {log.lines}",
                TeardownWarning,
                stacklevel=2,
            )


@contextmanager
def serve(app: Any, *, threads: int = 8, **adjustments: Any) -> Iterator[Served]:
    """Serve *app* with waitress on 127.0.0.1:<ephemeral> in a thread; stop it on exit."""
    adjustments.setdefault("channel_request_lookahead", 1)
    server = waitress.create_server(app, host=HOST, port=0, threads=threads, **adjustments)
    port = server.effective_port  # type: ignore[union-attr]
    with running(server, "i13-waitress-loop"):
        yield Served(port, threads)


class Connection:
    """One keep-alive HTTP/1.1 connection that reconnects when the server closed it."""

    def __init__(self, port: int, timeout: float = WAIT) -> None:
        self.port = port
        self.timeout = timeout
        self.conn = http.client.HTTPConnection(HOST, port, timeout=timeout)

    def close(self) -> None:
        self.conn.close()

    def post(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        """POST *body* to /mcp; return the reply (JSON decoded when there is a body)."""
        try:
            self.conn.request("POST", "/mcp", body=body, headers=dict(headers))
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError, http.client.CannotSendRequest):
            self.conn.close()
            self.conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
            self.conn.request("POST", "/mcp", body=body, headers=dict(headers))
            response = self.conn.getresponse()
        data = response.read()
        names = {k.lower(): v for k, v in response.getheaders()}
        if names.get("connection", "").lower() == "close":
            self.conn.close()
        payload = None
        if data and names.get("content-type", "").startswith("application/json"):
            payload = json.loads(data)
        elif data:
            payload = data.decode("latin-1")
        return Reply(response.status, names, payload)


class Session:
    """A 2025-11-25 client: ``initialize`` once, then its session id on every request."""

    def __init__(self, port: int, *, token: str | None = None, timeout: float = WAIT) -> None:
        self.http = Connection(port, timeout)
        self.token = token
        self.next_id = 0
        self.id = ""
        init = {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "i13", "version": "1"},
        }
        reply = self.http.post(self.encode("initialize", init), self.headers())
        assert 200 == reply.status, reply
        self.id = reply.headers["mcp-session-id"]
        assert 202 == self.raw(b'{"jsonrpc":"2.0","method":"notifications/initialized"}').status

    def close(self) -> None:
        self.http.close()

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "MCP-Protocol-Version": "2025-11-25"}
        if self.id:
            headers["Mcp-Session-Id"] = self.id
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def encode(self, method: str, params: Any = None) -> bytes:
        self.next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            message["params"] = params
        return json.dumps(message).encode()

    def raw(self, body: bytes) -> Reply:
        return self.http.post(body, self.headers())

    def call(self, method: str, params: Any = None) -> Reply:
        return self.raw(self.encode(method, params))


class Stateless:
    """A 2026-07-28 client: ``_meta`` and the ``Mcp-*`` headers on every request."""

    def __init__(self, port: int, *, token: str | None = None, timeout: float = WAIT) -> None:
        self.http = Connection(port, timeout)
        self.token = token
        self.next_id = 0

    def close(self) -> None:
        self.http.close()

    def headers(self, method: str, params: Mapping[str, Any]) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": V2026,
            "Mcp-Method": method,
        }
        key = {"tools/call": "name", "tasks/get": "taskId", "tasks/update": "taskId",
               "tasks/cancel": "taskId"}.get(method)  # fmt: skip
        if key is not None and isinstance(params.get(key), str):
            headers["Mcp-Name"] = params[key]
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def params(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        full = dict(params or {})
        full["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": V2026,
            "io.modelcontextprotocol/clientInfo": {"name": "i13", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {
                "extensions": {TASKS_EXTENSION: {}}
            },
        }
        return full

    def encode(self, method: str, params: Mapping[str, Any] | None = None) -> bytes:
        self.next_id += 1
        message = {"jsonrpc": "2.0", "id": self.next_id, "method": method,
                   "params": self.params(params)}  # fmt: skip
        return json.dumps(message).encode()

    def raw(self, body: bytes, method: str, params: Mapping[str, Any] | None = None) -> Reply:
        return self.http.post(body, self.headers(method, params or {}))

    def call(self, method: str, params: Mapping[str, Any] | None = None) -> Reply:
        return self.raw(self.encode(method, params), method, params)

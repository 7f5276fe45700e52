"""
The HTTP load generator: asyncio clients over raw keep-alive HTTP/1.1 sockets.

Every server in the HTTP benchmark is driven by this one client, the same way:
each simulated client holds one keep-alive connection and sends one request at
a time on it (closed loop), with the session or ``_meta`` handling its wire
needs:

* ``2025``: ``initialize`` (2025-11-25), the ``Mcp-Session-Id`` it returns and
  ``MCP-Protocol-Version`` on every later request, ``notifications/initialized``;
  tasks are asked for with ``params.task``; results come from ``tasks/result``.
* ``2026``: no handshake; every request carries ``_meta`` (protocol version,
  client capabilities declaring the Tasks extension, client info) and the
  ``MCP-Protocol-Version``, ``Mcp-Method`` and ``Mcp-Name`` headers; the
  server creates tasks; ``tasks/get`` inlines the result.
* ``floor``: the bare app: the same ``tasks/get`` bytes, a fixed answer.

Run as ``python -m benchmarks.loadgen`` with a JSON job on stdin; it prints one
JSON object (counts, latencies, its own CPU time).  A job may be split over
several processes (``procs``), each running its share of the clients; they
start measuring together.  It needs only the standard library.

Workloads: ``get`` (``tasks/get`` on the client's own completed tasks, made in
setup), ``create`` (``tools/call`` creating a task), ``mixed`` (70% get, 20%
create, 10% cancel of the client's newest task still running), ``poll`` and
``block`` (one task at a time: create, then poll ``tasks/get`` at the task's
``pollInterval`` or block on ``tasks/result``; the time to the result), and
``fill`` (create a fixed number of tasks, for the memory figure).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Client", "ProtocolFailure", "run_job"]

V2025 = "2025-11-25"
V2026 = "2026-07-28"
TASKS_EXT = "io.modelcontextprotocol/tasks"
TERMINAL = frozenset({"completed", "failed", "cancelled"})
ERROR_SAMPLES = 5


class ProtocolFailure(RuntimeError):
    """The server answered something the client cannot go on with."""


#: The response headers the client reads (the line break before each, the colon after).
_WANTED = (b"\r\ncontent-length:", b"\r\ntransfer-encoding:", b"\r\ncontent-type:",
           b"\r\nmcp-session-id:")


class _Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; one request in flight at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, dict[str, str], bytes]] | None = None
        self.closed = False
        self.lost: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            parsed = self._parse(final=True)
            if parsed is not None:
                waiter.set_result(parsed)
            else:
                waiter.set_exception(ConnectionError("connection closed by the server"))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        try:
            parsed = self._parse(final=False)
        except Exception as exc:  # a malformed response
            waiter.set_exception(exc)
            return
        if parsed is not None:
            waiter.set_result(parsed)

    def _parse(self, *, final: bool) -> tuple[int, dict[str, str], bytes] | None:
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(buf[: end + 2])
        status = int(head[9:12])
        lower = head.lower()
        headers: dict[str, str] = {}
        for name in _WANTED:  # only the headers the client reads
            at = lower.find(name)
            if at >= 0:
                begin = at + len(name)
                stop = head.find(b"\r\n", begin)
                headers[name[2:-1].decode()] = head[begin:stop].strip().decode("latin-1")
        start = end + 4
        if status in (204, 304) or 100 <= status < 200:
            del buf[:start]
            return status, headers, b""
        length = headers.get("content-length")
        if length is not None:
            stop = start + int(length)
            if len(buf) < stop:
                return None
            body = bytes(buf[start:stop])
            del buf[:stop]
            return status, headers, body
        if "chunked" in headers.get("transfer-encoding", "").lower():
            pos = start
            chunks: list[bytes] = []
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return None
                size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
                if size == 0:
                    trailer_end = buf.find(b"\r\n\r\n", eol)
                    if trailer_end < 0:
                        return None
                    del buf[: trailer_end + 4]
                    return status, headers, b"".join(chunks)
                if len(buf) < eol + 2 + size + 2:
                    return None
                chunks.append(bytes(buf[eol + 2 : eol + 2 + size]))
                pos = eol + 2 + size + 2
        if final:  # delimited by the close
            body = bytes(buf[start:])
            del buf[:]
            return status, headers, body
        return None

    async def request(self, data: bytes) -> tuple[int, dict[str, str], bytes]:
        if self.closed or self.transport is None:
            raise ConnectionError("connection closed")
        loop = asyncio.get_running_loop()
        self.waiter = loop.create_future()
        self.transport.write(data)
        return await self.waiter


def _json_body(status: int, headers: dict[str, str], body: bytes) -> dict[str, Any] | None:
    """The JSON-RPC message in a response: plain JSON or the last SSE ``data:``."""
    if not body:
        return None
    if headers.get("content-type", "").startswith("text/event-stream"):
        found = None
        for line in body.split(b"\n"):
            if line.startswith(b"data:"):
                text = line[5:].strip()
                if text:
                    message = json.loads(text)
                    if "result" in message or "error" in message:
                        found = message
        return found
    return json.loads(body)  # type: ignore[no-any-return]


class Client:
    """
    One MCP client on one connection: the request bytes of each wire, and its tasks.

    Args:
        host, port, path: where the server listens.
        wire: ``2025``, ``2026`` or ``floor``.
        tool: the tool name; arguments ``{"ms": N}``.
        ttl_ms: the TTL asked for on the 2025 wire.
    """

    def __init__(
        self, host: str, port: int, path: str, wire: str, tool: str, ttl_ms: int, seed: int
    ) -> None:
        self.host, self.port, self.path, self.wire = host, port, path, wire
        self.tool = tool
        self.ttl_ms = ttl_ms
        self.conn: _Conn | None = None
        self.session: str | None = None
        self.next_id = 1
        self.rng = random.Random(seed)
        self.done_tasks: list[str] = []  # completed tasks of this client, for get
        self.running: list[str] = []  # its tasks still running, newest last (for cancel)
        self.errors: dict[str, int] = {}
        self.error_samples: list[str] = []
        self._prefix = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
        ).encode()
        self._meta = json.dumps(
            {
                "io.modelcontextprotocol/protocolVersion": V2026,
                "io.modelcontextprotocol/clientCapabilities": {"extensions": {TASKS_EXT: {}}},
                "io.modelcontextprotocol/clientInfo": {"name": "loadgen", "version": "1"},
            },
            separators=(",", ":"),
        )

    # -- bytes on the wire -----------------------------------------------------

    def _frame(self, body: bytes, extra: str) -> bytes:
        return b"".join(
            (self._prefix, extra.encode(), b"Content-Length: ", str(len(body)).encode(),
             b"\r\n\r\n", body)
        )

    def _headers(self, method: str, name: str | None) -> str:
        if self.wire == "2026":
            out = f"MCP-Protocol-Version: {V2026}\r\nMcp-Method: {method}\r\n"
            if name is not None:
                out += f"Mcp-Name: {name}\r\n"
            return out
        if self.session is not None:
            return f"Mcp-Session-Id: {self.session}\r\nMCP-Protocol-Version: {V2025}\r\n"
        return ""

    def encode(self, method: str, params: str, name: str | None = None) -> bytes:
        """A JSON-RPC request; *params* is JSON text of an object (``_meta`` added on 2026)."""
        rid = self.next_id
        self.next_id += 1
        if self.wire == "2026":
            params = params[:-1] + ("," if params != "{}" else "") + f'"_meta":{self._meta}}}'
        body = f'{{"jsonrpc":"2.0","id":{rid},"method":"{method}","params":{params}}}'.encode()
        return self._frame(body, self._headers(method, name))

    def get_bytes(self, task_id: str) -> bytes:
        return self.encode("tasks/get", f'{{"taskId":"{task_id}"}}', task_id)

    def result_bytes(self, task_id: str) -> bytes:
        return self.encode("tasks/result", f'{{"taskId":"{task_id}"}}', task_id)

    def cancel_bytes(self, task_id: str) -> bytes:
        return self.encode("tasks/cancel", f'{{"taskId":"{task_id}"}}', task_id)

    def create_bytes(self, ms: int) -> bytes:
        task = "" if self.wire == "2026" else f',"task":{{"ttl":{self.ttl_ms}}}'
        params = f'{{"name":"{self.tool}","arguments":{{"ms":{ms}}}{task}}}'
        return self.encode("tools/call", params, self.tool)

    # -- the exchange ------------------------------------------------------------

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Conn, self.host, self.port)
        sock = conn.transport.get_extra_info("socket") if conn.transport else None
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn = conn

    async def send(self, data: bytes) -> tuple[int, dict[str, str], bytes]:
        if self.conn is None or self.conn.closed:
            await self.connect()
        assert self.conn is not None
        return await self.conn.request(data)

    async def call(self, data: bytes, what: str) -> dict[str, Any]:
        """Send; return the JSON-RPC result, or raise ProtocolFailure on an error."""
        status, headers, body = await self.send(data)
        message = _json_body(status, headers, body)
        if message is None or "result" not in message:
            text = body[:300].decode("utf-8", "replace")
            raise ProtocolFailure(f"{what}: HTTP {status}: {text}")
        return message["result"]  # type: ignore[no-any-return]

    def note_error(self, op: str, detail: str) -> None:
        self.errors[op] = self.errors.get(op, 0) + 1
        if len(self.error_samples) < ERROR_SAMPLES:
            self.error_samples.append(f"{op}: {detail[:300]}")

    async def initialize(self) -> None:
        """The session handshake of the 2025 wire (nothing on the others)."""
        await self.connect()
        if self.wire != "2025":
            return
        params = json.dumps(
            {
                "protocolVersion": V2025,
                "capabilities": {"tasks": {"list": {}, "cancel": {}}},
                "clientInfo": {"name": "tasks_store-loadgen", "version": "1"},
            },
            separators=(",", ":"),
        )
        status, headers, body = await self.send(self.encode("initialize", params))
        message = _json_body(status, headers, body)
        if message is None or "result" not in message:
            text = body[:300].decode("utf-8", "replace")
            raise ProtocolFailure(f"initialize: HTTP {status}: {text}")
        self.session = headers.get("mcp-session-id")
        note = self._frame(
            b'{"jsonrpc":"2.0","method":"notifications/initialized"}',
            self._headers("notifications/initialized", None),
        )
        status, _, body = await self.send(note)
        if status not in (200, 202, 204):
            raise ProtocolFailure(f"notifications/initialized: HTTP {status}: {body[:200]!r}")

    @staticmethod
    def task_of(result: dict[str, Any]) -> dict[str, Any]:
        """The task in a CreateTaskResult / GetTaskResult of either wire."""
        task = result.get("task")
        if isinstance(task, dict):
            return task
        return result

    async def create(self, ms: int) -> dict[str, Any]:
        result = await self.call(self.create_bytes(ms), "tools/call")
        task = self.task_of(result)
        if "taskId" not in task:
            raise ProtocolFailure(f"tools/call made no task: {json.dumps(result)[:300]}")
        return task

    async def wait_done(self, task_id: str, limit_s: float = 60.0) -> dict[str, Any]:
        """Poll ``tasks/get`` until the task ends (setup only; not timed)."""
        deadline = time.monotonic() + limit_s
        while True:
            task = self.task_of(await self.call(self.get_bytes(task_id), "tasks/get"))
            if task.get("status") in TERMINAL:
                return task
            if time.monotonic() > deadline:
                raise ProtocolFailure(f"task {task_id} not done after {limit_s} s")
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        if self.conn is not None and self.conn.transport is not None:
            self.conn.transport.close()


# -- workloads -------------------------------------------------------------------


class _Recorder:
    """Counts and latencies (ms) per operation, for requests inside the window."""

    def __init__(self) -> None:
        self.lat: dict[str, list[float]] = {}
        self.count: dict[str, int] = {}

    def add(self, op: str, ms: float) -> None:
        self.count[op] = self.count.get(op, 0) + 1
        self.lat.setdefault(op, []).append(ms)


async def _setup(client: Client, job: dict[str, Any]) -> None:
    await client.initialize()
    if job["workload"] in ("get", "mixed") and job["wire"] != "floor":
        ids = [(await client.create(0))["taskId"] for _ in range(job["tasks_per_client"])]
        for task_id in ids:
            await client.wait_done(task_id)
        client.done_tasks = ids
    elif job["wire"] == "floor":
        client.done_tasks = ["floor-task"]


def _ok(message: dict[str, Any] | None) -> bool:
    return message is not None and "result" in message


async def _loop(
    client: Client, job: dict[str, Any], rec: _Recorder, start: float, stop: float
) -> None:
    """Run the client's workload from *start* to *stop* (perf_counter), bounded in count."""
    workload = job["workload"]
    pc = time.perf_counter
    limit = job["max_requests"]
    sent = 0
    tasks = client.done_tasks
    n_tasks = len(tasks)
    i = client.rng.randrange(max(1, n_tasks))
    rnd = client.rng.random
    mixed_ms = job["mixed_ms"]
    while pc() < start:
        await asyncio.sleep(min(0.01, max(0.0, start - pc())))
    if workload in ("poll", "block"):
        await _latency_loop(client, job, rec, stop)
        return
    while sent < limit:
        t0 = pc()
        if t0 >= stop:
            break
        if workload == "get":
            op = "get"
        elif workload == "create":
            op = "create"
        else:
            roll = rnd()
            op = "get" if roll < 0.7 else ("create" if roll < 0.9 else "cancel")
            if op == "cancel" and not client.running:
                op = "get"
        if op == "get":
            data = client.get_bytes(tasks[i % n_tasks])
            i += 1
        elif op == "create":
            data = client.create_bytes(0 if workload == "create" else mixed_ms)
        else:
            cancel_id = client.running.pop()
            data = client.cancel_bytes(cancel_id)
        try:
            status, headers, body = await client.send(data)
            message = _json_body(status, headers, body)
        except (ConnectionError, ValueError) as exc:
            client.note_error(op, f"{type(exc).__name__}: {exc}")
            sent += 1
            continue
        t1 = pc()
        sent += 1
        if not _ok(message):
            client.note_error(op, f"HTTP {status}: {body[:300].decode('utf-8', 'replace')}")
            continue
        if op == "create" and workload == "mixed":
            assert message is not None
            task = Client.task_of(message["result"])
            if "taskId" in task:
                client.running.append(task["taskId"])
        if t1 <= stop:
            rec.add(op, (t1 - t0) * 1000)


async def _latency_loop(client: Client, job: dict[str, Any], rec: _Recorder, stop: float) -> None:
    """One task at a time: create, then poll or block; record create -> result."""
    pc = time.perf_counter
    blocking = job["workload"] == "block"
    for _ in range(job["max_requests"]):
        t0 = pc()
        if t0 >= stop:
            break
        try:
            task = await client.create(job["latency_ms"])
            task_id = task["taskId"]
            if blocking:
                await asyncio.wait_for(
                    client.call(client.result_bytes(task_id), "tasks/result"),
                    max(0.1, stop + job["grace_s"] - pc()),
                )
                rec.count["requests"] = rec.count.get("requests", 0) + 2
            else:
                requests = 1
                while task.get("status") not in TERMINAL:
                    if pc() > stop + job["grace_s"]:
                        raise ProtocolFailure(f"task {task_id} still {task.get('status')}")
                    interval = task.get("pollInterval", task.get("pollIntervalMs", 1000))
                    await asyncio.sleep(max(0, interval) / 1000)
                    task = Client.task_of(await client.call(client.get_bytes(task_id), "tasks/get"))
                    requests += 1
                if client.wire == "2025":
                    await client.call(client.result_bytes(task_id), "tasks/result")
                    requests += 1
                elif "result" not in task and task.get("status") == "completed":
                    raise ProtocolFailure(f"tasks/get has no inlined result: {task}")
                rec.count["requests"] = rec.count.get("requests", 0) + requests
        except (ProtocolFailure, ConnectionError, ValueError, asyncio.TimeoutError) as exc:
            client.note_error(job["workload"], f"{type(exc).__name__}: {exc}")
            if isinstance(exc, asyncio.TimeoutError):  # the connection has a reply pending
                await client.close()
                client.conn = None
            continue
        t1 = pc()
        rec.add(job["workload"], (t1 - t0) * 1000)


async def _fill(clients: list[Client], job: dict[str, Any]) -> dict[str, Any]:
    """Create ``fill`` tasks over the clients, then wait until every one has ended."""
    per = [job["fill"] // len(clients)] * len(clients)
    per[0] += job["fill"] - sum(per)
    made: list[list[str]] = [[] for _ in clients]
    deadline = time.monotonic() + job["seconds"]

    async def one(k: int) -> None:
        client = clients[k]
        for _ in range(per[k]):
            if time.monotonic() > deadline:
                break
            made[k].append((await client.create(0))["taskId"])
        if made[k]:
            await client.wait_done(made[k][-1], limit_s=max(5.0, deadline - time.monotonic()))

    began = time.perf_counter()
    await asyncio.gather(*(one(k) for k in range(len(clients))))
    return {"created": sum(len(m) for m in made), "elapsed_s": time.perf_counter() - began}


async def _run_share(
    job: dict[str, Any], first: int, count: int, sync: Callable[[], float]
) -> dict[str, Any]:
    clients = [
        Client(job["host"], job["port"], job["path"], job["wire"], job["tool"], job["ttl_ms"],
               job["seed"] * 1000 + first + k)
        for k in range(count)
    ]
    try:
        await asyncio.gather(*(_setup(c, job) for c in clients))
    except (ProtocolFailure, ConnectionError, OSError, ValueError) as exc:
        for c in clients:
            await c.close()
        return {"setup_error": f"{type(exc).__name__}: {exc}"}
    if job["workload"] == "fill":
        out = await _fill(clients, job)
        for c in clients:
            await c.close()
        return out
    start = sync()  # every process starts measuring at the same instant
    stop = start + job["seconds"]
    rec = _Recorder()
    cpu0 = os.times()
    await asyncio.gather(*(_loop(c, job, rec, start, stop) for c in clients))
    cpu1 = os.times()
    window = max(time.perf_counter(), stop) - start
    # untimed: cancel what the mixed workload left running, so that the next
    # measurement does not queue behind it
    for c in clients:
        for task_id in c.running:
            with contextlib.suppress(ProtocolFailure, ConnectionError, ValueError):
                await c.call(c.cancel_bytes(task_id), "tasks/cancel")
    errors: dict[str, int] = {}
    samples: list[str] = []
    for c in clients:
        for op, n in c.errors.items():
            errors[op] = errors.get(op, 0) + n
        samples += c.error_samples
        await c.close()
    return {
        "count": rec.count,
        "lat": rec.lat,
        "errors": errors,
        "error_samples": samples[:ERROR_SAMPLES],
        "cpu_s": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system),
        "window_s": window,
    }


def _child(job: dict[str, Any], first: int, count: int, barrier: Any, conn: Any) -> None:
    def sync() -> float:
        barrier.wait()
        return time.perf_counter() + 0.05

    conn.send(asyncio.run(_run_share(job, first, count, sync)))
    conn.close()


def _percentile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """
    Run *job* (see the module docstring) and return its figures.

    Splits the clients over ``job["procs"]`` processes (forked); with one,
    runs in this process.
    """
    job = {**_DEFAULTS, **job}
    clients = job["clients"]
    procs = max(1, min(job["procs"], clients))
    shares = [clients // procs + (1 if k < clients % procs else 0) for k in range(procs)]
    firsts = [sum(shares[:k]) for k in range(procs)]
    if procs == 1:
        parts = [asyncio.run(_run_share(job, 0, clients, lambda: time.perf_counter() + 0.05))]
    else:
        ctx = multiprocessing.get_context("fork")
        barrier = ctx.Barrier(procs)
        pipes = []
        workers = []
        for k in range(procs):
            parent, child = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_child, args=(job, firsts[k], shares[k], barrier, child))
            p.start()
            child.close()
            pipes.append(parent)
            workers.append(p)
        parts = []
        for parent in pipes:
            if parent.poll(job["seconds"] + 180):
                parts.append(parent.recv())
            else:
                parts.append({"setup_error": "a load process did not answer in time"})
        for p in workers:
            p.join(10)
            if p.is_alive():
                p.kill()
    for part in parts:
        if "setup_error" in part:
            return {"error": part["setup_error"]}
    if job["workload"] == "fill":
        return {
            "created": sum(p["created"] for p in parts),
            "elapsed_s": max(p["elapsed_s"] for p in parts),
        }
    window = max(p["window_s"] for p in parts)
    seconds = job["seconds"]
    out: dict[str, Any] = {"workload": job["workload"], "clients": clients, "procs": procs}
    ops: dict[str, Any] = {}
    names = sorted({op for p in parts for op in p["lat"]})
    total = 0
    for op in names:
        lat = sorted(x for p in parts for x in p["lat"].get(op, []))
        n = len(lat)
        total += n
        ops[op] = {
            "n": n,
            "per_s": n / seconds,
            "p50_ms": _percentile(lat, 50),
            "p99_ms": _percentile(lat, 99),
            "mean_ms": sum(lat) / n if n else None,
        }
    out["ops"] = ops
    out["requests_per_s"] = total / seconds
    if job["workload"] in ("poll", "block"):
        requests = sum(p["count"].get("requests", 0) for p in parts)
        out["requests_per_s"] = requests / seconds
        out["tasks"] = total
    errors: dict[str, int] = {}
    for p in parts:
        for op, n in p["errors"].items():
            errors[op] = errors.get(op, 0) + n
    out["errors"] = errors
    out["error_samples"] = [s for p in parts for s in p["error_samples"]][:ERROR_SAMPLES]
    out["loadgen_cpu"] = sum(p["cpu_s"] for p in parts) / window  # cores busy, on average
    out["loadgen_cpu_max_proc"] = max(p["cpu_s"] for p in parts) / window
    return out


_DEFAULTS: dict[str, Any] = {
    "host": "127.0.0.1",
    "path": "/mcp",
    "wire": "2025",
    "tool": "work",
    "clients": 1,
    "procs": 1,
    "workload": "get",
    "seconds": 2.0,
    "max_requests": 1_000_000,
    "tasks_per_client": 8,
    "mixed_ms": 5000,
    "latency_ms": 250,
    "ttl_ms": 600_000,
    "fill": 0,
    "seed": 1,
    "grace_s": 10.0,
}


def main() -> None:
    """Read a job as JSON on stdin, print its figures as JSON on stdout."""
    job = json.loads(sys.stdin.read())
    json.dump(run_job(job), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

"""
Bounded blocking calls (issue 13, item 1): the gate, client hang-ups, and both through waitress.

Per owner and in total at most N blocking calls wait at once; one over the
limit is answered at once (``tasks/result``: -32603 with the task's status),
never queued; a call whose client hangs up gives its thread back.
"""

# Asserts read ``expected == actual`` (project convention), which SIM300 calls Yoda.

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tasks_store import InMemoryTaskStore, TaskSecurityConfig, TaskStore, WaitTimeout
from tasks_store.errors import INTERNAL_ERROR
from tasks_store.mcp import McpServer, TaskContext, Tool
from tasks_store.mcp.limits import (
    BlockingGate,
    ClientDisconnected,
    ServerLimits,
    TooManyBlockingCalls,
    client_disconnected,
    connection_scope,
    probe_from_environ,
    wait_for_end,
)

from .http_harness import HOST, WAIT, Session, eventually, serve
from .mcp_schema import check_response

pytestmark = pytest.mark.timeout(60)



# -- the gate --------------------------------------------------------------------


def test_gate_limits_per_owner_then_in_total() -> None:
    """An owner at its limit is refused ("owner"); the process at its limit too ("server")."""
    gate = BlockingGate(total=3, per_owner=2)
    a1, a2 = gate.acquire("alice"), gate.acquire("alice")
    with pytest.raises(TooManyBlockingCalls) as owner:
        gate.acquire("alice")
    assert ("owner", 2) == (owner.value.scope, owner.value.limit)
    b1 = gate.acquire("bob")
    with pytest.raises(TooManyBlockingCalls) as server:
        gate.acquire("carol")
    assert ("server", 3) == (server.value.scope, server.value.limit)
    assert INTERNAL_ERROR == server.value.code
    assert (3, 2, 1) == (gate.active(), gate.active("alice"), gate.active("bob"))
    a1.release()
    a1.release()  # idempotent
    assert not a1.held
    with gate.acquire("carol") as slot:
        assert slot.held
    for slot in (a2, b1):
        slot.release()
    assert (0, 2) == (gate.active(), gate.refused)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_gate_and_limits_refuse_bad_numbers(bad: Any) -> None:
    with pytest.raises(ValueError, match="total"):
        BlockingGate(total=bad)
    with pytest.raises(ValueError, match="max_blocking_per_owner"):
        ServerLimits(max_blocking_per_owner=bad)


def test_gate_under_a_barrier_never_overshoots() -> None:
    """32 threads started together, 200 rounds each: never more than the limits held."""
    gate = BlockingGate(total=5, per_owner=2)
    barrier = threading.Barrier(32)
    lock = threading.Lock()
    most: dict[str, int] = {}
    held: dict[str, int] = {}
    errors: list[BaseException] = []

    def work(n: int) -> None:
        owner = f"o{n % 4}"
        try:
            barrier.wait(WAIT)
            for _ in range(200):
                try:
                    slot = gate.acquire(owner)
                except TooManyBlockingCalls:
                    continue
                with lock:
                    held[owner] = held.get(owner, 0) + 1
                    most[owner] = max(most.get(owner, 0), held[owner])
                    most["*"] = max(most.get("*", 0), sum(held.values()))
                with lock:
                    held[owner] -= 1
                slot.release()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert [] == errors
    assert most["*"] <= 5
    assert all(value <= 2 for key, value in most.items() if key != "*")
    assert 0 == gate.active()


# -- disconnect probes -----------------------------------------------------------


def test_probe_from_environ_per_server() -> None:
    """waitress's callable is used as is; gunicorn's socket is polled; others have none."""
    flag = [False]
    assert probe_from_environ({"waitress.client_disconnected": lambda: flag[0]}) is not None
    assert probe_from_environ({}) is None
    assert probe_from_environ({"gunicorn.socket": "not a socket"}) is None
    ours, theirs = socket.socketpair()
    try:
        probe = probe_from_environ({"gunicorn.socket": ours})
        assert probe is not None
        assert not probe()
        theirs.sendall(b"GET / HTTP/1.1\r\n")  # a pipelined request: still there
        assert not probe()
        theirs.close()
        ours.recv(100)
        assert probe()
    finally:
        ours.close()


def test_connection_scope_sets_the_probe_for_the_request_only() -> None:
    """client_disconnected() asks the probe of the request in scope; False outside one."""
    gone = [False]
    assert not client_disconnected()
    with connection_scope({"waitress.client_disconnected": lambda: gone[0]}):
        assert not client_disconnected()
        gone[0] = True
        assert client_disconnected()
    assert not client_disconnected()


def test_wait_for_end_gives_up_when_the_probe_says_so(store: TaskStore) -> None:
    """In slices: a probe turning True ends the wait with ClientDisconnected; a timeout is kept."""
    task = store.create("alice", "tools/call", ttl=None)
    calls = [0]

    def probe() -> bool:
        calls[0] += 1
        return calls[0] >= 3

    with pytest.raises(ClientDisconnected):
        wait_for_end(store, task.task_id, "alice", timeout=None, probe=probe, check_every=0.01)
    assert 3 == calls[0]
    with pytest.raises(WaitTimeout):
        wait_for_end(
            store, task.task_id, "alice", timeout=0.05, probe=lambda: False, check_every=0.01
        )
    store.complete_with_result(task.task_id, "alice", "completed", None, {"ok": 1})
    done = wait_for_end(store, task.task_id, "alice", timeout=None, probe=probe)
    assert "completed" == done.status.value


# -- through waitress ---------------------------------------------------------------


class Tools:
    """A tool that runs until its task is cancelled or it is released."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def tools(self) -> list[Tool]:
        def hold(arguments: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
            while not self.release.wait(0.01):
                if ctx.is_cancelled():
                    break
            return {"content": [{"type": "text", "text": "released"}]}

        return [Tool(name="hold", fn=hold, task_support="optional")]


@pytest.fixture
def app(make_store: Any) -> Iterator[tuple[McpServer, Any, Tools]]:
    """An McpServer (default limits: 4 blocking, 2 per owner) under waitress with 8 threads."""
    store = make_store(clock=time.time, security=TaskSecurityConfig(max_tasks_per_owner=50))
    tools = Tools()
    server = McpServer(store, tools.tools(), result_timeout=None)
    try:
        with serve(server.wsgi_app(), threads=8) as served:
            yield server, served, tools
    finally:
        tools.release.set()
        server.close(cancel=True)


def started(session: Session) -> str:
    reply = session.call("tools/call", {"name": "hold", "task": {"ttl": 600_000}})
    assert 200 == reply.status, reply
    return str(reply.result["task"]["taskId"])


def test_blocking_results_over_the_owner_limit_are_answered_at_once(
    app: tuple[McpServer, Any, Tools],
) -> None:
    """
    The issue's 16 concurrent tasks/result from one client: 2 wait, 14 are answered at
    once with -32603 and the task's status, and another client's tasks/get still goes through.
    """
    server, served, tools = app
    attacker, victim = Session(served.port), Session(served.port)
    task_id = started(attacker)
    mine = started(victim)
    barrier = threading.Barrier(16)
    replies: list[Any] = []
    lock = threading.Lock()

    def call() -> None:
        session = Session(served.port)
        try:
            session.id = attacker.id  # the same session, so the same owner
            barrier.wait(WAIT)
            reply = session.call("tasks/result", {"taskId": task_id})
            with lock:
                replies.append(reply)
        finally:
            session.close()

    threads = [threading.Thread(target=call) for _ in range(16)]
    for thread in threads:
        thread.start()
    eventually(lambda: len(replies) == 14 and server.gate.active() == 2, "14 answered, 2 wait")
    for reply in replies:
        assert 200 == reply.status
        check_response(reply.body)
        assert INTERNAL_ERROR == reply.error["code"]
        assert {"scope": "owner", "limit": 2, "taskId": task_id, "status": "working"} == (
            reply.error["data"]
        )
    got = victim.call("tasks/get", {"taskId": mine})
    assert ("working", 200) == (got.result["status"], got.status)
    tools.release.set()
    for thread in threads:
        thread.join(WAIT)
    assert 16 == len(replies)
    assert 2 == sum("result" in r.body for r in replies)
    assert 0 == server.gate.active()
    for session in (attacker, victim):
        session.close()


def test_the_server_limit_counts_every_owner_and_streams(
    app: tuple[McpServer, Any, Tools],
) -> None:
    """Four slots in all: held by streams of two owners, a fifth owner's tasks/result is refused."""
    server, served, tools = app
    client = Session(served.port)
    task_id = started(client)
    slots = [server.gate.acquire(f"stream-{n % 2}", "stream") for n in range(2)]
    slots += [server.gate.acquire(f"stream-{2 + n % 2}", "stream") for n in range(2)]
    reply = client.call("tasks/result", {"taskId": task_id})
    assert "server" == reply.error["data"]["scope"]
    for slot in slots:
        slot.release()
    tools.release.set()
    assert "released" == client.call("tasks/result", {"taskId": task_id}).result["content"][0][
        "text"
    ]
    client.close()


def test_a_hung_up_client_gives_its_thread_back(app: tuple[McpServer, Any, Tools]) -> None:
    """
    The issue's hang-up: with result_timeout=None, blocked tasks/result calls whose
    clients close their sockets release their slots and threads (waitress sees it).
    """
    server, served, tools = app
    owners = [Session(served.port) for _ in range(2)]
    tasks = [started(owner) for owner in owners]
    sockets = []
    for owner, task_id in zip(owners, tasks, strict=True):
        for _ in range(2):
            sock = socket.create_connection((HOST, served.port), timeout=WAIT)
            body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tasks/result",
                               "params": {"taskId": task_id}}).encode()  # fmt: skip
            sock.sendall(
                b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"MCP-Protocol-Version: 2025-11-25\r\nMcp-Session-Id: " + owner.id.encode()
                + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body
            )
            sockets.append(sock)
    eventually(lambda: server.gate.active() == 4, "four calls wait")
    for sock in sockets:
        sock.close()
    eventually(lambda: server.gate.active() == 0, "every hung-up call ends")
    # The tasks go on, and their owners can still wait for them.
    for owner, task_id in zip(owners, tasks, strict=True):
        assert "working" == owner.call("tasks/get", {"taskId": task_id}).result["status"]
    tools.release.set()
    for owner, task_id in zip(owners, tasks, strict=True):
        assert "result" in owner.call("tasks/result", {"taskId": task_id}).body
        owner.close()


def test_a_terminal_task_takes_no_slot(app: tuple[McpServer, Any, Tools]) -> None:
    """tasks/result of an ended task answers at once even with every slot held."""
    server, served, tools = app
    client = Session(served.port)
    tools.release.set()
    task_id = started(client)
    eventually(
        lambda: client.call("tasks/get", {"taskId": task_id}).result["status"] == "completed",
        "the task ends",
    )
    slots = [server.gate.acquire(f"o{n}") for n in range(4)]
    assert "released" == client.call("tasks/result", {"taskId": task_id}).result["content"][0][
        "text"
    ]
    for slot in slots:
        slot.release()
    client.close()


def test_tasks_rpc_without_a_gate_is_unbounded() -> None:
    """TasksRpc used on its own keeps its old behaviour: no gate unless given one."""
    from tasks_store.mcp import TasksRpc

    store = InMemoryTaskStore()
    rpc = TasksRpc(store, result_timeout=0)
    task = store.create("alice", "tools/call")
    response = rpc.handle(
        {"jsonrpc": "2.0", "id": 1, "method": "tasks/result", "params": {"taskId": task.task_id}},
        "alice",
    )
    assert response is not None
    assert {"taskId": task.task_id, "timeout": 0, "status": "working"} == response["error"]["data"]
    with pytest.raises(TypeError, match="gate"):
        TasksRpc(store, gate=object())  # type: ignore[arg-type]

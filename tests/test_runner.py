"""TaskRunner: background runs, outcomes, late completions, shutdown, threads."""

# Asserts read ``expected == actual`` (project convention), which SIM300 calls Yoda.

from __future__ import annotations

import ast
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasks_store import (
    MODEL_IMMEDIATE_RESPONSE_META_KEY,
    InvalidParams,
    JsonRpcError,
    TaskContext,
    TaskRunner,
    TaskStatus,
    TtlExceeded,
)

from .mcp_schema import validator

pytestmark = pytest.mark.timeout(30)

OWNER = "alice"
WAIT = 10.0  # generous bound for joins and events; never asserted on


@pytest.fixture
def runner(store: Any) -> Iterator[TaskRunner]:
    with TaskRunner(store, max_workers=2) as runner:
        yield runner


def ended(store: Any, task_id: str) -> Any:
    """Block until the task is terminal; return its record."""
    return store.wait(task_id, OWNER, timeout=WAIT)


def runner_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    """The runner threads alive now that were not alive at *before* (this test's, not a leak's)."""
    return [
        t for t in threading.enumerate()
        if t.name.startswith("tasks_store-runner") and t not in before
    ]  # fmt: skip


def test_start_answers_create_task_result(runner: TaskRunner, store: Any) -> None:
    """start returns a schema-valid CreateTaskResult for a new working task."""
    gate = threading.Event()
    created = runner.start(OWNER, "tools/call", lambda ctx: gate.wait(WAIT) and {"ok": 1})
    validator("CreateTaskResult").validate(created)
    assert "working" == created["task"]["status"]
    assert "_meta" not in created
    record = store.get(created["task"]["taskId"], OWNER)
    assert "tools/call" == record.request_method
    gate.set()
    assert TaskStatus.COMPLETED == ended(store, record.task_id).status


def test_immediate_response_goes_in_meta(runner: TaskRunner) -> None:
    """immediate_response appears under the model-immediate-response _meta key."""
    created = runner.start(OWNER, "tools/call", lambda ctx: {"ok": 1}, immediate_response="Hi")
    validator("CreateTaskResult").validate(created)
    assert {MODEL_IMMEDIATE_RESPONSE_META_KEY: "Hi"} == created["_meta"]


def test_return_value_completes_the_task(runner: TaskRunner, store: Any) -> None:
    """fn's return value becomes the completed task's result."""
    created = runner.start(OWNER, "sampling/createMessage", lambda ctx: {"answer": 42})
    task_id = created["task"]["taskId"]
    record = ended(store, task_id)
    assert TaskStatus.COMPLETED == record.status
    assert {"answer": 42} == store.get_result(task_id, OWNER)


def test_ttl_is_passed_to_the_store(runner: TaskRunner, store: Any) -> None:
    """ttl sets the task's ttl; one above the store's maximum is refused and creates nothing."""
    created = runner.start(OWNER, "tools/call", lambda ctx: {"ok": 1}, ttl=5_000)
    assert 5_000 == created["task"]["ttl"]
    ended(store, created["task"]["taskId"])
    with pytest.raises(TtlExceeded):
        runner.start(OWNER, "tools/call", lambda ctx: {"ok": 1}, ttl=10**12)
    assert 1 == len(store)


def test_exception_fails_with_internal_error(
    runner: TaskRunner, store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception in fn fails the task with JsonRpcError(-32603) and a status message."""

    def boom(ctx: TaskContext) -> Any:
        raise KeyError("secret-key")

    with caplog.at_level(logging.WARNING, logger="tasks_store"):
        task_id = runner.start(OWNER, "tools/call", boom)["task"]["taskId"]
        record = ended(store, task_id)
    assert TaskStatus.FAILED == record.status
    assert "KeyError" in record.task.status_message
    assert "secret-key" not in record.task.status_message
    assert JsonRpcError(-32603, "Internal error") == store.get_result(task_id, OWNER)
    assert any("secret-key" in (r.exc_text or "") for r in caplog.records)


def test_task_error_keeps_its_code(runner: TaskRunner, store: Any) -> None:
    """A TaskError raised by fn fails the task with that error's code and message."""

    def bad(ctx: TaskContext) -> Any:
        raise InvalidParams("count must be positive")

    task_id = runner.start(OWNER, "tools/call", bad)["task"]["taskId"]
    ended(store, task_id)
    assert JsonRpcError(-32602, "count must be positive") == store.get_result(task_id, OWNER)


def test_no_result_fails_the_task(runner: TaskRunner, store: Any) -> None:
    """fn returning None without ending the task fails it with -32603."""
    task_id = runner.start(OWNER, "tools/call", lambda ctx: None)["task"]["taskId"]
    record = ended(store, task_id)
    assert TaskStatus.FAILED == record.status
    assert "no result" in record.task.status_message
    assert -32603 == store.get_result(task_id, OWNER).code


def test_non_json_result_fails_the_task(runner: TaskRunner, store: Any) -> None:
    """fn returning something JSON cannot hold fails the task with -32603."""
    task_id = runner.start(OWNER, "tools/call", lambda ctx: {"x": object()})["task"]["taskId"]
    record = ended(store, task_id)
    assert TaskStatus.FAILED == record.status
    assert "not JSON" in record.task.status_message


def test_fn_may_end_the_task_itself(runner: TaskRunner, store: Any) -> None:
    """When fn ends the task through ctx, its return value is dropped quietly."""

    def own(ctx: TaskContext) -> Any:
        ctx.complete({"from": "ctx"}, "done early")
        return {"from": "return"}

    task_id = runner.start(OWNER, "tools/call", own)["task"]["taskId"]
    ended(store, task_id)
    runner.shutdown()
    assert {"from": "ctx"} == store.get_result(task_id, OWNER)
    assert "done early" == store.get(task_id, OWNER).task.status_message


def test_cancel_during_run_stays_cancelled(
    runner: TaskRunner, store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A task cancelled while fn runs stays cancelled; its late result is dropped quietly."""
    started, release = threading.Event(), threading.Event()

    def slow(ctx: TaskContext) -> Any:
        started.set()
        release.wait(WAIT)
        return {"late": True}

    task_id = runner.start(OWNER, "tools/call", slow)["task"]["taskId"]
    assert started.wait(WAIT)
    store.cancel(task_id, OWNER, "stop")
    with caplog.at_level(logging.WARNING, logger="tasks_store"):
        release.set()
        runner.shutdown()
    record = store.get(task_id, OWNER)
    assert TaskStatus.CANCELLED == record.status
    assert not record.has_result
    assert [] == [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize(
    "result",
    [
        {"content": [{"type": "text", "text": "bad input"}], "isError": True},
        {"content": [], "isError": True},
        {"content": [{"type": "text", "text": "fine"}], "isError": False},
        {"content": []},
    ],
)
def test_tool_result_completes_the_task_even_with_is_error(
    runner: TaskRunner, store: Any, result: dict[str, Any]
) -> None:
    """
    For tools/call, any returned result completes the task, isError true included
    (a tool error is not a protocol fault, as the Tasks extension says; the
    2025-11-25 wire shape reports it failed), with the result kept and no message.
    """
    task_id = runner.start(OWNER, "tools/call", lambda ctx: result)["task"]["taskId"]
    record = ended(store, task_id)
    assert TaskStatus.COMPLETED == record.status
    assert record.task.status_message is None
    assert result == store.get_result(task_id, OWNER)


def test_is_error_only_matters_for_tools(runner: TaskRunner, store: Any) -> None:
    """For another request method, isError in the result is just data."""
    result = {"isError": True}
    task_id = runner.start(OWNER, "sampling/createMessage", lambda ctx: result)["task"]["taskId"]
    assert TaskStatus.COMPLETED == ended(store, task_id).status


def test_start_after_shutdown_raises(store: Any) -> None:
    """start on a shut-down runner raises RuntimeError and creates no task."""
    runner = TaskRunner(store)
    runner.shutdown()
    runner.shutdown()  # idempotent
    with pytest.raises(RuntimeError, match="shut down"):
        runner.start(OWNER, "tools/call", lambda ctx: {"ok": 1})
    assert 0 == len(store)


def test_bad_max_workers(store: Any) -> None:
    """max_workers must be a positive int."""
    for bad in (0, -1, 1.5, True, "4"):
        with pytest.raises(ValueError, match="max_workers"):
            TaskRunner(store, max_workers=bad)  # type: ignore[arg-type]


def test_shutdown_waits_for_running_work(store: Any) -> None:
    """shutdown(wait=True) returns only after running fns finished and recorded their results."""
    before = set(threading.enumerate())
    runner = TaskRunner(store, max_workers=1)
    started, release = threading.Event(), threading.Event()

    def slow(ctx: TaskContext) -> Any:
        started.set()
        release.wait(WAIT)
        return {"ok": 1}

    task_id = runner.start(OWNER, "tools/call", slow)["task"]["taskId"]
    assert started.wait(WAIT)
    threading.Thread(target=release.set).start()
    runner.shutdown(wait=True)
    assert TaskStatus.COMPLETED == store.get(task_id, OWNER).status
    assert 0 == len(runner)
    assert [] == runner_threads(before)


def test_shutdown_with_cancel_cancels_running_and_queued(store: Any) -> None:
    """shutdown(cancel=True) cancels running and queued tasks; queued work never runs."""
    before = set(threading.enumerate())
    runner = TaskRunner(store, max_workers=1)
    started = threading.Event()
    ran: list[str] = []

    def cooperative(ctx: TaskContext) -> Any:
        started.set()
        while not ctx.is_cancelled():
            threading.Event().wait(0.005)
        return {"stopped": True}

    def queued(ctx: TaskContext) -> Any:
        ran.append(ctx.task_id)
        return {"ran": True}

    first = runner.start(OWNER, "tools/call", cooperative)["task"]["taskId"]
    assert started.wait(WAIT)
    second = runner.start(OWNER, "tools/call", queued)["task"]["taskId"]
    runner.shutdown(wait=True, cancel=True)
    assert TaskStatus.CANCELLED == store.get(first, OWNER).status
    assert TaskStatus.CANCELLED == store.get(second, OWNER).status
    assert [] == ran
    assert [] == runner_threads(before)


@pytest.mark.timeout(60)
def test_many_threads_start_many_tasks(make_store: Any) -> None:
    """16 threads starting 25 tasks each on 4 workers get every result right."""
    before = set(threading.enumerate())
    from tasks_store import TaskSecurityConfig

    store = make_store(security=TaskSecurityConfig(max_tasks_per_owner=1000))
    barrier = threading.Barrier(16)
    ids: dict[str, int] = {}
    lock = threading.Lock()
    errors: list[BaseException] = []

    with TaskRunner(store, max_workers=4, max_queued_per_owner=400) as runner:

        def client(n: int) -> None:
            try:
                barrier.wait(WAIT)
                for i in range(25):
                    value = n * 100 + i
                    created = runner.start(OWNER, "tools/call", lambda ctx, v=value: {"v": v})
                    with lock:
                        ids[created["task"]["taskId"]] = value
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT * 3)
    assert [] == errors
    assert 400 == len(ids)
    for task_id, value in ids.items():
        assert TaskStatus.COMPLETED == store.get(task_id, OWNER).status
        assert {"v": value} == store.get_result(task_id, OWNER)
    assert [] == runner_threads(before)


def test_runner_does_not_import_the_jsonrpc_layer() -> None:
    """The runner records failures from the errors and records alone."""
    from tasks_store.mcp import runner

    tree = ast.parse(Path(runner.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert not [name for name in imported if name.endswith("jsonrpc")]


# -- issue 13: a bounded, fair queue; nothing runs that nobody wants; no silent expiry ---


class Blocker:
    """Holds the runner's only worker with a first task until released."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, ctx: TaskContext) -> Any:
        self.started.set()
        self.release.wait(WAIT)
        return {"blocker": True}


def blocked_runner(store: Any, **kwargs: Any) -> tuple[TaskRunner, Blocker]:
    runner = TaskRunner(store, max_workers=1, **kwargs)
    blocker = Blocker()
    runner.start("blocker", "tools/call", blocker)
    assert blocker.started.wait(WAIT)
    return runner, blocker


def test_the_queue_is_bounded_in_total_and_per_owner(store: Any) -> None:
    """Beyond max_queued, or an owner's share, start raises ResourceExhausted; nothing is made."""
    from tasks_store import ResourceExhausted

    runner, blocker = blocked_runner(store, max_queued=4, max_queued_per_owner=2)
    try:
        for owner in ("alice", "alice", "bob", "bob"):
            runner.start(owner, "tools/call", lambda ctx: {"ok": 1})
        held = len(store)
        with pytest.raises(ResourceExhausted, match="This caller has 2 tasks waiting"):
            runner.start("alice", "tools/call", lambda ctx: {"ok": 1})
        with pytest.raises(ResourceExhausted, match="The server has 4 tasks waiting"):
            runner.start("carol", "tools/call", lambda ctx: {"ok": 1})
        assert held == len(store)
        assert {"queued": 4, "running": 1, "owners_waiting": 2} == {
            k: v for k, v in runner.stats().items() if k in ("queued", "running", "owners_waiting")
        }
    finally:
        blocker.release.set()
        runner.shutdown()


def test_owners_are_served_in_turn(store: Any) -> None:
    """A flood of one owner does not delay another's task: workers take owners round robin."""
    runner, blocker = blocked_runner(store)
    order: list[str] = []

    def named(name: str) -> Any:
        return lambda ctx: order.append(name) or {"ok": name}

    try:
        for i in range(10):
            runner.start("flood", "tools/call", named(f"flood-{i}"))
        runner.start("victim", "tools/call", named("victim"))
        runner.start("other", "tools/call", named("other"))
    finally:
        blocker.release.set()
        runner.shutdown()
    assert ["flood-0", "victim", "other"] == order[:3]
    assert [f"flood-{i}" for i in range(10)] == [n for n in order if n.startswith("flood")]


def test_a_task_that_ended_expired_or_went_before_its_turn_never_runs(
    store: Any, clock: Any
) -> None:
    """Cancelled, expired, or removed while queued: its tool never runs."""
    runner, blocker = blocked_runner(store)
    ran: list[str] = []
    try:
        cancelled = runner.start("alice", "tools/call", lambda ctx: ran.append("c") or {})
        expired = runner.start("alice", "tools/call", lambda ctx: ran.append("e") or {}, ttl=60_000)
        removed = runner.start("bob", "tools/call", lambda ctx: ran.append("r") or {}, ttl=1_000)
        store.cancel(cancelled["task"]["taskId"], "alice", "not needed")
        clock.advance(2)
        assert 1 == store.cleanup_expired()
        clock.advance(120)
    finally:
        blocker.release.set()
        runner.shutdown()
    assert [] == ran
    assert TaskStatus.CANCELLED == store.get(cancelled["task"]["taskId"], "alice").status
    assert TaskStatus.WORKING == store.get(expired["task"]["taskId"], "alice").status
    assert 0 == len(runner)
    del removed


def test_a_queued_task_whose_ttl_runs_out_is_failed_before_it_expires(
    store: Any, clock: Any
) -> None:
    """Within ttl_margin_ms of its expiry, a task still queued is failed with a clear message."""
    from tasks_store.mcp.runner import TTL_RAN_OUT

    runner, blocker = blocked_runner(store, ttl_margin_ms=1_000)
    ran: list[str] = []
    try:
        short = runner.start("alice", "tools/call", lambda ctx: ran.append("s") or {}, ttl=10_000)
        long = runner.start("alice", "tools/call", lambda ctx: ran.append("l") or {}, ttl=600_000)
        task_id = short["task"]["taskId"]
        clock.advance(9.5)  # 500 ms left: inside the margin, not yet expired
        record = store.wait(task_id, "alice", timeout=WAIT)
        assert (TaskStatus.FAILED, TTL_RAN_OUT) == (record.status, record.task.status_message)
        assert JsonRpcError(-32603, TTL_RAN_OUT) == store.get_result(task_id, "alice")
        assert 2 == len(runner)  # the blocker and the long one
    finally:
        blocker.release.set()
        runner.shutdown()
    assert ["l"] == ran
    assert TaskStatus.COMPLETED == store.get(long["task"]["taskId"], "alice").status


def test_shutdown_without_cancel_runs_the_queue(store: Any) -> None:
    """shutdown() without cancel: queued tasks still run, then the threads end."""
    before = set(threading.enumerate())
    runner, blocker = blocked_runner(store)
    ids = [runner.start("alice", "tools/call", lambda ctx: {"ok": 1})["task"]["taskId"]
           for _ in range(3)]  # fmt: skip
    threading.Timer(0.05, blocker.release.set).start()
    runner.shutdown(wait=True)
    assert [TaskStatus.COMPLETED] * 3 == [store.get(t, "alice").status for t in ids]
    assert [] == runner_threads(before)


def test_starts_under_a_barrier_never_overfill_the_queue(store: Any) -> None:
    """16 threads x 10 starts, 4 owners, workers held: exactly max_queued accepted, shares kept."""
    from tasks_store import ResourceExhausted, TaskSecurityConfig

    del store
    from tasks_store import InMemoryTaskStore

    store = InMemoryTaskStore(security=TaskSecurityConfig(max_tasks_per_owner=1000))
    runner, blocker = blocked_runner(store, max_queued=12, max_queued_per_owner=5)
    barrier = threading.Barrier(16)
    accepted: dict[str, int] = {}
    refused = [0]
    lock = threading.Lock()

    def client(n: int) -> None:
        owner = f"owner-{n % 4}"
        barrier.wait(WAIT)
        for _ in range(10):
            try:
                runner.start(owner, "tools/call", lambda ctx: {"ok": 1})
            except ResourceExhausted:
                with lock:
                    refused[0] += 1
            else:
                with lock:
                    accepted[owner] = accepted.get(owner, 0) + 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    try:
        assert 12 == sum(accepted.values())
        assert 160 - 12 == refused[0]
        assert all(count <= 5 for count in accepted.values())
        assert 13 == len(store)  # the blocker and the accepted ones: nothing else created
    finally:
        blocker.release.set()
        runner.shutdown()
    store._check()


@pytest.mark.parametrize("bad", [{"max_queued": 0}, {"max_queued_per_owner": -1},
                                 {"lease_seconds": 0}, {"ttl_margin_ms": -5}])  # fmt: skip
def test_bad_queue_settings(store: Any, bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        TaskRunner(store, **bad)


# -- the same through waitress ----------------------------------------------------------


def test_the_runner_through_http(make_store: Any) -> None:
    """
    Over real HTTP (waitress): an attacker rotating sessions fills only its shares of a
    bounded queue, the victim's task runs in turn, a task whose TTL runs out in the queue
    is failed (its tool never runs), and a full queue answers -32603 at once.
    """
    import time as _time

    from tasks_store import TaskSecurityConfig
    from tasks_store.mcp import McpServer, Tool
    from tasks_store.mcp.runner import TTL_RAN_OUT

    from .http_harness import Session, serve

    store = make_store(clock=_time.time, security=TaskSecurityConfig(max_tasks_per_owner=50))
    release = threading.Event()
    order: list[str] = []

    def work(arguments: dict[str, Any], ctx: Any) -> dict[str, Any]:
        if arguments.get("block"):
            release.wait(WAIT)
        order.append(arguments.get("who", "?"))
        return {"content": [{"type": "text", "text": "done"}]}

    runner = TaskRunner(store, max_workers=1, max_queued=22, max_queued_per_owner=4)
    server = McpServer(store, [Tool(name="work", fn=work, task_support="optional")], runner=runner)
    with serve(server.wsgi_app(), threads=4) as served:
        attackers = [Session(served.port) for _ in range(5)]
        victim = Session(served.port)
        call = {"name": "work", "task": {"ttl": 600_000}}
        assert 200 == attackers[0].call(
            "tools/call", {**call, "arguments": {"block": True, "who": "blocker"}}
        ).status
        refused = 0
        for _ in range(5):
            for session in attackers:
                reply = session.call("tools/call", {**call, "arguments": {"who": "attacker"}})
                refused += "error" in reply.body
        assert 5 == refused  # each session's share is 4: the fifth of each is refused
        short = victim.call(
            "tools/call", {"name": "work", "arguments": {"who": "short"}, "task": {"ttl": 1500}}
        ).result["task"]["taskId"]
        mine = victim.call("tools/call", {**call, "arguments": {"who": "victim"}})
        assert 200 == mine.status
        late = Session(served.port)
        full = late.call("tools/call", {**call, "arguments": {"who": "late"}})
        late.close()
        assert -32603 == full.error["code"]
        assert "waiting for a worker" in full.error["message"]
        deadline = _time.monotonic() + WAIT
        while victim.call("tasks/get", {"taskId": short}).result["status"] == "working":
            assert _time.monotonic() < deadline
            _time.sleep(0.05)
        task = victim.call("tasks/get", {"taskId": short}).result
        assert ("failed", TTL_RAN_OUT) == (task["status"], task["statusMessage"])
        release.set()
        victim_id = mine.result["task"]["taskId"]
        assert "done" == victim.call("tasks/result", {"taskId": victim_id}).result["content"][0][
            "text"
        ]
        for session in [*attackers, victim]:
            session.close()
    server.close()
    assert "short" not in order
    assert order.index("victim") <= 6  # after the blocker and at most one task per attacker

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


def runner_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("tasks_store-runner")]


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
    assert [] == runner_threads()


def test_shutdown_with_cancel_cancels_running_and_queued(store: Any) -> None:
    """shutdown(cancel=True) cancels running and queued tasks; queued work never runs."""
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
    assert [] == runner_threads()


@pytest.mark.timeout(60)
def test_many_threads_start_many_tasks(make_store: Any) -> None:
    """16 threads starting 25 tasks each on 4 workers get every result right."""
    from tasks_store import TaskSecurityConfig

    store = make_store(security=TaskSecurityConfig(max_tasks_per_owner=1000))
    barrier = threading.Barrier(16)
    ids: dict[str, int] = {}
    lock = threading.Lock()
    errors: list[BaseException] = []

    with TaskRunner(store, max_workers=4) as runner:

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
    assert [] == runner_threads()


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

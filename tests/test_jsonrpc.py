"""TasksRpc: every tasks/* method, tools/call, and every error path, schema-checked."""

# Asserts read ``expected == actual`` (project convention), which SIM300 calls Yoda.

from __future__ import annotations

import inspect
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks_store import (
    RELATED_TASK_META_KEY,
    JsonRpcError,
    TaskContext,
    TaskError,
    TaskRunner,
    TasksRpc,
    TaskStatus,
    errors,
)
from tasks_store.mcp.jsonrpc import (
    ERROR_CODES,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    MAX_TASK_ID_LENGTH,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    encode_response,
    error_code,
    error_object,
)

from .conftest import FakeClock
from .mcp_schema import check_response

pytestmark = pytest.mark.timeout(30)

ALICE = "alice"
BOB = "bob"


def req(method: str, params: Any = None, request_id: Any = 1) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def call(rpc: TasksRpc, method: str, params: Any = None, owner: str = ALICE) -> dict[str, Any]:
    response = rpc.handle(req(method, params), owner)
    assert response is not None
    return response


def error_of(response: dict[str, Any]) -> dict[str, Any]:
    check_response(response)
    assert "error" in response, response
    return response["error"]  # type: ignore[no-any-return]


def text_result(text: str, *, is_error: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {"content": [{"type": "text", "text": text}]}
    if is_error:
        result["isError"] = True
    return result


@pytest.fixture
def rpc(store: Any) -> TasksRpc:
    return TasksRpc(store, result_timeout=5.0)


@pytest.fixture
def runner(store: Any) -> Iterator[TaskRunner]:
    with TaskRunner(store, max_workers=2) as runner:
        yield runner


def echo(arguments: dict[str, Any], ctx: TaskContext | None) -> dict[str, Any]:
    if arguments.get("raise"):
        raise ValueError(arguments["raise"])
    if arguments.get("garbage"):
        return {"not": "a tool result"}  # type: ignore[return-value]
    return text_result(f"echo {arguments.get('text', '')} task={ctx is not None}",
                       is_error=bool(arguments.get("isError")))


@pytest.fixture
def tools_rpc(rpc: TasksRpc, runner: TaskRunner) -> TasksRpc:
    return rpc.with_tools({"echo": echo}, runner)


# -- the error table ------------------------------------------------------------


def test_table_agrees_with_each_error_class_code() -> None:
    """ERROR_CODES gives every TaskError subclass the code the class declares."""
    classes = [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, TaskError)
    ]
    assert len(classes) >= 12
    for cls in classes:
        assert cls in ERROR_CODES, cls
        assert cls.code == ERROR_CODES[cls], cls


def test_error_codes_is_a_read_only_view_of_the_classes() -> None:
    """ERROR_CODES reads each class's code (new subclasses too) and cannot be written."""

    class Custom(errors.InvalidParams):
        pass

    assert INVALID_PARAMS == ERROR_CODES[Custom]
    assert Custom in set(ERROR_CODES)
    assert len(ERROR_CODES) == len(list(ERROR_CODES))
    assert {errors.ParseError, errors.InvalidRequest, errors.MethodNotFound} <= set(ERROR_CODES)
    assert PARSE_ERROR == ERROR_CODES[errors.ParseError]
    assert None is ERROR_CODES.get(KeyError)
    with pytest.raises(TypeError):
        ERROR_CODES[KeyError] = 1  # type: ignore[index]


def test_helpers_and_constants_are_the_error_modules() -> None:
    """The JSON-RPC module re-exports the error module's codes and helpers: one definition."""
    assert error_code is errors.error_code
    assert error_object is errors.error_object
    assert (PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR) == (
        errors.PARSE_ERROR,
        errors.INVALID_REQUEST,
        errors.METHOD_NOT_FOUND,
        errors.INVALID_PARAMS,
        errors.INTERNAL_ERROR,
    )


def test_unknown_exception_is_internal_and_generic() -> None:
    """An exception outside the table maps to -32603 with a message that reveals nothing."""
    exc = RuntimeError("secret path /etc/passwd")
    assert INTERNAL_ERROR == error_code(exc)
    assert {"code": INTERNAL_ERROR, "message": "Internal error"} == error_object(exc)


def test_encode_response_never_raises() -> None:
    """A response JSON cannot encode becomes a -32603 error response."""
    body = encode_response({"jsonrpc": "2.0", "id": 3, "result": {"x": float("nan")}})
    response = json.loads(body)
    assert {"code": INTERNAL_ERROR, "message": "Internal error"} == error_of(response)
    assert 3 == response["id"]


def test_constructor_rejects_bad_arguments(store: Any) -> None:
    """A negative result_timeout, or tools without a runner, is a ValueError."""
    with pytest.raises(ValueError, match="result_timeout"):
        TasksRpc(store, result_timeout=-1)
    with pytest.raises(ValueError, match="result_timeout"):
        TasksRpc(store, result_timeout="5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="together"):
        TasksRpc(store, tools={"echo": echo})


# -- tasks/get --------------------------------------------------------------------


def test_get_returns_the_task_with_variables_in_meta(rpc: TasksRpc, store: Any) -> None:
    """tasks/get answers the Task, its variables merged into _meta."""
    record = store.create(ALICE, "tools/call")
    store.set_variables(record.task_id, ALICE, {"progress": 0.5})
    response = call(rpc, "tasks/get", {"taskId": record.task_id})
    check_response(response, "GetTaskResult")
    assert 1 == response["id"]
    result = response["result"]
    assert record.task_id == result["taskId"]
    assert "working" == result["status"]
    assert {"progress": 0.5} == result["_meta"]


def test_get_without_variables_has_no_meta(rpc: TasksRpc, store: Any) -> None:
    """tasks/get of a task without variables is exactly the stored Task."""
    record = store.create(ALICE, "tools/call")
    response = call(rpc, "tasks/get", {"taskId": record.task_id})
    check_response(response, "GetTaskResult")
    assert record.task.to_wire() == response["result"]


def test_get_of_foreign_task_equals_unknown_task(rpc: TasksRpc, store: Any) -> None:
    """Another owner's task id answers the same -32602 as an unknown id."""
    record = store.create(ALICE, "tools/call")
    foreign = error_of(call(rpc, "tasks/get", {"taskId": record.task_id}, owner=BOB))
    unknown = error_of(call(rpc, "tasks/get", {"taskId": "no-such-task"}, owner=BOB))
    assert INVALID_PARAMS == foreign["code"] == unknown["code"]
    assert foreign["message"].replace(record.task_id, "X") == unknown["message"].replace(
        "no-such-task", "X"
    )
    assert ALICE not in json.dumps(foreign)


@pytest.mark.parametrize("method", ["tasks/get", "tasks/result", "tasks/cancel"])
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"taskId": 5},
        {"taskId": None},
        {"taskId": True},
        {"taskId": ["a"]},
        {"taskId": {"id": "a"}},
        {"taskId": "x" * 10_000},
        "a string",
        ["taskId"],
        7,
        None,
    ],
    ids=repr,
)
def test_bad_task_id_params_answer_invalid_params(
    rpc: TasksRpc, method: str, params: Any
) -> None:
    """A missing, non-string or oversized taskId, or non-object params, answers -32602."""
    message = req(method)
    message["params"] = params
    response = rpc.handle(message, ALICE)
    assert response is not None
    error = error_of(response)
    assert INVALID_PARAMS == error["code"]
    assert 1 == response["id"]
    assert len(json.dumps(response)) < 1000  # the long id is not echoed back


def test_max_task_id_length_is_accepted(rpc: TasksRpc) -> None:
    """A taskId at the length limit is looked up (and not found)."""
    error = error_of(call(rpc, "tasks/get", {"taskId": "x" * MAX_TASK_ID_LENGTH}))
    assert "Task not found" in error["message"]


def test_anonymous_owner_is_refused(rpc: TasksRpc) -> None:
    """The anonymous owner gets -32602 while anonymous access is off."""
    error = error_of(call(rpc, "tasks/list", owner="local"))
    assert INVALID_PARAMS == error["code"]
    assert "Anonymous" in error["message"]


# -- tasks/result -------------------------------------------------------------------


def test_result_adds_related_task_meta_without_touching_the_store(
    rpc: TasksRpc, store: Any
) -> None:
    """tasks/result returns the stored result plus related-task _meta, and stores nothing."""
    record = store.create(ALICE, "tools/call")
    stored = {**text_result("hi"), "_meta": {"mine": 1}}
    store.complete_with_result(record.task_id, ALICE, "completed", None, stored)
    for _ in range(2):
        response = call(rpc, "tasks/result", {"taskId": record.task_id})
        check_response(response, "CallToolResult")
        expected = {
            **text_result("hi"),
            "_meta": {"mine": 1, RELATED_TASK_META_KEY: {"taskId": record.task_id}},
        }
        assert expected == response["result"]
    assert stored == store.get_result(record.task_id, ALICE)


def test_result_of_a_failed_request_is_that_error(rpc: TasksRpc, store: Any) -> None:
    """A task whose result is a JsonRpcError answers with exactly that error."""
    record = store.create(ALICE, "tools/call")
    failure = JsonRpcError(-32000, "backend down", {"retryAfter": 3})
    store.complete_with_result(record.task_id, ALICE, "failed", "backend down", failure)
    response = call(rpc, "tasks/result", {"taskId": record.task_id})
    assert {"code": -32000, "message": "backend down", "data": {"retryAfter": 3}} == error_of(
        response
    )
    assert 1 == response["id"]


@pytest.mark.timeout(30)
def test_result_blocks_until_the_task_completes(rpc: TasksRpc, store: Any) -> None:
    """tasks/result on a working task answers once another thread completes it."""
    record = store.create(ALICE, "tools/call")
    answers: list[dict[str, Any]] = []
    waiter = threading.Thread(
        target=lambda: answers.append(call(rpc, "tasks/result", {"taskId": record.task_id}))
    )
    waiter.start()
    store.complete_with_result(record.task_id, ALICE, "completed", None, text_result("late"))
    waiter.join(10)
    assert not waiter.is_alive()
    check_response(answers[0], "CallToolResult")
    assert "late" == answers[0]["result"]["content"][0]["text"]


def test_result_timeout_answers_internal_error_with_status(store: Any) -> None:
    """When result_timeout runs out, tasks/result answers -32603 naming the task's status."""
    rpc = TasksRpc(store, result_timeout=0)
    record = store.create(ALICE, "tools/call")
    error = error_of(call(rpc, "tasks/result", {"taskId": record.task_id}))
    assert INTERNAL_ERROR == error["code"]
    assert {"taskId": record.task_id, "timeout": 0, "status": "working"} == error["data"]
    assert TaskStatus.WORKING == store.get(record.task_id, ALICE).status


def test_result_of_cancelled_task_is_invalid_params(rpc: TasksRpc, store: Any) -> None:
    """A task cancelled without a result answers tasks/result with -32602, status cancelled."""
    record = store.create(ALICE, "tools/call")
    call(rpc, "tasks/cancel", {"taskId": record.task_id})
    error = error_of(call(rpc, "tasks/result", {"taskId": record.task_id}))
    assert INVALID_PARAMS == error["code"]
    assert {"taskId": record.task_id, "status": "cancelled"} == error["data"]


def test_result_of_expired_task_is_invalid_params(
    rpc: TasksRpc, store: Any, clock: FakeClock
) -> None:
    """A task that expired before ending answers tasks/result with -32602."""
    record = store.create(ALICE, "tools/call", ttl=1000)
    clock.advance(2)
    error = error_of(call(rpc, "tasks/result", {"taskId": record.task_id}))
    assert INVALID_PARAMS == error["code"]
    assert "expired" in error["message"]


def test_result_that_is_not_an_object_is_internal_error(rpc: TasksRpc, store: Any) -> None:
    """A stored result that is not a JSON object cannot be a Result: -32603."""
    record = store.create(ALICE, "tools/call")
    store.complete_with_result(record.task_id, ALICE, "completed", None, [1, 2])
    assert INTERNAL_ERROR == error_of(call(rpc, "tasks/result", {"taskId": record.task_id}))[
        "code"
    ]


# -- tasks/list --------------------------------------------------------------------


def test_list_pages_through_own_tasks_only(rpc: TasksRpc, store: Any) -> None:
    """tasks/list shows only the caller's tasks, newest first, paged by nextCursor."""
    mine = [store.create(ALICE, "tools/call").task_id for _ in range(60)]
    store.create(BOB, "tools/call")
    seen: list[str] = []
    cursor = None
    while True:
        response = call(rpc, "tasks/list", {} if cursor is None else {"cursor": cursor})
        check_response(response, "ListTasksResult")
        seen += [t["taskId"] for t in response["result"]["tasks"]]
        cursor = response["result"].get("nextCursor")
        if cursor is None:
            break
    assert list(reversed(mine)) == seen


def test_list_without_params_and_for_a_new_owner(rpc: TasksRpc) -> None:
    """tasks/list needs no params and answers an empty list to an owner with no tasks."""
    response = call(rpc, "tasks/list")
    check_response(response, "ListTasksResult")
    assert {"tasks": []} == response["result"]


@pytest.mark.parametrize("cursor", [5, True, ["c"], {"c": 1}, "garbage-cursor"], ids=repr)
def test_list_bad_cursor_is_invalid_params(rpc: TasksRpc, cursor: Any) -> None:
    """A cursor that is not a string, or not one the store issued, answers -32602."""
    assert INVALID_PARAMS == error_of(call(rpc, "tasks/list", {"cursor": cursor}))["code"]


def test_list_cursor_of_another_owner_is_invalid_params(rpc: TasksRpc, store: Any) -> None:
    """A cursor issued to one owner answers -32602 to another."""
    for _ in range(51):
        store.create(ALICE, "tools/call")
    cursor = call(rpc, "tasks/list")["result"]["nextCursor"]
    store.create(BOB, "tools/call")
    error = error_of(call(rpc, "tasks/list", {"cursor": cursor}, owner=BOB))
    assert INVALID_PARAMS == error["code"]


# -- tasks/cancel -------------------------------------------------------------------


def test_cancel_answers_the_cancelled_task(rpc: TasksRpc, store: Any) -> None:
    """tasks/cancel moves a working task to cancelled and answers that Task."""
    record = store.create(ALICE, "tools/call")
    response = call(rpc, "tasks/cancel", {"taskId": record.task_id})
    check_response(response, "CancelTaskResult")
    assert "cancelled" == response["result"]["status"]
    assert "cancelled" in response["result"]["statusMessage"]
    assert TaskStatus.CANCELLED == store.get(record.task_id, ALICE).status


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_cancel_of_terminal_task_is_invalid_params(
    rpc: TasksRpc, store: Any, status: str
) -> None:
    """Cancelling a task that has already ended answers -32602 and changes nothing."""
    record = store.create(ALICE, "tools/call")
    store.update_status(record.task_id, ALICE, status)
    error = error_of(call(rpc, "tasks/cancel", {"taskId": record.task_id}))
    assert INVALID_PARAMS == error["code"]
    assert status == store.get(record.task_id, ALICE).status.value


def test_cancel_of_foreign_task_is_invalid_params(rpc: TasksRpc, store: Any) -> None:
    """Cancelling another owner's task answers -32602 and leaves it working."""
    record = store.create(ALICE, "tools/call")
    assert INVALID_PARAMS == error_of(
        call(rpc, "tasks/cancel", {"taskId": record.task_id}, owner=BOB)
    )["code"]
    assert TaskStatus.WORKING == store.get(record.task_id, ALICE).status


# -- envelope -------------------------------------------------------------------------


@pytest.mark.parametrize("message", [[], [req("tasks/list")], "text", 5, None, True], ids=repr)
def test_non_object_message_is_invalid_request(rpc: TasksRpc, message: Any) -> None:
    """A message that is not a JSON object answers -32600 without an id."""
    response = rpc.handle(message, ALICE)
    assert response is not None
    assert INVALID_REQUEST == error_of(response)["code"]
    assert "id" not in response


@pytest.mark.parametrize(
    ("message", "keeps_id"),
    [
        ({"id": 1, "method": "tasks/list"}, True),
        ({"jsonrpc": "1.0", "id": 1, "method": "tasks/list"}, True),
        ({"jsonrpc": 2.0, "id": 1, "method": "tasks/list"}, True),
        ({"jsonrpc": "2.0", "id": 1}, True),
        ({"jsonrpc": "2.0", "id": 1, "method": 5}, True),
        ({"jsonrpc": "2.0", "id": 1, "method": None}, True),
        ({"jsonrpc": "2.0", "id": 1.5, "method": "tasks/list"}, False),
        ({"jsonrpc": "2.0", "id": None, "method": "tasks/list"}, False),
        ({"jsonrpc": "2.0", "id": True, "method": "tasks/list"}, False),
        ({"jsonrpc": "2.0", "id": [1], "method": "tasks/list"}, False),
        ({"jsonrpc": "2.0", "method": 5}, False),
        ({}, False),
    ],
    ids=repr,
)
def test_malformed_envelope_is_invalid_request(
    rpc: TasksRpc, message: dict[str, Any], keeps_id: bool
) -> None:
    """Wrong jsonrpc, a bad id, or a missing/non-string method answers -32600."""
    response = rpc.handle(message, ALICE)
    assert response is not None
    assert INVALID_REQUEST == error_of(response)["code"]
    assert keeps_id == ("id" in response)


@pytest.mark.parametrize("request_id", [0, -7, 2**53, "", "req-1"], ids=repr)
def test_ids_are_echoed(rpc: TasksRpc, request_id: str | int) -> None:
    """Any string or integer id comes back unchanged."""
    response = rpc.handle(req("tasks/list", request_id=request_id), ALICE)
    assert response is not None
    check_response(response, "ListTasksResult")
    assert request_id == response["id"]


def test_unknown_method_is_method_not_found(rpc: TasksRpc) -> None:
    """An unknown method answers -32601 with the request's id."""
    response = call(rpc, "tasks/explode", {})
    assert METHOD_NOT_FOUND == error_of(response)["code"]
    assert 1 == response["id"]


def test_tools_call_without_tools_is_method_not_found(rpc: TasksRpc) -> None:
    """A handler built without tools answers tools/call with -32601."""
    assert METHOD_NOT_FOUND == error_of(call(rpc, "tools/call", {"name": "echo"}))["code"]


def test_notifications_and_responses_get_no_answer(rpc: TasksRpc, store: Any) -> None:
    """A notification or a client's response returns None and is not acted on."""
    record = store.create(ALICE, "tools/call")
    cancel = {"jsonrpc": "2.0", "method": "tasks/cancel", "params": {"taskId": record.task_id}}
    assert rpc.handle(cancel, ALICE) is None
    assert rpc.handle({"jsonrpc": "2.0", "method": "notifications/initialized"}, ALICE) is None
    assert rpc.handle({"jsonrpc": "2.0", "id": 9, "result": {}}, ALICE) is None
    assert TaskStatus.WORKING == store.get(record.task_id, ALICE).status


def test_internal_fault_is_logged_not_leaked(
    store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A plain exception in the store answers -32603 'Internal error' and is logged."""

    class Broken:
        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        def list(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("disk on fire at /srv/secret")

    rpc = TasksRpc(Broken())  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="tasks_store"):
        response = call(rpc, "tasks/list")
    assert {"code": INTERNAL_ERROR, "message": "Internal error"} == error_of(response)
    assert "secret" not in json.dumps(response)
    assert "Traceback" not in json.dumps(response)
    assert any("disk on fire" in (r.exc_text or "") for r in caplog.records)


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe\x00garbage", b'{"jsonrpc": "2.0", "id": 1, "meth', b"", b"[" * 100_000],
    ids=["garbage", "truncated", "empty", "deep"],
)
def test_unparsable_body_is_parse_error(rpc: TasksRpc, body: bytes) -> None:
    """Bytes that are not UTF-8 JSON answer -32700 without an id."""
    response = rpc.handle_json(body, ALICE)
    assert response is not None
    assert PARSE_ERROR == error_of(response)["code"]
    assert "id" not in response


@settings(max_examples=200, deadline=None)
@given(
    message=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["jsonrpc", "id", "method", "params", "taskId", "cursor", "x"]),
            inner,
            max_size=5,
        ),
        max_leaves=12,
    ),
    method=st.sampled_from(["tasks/get", "tasks/result", "tasks/list", "tasks/cancel", "zz"]),
)
def test_handle_never_raises(message: Any, method: str) -> None:
    """Whatever JSON arrives, handle answers a schema-valid response or None."""
    from tasks_store import InMemoryTaskStore

    rpc = TasksRpc(InMemoryTaskStore(), result_timeout=0)
    for candidate in (message, {"jsonrpc": "2.0", "id": 1, "method": method, "params": message}):
        response = rpc.handle(candidate, ALICE)
        if response is not None:
            check_response(response)
            json.loads(encode_response(response))


# -- tools/call --------------------------------------------------------------------


def test_tool_without_task_runs_inline(tools_rpc: TasksRpc) -> None:
    """tools/call without task runs the tool at once with ctx=None."""
    response = call(tools_rpc, "tools/call", {"name": "echo", "arguments": {"text": "a"}})
    check_response(response, "CallToolResult")
    assert text_result("echo a task=False") == response["result"]


def test_tool_exception_inline_is_an_error_result(tools_rpc: TasksRpc) -> None:
    """A tool that raises answers a CallToolResult with isError and its message, no traceback."""
    response = call(tools_rpc, "tools/call", {"name": "echo", "arguments": {"raise": "boom"}})
    check_response(response, "CallToolResult")
    assert text_result("boom", is_error=True) == response["result"]


def test_tool_with_task_creates_then_completes(tools_rpc: TasksRpc, store: Any) -> None:
    """tools/call with task answers CreateTaskResult; tasks/result gives the tool's result."""
    response = call(
        tools_rpc, "tools/call", {"name": "echo", "arguments": {"text": "b"}, "task": {}}
    )
    check_response(response, "CreateTaskResult")
    task_id = response["result"]["task"]["taskId"]
    assert "tools/call" == store.get(task_id, ALICE).request_method
    result = call(tools_rpc, "tasks/result", {"taskId": task_id})
    check_response(result, "CallToolResult")
    assert "echo b task=True" == result["result"]["content"][0]["text"]
    assert TaskStatus.COMPLETED == store.get(task_id, ALICE).status


@pytest.mark.parametrize("arguments", [{"isError": True}, {"raise": "kaput"}], ids=repr)
def test_tool_error_in_task_is_stored_completed_and_shown_failed(
    tools_rpc: TasksRpc, store: Any, arguments: dict[str, Any]
) -> None:
    """
    A task whose tool returns isError (or raises) is stored completed (the Tasks
    extension's meaning); the 2025-11-25 wire shows it failed with the tool's text,
    in tasks/get, tasks/list and tasks/cancel's answer; tasks/result gives the result.
    """
    response = call(tools_rpc, "tools/call", {"name": "echo", "arguments": arguments, "task": {}})
    task_id = response["result"]["task"]["taskId"]
    result = call(tools_rpc, "tasks/result", {"taskId": task_id})
    check_response(result, "CallToolResult")
    assert result["result"]["isError"] is True
    text = result["result"]["content"][0]["text"]
    record = store.get(task_id, ALICE)
    assert TaskStatus.COMPLETED == record.status
    assert record.task.status_message is None
    got = call(tools_rpc, "tasks/get", {"taskId": task_id})
    check_response(got, "GetTaskResult")
    assert ("failed", text) == (got["result"]["status"], got["result"]["statusMessage"])
    listed = call(tools_rpc, "tasks/list")
    check_response(listed, "ListTasksResult")
    assert [("failed", text)] == [
        (t["status"], t["statusMessage"]) for t in listed["result"]["tasks"]
    ]
    assert INVALID_PARAMS == error_of(call(tools_rpc, "tasks/cancel", {"taskId": task_id}))[
        "code"
    ]


def test_completed_task_without_is_error_stays_completed_on_the_wire(
    tools_rpc: TasksRpc, store: Any
) -> None:
    """Only a tools/call result with isError: true changes the 2025 status."""
    response = call(
        tools_rpc, "tools/call", {"name": "echo", "arguments": {"text": "ok"}, "task": {}}
    )
    task_id = response["result"]["task"]["taskId"]
    call(tools_rpc, "tasks/result", {"taskId": task_id})
    got = call(tools_rpc, "tasks/get", {"taskId": task_id})
    assert "completed" == got["result"]["status"]
    assert "statusMessage" not in got["result"]


def test_other_request_with_is_error_like_result_stays_completed(
    rpc: TasksRpc, store: Any
) -> None:
    """A task of another request method keeps its stored status, whatever its result says."""
    record = store.create(ALICE, "sampling/createMessage")
    store.complete_with_result(
        record.task_id, ALICE, "completed", None, {"isError": True, "content": []}
    )
    assert "completed" == call(rpc, "tasks/get", {"taskId": record.task_id})["result"]["status"]


def test_tool_with_ttl_keeps_it(tools_rpc: TasksRpc) -> None:
    """task.ttl is the created task's ttl."""
    response = call(tools_rpc, "tools/call", {"name": "echo", "task": {"ttl": 60_000}})
    assert 60_000 == response["result"]["task"]["ttl"]


def test_tool_returning_garbage_is_internal_error(tools_rpc: TasksRpc, store: Any) -> None:
    """A tool that returns no CallToolResult answers -32603 inline and fails its task."""
    inline = call(tools_rpc, "tools/call", {"name": "echo", "arguments": {"garbage": 1}})
    assert INTERNAL_ERROR == error_of(inline)["code"]
    created = call(
        tools_rpc, "tools/call", {"name": "echo", "arguments": {"garbage": 1}, "task": {}}
    )
    task_id = created["result"]["task"]["taskId"]
    assert INTERNAL_ERROR == error_of(call(tools_rpc, "tasks/result", {"taskId": task_id}))[
        "code"
    ]
    assert TaskStatus.FAILED == store.get(task_id, ALICE).status


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"name": 5},
        {"name": "nope"},
        {"name": "echo", "arguments": [1]},
        {"name": "echo", "arguments": "x"},
        {"name": "echo", "task": True},
        {"name": "echo", "task": {"ttl": "60"}},
        {"name": "echo", "task": {"ttl": 1.5}},
        {"name": "echo", "task": {"ttl": -1}},
        {"name": "echo", "task": {"ttl": 10**12}},
    ],
    ids=repr,
)
def test_tools_call_bad_params_are_invalid_params(
    tools_rpc: TasksRpc, store: Any, params: dict[str, Any]
) -> None:
    """A missing/unknown tool, bad arguments or a bad task answers -32602, creating nothing."""
    assert INVALID_PARAMS == error_of(call(tools_rpc, "tools/call", params))["code"]
    assert 0 == len(store)

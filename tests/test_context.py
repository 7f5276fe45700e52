"""TaskContext: variables, typed getters, status moves, completion, cancellation."""

# Asserts read ``expected == actual`` (project convention), which SIM300 calls Yoda.

from __future__ import annotations

from typing import Any

import pytest

from tasks_store import (
    InvalidParams,
    InvalidTransition,
    JsonRpcError,
    NotFound,
    TaskContext,
    TaskStatus,
    VariableSizeExceeded,
)

from .conftest import FakeClock

pytestmark = pytest.mark.timeout(30)

OWNER = "alice"


@pytest.fixture
def ctx(store: Any) -> TaskContext:
    record = store.create(OWNER, "tools/call", ttl=60_000)
    return TaskContext(store, record.task_id, OWNER)


def test_identity(ctx: TaskContext, store: Any) -> None:
    """A context names its task, owner and store."""
    assert OWNER == ctx.owner_id
    assert store is ctx.store
    assert ctx.task_id == ctx.record().task_id
    assert ctx.task_id in repr(ctx)


def test_set_and_read_variables(ctx: TaskContext) -> None:
    """set_variable/set_variables merge; variables() and get_variable read them back."""
    ctx.set_variable("a", 1)
    ctx.set_variables({"b": "two", "c": [3]})
    assert {"a": 1, "b": "two", "c": [3]} == ctx.variables()
    assert "two" == ctx.get_variable("b")
    assert ctx.get_variable("missing") is None
    assert "dflt" == ctx.get_variable("missing", "dflt")


def test_none_deletes_a_variable(ctx: TaskContext) -> None:
    """Setting a variable to None removes it."""
    ctx.set_variables({"a": 1, "b": 2})
    ctx.set_variable("a", None)
    assert {"b": 2} == ctx.variables()


def test_variables_returns_a_copy(ctx: TaskContext) -> None:
    """Changing what variables() returned does not change the task."""
    ctx.set_variable("a", 1)
    copy = ctx.variables()
    copy["a"] = 99
    assert 1 == ctx.get_variable("a")


@pytest.mark.parametrize(
    ("getter", "value", "expected"),
    [
        ("get_str", "x", "x"),
        ("get_int", 7, 7),
        ("get_float", 2.5, 2.5),
        ("get_float", 3, 3.0),
        ("get_bool", True, True),
        ("get_bool", False, False),
    ],
)
def test_typed_getters_return_right_types(
    ctx: TaskContext, getter: str, value: Any, expected: Any
) -> None:
    """Each typed getter returns a value of its type."""
    ctx.set_variable("k", value)
    got = getattr(ctx, getter)("k")
    assert expected == got
    assert type(expected) is type(got)


@pytest.mark.parametrize(
    ("getter", "value"),
    [
        ("get_str", 1),
        ("get_int", "1"),
        ("get_int", True),
        ("get_int", 1.5),
        ("get_float", "1.5"),
        ("get_float", False),
        ("get_bool", 1),
        ("get_bool", "true"),
        ("get_str", [1]),
    ],
)
def test_typed_getters_reject_wrong_types(ctx: TaskContext, getter: str, value: Any) -> None:
    """A typed getter on a variable of another type raises InvalidParams naming the key."""
    ctx.set_variable("k", value)
    with pytest.raises(InvalidParams, match="'k'"):
        getattr(ctx, getter)("k")


@pytest.mark.parametrize("getter", ["get_str", "get_int", "get_float", "get_bool"])
def test_typed_getters_default_when_missing(ctx: TaskContext, getter: str) -> None:
    """A typed getter returns the default (None unless given) for a missing key."""
    assert getattr(ctx, getter)("missing") is None
    assert "d" == getattr(ctx, getter)("missing", "d")


def test_set_variable_errors_change_nothing(make_store: Any) -> None:
    """A non-JSON value or one past the size limit raises and leaves the variables alone."""
    from tasks_store import StoreConfig

    store = make_store(config=StoreConfig(max_variable_size_bytes=64))
    record = store.create(OWNER, "tools/call")
    ctx = TaskContext(store, record.task_id, OWNER)
    ctx.set_variable("a", 1)
    with pytest.raises(InvalidParams):
        ctx.set_variable("b", object())
    with pytest.raises(VariableSizeExceeded):
        ctx.set_variable("b", "x" * 100)
    assert {"a": 1} == ctx.variables()


def test_require_input_and_resume(ctx: TaskContext) -> None:
    """require_input moves to input_required and resume back to working, with messages."""
    record = ctx.require_input("need a file")
    assert TaskStatus.INPUT_REQUIRED == record.status
    assert "need a file" == record.task.status_message
    record = ctx.resume()
    assert TaskStatus.WORKING == record.status
    assert record.task.status_message is None


def test_resume_while_working_is_invalid(ctx: TaskContext) -> None:
    """resume on a working task is an InvalidTransition (no self-transition)."""
    with pytest.raises(InvalidTransition):
        ctx.resume()


def test_complete_stores_the_result(ctx: TaskContext, store: Any) -> None:
    """complete ends the task completed with its result and message."""
    record = ctx.complete({"content": []}, "done")
    assert TaskStatus.COMPLETED == record.status
    assert "done" == record.task.status_message
    assert {"content": []} == store.get_result(ctx.task_id, OWNER)


def test_fail_without_result_stores_an_internal_error(ctx: TaskContext, store: Any) -> None:
    """fail(message) ends the task failed with JsonRpcError(-32603, message)."""
    record = ctx.fail("it broke")
    assert TaskStatus.FAILED == record.status
    assert "it broke" == record.task.status_message
    assert JsonRpcError(-32603, "it broke") == store.get_result(ctx.task_id, OWNER)


def test_fail_with_result_stores_it(ctx: TaskContext, store: Any) -> None:
    """fail(message, result) stores the given result."""
    result = {"content": [{"type": "text", "text": "no"}], "isError": True}
    ctx.fail("no", result)
    assert result == store.get_result(ctx.task_id, OWNER)


def test_complete_after_cancel_raises(ctx: TaskContext, store: Any) -> None:
    """A cancelled task stays cancelled: complete raises InvalidTransition."""
    store.cancel(ctx.task_id, OWNER)
    with pytest.raises(InvalidTransition):
        ctx.complete({"content": []})
    assert TaskStatus.CANCELLED == ctx.record().status


def test_is_cancelled(ctx: TaskContext, store: Any) -> None:
    """is_cancelled is False while working and True once cancelled."""
    assert not ctx.is_cancelled()
    store.cancel(ctx.task_id, OWNER)
    assert ctx.is_cancelled()


def test_is_cancelled_false_when_completed(ctx: TaskContext) -> None:
    """A completed task is not cancelled."""
    ctx.complete({"content": []})
    assert not ctx.is_cancelled()


def test_removed_task_counts_as_cancelled(ctx: TaskContext, store: Any, clock: FakeClock) -> None:
    """Once the task is removed from the store, is_cancelled is True and reads raise NotFound."""
    clock.advance(61)
    assert 1 == store.cleanup_expired()
    assert ctx.is_cancelled()
    with pytest.raises(NotFound):
        ctx.variables()


def test_context_of_another_owner_sees_nothing(store: Any, ctx: TaskContext) -> None:
    """A context built with the wrong owner cannot read or change the task."""
    intruder = TaskContext(store, ctx.task_id, "mallory")
    with pytest.raises(NotFound):
        intruder.set_variable("a", 1)
    with pytest.raises(NotFound):
        intruder.complete({"content": []})
    assert TaskStatus.WORKING == ctx.record().status
    assert {} == ctx.variables()


# -- CallContext: the ctx of an inline call --------------------------------------------


def test_call_context_keeps_variables_for_the_call() -> None:
    """Set, merge, delete and read variables, as a TaskContext does, without a store."""
    from tasks_store.mcp.context import CallContext

    ctx = CallContext("user:alice", "echo")
    assert (None, False, "user:alice", "echo") == (
        ctx.task_id, ctx.in_task, ctx.owner_id, ctx.tool_name
    )
    ctx.set_variable("n", 3)
    ctx.set_variables({"s": "x", "f": 1.5, "b": True})
    assert {"n": 3, "s": "x", "f": 1.5, "b": True} == ctx.variables()
    assert (3, "x", 1.5, True) == (
        ctx.get_int("n"), ctx.get_str("s"), ctx.get_float("f"), ctx.get_bool("b")
    )
    assert 3.0 == ctx.get_float("n")
    ctx.set_variable("n", None)
    assert ctx.get_int("n", 7) == 7
    assert ctx.get_variable("missing", "d") == "d"
    copy = ctx.variables()
    copy["s"] = "changed"
    assert "x" == ctx.get_str("s")
    assert not ctx.is_cancelled()


def test_call_context_refuses_what_a_store_would() -> None:
    """Non-str keys, non-JSON values and wrong types raise InvalidParams, changing nothing."""
    from tasks_store.mcp.context import CallContext

    ctx = CallContext("user:alice", "echo")
    ctx.set_variable("b", True)
    with pytest.raises(InvalidParams):
        ctx.set_variables({"ok": 1, 5: "bad"})  # type: ignore[dict-item]
    with pytest.raises(InvalidParams):
        ctx.set_variables({"ok": 1, "nan": float("nan")})
    assert {"b": True} == ctx.variables()
    with pytest.raises(InvalidParams, match="must be an integer"):
        ctx.get_int("b")
    with pytest.raises(InvalidParams, match="must be a number"):
        ctx.get_float("b")
    with pytest.raises(InvalidParams, match="owner_id"):
        CallContext(5, "echo")  # type: ignore[arg-type]

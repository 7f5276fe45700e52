"""TaskStatus: the protocol's five strings and the one transition table."""

# Asserts read ``expected == actual`` (project convention), which SIM300 calls Yoda.

from __future__ import annotations

import pytest
from hypothesis import given

from tasks_store import InvalidParams, InvalidTransition, TaskError, TaskStatus

from .strategies import statuses

W = "working"
I = "input_required"  # noqa: E741
C = "completed"
F = "failed"
X = "cancelled"

#: Every (from, to) pair and whether it is allowed, written out by hand.
EXPECTED_TABLE: dict[tuple[str, str], bool] = {
    (W, W): False,
    (W, I): True,
    (W, C): True,
    (W, F): True,
    (W, X): True,
    (I, W): True,
    (I, I): False,
    (I, C): True,
    (I, F): True,
    (I, X): True,
    (C, W): False,
    (C, I): False,
    (C, C): False,
    (C, F): False,
    (C, X): False,
    (F, W): False,
    (F, I): False,
    (F, C): False,
    (F, F): False,
    (F, X): False,
    (X, W): False,
    (X, I): False,
    (X, C): False,
    (X, F): False,
    (X, X): False,
}
ALLOWED = [pair for pair, ok in EXPECTED_TABLE.items() if ok]
FORBIDDEN = [pair for pair, ok in EXPECTED_TABLE.items() if not ok]


def test_expected_table_covers_all_25_pairs() -> None:
    """The table under test lists every pair of the five statuses exactly once."""
    values = [s.value for s in TaskStatus]
    assert 25 == len(EXPECTED_TABLE)
    assert {(a, b) for a in values for b in values} == set(EXPECTED_TABLE)


def test_values_are_the_protocol_strings() -> None:
    """Each member's value is the string the 2025-11-25 schema uses."""
    assert {
        "WORKING": "working",
        "INPUT_REQUIRED": "input_required",
        "COMPLETED": "completed",
        "FAILED": "failed",
        "CANCELLED": "cancelled",
    } == {s.name: s.value for s in TaskStatus}


def test_status_is_a_str_equal_to_its_value() -> None:
    """A TaskStatus compares equal to, and prints as, its protocol string."""
    assert isinstance(TaskStatus.WORKING, str)
    assert "input_required" == TaskStatus.INPUT_REQUIRED
    assert "completed" == str(TaskStatus.COMPLETED)
    assert TaskStatus.FAILED is TaskStatus("failed")


@pytest.mark.parametrize(
    ("status", "terminal"),
    [(W, False), (I, False), (C, True), (F, True), (X, True)],
)
def test_is_terminal(status: str, terminal: bool) -> None:
    """Completed, failed and cancelled are terminal; working and input_required are not."""
    assert terminal == TaskStatus(status).is_terminal


@pytest.mark.parametrize(("source", "target"), list(EXPECTED_TABLE))
def test_can_transition_to_matches_the_table(source: str, target: str) -> None:
    """can_transition_to answers each of the 25 pairs as the table says."""
    assert EXPECTED_TABLE[source, target] == TaskStatus(source).can_transition_to(
        TaskStatus(target)
    )


@pytest.mark.parametrize(("source", "target"), list(EXPECTED_TABLE))
def test_can_transition_to_accepts_the_string_value(source: str, target: str) -> None:
    """can_transition_to gives the same answer for the target's string value."""
    assert EXPECTED_TABLE[source, target] == TaskStatus(source).can_transition_to(target)


@pytest.mark.parametrize(("source", "target"), ALLOWED)
def test_validate_transition_allows_table_moves(source: str, target: str) -> None:
    """validate_transition returns None for every allowed move, enum or string."""
    assert None is TaskStatus(source).validate_transition("t-1", TaskStatus(target))
    assert None is TaskStatus(source).validate_transition("t-1", target)


@pytest.mark.parametrize(("source", "target"), FORBIDDEN)
@pytest.mark.parametrize("as_string", [False, True], ids=["enum", "str"])
def test_validate_transition_refuses_other_moves(
    source: str, target: str, as_string: bool
) -> None:
    """A forbidden move raises InvalidTransition naming the task and both statuses."""
    other = target if as_string else TaskStatus(target)
    with pytest.raises(InvalidTransition) as info:
        TaskStatus(source).validate_transition("task-42", other)
    error = info.value
    assert "task-42" == error.task_id
    assert source == error.from_status
    assert target == error.to_status
    assert f"from {source} to {target}" in error.message
    assert "task-42" in error.message


@pytest.mark.parametrize(("source", "target"), FORBIDDEN)
def test_suggested_action_set_for_terminal_sources_and_self_moves(
    source: str, target: str
) -> None:
    """Refusals from a terminal status or to the same status suggest what to do instead."""
    with pytest.raises(InvalidTransition) as info:
        TaskStatus(source).validate_transition("t", target)
    suggestion = info.value.suggested_action
    expected = TaskStatus(source).is_terminal or source == target
    assert expected == bool(suggestion)
    assert isinstance(suggestion, str)
    assert suggestion in info.value.message


def test_terminal_suggestion_says_to_create_a_new_task() -> None:
    """Moving a terminal task suggests creating a new task, even for a self-move."""
    for source in (C, F, X):
        for target in (W, I, C, F, X):
            with pytest.raises(InvalidTransition) as info:
                TaskStatus(source).validate_transition("t", target)
            assert "create a new task" in str(info.value.suggested_action)


def test_self_move_suggestion_says_nothing_to_change() -> None:
    """working -> working and input_required -> input_required say nothing changes."""
    for source in (W, I):
        with pytest.raises(InvalidTransition) as info:
            TaskStatus(source).validate_transition("t", source)
        assert "nothing to change" in str(info.value.suggested_action)


@pytest.mark.parametrize("bad", ["done", "WORKING", "", " working", None, 1, object()])
def test_unknown_status_raises_invalid_params(bad: object) -> None:
    """A value that names no status raises InvalidParams, never InvalidTransition."""
    with pytest.raises(InvalidParams) as info:
        TaskStatus.WORKING.validate_transition("t", bad)  # type: ignore[arg-type]
    assert "working" in info.value.message  # the message lists the valid statuses
    with pytest.raises(InvalidParams):
        TaskStatus.WORKING.can_transition_to(bad)  # type: ignore[arg-type]


def test_invalid_transition_is_a_task_error_with_params_code() -> None:
    """InvalidTransition is a TaskError answered with JSON-RPC -32602."""
    with pytest.raises(TaskError) as info:
        TaskStatus.COMPLETED.validate_transition("t", W)
    assert -32602 == info.value.code


@given(source=statuses, target=statuses)
def test_terminal_statuses_never_move(source: TaskStatus, target: TaskStatus) -> None:
    """No move leaves a terminal status, and a move is never to the same status."""
    allowed = source.can_transition_to(target)
    if source.is_terminal or source is target:
        assert False is allowed
    else:
        assert True is allowed


@given(source=statuses, target=statuses)
def test_can_transition_to_agrees_with_validate_transition(
    source: TaskStatus, target: TaskStatus
) -> None:
    """validate_transition raises exactly when can_transition_to says no."""
    try:
        source.validate_transition("t", target)
    except InvalidTransition:
        raised = True
    else:
        raised = False
    assert source.can_transition_to(target) == (not raised)

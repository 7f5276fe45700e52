"""
Hypothesis properties of the two pure rules every backend shares.

The state machine: whatever moves are requested, in whatever order, a store
accepts exactly those ``TaskStatus.can_transition_to`` allows, leaves the task
untouched when it rejects one, and never changes a terminal task.

The variables merge: the result equals a plain-dict model (updates overwrite,
None deletes, other keys stay), the size limit rejects exactly when the
merged map's compact UTF-8 JSON is over it, and a rejected merge changes
nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks_store import (
    InvalidTransition,
    StoreConfig,
    TaskStatus,
    VariableSizeExceeded,
    rules,
)

from .conftest import START, FakeClock
from .strategies import json_values, texts

pytestmark = pytest.mark.timeout(60)

OWNER = "alice"
NOW_MS = int(START * 1000)
TERMINAL = [s.value for s in TaskStatus if s.is_terminal]
NO_RESULT = object()

#: The fixtures give a store factory; a fresh store (and clock) per example.
_per_example = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

status_strings = st.sampled_from([s.value for s in TaskStatus])
#: What a caller may pass as a status: the enum or its string value.
status_args = st.one_of(status_strings, st.sampled_from(list(TaskStatus)))
messages = st.one_of(st.none(), texts)

#: One requested move: a status change, a completion with a result, a cancel,
#: or a result stored without a status change.
moves = st.one_of(
    st.tuples(st.just("update"), status_args, messages),
    st.tuples(
        st.just("complete"),
        st.sampled_from(TERMINAL + [TaskStatus(t) for t in TERMINAL]),
        messages,
        json_values,
    ),
    st.tuples(st.just("cancel"), messages),
    st.tuples(st.just("set_result"), json_values),
)

#: Variable keys: mostly from a small alphabet so updates hit existing keys;
#: non-ASCII ones so bytes and characters differ.
var_keys = st.one_of(st.text(alphabet="abcdé€", min_size=1, max_size=2), texts)
var_maps = st.dictionaries(var_keys, json_values.filter(lambda v: v is not None), max_size=5)
var_updates = st.dictionaries(var_keys, st.one_of(st.none(), json_values), max_size=5)


def _fresh_owner() -> str:
    """A new owner per example: a backend's stores may share one server's data."""
    return f"owner-{uuid.uuid4()}"


def _allowed(source: str, target: str) -> bool:
    """The state machine as the protocol states it, independent of the package."""
    terminal = {"completed", "failed", "cancelled"}
    return source not in terminal and source != target


def _size(variables: Mapping[str, Any]) -> int:
    text = json.dumps(dict(variables), ensure_ascii=False, separators=(",", ":"))
    return len(text.encode("utf-8"))


def _merge(model: dict[str, Any], updates: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(model)
    for key, value in updates.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _snapshot(record: Any) -> tuple[Any, ...]:
    """Everything about a record a caller can observe."""
    return (
        record.task.to_wire(),
        record.owner_id,
        dict(record.variables),
        record.has_result,
        record.result,
        record.expires_at_ms,
    )


# -- the state machine --------------------------------------------------------


@given(source=status_strings, target=status_strings)
def test_can_transition_to_is_the_protocol_table(source: str, target: str) -> None:
    """A status may move to any other status unless it is terminal."""
    assert _allowed(source, target) == TaskStatus(source).can_transition_to(target)


@given(requested=st.lists(st.tuples(status_strings, messages), max_size=12))
def test_rules_transition_accepts_exactly_the_allowed_moves(
    requested: list[tuple[str, str | None]],
) -> None:
    """Applied to a record, any sequence of moves keeps exactly the allowed ones."""
    record = rules.new_record("t-1", OWNER, "tools/call", None, NOW_MS, 5000, 1)
    for step, (target, message) in enumerate(requested, start=1):
        before = record
        source = before.task.status
        if source.can_transition_to(target):
            record = rules.transition(before, TaskStatus(target), message, NOW_MS + step)
            assert TaskStatus(target) == record.task.status
            assert message == record.task.status_message
        else:
            with pytest.raises(InvalidTransition) as caught:
                rules.transition(before, TaskStatus(target), message, NOW_MS + step)
            assert (source.value, target) == (caught.value.from_status, caught.value.to_status)
            assert _snapshot(before) == _snapshot(record)
        if source.is_terminal:
            assert source == record.task.status


def _target(move: tuple[Any, ...]) -> str | None:
    """The status a move asks for; None for ``set_result``."""
    if move[0] == "set_result":
        return None
    return "cancelled" if move[0] == "cancel" else TaskStatus(move[1]).value


def _message(move: tuple[Any, ...]) -> str | None:
    return move[1] if move[0] == "cancel" else move[2]


def _apply(store: Any, task_id: str, owner: str, move: tuple[Any, ...]) -> Any:
    kind = move[0]
    if kind == "update":
        return store.update_status(task_id, owner, move[1], move[2])
    if kind == "complete":
        return store.complete_with_result(task_id, owner, move[1], move[2], move[3])
    if kind == "cancel":
        return store.cancel(task_id, owner, move[1])
    return store.set_result(task_id, owner, move[1])


@settings(_per_example)
@given(moves=st.lists(moves, max_size=12))
def test_store_accepts_exactly_the_allowed_moves(
    make_store: Callable[..., Any], moves: list[tuple[Any, ...]]
) -> None:
    """Through a store, rejected moves change nothing and terminal tasks never change."""
    store = make_store(clock=FakeClock())
    owner = _fresh_owner()
    task_id = store.create(owner, "tools/call").task_id
    status, message, result = "working", None, NO_RESULT
    for move in moves:
        before = store.get(task_id, owner)
        target = _target(move)
        if target is None:  # set_result: allowed until the task ends
            accepted = status not in TERMINAL
        else:
            accepted = _allowed(status, target)
            assert accepted == TaskStatus(status).can_transition_to(target)
        if not accepted:
            with pytest.raises(InvalidTransition):
                _apply(store, task_id, owner, move)
            assert _snapshot(before) == _snapshot(store.get(task_id, owner))
            continue
        returned = _apply(store, task_id, owner, move)
        if target is None:
            result = move[1]
        else:
            status, message = target, _message(move)
        if move[0] == "complete":
            result = move[3]
        record = store.get(task_id, owner)
        if returned is not None:
            assert _snapshot(returned) == _snapshot(record)
        assert (status, message) == (record.task.status.value, record.task.status_message)
        assert (result is not NO_RESULT) == record.has_result
        assert (None if result is NO_RESULT else result) == record.result


def _apply_rule(record: Any, move: tuple[Any, ...]) -> Any:
    kind, later_ms = move[0], NOW_MS + 2
    if kind == "update":
        return rules.transition(record, TaskStatus(move[1]), move[2], later_ms)
    if kind == "complete":
        return rules.complete(record, TaskStatus(move[1]), move[2], "1", later_ms)
    if kind == "cancel":
        return rules.transition(record, TaskStatus.CANCELLED, move[1], later_ms)
    return rules.with_result(record, "1", later_ms)


@given(terminal=st.sampled_from(TERMINAL), later=st.lists(moves, min_size=1, max_size=8))
def test_terminal_record_never_changes_under_any_rule(
    terminal: str, later: list[tuple[Any, ...]]
) -> None:
    """Once a record is terminal, every rule that would change it refuses."""
    record = rules.new_record("t-1", OWNER, "tools/call", None, NOW_MS, 5000, 1)
    record = rules.complete(record, TaskStatus(terminal), "done", '"r"', NOW_MS + 1)
    for move in later:
        with pytest.raises(InvalidTransition):
            _apply_rule(record, move)
    assert TaskStatus(terminal) == record.task.status
    assert "r" == record.result


# -- the variables merge ------------------------------------------------------


@st.composite
def merges(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], int]:
    """(current variables, updates, a size limit near the merged size)."""
    current = draw(var_maps)
    updates = draw(var_updates)
    merged_size = _size(_merge(current, updates))
    limit = draw(
        st.one_of(
            st.integers(merged_size - 3, merged_size + 3),
            st.integers(0, 2 * merged_size + 10),
        ).filter(lambda n: n >= 0)
    )
    return current, updates, limit


@given(case=merges())
def test_rules_merge_matches_dict_model(case: tuple[dict[str, Any], dict[str, Any], int]) -> None:
    """The merge overwrites, deletes on None, keeps the rest, and enforces the byte limit."""
    current, updates, limit = case
    current_json = json.dumps(current, ensure_ascii=False, separators=(",", ":"))
    expected = _merge(current, updates)
    size = _size(expected)
    if size > limit:
        with pytest.raises(VariableSizeExceeded) as caught:
            rules.merge_variables(current_json, updates, limit)
        assert (limit, size) == (caught.value.limit_bytes, caught.value.actual_bytes)
    else:
        merged_json = rules.merge_variables(current_json, updates, limit)
        assert expected == json.loads(merged_json)
        assert size == len(merged_json.encode("utf-8"))
    assert current == json.loads(current_json)


@settings(_per_example)
@given(
    limit=st.integers(0, 120),
    batches=st.lists(var_updates, min_size=1, max_size=8),
)
def test_store_merge_sequence_matches_dict_model(
    make_store: Callable[..., Any], limit: int, batches: list[dict[str, Any]]
) -> None:
    """
    Over many merges the stored map always equals the model's; a refused merge
    raises with the model's sizes and leaves the record exactly as it was.

    One property for the store's merge on every backend; the merge rule
    itself is checked against the same model in
    ``test_rules_merge_matches_dict_model``.
    """
    store = make_store(clock=FakeClock(), config=StoreConfig(max_variable_size_bytes=limit))
    owner = _fresh_owner()
    task_id = store.create(owner, "tools/call").task_id
    model: dict[str, Any] = {}
    for updates in batches:
        candidate = _merge(model, updates)
        size = _size(candidate)
        before = store.get(task_id, owner)
        if size > limit:
            with pytest.raises(VariableSizeExceeded) as caught:
                store.set_variables(task_id, owner, updates)
            assert (limit, size) == (caught.value.limit_bytes, caught.value.actual_bytes)
            assert _snapshot(before) == _snapshot(store.get(task_id, owner))
        else:
            returned = store.set_variables(task_id, owner, updates)
            model = candidate
            assert model == dict(returned.variables)
            assert before.task.status == returned.task.status
        assert model == dict(store.get(task_id, owner).variables)

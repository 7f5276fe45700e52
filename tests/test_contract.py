"""
The store contract (``tasks_store/store/_base.py``), for every backend.

Every test goes through the ``store``/``make_store`` fixtures only, so each
backend listed in ``conftest.BACKENDS`` runs all of it.  Every error path
checks that the failed call changed nothing.
"""

# Asserts read ``expected == actual`` (project convention), which SIM300 calls Yoda.

from __future__ import annotations

import base64
import json
import logging
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tasks_store import (
    AnonymousAccessDenied,
    Expired,
    InvalidCursor,
    InvalidParams,
    InvalidTransition,
    JsonRpcError,
    NotFound,
    NotReady,
    ResourceExhausted,
    StoreConfig,
    TaskError,
    TaskPage,
    TaskRecord,
    TaskSecurityConfig,
    TaskStatus,
    TaskStore,
    TtlExceeded,
    VariableSizeExceeded,
    WaitTimeout,
)
from tasks_store.store._base import foreign_log

from .strategies import variable_updates

ALICE = "alice@example.com"
BOB = "bob@example.com"
METHOD = "tools/call"
START = datetime(2025, 11, 25, 10, 30, tzinfo=timezone.utc)  # conftest's clock start
DEFAULT_TTL_MS = 3_600_000
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TERMINAL = ["completed", "failed", "cancelled"]
STATES = ["working", "input_required", "completed", "failed", "cancelled", "expired"]

Store = Any  # a TaskStore of the backend under test


# -- helpers ------------------------------------------------------------------


def state_of(store: Store) -> tuple[Any, ...]:
    """Everything a caller can observe of the test owners' tasks."""
    return (
        len(store),
        store.list(ALICE, limit=1000),
        store.list(BOB, limit=1000),
    )


def fails_unchanged(store: Store, error: type[TaskError], call: Callable[[], Any]) -> Any:
    """Run *call*, expect *error*, and check the store did not change; return the error."""
    before = state_of(store)
    with pytest.raises(error) as info:
        call()
    assert before == state_of(store)
    return info.value


def task_in(store: Store, clock: Any, state: str, owner: str = ALICE) -> str:
    """Create a task of *owner* and bring it to *state* (or past its TTL); return its id."""
    task_id = store.create(owner, METHOD).task_id
    if state == "input_required":
        store.update_status(task_id, owner, "input_required", "Need a file")
    elif state == "completed":
        store.complete_with_result(task_id, owner, "completed", "Done", {"answer": 42})
    elif state == "failed":
        store.complete_with_result(task_id, owner, "failed", "Boom", JsonRpcError(-32000, "x"))
    elif state == "cancelled":
        store.cancel(task_id, owner, "Stopped")
    elif state == "expired":
        clock.advance(DEFAULT_TTL_MS / 1000)
    else:
        assert "working" == state
    return task_id


#: Every method that takes a task id and an owner, called with valid arguments.
TASK_METHODS: dict[str, Callable[[Store, str, str], Any]] = {
    "get": lambda s, t, o: s.get(t, o),
    "update_status": lambda s, t, o: s.update_status(t, o, "input_required", "msg"),
    "set_variables": lambda s, t, o: s.set_variables(t, o, {"k": 1}),
    "set_result": lambda s, t, o: s.set_result(t, o, {"r": 1}),
    "get_result": lambda s, t, o: s.get_result(t, o),
    "complete_with_result": lambda s, t, o: s.complete_with_result(t, o, "completed", None, 1),
    "cancel": lambda s, t, o: s.cancel(t, o, "stop"),
    "wait": lambda s, t, o: s.wait(t, o, timeout=0),
}

#: The methods that change a task.
MUTATIONS = ["update_status", "set_variables", "set_result", "complete_with_result", "cancel"]


def ttl_store(make_store: Callable[..., Store], **config: Any) -> Store:
    return make_store(config=StoreConfig(**config))


# -- store basics ---------------------------------------------------------------


def test_store_is_a_task_store(store: Store) -> None:
    """Every backend satisfies the TaskStore protocol."""
    assert isinstance(store, TaskStore)


def test_config_and_security_are_the_ones_given(make_store: Callable[..., Store]) -> None:
    """config and security report the settings the store was built with."""
    config = StoreConfig(max_variable_size_bytes=10, default_ttl_ms=5, max_ttl_ms=6)
    security = TaskSecurityConfig(max_tasks_per_owner=2, allow_anonymous=True)
    store = make_store(config=config, security=security)
    assert config == store.config
    assert security == store.security


def test_default_config_and_security(store: Store) -> None:
    """Without settings a store uses the default StoreConfig and TaskSecurityConfig."""
    assert StoreConfig() == store.config
    assert TaskSecurityConfig() == store.security


def test_len_counts_tasks_of_every_owner(store: Store) -> None:
    """len(store) is the number of tasks held, all owners together."""
    assert 0 == len(store)
    store.create(ALICE, METHOD)
    store.create(BOB, METHOD)
    store.create(ALICE, METHOD)
    assert 3 == len(store)


# -- create -------------------------------------------------------------------


def test_create_defaults(store: Store) -> None:
    """A new task is working, with the default TTL, the store's poll interval, no message."""
    record = store.create(ALICE, METHOD)
    assert TaskStatus.WORKING is record.status
    assert TaskStatus.WORKING is record.task.status
    assert ALICE == record.owner_id
    assert METHOD == record.request_method
    assert DEFAULT_TTL_MS == record.task.ttl
    assert 5000 == record.task.poll_interval
    assert None is record.task.status_message
    assert None is record.task.meta
    assert {} == dict(record.variables)
    assert (False, None) == (record.has_result, record.result)
    assert START + timedelta(milliseconds=DEFAULT_TTL_MS) == record.expires_at
    assert record.task_id == record.task.task_id


def test_create_timestamps_come_from_the_clock(store: Store, clock: Any) -> None:
    """created_at == last_updated_at == the injected clock's time, in ms with Z."""
    clock.advance(12.345)
    record = store.create(ALICE, METHOD)
    assert "2025-11-25T10:30:12.345Z" == record.task.created_at
    assert record.task.created_at == record.task.last_updated_at


def test_create_is_stored(store: Store) -> None:
    """The record create returns is the one get returns."""
    record = store.create(ALICE, METHOD)
    assert record == store.get(record.task_id, ALICE)
    assert 1 == len(store)


def test_create_ttl_none_uses_the_default(make_store: Callable[..., Store]) -> None:
    """ttl=None gives the configured default TTL."""
    store = ttl_store(make_store, default_ttl_ms=1234, max_ttl_ms=5000)
    record = store.create(ALICE, METHOD, ttl=None)
    assert 1234 == record.task.ttl
    assert START + timedelta(milliseconds=1234) == record.expires_at


def test_create_unlimited_default_ttl(make_store: Callable[..., Store], clock: Any) -> None:
    """With an unlimited default, a task created without a TTL never expires."""
    store = ttl_store(make_store, default_ttl_ms=None, max_ttl_ms=None)
    record = store.create(ALICE, METHOD)
    assert None is record.task.ttl
    assert None is record.expires_at
    clock.advance(10**9)
    assert 0 == store.cleanup_expired()
    assert TaskStatus.INPUT_REQUIRED is store.update_status(
        record.task_id, ALICE, "input_required"
    ).status


def test_create_explicit_ttl(store: Store) -> None:
    """An explicit TTL is kept as given and sets expires_at."""
    record = store.create(ALICE, METHOD, ttl=60_000)
    assert 60_000 == record.task.ttl
    assert START + timedelta(seconds=60) == record.expires_at


def test_create_ttl_zero(store: Store, clock: Any) -> None:
    """ttl=0 is allowed: the task exists but is expired at once."""
    record = store.create(ALICE, METHOD, ttl=0)
    assert 0 == record.task.ttl
    assert True is record.is_expired(clock())
    assert record == store.get(record.task_id, ALICE)


def test_create_max_ttl_exactly(make_store: Callable[..., Store]) -> None:
    """A TTL equal to max_ttl_ms is accepted as is."""
    store = ttl_store(make_store, default_ttl_ms=1000, max_ttl_ms=90_000)
    assert 90_000 == store.create(ALICE, METHOD, ttl=90_000).task.ttl


def test_create_above_max_ttl_is_refused_not_clamped(make_store: Callable[..., Store]) -> None:
    """A TTL above the ceiling raises TtlExceeded and creates nothing."""
    store = ttl_store(make_store, default_ttl_ms=1000, max_ttl_ms=90_000)
    error = fails_unchanged(store, TtlExceeded, lambda: store.create(ALICE, METHOD, ttl=90_001))
    assert (90_001, 90_000) == (error.requested_ms, error.max_ms)
    assert 0 == len(store)


def test_create_default_max_ttl(store: Store) -> None:
    """The default ceiling is 24 hours: 86_400_000 ms is accepted, one more refused."""
    assert 86_400_000 == store.create(ALICE, METHOD, ttl=86_400_000).task.ttl
    fails_unchanged(store, TtlExceeded, lambda: store.create(ALICE, METHOD, ttl=86_400_001))


def test_create_without_ceiling(make_store: Callable[..., Store]) -> None:
    """Without max_ttl_ms any TTL is accepted."""
    store = ttl_store(make_store, default_ttl_ms=1000, max_ttl_ms=None)
    assert 10**12 == store.create(ALICE, METHOD, ttl=10**12).task.ttl


@pytest.mark.parametrize(
    "ttl",
    [
        pytest.param(True, id="True"),
        pytest.param(False, id="False"),
        pytest.param(1.5, id="float"),
        pytest.param(1000.0, id="integral-float"),
        pytest.param(-1, id="negative"),
        pytest.param("1000", id="str"),
        pytest.param([1000], id="list"),
    ],
)
def test_create_bad_ttl_is_invalid_params(store: Store, ttl: Any) -> None:
    """A TTL that is not an int >= 0 (bools included) raises InvalidParams."""
    error = fails_unchanged(store, InvalidParams, lambda: store.create(ALICE, METHOD, ttl=ttl))
    assert "ttl" in error.message


@pytest.mark.parametrize("owner", ["", "local"])
def test_create_anonymous_is_denied(store: Store, owner: str) -> None:
    """The anonymous owners "" and "local" may not create tasks by default."""
    fails_unchanged(store, AnonymousAccessDenied, lambda: store.create(owner, METHOD))


@pytest.mark.parametrize("owner", ["", "local"])
def test_create_anonymous_when_allowed(make_store: Callable[..., Store], owner: str) -> None:
    """With allow_anonymous, "" and "local" are owners like any other."""
    store = make_store(security=TaskSecurityConfig(allow_anonymous=True))
    record = store.create(owner, METHOD)
    assert owner == record.owner_id
    assert record == store.get(record.task_id, owner)
    assert (record,) == store.list(owner).tasks


def test_anonymous_tasks_are_separate_owners(make_store: Callable[..., Store]) -> None:
    """"" and "local" do not see each other's tasks."""
    store = make_store(security=TaskSecurityConfig(allow_anonymous=True))
    record = store.create("", METHOD)
    with pytest.raises(NotFound):
        store.get(record.task_id, "local")
    assert () == store.list("local").tasks


@pytest.mark.parametrize("method", [None, "", 5])
def test_create_bad_request_method(store: Store, method: Any) -> None:
    """request_method must be a non-empty string."""
    fails_unchanged(store, InvalidParams, lambda: store.create(ALICE, method))


@pytest.mark.parametrize("owner", [None, 5, b"alice"])
def test_create_bad_owner_type(store: Store, owner: Any) -> None:
    """An owner id that is not a string raises InvalidParams."""
    fails_unchanged(store, InvalidParams, lambda: store.create(owner, METHOD))


def test_create_quota(make_store: Callable[..., Store]) -> None:
    """An owner holding max_tasks_per_owner live tasks gets ResourceExhausted."""
    store = make_store(security=TaskSecurityConfig(max_tasks_per_owner=3))
    for _ in range(3):
        store.create(ALICE, METHOD)
    error = fails_unchanged(store, ResourceExhausted, lambda: store.create(ALICE, METHOD))
    assert -32603 == error.code
    assert 3 == len(store)


def test_quota_is_per_owner(make_store: Callable[..., Store]) -> None:
    """One owner at the quota does not stop another from creating."""
    store = make_store(security=TaskSecurityConfig(max_tasks_per_owner=2))
    store.create(ALICE, METHOD)
    store.create(ALICE, METHOD)
    assert BOB == store.create(BOB, METHOD).owner_id
    assert BOB == store.create(BOB, METHOD).owner_id


def test_quota_counts_finished_tasks_until_they_expire(
    make_store: Callable[..., Store], clock: Any
) -> None:
    """Terminal tasks still count against the quota while they are unexpired."""
    store = make_store(security=TaskSecurityConfig(max_tasks_per_owner=1))
    task_id = store.create(ALICE, METHOD, ttl=1000).task_id
    store.cancel(task_id, ALICE)
    fails_unchanged(store, ResourceExhausted, lambda: store.create(ALICE, METHOD))
    clock.advance(1)
    assert ALICE == store.create(ALICE, METHOD).owner_id


def test_quota_ignores_expired_tasks(make_store: Callable[..., Store], clock: Any) -> None:
    """Expired tasks do not count, even before cleanup removes them."""
    store = make_store(security=TaskSecurityConfig(max_tasks_per_owner=3))
    for _ in range(3):
        store.create(ALICE, METHOD, ttl=1000)
    fails_unchanged(store, ResourceExhausted, lambda: store.create(ALICE, METHOD))
    clock.advance(0.999)
    fails_unchanged(store, ResourceExhausted, lambda: store.create(ALICE, METHOD))
    clock.advance(0.001)
    for _ in range(3):
        store.create(ALICE, METHOD)
    assert 6 == len(store)  # the expired three are still held
    fails_unchanged(store, ResourceExhausted, lambda: store.create(ALICE, METHOD))


def test_quota_ignores_zero_ttl_tasks(make_store: Callable[..., Store]) -> None:
    """A task created with ttl=0 is expired at once and never counts."""
    store = make_store(security=TaskSecurityConfig(max_tasks_per_owner=1))
    store.create(ALICE, METHOD, ttl=0)
    store.create(ALICE, METHOD, ttl=0)
    assert ALICE == store.create(ALICE, METHOD).owner_id
    assert 3 == len(store)


def test_quota_zero_refuses_every_create(make_store: Callable[..., Store]) -> None:
    """max_tasks_per_owner=0 refuses every task."""
    store = make_store(security=TaskSecurityConfig(max_tasks_per_owner=0))
    fails_unchanged(store, ResourceExhausted, lambda: store.create(ALICE, METHOD))


def test_task_id_is_rfc_4122_uuid4(store: Store) -> None:
    """Task ids are random UUIDs, version 4, in canonical lowercase RFC 4122 form."""
    task_id = store.create(ALICE, METHOD).task_id
    assert UUID4.match(task_id), task_id
    parsed = uuid.UUID(task_id)
    assert (4, uuid.RFC_4122, task_id) == (parsed.version, parsed.variant, str(parsed))


def test_task_ids_are_unique(make_store: Callable[..., Store]) -> None:
    """Every task gets a different id."""
    store = make_store(security=TaskSecurityConfig(max_tasks_per_owner=300))
    ids = {store.create(ALICE, METHOD).task_id for _ in range(300)}
    assert 300 == len(ids)
    assert 300 == len(store)


def test_poll_interval_is_the_stores(make_store: Callable[..., Store]) -> None:
    """New tasks carry the store's poll_interval_ms as pollInterval."""
    store = make_store(poll_interval_ms=1234)
    assert 1234 == store.create(ALICE, METHOD).task.poll_interval


# -- get ------------------------------------------------------------------------


def test_get_unknown_is_not_found(store: Store) -> None:
    """An id the store never issued raises NotFound naming it."""
    error = fails_unchanged(store, NotFound, lambda: store.get("no-such-task", ALICE))
    assert "no-such-task" == error.task_id


def test_get_returns_expired_task_until_cleanup(store: Store, clock: Any) -> None:
    """An expired task not yet cleaned up is still returned; the caller checks is_expired."""
    record = store.create(ALICE, METHOD, ttl=1000)
    clock.advance(5)
    got = store.get(record.task_id, ALICE)
    assert record == got
    assert True is got.is_expired(clock())


# -- update_status --------------------------------------------------------------


@pytest.mark.parametrize("as_string", [False, True], ids=["enum", "str"])
def test_update_status(store: Store, clock: Any, as_string: bool) -> None:
    """update_status moves the task, stamps last_updated_at and keeps the rest."""
    record = store.create(ALICE, METHOD)
    clock.advance(2)
    target: Any = "input_required" if as_string else TaskStatus.INPUT_REQUIRED
    new = store.update_status(record.task_id, ALICE, target, "Need a file")
    assert TaskStatus.INPUT_REQUIRED is new.status
    assert "Need a file" == new.task.status_message
    assert "2025-11-25T10:30:02.000Z" == new.task.last_updated_at
    assert record.task.created_at == new.task.created_at
    assert (record.task_id, record.task.ttl, record.expires_at) == (
        new.task_id,
        new.task.ttl,
        new.expires_at,
    )
    assert new == store.get(record.task_id, ALICE)


def test_update_status_back_and_forth(store: Store) -> None:
    """working and input_required can alternate before the task ends."""
    task_id = store.create(ALICE, METHOD).task_id
    for status in ["input_required", "working", "input_required", "completed"]:
        assert TaskStatus(status) is store.update_status(task_id, ALICE, status).status


@pytest.mark.parametrize("target", TERMINAL)
def test_update_status_to_terminal(store: Store, target: str) -> None:
    """update_status can end a task with any terminal status; it then has no result."""
    task_id = store.create(ALICE, METHOD).task_id
    assert TaskStatus(target) is store.update_status(task_id, ALICE, target).status
    assert False is store.get(task_id, ALICE).has_result


@pytest.mark.parametrize(
    ("state", "target"),
    [
        ("working", "working"),
        ("input_required", "input_required"),
        *[(s, t) for s in TERMINAL for t in ["working", "input_required", *TERMINAL]],
    ],
)
def test_update_status_forbidden_move(store: Store, clock: Any, state: str, target: str) -> None:
    """A move the state machine forbids raises InvalidTransition with a suggestion."""
    task_id = task_in(store, clock, state)
    error = fails_unchanged(
        store, InvalidTransition, lambda: store.update_status(task_id, ALICE, target)
    )
    assert (task_id, state, target) == (
        error.task_id,
        str(error.from_status),
        str(error.to_status),
    )
    assert error.suggested_action


@pytest.mark.parametrize("status", ["done", "WORKING", "", None, 3])
def test_update_status_unknown_status(store: Store, status: Any) -> None:
    """A value that names no status raises InvalidParams."""
    task_id = store.create(ALICE, METHOD).task_id
    fails_unchanged(store, InvalidParams, lambda: store.update_status(task_id, ALICE, status))


@pytest.mark.parametrize("message", [5, b"msg", ["m"]])
def test_update_status_bad_message_type(store: Store, message: Any) -> None:
    """A status_message that is neither str nor None raises InvalidParams."""
    task_id = store.create(ALICE, METHOD).task_id
    fails_unchanged(
        store,
        InvalidParams,
        lambda: store.update_status(task_id, ALICE, "input_required", message),
    )


def test_status_message_replaced_and_cleared(store: Store) -> None:
    """Each status_message replaces the previous one; None clears it."""
    task_id = store.create(ALICE, METHOD).task_id
    messages = [
        store.update_status(task_id, ALICE, "input_required", "first").task.status_message,
        store.update_status(task_id, ALICE, "working", "second").task.status_message,
        store.update_status(task_id, ALICE, "input_required").task.status_message,
        store.get(task_id, ALICE).task.status_message,
        store.update_status(task_id, ALICE, "working", "").task.status_message,
    ]
    assert ["first", "second", None, None, ""] == messages


# -- cancel ---------------------------------------------------------------------


@pytest.mark.parametrize("state", ["working", "input_required"])
def test_cancel(store: Store, clock: Any, state: str) -> None:
    """cancel ends a working or input_required task with its message."""
    task_id = task_in(store, clock, state)
    record = store.cancel(task_id, ALICE, "User asked")
    assert (TaskStatus.CANCELLED, "User asked") == (record.status, record.task.status_message)
    assert record == store.get(task_id, ALICE)


def test_cancel_without_message_clears_it(store: Store, clock: Any) -> None:
    """cancel with no message leaves the task without one."""
    task_id = task_in(store, clock, "input_required")
    assert None is store.cancel(task_id, ALICE).task.status_message


@pytest.mark.parametrize("state", TERMINAL)
def test_cancel_terminal_task(store: Store, clock: Any, state: str) -> None:
    """Cancelling a task that has ended raises InvalidTransition."""
    task_id = task_in(store, clock, state)
    error = fails_unchanged(store, InvalidTransition, lambda: store.cancel(task_id, ALICE))
    assert (state, "cancelled") == (str(error.from_status), str(error.to_status))
    assert error.suggested_action


# -- set_result / get_result ----------------------------------------------------


@pytest.mark.parametrize("state", ["working", "input_required"])
def test_set_result_keeps_the_status(store: Store, clock: Any, state: str) -> None:
    """set_result stores a result on a running task without changing its status."""
    task_id = task_in(store, clock, state)
    assert None is store.set_result(task_id, ALICE, {"partial": True})
    record = store.get(task_id, ALICE)
    assert (TaskStatus(state), True, {"partial": True}) == (
        record.status,
        record.has_result,
        record.result,
    )


def test_set_result_then_finish(store: Store) -> None:
    """A result set while running is what get_result returns once the task completes."""
    task_id = store.create(ALICE, METHOD).task_id
    store.set_result(task_id, ALICE, {"content": [{"type": "text", "text": "hi"}]})
    error = fails_unchanged(store, NotReady, lambda: store.get_result(task_id, ALICE))
    assert (task_id, "working") == (error.task_id, str(error.current_status))
    store.update_status(task_id, ALICE, "completed")
    assert {"content": [{"type": "text", "text": "hi"}]} == store.get_result(task_id, ALICE)


def test_set_result_replaces_the_previous_one(store: Store) -> None:
    """A second set_result replaces the first."""
    task_id = store.create(ALICE, METHOD).task_id
    store.set_result(task_id, ALICE, [1])
    store.set_result(task_id, ALICE, "second")
    assert "second" == store.get(task_id, ALICE).result


@pytest.mark.parametrize("state", TERMINAL)
def test_set_result_on_terminal_task(store: Store, clock: Any, state: str) -> None:
    """A terminal task's result is final: set_result raises InvalidTransition."""
    task_id = task_in(store, clock, state)
    fails_unchanged(store, InvalidTransition, lambda: store.set_result(task_id, ALICE, "late"))


@pytest.mark.parametrize(
    "result",
    [
        pytest.param({1: "x"}, id="int-key"),
        pytest.param(float("nan"), id="nan"),
        pytest.param({"a": {1, 2}}, id="set"),
        pytest.param(object(), id="object"),
    ],
)
def test_set_result_non_json(store: Store, result: Any) -> None:
    """A result JSON cannot encode raises InvalidParams."""
    task_id = store.create(ALICE, METHOD).task_id
    fails_unchanged(store, InvalidParams, lambda: store.set_result(task_id, ALICE, result))


def test_jsonrpc_error_result_round_trips(store: Store) -> None:
    """A JsonRpcError result comes back from get_result as an equal JsonRpcError."""
    error = JsonRpcError(-32000, "Tool failed", {"detail": "disk full"})
    first = store.create(ALICE, METHOD).task_id
    store.complete_with_result(first, ALICE, "failed", "Boom", error)
    assert error == store.get_result(first, ALICE)
    second = store.create(ALICE, METHOD).task_id
    store.set_result(second, ALICE, error)
    store.update_status(second, ALICE, "failed")
    assert error == store.get_result(second, ALICE)


@pytest.mark.parametrize("state", ["working", "input_required"])
def test_get_result_not_ready_while_running(store: Store, clock: Any, state: str) -> None:
    """get_result on a running task raises NotReady with its status."""
    task_id = task_in(store, clock, state)
    error = fails_unchanged(store, NotReady, lambda: store.get_result(task_id, ALICE))
    assert (task_id, state) == (error.task_id, str(error.current_status))


def test_get_result_not_ready_when_ended_without_one(store: Store, clock: Any) -> None:
    """A task that ended without a result raises NotReady."""
    task_id = task_in(store, clock, "cancelled")
    error = fails_unchanged(store, NotReady, lambda: store.get_result(task_id, ALICE))
    assert "cancelled" == str(error.current_status)


def test_get_result_of_expired_running_task(store: Store, clock: Any) -> None:
    """A task that expired before it ended raises Expired from get_result."""
    task_id = task_in(store, clock, "expired")
    fails_unchanged(store, Expired, lambda: store.get_result(task_id, ALICE))


def test_get_result_after_expiry_of_finished_task(store: Store, clock: Any) -> None:
    """A task that ended with a result before expiring still gives its result until removed."""
    task_id = task_in(store, clock, "completed")
    clock.advance(DEFAULT_TTL_MS / 1000)
    assert {"answer": 42} == store.get_result(task_id, ALICE)


def test_result_null(store: Store) -> None:
    """None is a valid result: the task has one, and get_result returns None."""
    task_id = store.create(ALICE, METHOD).task_id
    record = store.complete_with_result(task_id, ALICE, "completed", None, None)
    assert True is record.has_result
    assert None is store.get_result(task_id, ALICE)


# -- complete_with_result -------------------------------------------------------


@pytest.mark.parametrize("target", TERMINAL)
@pytest.mark.parametrize("as_string", [False, True], ids=["enum", "str"])
@pytest.mark.parametrize("state", ["working", "input_required"])
def test_complete_with_result(
    store: Store, clock: Any, target: str, as_string: bool, state: str
) -> None:
    """complete_with_result sets the terminal status, message and result in one step."""
    task_id = task_in(store, clock, state)
    clock.advance(3)
    status: Any = target if as_string else TaskStatus(target)
    record = store.complete_with_result(task_id, ALICE, status, "Finished", {"n": [1, 2]})
    assert (TaskStatus(target), "Finished", {"n": [1, 2]}) == (
        record.status,
        record.task.status_message,
        record.result,
    )
    assert "2025-11-25T10:30:03.000Z" == record.task.last_updated_at
    assert record == store.get(task_id, ALICE)
    assert {"n": [1, 2]} == store.get_result(task_id, ALICE)


@pytest.mark.parametrize("status", ["working", "input_required", TaskStatus.WORKING])
def test_complete_with_non_terminal_status(store: Store, status: Any) -> None:
    """complete_with_result with a non-terminal status raises InvalidParams."""
    task_id = store.create(ALICE, METHOD).task_id
    fails_unchanged(
        store,
        InvalidParams,
        lambda: store.complete_with_result(task_id, ALICE, status, None, 1),
    )


@pytest.mark.parametrize("status", ["done", None, 1])
def test_complete_with_unknown_status(store: Store, status: Any) -> None:
    """complete_with_result with a value that names no status raises InvalidParams."""
    task_id = store.create(ALICE, METHOD).task_id
    fails_unchanged(
        store,
        InvalidParams,
        lambda: store.complete_with_result(task_id, ALICE, status, None, 1),
    )


@pytest.mark.parametrize("state", TERMINAL)
@pytest.mark.parametrize("target", TERMINAL)
def test_complete_terminal_task(store: Store, clock: Any, state: str, target: str) -> None:
    """A task that has ended cannot be completed again: InvalidTransition."""
    task_id = task_in(store, clock, state)
    fails_unchanged(
        store,
        InvalidTransition,
        lambda: store.complete_with_result(task_id, ALICE, target, "again", {"x": 2}),
    )


def test_complete_with_non_json_result(store: Store) -> None:
    """A result JSON cannot encode raises InvalidParams and the task keeps running."""
    task_id = store.create(ALICE, METHOD).task_id
    fails_unchanged(
        store,
        InvalidParams,
        lambda: store.complete_with_result(task_id, ALICE, "completed", None, {"x": {1}}),
    )
    assert TaskStatus.WORKING is store.get(task_id, ALICE).status


def test_complete_replaces_an_earlier_result(store: Store) -> None:
    """complete_with_result's result wins over one set earlier."""
    task_id = store.create(ALICE, METHOD).task_id
    store.set_result(task_id, ALICE, "partial")
    store.complete_with_result(task_id, ALICE, "completed", None, "final")
    assert "final" == store.get_result(task_id, ALICE)


# -- set_variables --------------------------------------------------------------


def test_set_variables_merge(store: Store) -> None:
    """New keys are added, existing ones overwritten, None deletes, unknown None is a no-op."""
    task_id = store.create(ALICE, METHOD).task_id
    record = store.set_variables(task_id, ALICE, {"a": 1, "b": [1, 2], "c": {"d": "e"}})
    assert {"a": 1, "b": [1, 2], "c": {"d": "e"}} == dict(record.variables)
    record = store.set_variables(task_id, ALICE, {"a": "one", "b": None, "z": None, "n": 0})
    assert {"a": "one", "c": {"d": "e"}, "n": 0} == dict(record.variables)
    assert record == store.get(task_id, ALICE)


def test_set_variables_keeps_status_and_result(store: Store, clock: Any) -> None:
    """set_variables changes only the variables."""
    task_id = task_in(store, clock, "input_required")
    store.set_result(task_id, ALICE, [1])
    record = store.set_variables(task_id, ALICE, {"k": "v"})
    assert (TaskStatus.INPUT_REQUIRED, "Need a file", [1]) == (
        record.status,
        record.task.status_message,
        record.result,
    )


def test_set_variables_delete_everything(store: Store) -> None:
    """Deleting every key leaves no variables, and the wire task is unchanged."""
    task_id = store.create(ALICE, METHOD).task_id
    store.set_variables(task_id, ALICE, {"a": 1})
    record = store.set_variables(task_id, ALICE, {"a": None})
    assert {} == dict(record.variables)
    assert record.task == record.to_wire_task_with_variables()


def test_set_variables_empty_update(store: Store) -> None:
    """An empty update keeps the variables as they were."""
    task_id = store.create(ALICE, METHOD).task_id
    store.set_variables(task_id, ALICE, {"a": 1})
    assert {"a": 1} == dict(store.set_variables(task_id, ALICE, {}).variables)


def test_set_variables_values_are_json(store: Store) -> None:
    """Variables are stored as JSON: a tuple reads back as a list."""
    task_id = store.create(ALICE, METHOD).task_id
    assert {"t": [1, "x"]} == dict(store.set_variables(task_id, ALICE, {"t": (1, "x")}).variables)


def test_set_variables_shown_in_wire_meta(store: Store) -> None:
    """to_wire_task_with_variables puts the variables into _meta."""
    task_id = store.create(ALICE, METHOD).task_id
    record = store.set_variables(task_id, ALICE, {"progress": 0.5})
    assert {"progress": 0.5} == record.to_wire_task_with_variables().to_wire()["_meta"]


def test_set_variables_size_limit_is_exact(make_store: Callable[..., Store]) -> None:
    """The merged map may take exactly max_variable_size_bytes of compact UTF-8 JSON."""
    # '{"k":"é€😀"}' is 17 bytes: 6 ASCII + 2 + 3 + 4 + 2 ASCII.
    store = make_store(config=StoreConfig(max_variable_size_bytes=17))
    task_id = store.create(ALICE, METHOD).task_id
    assert {"k": "é€😀"} == dict(store.set_variables(task_id, ALICE, {"k": "é€😀"}).variables)


def test_set_variables_size_exceeded_counts_utf8_bytes(make_store: Callable[..., Store]) -> None:
    """One byte over the limit raises VariableSizeExceeded with the exact UTF-8 byte count."""
    store = make_store(config=StoreConfig(max_variable_size_bytes=16))
    task_id = store.create(ALICE, METHOD).task_id
    error = fails_unchanged(
        store,
        VariableSizeExceeded,
        lambda: store.set_variables(task_id, ALICE, {"k": "é€😀"}),
    )
    assert (16, 17) == (error.limit_bytes, error.actual_bytes)


def test_set_variables_size_is_of_the_merged_map(make_store: Callable[..., Store]) -> None:
    """The limit applies to old and new variables together; deleting frees room."""
    # '{"a":"xxxxxxxxxx","b":"ü"}' is 27 bytes.
    store = make_store(config=StoreConfig(max_variable_size_bytes=26))
    task_id = store.create(ALICE, METHOD).task_id
    store.set_variables(task_id, ALICE, {"a": "x" * 10})
    error = fails_unchanged(
        store, VariableSizeExceeded, lambda: store.set_variables(task_id, ALICE, {"b": "ü"})
    )
    assert (26, 27) == (error.limit_bytes, error.actual_bytes)
    record = store.set_variables(task_id, ALICE, {"a": None, "b": "ü"})
    assert {"b": "ü"} == dict(record.variables)


def test_set_variables_zero_limit(make_store: Callable[..., Store]) -> None:
    """With a limit of 0 bytes even one variable is too large ({} itself is 2 bytes)."""
    store = make_store(config=StoreConfig(max_variable_size_bytes=0))
    task_id = store.create(ALICE, METHOD).task_id
    error = fails_unchanged(
        store, VariableSizeExceeded, lambda: store.set_variables(task_id, ALICE, {"a": 1})
    )
    assert (0, 7) == (error.limit_bytes, error.actual_bytes)


@pytest.mark.parametrize(
    "variables",
    [
        pytest.param({1: "x"}, id="int-key"),
        pytest.param({None: "x"}, id="none-key"),
        pytest.param({"ok": 1, ("t",): 2}, id="tuple-key"),
        pytest.param({"a": {2: "nested"}}, id="nested-int-key"),
        pytest.param({"a": {1, 2}}, id="set-value"),
        pytest.param({"a": b"bytes"}, id="bytes-value"),
        pytest.param({"a": object()}, id="object-value"),
        pytest.param({"a": float("nan")}, id="nan-value"),
        pytest.param({"a": [float("inf")]}, id="inf-value"),
        pytest.param({"a": "\ud800"}, id="lone-surrogate"),
        pytest.param([("a", 1)], id="not-a-mapping"),
        pytest.param(None, id="none"),
    ],
)
def test_set_variables_invalid(store: Store, variables: Any) -> None:
    """Non-string keys, values JSON cannot encode, or a non-mapping raise InvalidParams."""
    task_id = store.create(ALICE, METHOD).task_id
    store.set_variables(task_id, ALICE, {"kept": True})
    fails_unchanged(store, InvalidParams, lambda: store.set_variables(task_id, ALICE, variables))
    assert {"kept": True} == dict(store.get(task_id, ALICE).variables)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(batches=variable_updates.flatmap(lambda first: variable_updates.map(lambda s: [first, s])))
def test_set_variables_matches_a_dict_model(
    make_store: Callable[..., Store], batches: list[dict[str, Any]]
) -> None:
    """Any sequence of updates leaves the variables a plain dict merge would."""
    store = make_store()
    owner = f"owner-{uuid.uuid4()}"  # backends may share storage: a new owner per example
    task_id = store.create(owner, METHOD).task_id
    model: dict[str, Any] = {}
    for batch in batches:
        for key, value in batch.items():
            if value is None:
                model.pop(key, None)
            else:
                model[key] = value
        record = store.set_variables(task_id, owner, batch)
        assert json.loads(json.dumps(model)) == dict(record.variables)


# -- expiry and check order -------------------------------------------------------


@pytest.mark.parametrize("method", MUTATIONS)
def test_mutating_an_expired_task_raises_expired(store: Store, clock: Any, method: str) -> None:
    """Every mutation of an expired task raises Expired with the expiry time."""
    record = store.create(ALICE, METHOD, ttl=60_000)
    clock.advance(60)
    call = TASK_METHODS[method]
    error = fails_unchanged(store, Expired, lambda: call(store, record.task_id, ALICE))
    assert (record.task_id, record.expires_at) == (error.task_id, error.expired_at)


@pytest.mark.parametrize("method", MUTATIONS)
def test_task_changes_until_the_last_millisecond(store: Store, clock: Any, method: str) -> None:
    """One millisecond before expiry a task can still change."""
    task_id = store.create(ALICE, METHOD, ttl=60_000).task_id
    clock.advance(59.999)
    TASK_METHODS[method](store, task_id, ALICE)
    assert 1 == len(store)


@pytest.mark.parametrize(
    ("state", "method"),
    [(s, m) for s in TERMINAL for m in ["update_status", "set_result", "cancel",
                                         "complete_with_result"]],
)
def test_expiry_is_checked_before_transition_rules(
    store: Store, clock: Any, state: str, method: str
) -> None:
    """A terminal task past its TTL reports Expired rather than InvalidTransition."""
    task_id = task_in(store, clock, state)
    clock.advance(DEFAULT_TTL_MS / 1000)
    fails_unchanged(store, Expired, lambda: TASK_METHODS[method](store, task_id, ALICE))


def test_wait_on_expired_running_task(store: Store, clock: Any) -> None:
    """wait on a task that expired before it ended raises Expired."""
    task_id = task_in(store, clock, "expired")
    fails_unchanged(store, Expired, lambda: store.wait(task_id, ALICE, timeout=0))


# -- owner isolation --------------------------------------------------------------


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("method", list(TASK_METHODS))
def test_foreign_caller_gets_not_found_whatever_the_state(
    store: Store, clock: Any, method: str, state: str
) -> None:
    """Another owner's task is NotFound for every method, whatever state it is in."""
    task_id = task_in(store, clock, state)
    error = fails_unchanged(store, NotFound, lambda: TASK_METHODS[method](store, task_id, BOB))
    assert task_id == error.task_id


@pytest.mark.parametrize("method", list(TASK_METHODS))
def test_foreign_not_found_equals_unknown_not_found(
    store: Store, clock: Any, method: str
) -> None:
    """A foreign id raises the very NotFound an unknown id does: same message, same fields."""
    task_id = store.create(ALICE, METHOD, ttl=1000).task_id
    with pytest.raises(NotFound) as foreign:
        TASK_METHODS[method](store, task_id, BOB)
    clock.advance(1)
    assert 1 == store.cleanup_expired()
    with pytest.raises(NotFound) as unknown:
        TASK_METHODS[method](store, task_id, BOB)
    assert type(unknown.value) is type(foreign.value)
    assert unknown.value.message == foreign.value.message
    assert unknown.value.args == foreign.value.args
    assert unknown.value.task_id == foreign.value.task_id
    assert unknown.value.to_jsonrpc_error() == foreign.value.to_jsonrpc_error()
    assert vars(unknown.value) == vars(foreign.value)


@pytest.mark.parametrize("method", list(TASK_METHODS))
def test_foreign_not_found_matches_a_never_issued_id(store: Store, method: str) -> None:
    """A foreign id and an id never issued get NotFound alike, up to the id itself."""
    task_id = store.create(ALICE, METHOD).task_id
    never = str(uuid.UUID(int=0x1234, version=4))
    with pytest.raises(NotFound) as foreign:
        TASK_METHODS[method](store, task_id, BOB)
    with pytest.raises(NotFound) as unknown:
        TASK_METHODS[method](store, never, BOB)
    assert unknown.value.message.replace(never, task_id) == foreign.value.message
    unknown_wire = json.dumps(unknown.value.to_jsonrpc_error()).replace(never, task_id)
    assert unknown_wire == json.dumps(foreign.value.to_jsonrpc_error())


def test_list_shows_only_own_tasks(store: Store) -> None:
    """list returns the caller's tasks and none of anyone else's."""
    mine = {store.create(ALICE, METHOD).task_id for _ in range(3)}
    theirs = {store.create(BOB, METHOD).task_id for _ in range(2)}
    assert mine == {r.task_id for r in store.list(ALICE).tasks}
    assert theirs == {r.task_id for r in store.list(BOB).tasks}
    assert () == store.list("carol@example.com").tasks
    assert {ALICE} == {r.owner_id for r in store.list(ALICE).tasks}


def test_owner_ids_are_compared_exactly(store: Store) -> None:
    """Owner ids differing only by case or whitespace are different owners."""
    task_id = store.create(ALICE, METHOD).task_id
    for other in (ALICE.upper(), f" {ALICE}", f"{ALICE} "):
        with pytest.raises(NotFound):
            store.get(task_id, other)
        assert () == store.list(other).tasks


def test_foreign_access_logs_a_warning_naming_both_owners(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A foreign access is logged at WARNING on "tasks_store" with the caller and the owner."""
    task_id = store.create(ALICE, METHOD).task_id
    caplog.set_level(logging.INFO, logger="tasks_store")
    for method in TASK_METHODS.values():
        # The line is written off the request path (issue 13): flush what earlier
        # tests queued before clearing, and this call's line after it.
        assert foreign_log.flush()
        caplog.clear()
        with pytest.raises(NotFound):
            method(store, task_id, BOB)
        assert foreign_log.flush()
        warnings = [
            r for r in caplog.records
            if r.levelno == logging.WARNING and task_id in r.getMessage()
        ]  # fmt: skip
        assert 1 == len(warnings), [r.getMessage() for r in caplog.records]
        (warning,) = warnings
        assert "tasks_store" == warning.name
        for part in (task_id, ALICE, BOB):
            assert part in warning.getMessage()


@pytest.mark.parametrize(
    ("action", "old", "new"),
    [
        ("update_status", "working", "input_required"),
        ("cancel", "working", "cancelled"),
        ("complete_with_result", "working", "completed"),
    ],
)
def test_status_changes_are_logged_at_info(
    store: Store, caplog: pytest.LogCaptureFixture, action: str, old: str, new: str
) -> None:
    """Each status change or completion is logged at INFO with task id, owner and statuses."""
    task_id = store.create(ALICE, METHOD).task_id
    caplog.set_level(logging.INFO, logger="tasks_store")
    caplog.clear()
    TASK_METHODS[action](store, task_id, ALICE)
    changes = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.INFO and r.name == "tasks_store" and task_id in r.getMessage()
    ]
    assert 1 == len(changes), changes
    for part in (ALICE, old, new):
        assert part in changes[0]


def test_failed_calls_do_not_log_status_changes(
    store: Store, clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused transition logs no status change."""
    task_id = task_in(store, clock, "completed")
    caplog.set_level(logging.INFO, logger="tasks_store")
    caplog.clear()
    with pytest.raises(InvalidTransition):
        store.update_status(task_id, ALICE, "working")
    assert [] == [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]


# -- list -------------------------------------------------------------------------


def test_list_empty(store: Store) -> None:
    """An owner without tasks gets an empty page and no cursor."""
    assert TaskPage((), None) == store.list(ALICE)


def test_list_newest_first(store: Store, clock: Any) -> None:
    """list orders tasks by creation time, newest first."""
    ids = []
    for _ in range(4):
        ids.append(store.create(ALICE, METHOD).task_id)
        clock.advance(1)
    assert ids[::-1] == [r.task_id for r in store.list(ALICE).tasks]


def test_list_ties_go_to_the_later_created(store: Store, clock: Any) -> None:
    """Tasks created in the same millisecond list later-created first."""
    early = store.create(ALICE, METHOD).task_id
    clock.advance(1)
    same = [store.create(ALICE, METHOD).task_id for _ in range(5)]
    clock.advance(1)
    late = store.create(ALICE, METHOD).task_id
    assert [late, *same[::-1], early] == [r.task_id for r in store.list(ALICE).tasks]


def test_list_order_ignores_updates(store: Store, clock: Any) -> None:
    """Updating a task does not move it in the list."""
    first = store.create(ALICE, METHOD).task_id
    clock.advance(1)
    second = store.create(ALICE, METHOD).task_id
    clock.advance(1)
    store.update_status(first, ALICE, "input_required")
    page = store.list(ALICE)
    assert [second, first] == [r.task_id for r in page.tasks]
    assert TaskStatus.INPUT_REQUIRED is page.tasks[1].status


def test_list_records_are_current(store: Store) -> None:
    """list returns the same records get does."""
    task_id = store.create(ALICE, METHOD).task_id
    store.set_variables(task_id, ALICE, {"a": 1})
    assert (store.get(task_id, ALICE),) == store.list(ALICE).tasks


def test_list_includes_expired_tasks(store: Store, clock: Any) -> None:
    """Expired tasks not yet removed are listed."""
    task_id = store.create(ALICE, METHOD, ttl=10).task_id
    clock.advance(1)
    assert [task_id] == [r.task_id for r in store.list(ALICE).tasks]


def test_list_default_limit_is_50(store: Store, clock: Any) -> None:
    """Without a limit, list returns 50 tasks and a cursor for the rest."""
    ids = []
    for _ in range(60):
        ids.append(store.create(ALICE, METHOD).task_id)
        clock.advance(0.001)
    first = store.list(ALICE)
    assert ids[::-1][:50] == [r.task_id for r in first.tasks]
    assert first.next_cursor is not None
    rest = store.list(ALICE, cursor=first.next_cursor)
    assert (ids[::-1][50:], None) == ([r.task_id for r in rest.tasks], rest.next_cursor)


@pytest.mark.parametrize("limit", [1, 1000])
def test_list_limit_bounds_accepted(store: Store, limit: int) -> None:
    """Limits 1 and 1000 are accepted."""
    ids = {store.create(ALICE, METHOD).task_id for _ in range(2)}
    page = store.list(ALICE, limit=limit)
    assert min(limit, 2) == len(page.tasks)
    assert {r.task_id for r in page.tasks} <= ids


@pytest.mark.parametrize("limit", [0, -1, 1001, True, 1.0, "10"])
def test_list_limit_out_of_bounds(store: Store, limit: Any) -> None:
    """A limit outside 1..1000, or not an int, raises InvalidParams."""
    store.create(ALICE, METHOD)
    fails_unchanged(store, InvalidParams, lambda: store.list(ALICE, limit=limit))


@pytest.mark.parametrize("limit", [1, 3, 7, 23, 24, 1000])
def test_list_paging_returns_every_task_once(store: Store, clock: Any, limit: int) -> None:
    """Following next_cursor to the end returns every task exactly once, newest first."""
    ids = []
    for i in range(23):
        ids.append(store.create(ALICE, METHOD).task_id)
        if i % 3 == 0:  # many ties in creation time
            clock.advance(0.001)
    store.create(BOB, METHOD)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = store.list(ALICE, cursor=cursor, limit=limit)
        assert len(page.tasks) <= limit
        seen.extend(r.task_id for r in page.tasks)
        pages += 1
        assert pages <= 23, "paging does not end"
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert ids[::-1] == seen


def test_list_paging_while_tasks_come_and_go(store: Store, clock: Any) -> None:
    """Tasks that exist throughout are paged exactly once while others are created and removed."""
    stable, doomed = [], []
    for i in range(20):
        if i % 2:
            doomed.append(store.create(ALICE, METHOD, ttl=5000).task_id)
        else:
            stable.append(store.create(ALICE, METHOD).task_id)
        clock.advance(0.001)
    page = store.list(ALICE, limit=6)
    seen = [r.task_id for r in page.tasks]
    for _ in range(5):
        store.create(ALICE, METHOD)  # newer than every cursor: never paged
    clock.advance(5)
    assert len(doomed) == store.cleanup_expired()
    while page.next_cursor is not None:
        page = store.list(ALICE, cursor=page.next_cursor, limit=6)
        seen.extend(r.task_id for r in page.tasks)
    assert len(seen) == len(set(seen))
    assert set(stable) <= set(seen)
    assert set(seen) <= set(stable) | set(doomed)


def _cursor(store: Store, owner: str) -> str:
    for _ in range(3):
        store.create(owner, METHOD)
    cursor = store.list(owner, limit=1).next_cursor
    assert isinstance(cursor, str)
    return cursor


def test_cursor_of_another_owner(store: Store) -> None:
    """A cursor issued to one owner is refused with InvalidCursor for another."""
    cursor = _cursor(store, ALICE)
    store.create(BOB, METHOD)
    error = fails_unchanged(store, InvalidCursor, lambda: store.list(BOB, cursor=cursor))
    assert cursor == error.cursor


def test_cursor_is_reusable(store: Store) -> None:
    """The same cursor gives the same page again."""
    cursor = _cursor(store, ALICE)
    assert store.list(ALICE, cursor=cursor) == store.list(ALICE, cursor=cursor)


@pytest.mark.parametrize(
    "make_bad",
    [
        pytest.param(lambda c: "", id="empty"),
        pytest.param(lambda c: "garbage", id="garbage"),
        pytest.param(lambda c: "!!!!", id="not-base64"),
        pytest.param(lambda c: base64.urlsafe_b64encode(b"1.2.3").decode(), id="forged"),
        pytest.param(lambda c: c[:-1], id="truncated"),
        pytest.param(lambda c: c + "A", id="extended"),
        pytest.param(lambda c: c[::-1], id="reversed"),
        pytest.param(lambda c: ("B" if c[0] != "B" else "C") + c[1:], id="first-char-changed"),
        pytest.param(lambda c: c * 50, id="huge"),
        pytest.param(lambda c: 12345, id="int"),
        pytest.param(lambda c: c.encode(), id="bytes"),
    ],
)
def test_malformed_cursor(store: Store, make_bad: Callable[[str], Any]) -> None:
    """A cursor the store did not issue (for this owner) raises InvalidCursor."""
    bad = make_bad(_cursor(store, ALICE))
    fails_unchanged(store, InvalidCursor, lambda: store.list(ALICE, cursor=bad))


def test_list_anonymous_is_denied(store: Store) -> None:
    """Anonymous callers cannot list when anonymous use is off."""
    fails_unchanged(store, AnonymousAccessDenied, lambda: store.list("local"))


# -- cleanup_expired ----------------------------------------------------------------


def test_cleanup_removes_only_expired_tasks(make_store: Callable[..., Store], clock: Any) -> None:
    """cleanup_expired removes expired tasks of every owner and returns how many."""
    store = ttl_store(make_store, default_ttl_ms=None, max_ttl_ms=None)
    short = [
        store.create(ALICE, METHOD, ttl=1000).task_id,
        store.create(BOB, METHOD, ttl=500).task_id,
    ]
    long = store.create(ALICE, METHOD, ttl=2000).task_id
    forever = store.create(BOB, METHOD).task_id
    assert 0 == store.cleanup_expired()
    clock.advance(1)
    assert 4 == len(store)
    assert 2 == store.cleanup_expired()
    assert 2 == len(store)
    for task_id, owner in zip(short, [ALICE, BOB], strict=True):
        with pytest.raises(NotFound):
            store.get(task_id, owner)
    assert [long] == [r.task_id for r in store.list(ALICE).tasks]
    assert [forever] == [r.task_id for r in store.list(BOB).tasks]
    assert 0 == store.cleanup_expired()
    clock.advance(1)
    assert 1 == store.cleanup_expired()
    assert 1 == len(store)


def test_cleanup_on_an_empty_store(store: Store) -> None:
    """cleanup_expired on an empty store removes nothing."""
    assert 0 == store.cleanup_expired()


def test_cleanup_at_the_expiry_instant(store: Store, clock: Any) -> None:
    """A task is removed at exactly its expiry time, not one millisecond before."""
    task_id = store.create(ALICE, METHOD, ttl=1500).task_id
    clock.advance(1.499)
    assert 0 == store.cleanup_expired()
    clock.advance(0.001)
    assert 1 == store.cleanup_expired()
    with pytest.raises(NotFound):
        store.get(task_id, ALICE)


def test_cleanup_removes_tasks_in_every_state(store: Store, clock: Any) -> None:
    """Expired tasks are removed whether running or ended."""
    for state in ["working", "input_required", "completed", "failed", "cancelled"]:
        task_in(store, clock, state)
    clock.advance(DEFAULT_TTL_MS / 1000)
    assert 5 == store.cleanup_expired()
    assert (0, ()) == (len(store), store.list(ALICE).tasks)


def test_store_usable_after_cleanup(make_store: Callable[..., Store], clock: Any) -> None:
    """An owner whose tasks were all removed can create and list again."""
    store = make_store(security=TaskSecurityConfig(max_tasks_per_owner=1))
    store.create(ALICE, METHOD, ttl=10)
    clock.advance(1)
    assert 1 == store.cleanup_expired()
    record = store.create(ALICE, METHOD)
    assert (record,) == store.list(ALICE).tasks


# -- wait ---------------------------------------------------------------------------


@pytest.mark.parametrize("state", TERMINAL)
def test_wait_returns_at_once_when_terminal(store: Store, clock: Any, state: str) -> None:
    """wait on a terminal task returns its record without blocking."""
    task_id = task_in(store, clock, state)
    assert store.get(task_id, ALICE) == store.wait(task_id, ALICE)
    assert store.get(task_id, ALICE) == store.wait(task_id, ALICE, timeout=0)


def test_wait_returns_finished_task_even_after_expiry(store: Store, clock: Any) -> None:
    """A task that ended before it expired is returned by wait, not Expired."""
    task_id = task_in(store, clock, "completed")
    clock.advance(DEFAULT_TTL_MS / 1000)
    assert TaskStatus.COMPLETED is store.wait(task_id, ALICE, timeout=0).status


@pytest.mark.parametrize("timeout", [0, 0.05])
@pytest.mark.parametrize("state", ["working", "input_required"])
def test_wait_times_out_on_a_running_task(
    store: Store, clock: Any, timeout: float, state: str
) -> None:
    """wait on a running task raises WaitTimeout once the timeout passes."""
    task_id = task_in(store, clock, state)
    error = fails_unchanged(store, WaitTimeout, lambda: store.wait(task_id, ALICE, timeout=timeout))
    assert (task_id, timeout) == (error.task_id, error.timeout)
    assert isinstance(error, TimeoutError)


@pytest.mark.parametrize("timeout", [-1, -0.001, True, "1", float("inf"), float("nan")])
def test_wait_bad_timeout(store: Store, timeout: Any) -> None:
    """A timeout that is not a finite number >= 0 raises InvalidParams."""
    task_id = store.create(ALICE, METHOD).task_id
    fails_unchanged(store, InvalidParams, lambda: store.wait(task_id, ALICE, timeout=timeout))


def test_wait_unknown_task(store: Store) -> None:
    """wait on an unknown id raises NotFound."""
    fails_unchanged(store, NotFound, lambda: store.wait("no-such-task", ALICE, timeout=0))


# -- strings for statuses -----------------------------------------------------------


def test_string_statuses_work_everywhere(store: Store) -> None:
    """Every method taking a status takes its string value too."""
    first = store.create(ALICE, METHOD).task_id
    assert TaskStatus.INPUT_REQUIRED is store.update_status(first, ALICE, "input_required").status
    assert TaskStatus.WORKING is store.update_status(first, ALICE, "working").status
    assert TaskStatus.FAILED is store.update_status(first, ALICE, "failed").status
    second = store.create(ALICE, METHOD).task_id
    done = store.complete_with_result(second, ALICE, "completed", None, "ok")
    assert TaskStatus.COMPLETED is done.status
    assert "completed" == done.task.to_wire()["status"]


# -- callers cannot reach stored state ----------------------------------------------


def test_mutating_passed_variables_changes_nothing(store: Store) -> None:
    """Changing a dict after passing it to set_variables never changes the task."""
    task_id = store.create(ALICE, METHOD).task_id
    nested = {"list": [1, 2], "map": {"k": "v"}}
    given_vars: dict[str, Any] = {"a": nested}
    store.set_variables(task_id, ALICE, given_vars)
    nested["list"].append(3)  # type: ignore[attr-defined]
    nested["map"]["k"] = "changed"  # type: ignore[index]
    given_vars["b"] = "added"
    assert {"a": {"list": [1, 2], "map": {"k": "v"}}} == dict(store.get(task_id, ALICE).variables)


def test_mutating_passed_result_changes_nothing(store: Store) -> None:
    """Changing a result after passing it in never changes the stored result."""
    first = store.create(ALICE, METHOD).task_id
    result: dict[str, Any] = {"content": [{"type": "text", "text": "hi"}]}
    store.set_result(first, ALICE, result)
    result["content"].append("more")
    result["extra"] = True
    assert {"content": [{"type": "text", "text": "hi"}]} == store.get(first, ALICE).result
    second = store.create(ALICE, METHOD).task_id
    final: dict[str, Any] = {"n": [1]}
    store.complete_with_result(second, ALICE, "completed", None, final)
    final["n"].append(2)
    assert {"n": [1]} == store.get_result(second, ALICE)


def test_mutating_returned_values_changes_nothing(store: Store) -> None:
    """Nothing reachable from a returned record or result can change the store."""
    task_id = store.create(ALICE, METHOD).task_id
    record = store.set_variables(task_id, ALICE, {"v": [1], "m": {"x": 1}})
    store.complete_with_result(task_id, ALICE, "completed", None, {"r": [1]})
    before = store.get(task_id, ALICE)
    record.variables["v"].append(2)
    record.variables["m"]["x"] = 2
    store.get(task_id, ALICE).variables["v"].append(3)
    store.get(task_id, ALICE).result["r"].append(4)
    store.get_result(task_id, ALICE)["r"].append(5)
    store.list(ALICE).tasks[0].variables["v"].append(6)
    store.wait(task_id, ALICE).result["r"].append(7)
    meta = store.get(task_id, ALICE).to_wire_task_with_variables().meta
    meta["v"].append(8)
    meta["new"] = True
    wire = store.get(task_id, ALICE).task.to_wire()
    wire["status"] = "working"
    wire["ttl"] = 1
    after = store.get(task_id, ALICE)
    assert before == after
    assert ({"v": [1], "m": {"x": 1}}, {"r": [1]}) == (dict(after.variables), after.result)
    assert {"r": [1]} == store.get_result(task_id, ALICE)
    with pytest.raises(TypeError):
        after.variables["v"] = "replaced"  # type: ignore[index]


def test_returned_records_are_snapshots(store: Store) -> None:
    """A record already returned does not change when the task later changes."""
    record = store.create(ALICE, METHOD)
    store.update_status(record.task_id, ALICE, "input_required", "later")
    store.set_variables(record.task_id, ALICE, {"a": 1})
    assert (TaskStatus.WORKING, None, {}) == (
        record.status,
        record.task.status_message,
        dict(record.variables),
    )
    assert isinstance(record, TaskRecord)

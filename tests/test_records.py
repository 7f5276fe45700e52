"""TaskRecord: the frozen record a store hands out, and its decoded views."""

# Asserts read ``expected == actual`` (project convention), which SIM300 calls Yoda.

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given

from tasks_store import JsonRpcError, StoreConfig, Task, TaskRecord, TaskStatus

from .strategies import json_objects, json_values

CREATED_MS = 1_764_066_600_000  # 2025-11-25T10:30:00Z
OWNER = "alice"


def make_task(**changes: Any) -> Task:
    fields: dict[str, Any] = {
        "task_id": "786af6b0-2779-48ed-9cc1-b8a8a25b8a86",
        "status": TaskStatus.WORKING,
        "created_at": "2025-11-25T10:30:00.000Z",
        "last_updated_at": "2025-11-25T10:30:00.000Z",
        "ttl": 60_000,
        "poll_interval": 5000,
    }
    fields.update(changes)
    return Task(**fields)


def make_record(**changes: Any) -> TaskRecord:
    fields: dict[str, Any] = {
        "task": make_task(),
        "owner_id": OWNER,
        "request_method": "tools/call",
        "created_ms": CREATED_MS,
        "seq": 1,
        "expires_at_ms": CREATED_MS + 60_000,
    }
    fields.update(changes)
    return TaskRecord(**fields)


def test_shortcuts() -> None:
    """task_id and status read through to the wire task."""
    record = make_record(task=make_task(status=TaskStatus.INPUT_REQUIRED))
    assert "786af6b0-2779-48ed-9cc1-b8a8a25b8a86" == record.task_id
    assert TaskStatus.INPUT_REQUIRED is record.status


def test_record_is_frozen() -> None:
    """A record cannot be changed in place."""
    record = make_record()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        record.owner_id = "mallory"  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        record.task.status = TaskStatus.COMPLETED  # type: ignore[misc]


def test_records_use_slots() -> None:
    """Records are slotted: no per-instance __dict__."""
    assert not hasattr(make_record(), "__dict__")
    assert not hasattr(make_task(), "__dict__")


# -- variables ----------------------------------------------------------------


def test_variables_empty_by_default() -> None:
    """A record without variables shows an empty mapping."""
    assert {} == dict(make_record().variables)


def test_variables_are_decoded() -> None:
    """variables shows the stored JSON as a mapping."""
    record = make_record(variables_json='{"a":1,"b":[1,{"c":"é"}]}')
    assert {"a": 1, "b": [1, {"c": "é"}]} == dict(record.variables)


def test_variables_are_read_only() -> None:
    """The mapping refuses assignment and deletion."""
    variables = make_record(variables_json='{"a":1}').variables
    with pytest.raises(TypeError):
        variables["a"] = 2  # type: ignore[index]
    with pytest.raises(TypeError):
        del variables["a"]  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        make_record().variables["a"] = 2  # type: ignore[index]


def test_variables_decoded_afresh_on_each_access() -> None:
    """Mutating a nested value you got back never shows up on the next read."""
    record = make_record(variables_json='{"items":[1,2],"nested":{"k":"v"}}')
    first = record.variables
    first["items"].append(3)
    first["nested"]["k"] = "changed"
    assert {"items": [1, 2], "nested": {"k": "v"}} == dict(record.variables)
    assert '{"items":[1,2],"nested":{"k":"v"}}' == record.variables_json


@given(variables=json_objects)
def test_variables_round_trip_any_json_object(variables: dict[str, Any]) -> None:
    """Any JSON object stored as variables reads back equal."""
    text = json.dumps(variables, ensure_ascii=False, separators=(",", ":"))
    assert variables == dict(make_record(variables_json=text).variables)


# -- result -------------------------------------------------------------------


def test_no_result_until_set() -> None:
    """A new record has no result: result is None and has_result is False."""
    record = make_record()
    assert None is record.result
    assert False is record.has_result


def test_result_null_is_a_result() -> None:
    """A JSON null result counts as set."""
    record = make_record(result_json="null")
    assert True is record.has_result
    assert None is record.result


def test_result_decoded_afresh_on_each_access() -> None:
    """Mutating a result you got back never shows up on the next read."""
    record = make_record(result_json='{"content":[{"type":"text","text":"hi"}]}')
    first = record.result
    first["content"].clear()
    assert {"content": [{"type": "text", "text": "hi"}]} == record.result
    assert True is record.has_result


@given(result=json_values)
def test_result_round_trips_any_json(result: Any) -> None:
    """Any JSON result stored as text reads back equal."""
    text = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
    assert result == make_record(result_json=text).result


def test_jsonrpc_error_result_comes_back_as_one() -> None:
    """A JsonRpcError stored as the result reads back as an equal JsonRpcError."""
    from tasks_store.wire import dump_result

    error = JsonRpcError(-32000, "tool failed", {"why": "disk full"})
    assert error == make_record(result_json=dump_result(error)).result


# -- expiry -------------------------------------------------------------------


def test_expires_at_is_aware_utc() -> None:
    """expires_at is an aware UTC datetime at created + ttl."""
    expires_at = make_record().expires_at
    assert datetime(2025, 11, 25, 10, 31, 0, tzinfo=timezone.utc) == expires_at
    assert expires_at is not None
    assert timezone.utc == expires_at.tzinfo


def test_expires_at_keeps_milliseconds() -> None:
    """expires_at keeps the millisecond of expiry."""
    record = make_record(expires_at_ms=CREATED_MS + 1_234)
    assert datetime(2025, 11, 25, 10, 30, 1, 234000, tzinfo=timezone.utc) == record.expires_at


def test_expires_at_none_for_unlimited() -> None:
    """A task without a TTL never expires."""
    record = make_record(expires_at_ms=None, task=make_task(ttl=None))
    assert None is record.expires_at
    assert False is record.is_expired(CREATED_MS / 1000 + 10**9)
    assert False is record.is_expired()


def test_is_expired_boundary() -> None:
    """A task is live one millisecond before expires_at and expired at that instant."""
    record = make_record(expires_at_ms=CREATED_MS + 60_000)
    expires_s = (CREATED_MS + 60_000) / 1000
    assert False is record.is_expired(CREATED_MS / 1000)
    assert False is record.is_expired(expires_s - 0.001)
    assert True is record.is_expired(expires_s)
    assert True is record.is_expired(expires_s + 0.001)
    assert True is record.is_expired(expires_s + 10**6)


def test_is_expired_with_datetime_of_expires_at() -> None:
    """is_expired at expires_at's own timestamp is True."""
    record = make_record()
    assert record.expires_at is not None
    assert True is record.is_expired(record.expires_at.timestamp())


def test_is_expired_defaults_to_the_wall_clock() -> None:
    """Without *now*, is_expired compares with the current time."""
    now_ms = int(time.time() * 1000)
    assert True is make_record(expires_at_ms=now_ms - 60_000).is_expired()
    assert False is make_record(expires_at_ms=now_ms + 3_600_000).is_expired()


def test_zero_ttl_is_expired_at_creation() -> None:
    """A task with ttl 0 expires the instant it is created."""
    record = make_record(task=make_task(ttl=0), expires_at_ms=CREATED_MS)
    assert True is record.is_expired(CREATED_MS / 1000)


# -- wire views ---------------------------------------------------------------


def test_to_wire_task_is_the_task() -> None:
    """to_wire_task returns the record's wire Task."""
    task = make_task(status_message="busy")
    assert task == make_record(task=task).to_wire_task()


def test_to_wire_task_with_variables_unchanged_when_empty() -> None:
    """Without variables, the wire task is returned as it is."""
    task = make_task(meta={"x": 1})
    record = make_record(task=task)
    assert task == record.to_wire_task_with_variables()
    assert make_task() == make_record().to_wire_task_with_variables()
    assert None is make_record().to_wire_task_with_variables().meta


def test_to_wire_task_with_variables_merges_into_meta() -> None:
    """Variables appear in meta beside its keys; a variable wins over a same-named key."""
    record = make_record(
        task=make_task(meta={"keep": 1, "clash": "meta"}),
        variables_json='{"clash":"variable","new":[1,2]}',
    )
    wire = record.to_wire_task_with_variables()
    assert {"keep": 1, "clash": "variable", "new": [1, 2]} == wire.meta
    assert attrs.evolve(record.task, meta=wire.meta) == wire


def test_to_wire_task_with_variables_without_meta() -> None:
    """Variables become the meta of a task that had none."""
    record = make_record(variables_json='{"a":"b"}')
    assert {"a": "b"} == record.to_wire_task_with_variables().meta


def test_to_wire_task_with_variables_leaves_the_record_alone() -> None:
    """Merging, or mutating the merged meta, never changes the record's task or variables."""
    record = make_record(task=make_task(meta={"keep": 1}), variables_json='{"v":[1]}')
    wire = record.to_wire_task_with_variables()
    assert wire.meta is not None
    wire.meta["v"].append(2)  # type: ignore[index]
    wire.meta["keep"] = 99  # type: ignore[index]
    assert {"keep": 1} == record.task.meta
    assert {"v": [1]} == dict(record.variables)
    assert {"keep": 1, "v": [1]} == record.to_wire_task_with_variables().meta


def test_store_records_expose_aware_expiry(make_store: Any) -> None:
    """A record from a store has expires_at = creation time + ttl, in UTC."""
    store = make_store(config=StoreConfig(default_ttl_ms=90_000))
    record = store.create("alice", "tools/call")
    assert datetime(2025, 11, 25, 10, 31, 30, tzinfo=timezone.utc) == record.expires_at

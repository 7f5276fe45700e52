"""The wire format: camelCase JSON through one converter, valid under the spec schema."""

# Asserts read ``expected == actual`` (project convention), which SIM300 calls Yoda.

from __future__ import annotations

import json
import re
from typing import Any

import cattrs
import jsonschema
import pytest
from hypothesis import given, settings

import tasks_store
from tasks_store import (
    MODEL_IMMEDIATE_RESPONSE_META_KEY,
    RELATED_TASK_META_KEY,
    CreateTaskResult,
    InvalidParams,
    JsonRpcError,
    Task,
    TaskStatus,
    related_task_meta,
)
from tasks_store import wire as wire_module
from tasks_store.wire import dump_json, dump_result, format_timestamp, load_result

from .mcp_schema import EXAMPLES_DIR, SCHEMA_PATH
from .strategies import create_task_results, json_values, tasks, timestamps

STORE_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

TASK_ID = "786af6b0-2779-48ed-9cc1-b8a8a25b8a86"
MINIMAL_WIRE: dict[str, Any] = {
    "taskId": TASK_ID,
    "status": "working",
    "createdAt": "2025-11-25T10:30:00.000Z",
    "lastUpdatedAt": "2025-11-25T10:30:05.000Z",
    "ttl": 60000,
}


def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def validate() -> Any:
    """Return ``validate(instance, name)``: validation against ``$defs[name]`` of the schema."""
    defs = _schema()["$defs"]
    validators: dict[str, jsonschema.protocols.Validator] = {}

    def check(instance: Any, name: str) -> None:
        if name not in validators:
            assert name in defs, f"$defs.{name} missing from {SCHEMA_PATH}"
            validators[name] = jsonschema.Draft202012Validator(
                {"$ref": f"#/$defs/{name}", "$defs": defs}
            )
        validators[name].validate(instance)

    return check


def make_task(**changes: Any) -> Task:
    fields: dict[str, Any] = {
        "task_id": TASK_ID,
        "status": TaskStatus.WORKING,
        "created_at": "2025-11-25T10:30:00.000Z",
        "last_updated_at": "2025-11-25T10:30:05.000Z",
        "ttl": 60000,
    }
    fields.update(changes)
    return Task(**fields)


# -- the converter ------------------------------------------------------------


def test_converter_is_exported() -> None:
    """tasks_store.converter is the wire module's cattrs converter."""
    assert wire_module.converter is tasks_store.converter
    assert isinstance(tasks_store.converter, cattrs.Converter)


def test_wire_re_exports_what_records_defines() -> None:
    """The converter and load_result are defined once, in records; wire re-exports them."""
    from tasks_store import records

    assert records.converter is wire_module.converter
    assert records.load_result is wire_module.load_result


def test_to_wire_goes_through_the_converter() -> None:
    """Task.to_wire and converter.unstructure give the same JSON."""
    task = make_task(status_message="hi", poll_interval=5000, meta={"k": 1})
    assert tasks_store.converter.unstructure(task) == task.to_wire()
    result = CreateTaskResult(task=task, meta={"m": True})
    assert tasks_store.converter.unstructure(result) == result.to_wire()


def test_from_wire_goes_through_the_converter() -> None:
    """Task.from_wire and converter.structure build the same Task."""
    assert tasks_store.converter.structure(MINIMAL_WIRE, Task) == Task.from_wire(MINIMAL_WIRE)


# -- keys and omission --------------------------------------------------------


def test_minimal_task_keys() -> None:
    """A task without optional fields has exactly the five required camelCase keys."""
    assert MINIMAL_WIRE == make_task(created_at="2025-11-25T10:30:00.000Z").to_wire()


def test_full_task_keys() -> None:
    """Optional fields appear under statusMessage, pollInterval and _meta."""
    task = make_task(
        status=TaskStatus.INPUT_REQUIRED,
        status_message="Need a file",
        poll_interval=2500,
        meta={RELATED_TASK_META_KEY: {"taskId": "x"}},
    )
    assert {
        **MINIMAL_WIRE,
        "status": "input_required",
        "statusMessage": "Need a file",
        "pollInterval": 2500,
        "_meta": {RELATED_TASK_META_KEY: {"taskId": "x"}},
    } == task.to_wire()


def test_ttl_null_is_present() -> None:
    """An unlimited ttl is sent as null, never omitted."""
    wire = make_task(ttl=None).to_wire()
    assert "ttl" in wire
    assert None is wire["ttl"]


def test_ttl_zero_is_present() -> None:
    """A ttl of 0 is sent as 0."""
    assert 0 == make_task(ttl=0).to_wire()["ttl"]


def test_optional_fields_omitted_when_none() -> None:
    """statusMessage, pollInterval and _meta are left out when None."""
    wire = make_task(status_message=None, poll_interval=None, meta=None).to_wire()
    assert {"taskId", "status", "createdAt", "lastUpdatedAt", "ttl"} == set(wire)


def test_falsy_optional_fields_are_kept() -> None:
    """An empty message, a zero poll interval and an empty _meta are sent, not dropped."""
    wire = make_task(status_message="", poll_interval=0, meta={}).to_wire()
    assert ("", 0, {}) == (wire["statusMessage"], wire["pollInterval"], wire["_meta"])


def test_status_is_sent_as_its_string() -> None:
    """The status is a plain JSON string on the wire."""
    wire = make_task(status=TaskStatus.CANCELLED).to_wire()
    assert "cancelled" == wire["status"]
    assert str is type(wire["status"])


def test_to_wire_is_json_text_ready() -> None:
    """to_wire output survives json.dumps/json.loads unchanged."""
    wire = make_task(meta={"a": [1, 2.5, None, True]}, status_message="é").to_wire()
    assert wire == json.loads(json.dumps(wire))


def test_create_task_result_keys() -> None:
    """A CreateTaskResult is {"task": ..., "_meta"?: ...}."""
    task = make_task()
    assert {"task": task.to_wire()} == CreateTaskResult(task=task).to_wire()
    meta = {MODEL_IMMEDIATE_RESPONSE_META_KEY: "Started"}
    assert {"task": task.to_wire(), "_meta": meta} == CreateTaskResult(
        task=task, meta=meta
    ).to_wire()


# -- round trips and schema validity ------------------------------------------


@settings(max_examples=100)
@given(task=tasks)
def test_task_round_trip(task: Task) -> None:
    """from_wire(to_wire(task)) == task for every valid Task."""
    assert task == Task.from_wire(task.to_wire())


@settings(max_examples=100)
@given(task=tasks)
def test_task_round_trip_through_json_text(task: Task) -> None:
    """A task survives being sent as JSON text and parsed back."""
    assert task == Task.from_wire(json.loads(json.dumps(task.to_wire())))


@settings(max_examples=100)
@given(result=create_task_results)
def test_create_task_result_round_trip(result: CreateTaskResult) -> None:
    """from_wire(to_wire(result)) == result for every valid CreateTaskResult."""
    assert result == CreateTaskResult.from_wire(result.to_wire())


@settings(max_examples=100)
@given(task=tasks)
def test_task_wire_is_schema_valid(task: Task, validate: Any) -> None:
    """Every Task.to_wire output validates as $defs.Task."""
    validate(task.to_wire(), "Task")


@settings(max_examples=100)
@given(result=create_task_results)
def test_create_task_result_wire_is_schema_valid(
    result: CreateTaskResult, validate: Any
) -> None:
    """Every CreateTaskResult.to_wire output validates as $defs.CreateTaskResult."""
    validate(result.to_wire(), "CreateTaskResult")


def test_store_task_wire_is_schema_valid(store: Any, validate: Any) -> None:
    """Tasks a store hands out, in every status, validate as $defs.Task and CreateTaskResult."""
    first = store.create("alice", "tools/call")
    validate(first.task.to_wire(), "Task")
    validate(CreateTaskResult(task=first.task).to_wire(), "CreateTaskResult")
    moved = store.update_status(first.task_id, "alice", "input_required", "Need input")
    validate(moved.task.to_wire(), "Task")
    store.set_variables(first.task_id, "alice", {"progress": 0.5})
    record = store.complete_with_result(first.task_id, "alice", "completed", "Done", {"x": 1})
    validate(record.task.to_wire(), "Task")
    validate(record.to_wire_task_with_variables().to_wire(), "Task")
    meta = {**related_task_meta(record.task_id), MODEL_IMMEDIATE_RESPONSE_META_KEY: "ok"}
    validate(CreateTaskResult(task=record.task, meta=meta).to_wire(), "CreateTaskResult")


def test_list_page_wire_is_schema_valid(store: Any, validate: Any) -> None:
    """A page from list, sent as tasks + nextCursor, validates as $defs.ListTasksResult."""
    for _ in range(3):
        store.create("alice", "tools/call")
    page = store.list("alice", limit=2)
    assert page.next_cursor is not None
    result = {"tasks": [r.task.to_wire() for r in page.tasks], "nextCursor": page.next_cursor}
    validate(result, "ListTasksResult")
    last = store.list("alice", cursor=page.next_cursor, limit=2)
    assert None is last.next_cursor
    validate({"tasks": [r.task.to_wire() for r in last.tasks]}, "ListTasksResult")


def test_schema_rejects_what_the_store_must_not_send(validate: Any) -> None:
    """The schema check is real: a task without ttl or with a bad status fails it."""
    wire = make_task().to_wire()
    del wire["ttl"]
    with pytest.raises(jsonschema.ValidationError):
        validate(wire, "Task")
    with pytest.raises(jsonschema.ValidationError):
        validate({**make_task().to_wire(), "status": "done"}, "Task")


# -- spec examples and timestamps ---------------------------------------------


def _example(name: str) -> Any:
    path = EXAMPLES_DIR / name
    assert path.is_file(), f"spec example missing: expected it at {path}"
    return json.loads(path.read_text(encoding="utf-8"))


def test_create_task_result_example_parses() -> None:
    """The spec's CreateTaskResult example parses, whole-second timestamps included."""
    result = CreateTaskResult.from_wire(_example("CreateTaskResult_create-task.json"))
    assert CreateTaskResult(
        task=Task(
            task_id=TASK_ID,
            status=TaskStatus.WORKING,
            created_at="2025-11-25T10:30:00Z",
            last_updated_at="2025-11-25T10:30:05Z",
            ttl=60000,
            poll_interval=5000,
        )
    ) == result
    assert _example("CreateTaskResult_create-task.json") == result.to_wire()


def test_task_status_notification_example_parses() -> None:
    """The params of the spec's notifications/tasks/status example parse as a Task."""
    params = _example("TaskStatusNotification_task-status.json")["params"]
    task = Task.from_wire(params)
    assert Task(
        task_id=TASK_ID,
        status=TaskStatus.WORKING,
        status_message="Processing input",
        created_at="2025-11-25T10:30:00Z",
        last_updated_at="2025-11-25T10:30:05Z",
        ttl=60000,
    ) == task
    assert params == task.to_wire()


def test_related_task_example_matches_related_task_meta() -> None:
    """related_task_meta builds exactly the spec example's _meta."""
    example = _example("TaskAugmentedRequestParams_task-augmented-call-params.json")
    assert example["_meta"] == related_task_meta(TASK_ID)
    get_request = _example("GetTaskRequest_get-task.json")
    assert related_task_meta(get_request["params"]["taskId"]) == example["_meta"]


@pytest.mark.parametrize(
    "stamp",
    [
        "2025-11-25T10:30:00Z",
        "2025-11-25T10:30:00.123Z",
        "2025-11-25T10:30:00.123456Z",
        "2025-11-25T10:30:00+02:00",
        "2025-11-25T10:30:00.5-05:30",
    ],
)
def test_from_wire_accepts_iso_timestamps(stamp: str) -> None:
    """from_wire accepts ISO 8601 timestamps with or without fractions, Z or offset, as given."""
    task = Task.from_wire({**MINIMAL_WIRE, "createdAt": stamp, "lastUpdatedAt": stamp})
    assert (stamp, stamp) == (task.created_at, task.last_updated_at)


@given(stamp=timestamps)
def test_from_wire_accepts_generated_timestamps(stamp: str) -> None:
    """Any timestamp the strategies generate is accepted and kept as given."""
    assert stamp == Task.from_wire({**MINIMAL_WIRE, "createdAt": stamp}).created_at


def test_store_timestamps_have_milliseconds_and_z(store: Any, clock: Any) -> None:
    """Timestamps the store writes are UTC with exactly three fraction digits and Z."""
    record = store.create("alice", "tools/call")
    clock.advance(1.5)
    moved = store.update_status(record.task_id, "alice", "input_required")
    for stamp in (record.task.created_at, moved.task.created_at, moved.task.last_updated_at):
        assert STORE_TIMESTAMP.match(stamp), stamp
    assert "2025-11-25T10:30:00.000Z" == record.task.created_at
    assert "2025-11-25T10:30:01.500Z" == moved.task.last_updated_at
    wire = moved.task.to_wire()
    assert STORE_TIMESTAMP.match(wire["createdAt"])
    assert STORE_TIMESTAMP.match(wire["lastUpdatedAt"])


@pytest.mark.parametrize(
    ("epoch_ms", "expected"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1_764_066_600_000, "2025-11-25T10:30:00.000Z"),
        (1_764_066_600_007, "2025-11-25T10:30:00.007Z"),
        (1_764_066_659_999, "2025-11-25T10:30:59.999Z"),
        (1_764_066_660_000, "2025-11-25T10:31:00.000Z"),
    ],
)
def test_format_timestamp(epoch_ms: int, expected: str) -> None:
    """format_timestamp writes epoch ms as ISO 8601 UTC with milliseconds and Z."""
    assert expected == format_timestamp(epoch_ms)
    assert STORE_TIMESTAMP.match(format_timestamp(epoch_ms))


def test_format_timestamp_after_a_cached_second() -> None:
    """A timestamp in another second is right even right after one in a cached second."""
    assert "2025-11-25T10:30:00.999Z" == format_timestamp(1_764_066_600_999)
    assert "2025-11-25T10:30:01.000Z" == format_timestamp(1_764_066_601_000)
    assert "2025-11-25T10:30:00.001Z" == format_timestamp(1_764_066_600_001)


# -- invalid input ------------------------------------------------------------


def _without(key: str) -> dict[str, Any]:
    return {k: v for k, v in MINIMAL_WIRE.items() if k != key}


INVALID_TASKS = [
    pytest.param(_without("taskId"), "taskId", id="missing-taskId"),
    pytest.param(_without("status"), "status", id="missing-status"),
    pytest.param(_without("createdAt"), "createdAt", id="missing-createdAt"),
    pytest.param(_without("lastUpdatedAt"), "lastUpdatedAt", id="missing-lastUpdatedAt"),
    pytest.param(_without("ttl"), "ttl", id="missing-ttl"),
    pytest.param({**MINIMAL_WIRE, "taskId": 42}, "taskId", id="int-taskId"),
    pytest.param({**MINIMAL_WIRE, "taskId": None}, "taskId", id="null-taskId"),
    pytest.param({**MINIMAL_WIRE, "ttl": True}, "ttl", id="bool-ttl"),
    pytest.param({**MINIMAL_WIRE, "ttl": "60000"}, "ttl", id="str-ttl"),
    pytest.param({**MINIMAL_WIRE, "ttl": 1.5}, "ttl", id="fraction-ttl"),
    pytest.param({**MINIMAL_WIRE, "pollInterval": True}, "pollInterval", id="bool-poll"),
    pytest.param({**MINIMAL_WIRE, "pollInterval": "5"}, "pollInterval", id="str-poll"),
    pytest.param({**MINIMAL_WIRE, "status": "done"}, "status", id="bad-status"),
    pytest.param({**MINIMAL_WIRE, "status": "WORKING"}, "status", id="upper-status"),
    pytest.param({**MINIMAL_WIRE, "status": 1}, "status", id="int-status"),
    pytest.param({**MINIMAL_WIRE, "statusMessage": 7}, "statusMessage", id="int-message"),
    pytest.param({**MINIMAL_WIRE, "createdAt": "yesterday"}, "createdAt", id="word-createdAt"),
    pytest.param({**MINIMAL_WIRE, "createdAt": "2025-11-25"}, "createdAt", id="date-createdAt"),
    pytest.param({**MINIMAL_WIRE, "createdAt": 1764066600}, "createdAt", id="epoch-createdAt"),
    pytest.param(
        {**MINIMAL_WIRE, "lastUpdatedAt": "2025-13-45T10:30:00Z"},
        "lastUpdatedAt",
        id="bad-month-lastUpdatedAt",
    ),
    pytest.param(
        {**MINIMAL_WIRE, "lastUpdatedAt": "25/11/2025 10:30"},
        "lastUpdatedAt",
        id="local-format-lastUpdatedAt",
    ),
    pytest.param({**MINIMAL_WIRE, "_meta": [1, 2]}, "_meta", id="list-meta"),
    pytest.param({**MINIMAL_WIRE, "_meta": "x"}, "_meta", id="str-meta"),
    pytest.param({**MINIMAL_WIRE, "_meta": 3}, "_meta", id="int-meta"),
]


@pytest.mark.parametrize(("data", "key"), INVALID_TASKS)
def test_invalid_task_raises_invalid_params_naming_the_key(data: Any, key: str) -> None:
    """Invalid Task JSON raises InvalidParams whose message names the camelCase key."""
    with pytest.raises(InvalidParams) as info:
        Task.from_wire(data)
    assert re.search(rf"\$\.{re.escape(key)}\b", info.value.message), info.value.message
    assert "Task" in info.value.message


def test_invalid_task_message_names_every_bad_key() -> None:
    """When several keys are wrong, the message names each of them."""
    with pytest.raises(InvalidParams) as info:
        Task.from_wire({**_without("taskId"), "ttl": "x", "status": "nope"})
    for key in ("taskId", "ttl", "status"):
        assert f"$.{key}" in info.value.message


def test_invalid_task_message_never_uses_snake_case() -> None:
    """Error messages speak the wire's language: no Python attribute names."""
    with pytest.raises(InvalidParams) as info:
        Task.from_wire({"status": "working", "ttl": None})
    message = info.value.message
    for snake in ("task_id", "created_at", "last_updated_at"):
        assert snake not in message
    for camel in ("taskId", "createdAt", "lastUpdatedAt"):
        assert camel in message


@pytest.mark.parametrize("data", [None, [], [MINIMAL_WIRE], "task", 5, 1.5, True])
def test_non_object_task_raises_invalid_params(data: Any) -> None:
    """Anything but a JSON object raises InvalidParams, for Task and CreateTaskResult."""
    with pytest.raises(InvalidParams, match="object"):
        Task.from_wire(data)
    with pytest.raises(InvalidParams, match="object"):
        CreateTaskResult.from_wire(data)


def test_snake_case_keys_are_not_accepted() -> None:
    """Python attribute names are not wire keys: a snake_case object is missing taskId."""
    snake = {
        "task_id": TASK_ID,
        "status": "working",
        "created_at": "2025-11-25T10:30:00Z",
        "last_updated_at": "2025-11-25T10:30:00Z",
        "ttl": None,
    }
    with pytest.raises(InvalidParams, match=r"\$\.taskId"):
        Task.from_wire(snake)


def test_unknown_keys_are_ignored() -> None:
    """Keys the schema does not name are tolerated, as the schema allows."""
    assert make_task() == Task.from_wire({**make_task().to_wire(), "extra": {"x": 1}})


def test_integral_float_ttl_is_an_integer() -> None:
    """A ttl of 5.0 is a JSON Schema integer and parses as 5."""
    task = Task.from_wire({**MINIMAL_WIRE, "ttl": 5.0})
    assert 5 == task.ttl
    assert int is type(task.ttl)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        pytest.param({}, "task", id="missing-task"),
        pytest.param({"task": {**MINIMAL_WIRE, "ttl": "x"}}, "task.ttl", id="nested-ttl"),
        pytest.param({"task": _without("taskId")}, "task.taskId", id="nested-missing"),
        pytest.param({"task": MINIMAL_WIRE, "_meta": 3}, "_meta", id="int-meta"),
        pytest.param({"task": MINIMAL_WIRE, "_meta": []}, "_meta", id="list-meta"),
    ],
)
def test_invalid_create_task_result(data: Any, key: str) -> None:
    """Invalid CreateTaskResult JSON raises InvalidParams naming the (nested) key."""
    with pytest.raises(InvalidParams) as info:
        CreateTaskResult.from_wire(data)
    assert f"$.{key}" in info.value.message


@pytest.mark.parametrize("task", [5, "task", [MINIMAL_WIRE], None])
def test_non_object_nested_task_says_an_object_was_expected(task: Any) -> None:
    """A CreateTaskResult whose task is not an object says so, naming $.task."""
    with pytest.raises(InvalidParams) as info:
        CreateTaskResult.from_wire({"task": task})
    assert "expected an object" in info.value.message
    assert "$.task" in info.value.message


def test_invalid_params_from_wire_is_a_value_error() -> None:
    """Code catching ValueError also catches a bad wire object."""
    with pytest.raises(ValueError, match="Invalid Task"):
        Task.from_wire({})


# -- meta helpers -------------------------------------------------------------


def test_meta_key_constants() -> None:
    """The two _meta keys are the protocol's reserved names."""
    assert "io.modelcontextprotocol/related-task" == RELATED_TASK_META_KEY
    assert "io.modelcontextprotocol/model-immediate-response" == MODEL_IMMEDIATE_RESPONSE_META_KEY


def test_related_task_meta() -> None:
    """related_task_meta builds the related-task entry for a task id."""
    assert {"io.modelcontextprotocol/related-task": {"taskId": "abc"}} == related_task_meta("abc")


def test_related_task_meta_returns_a_fresh_dict() -> None:
    """Each call returns its own dict: changing one never changes the next."""
    first = related_task_meta("abc")
    first[RELATED_TASK_META_KEY]["taskId"] = "zzz"
    assert {RELATED_TASK_META_KEY: {"taskId": "abc"}} == related_task_meta("abc")


def test_related_task_meta_validates_as_schema_meta(validate: Any) -> None:
    """The entry fits $defs.RelatedTaskMetadata of the schema."""
    validate(related_task_meta("abc")[RELATED_TASK_META_KEY], "RelatedTaskMetadata")


# -- results ------------------------------------------------------------------


def test_jsonrpc_error_result_round_trips() -> None:
    """A JsonRpcError result comes back from dump_result/load_result as an equal object."""
    for error in (
        JsonRpcError(-32603, "boom"),
        JsonRpcError(-32000, "tool failed", {"detail": ["a", 1]}),
        JsonRpcError(1, "", 0),
    ):
        assert error == load_result(dump_result(error))


def test_jsonrpc_error_to_dict_validates_as_schema_error(validate: Any) -> None:
    """JsonRpcError.to_dict is the schema's Error object, data only when set."""
    assert {"code": -32603, "message": "boom"} == JsonRpcError(-32603, "boom").to_dict()
    full = JsonRpcError(-32000, "failed", {"x": 1}).to_dict()
    assert {"code": -32000, "message": "failed", "data": {"x": 1}} == full
    validate(full, "Error")


def test_plain_dict_shaped_like_an_error_stays_a_dict() -> None:
    """A dict result that merely looks like an error object is not turned into one."""
    result = {"code": -32603, "message": "boom"}
    assert result == load_result(dump_result(result))
    assert dict is type(load_result(dump_result(result)))


@settings(max_examples=100)
@given(value=json_values)
def test_json_results_round_trip(value: Any) -> None:
    """Any plain JSON result comes back equal from dump_result/load_result."""
    assert value == load_result(dump_result(value))


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param({1: "x"}, id="int-key"),
        pytest.param({"a": {2: "x"}}, id="nested-int-key"),
        pytest.param(float("nan"), id="nan"),
        pytest.param([float("inf")], id="inf"),
        pytest.param({"a": {1, 2}}, id="set"),
        pytest.param(b"bytes", id="bytes"),
        pytest.param(object(), id="object"),
        pytest.param("\ud800", id="lone-surrogate"),
    ],
)
def test_dump_result_refuses_non_json(bad: Any) -> None:
    """A result JSON cannot encode exactly raises InvalidParams."""
    with pytest.raises(InvalidParams):
        dump_result(bad)


def test_circular_or_too_deep_values_are_invalid_params() -> None:
    """A value that contains itself, or nests past the recursion limit, is refused cleanly."""
    loop: list[object] = []
    loop.append(loop)
    deep: dict[str, object] = {}
    node = deep
    for _ in range(5000):
        node["a"] = {}
        node = node["a"]  # type: ignore[assignment]
    for value in (loop, deep):
        with pytest.raises(InvalidParams, match="nested too deeply"):
            dump_json(value, "result")


def test_json_errors_name_the_offending_place() -> None:
    """The message points at the bad item inside nested containers."""
    with pytest.raises(InvalidParams) as info:
        dump_json({"a": [1, {"b": {1, 2}}]}, "result")
    assert "result['a'][1]['b'] is of type set, which is not a JSON value" == str(info.value)

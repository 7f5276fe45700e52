"""
The pure 2026-07-28 wire helpers (tasks_store.mcp.v2026_wire): per-request
``_meta``, the standard headers, and the Tasks extension's shapes, each
shape validated against the vendored extension schema.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tasks_store import InMemoryTaskStore, JsonRpcError
from tasks_store.errors import (
    HEADER_MISMATCH,
    INVALID_PARAMS,
    UNSUPPORTED_PROTOCOL_VERSION,
    HeaderMismatch,
    UnsupportedProtocolVersion,
)
from tasks_store.mcp.v2026_wire import (
    CLIENT_CAPABILITIES_KEY,
    CLIENT_INFO_KEY,
    LOG_LEVEL_KEY,
    PROTOCOL_VERSION,
    PROTOCOL_VERSION_KEY,
    SUPPORTED_VERSIONS,
    TASKS_EXTENSION,
    MalformedMeta,
    RequestMeta,
    check_headers,
    check_version,
    create_task_result,
    decode_header_value,
    detailed_task,
    inline_result,
    mcp_name_source,
    parse_meta,
    task_fields,
)
from tasks_store.records import RELATED_TASK_META_KEY
from tasks_store.status import TaskStatus

from .mcp_schema_2026 import ext_validator

VALID: dict[str, Any] = {PROTOCOL_VERSION_KEY: PROTOCOL_VERSION, CLIENT_CAPABILITIES_KEY: {}}


def _meta(**changes: Any) -> dict[str, Any]:
    meta = dict(VALID)
    for key, value in changes.items():
        if value is _DROP:
            meta.pop(key)
        else:
            meta[key] = value
    return meta


_DROP = object()

# -- _meta ------------------------------------------------------------------------


def test_parse_meta_reads_the_fields() -> None:
    """The four per-request fields come out as given."""
    meta = parse_meta(
        {
            "_meta": {
                PROTOCOL_VERSION_KEY: "2026-07-28",
                CLIENT_CAPABILITIES_KEY: {"sampling": {}, "extensions": {TASKS_EXTENSION: {}}},
                CLIENT_INFO_KEY: {"name": "c", "version": "1"},
                LOG_LEVEL_KEY: "info",
            }
        }
    )
    assert meta.protocol_version == "2026-07-28"
    assert meta.has_capability("sampling")
    assert not meta.has_capability("elicitation")
    assert meta.has_tasks
    assert {"name": "c", "version": "1"} == meta.client_info
    assert "info" == meta.log_level


def test_client_info_and_log_level_are_optional() -> None:
    """Only protocolVersion and clientCapabilities are required."""
    meta = parse_meta({"_meta": dict(VALID)})
    assert meta.client_info is None
    assert meta.log_level is None
    assert not meta.has_tasks


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({}, "_meta is required"),
        ({"_meta": None}, "_meta must be an object"),
        ({"_meta": []}, "_meta must be an object"),
        ({"_meta": _meta(**{PROTOCOL_VERSION_KEY: _DROP})}, "protocolVersion"),
        ({"_meta": _meta(**{PROTOCOL_VERSION_KEY: ""})}, "protocolVersion"),
        ({"_meta": _meta(**{PROTOCOL_VERSION_KEY: 20260728})}, "protocolVersion"),
        ({"_meta": _meta(**{CLIENT_CAPABILITIES_KEY: _DROP})}, "clientCapabilities"),
        ({"_meta": _meta(**{CLIENT_CAPABILITIES_KEY: []})}, "clientCapabilities"),
        ({"_meta": _meta(**{CLIENT_CAPABILITIES_KEY: {"extensions": []}})}, "extensions"),
        ({"_meta": _meta(**{CLIENT_INFO_KEY: "me"})}, "clientInfo"),
        ({"_meta": _meta(**{CLIENT_INFO_KEY: {"name": "me"}})}, "clientInfo"),
        ({"_meta": _meta(**{LOG_LEVEL_KEY: "loud"})}, "logLevel"),
    ],
)
def test_malformed_meta_is_invalid_params(params: dict[str, Any], says: str) -> None:
    """Anything missing or malformed is MalformedMeta, a -32602 naming the field."""
    with pytest.raises(MalformedMeta) as info:
        parse_meta(params)
    assert INVALID_PARAMS == info.value.code
    assert says in info.value.message


def test_extension_must_be_an_object_to_count() -> None:
    """An extension declared with a non-object value is not declared."""
    meta = RequestMeta(
        protocol_version=PROTOCOL_VERSION,
        client_capabilities={"extensions": {TASKS_EXTENSION: True}, "sampling": True},
    )
    assert not meta.has_tasks
    assert not meta.has_capability("sampling")


def test_version_2026_passes() -> None:
    """The one version this wire serves."""
    check_version(parse_meta({"_meta": dict(VALID)}))


@pytest.mark.parametrize("version", ["v999.0.0", "2025-11-25", "2026-07-29", "draft"])
def test_other_versions_are_unsupported(version: str) -> None:
    """-32022 with the supported list and the requested version echoed."""
    meta = parse_meta({"_meta": _meta(**{PROTOCOL_VERSION_KEY: version})})
    with pytest.raises(UnsupportedProtocolVersion) as info:
        check_version(meta)
    error = info.value.to_jsonrpc_error()
    assert UNSUPPORTED_PROTOCOL_VERSION == error["code"]
    assert {"supported": list(SUPPORTED_VERSIONS), "requested": version} == error["data"]
    if version == "2025-11-25":
        assert "initialize" in error["message"]


# -- headers ------------------------------------------------------------------------

META = parse_meta({"_meta": dict(VALID)})


def _headers(**extra: str) -> dict[str, str]:
    headers = {"mcp-protocol-version": PROTOCOL_VERSION, "mcp-method": "tools/call"}
    headers.update({k.replace("_", "-"): v for k, v in extra.items()})
    return headers


def test_matching_headers_pass() -> None:
    check_headers(_headers(mcp_name="greet"), "tools/call", {"name": "greet"}, META)


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ({"mcp-method": "tools/call", "mcp-name": "greet"}, "MCP-Protocol-Version"),
        (_headers(mcp_protocol_version="2025-11-25", mcp_name="greet"), "MCP-Protocol-Version"),
        ({"mcp-protocol-version": PROTOCOL_VERSION, "mcp-name": "greet"}, "Mcp-Method"),
        (_headers(mcp_method="tasks/get", mcp_name="greet"), "Mcp-Method"),
        (_headers(mcp_method="TOOLS/CALL", mcp_name="greet"), "Mcp-Method"),
        (_headers(), "Mcp-Name"),
        (_headers(mcp_name="other"), "Mcp-Name"),
        (_headers(mcp_name="GREET"), "Mcp-Name"),
        (_headers(mcp_name="=?base64?b3RoZXI=?="), "Mcp-Name"),  # "other"
        (_headers(mcp_name="=?base64?Z3JlZXQ?="), "Base64"),  # bad padding
        (_headers(mcp_name="=?base64?Z3J!!lZXQ=?="), "Base64"),  # bad characters
        (_headers(mcp_name="gr\x00eet"), "characters"),
        (_headers(mcp_name="greet\n"), "characters"),
        (_headers(mcp_name="grüßt"), "characters"),
    ],
)
def test_bad_headers_are_header_mismatch(headers: dict[str, str], says: str) -> None:
    """Missing, disagreeing or unencodable headers: -32020, naming the header."""
    with pytest.raises(HeaderMismatch) as info:
        check_headers(headers, "tools/call", {"name": "greet"}, META)
    assert HEADER_MISMATCH == info.value.code
    assert says in info.value.message


@pytest.mark.parametrize(
    "value",
    ["greet", "  greet  ", "\tgreet", "=?base64?Z3JlZXQ=?=", " =?base64?Z3JlZXQ=?= "],
)
def test_name_header_is_trimmed_and_decoded(value: str) -> None:
    """Spaces and tabs around a value are not part of it; the sentinel is decoded."""
    check_headers(_headers(mcp_name=value), "tools/call", {"name": "greet"}, META)


def test_base64_name_carries_what_a_header_cannot() -> None:
    """A name outside visible ASCII is compared after decoding."""
    name = "grüß dich"
    encoded = base64.b64encode(name.encode()).decode()
    check_headers(_headers(mcp_name=f"=?base64?{encoded}?="), "tools/call", {"name": name}, META)
    assert name == decode_header_value("Mcp-Name", f"=?base64?{encoded}?=")


@pytest.mark.parametrize("value", ["=?base64?Z3JlZXQ=", "Z3JlZXQ=?=", "=?base64", "?="])
def test_half_sentinels_are_literal(value: str) -> None:
    """Without both markers the value is taken as it is."""
    assert value == decode_header_value("Mcp-Name", value)


def test_empty_sentinel_is_the_empty_string() -> None:
    assert "" == decode_header_value("Mcp-Name", "=?base64??=")


@pytest.mark.parametrize(
    ("method", "params", "source"),
    [
        ("tools/call", {"name": "t"}, ("name", "t")),
        ("prompts/get", {"name": "p"}, ("name", "p")),
        ("resources/read", {"uri": "file:///x"}, ("uri", "file:///x")),
        ("tasks/get", {"taskId": "id-1"}, ("taskId", "id-1")),
        ("tasks/update", {"taskId": "id-2"}, ("taskId", "id-2")),
        ("tasks/cancel", {"taskId": "id-3"}, ("taskId", "id-3")),
        ("tools/list", {"name": "x"}, None),
        ("tools/call", {"name": 7}, None),
        ("tasks/get", {}, None),
    ],
)
def test_mcp_name_sources(
    method: str, params: dict[str, Any], source: tuple[str, str] | None
) -> None:
    """Mcp-Name mirrors params.name, params.uri or params.taskId, when a string."""
    assert source == mcp_name_source(method, params)


def test_name_header_not_needed_without_a_body_value() -> None:
    """A tools/call without a string name needs no Mcp-Name (the method refuses it)."""
    check_headers(_headers(), "tools/call", {"name": 3}, META)
    check_headers(
        {"mcp-protocol-version": PROTOCOL_VERSION, "mcp-method": "tools/list"},
        "tools/list",
        {},
        META,
    )


def test_task_id_must_match_name_header() -> None:
    headers = {"mcp-protocol-version": PROTOCOL_VERSION, "mcp-method": "tasks/get"}
    with pytest.raises(HeaderMismatch):
        check_headers({**headers, "mcp-name": "t-2"}, "tasks/get", {"taskId": "t-1"}, META)
    check_headers({**headers, "mcp-name": "t-1"}, "tasks/get", {"taskId": "t-1"}, META)


# -- task shapes --------------------------------------------------------------------


@pytest.fixture
def store() -> InMemoryTaskStore:
    return InMemoryTaskStore(poll_interval_ms=250)


def test_create_task_result_is_flat(store: InMemoryTaskStore) -> None:
    """resultType task, the task's fields at the top, 2026 key names only."""
    record = store.create("alice", "tools/call", 60_000)
    result = create_task_result(record.task)
    ext_validator("CreateTaskResult").validate(result)
    assert {
        "resultType": "task",
        "taskId": record.task_id,
        "status": "working",
        "createdAt": record.task.created_at,
        "lastUpdatedAt": record.task.last_updated_at,
        "ttlMs": 60_000,
        "pollIntervalMs": 250,
    } == result


def test_unlimited_ttl_is_null() -> None:
    store = InMemoryTaskStore(config=_unlimited())
    record = store.create("alice", "tools/call", None)
    fields = task_fields(record.task)
    assert fields["ttlMs"] is None
    ext_validator("Task").validate(fields)


def _unlimited() -> Any:
    from tasks_store import StoreConfig

    return StoreConfig(default_ttl_ms=None, max_ttl_ms=None)


def test_status_message_is_kept(store: InMemoryTaskStore) -> None:
    record = store.create("alice", "tools/call")
    record = store.update_status(record.task_id, "alice", "input_required", "Waiting.")
    assert "Waiting." == task_fields(record.task)["statusMessage"]


def _get(record: Any, **kwargs: Any) -> dict[str, Any]:
    shaped = detailed_task(record, **kwargs)
    ext_validator("GetTaskResult").validate(shaped)
    assert "requestState" not in shaped
    for key in ("ttl", "pollInterval", "task"):
        assert key not in shaped
    return shaped


def test_working_task_has_no_outcome(store: InMemoryTaskStore) -> None:
    shaped = _get(store.create("alice", "tools/call"))
    assert "complete" == shaped["resultType"]
    assert "working" == shaped["status"]
    assert not {"result", "error", "inputRequests"} & set(shaped)


def test_completed_task_inlines_its_result(store: InMemoryTaskStore) -> None:
    """The stored CallToolResult, with resultType complete and no related-task key."""
    task_id = store.create("alice", "tools/call").task_id
    result = {
        "content": [{"type": "text", "text": "42"}],
        "isError": True,
        "_meta": {RELATED_TASK_META_KEY: {"taskId": task_id}, "x/y": 1},
    }
    record = store.complete_with_result(task_id, "alice", "completed", None, result)
    shaped = _get(record)
    assert "completed" == shaped["status"]
    assert {
        "content": [{"type": "text", "text": "42"}],
        "isError": True,
        "_meta": {"x/y": 1},
        "resultType": "complete",
    } == shaped["result"]
    assert "error" not in shaped


def test_completed_without_a_result_inlines_an_empty_one(store: InMemoryTaskStore) -> None:
    task_id = store.create("alice", "tools/call").task_id
    record = store.update_status(task_id, "alice", TaskStatus.COMPLETED)
    assert {"resultType": "complete", "content": []} == _get(record)["result"]


def test_failed_task_inlines_its_error(store: InMemoryTaskStore) -> None:
    """The stored JsonRpcError is the error; there is no result."""
    task_id = store.create("alice", "tools/call").task_id
    error = JsonRpcError(-32603, "API rate limit exceeded", {"retryAfter": 3})
    record = store.complete_with_result(task_id, "alice", "failed", "Rate limited.", error)
    shaped = _get(record)
    assert {"code": -32603, "message": "API rate limit exceeded", "data": {"retryAfter": 3}} == (
        shaped["error"]
    )
    assert "result" not in shaped
    assert "Rate limited." == shaped["statusMessage"]


def test_failed_without_an_error_inlines_an_internal_error(store: InMemoryTaskStore) -> None:
    task_id = store.create("alice", "tools/call").task_id
    record = store.update_status(task_id, "alice", "failed", "Gave up.")
    assert {"code": -32603, "message": "Gave up."} == _get(record)["error"]


def test_input_required_task_inlines_its_requests(store: InMemoryTaskStore) -> None:
    task_id = store.create("alice", "tools/call").task_id
    record = store.update_status(task_id, "alice", "input_required")
    assert {} == _get(record)["inputRequests"]
    asked = {"q": {"method": "roots/list", "params": {}}}
    assert asked == _get(record, input_requests=asked)["inputRequests"]


def test_cancelled_task_has_no_outcome(store: InMemoryTaskStore) -> None:
    task_id = store.create("alice", "tools/call").task_id
    shaped = _get(store.cancel(task_id, "alice", "Stopped."))
    assert "cancelled" == shaped["status"]
    assert not {"result", "error", "inputRequests"} & set(shaped)


def test_variables_go_into_meta(store: InMemoryTaskStore) -> None:
    task_id = store.create("alice", "tools/call").task_id
    record = store.set_variables(task_id, "alice", {"progress": 0.5})
    assert {"progress": 0.5} == _get(record)["_meta"]


def test_a_result_that_is_not_an_object_is_wrapped() -> None:
    assert {"resultType": "complete", "value": "done"} == inline_result("done")


def test_inline_result_is_a_copy() -> None:
    stored = {"content": [], "_meta": {"k": [1]}}
    inlined = inline_result(stored)
    inlined["_meta"]["k"].append(2)
    assert {"content": [], "_meta": {"k": [1]}} == stored

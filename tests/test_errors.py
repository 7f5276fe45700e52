"""Errors: codes, fields, messages, JSON-RPC shape, builtin bases, pickling."""

# Asserts read ``expected == actual`` (project convention), which SIM300 calls Yoda.

from __future__ import annotations

import ast
import json
import pickle
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import tasks_store
from tasks_store import (
    AnonymousAccessDenied,
    Expired,
    InvalidCursor,
    InvalidParams,
    InvalidTransition,
    NotFound,
    NotReady,
    ResourceExhausted,
    StoreConfig,
    StoreError,
    TaskError,
    TaskSecurityConfig,
    TtlExceeded,
    VariableSizeExceeded,
    WaitTimeout,
    errors,
)

from .mcp_schema import SCHEMA_PATH

EXPIRED_AT = datetime(2025, 11, 25, 10, 31, 0, 250000, tzinfo=timezone.utc)

#: One instance of every error, with the fields it was built from, its code,
#: and the JSON-RPC ``data`` it must carry (None: no ``data`` key).
CASES: list[tuple[TaskError, dict[str, Any], int, dict[str, Any] | None]] = [
    (
        InvalidTransition("t-1", "completed", "working", "Create a new task"),
        {
            "task_id": "t-1",
            "from_status": "completed",
            "to_status": "working",
            "suggested_action": "Create a new task",
        },
        -32602,
        {
            "taskId": "t-1",
            "fromStatus": "completed",
            "toStatus": "working",
            "suggestedAction": "Create a new task",
        },
    ),
    (
        InvalidTransition("t-1", "working", "working"),
        {
            "task_id": "t-1",
            "from_status": "working",
            "to_status": "working",
            "suggested_action": None,
        },
        -32602,
        {"taskId": "t-1", "fromStatus": "working", "toStatus": "working"},
    ),
    (NotFound("t-2"), {"task_id": "t-2"}, -32602, {"taskId": "t-2"}),
    (
        Expired("t-3", EXPIRED_AT),
        {"task_id": "t-3", "expired_at": EXPIRED_AT},
        -32602,
        {"taskId": "t-3", "expiredAt": "2025-11-25T10:31:00.250Z"},
    ),
    (
        NotReady("t-4", "working"),
        {"task_id": "t-4", "current_status": "working"},
        -32602,
        {"taskId": "t-4", "status": "working"},
    ),
    (
        VariableSizeExceeded(100, 123),
        {"limit_bytes": 100, "actual_bytes": 123},
        -32602,
        {"limitBytes": 100, "actualBytes": 123},
    ),
    (
        TtlExceeded(90_000, 60_000),
        {"requested_ms": 90_000, "max_ms": 60_000},
        -32602,
        {"requestedMs": 90_000, "maxMs": 60_000},
    ),
    (AnonymousAccessDenied(), {}, -32602, None),
    (InvalidCursor("abc"), {"cursor": "abc"}, -32602, {"cursor": "abc"}),
    (InvalidParams("limit must be an int"), {"message": "limit must be an int"}, -32602, None),
    (
        ResourceExhausted("Wait for some to expire"),
        {"suggested_action": "Wait for some to expire"},
        -32603,
        {"suggestedAction": "Wait for some to expire"},
    ),
    (ResourceExhausted(), {"suggested_action": None}, -32603, None),
    (StoreError("redis is down"), {"message": "redis is down"}, -32603, None),
    (
        WaitTimeout("t-5", 0.5),
        {"task_id": "t-5", "timeout": 0.5},
        -32603,
        {"taskId": "t-5", "timeout": 0.5},
    ),
]
IDS = [f"{type(e).__name__}-{i}" for i, (e, *_) in enumerate(CASES)]

#: The words each message must contain: what a reader needs to act on it.
MESSAGE_PARTS: dict[str, tuple[str, ...]] = {
    "InvalidTransition-0": ("t-1", "completed", "working", "Create a new task"),
    "InvalidTransition-1": ("t-1", "working"),
    "NotFound-2": ("not found", "t-2"),
    "Expired-3": ("t-3", "expired", "2025-11-25T10:31:00.250Z"),
    "NotReady-4": ("t-4", "working"),
    "VariableSizeExceeded-5": ("100", "123", "bytes"),
    "TtlExceeded-6": ("90000", "60000", "ttl"),
    "AnonymousAccessDenied-7": ("Anonymous",),
    "InvalidCursor-8": ("cursor", "'abc'"),
    "InvalidParams-9": ("limit must be an int",),
    "ResourceExhausted-10": ("Too many tasks", "Wait for some to expire"),
    "ResourceExhausted-11": ("Too many tasks",),
    "StoreError-12": ("redis is down",),
    "WaitTimeout-13": ("t-5", "0.5", "seconds"),
}


@pytest.fixture(scope="module")
def error_validator() -> jsonschema.protocols.Validator:
    """A validator for ``$defs.Error`` of the vendored 2025-11-25 schema."""
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator({"$ref": "#/$defs/Error", "$defs": schema["$defs"]})


def test_every_error_class_is_covered() -> None:
    """Every public error class appears in the table these tests walk."""
    public = {
        name
        for name in tasks_store.__all__
        if isinstance(getattr(tasks_store, name), type)
        and issubclass(getattr(tasks_store, name), TaskError)
        and name != "TaskError"
    }
    assert public == {type(e).__name__ for e, *_ in CASES}


@pytest.mark.parametrize(("error", "fields", "code", "data"), CASES, ids=IDS)
def test_code(error: TaskError, fields: dict[str, Any], code: int, data: Any) -> None:
    """Each error carries the JSON-RPC code a server answers with."""
    assert code == error.code
    assert code == type(error).code


@pytest.mark.parametrize(("error", "fields", "code", "data"), CASES, ids=IDS)
def test_fields(error: TaskError, fields: dict[str, Any], code: int, data: Any) -> None:
    """Each error keeps the values it was built from as attributes."""
    assert fields == {name: getattr(error, name) for name in fields}


@pytest.mark.parametrize(
    ("error", "parts"),
    [(error, MESSAGE_PARTS[name]) for (error, *_), name in zip(CASES, IDS, strict=True)],
    ids=IDS,
)
def test_message(error: TaskError, parts: tuple[str, ...]) -> None:
    """str(error) is its message, and the message names what went wrong."""
    assert error.message == str(error)
    for part in parts:
        assert part.lower() in error.message.lower()


@pytest.mark.parametrize(("error", "fields", "code", "data"), CASES, ids=IDS)
def test_to_jsonrpc_error_shape(
    error: TaskError,
    fields: dict[str, Any],
    code: int,
    data: Any,
    error_validator: jsonschema.protocols.Validator,
) -> None:
    """to_jsonrpc_error gives {code, message, data?}, valid as the schema's Error."""
    expected: dict[str, Any] = {"code": code, "message": error.message}
    if data is not None:
        expected["data"] = data
    wire = error.to_jsonrpc_error()
    assert expected == wire
    error_validator.validate(wire)
    assert wire == json.loads(json.dumps(wire))  # plain JSON


def test_invalid_cursor_of_a_non_string_has_no_data() -> None:
    """A non-string cursor is shown in the message but not echoed as data."""
    error = InvalidCursor(12345)
    assert {"code": -32602, "message": error.message} == error.to_jsonrpc_error()
    assert "12345" in error.message


def test_invalid_cursor_message_is_cut_short() -> None:
    """A huge cursor does not make a huge message."""
    error = InvalidCursor("x" * 10_000)
    assert len(error.message) < 120


def test_not_found_message_is_cut_short_for_a_huge_id() -> None:
    """A huge task id does not make a huge message."""
    error = NotFound("y" * 10_000)
    assert len(error.message) < 150
    assert "y" * 10_000 == error.task_id


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (InvalidParams, ValueError),
        (WaitTimeout, TimeoutError),
        (NotFound, LookupError),
    ],
)
def test_builtin_bases(cls: type[TaskError], builtin: type[Exception]) -> None:
    """Errors that resemble a builtin can be caught as that builtin."""
    assert issubclass(cls, builtin)
    assert issubclass(cls, TaskError)


@pytest.mark.parametrize(("error", "fields", "code", "data"), CASES, ids=IDS)
def test_every_error_is_a_task_error(
    error: TaskError, fields: dict[str, Any], code: int, data: Any
) -> None:
    """Catching TaskError catches every error the library raises on purpose."""
    assert isinstance(error, TaskError)
    assert isinstance(error, Exception)


@pytest.mark.parametrize(("error", "fields", "code", "data"), CASES, ids=IDS)
def test_pickle_round_trip_keeps_fields(
    error: TaskError, fields: dict[str, Any], code: int, data: Any
) -> None:
    """A pickled error comes back the same type with the same fields and message."""
    copy = pickle.loads(pickle.dumps(error))
    assert type(error) is type(copy)
    assert fields == {name: getattr(copy, name) for name in fields}
    assert error.message == copy.message
    assert error.to_jsonrpc_error() == copy.to_jsonrpc_error()


OWNER = "owner-secret-7f3a"
OTHER = "owner-other-91bc"


def _raised(call: Any) -> TaskError:
    with pytest.raises(TaskError) as info:
        call()
    return info.value


def test_store_errors_never_name_an_owner(make_store: Any, clock: Any) -> None:
    """No error a store raises names an owner, in its message or its JSON-RPC data."""
    store = make_store(
        config=StoreConfig(max_variable_size_bytes=20, default_ttl_ms=1000, max_ttl_ms=5000),
        security=TaskSecurityConfig(max_tasks_per_owner=3),
    )
    done = store.create(OWNER, "tools/call").task_id
    store.complete_with_result(done, OWNER, "completed", None, {"ok": True})
    working = store.create(OWNER, "tools/call").task_id
    doomed = store.create(OWNER, "tools/call", ttl=10).task_id
    errors = [
        _raised(lambda: store.get(working, OTHER)),
        _raised(lambda: store.get("no-such-task", OWNER)),
        _raised(lambda: store.update_status(done, OWNER, "working")),
        _raised(lambda: store.update_status(working, OWNER, "bogus")),
        _raised(lambda: store.get_result(working, OWNER)),
        _raised(lambda: store.set_variables(working, OWNER, {"k": "x" * 100})),
        _raised(lambda: store.set_variables(working, OWNER, {1: "x"})),
        _raised(lambda: store.create(OWNER, "tools/call", ttl=10_000)),
        _raised(lambda: store.create(OWNER, "tools/call")),
        _raised(lambda: store.create("", "tools/call")),
        _raised(lambda: store.list(OWNER, cursor="garbage")),
        _raised(lambda: store.list(OWNER, limit=0)),
        _raised(lambda: store.wait(working, OWNER, timeout=0)),
        _raised(lambda: store.cancel(done, OWNER)),
    ]
    clock.advance(1)
    errors.append(_raised(lambda: store.cancel(doomed, OWNER)))
    assert [
        NotFound,
        NotFound,
        InvalidTransition,
        InvalidParams,
        NotReady,
        VariableSizeExceeded,
        InvalidParams,
        TtlExceeded,
        ResourceExhausted,
        AnonymousAccessDenied,
        InvalidCursor,
        InvalidParams,
        WaitTimeout,
        InvalidTransition,
        Expired,
    ] == [type(e) for e in errors]
    for error in errors:
        text = json.dumps(error.to_jsonrpc_error()) + str(error)
        assert OWNER not in text
        assert OTHER not in text


# -- the one error table ----------------------------------------------------------

PROTOCOL_ERRORS = [
    (errors.ParseError, -32700),
    (errors.InvalidRequest, -32600),
    (errors.MethodNotFound, -32601),
]


@pytest.mark.parametrize(("cls", "code"), PROTOCOL_ERRORS)
def test_protocol_errors_are_task_errors_with_a_code(
    cls: type[TaskError], code: int, error_validator: jsonschema.protocols.Validator
) -> None:
    """ParseError, InvalidRequest and MethodNotFound carry their code like every error."""
    error = cls("Something is wrong")
    assert isinstance(error, TaskError)
    assert code == cls.code
    wire = error.to_jsonrpc_error()
    assert {"code": code, "message": "Something is wrong"} == wire
    error_validator.validate(wire)
    copy = pickle.loads(pickle.dumps(error))
    assert type(error) is type(copy)
    assert wire == copy.to_jsonrpc_error()


def test_code_constants() -> None:
    """The five JSON-RPC 2.0 codes, defined in errors."""
    assert (-32700, -32600, -32601, -32602, -32603) == (
        errors.PARSE_ERROR,
        errors.INVALID_REQUEST,
        errors.METHOD_NOT_FOUND,
        errors.INVALID_PARAMS,
        errors.INTERNAL_ERROR,
    )
    assert errors.INTERNAL_ERROR == TaskError.code


def test_error_object_and_code_of_any_exception() -> None:
    """A TaskError answers with its own object; anything else is generic -32603."""
    not_found = NotFound("t-1")
    assert not_found.to_jsonrpc_error() == errors.error_object(not_found)
    assert -32602 == errors.error_code(not_found)
    secret = RuntimeError("secret path /etc/passwd")
    assert {"code": -32603, "message": "Internal error"} == errors.error_object(secret)
    assert -32603 == errors.error_code(secret)


def _code_literals(path: Path) -> list[int]:
    """Return the JSON-RPC codes (-32768..-32000) written as numbers in *path*'s code."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.UnaryOp)
            and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant)
            and type(node.operand.value) is int
            and 32000 <= node.operand.value <= 32768
        ):
            found.append(-node.operand.value)
    return found


def test_every_code_is_written_once_in_errors_py() -> None:
    """No module but errors.py writes a JSON-RPC code, and errors.py writes each once."""
    package = Path(tasks_store.__file__).parent
    elsewhere = {
        str(path.relative_to(package)): _code_literals(path)
        for path in sorted(package.rglob("*.py"))
        if path.name != "errors.py"
    }
    assert {} == {name: codes for name, codes in elsewhere.items() if codes}
    in_errors = _code_literals(package / "errors.py")
    assert sorted(set(in_errors)) == sorted(in_errors)

"""tasks_store.mcp.tools: the Tool record, the ToolRegistry, argument checks, call_tool."""

# Asserts read ``expected == actual`` (project convention), which SIM300 calls Yoda.

from __future__ import annotations

import threading
from typing import Any

import attrs
import jsonschema
import pytest

from tasks_store import InvalidParams, StoreError
from tasks_store.mcp import Tool, ToolRegistry
from tasks_store.mcp.context import CallContext
from tasks_store.mcp.tools import call_tool, tool_error_result

from .mcp_schema import validator

pytestmark = pytest.mark.timeout(30)


def ok(arguments: dict[str, Any], ctx: Any) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": "ok"}]}


SCHEMA = {
    "type": "object",
    "properties": {
        "steps": {"type": "integer", "minimum": 1},
        "items": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["steps"],
    "additionalProperties": False,
}


def test_tool_defaults_and_wire_shape() -> None:
    """A minimal tool: object schema, forbidden; the wire shape validates as a Tool."""
    tool = Tool(name="ok", fn=ok)
    wire = tool.to_wire()
    assert {
        "name": "ok",
        "inputSchema": {"type": "object"},
        "execution": {"taskSupport": "forbidden"},
    } == wire
    validator("Tool").validate(wire)


def test_full_tool_wire_shape() -> None:
    """Every field reaches the wire; execution can be left out (older revisions)."""
    out = {"type": "object", "properties": {"n": {"type": "integer"}}}
    tool = Tool(
        name="full", fn=ok, description="Does it all.", input_schema=SCHEMA,
        output_schema=out, task_support="required", title="Full",
    )
    wire = tool.to_wire()
    validator("Tool").validate(wire)
    assert {
        "name": "full", "title": "Full", "description": "Does it all.", "inputSchema": SCHEMA,
        "outputSchema": out, "execution": {"taskSupport": "required"},
    } == wire
    assert "execution" not in tool.to_wire(execution=False)


@pytest.mark.parametrize(
    "name", ["", "a b", "caf\u00e9", "x" * 129, "slash/name", "tab\t", 5, None]
)
def test_bad_names_are_refused(name: Any) -> None:
    """Names match ^[A-Za-z0-9_.-]{1,128}$."""
    with pytest.raises(ValueError, match="tool name"):
        Tool(name=name, fn=ok)


@pytest.mark.parametrize("name", ["a", "A.b-c_d", "x" * 128, "get_weather.v2"])
def test_good_names_are_accepted(name: str) -> None:
    assert name == Tool(name=name, fn=ok).name


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("input_schema", {"type": "string"}, ValueError),
        ("input_schema", {"properties": {}}, ValueError),
        ("input_schema", [1], TypeError),
        ("input_schema", None, TypeError),
        ("input_schema", {"type": "object", "x": float("nan")}, InvalidParams),
        ("output_schema", {"type": "array"}, ValueError),
        ("task_support", "sometimes", ValueError),
        ("task_support", None, ValueError),
        ("description", 5, TypeError),
        ("fn", "not callable", TypeError),
    ],
)
def test_bad_fields_are_refused(field: str, value: Any, error: type[Exception]) -> None:
    """Each field is checked when the record is built."""
    kwargs: dict[str, Any] = {"name": "t", "fn": ok, field: value}
    with pytest.raises(error):
        Tool(**kwargs)


def test_invalid_json_schema_is_refused_when_built() -> None:
    """An input_schema that is not a valid JSON Schema fails at registration, not at call."""
    with pytest.raises(jsonschema.SchemaError):
        Tool(name="t", fn=ok, input_schema={"type": "object", "properties": {"a": {"type": 5}}})


def test_schemas_are_frozen_copies() -> None:
    """Changing the schema given, or the one to_wire returned, changes nothing."""
    schema: dict[str, Any] = {"type": "object", "properties": {"a": {"type": "integer"}}}
    tool = Tool(name="t", fn=ok, input_schema=schema)
    schema["properties"]["a"]["type"] = "string"
    tool.to_wire()["inputSchema"]["properties"]["a"]["type"] = "string"
    assert {"type": "integer"} == tool.to_wire()["inputSchema"]["properties"]["a"]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        tool.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        tool.input_schema["type"] = "x"  # type: ignore[index]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "'steps' is a required property"),
        ({"steps": "3"}, "'3' is not of type 'integer' (at arguments.steps)"),
        ({"steps": 0}, "0 is less than the minimum of 1 (at arguments.steps)"),
        ({"steps": 1, "items": ["a", 2]}, "2 is not of type 'string' (at arguments.items[1])"),
        (
            {"steps": 1, "extra": True},
            "Additional properties are not allowed ('extra' was unexpected)",
        ),
    ],
    ids=repr,
)
def test_check_arguments_gives_the_reason(arguments: dict[str, Any], message: str) -> None:
    """Arguments that do not match: InvalidParams naming the tool, the rule and where."""
    tool = Tool(name="counter", fn=ok, input_schema=SCHEMA)
    with pytest.raises(InvalidParams) as caught:
        tool.check_arguments(arguments)
    assert f"Invalid arguments for tool 'counter': {message}" == caught.value.message


def test_check_arguments_returns_a_fresh_copy() -> None:
    """Valid arguments come back as a copy: the tool cannot change the caller's dict."""
    tool = Tool(name="counter", fn=ok, input_schema=SCHEMA)
    given = {"steps": 2, "items": ["a"]}
    copy = tool.check_arguments(given)
    copy["items"].append("b")
    assert {"steps": 2, "items": ["a"]} == given


@pytest.mark.parametrize("arguments", [None, [1], "x", 5])
def test_arguments_must_be_an_object(arguments: Any) -> None:
    with pytest.raises(InvalidParams, match="arguments must be an object"):
        Tool(name="t", fn=ok).check_arguments(arguments)


def test_object_schema_needs_no_validator() -> None:
    """The schema {"type": "object"} accepts any object without jsonschema."""
    tool = Tool(name="t", fn=ok)
    assert tool._validator is None
    assert {"anything": [1, {"x": None}]} == tool.check_arguments({"anything": [1, {"x": None}]})


def test_registry_decorator_bare_and_with_arguments() -> None:
    """@tools.tool and @tools.tool(...) register; defaults come from the function."""
    tools = ToolRegistry()

    @tools.tool
    def plain(arguments: dict[str, Any], ctx: Any) -> dict[str, Any]:
        """Plain tool.

        More text.
        """
        return ok(arguments, ctx)

    @tools.tool(name="renamed", description="Given.", input_schema=SCHEMA, task_support="optional")
    def named(arguments: dict[str, Any], ctx: Any) -> dict[str, Any]:
        return ok(arguments, ctx)

    assert "plain" == plain.__name__  # the function itself is returned
    assert ["plain", "renamed"] == [t.name for t in tools]
    got_plain, got_named = tools.get("plain"), tools.get("renamed")
    assert got_plain is not None
    assert got_named is not None
    assert "Plain tool.\n\nMore text." == got_plain.description
    assert ("Given.", "optional") == (got_named.description, got_named.task_support)
    assert "renamed" in tools
    assert "named" not in tools
    assert 2 == len(tools)
    assert tools.get("named") is None


def test_registry_refuses_duplicates_and_non_tools() -> None:
    tools = ToolRegistry([Tool(name="a", fn=ok)])
    with pytest.raises(ValueError, match="registered already"):
        tools.add(Tool(name="a", fn=ok))
    with pytest.raises(TypeError, match="expected a Tool"):
        tools.add(ok)  # type: ignore[arg-type]
    assert 1 == len(tools)


def test_registry_pages_in_order() -> None:
    """page() walks every tool once, in registration order; bad cursors are InvalidParams."""
    tools = ToolRegistry(Tool(name=f"t{n}", fn=ok) for n in range(5))
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = tools.page(cursor, page_size=2)
        seen += [t.name for t in page]
        if cursor is None:
            break
    assert [f"t{n}" for n in range(5)] == seen
    page, cursor = tools.page(page_size=5)
    assert (5, None) == (len(page), cursor)
    for bad in ("", "garbage", "dG9vbHM6MA==", "dG9vbHM6OQ==", "x" * 100):
        with pytest.raises(InvalidParams, match="cursor"):
            tools.page(bad)
    with pytest.raises(ValueError, match="page_size"):
        tools.page(page_size=0)


def test_cursor_stays_valid_while_tools_are_added() -> None:
    """Adding tools (append-only) keeps an issued cursor's position."""
    tools = ToolRegistry(Tool(name=f"t{n}", fn=ok) for n in range(3))
    _, cursor = tools.page(page_size=2)
    tools.add(Tool(name="t3", fn=ok))
    rest, end = tools.page(cursor, page_size=2)
    assert (["t2", "t3"], None) == ([t.name for t in rest], end)


def test_concurrent_adds_lose_nothing() -> None:
    tools = ToolRegistry()

    def add(prefix: str) -> None:
        for n in range(100):
            tools.add(Tool(name=f"{prefix}{n}", fn=ok))

    threads = [threading.Thread(target=add, args=(p,)) for p in "abcd"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert 400 == len(tools)
    assert 400 == len({t.name for t in tools})


def test_call_tool_results_and_errors() -> None:
    """call_tool: the result; an exception -> isError; a TaskError passes; garbage -> -32603."""
    ctx = CallContext("user:a", "t")
    assert ok({}, ctx) == call_tool(ok, "t", {}, ctx)

    def raises(arguments: dict[str, Any], ctx: Any) -> Any:
        raise KeyError("missing")

    assert tool_error_result("'missing'") == call_tool(raises, "t", {}, ctx)

    def protocol(arguments: dict[str, Any], ctx: Any) -> Any:
        raise InvalidParams("no")

    with pytest.raises(InvalidParams):
        call_tool(protocol, "t", {}, ctx)
    for garbage in (None, {"text": "no content"}, {"content": "x"}, {"content": [float("nan")]}):

        def bad(arguments: dict[str, Any], ctx: Any, garbage: Any = garbage) -> Any:
            return garbage

        with pytest.raises(StoreError):
            call_tool(bad, "t", {}, ctx)


def test_call_tool_hands_the_tool_a_copy() -> None:
    """What the tool does to its arguments does not reach the caller's."""
    given = {"items": [1]}

    def mutate(arguments: dict[str, Any], ctx: Any) -> dict[str, Any]:
        arguments["items"].append(2)
        return ok(arguments, ctx)

    call_tool(mutate, "t", given, None)
    assert {"items": [1]} == given

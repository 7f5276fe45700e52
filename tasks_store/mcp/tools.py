"""
Tools: the :class:`Tool` record, the :class:`ToolRegistry`, and running one call.

Register tools the way FastMCP users do, with a decorator::

    tools = ToolRegistry()

    @tools.tool(
        description="Count to steps, one step a second.",
        input_schema={"type": "object", "properties": {"steps": {"type": "integer"}},
                      "required": ["steps"]},
        task_support="optional",
    )
    def slow_count(arguments, ctx):
        ...
        return {"content": [{"type": "text", "text": "done"}]}

or build a :class:`Tool` and :meth:`ToolRegistry.add` it.  A tool is
``fn(arguments, ctx)`` returning a ``CallToolResult`` mapping:

* *arguments* is a fresh copy of the call's ``arguments``, already checked
  against ``input_schema`` (JSON Schema 2020-12 unless the schema names
  another ``$schema``; the check needs ``jsonschema``, the ``mcp`` extra, and
  is skipped for the schema ``{"type": "object"}``).
* *ctx* is a :class:`~tasks_store.mcp.context.TaskContext` when the call runs
  as a task, and a :class:`~tasks_store.mcp.context.CallContext` when it is
  answered inline: the same variable methods (kept for the call only, not
  stored), ``is_cancelled()`` False, ``task_id`` None.

Errors a tool raises:

* a :class:`~tasks_store.errors.TaskError` is a protocol error: inline, the
  JSON-RPC error response; in a task, the task ends ``failed`` with it.
* any other exception is a tool execution error: the result
  ``{"content": [{"type": "text", "text": str(exc)}], "isError": true}``
  (no traceback; inline, it is the answer, and a task completes with it).

``execution.taskSupport`` is ``"forbidden"`` (the default: never a task),
``"optional"`` or ``"required"`` (only as a task).

A tool may also have a ``prepare`` step, ``prepare(arguments, ctx)``,
returning the arguments the tool then runs with (None: unchanged).  It runs
before the task exists: on 2026-07-28 inline, where it can ask the client
for input through a multi round-trip request (``ctx.elicit`` answers, or
the request is answered ``input_required`` and retried), so that a tool
gathers input first and is then answered with a ``CreateTaskResult``; on
2025-11-25, as the first step of the task, where ``ctx.elicit`` blocks.

:class:`ToolRegistry` tells listeners when a tool is added
(:meth:`ToolRegistry.on_change`): the 2026-07-28 ``subscriptions/listen``
streams send ``notifications/tools/list_changed`` then.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Union, overload

import attrs

from ..errors import InvalidParams, StoreError, TaskError
from ..wire import check_json
from ..wire import json_type as _json_type
from .registry import Registry

if TYPE_CHECKING:
    from .context import CallContext, TaskContext
    from .runner import TaskRunner

__all__ = [
    "NAME_PATTERN",
    "TASK_SUPPORT_VALUES",
    "TaskSupport",
    "Tool",
    "ToolContext",
    "ToolFailed",
    "ToolFn",
    "ToolRegistry",
    "answer_tools_call",
    "call_tool",
    "check_tools",
    "tool_error_result",
]

logger = logging.getLogger("tasks_store")

#: What ``execution.taskSupport`` may say.
TaskSupport = Literal["forbidden", "optional", "required"]
TASK_SUPPORT_VALUES: tuple[str, ...] = ("forbidden", "optional", "required")

#: A tool name: 1 to 128 of ASCII letters, digits, ``_``, ``.`` and ``-``.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,128}")

#: What a tool gets as *ctx*: the task's context, or the inline call's.
ToolContext = Union["TaskContext", "CallContext"]

#: A tool: ``fn(arguments, ctx)`` returning a ``CallToolResult`` mapping.
ToolFn = Callable[[dict[str, Any], Any], Mapping[str, Any]]

_F = TypeVar("_F", bound=Callable[..., Any])

_OBJECT_SCHEMA: Mapping[str, Any] = MappingProxyType({"type": "object"})


def _freeze(value: Any) -> Any:
    """Return a deep read-only copy of a JSON value (dicts -> proxies, lists -> tuples)."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    """Return a fresh, mutable copy of a value :func:`_freeze` made."""
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


def _schema(name: str, value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        msg = f"{name} must be a JSON Schema object, got {type(value).__name__}"
        raise TypeError(msg)
    plain = _thaw(_freeze(value))
    check_json(plain, name)
    if plain.get("type") != "object":
        msg = f'{name} must have "type": "object" (MCP requires it), got {plain.get("type")!r}'
        raise ValueError(msg)
    return _freeze(plain)


def _input_schema(value: Any) -> Any:
    if value is None:
        msg = "input_schema must be a JSON Schema object, got None"
        raise TypeError(msg)
    return _schema("input_schema", value)


def _output_schema(value: Any) -> Any:
    return _schema("output_schema", value)


def _check_name(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or NAME_PATTERN.fullmatch(value) is None:
        msg = f"tool name must match ^[A-Za-z0-9_.-]{{1,128}}$, got {value!r}"
        raise ValueError(msg)


def _check_optional_str(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, str):
        msg = f"{attribute.name} must be a str or None, got {type(value).__name__}"
        raise TypeError(msg)


def _check_task_support(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in TASK_SUPPORT_VALUES:
        msg = f"task_support must be one of {', '.join(TASK_SUPPORT_VALUES)}; got {value!r}"
        raise ValueError(msg)


def _check_fn(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not callable(value):
        msg = f"fn must be callable, got {type(value).__name__}"
        raise TypeError(msg)


@attrs.frozen(kw_only=True)
class Tool:
    """
    One tool, as ``tools/list`` shows it and ``tools/call`` runs it.

    Attributes:
        name: matches ``^[A-Za-z0-9_.-]{1,128}$``.
        fn: ``fn(arguments, ctx)`` returning a ``CallToolResult`` mapping.
        description: for the model; omitted from the wire when None.
        input_schema: a JSON Schema with ``"type": "object"``; the
            arguments are checked against it before *fn* runs (-32602 with
            the reason when they do not match).
        output_schema: a JSON Schema with ``"type": "object"`` for
            ``structuredContent``, or None.  Listed only; not enforced.
        task_support: ``"forbidden"`` (default), ``"optional"`` or
            ``"required"``: ``execution.taskSupport``.
        title: a display name, or None.
        prepare: ``prepare(arguments, ctx)`` returning the arguments *fn*
            runs with (None: unchanged), run before the task exists (see
            the module docstring), or None.

    Raises:
        ValueError: a bad name, a schema whose type is not ``object``, or a
            bad *task_support*.
        TypeError: a field of the wrong type.
        ImportError: *input_schema* needs checking and ``jsonschema`` is not
            installed (``pip install 'tasks_store[mcp]'``).
        jsonschema.SchemaError: *input_schema* is not a valid JSON Schema.

    Schemas are stored deep-frozen; :meth:`to_wire` returns fresh copies.
    """

    name: str = attrs.field(validator=_check_name)
    fn: ToolFn = attrs.field(validator=_check_fn, eq=False)
    description: str | None = attrs.field(default=None, validator=_check_optional_str)
    input_schema: Mapping[str, Any] = attrs.field(
        default=_OBJECT_SCHEMA, converter=_input_schema
    )
    output_schema: Mapping[str, Any] | None = attrs.field(
        default=None, converter=_output_schema
    )
    task_support: TaskSupport = attrs.field(default="forbidden", validator=_check_task_support)
    title: str | None = attrs.field(default=None, validator=_check_optional_str)
    prepare: Callable[[dict[str, Any], Any], Mapping[str, Any] | None] | None = attrs.field(
        default=None, validator=attrs.validators.optional(_check_fn), eq=False
    )
    _validator: Any = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        validator = None
        if _thaw(self.input_schema) != {"type": "object"}:
            validator = _build_validator(self.name, _thaw(self.input_schema))
        object.__setattr__(self, "_validator", validator)

    def to_wire(self, *, execution: bool = True) -> dict[str, Any]:
        """
        Return the tool as ``tools/list`` lists it (2025-11-25 ``Tool``).

        Args:
            execution: include ``execution.taskSupport`` (2025-11-25); off
                for the older revisions, which have no tasks.
        """
        wire: dict[str, Any] = {"name": self.name}
        if self.title is not None:
            wire["title"] = self.title
        if self.description is not None:
            wire["description"] = self.description
        wire["inputSchema"] = _thaw(self.input_schema)
        if self.output_schema is not None:
            wire["outputSchema"] = _thaw(self.output_schema)
        if execution:
            wire["execution"] = {"taskSupport": self.task_support}
        return wire

    def check_arguments(self, arguments: object) -> dict[str, Any]:
        """
        Return a fresh copy of *arguments* once they match ``input_schema``.

        Raises:
            InvalidParams: *arguments* is not a JSON object, or does not
                match; the message gives the reason and where.
        """
        if not isinstance(arguments, dict):
            msg = f"arguments must be an object, got {type(arguments).__name__}"
            raise InvalidParams(msg)
        check_json(arguments, "arguments")
        copy: dict[str, Any] = json.loads(json.dumps(arguments))
        if self._validator is not None:
            error = _best_error(self._validator, copy)
            if error is not None:
                msg = f"Invalid arguments for tool {self.name!r}: {error}"
                raise InvalidParams(msg)
        return copy

    def call(
        self, arguments: dict[str, Any], ctx: Any, *, prepared: bool = False
    ) -> dict[str, Any]:
        """
        Run the tool on checked *arguments*: :attr:`prepare` first (unless
        *prepared*: it ran already), then *fn*; see :func:`call_tool`.
        """
        if self.prepare is not None and not prepared:
            try:
                arguments = self.prepared_arguments(arguments, ctx)
            except ToolFailed as failed:
                return failed.result
        return call_tool(self.fn, self.name, arguments, ctx)

    def prepared_arguments(self, arguments: dict[str, Any], ctx: Any) -> dict[str, Any]:
        """
        Run :attr:`prepare`; return the arguments *fn* runs with (a fresh copy).

        Raises:
            TaskError: raised by ``prepare`` (a protocol error; on 2026-07-28
                ``InputRequired`` too, which becomes an ``InputRequiredResult``).
            ToolFailed: ``prepare`` raised anything else: a tool error, its
                result attached.
            StoreError: ``prepare`` returned something that is not a JSON
                object or None.
        """
        if self.prepare is None:
            return arguments
        try:
            out = self.prepare(json.loads(json.dumps(arguments)), ctx)
        except TaskError:
            raise
        except Exception as exc:
            logger.info("tool %r: prepare raised %s", self.name, type(exc).__name__, exc_info=True)
            raise ToolFailed(tool_error_result(str(exc) or type(exc).__name__)) from None
        if out is None:
            return arguments
        if not isinstance(out, Mapping):
            msg = f"tool {self.name!r}: prepare returned something that is not an object or None"
            logger.error("%s", msg)
            raise StoreError(msg)
        try:
            check_json(dict(out), "prepared arguments")
        except InvalidParams as exc:
            msg = f"tool {self.name!r}: {exc.message}"
            logger.error("%s", msg)
            raise StoreError(msg) from None
        prepared: dict[str, Any] = json.loads(json.dumps(dict(out)))
        return prepared


class ToolFailed(Exception):
    """A tool's ``prepare`` failed as a tool error: :attr:`result` is its ``CallToolResult``."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__("tool error")
        self.result = result


def _build_validator(name: str, schema: dict[str, Any]) -> Any:
    try:
        import jsonschema
    except ImportError as exc:  # pragma: no cover - the test extra installs it
        msg = (
            f"tool {name!r} has an input_schema to check, which needs jsonschema: "
            "pip install 'tasks_store[mcp]'"
        )
        raise ImportError(msg) from exc
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema)


def _best_error(validator: Any, instance: dict[str, Any]) -> str | None:
    from jsonschema.exceptions import best_match

    error = best_match(validator.iter_errors(instance))
    if error is None:
        return None
    where = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    text: str = error.message
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{text} (at arguments{where})" if where else text


class ToolRegistry(Registry[Tool]):
    """
    The tools a server offers, in registration order.

    Args:
        tools: tools to start with.

    Raises:
        ValueError: two tools share a name.

    Thread-safe: adding takes a lock and swaps in a new snapshot; readers
    (``get``, iteration, :meth:`page`) take none.  Tools are never removed,
    so a ``tools/list`` cursor (a position) stays valid.

    >>> tools = ToolRegistry()
    >>> @tools.tool(description="Say hello.")
    ... def hello(arguments, ctx):
    ...     return {"content": [{"type": "text", "text": "hello"}]}
    >>> [t.name for t in tools], tools.get("hello").task_support
    (['hello'], 'forbidden')
    """

    item_type = Tool
    noun = "tool"

    @overload
    def tool(self, fn: _F, /) -> _F: ...

    @overload
    def tool(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        input_schema: Mapping[str, Any] | None = None,
        output_schema: Mapping[str, Any] | None = None,
        task_support: TaskSupport = "forbidden",
        title: str | None = None,
        prepare: Callable[[dict[str, Any], Any], Mapping[str, Any] | None] | None = None,
    ) -> Callable[[_F], _F]: ...

    def tool(
        self,
        fn: _F | None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        input_schema: Mapping[str, Any] | None = None,
        output_schema: Mapping[str, Any] | None = None,
        task_support: TaskSupport = "forbidden",
        title: str | None = None,
        prepare: Callable[[dict[str, Any], Any], Mapping[str, Any] | None] | None = None,
    ) -> _F | Callable[[_F], _F]:
        """
        Register a function as a tool: ``@tools.tool`` or ``@tools.tool(...)``.

        *name* defaults to the function's ``__name__``, *description* to its
        docstring, *input_schema* to ``{"type": "object"}``.  The function
        itself is returned unchanged.

        Raises:
            as :class:`Tool` and :meth:`add`.
        """

        def register(func: _F) -> _F:
            doc = inspect.getdoc(func)
            self.add(
                Tool(
                    name=name if name is not None else func.__name__,
                    fn=func,
                    description=description if description is not None else doc,
                    input_schema=input_schema if input_schema is not None else _OBJECT_SCHEMA,
                    output_schema=output_schema,
                    task_support=task_support,
                    title=title,
                    prepare=prepare,
                )
            )
            return func

        if fn is not None:
            return register(fn)
        return register

    def page(
        self, cursor: str | None = None, *, page_size: int = 100
    ) -> tuple[Sequence[Tool], str | None]:
        """
        Return one page of tools and the cursor of the next (None at the end).

        Raises:
            InvalidParams: *cursor* was not made by this method.
            ValueError: *page_size* is not a positive int.
        """
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            msg = f"page_size must be a positive int, got {page_size!r}"
            raise ValueError(msg)
        tools = self._order
        start = 0 if cursor is None else _decode_cursor(cursor, len(tools))
        end = start + page_size
        return tools[start:end], (_encode_cursor(end) if end < len(tools) else None)


_CURSOR_PREFIX = "tools:"


def _encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{position}".encode()).decode("ascii")


def _decode_cursor(cursor: object, size: int) -> int:
    if isinstance(cursor, str) and len(cursor) <= 64:
        try:
            text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("ascii")
        except (binascii.Error, UnicodeError, ValueError):
            text = ""
        digits = text[len(_CURSOR_PREFIX) :]
        if text.startswith(_CURSOR_PREFIX) and digits.isdigit() and 0 < int(digits) <= size:
            return int(digits)
    shown = repr(cursor) if len(repr(cursor)) <= 80 else repr(cursor)[:77] + "..."
    msg = f"Invalid tools/list cursor: {shown}"
    raise InvalidParams(msg)


def check_tools(tools: object) -> Mapping[str, ToolFn]:
    """
    Return *tools* if it maps tool names (str) to callables (the old table).

    Raises:
        TypeError: it is not a mapping, a name is not a str, or a tool is not
            callable.
    """
    if not isinstance(tools, Mapping):
        msg = f"tools must be a mapping of tool name to function, got {type(tools).__name__}"
        raise TypeError(msg)
    for name, tool in tools.items():
        if not isinstance(name, str) or not callable(tool):
            msg = f"tools must map str names to callables; got {name!r}: {tool!r}"
            raise TypeError(msg)
    return tools


def tool_error_result(text: str) -> dict[str, Any]:
    """Return the ``CallToolResult`` of a tool execution error saying *text*."""
    return {"content": [{"type": "text", "text": text}], "isError": True}


def call_tool(fn: ToolFn, name: str, arguments: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """
    Run tool *fn*; return its ``CallToolResult`` as a fresh dict.

    An exception inside the tool that is not a :class:`TaskError` becomes a
    result with ``isError: true`` and the exception's message as text (no
    traceback; the traceback goes to the log at INFO).

    Raises:
        TaskError: raised by the tool: a protocol error, passed on.
        StoreError: the tool returned something that is not a
            ``CallToolResult`` (a server bug: -32603).
    """
    try:
        out = fn(json.loads(json.dumps(arguments)), ctx)
    except TaskError:
        raise
    except Exception as exc:
        logger.info("tool %r raised %s", name, type(exc).__name__, exc_info=True)
        return tool_error_result(str(exc) or type(exc).__name__)
    if not isinstance(out, Mapping) or not isinstance(out.get("content"), list):
        msg = f"tool {name!r} returned something that is not a CallToolResult"
        logger.error("%s", msg)
        raise StoreError(msg)
    result = dict(out)
    try:
        check_json(result, "tool result")
    except InvalidParams as exc:
        msg = f"tool {name!r}: {exc.message}"
        logger.error("%s", msg)
        raise StoreError(msg) from None
    return result



def answer_tools_call(
    params: Mapping[str, Any],
    owner_id: str,
    *,
    tools: ToolRegistry,
    runner: TaskRunner,
    tasks_allowed: bool = True,
) -> dict[str, Any]:
    """
    Answer one ``tools/call`` (2025-11-25 rules); return the result object.

    Checks, in order: ``name`` (a str naming a tool, else -32602);
    ``task`` (an object whose ``ttl`` is an int, else -32602);
    ``execution.taskSupport`` (a ``task`` on a forbidden tool, or none on a
    required tool: -32601; a ``task`` where *tasks_allowed* is False, as for
    a session on a revision without tasks: -32601); the arguments against
    ``inputSchema`` (-32602 with the reason).  Then the tool runs: inline
    with a :class:`~tasks_store.mcp.context.CallContext`, or as a task on
    *runner* (the answer is then the ``CreateTaskResult``).

    Raises:
        InvalidParams, MethodNotFound: as above (nothing is created).
        TaskError: raised by an inline tool, or by ``store.create`` (quota,
            ttl, anonymous owner).
        StoreError: the tool returned something that is not a CallToolResult.
    """
    from ..errors import MethodNotFound
    from .context import CallContext

    name = params.get("name")
    if not isinstance(name, str):
        msg = f"name must be a string, got {_json_type(name)}"
        raise InvalidParams(msg)
    tool = tools.get(name)
    if tool is None:
        shown = name if len(name) <= 100 else name[:97] + "..."
        msg = f"Unknown tool: {shown}"
        raise InvalidParams(msg)
    as_task = "task" in params
    ttl = None
    if as_task:
        task = params["task"]
        if not isinstance(task, dict):
            msg = f"task must be an object, got {_json_type(task)}"
            raise InvalidParams(msg)
        ttl = task.get("ttl")
        if ttl is not None and type(ttl) is not int:
            msg = f"task.ttl must be an integer, got {_json_type(ttl)}"
            raise InvalidParams(msg)
        if not tasks_allowed:
            msg = (
                f"Tool {name!r} cannot run as a task: the negotiated protocol "
                "revision has no tasks"
            )
            raise MethodNotFound(msg)
        if tool.task_support == "forbidden":
            msg = f"Tool {name!r} does not support task-augmented calls (taskSupport: forbidden)"
            raise MethodNotFound(msg)
    elif tool.task_support == "required":
        msg = f"Tool {name!r} must be called as a task (taskSupport: required)"
        raise MethodNotFound(msg)
    arguments = tool.check_arguments(params.get("arguments", {}))
    if not as_task:
        return tool.call(arguments, CallContext(owner_id, name))

    def run(ctx: TaskContext) -> dict[str, Any]:
        return tool.call(arguments, ctx)

    return runner.start(owner_id, "tools/call", run, ttl=ttl)

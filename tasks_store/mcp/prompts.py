"""
Prompts: the :class:`Prompt` record and the :class:`PromptRegistry`.

Served on 2026-07-28 only (``prompts/list``, ``prompts/get``), and
declared in ``server/discover`` as ``prompts: {"listChanged": true}`` once
a prompt is registered (``subscriptions/listen`` streams that ask are told
when one is added).  A prompt is ``fn(arguments, ctx)``
returning a ``GetPromptResult`` mapping (``messages``, optional
``description``); *arguments* maps argument names to strings, and *ctx*
is the request's :class:`~tasks_store.mcp.v2026.RequestCallContext`, so a
prompt can ask the client for input through a multi round-trip request
exactly as a tool can (``ctx.elicit(...)``).

>>> prompts = PromptRegistry()
>>> @prompts.prompt(description="Greets.")
... def hello(arguments, ctx):
...     return {"messages": [{"role": "user", "content": {"type": "text", "text": "hi"}}]}
>>> prompts.get("hello").to_wire()
{'name': 'hello', 'description': 'Greets.'}
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, overload

import attrs

from .registry import Registry
from .tools import NAME_PATTERN

__all__ = ["Prompt", "PromptArgument", "PromptFn", "PromptRegistry"]

logger = logging.getLogger("tasks_store")

#: A prompt: ``fn(arguments, ctx)`` returning a ``GetPromptResult`` mapping.
PromptFn = Callable[[dict[str, str], Any], Mapping[str, Any]]

_F = TypeVar("_F", bound=Callable[..., Any])


@attrs.frozen(kw_only=True)
class PromptArgument:
    """One argument a prompt takes."""

    name: str
    description: str | None = None
    required: bool = False

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"name": self.name}
        if self.description is not None:
            wire["description"] = self.description
        if self.required:
            wire["required"] = True
        return wire


def _check_name(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or NAME_PATTERN.fullmatch(value) is None:
        msg = f"prompt name must match ^[A-Za-z0-9_.-]{{1,128}}$, got {value!r}"
        raise ValueError(msg)


def _check_fn(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not callable(value):
        msg = f"fn must be callable, got {type(value).__name__}"
        raise TypeError(msg)


def _arguments(value: Iterable[PromptArgument]) -> tuple[PromptArgument, ...]:
    arguments = tuple(value)
    for argument in arguments:
        if not isinstance(argument, PromptArgument):
            msg = f"arguments must be PromptArgument, got {type(argument).__name__}"
            raise TypeError(msg)
    return arguments


@attrs.frozen(kw_only=True)
class Prompt:
    """
    One prompt, as ``prompts/list`` shows it and ``prompts/get`` runs it.

    Raises:
        ValueError: a bad name.  TypeError: *fn* not callable.
    """

    name: str = attrs.field(validator=_check_name)
    fn: PromptFn = attrs.field(validator=_check_fn, eq=False)
    description: str | None = None
    arguments: tuple[PromptArgument, ...] = attrs.field(default=(), converter=_arguments)

    def to_wire(self) -> dict[str, Any]:
        """Return the ``Prompt`` object ``prompts/list`` lists."""
        wire: dict[str, Any] = {"name": self.name}
        if self.description is not None:
            wire["description"] = self.description
        if self.arguments:
            wire["arguments"] = [argument.to_wire() for argument in self.arguments]
        return wire


class PromptRegistry(Registry[Prompt]):
    """
    The prompts a server offers, in registration order; thread-safe (adding
    swaps in a new snapshot under a lock, readers take none).
    """

    item_type = Prompt
    noun = "prompt"

    @overload
    def prompt(self, fn: _F, /) -> _F: ...

    @overload
    def prompt(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        arguments: Iterable[PromptArgument] = (),
    ) -> Callable[[_F], _F]: ...

    def prompt(
        self,
        fn: _F | None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        arguments: Iterable[PromptArgument] = (),
    ) -> _F | Callable[[_F], _F]:
        """Register a function as a prompt: ``@prompts.prompt`` or ``@prompts.prompt(...)``."""

        def register(func: _F) -> _F:
            self.add(
                Prompt(
                    name=name if name is not None else func.__name__,
                    fn=func,
                    description=description if description is not None else inspect.getdoc(func),
                    arguments=_arguments(arguments),
                )
            )
            return func

        if fn is not None:
            return register(fn)
        return register

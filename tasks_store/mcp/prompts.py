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
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, TypeVar, overload

import attrs

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


class PromptRegistry:
    """
    The prompts a server offers, in registration order; thread-safe (adding
    swaps in a new snapshot under a lock, readers take none).
    """

    def __init__(self, prompts: Iterable[Prompt] = ()) -> None:
        self._lock = threading.Lock()
        self._order: tuple[Prompt, ...] = ()
        self._by_name: Mapping[str, Prompt] = MappingProxyType({})
        self._listeners: tuple[Callable[[], None], ...] = ()
        for prompt in prompts:
            self.add(prompt)

    @property
    def version(self) -> int:
        """How many prompts have been added: it changes exactly when the list does."""
        return len(self._order)

    def on_change(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` after every later :meth:`add`; return a function that stops it."""
        if not callable(listener):
            msg = f"listener must be callable, got {type(listener).__name__}"
            raise TypeError(msg)
        with self._lock:
            self._listeners = (*self._listeners, listener)

        def stop() -> None:
            with self._lock:
                self._listeners = tuple(x for x in self._listeners if x is not listener)

        return stop

    def add(self, prompt: Prompt) -> Prompt:
        """
        Register *prompt* after the others and return it.

        Raises:
            TypeError: not a :class:`Prompt`.  ValueError: the name is taken.
        """
        if not isinstance(prompt, Prompt):
            msg = f"expected a Prompt, got {type(prompt).__name__}"
            raise TypeError(msg)
        with self._lock:
            if prompt.name in self._by_name:
                msg = f"a prompt named {prompt.name!r} is registered already"
                raise ValueError(msg)
            self._by_name = MappingProxyType({**self._by_name, prompt.name: prompt})
            self._order = (*self._order, prompt)
            listeners = self._listeners
        for listener in listeners:
            try:
                listener()
            except Exception:
                logger.exception("a prompts list listener failed")
        return prompt

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

    def get(self, name: str) -> Prompt | None:
        """Return the prompt called *name*, or None."""
        return self._by_name.get(name)

    def __iter__(self) -> Iterator[Prompt]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)

    def __repr__(self) -> str:
        return f"PromptRegistry({[p.name for p in self._order]!r})"

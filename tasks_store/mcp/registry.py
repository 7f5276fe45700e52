"""
:class:`Registry`: named things a server offers, in registration order, thread-safe.

The base of :class:`~tasks_store.mcp.tools.ToolRegistry` and
:class:`~tasks_store.mcp.prompts.PromptRegistry`. Adding takes a lock and
swaps in a new snapshot; readers (``get``, iteration, ``len``) take none.
Nothing is ever removed, so a list cursor (a position) stays valid, and
:attr:`Registry.version` changes exactly when the list does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import ClassVar, Generic, Protocol, TypeVar

__all__ = ["Registry"]

logger = logging.getLogger("tasks_store")


class _Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=_Named)


class Registry(Generic[T]):
    """
    Items of type :attr:`item_type`, each under its own ``name``, in the order added.

    Args:
        items: items to start with.

    Raises:
        TypeError: an item is not an :attr:`item_type`.
        ValueError: two items share a name.
    """

    #: What the registry holds (a subclass sets it) ...
    item_type: ClassVar[type]
    #: ... and what one is called in messages ("tool", "prompt").
    noun: ClassVar[str]

    def __init__(self, items: Iterable[T] = ()) -> None:
        self._lock = threading.Lock()
        self._order: tuple[T, ...] = ()
        self._by_name: Mapping[str, T] = MappingProxyType({})
        self._listeners: tuple[Callable[[], None], ...] = ()
        for item in items:
            self.add(item)

    @property
    def version(self) -> int:
        """How many items have been added: it changes exactly when the list does."""
        return len(self._order)

    def on_change(self, listener: Callable[[], None]) -> Callable[[], None]:
        """
        Call ``listener()`` after every later :meth:`add` (from the adding
        thread, outside the registry's lock); return a function that stops it.

        Raises:
            TypeError: *listener* is not callable.
        """
        if not callable(listener):
            msg = f"listener must be callable, got {type(listener).__name__}"
            raise TypeError(msg)
        with self._lock:
            self._listeners = (*self._listeners, listener)

        def stop() -> None:
            with self._lock:
                self._listeners = tuple(x for x in self._listeners if x is not listener)

        return stop

    def add(self, item: T) -> T:
        """
        Register *item* after the others and return it.

        Raises:
            TypeError: *item* is not an :attr:`item_type`.
            ValueError: an item of that name is registered already.
        """
        if not isinstance(item, self.item_type):
            msg = f"expected a {self.item_type.__name__}, got {type(item).__name__}"
            raise TypeError(msg)
        with self._lock:
            if item.name in self._by_name:
                msg = f"a {self.noun} named {item.name!r} is registered already"
                raise ValueError(msg)
            self._by_name = MappingProxyType({**self._by_name, item.name: item})
            self._order = (*self._order, item)
            listeners = self._listeners
        for listener in listeners:
            try:
                listener()
            except Exception:
                logger.exception("a %ss list listener failed", self.noun)
        return item

    def get(self, name: str) -> T | None:
        """Return the item called *name*, or None."""
        return self._by_name.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[T]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({[item.name for item in self._order]!r})"

"""
Task store backends and the contract they share.

``_base`` holds the contract (:class:`TaskStore`) and the write path every
backend shares; ``memory`` the in-process backend; ``redis`` the Redis one,
which needs redis-py (the ``redis`` extra).  ``RedisTaskStore`` is resolved
on first access, so importing this package never imports redis-py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import TaskStore
from .memory import InMemoryTaskStore

if TYPE_CHECKING:
    from .redis import RedisTaskStore

__all__ = ["InMemoryTaskStore", "RedisTaskStore", "TaskStore"]


def __getattr__(name: str) -> Any:
    """Import ``RedisTaskStore`` on first access: only then is redis-py needed."""
    if name == "RedisTaskStore":
        from .redis import RedisTaskStore

        globals()[name] = RedisTaskStore
        return RedisTaskStore
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

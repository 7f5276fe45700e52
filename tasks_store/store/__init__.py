"""Task store backends and the contract they share."""

from ._base import TaskStore
from .memory import InMemoryTaskStore

__all__ = ["InMemoryTaskStore", "TaskStore"]

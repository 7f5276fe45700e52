"""
Deprecated: ``tasks_store.context`` moved to :mod:`tasks_store.mcp.context`.

Importing this module warns (:class:`DeprecationWarning`) and gives the same
objects as before; import them from ``tasks_store`` or
``tasks_store.mcp.context`` instead.
"""

import warnings

from .mcp.context import (
    TaskContext,
)

__all__ = [
    "TaskContext",
]

warnings.warn(
    "tasks_store.context is deprecated; import from tasks_store or tasks_store.mcp.context",
    DeprecationWarning,
    stacklevel=2,
)

"""
Deprecated: ``tasks_store.runner`` moved to :mod:`tasks_store.mcp.runner`.

Importing this module warns (:class:`DeprecationWarning`) and gives the same
objects as before; import them from ``tasks_store`` or
``tasks_store.mcp.runner`` instead.
"""

import warnings

from .mcp.runner import (
    TaskFn,
    TaskRunner,
)

__all__ = [
    "TaskFn",
    "TaskRunner",
]

warnings.warn(
    "tasks_store.runner is deprecated; import from tasks_store or tasks_store.mcp.runner",
    DeprecationWarning,
    stacklevel=2,
)

"""
Deprecated: ``tasks_store.wsgi`` moved to :mod:`tasks_store.mcp.wsgi`.

Importing this module warns (:class:`DeprecationWarning`) and gives the same
objects as before; import them from ``tasks_store`` or
``tasks_store.mcp.wsgi`` instead.
"""

import warnings

from .mcp.wsgi import (
    TasksApp,
    default_owner_from_environ,
)

__all__ = [
    "TasksApp",
    "default_owner_from_environ",
]

warnings.warn(
    "tasks_store.wsgi is deprecated; import from tasks_store or tasks_store.mcp.wsgi",
    DeprecationWarning,
    stacklevel=2,
)

"""
Deprecated: ``tasks_store.redis`` moved to :mod:`tasks_store.store.redis`.

Importing this module warns (:class:`DeprecationWarning`) and gives the same
objects as before; import ``RedisTaskStore`` from ``tasks_store`` or
``tasks_store.store.redis`` instead.
"""

import warnings

from .store.redis import RedisTaskStore

__all__ = ["RedisTaskStore"]

warnings.warn(
    "tasks_store.redis is deprecated; import RedisTaskStore from tasks_store "
    "(or tasks_store.store.redis)",
    DeprecationWarning,
    stacklevel=2,
)

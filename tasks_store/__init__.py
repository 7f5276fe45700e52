"""
tasks_store: a thread-safe, synchronous store for MCP tasks (2025-11-25).

Everything public is importable from here.  The package has three layers,
each importing only the ones below it:

* **domain**: ``status`` (the state machine), ``errors`` (every error, and
  every JSON-RPC code, on its class), ``config`` and ``security`` (limits,
  owners), ``records`` (frozen records), ``wire`` (the cattrs converter and
  the JSON text the store keeps) and ``rules`` (the domain rules every
  backend calls);
* **storage**: ``store`` (the ``TaskStore`` contract, the in-memory backend,
  and ``store.redis``, the Redis backend);
* **protocol**: ``mcp`` (``mcp.jsonrpc``, ``mcp.context``, ``mcp.runner`` and
  ``mcp.wsgi``: serving MCP ``tasks/*`` over JSON-RPC and HTTP).

The protocol names (``TasksRpc``, ``TaskContext``, ``TaskRunner``) and
``RedisTaskStore`` are resolved on first use: importing ``tasks_store`` (or
the domain or storage layer) loads neither ``tasks_store.mcp`` nor redis-py
(the ``redis`` extra).  The old module paths
``tasks_store.jsonrpc``, ``.wsgi``, ``.context`` and ``.runner`` still work
and warn (:class:`DeprecationWarning`).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .config import StoreConfig, TaskSecurityConfig
from .errors import (
    AnonymousAccessDenied,
    Expired,
    InvalidCursor,
    InvalidParams,
    InvalidTransition,
    NotFound,
    NotReady,
    ResourceExhausted,
    StoreError,
    TaskError,
    TtlExceeded,
    VariableSizeExceeded,
    WaitTimeout,
)
from .records import (
    MODEL_IMMEDIATE_RESPONSE_META_KEY,
    RELATED_TASK_META_KEY,
    CreateTaskResult,
    JsonRpcError,
    Task,
    TaskPage,
    TaskRecord,
    related_task_meta,
)
from .security import DEFAULT_LOCAL_OWNER, resolve_owner_id
from .status import TaskStatus
from .store import InMemoryTaskStore, TaskStore
from .wire import converter

__all__ = [
    "DEFAULT_LOCAL_OWNER",
    "MODEL_IMMEDIATE_RESPONSE_META_KEY",
    "RELATED_TASK_META_KEY",
    "AnonymousAccessDenied",
    "CreateTaskResult",
    "Expired",
    "InMemoryTaskStore",
    "InvalidCursor",
    "InvalidParams",
    "InvalidTransition",
    "JsonRpcError",
    "NotFound",
    "NotReady",
    "RedisTaskStore",
    "ResourceExhausted",
    "StoreConfig",
    "StoreError",
    "Task",
    "TaskContext",
    "TaskError",
    "TaskPage",
    "TaskRecord",
    "TaskRunner",
    "TaskSecurityConfig",
    "TaskStatus",
    "TaskStore",
    "TasksRpc",
    "TtlExceeded",
    "VariableSizeExceeded",
    "WaitTimeout",
    "converter",
    "related_task_meta",
    "resolve_owner_id",
]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from .mcp.context import TaskContext
    from .mcp.jsonrpc import TasksRpc
    from .mcp.runner import TaskRunner
    from .store.redis import RedisTaskStore

#: Names resolved on first access, each to the module that defines it: the
#: protocol layer (so that importing the domain or the storage layer never
#: loads it) and the Redis backend (which needs redis-py).
_LAZY = {
    "RedisTaskStore": ".store.redis",
    "TaskContext": ".mcp.context",
    "TaskRunner": ".mcp.runner",
    "TasksRpc": ".mcp.jsonrpc",
}


def __getattr__(name: str) -> Any:
    """Resolve a :data:`_LAZY` name on first access, then keep it."""
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(import_module(module, __name__), name)
        globals()[name] = value
        return value
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})

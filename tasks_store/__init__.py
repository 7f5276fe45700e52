"""
tasks_store: a thread-safe, synchronous store for MCP tasks (2025-11-25).

Everything public is importable from here; the work lives in small modules:
``status`` (state machine), ``records`` (frozen records), ``wire`` (the cattrs
converter), ``errors``, ``config`` and ``security`` (limits, owners),
``rules`` (the domain rules every backend calls), ``store`` (the contract and
the in-memory backend), ``jsonrpc``, ``context`` and ``runner`` (serving MCP
``tasks/*``).  Two modules are imported by name: ``tasks_store.wsgi``
(``TasksApp``, the HTTP transport) and ``tasks_store.redis``
(``RedisTaskStore``, which needs redis-py, the ``redis`` extra).
"""

from .config import StoreConfig, TaskSecurityConfig
from .context import TaskContext
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
from .jsonrpc import TasksRpc
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
from .runner import TaskRunner
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

"""
Deprecated: ``tasks_store.jsonrpc`` moved to :mod:`tasks_store.mcp.jsonrpc`.

Importing this module warns (:class:`DeprecationWarning`) and gives the same
objects as before; import them from ``tasks_store`` or
``tasks_store.mcp.jsonrpc`` instead.
"""

import warnings

from .mcp.jsonrpc import (
    ERROR_CODES,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    MAX_TASK_ID_LENGTH,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    InvalidRequest,
    MethodNotFound,
    ParseError,
    TasksRpc,
    ToolFn,
    encode_response,
    error_code,
    error_object,
    error_response,
)

__all__ = [
    "ERROR_CODES",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "MAX_TASK_ID_LENGTH",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "InvalidRequest",
    "MethodNotFound",
    "ParseError",
    "TasksRpc",
    "ToolFn",
    "encode_response",
    "error_code",
    "error_object",
    "error_response",
]

warnings.warn(
    "tasks_store.jsonrpc is deprecated; import from tasks_store or tasks_store.mcp.jsonrpc",
    DeprecationWarning,
    stacklevel=2,
)

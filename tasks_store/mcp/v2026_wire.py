"""
The MCP 2026-07-28 wire, as pure functions: per-request ``_meta``, the
standard HTTP headers, and the shapes of the Tasks extension.

Nothing here does I/O or touches a store: :mod:`tasks_store.mcp.v2026`
calls these to check a request and to shape its answer.

* :func:`parse_meta` reads ``params._meta`` (``protocolVersion`` and
  ``clientCapabilities`` are required) into a :class:`RequestMeta`;
  anything missing or malformed is :class:`MalformedMeta` (-32602, HTTP 400).
* :func:`check_headers` compares ``MCP-Protocol-Version``, ``Mcp-Method``
  and ``Mcp-Name`` with the body (streamable-http, "Server Validation"):
  a header that is missing, has characters a header may not carry, or
  disagrees with the body is :class:`~tasks_store.errors.HeaderMismatch`
  (-32020, HTTP 400).  Names are case-insensitive (the request's header
  names are lower-cased already), values case-sensitive and trimmed of
  spaces and tabs; ``Mcp-Name`` may use the ``=?base64?...?=`` sentinel.
* :func:`check_version` refuses a version this wire does not serve with
  :class:`~tasks_store.errors.UnsupportedProtocolVersion` (-32022, HTTP 400).
* :func:`task_fields`, :func:`create_task_result` and :func:`detailed_task`
  give a task as the extension ``io.modelcontextprotocol/tasks`` shows it:
  flat, ``ttlMs`` and ``pollIntervalMs``, and for ``tasks/get`` the
  outcome inlined (``result`` when completed, ``error`` when failed,
  ``inputRequests`` when waiting for input).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

import attrs

from ..errors import INTERNAL_ERROR, HeaderMismatch, InvalidParams, UnsupportedProtocolVersion
from ..records import RELATED_TASK_META_KEY, JsonRpcError, Task, TaskRecord
from ..status import TaskStatus
from ..wire import json_type as _json_type

__all__ = [
    "CLIENT_CAPABILITIES_KEY",
    "CLIENT_INFO_KEY",
    "LEGACY_VERSIONS",
    "LOG_LEVELS",
    "LOG_LEVEL_KEY",
    "PROTOCOL_VERSION",
    "PROTOCOL_VERSION_KEY",
    "SERVER_INFO_KEY",
    "SUPPORTED_VERSIONS",
    "TASKS_EXTENSION",
    "TASKS_EXTENSION_CAPABILITY",
    "MalformedMeta",
    "RequestMeta",
    "check_headers",
    "check_version",
    "create_task_result",
    "decode_header_value",
    "detailed_task",
    "inline_result",
    "mcp_name_source",
    "parse_meta",
    "task_fields",
]

#: The stateless revision this module speaks.
PROTOCOL_VERSION = "2026-07-28"
#: Revisions served by the ``initialize`` session protocol instead (issue 9).
LEGACY_VERSIONS: tuple[str, ...] = ("2025-11-25",)
#: Every revision the server serves, newest first: ``server/discover``'s
#: ``supportedVersions`` and -32022's ``data.supported``.
SUPPORTED_VERSIONS: tuple[str, ...] = (PROTOCOL_VERSION, *LEGACY_VERSIONS)

#: The Tasks extension's identifier (SEP-2663).
TASKS_EXTENSION = "io.modelcontextprotocol/tasks"
#: ``data.requiredCapabilities`` of a -32021 for a client without the extension.
TASKS_EXTENSION_CAPABILITY: Mapping[str, Any] = {"extensions": {TASKS_EXTENSION: {}}}

PROTOCOL_VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CLIENT_CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
CLIENT_INFO_KEY = "io.modelcontextprotocol/clientInfo"
LOG_LEVEL_KEY = "io.modelcontextprotocol/logLevel"
SERVER_INFO_KEY = "io.modelcontextprotocol/serverInfo"

#: ``LoggingLevel`` of the 2026-07-28 schema.
LOG_LEVELS = frozenset(
    {"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"}
)

_BASE64_PREFIX = "=?base64?"
_BASE64_SUFFIX = "?="
#: Methods whose ``Mcp-Name`` header mirrors a body field, and that field.
_NAME_SOURCES: Mapping[str, str] = {
    "tools/call": "name",
    "prompts/get": "name",
    "resources/read": "uri",
    "tasks/get": "taskId",
    "tasks/update": "taskId",
    "tasks/cancel": "taskId",
}


class MalformedMeta(InvalidParams):
    """``params._meta`` is missing, or a required per-request field is missing or malformed."""


@attrs.frozen(kw_only=True)
class RequestMeta:
    """
    The per-request protocol fields of one 2026-07-28 request.

    Attributes:
        protocol_version: ``io.modelcontextprotocol/protocolVersion``.
        client_capabilities: ``io.modelcontextprotocol/clientCapabilities``,
            what the client supports for *this* request only.
        client_info: ``io.modelcontextprotocol/clientInfo``, or None
            (self-reported, for logs only).
        log_level: ``io.modelcontextprotocol/logLevel``, or None (no
            ``notifications/message`` may be sent).
    """

    protocol_version: str
    client_capabilities: Mapping[str, Any]
    client_info: Mapping[str, Any] | None = None
    log_level: str | None = None

    def has_capability(self, name: str) -> bool:
        """Whether the client declared the capability *name* (``"sampling"``)."""
        return isinstance(self.client_capabilities.get(name), Mapping)

    def has_extension(self, extension: str) -> bool:
        """Whether the client declared the extension *extension* on this request."""
        extensions = self.client_capabilities.get("extensions")
        return isinstance(extensions, Mapping) and isinstance(extensions.get(extension), Mapping)

    @property
    def has_tasks(self) -> bool:
        """Whether this request declared the Tasks extension."""
        return self.has_extension(TASKS_EXTENSION)


def parse_meta(params: Mapping[str, Any]) -> RequestMeta:
    """
    Return the per-request fields of *params* (a request's ``params`` object).

    >>> parse_meta({"_meta": {PROTOCOL_VERSION_KEY: "2026-07-28",
    ...     CLIENT_CAPABILITIES_KEY: {"extensions": {TASKS_EXTENSION: {}}}}}).has_tasks
    True

    Raises:
        MalformedMeta: ``_meta`` is missing or not an object;
            ``protocolVersion`` is missing or not a non-empty string;
            ``clientCapabilities`` is missing or not an object (or its
            ``extensions`` is not an object); ``clientInfo`` is not an object
            with string ``name`` and ``version``; ``logLevel`` is not a
            ``LoggingLevel``.
    """
    if "_meta" not in params:
        msg = (
            "Invalid params: _meta is required on every 2026-07-28 request "
            f"(with {PROTOCOL_VERSION_KEY} and {CLIENT_CAPABILITIES_KEY})"
        )
        raise MalformedMeta(msg)
    meta = params["_meta"]
    if not isinstance(meta, Mapping):
        msg = f"Invalid params: _meta must be an object, got {_json_type(meta)}"
        raise MalformedMeta(msg)
    if PROTOCOL_VERSION_KEY not in meta:
        msg = f"Invalid params: _meta[{PROTOCOL_VERSION_KEY!r}] is required"
        raise MalformedMeta(msg)
    version = meta[PROTOCOL_VERSION_KEY]
    if not isinstance(version, str) or not version:
        msg = (
            f"Invalid params: _meta[{PROTOCOL_VERSION_KEY!r}] must be a non-empty string, "
            f"got {_json_type(version)}"
        )
        raise MalformedMeta(msg)
    if CLIENT_CAPABILITIES_KEY not in meta:
        msg = f"Invalid params: _meta[{CLIENT_CAPABILITIES_KEY!r}] is required"
        raise MalformedMeta(msg)
    capabilities = meta[CLIENT_CAPABILITIES_KEY]
    if not isinstance(capabilities, Mapping):
        msg = (
            f"Invalid params: _meta[{CLIENT_CAPABILITIES_KEY!r}] must be an object, "
            f"got {_json_type(capabilities)}"
        )
        raise MalformedMeta(msg)
    extensions = capabilities.get("extensions")
    if extensions is not None and not isinstance(extensions, Mapping):
        msg = (
            f"Invalid params: {CLIENT_CAPABILITIES_KEY}.extensions must be an object, "
            f"got {_json_type(extensions)}"
        )
        raise MalformedMeta(msg)
    info = meta.get(CLIENT_INFO_KEY)
    if info is not None and not (
        isinstance(info, Mapping)
        and isinstance(info.get("name"), str)
        and isinstance(info.get("version"), str)
    ):
        msg = (
            f"Invalid params: _meta[{CLIENT_INFO_KEY!r}] must be an object with "
            "string name and version"
        )
        raise MalformedMeta(msg)
    level = meta.get(LOG_LEVEL_KEY)
    if level is not None and level not in LOG_LEVELS:
        msg = (
            f"Invalid params: _meta[{LOG_LEVEL_KEY!r}] must be one of "
            f"{', '.join(sorted(LOG_LEVELS))}"
        )
        raise MalformedMeta(msg)
    return RequestMeta(
        protocol_version=version,
        client_capabilities=capabilities,
        client_info=info,
        log_level=level,
    )


def check_version(meta: RequestMeta) -> None:
    """
    Refuse a request whose protocol version this wire does not serve.

    Raises:
        UnsupportedProtocolVersion: the version is not 2026-07-28.  A legacy
            revision (2025-11-25) is served, but through ``initialize``,
            never with per-request ``_meta``; the message says so.
    """
    requested = meta.protocol_version
    if requested == PROTOCOL_VERSION:
        return
    message = None
    if requested in LEGACY_VERSIONS:
        message = (
            f"Protocol version {requested} is served through initialize and a session, "
            f"not with per-request _meta; use {PROTOCOL_VERSION} here"
        )
    raise UnsupportedProtocolVersion(requested, SUPPORTED_VERSIONS, message)


def mcp_name_source(method: str, params: Mapping[str, Any]) -> tuple[str, str] | None:
    """
    Return ``(field, value)``: the body field ``Mcp-Name`` mirrors, and its value.

    None when *method* has no such field, or the body's value is not a
    string (then the method itself refuses the request, -32602).
    """
    field = _NAME_SOURCES.get(method)
    if field is None:
        return None
    value = params.get(field)
    return (field, value) if isinstance(value, str) else None


def decode_header_value(name: str, value: str) -> str:
    """
    Return a header's value with surrounding spaces and tabs removed and the
    ``=?base64?...?=`` sentinel decoded.

    >>> decode_header_value("Mcp-Name", "  =?base64?SGVsbG8sIOS4lueVjA==?= ")
    'Hello, 世界'

    Raises:
        HeaderMismatch: the value carries a character a header may not
            (RFC 9110: visible ASCII, space, tab), or the sentinel wraps
            something that is not strict Base64 of UTF-8.
    """
    _check_header_chars(name, value)
    value = value.strip(" \t")
    if (
        len(value) >= len(_BASE64_PREFIX) + len(_BASE64_SUFFIX)
        and value.startswith(_BASE64_PREFIX)
        and value.endswith(_BASE64_SUFFIX)
    ):
        encoded = value[len(_BASE64_PREFIX) : -len(_BASE64_SUFFIX)]
        try:
            return base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            msg = f"Header mismatch: {name} header is not valid Base64 of UTF-8 text"
            raise HeaderMismatch(msg) from None
    return value


def check_headers(
    headers: Mapping[str, str], method: str, params: Mapping[str, Any], meta: RequestMeta
) -> None:
    """
    Check the standard headers of one request against its body.

    Args:
        headers: the request's headers, names lower-cased.
        method: the body's ``method``.
        params: the body's ``params``.
        meta: the body's per-request fields.

    Raises:
        HeaderMismatch: ``MCP-Protocol-Version`` or ``Mcp-Method`` is
            missing, or ``Mcp-Name`` is missing where the body has the value
            it mirrors (``params.name`` on ``tools/call`` and
            ``prompts/get``, ``params.uri`` on ``resources/read``,
            ``params.taskId`` on ``tasks/get|update|cancel``); or one of
            them does not match the body; or carries characters a header
            may not.
    """
    version = _header(headers, "MCP-Protocol-Version")
    if version != meta.protocol_version:
        msg = (
            f"Header mismatch: MCP-Protocol-Version header {_quote(version)} does not match "
            f"_meta[{PROTOCOL_VERSION_KEY!r}] {_quote(meta.protocol_version)}"
        )
        raise HeaderMismatch(msg)
    method_header = _header(headers, "Mcp-Method")
    if method_header != method:
        msg = (
            f"Header mismatch: Mcp-Method header {_quote(method_header)} does not match "
            f"the body's method {_quote(method)}"
        )
        raise HeaderMismatch(msg)
    source = mcp_name_source(method, params)
    if source is None:
        return
    field, value = source
    raw = headers.get("mcp-name")
    if raw is None:
        msg = f"Header mismatch: Mcp-Name header is required on {method} (params.{field})"
        raise HeaderMismatch(msg)
    name = decode_header_value("Mcp-Name", raw)
    if name != value:
        msg = (
            f"Header mismatch: Mcp-Name header {_quote(name)} does not match "
            f"params.{field} {_quote(value)}"
        )
        raise HeaderMismatch(msg)


def _header(headers: Mapping[str, str], name: str) -> str:
    raw = headers.get(name.lower())
    if raw is None:
        msg = f"Header mismatch: the {name} header is required"
        raise HeaderMismatch(msg)
    _check_header_chars(name, raw)
    return raw.strip(" \t")


def _check_header_chars(name: str, value: str) -> None:
    if any(not (" " <= c <= "~" or c == "\t") for c in value):
        msg = f"Header mismatch: the {name} header carries characters a header may not"
        raise HeaderMismatch(msg)


def _quote(text: str, limit: int = 80) -> str:
    shown = text if len(text) <= limit else f"{text[: limit - 3]}..."
    return repr(shown)


# -- the Tasks extension's shapes ---------------------------------------------


def task_fields(task: Task) -> dict[str, Any]:
    """
    Return the extension's ``Task`` fields of *task*.

    ``taskId``, ``status``, ``statusMessage`` (when set), ``createdAt``,
    ``lastUpdatedAt``, ``ttlMs`` (always present; null for unlimited) and
    ``pollIntervalMs`` (when positive).  The 2025-11-25 keys ``ttl`` and
    ``pollInterval`` never appear.
    """
    fields: dict[str, Any] = {"taskId": task.task_id, "status": task.status.value}
    if task.status_message is not None:
        fields["statusMessage"] = task.status_message
    fields["createdAt"] = task.created_at
    fields["lastUpdatedAt"] = task.last_updated_at
    fields["ttlMs"] = task.ttl
    if task.poll_interval is not None and task.poll_interval > 0:
        fields["pollIntervalMs"] = task.poll_interval
    return fields


def create_task_result(task: Task) -> dict[str, Any]:
    """
    Return the flat ``CreateTaskResult``: ``resultType: "task"`` and the task's
    fields, with no nested ``task``, no ``result``, ``error``,
    ``inputRequests`` or ``requestState``.
    """
    return {"resultType": "task", **task_fields(task)}


def inline_result(result: Any) -> dict[str, Any]:
    """
    Return a completed task's stored result as ``tasks/get`` inlines it.

    A copy, with ``resultType: "complete"`` added when absent (it is what
    the request would have answered on this wire) and the 2025-11-25
    related-task key dropped from its ``_meta``.  A result that is not an
    object (possible only through the store API) is wrapped as
    ``{"resultType": "complete", "value": result}``.
    """
    if not isinstance(result, Mapping):
        return {"resultType": "complete", "value": result}
    inlined: dict[str, Any] = json.loads(json.dumps(result))
    inlined.setdefault("resultType", "complete")
    meta = inlined.get("_meta")
    if isinstance(meta, dict):
        meta.pop(RELATED_TASK_META_KEY, None)
        if not meta:
            del inlined["_meta"]
    return inlined


def _failure(record: TaskRecord, result: Any) -> dict[str, Any]:
    if isinstance(result, JsonRpcError):
        return result.to_dict()
    message = record.task.status_message or "The task failed."
    return {"code": INTERNAL_ERROR, "message": message}


def detailed_task(
    record: TaskRecord, *, input_requests: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """
    Return the ``tasks/get`` result for *record*: ``resultType: "complete"``
    and the ``DetailedTask`` of its status.

    * completed: ``result``, the stored result (see :func:`inline_result`);
      a task completed without one inlines ``{"resultType": "complete",
      "content": []}``.
    * failed: ``error``, the stored :class:`JsonRpcError`; a failure stored
      any other way (a status change without an error) inlines -32603 with
      the status message.  Never ``result``.
    * input_required: ``inputRequests``, the requests still outstanding
      (``record.input_requests``: answered and withdrawn ones are gone), or
      *input_requests* when given; ``{}`` for a task moved to
      ``input_required`` without any (``update_status``).
    * working, cancelled: the task fields only.

    The task's variables, if any, go into ``_meta`` as on the 2025-11-25
    wire.  ``requestState`` never appears.
    """
    task = record.task
    shaped: dict[str, Any] = {"resultType": "complete", **task_fields(task)}
    status = task.status
    if status is TaskStatus.COMPLETED:
        if record.has_result:
            shaped["result"] = inline_result(record.result)
        else:
            shaped["result"] = {"resultType": "complete", "content": []}
    elif status is TaskStatus.FAILED:
        shaped["error"] = _failure(record, record.result if record.has_result else None)
    elif status is TaskStatus.INPUT_REQUIRED:
        requests = record.input_requests if input_requests is None else input_requests
        shaped["inputRequests"] = json.loads(json.dumps(dict(requests)))
    meta = dict(task.meta or {})
    meta.update(record.variables)
    if meta:
        shaped["_meta"] = meta
    return shaped


"""
MCP 2026-07-28, the stateless generation, with the Tasks extension
``io.modelcontextprotocol/tasks`` (SEP-2663).

:class:`~tasks_store.mcp.server.McpServer` hands a request here (see
:func:`~tasks_store.mcp.server.protocol_generation`) after its HTTP checks
(``Origin``, method, media types, JSON).  :func:`handle` then answers it
from the request alone: there is no ``initialize`` and no session; every
request carries its protocol version and client capabilities in
``params._meta``, so any worker sharing the store can answer any request.

Checks, in this order, each answered with the request's ``id``:

====  =======================================================  ======  ======
step  what is wrong                                            code    HTTP
====  =======================================================  ======  ======
1     not a JSON-RPC request object (a batch, a response,      -32600  400
      ``id`` null, no ``method``)
2     ``params`` not an object; ``_meta`` missing, or without  -32602  400
      a string ``protocolVersion`` or an object
      ``clientCapabilities``
3     ``MCP-Protocol-Version``, ``Mcp-Method`` or ``Mcp-Name``  -32020  400
      missing or disagreeing with the body
4     a protocol version other than 2026-07-28                 -32022  400
5     a method this wire does not serve (``initialize``,       -32601  404
      ``ping``, ``tasks/result``, ``tasks/list``, unknown ...)
6     ``tasks/get|update|cancel`` without the extension in     -32021  400
      this request's ``clientCapabilities``; a
      ``taskSupport: required`` tool called without it
====  =======================================================  ======  ======

A notification (no ``id``) is accepted with 202 and no body.  Errors of
the methods themselves (an unknown tool or task id: -32602) answer HTTP 200.

Methods:

* ``server/discover``: ``supportedVersions``, ``capabilities`` (``tools``
  and ``extensions: {"io.modelcontextprotocol/tasks": {}}``; no ``tasks``
  slot), ``_meta["io.modelcontextprotocol/serverInfo"]``, ``instructions``.
* ``tools/list``: the tools (no ``execution``: the server alone decides
  what runs as a task), with ``cacheScope`` and ``ttlMs``.
* ``tools/call``: a client that declared the extension on this request
  gets a flat ``CreateTaskResult`` for a tool whose ``task_support`` is
  ``optional`` or ``required``; any other call runs inline and answers its
  ``CallToolResult`` with ``resultType: "complete"``.  An anonymous caller
  of a store that keeps no anonymous tasks gets an ``optional`` tool
  inline too (a ``required`` one: the store's -32602).  A legacy ``task``
  parameter is ignored.  Arguments that do not match ``inputSchema`` are a
  tool execution error (``isError: true``), as the 2026-07-28 tools page
  says.  An inline tool may return an ``InputRequiredResult``
  (``resultType: "input_required"``); each of its input requests must use a
  capability the client declared (-32021 otherwise).
* ``tasks/get``: the ``DetailedTask`` (:func:`~.v2026_wire.detailed_task`);
  an ``input_required`` task inlines the requests still outstanding.
* ``tasks/update``: the ``inputResponses`` go to the store
  (``store.respond_input``: answers to outstanding keys are kept for the
  waiting tool, whichever worker runs it; any other key is ignored), then
  ``{"resultType": "complete"}``.
* ``tasks/cancel``: acknowledged with ``{"resultType": "complete"}``, for a
  terminal task too; the task is cancelled in the store if it has not ended.
* ``subscriptions/listen``: a streamed answer (SSE,
  :mod:`~tasks_store.mcp.streams`): ``notifications/subscriptions/acknowledged``
  first, then ``notifications/tasks`` for the subscribed ``taskIds`` (the
  extension must be declared on the request: -32021 otherwise) and
  ``notifications/tools/list_changed`` (``toolsListChanged``),
  ``notifications/prompts/list_changed`` (``promptsListChanged``, with prompts).
* ``prompts/list``, ``prompts/get``: served when the server has prompts
  (then ``server/discover`` declares ``prompts: {"listChanged": true}``);
  -32601 otherwise.

Multi round-trip requests (MRTR, :mod:`~tasks_store.mcp.mrtr`): a
``tools/call`` or ``prompts/get`` whose tool (or prompt, or the tool's
``prepare`` step) asks for input it does not have yet (``ctx.elicit`` and
the other input methods of :class:`RequestCallContext`) is answered with an
``InputRequiredResult``: the missing requests, and a signed
``requestState`` carrying the answers so far.  The retry's
``inputResponses`` and verified state answer the questions when the tool
runs again; a state that fails verification is -32602.  A tool with a
``prepare`` step gathers its input this way before the task is created, and
the final round answers the ``CreateTaskResult``.  ``requestState`` never
appears in a task's shape.

Every result carries ``_meta["io.modelcontextprotocol/serverInfo"]``.

Owners: a request with an authenticated principal acts as
``McpServer.owner_for(principal, None)`` (``"user:<principal>"``); one
without acts as the store's anonymous owner, refused unless the store's
``allow_anonymous`` is on.  Anonymous callers share that owner, so an
unguessable task id (122 random bits) is then the bearer capability, as
the extension's security section allows; there is no ``tasks/list`` to
enumerate ids with.

Durable creation: a ``CreateTaskResult`` is sent only after
``store.create`` has returned, i.e. after the task is written to the
store every worker reads (for :class:`~tasks_store.store.redis.RedisTaskStore`,
the Redis server), so a ``tasks/get`` on any worker finds it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import (
    INTERNAL_MESSAGE,
    Expired,
    HeaderMismatch,
    InvalidParams,
    InvalidRequest,
    InvalidTransition,
    MethodNotFound,
    MissingRequiredClientCapability,
    ParseError,
    StoreError,
    TaskError,
    UnsupportedProtocolVersion,
    error_object,
)
from ..records import Task, TaskRecord
from ..security import ANONYMOUS_OWNERS
from ..store import TaskStore
from ..wire import check_json
from .context import CallContext, TaskContext
from .http import (
    EVENT_STREAM_MEDIA_TYPE,
    JSON_MEDIA_TYPE,
    HttpRequest,
    HttpResponse,
    accepts_media,
)
from .jsonrpc import MAX_TASK_ID_LENGTH, encode_response, error_response
from .mrtr import (
    REQUEST_STATE_SECRET,
    InputRequired,
    InputRound,
    RequestStateCodec,
    input_responses,
    salient_digest,
)
from .streams import MAX_LISTEN_TASKS, EventStream, ListenStream
from .tools import Tool, ToolFailed, call_tool, tool_error_result
from .v2026_wire import (
    SERVER_INFO_KEY,
    SUPPORTED_VERSIONS,
    TASKS_EXTENSION,
    TASKS_EXTENSION_CAPABILITY,
    MalformedMeta,
    RequestMeta,
    check_headers,
    check_version,
    create_task_result,
    detailed_task,
    parse_meta,
)

if TYPE_CHECKING:
    from .server import McpServer

__all__ = [
    "DISCOVER_TTL_MS",
    "INPUT_REQUEST_CAPABILITIES",
    "PROMPTS_LIST_TTL_MS",
    "REMOVED_METHODS",
    "TOOLS_LIST_TTL_MS",
    "RequestCallContext",
    "handle",
    "http_status",
    "request_state_codec",
]

logger = logging.getLogger("tasks_store")

#: ``ttlMs`` of ``server/discover``: versions and capabilities are fixed for
#: the life of the process.
DISCOVER_TTL_MS = 3_600_000
#: ``ttlMs`` of ``tools/list``: 0 (stale at once), since tools may be added
#: at any time (``subscriptions/listen`` streams are told when).
TOOLS_LIST_TTL_MS = 0
#: ``ttlMs`` of ``prompts/list``: 0, as for tools.
PROMPTS_LIST_TTL_MS = 0

#: Methods of earlier revisions, or of the 2025-11-25 tasks, that this wire
#: answers with -32601 and HTTP 404 (like any unknown method), named so the
#: message can say why.
REMOVED_METHODS: Mapping[str, str] = {
    "initialize": "there is no initialize in 2026-07-28: send _meta on every request",
    "ping": "ping was removed in 2026-07-28",
    "logging/setLevel": "logging/setLevel was removed in 2026-07-28: send _meta logLevel",
    "resources/subscribe": "resources/subscribe was removed in 2026-07-28",
    "resources/unsubscribe": "resources/unsubscribe was removed in 2026-07-28",
    "tasks/result": "tasks/result is not part of the Tasks extension: tasks/get inlines the result",
    "tasks/list": "tasks/list is not part of the Tasks extension",
}

#: The client capability each kind of input request needs (MRTR).
INPUT_REQUEST_CAPABILITIES: Mapping[str, str] = {
    "elicitation/create": "elicitation",
    "sampling/createMessage": "sampling",
    "roots/list": "roots",
}

_CANCEL_MESSAGE = "The task was cancelled by request."
_400 = (MalformedMeta, HeaderMismatch, MissingRequiredClientCapability,
        UnsupportedProtocolVersion, InvalidRequest, ParseError)  # fmt: skip


def http_status(exc: BaseException) -> int:
    """
    Return the HTTP status that answers *exc* on this wire.

    400 for the request-level errors (malformed ``_meta`` -32602, -32020,
    -32021, -32022, -32600, -32700), 404 for -32601, 200 for every other
    :class:`TaskError` (a method's own error), 500 for a fault.
    """
    if isinstance(exc, _400):
        return 400
    if isinstance(exc, MethodNotFound):
        return 404
    if isinstance(exc, TaskError):
        return 200
    return 500


class RequestCallContext(CallContext):
    """
    The context of a 2026-07-28 ``tools/call`` answered inline (or a tool's
    ``prepare`` step, or a ``prompts/get``): a
    :class:`~tasks_store.mcp.context.CallContext` that also knows the
    request's per-request fields, so a tool can check what the client
    declared for this very request, and that asks the client for input
    through a multi round-trip request.

    ``ctx.elicit(message, schema)`` (and ``create_message``,
    ``list_roots``, ``request_input``) returns the client's answer when this
    request, or the verified ``requestState`` of an earlier round, holds
    it; otherwise it raises :class:`~tasks_store.mcp.mrtr.InputRequired`,
    which the server answers as an ``InputRequiredResult`` (let it
    propagate).  The tool then runs again, from the top, on the retry.  A key
    not given is ``elicitation-1``, ``sampling-2``, ...: numbered in the
    order the tool asks, the same on every round.  :attr:`state` is the
    tool's own JSON value, carried (signed) to the next round.

    >>> from .v2026_wire import RequestMeta
    >>> ctx = RequestCallContext("local", "t", RequestMeta(
    ...     protocol_version="2026-07-28", client_capabilities={"sampling": {}}))
    >>> ctx.has_capability("sampling"), ctx.has_capability("elicitation")
    (True, False)
    """

    __slots__ = ("_request_meta", "_round")

    def __init__(
        self,
        owner_id: str,
        tool_name: str,
        request_meta: RequestMeta,
        input_round: InputRound | None = None,
    ) -> None:
        super().__init__(owner_id, tool_name)
        self._request_meta = request_meta
        self._round = input_round if input_round is not None else InputRound()

    @property
    def input_round(self) -> InputRound:
        """This round of the request: its answers, and the tool's state."""
        return self._round

    @property
    def round(self) -> int:
        """Which round of the request this is: 1 for the first call."""
        return self._round.number

    @property
    def state(self) -> Any:
        """The tool's own state, carried from the previous round (None at first)."""
        return self._round.tool_state

    @state.setter
    def state(self, value: Any) -> None:
        check_json(value, "state")
        self._round.tool_state = value

    def request_input(
        self,
        requests: Mapping[str, Mapping[str, Any]],
        *,
        status_message: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """
        Return the client's answers to *requests* (key to request), or ask for them.

        *status_message* and *timeout* mean nothing here (there is no task
        and no wait).

        Raises:
            InputRequired: some are not answered yet: the request is
                answered ``input_required`` for those.
        """
        return self._round.ask(requests)


    def _input_key(self, prefix: str) -> str:
        return self._round.next_key(prefix)  # the same key on every round of one request

    @property
    def request_meta(self) -> RequestMeta:
        """The request's ``_meta`` fields."""
        return self._request_meta

    @property
    def client_capabilities(self) -> Mapping[str, Any]:
        """``io.modelcontextprotocol/clientCapabilities`` of this request."""
        return self._request_meta.client_capabilities

    def has_capability(self, name: str) -> bool:
        """Whether this request declared the client capability *name*."""
        return self._request_meta.has_capability(name)

    def require_capability(self, name: str) -> None:
        """
        Refuse the call unless this request declared the capability *name*.

        Raises:
            MissingRequiredClientCapability: it did not (-32021, HTTP 400,
                ``data.requiredCapabilities: {name: {}}``).
        """
        if not self.has_capability(name):
            raise MissingRequiredClientCapability({name: {}})


@attrs.frozen
class _Call:
    """One request, checked: what a method handler gets."""

    server: McpServer
    request: HttpRequest
    meta: RequestMeta
    params: Mapping[str, Any]

    @property
    def owner(self) -> str:
        return self.server.owner_for(self.request.principal, None)


def handle(server: McpServer, request: HttpRequest, message: Any) -> HttpResponse:
    """
    Answer one 2026-07-28 message (already decoded from JSON).

    Never raises: a fault is logged on the ``tasks_store`` logger and
    answered 500 with -32603 ``"Internal error"`` (no detail).
    """
    request_id = _readable_id(message)
    try:
        method, params, notification = _envelope(message)
        if notification:
            return HttpResponse.empty(202)
        meta = parse_meta(params)
        check_headers(request.headers, method, params, meta)
        check_version(meta)
        if method == "subscriptions/listen":
            assert request_id is not None  # not a notification: the envelope read an id
            return _listen(_Call(server, request, meta, params), request_id)
        handler = _METHODS.get(method)
        if handler is None:
            reason = REMOVED_METHODS.get(method, "not served here")
            msg = f"Method not found: {_clip(method)} ({reason})"
            raise MethodNotFound(msg)
        result = handler(_Call(server, request, meta, params))
        result = _with_server_info(result, server)
        response: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "result": result}
        return _reply(200, response)
    except Exception as exc:  # every fault becomes a response
        if not isinstance(exc, TaskError):
            logger.exception("internal error answering a 2026-07-28 request")
        elif isinstance(exc, InvalidTransition | Expired | StoreError):
            logger.info("2026-07-28 request answered with %s: %s", type(exc).__name__, exc)
        return _reply(http_status(exc), error_response(request_id, error_object(exc)))


def _reply(status: int, response: Mapping[str, Any]) -> HttpResponse:
    return HttpResponse(status, (("Content-Type", JSON_MEDIA_TYPE),), encode_response(response))


def _readable_id(message: Any) -> str | int | None:
    if isinstance(message, Mapping):
        value = message.get("id")
        if type(value) is str or type(value) is int:
            return value
    return None


def _envelope(message: Any) -> tuple[str, Mapping[str, Any], bool]:
    """Check the JSON-RPC envelope; return ``(method, params, is_notification)``."""
    if not isinstance(message, Mapping):
        kind = "an array (batches are not allowed)" if isinstance(message, list) else "not one"
        msg = f"Invalid request: expected a JSON-RPC request object, got {kind}"
        raise InvalidRequest(msg)
    if message.get("jsonrpc") != "2.0":
        msg = 'Invalid request: "jsonrpc" must be "2.0"'
        raise InvalidRequest(msg)
    if "method" not in message:
        if "result" in message or "error" in message:
            msg = "Invalid request: a client sends no JSON-RPC responses in 2026-07-28"
        else:
            msg = 'Invalid request: "method" is missing'
        raise InvalidRequest(msg)
    method = message["method"]
    if not isinstance(method, str):
        msg = 'Invalid request: "method" must be a string'
        raise InvalidRequest(msg)
    if "id" not in message:
        return method, {}, True
    if _readable_id(message) is None:
        msg = 'Invalid request: "id" must be a string or an integer (never null)'
        raise InvalidRequest(msg)
    params = message.get("params", {})
    if not isinstance(params, Mapping):
        msg = "Invalid params: params must be an object (it carries _meta)"
        raise MalformedMeta(msg)
    return method, params, False


def _with_server_info(result: dict[str, Any], server: McpServer) -> dict[str, Any]:
    meta = result.get("_meta")
    merged = dict(meta) if isinstance(meta, Mapping) else {}
    merged[SERVER_INFO_KEY] = server.server_info
    return {**result, "_meta": merged}


# -- server/discover, tools/* ---------------------------------------------------


def _discover(call: _Call) -> dict[str, Any]:
    capabilities: dict[str, Any] = {"tools": {"listChanged": True}}
    if len(call.server.prompts):
        capabilities["prompts"] = {"listChanged": True}
    capabilities["extensions"] = {TASKS_EXTENSION: {}}
    result: dict[str, Any] = {
        "resultType": "complete",
        "supportedVersions": list(SUPPORTED_VERSIONS),
        "capabilities": capabilities,
        "cacheScope": "public",
        "ttlMs": DISCOVER_TTL_MS,
    }
    if call.server.instructions is not None:
        result["instructions"] = call.server.instructions
    return result


def _tools_list(call: _Call) -> dict[str, Any]:
    cursor = call.params.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        msg = "cursor must be a string"
        raise InvalidParams(msg)
    page, next_cursor = call.server.tools.page(cursor, page_size=call.server.tools_page_size)
    result: dict[str, Any] = {
        "resultType": "complete",
        "tools": [tool.to_wire(execution=False) for tool in page],
        "cacheScope": "public",
        "ttlMs": TOOLS_LIST_TTL_MS,
    }
    if next_cursor is not None:
        result["nextCursor"] = next_cursor
    return result


def _tools_call(call: _Call) -> dict[str, Any]:
    params = call.params
    name = params.get("name")
    if not isinstance(name, str):
        msg = "Invalid params: name must be a string"
        raise InvalidParams(msg)
    tool = call.server.tools.get(name)
    if tool is None:
        msg = f"Unknown tool: {_clip(name)}"
        raise InvalidParams(msg)
    arguments = params.get("arguments", {})
    if not isinstance(arguments, dict):
        msg = "Invalid params: arguments must be an object"
        raise InvalidParams(msg)
    as_task = call.meta.has_tasks and tool.task_support != "forbidden"
    if tool.task_support == "required" and not as_task:
        msg = (
            f"Tool {name!r} runs only as a task: declare the {TASKS_EXTENSION} "
            "extension in this request's clientCapabilities"
        )
        raise MissingRequiredClientCapability(_copy(TASKS_EXTENSION_CAPABILITY), msg)
    try:
        checked = tool.check_arguments(arguments)
    except InvalidParams as exc:  # input validation: a tool execution error here
        return {"resultType": "complete", **tool_error_result(exc.message)}
    owner = call.owner
    if as_task and tool.task_support == "optional" and not _may_own_tasks(call.server, owner):
        as_task = False  # the store keeps no tasks for this caller: answer inline
    if as_task:
        return _start_task(call, tool, checked, owner)
    return _call_inline(call, tool, checked, owner)


def _may_own_tasks(server: McpServer, owner: str) -> bool:
    """Whether the store would create a task for *owner* (anonymous ones need it on)."""
    return owner not in ANONYMOUS_OWNERS or server.store.security.allow_anonymous


def _start_task(call: _Call, tool: Tool, arguments: dict[str, Any], owner: str) -> dict[str, Any]:
    if tool.prepare is not None:  # gather input first, through MRTR, then make the task
        round_ = _round(call, "tools/call", owner)
        ctx = RequestCallContext(owner, tool.name, call.meta, round_)
        try:
            arguments = tool.prepared_arguments(arguments, ctx)
        except InputRequired as asked:
            return _input_required(call, "tools/call", tool.name, round_, asked.requests)
        except ToolFailed as failed:
            return {"resultType": "complete", **failed.result}

    def run(ctx: TaskContext) -> dict[str, Any]:
        return tool.call(arguments, ctx, prepared=True)

    created = call.server.runner.start(owner, "tools/call", run)
    # runner.start returns after store.create did: the task is durable on
    # the shared store, so tasks/get resolves on every worker from now on.
    return create_task_result(Task.from_wire(created["task"]))


class _InputRequiredSignal(TaskError):
    """Carries an inline tool's ``InputRequiredResult`` past :func:`call_tool`."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__("input required")
        self.result = result


def _call_inline(call: _Call, tool: Tool, arguments: dict[str, Any], owner: str) -> dict[str, Any]:
    def fn(args: dict[str, Any], ctx: Any) -> Any:
        out = tool.fn(args, ctx)
        if isinstance(out, Mapping) and out.get("resultType") == "input_required":
            raise _InputRequiredSignal(dict(out))
        return out

    round_ = _round(call, "tools/call", owner)
    ctx = RequestCallContext(owner, tool.name, call.meta, round_)
    try:
        if tool.prepare is not None:
            arguments = tool.prepared_arguments(arguments, ctx)
        result = call_tool(fn, tool.name, arguments, ctx)
    except InputRequired as asked:
        return _input_required(call, "tools/call", tool.name, round_, asked.requests)
    except _InputRequiredSignal as signal:
        return _returned_input_required(call, tool.name, round_, signal.result)
    except ToolFailed as failed:
        result = failed.result
    result["resultType"] = "complete"
    return result


_CODECS: weakref.WeakKeyDictionary[TaskStore, RequestStateCodec] = weakref.WeakKeyDictionary()
_CODECS_LOCK = threading.Lock()


def request_state_codec(store: TaskStore) -> RequestStateCodec:
    """
    Return the codec of ``requestState`` for servers on *store*: its key is the
    store's ``shared_secret("mrtr-request-state")``, the same on every worker.
    """
    codec = _CODECS.get(store)
    if codec is None:
        secret = store.shared_secret(REQUEST_STATE_SECRET)
        with _CODECS_LOCK:
            codec = _CODECS.setdefault(store, RequestStateCodec(secret))
    return codec


def _round(call: _Call, method: str, owner: str) -> InputRound:
    """
    Return this request's round: its ``inputResponses``, and the verified
    ``requestState`` of the previous round when it carries one.

    Raises:
        InvalidParams: ``inputResponses`` is not an object of objects.
        InvalidRequestState: ``requestState`` fails verification.
    """
    params = call.params
    responses = input_responses(params)
    if "requestState" not in params:
        return InputRound(responses)
    codec = request_state_codec(call.server.store)
    payload = codec.open(
        params["requestState"],
        method=method,
        digest=salient_digest(method, params),
        owner=owner,
    )
    return InputRound.from_state(responses, payload)


def _check_requests(name: str, requests: Mapping[str, Any], meta: RequestMeta) -> dict[str, Any]:
    """Check the input requests a tool asks; every one needs a capability this request declared."""
    missing: dict[str, Any] = {}
    for entry in requests.values():
        kind = entry.get("method") if isinstance(entry, Mapping) else None
        needed = INPUT_REQUEST_CAPABILITIES.get(kind) if isinstance(kind, str) else None
        if needed is None:
            msg = f"tool {name!r} asked for input with an unknown request method"
            logger.error("%s", msg)
            raise StoreError(msg)
        if not meta.has_capability(needed):
            missing[needed] = {}
    if missing:
        raise MissingRequiredClientCapability(missing)
    try:
        check_json(dict(requests), "inputRequests")
    except InvalidParams as exc:
        msg = f"tool {name!r}: {exc.message}"
        logger.error("%s", msg)
        raise StoreError(msg) from None
    checked: dict[str, Any] = _copy(requests)
    return checked


def _input_required(
    call: _Call, method: str, name: str, round_: InputRound, requests: Mapping[str, Any]
) -> dict[str, Any]:
    """The ``InputRequiredResult`` asking *requests*, with this round's state sealed."""
    asked = _check_requests(name, requests, call.meta)
    codec = request_state_codec(call.server.store)
    state = codec.seal(
        round_.carried(),
        method=method,
        digest=salient_digest(method, call.params),
        owner=call.owner,
    )
    return {"resultType": "input_required", "inputRequests": asked, "requestState": state}


def _returned_input_required(
    call: _Call, name: str, round_: InputRound, result: dict[str, Any]
) -> dict[str, Any]:
    """
    Check an ``InputRequiredResult`` an inline tool returned itself; seal it.

    Its own ``requestState`` string, if any, becomes the tool's state (the
    tool reads it back as ``ctx.state`` on the retry); the state sent is
    always the server's signed one.
    """
    requests = result.get("inputRequests")
    state = result.get("requestState")
    if (requests is None and state is None) or (
        requests is not None and not isinstance(requests, Mapping)
    ):
        msg = f"tool {name!r} returned an InputRequiredResult without inputRequests or requestState"
        logger.error("%s", msg)
        raise StoreError(msg)
    if state is not None and not isinstance(state, str):
        msg = f"tool {name!r} returned a requestState that is not a string"
        logger.error("%s", msg)
        raise StoreError(msg)
    if state is not None:
        round_.tool_state = state
    shaped = _input_required(call, "tools/call", name, round_, requests or {})
    if requests is None:
        del shaped["inputRequests"]
    return shaped


# -- tasks/* --------------------------------------------------------------------


def _require_tasks(call: _Call, method: str) -> str:
    """Return the request's ``taskId`` once the extension and the id check out."""
    if not call.meta.has_tasks:
        msg = (
            f"{method} needs the {TASKS_EXTENSION} extension: declare it in this "
            "request's clientCapabilities"
        )
        raise MissingRequiredClientCapability(_copy(TASKS_EXTENSION_CAPABILITY), msg)
    if "taskId" not in call.params:
        msg = "Invalid params: taskId is required"
        raise InvalidParams(msg)
    task_id = call.params["taskId"]
    if not isinstance(task_id, str):
        msg = "Invalid params: taskId must be a string"
        raise InvalidParams(msg)
    if len(task_id) > MAX_TASK_ID_LENGTH:
        msg = f"Invalid params: taskId is longer than {MAX_TASK_ID_LENGTH} characters"
        raise InvalidParams(msg)
    return task_id


def _tasks_get(call: _Call) -> dict[str, Any]:
    task_id = _require_tasks(call, "tasks/get")
    record = call.server.store.get(task_id, call.owner)
    return detailed_task(record)


def _task_notification(record: TaskRecord) -> dict[str, Any]:
    """The params of ``notifications/tasks``: the ``DetailedTask``, as ``tasks/get`` has it."""
    shaped = detailed_task(record)
    del shaped["resultType"]
    return shaped


def _tasks_update(call: _Call) -> dict[str, Any]:
    task_id = _require_tasks(call, "tasks/update")
    responses = call.params.get("inputResponses")
    if not isinstance(responses, Mapping):
        msg = "Invalid params: inputResponses must be an object"
        raise InvalidParams(msg)
    for key, value in responses.items():
        if not isinstance(value, Mapping):
            msg = f"Invalid params: inputResponses[{_clip(key)!r}] must be an object"
            raise InvalidParams(msg)
    # Kept for the waiting tool when outstanding, ignored otherwise (an unknown
    # task: -32602); an expired one can no longer change, and the ack stands.
    with contextlib.suppress(Expired):
        call.server.store.respond_input(task_id, call.owner, dict(responses))
    return {"resultType": "complete"}


def _tasks_cancel(call: _Call) -> dict[str, Any]:
    task_id = _require_tasks(call, "tasks/cancel")
    store = call.server.store
    owner = call.owner
    record = store.get(task_id, owner)  # an unknown task: -32602
    if not record.status.is_terminal:
        # It may end, or expire, meanwhile: the ack stands (cancel is cooperative).
        with contextlib.suppress(InvalidTransition, Expired):
            store.cancel(task_id, owner, _CANCEL_MESSAGE)
    return {"resultType": "complete"}


# -- prompts/* --------------------------------------------------------------------


def _require_prompts(call: _Call, method: str) -> None:
    if not len(call.server.prompts):
        msg = f"Method not found: {method} (this server has no prompts)"
        raise MethodNotFound(msg)


def _prompts_list(call: _Call) -> dict[str, Any]:
    _require_prompts(call, "prompts/list")
    cursor = call.params.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        msg = "cursor must be a string"
        raise InvalidParams(msg)
    if cursor is not None:
        msg = "Invalid params: prompts/list has one page; this cursor was not issued"
        raise InvalidParams(msg)
    return {
        "resultType": "complete",
        "prompts": [prompt.to_wire() for prompt in call.server.prompts],
        "cacheScope": "public",
        "ttlMs": PROMPTS_LIST_TTL_MS,
    }


def _prompts_get(call: _Call) -> dict[str, Any]:
    _require_prompts(call, "prompts/get")
    name = call.params.get("name")
    if not isinstance(name, str):
        msg = "Invalid params: name must be a string"
        raise InvalidParams(msg)
    prompt = call.server.prompts.get(name)
    if prompt is None:
        msg = f"Unknown prompt: {_clip(name)}"
        raise InvalidParams(msg)
    arguments = call.params.get("arguments", {})
    if not isinstance(arguments, Mapping) or not all(
        isinstance(v, str) for v in arguments.values()
    ):
        msg = "Invalid params: arguments must be an object of strings"
        raise InvalidParams(msg)
    owner = call.owner
    round_ = _round(call, "prompts/get", owner)
    ctx = RequestCallContext(owner, name, call.meta, round_)
    try:
        out = prompt.fn(dict(arguments), ctx)
    except InputRequired as asked:
        return _input_required(call, "prompts/get", name, round_, asked.requests)
    except TaskError:
        raise
    except Exception:
        logger.exception("prompt %r raised", name)
        raise TaskError(INTERNAL_MESSAGE) from None
    if not isinstance(out, Mapping) or not isinstance(out.get("messages"), list):
        msg = f"prompt {name!r} returned something that is not a GetPromptResult"
        logger.error("%s", msg)
        raise StoreError(msg)
    try:
        check_json(dict(out), "prompt result")
    except InvalidParams as exc:
        msg = f"prompt {name!r}: {exc.message}"
        logger.error("%s", msg)
        raise StoreError(msg) from None
    return {**_copy(out), "resultType": "complete"}


# -- subscriptions/listen ------------------------------------------------------------


def _listen(call: _Call, request_id: str | int) -> HttpResponse:
    """
    Answer ``subscriptions/listen`` with its stream, once the filter checks out.

    Raises:
        InvalidParams: ``notifications`` is not an object, ``taskIds`` not a
            list of at most 100 strings.
        MissingRequiredClientCapability: ``taskIds`` without the extension.
        TooManyBlockingCalls: the gate is full (this owner or the server).
    """
    accept = call.request.header("accept")
    if not accepts_media(accept, EVENT_STREAM_MEDIA_TYPE):
        msg = f"subscriptions/listen answers with {EVENT_STREAM_MEDIA_TYPE}: accept it"
        raise InvalidRequest(msg)
    wanted = call.params.get("notifications")
    if not isinstance(wanted, Mapping):
        msg = "Invalid params: notifications must be an object (the subscription filter)"
        raise InvalidParams(msg)
    agreed: dict[str, Any] = {}
    if wanted.get("toolsListChanged") is True:
        agreed["toolsListChanged"] = True
    if wanted.get("promptsListChanged") is True and len(call.server.prompts):
        agreed["promptsListChanged"] = True
    owner = call.owner
    store = call.server.store
    task_ids: tuple[str, ...] = ()
    if "taskIds" in wanted:
        ids = wanted["taskIds"]
        if not isinstance(ids, list) or not all(isinstance(t, str) for t in ids):
            msg = "Invalid params: notifications.taskIds must be a list of strings"
            raise InvalidParams(msg)
        if len(ids) > MAX_LISTEN_TASKS:
            msg = f"Invalid params: at most {MAX_LISTEN_TASKS} taskIds per subscription"
            raise InvalidParams(msg)
        if not call.meta.has_tasks:
            msg = (
                f"task notifications need the {TASKS_EXTENSION} extension: declare it in "
                "this request's clientCapabilities"
            )
            raise MissingRequiredClientCapability(_copy(TASKS_EXTENSION_CAPABILITY), msg)
        held = []
        for task_id in dict.fromkeys(ids):
            if len(task_id) > MAX_TASK_ID_LENGTH:
                continue
            try:
                store.get(task_id, owner)
            except TaskError:  # unknown, another owner's: not agreed, as the same
                continue
            held.append(task_id)
        task_ids = tuple(held)
        agreed["taskIds"] = list(task_ids)
    end_meta = {SERVER_INFO_KEY: call.server.server_info}
    stream = EventStream.open(
        call.server,
        owner,
        task_ids,
        lambda watch: ListenStream(
            call.server, owner, request_id, agreed, task_ids, watch, _task_notification,
            end_meta,
        ),
        call.request,
    )  # fmt: skip
    logger.info(
        "subscriptions/listen opened (%d task(s)%s)",
        len(task_ids),
        ", tools list" if "toolsListChanged" in agreed else "",
    )
    return HttpResponse.sse(stream)


_METHODS: Mapping[str, Callable[[_Call], dict[str, Any]]] = {
    "server/discover": _discover,
    "tools/list": _tools_list,
    "tools/call": _tools_call,
    "prompts/list": _prompts_list,
    "prompts/get": _prompts_get,
    "tasks/get": _tasks_get,
    "tasks/update": _tasks_update,
    "tasks/cancel": _tasks_cancel,
}


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def _clip(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else f"{text[: limit - 3]}..."

"""
Streamed replies (Server-Sent Events): what they carry, and their limits.

Two requests are answered with a stream (``text/event-stream``):

- **2025-11-25 ``tasks/result`` of an ``input_required`` task**
  (:class:`ResultStream`).  The stream carries each outstanding input
  request of the task as a JSON-RPC request from the server (id
  ``tasks_store-input:<taskId>:<key>``, ``_meta`` holding the related-task
  key), a ``notifications/tasks/status`` each time the task's status or
  message changes, and ends with the ``tasks/result`` response, exactly the
  one a plain call would get (or its -32603 timeout after the server's
  ``result_timeout``).  The client POSTs its responses to those requests;
  :func:`route_response` stores them (``store.respond_input``), and the
  tool waiting on whichever worker runs it is woken.
- **2026-07-28 ``subscriptions/listen``** (:class:`ListenStream`):
  ``notifications/subscriptions/acknowledged`` first, then
  ``notifications/tasks`` (the full ``DetailedTask``, as ``tasks/get``
  answers it) for the subscribed task ids on every change through any
  worker, ``notifications/tools/list_changed`` when a tool is added and
  ``notifications/prompts/list_changed`` when a prompt is;
  every message carries ``_meta["io.modelcontextprotocol/subscriptionId"]``.
  On server shutdown it ends with the ``subscriptions/listen`` result.

Every stream waits on a store watch (:meth:`TaskStore.watch`, through the
one blocking function :func:`~tasks_store.store._base.block`), so it wakes
on a change made in any process sharing the store, and otherwise every
``disconnect_check_s`` (the server's :class:`~tasks_store.mcp.limits.ServerLimits`)
to see whether its client went away or the server is closing; after
:attr:`StreamRegistry.keepalive_s` of silence it writes an SSE comment
(which also reveals a client gone on servers that cannot tell).  A stream
ends when its client goes away, when its reply is complete, or when the
server closes.

Streams are bounded: each holds a slot of the server's blocking-call gate
(:class:`~tasks_store.mcp.limits.BlockingGate`, per owner and in total) for
as long as it is open; one over either limit is refused before it starts
with :class:`~tasks_store.mcp.limits.TooManyBlockingCalls` (-32603,
``data: {"scope": "owner" | "server", "limit"}``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import (
    Expired,
    InvalidParams,
    NotFound,
    TaskError,
    WaitTimeout,
    error_object,
)
from ..records import RELATED_TASK_META_KEY, JsonRpcError, TaskRecord
from ..store._base import TaskWatch
from .http import SSE_COMMENT, HttpRequest, sse_event
from .jsonrpc import error_response, wire_task_2025
from .limits import Slot

if TYPE_CHECKING:
    from .server import McpServer

__all__ = [
    "INPUT_REQUEST_ID_PREFIX",
    "MAX_LISTEN_TASKS",
    "SUBSCRIPTION_ID_KEY",
    "EventStream",
    "ListenStream",
    "ResultStream",
    "StreamRegistry",
    "input_request_id",
    "parse_input_request_id",
    "route_response",
]

logger = logging.getLogger("tasks_store")

#: The id of an input request sent on a 2025-11-25 stream starts with this.
INPUT_REQUEST_ID_PREFIX = "tasks_store-input:"
#: Where a listen stream's messages carry its subscription id.
SUBSCRIPTION_ID_KEY = "io.modelcontextprotocol/subscriptionId"


class StreamRegistry:
    """
    The open streams of one server, closed together when the server closes.
    Thread-safe.

    Args:
        keepalive_s: seconds of silence after which a stream writes an SSE comment.
    """

    def __init__(self, *, keepalive_s: float = 15.0) -> None:
        if isinstance(keepalive_s, bool) or not isinstance(keepalive_s, (int, float)) or (
            not keepalive_s > 0
        ):
            msg = f"keepalive_s must be a positive number of seconds, got {keepalive_s!r}"
            raise ValueError(msg)
        self.keepalive_s = float(keepalive_s)
        self._lock = threading.Lock()
        self._open: set[EventStream] = set()
        self._closing = False

    @property
    def closing(self) -> bool:
        """True once :meth:`close` was called: streams end, new ones are refused."""
        return self._closing

    def __len__(self) -> int:
        """How many streams are open."""
        return len(self._open)

    def _add(self, stream: EventStream) -> None:
        with self._lock:
            if self._closing:
                msg = "the server is shutting down"
                raise TaskError(msg)
            self._open.add(stream)

    def _remove(self, stream: EventStream) -> None:
        with self._lock:
            self._open.discard(stream)

    def close(self) -> None:
        """End every open stream (gracefully, where its protocol says how) and refuse new ones."""
        with self._lock:
            self._closing = True
            streams = list(self._open)
        for stream in streams:
            stream.wake()


class _Source(Protocol):
    """What one kind of stream produces; :class:`EventStream` drives it."""

    def step(self) -> tuple[list[bytes], bool]:
        """The events due now, and whether the stream is complete."""

    def wait_limit(self) -> float | None:
        """Seconds until the source has something due by time alone (a deadline), or None."""

    def closing(self) -> list[bytes]:
        """The events that end the stream when the server closes."""

    def failed(self, exc: TaskError) -> list[bytes]:
        """The events that end the stream after a store failure (*exc*)."""

    def finish(self) -> None:
        """The stream ended (whatever the reason): drop what the source holds."""


class EventStream:
    """
    The body of a streamed reply: iterate it for chunks; :meth:`close` ends
    it and releases its watch and its place in the limits (idempotent; the
    WSGI adapter calls it when the client goes away or the body ends).

    Built by :meth:`open`, which takes a slot of the server's gate first.
    """

    def __init__(
        self,
        registry: StreamRegistry,
        owner_id: str,
        watch: TaskWatch,
        source: _Source,
        request: HttpRequest,
        slot: Slot,
        check_s: float,
    ) -> None:
        self._registry = registry
        self.owner_id = owner_id
        self._watch = watch
        self._source = source
        self._request = request
        self._slot = slot
        self._check_s = check_s
        self._closed = False
        self._events = self._run()

    @classmethod
    def open(
        cls,
        server: McpServer,
        owner_id: str,
        watch_ids: tuple[str, ...],
        make_source: Callable[[TaskWatch], _Source],
        request: HttpRequest,
    ) -> EventStream:
        """
        Return a stream for *owner_id*, watching its tasks *watch_ids*.

        Raises:
            TooManyBlockingCalls: the owner or the server holds as many
                blocking calls (streams included) as the gate allows
                (nothing is opened).
        """
        registry = server.streams
        slot = server.gate.acquire(owner_id, "stream")
        try:
            watch = server.store.watch(owner_id, watch_ids)
        except BaseException:
            slot.release()
            raise
        try:
            source = make_source(watch)
        except BaseException:
            watch.close()
            slot.release()
            raise
        check_s = server.limits.disconnect_check_s
        stream = cls(registry, owner_id, watch, source, request, slot, check_s)
        try:
            registry._add(stream)
        except BaseException:
            stream._release()
            raise
        return stream

    def wake(self) -> None:
        """Wake the stream's wait (a change elsewhere, or the server closing)."""
        self._watch.wake()

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return next(self._events)

    def _run(self) -> Generator[bytes, None, None]:
        keepalive_s = self._registry.keepalive_s
        source = self._source
        last = time.monotonic()
        try:
            while True:
                if self._registry.closing:
                    events = source.closing()
                    if events:
                        yield b"".join(events)
                    return
                events, done = source.step()
                if events:
                    yield b"".join(events)
                    last = time.monotonic()
                if done or self._request.gone():
                    return
                wait_s = self._check_s
                limit = source.wait_limit()
                if limit is not None:
                    wait_s = max(0.0, min(wait_s, limit))
                changed = self._watch.wait(wait_s)
                if not changed and time.monotonic() - last >= keepalive_s:
                    yield SSE_COMMENT
                    last = time.monotonic()
        except TaskError as exc:  # the store failed (StoreError): end with it
            logger.warning("a stream ended on %s: %s", type(exc).__name__, exc)
            events = source.failed(exc)
            if events:
                yield b"".join(events)
        finally:
            self._release()

    def _release(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._source.finish()
            finally:
                try:
                    self._watch.close()
                finally:
                    self._slot.release()
                    self._registry._remove(self)

    def close(self) -> None:
        """End the stream; idempotent."""
        try:
            self._events.close()
        finally:
            self._release()


# -- 2025-11-25: tasks/result of a task waiting for input ----------------------


def input_request_id(task_id: str, key: str) -> str:
    """
    Return the JSON-RPC id of input request *key* of task *task_id* on the stream.

    >>> input_request_id("786512e2", "confirm")
    'tasks_store-input:786512e2:confirm'
    """
    return f"{INPUT_REQUEST_ID_PREFIX}{task_id}:{key}"


def parse_input_request_id(request_id: object) -> tuple[str, str] | None:
    """
    Return ``(task_id, key)`` from an id :func:`input_request_id` made, else None.

    >>> parse_input_request_id("tasks_store-input:786512e2:a:b")
    ('786512e2', 'a:b')
    >>> parse_input_request_id(7) is None
    True
    """
    if not isinstance(request_id, str) or not request_id.startswith(INPUT_REQUEST_ID_PREFIX):
        return None
    task_id, sep, key = request_id[len(INPUT_REQUEST_ID_PREFIX) :].partition(":")
    if not sep or not task_id or not key:
        return None
    return task_id, key


def route_response(server: McpServer, owner_id: str, message: Mapping[str, Any]) -> bool:
    """
    Store a client's JSON-RPC response to an input request (2025-11-25).

    *message* is the response a client POSTed (``id`` and ``result`` or
    ``error``).  Returns whether it answered an input request of the
    owner's tasks and was accepted (the key outstanding).  Anything else
    (an unknown id, another owner's task, a key no longer outstanding, a
    malformed answer) is ignored and logged at INFO: the client gets 202
    whatever happens, as for every response it posts.
    """
    found = parse_input_request_id(message.get("id"))
    if found is None:
        return False
    task_id, key = found
    if "error" in message:
        error = message["error"]
        if not isinstance(error, Mapping) or not isinstance(error.get("code"), int):
            logger.info("task %s: ignored a malformed error answer to input %r", task_id, key)
            return False
        text = error.get("message")
        answer: Any = JsonRpcError(
            error["code"], text if isinstance(text, str) else "", error.get("data")
        )
    else:
        answer = message.get("result")
    try:
        accepted = server.store.respond_input(task_id, owner_id, {key: answer})
    except (NotFound, Expired, InvalidParams) as exc:
        logger.info("task %s: ignored an answer to input %r: %s", task_id, key, exc)
        return False
    if not accepted:
        logger.info("task %s: ignored an answer to input %r (not outstanding)", task_id, key)
    return bool(accepted)


class ResultStream:
    """
    The events of a 2025-11-25 ``tasks/result`` stream; see the module docstring.

    Args:
        server: the server (its store and ``tasks/result`` handler).
        owner_id: the caller.
        task_id: the task.
        request_id: the ``tasks/result`` request's id.
        status_notifications: send ``notifications/tasks/status`` on changes.
    """

    def __init__(
        self,
        server: McpServer,
        owner_id: str,
        task_id: str,
        request_id: str | int,
        *,
        status_notifications: bool = True,
    ) -> None:
        self._server = server
        self._owner = owner_id
        self._task_id = task_id
        self._request_id = request_id
        self._notify = status_notifications
        self._sent: set[str] = set()
        self._seen: tuple[str, str | None] | None = None
        timeout = server.result_timeout
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._timeout = timeout

    def _final(self) -> bytes:
        """The ``tasks/result`` response, as a plain call of a task that ended gets it."""
        message = {
            "jsonrpc": "2.0",
            "id": self._request_id,
            "method": "tasks/result",
            "params": {"taskId": self._task_id},
        }
        response = self._server.rpc.handle(message, self._owner)
        assert response is not None  # a request with an id is answered
        return sse_event(response)

    def _error(self, exc: TaskError, status: str | None = None) -> bytes:
        error = exc.to_jsonrpc_error()
        if status is not None:
            error["data"] = {**error.get("data", {}), "status": status}
        return sse_event(error_response(self._request_id, error))

    def step(self) -> tuple[list[bytes], bool]:
        store = self._server.store
        try:
            record = store.get(self._task_id, self._owner)
        except NotFound as exc:
            return [self._error(exc)], True
        events: list[bytes] = []
        seen = (record.task.status.value, record.task.status_message)
        if self._notify and self._seen is not None and seen != self._seen:
            events.append(self._status(record))
        self._seen = seen
        if record.status.is_terminal:
            events.append(self._final())
            return events, True
        if record.is_expired():
            try:
                store.wait(self._task_id, self._owner, timeout=0)
            except Expired as exc:
                events.append(self._error(exc))
                return events, True
            except WaitTimeout:
                pass  # the store's clock says it has not expired yet
        for key, request in record.input_requests.items():
            if key not in self._sent:
                self._sent.add(key)
                events.append(self._request_event(key, request))
        if self._deadline is not None and time.monotonic() >= self._deadline:
            assert self._timeout is not None
            events.append(
                self._error(WaitTimeout(self._task_id, self._timeout), record.status.value)
            )
            return events, True
        return events, False

    def _request_event(self, key: str, request: Mapping[str, Any]) -> bytes:
        params = dict(request.get("params") or {})
        meta = params.get("_meta")
        params["_meta"] = {
            **(meta if isinstance(meta, Mapping) else {}),
            RELATED_TASK_META_KEY: {"taskId": self._task_id},
        }
        message = {
            "jsonrpc": "2.0",
            "id": input_request_id(self._task_id, key),
            "method": request["method"],
            "params": params,
        }
        return sse_event(message)

    @staticmethod
    def _status(record: TaskRecord) -> bytes:
        message = {
            "jsonrpc": "2.0",
            "method": "notifications/tasks/status",
            "params": wire_task_2025(record),
        }
        return sse_event(message)

    def wait_limit(self) -> float | None:
        if self._deadline is None:
            return None
        return self._deadline - time.monotonic()

    def closing(self) -> list[bytes]:
        return []  # no graceful end on this wire: the client asks tasks/result again

    def failed(self, exc: TaskError) -> list[bytes]:
        return [self._error(exc)]

    def finish(self) -> None:
        """Nothing held."""


# -- 2026-07-28: subscriptions/listen --------------------------------------------

#: The most task ids one listen stream may subscribe to.
MAX_LISTEN_TASKS = 100


class ListenStream:
    """
    The events of a 2026-07-28 ``subscriptions/listen`` stream; see the module docstring.

    Args:
        server: the server.
        owner_id: the caller.
        subscription_id: the ``subscriptions/listen`` request's id.
        agreed: the ``notifications`` filter the server honours (the ack's).
        task_ids: the subscribed tasks the caller holds.
        watch: the stream's watch (a tools list change wakes it).
        shape: ``fn(record) -> dict``, the ``DetailedTask`` of a record.
        end_meta: what the result's ``_meta`` holds besides the
            subscription id, when the server ends the stream.
    """

    def __init__(
        self,
        server: McpServer,
        owner_id: str,
        subscription_id: str | int,
        agreed: Mapping[str, Any],
        task_ids: tuple[str, ...],
        watch: TaskWatch,
        shape: Callable[[TaskRecord], dict[str, Any]],
        end_meta: Mapping[str, Any],
    ) -> None:
        self._server = server
        self._owner = owner_id
        self._sid = subscription_id
        self._agreed = dict(agreed)
        self._tasks = list(task_ids)
        self._shape = shape
        self._end_meta = dict(end_meta)
        self._last: dict[str, dict[str, Any]] = {}
        self._acked = False
        self._tools = bool(agreed.get("toolsListChanged"))
        self._tools_version = server.tools.version
        self._prompts = bool(agreed.get("promptsListChanged"))
        self._prompts_version = server.prompts.version
        self._stops: list[Callable[[], None]] = []
        if self._tools:
            self._stops.append(server.tools.on_change(watch.wake))
        if self._prompts:
            self._stops.append(server.prompts.on_change(watch.wake))

    def _meta(self) -> dict[str, Any]:
        return {SUBSCRIPTION_ID_KEY: self._sid}

    def _notification(self, method: str, params: Mapping[str, Any] | None = None) -> bytes:
        body = dict(params or {})
        meta = body.get("_meta")
        body["_meta"] = {**(meta if isinstance(meta, Mapping) else {}), **self._meta()}
        return sse_event({"jsonrpc": "2.0", "method": method, "params": body})

    def step(self) -> tuple[list[bytes], bool]:
        events: list[bytes] = []
        if not self._acked:
            self._acked = True
            events.append(
                self._notification(
                    "notifications/subscriptions/acknowledged", {"notifications": self._agreed}
                )
            )
        if self._tools and self._server.tools.version != self._tools_version:
            self._tools_version = self._server.tools.version
            events.append(self._notification("notifications/tools/list_changed"))
        if self._prompts and self._server.prompts.version != self._prompts_version:
            self._prompts_version = self._server.prompts.version
            events.append(self._notification("notifications/prompts/list_changed"))
        store = self._server.store
        for task_id in list(self._tasks):
            try:
                record = store.get(task_id, self._owner)
            except NotFound:
                self._tasks.remove(task_id)  # removed (expired and cleaned up)
                continue
            shaped = self._shape(record)
            if shaped != self._last.get(task_id):
                self._last[task_id] = shaped
                events.append(self._notification("notifications/tasks", shaped))
            if record.status.is_terminal:
                self._tasks.remove(task_id)  # it never changes again
        return events, False

    def wait_limit(self) -> float | None:
        return None

    def closing(self) -> list[bytes]:
        result = {"resultType": "complete", "_meta": {**self._end_meta, **self._meta()}}
        return [sse_event({"jsonrpc": "2.0", "id": self._sid, "result": result})]

    def failed(self, exc: TaskError) -> list[bytes]:
        return [sse_event(error_response(self._sid, error_object(exc)))]

    def finish(self) -> None:
        """Stop listening to the tools and prompts lists."""
        stops, self._stops = self._stops, []
        for stop in stops:
            stop()

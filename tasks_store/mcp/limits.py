"""
Per-request bounds: blocking calls (:class:`BlockingGate`) and rate limits (:class:`RateGuard`).

Blocking calls
==============

A blocking call holds one server thread while it waits: the 2025-11-25
``tasks/result``, a stream, an input wait.  :class:`BlockingGate` lets at
most ``max_blocking`` of them run at once in this process, and at most
``max_blocking_per_owner`` for one owner (:class:`ServerLimits`; defaults 4
and 2, so a 16-thread server keeps three quarters of its threads for
everything else).  A call over a limit is never queued: it is answered at
once.  ``tasks/result`` then answers -32603 with ``data: {"taskId",
"status", "limit", "scope"}``, the task's current state, as the spec lets a
``tasks/result`` fail ("clients may keep polling ``tasks/get`` if their
previous ``tasks/result`` request failed"); the task is untouched.

**Wrapping a stream (one line).**  Hold a slot for as long as the stream is
open; :meth:`BlockingGate.acquire` raises :class:`TooManyBlockingCalls`
(answer it before sending anything) and the slot is released on leaving the
block, or by ``slot.release()`` (idempotent) from a generator's ``finally``::

    with server.gate.acquire(owner, "stream") as slot:
        ...  # wait, write events; check client_disconnected() between them

A blocking call also ends when its client hangs up.  :func:`connection_scope`
(entered by :class:`~tasks_store.mcp.wsgi.TasksApp` around each request)
finds a probe in the WSGI environ, and :func:`client_disconnected` asks it:

==========================  ===================================================
server                      how a hang-up is seen
==========================  ===================================================
waitress                    ``environ["waitress.client_disconnected"]``; needs
                            ``channel_request_lookahead >= 1`` (the example
                            servers set it), else waitress does not read the
                            socket while the app runs and never sees it
gunicorn (sync, gthread)    ``environ["gunicorn.socket"]``: a non-blocking
                            ``poll`` + ``MSG_PEEK`` on the socket (EOF = gone)
granian, mod_wsgi, others   not seen: the call ends at ``result_timeout``; keep
                            it finite there
==========================  ===================================================

:func:`wait_for_end` waits for a task in slices of ``disconnect_check_s``
(0.5 s) when there is a probe, asking it between slices, so a hung-up
client's thread is back within that time; without a probe it is one
``store.wait``.  A stream writes, and a failed write is its probe.

Rate limits
===========

:class:`RateGuard` charges each task operation to the caller's token
buckets (:mod:`tasks_store.store.ratelimit`, shared by every worker on
Redis) before the method runs; over a limit the answer is JSON-RPC -32603
with HTTP 429 and ``Retry-After``.  Off unless ``ServerLimits(rate_limits=...)``
turns a limit on.
"""

from __future__ import annotations

import contextvars
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import INTERNAL_ERROR, TaskError, WaitTimeout
from ..records import TaskRecord
from ..store import TaskStore
from ..store.ratelimit import Bucket, RateLimited, RateLimiter, RateLimits, limiter_for

if TYPE_CHECKING:
    from .http import HttpRequest
    from .tools import ToolRegistry

__all__ = [
    "BlockingGate",
    "ClientDisconnected",
    "RateGuard",
    "ServerLimits",
    "Slot",
    "TooManyBlockingCalls",
    "client_disconnected",
    "connection_scope",
    "current_probe",
    "probe_from_environ",
    "wait_for_end",
]

#: ``probe() -> True`` once the client of the current request hung up.
Probe = Callable[[], bool]


class TooManyBlockingCalls(TaskError):
    """
    A blocking call over the gate's limit: answered at once, never queued.

    ``scope`` is ``"owner"`` (this caller holds ``limit`` already) or
    ``"server"`` (the process does).

    >>> TooManyBlockingCalls("owner", 2).to_jsonrpc_error()["data"]
    {'scope': 'owner', 'limit': 2}
    """

    code = INTERNAL_ERROR
    _fields = ("scope", "limit")

    def __init__(self, scope: str, limit: int) -> None:
        who = "this caller" if scope == "owner" else "the server"
        super().__init__(
            f"Too many blocking calls: {who} already has {limit} waiting; "
            "poll tasks/get instead, or retry later"
        )
        self.scope = scope
        self.limit = limit

    def _data(self) -> dict[str, Any]:
        return {"scope": self.scope, "limit": self.limit}


class ClientDisconnected(TaskError):
    """The client of a blocking call hung up; the call gave up its thread (the task goes on)."""

    code = INTERNAL_ERROR

    def __init__(self) -> None:
        super().__init__("The client disconnected before the call ended")


def _check_limit(name: str) -> Callable[[Any, Any, Any], None]:
    def check(_: Any, attribute: Any, value: Any) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or (
            value < 1
        )):
            msg = f"{name} must be an int >= 1 or None, got {value!r}"
            raise ValueError(msg)

    return check


def _check_interval(_: object, attribute: Any, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 60:
        msg = f"disconnect_check_s must be a number in (0, 60], got {value!r}"
        raise ValueError(msg)


def _check_rate_limits(_: object, attribute: Any, value: object) -> None:
    if not isinstance(value, RateLimits):
        msg = f"rate_limits must be a RateLimits, got {type(value).__name__}"
        raise TypeError(msg)


@attrs.frozen
class ServerLimits:
    """
    The limits an :class:`~tasks_store.mcp.server.McpServer` applies to requests.

    Args:
        max_blocking: blocking calls at once in this process (None: no limit).
        max_blocking_per_owner: blocking calls at once for one owner (None: no limit).
        disconnect_check_s: how often a waiting call asks whether its client
            hung up (where the WSGI server can tell).
        rate_limits: per-owner token buckets (all off by default).

    Raises:
        TypeError, ValueError: a field of the wrong type or range.
    """

    max_blocking: int | None = attrs.field(default=4, validator=_check_limit("max_blocking"))
    max_blocking_per_owner: int | None = attrs.field(
        default=2, validator=_check_limit("max_blocking_per_owner")
    )
    disconnect_check_s: float = attrs.field(default=0.5, validator=_check_interval)
    rate_limits: RateLimits = attrs.field(factory=RateLimits, validator=_check_rate_limits)


# -- the gate -------------------------------------------------------------------


class Slot:
    """One place held in a :class:`BlockingGate`; a context manager that releases it."""

    __slots__ = ("_gate", "_owner", "kind")

    def __init__(self, gate: BlockingGate, owner_id: str, kind: str) -> None:
        self._gate: BlockingGate | None = gate
        self._owner = owner_id
        self.kind = kind

    def release(self) -> None:
        """Give the place back.  Idempotent."""
        gate, self._gate = self._gate, None
        if gate is not None:
            gate._release(self._owner)

    @property
    def held(self) -> bool:
        """Whether the place is still held."""
        return self._gate is not None

    def __enter__(self) -> Slot:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class BlockingGate:
    """
    At most *total* blocking calls at once, and at most *per_owner* for one owner.

    Args:
        total: the most slots held at once (None: no limit).
        per_owner: the most one owner holds at once (None: no limit).

    Thread-safe; :meth:`acquire` never blocks.

    >>> gate = BlockingGate(total=3, per_owner=1)
    >>> with gate.acquire("alice"):
    ...     gate.active(), gate.active("alice")
    (1, 1)
    >>> gate.active()
    0
    """

    def __init__(self, *, total: int | None = 4, per_owner: int | None = 2) -> None:
        _check_limit("total")(None, None, total)
        _check_limit("per_owner")(None, None, per_owner)
        self._total = total
        self._per_owner = per_owner
        self._lock = threading.Lock()
        self._held = 0
        self._by_owner: dict[str, int] = {}
        self.refused = 0  # calls answered at once over a limit (for metrics and tests)

    @property
    def total(self) -> int | None:
        """The most blocking calls at once."""
        return self._total

    @property
    def per_owner(self) -> int | None:
        """The most blocking calls at once for one owner."""
        return self._per_owner

    def active(self, owner_id: str | None = None) -> int:
        """How many slots are held (by *owner_id*, when given)."""
        with self._lock:
            return self._held if owner_id is None else self._by_owner.get(owner_id, 0)

    def acquire(self, owner_id: str, kind: str = "call") -> Slot:
        """
        Take a slot for *owner_id* at once, or refuse.

        Args:
            owner_id: who is calling.
            kind: what the slot is for (``"tasks/result"``, ``"stream"``, ...).

        Raises:
            TooManyBlockingCalls: the owner's or the server's limit is reached.
        """
        with self._lock:
            mine = self._by_owner.get(owner_id, 0)
            if self._per_owner is not None and mine >= self._per_owner:
                self.refused += 1
                raise TooManyBlockingCalls("owner", self._per_owner)
            if self._total is not None and self._held >= self._total:
                self.refused += 1
                raise TooManyBlockingCalls("server", self._total)
            self._held += 1
            self._by_owner[owner_id] = mine + 1
        return Slot(self, owner_id, kind)

    def _release(self, owner_id: str) -> None:
        with self._lock:
            self._held -= 1
            left = self._by_owner[owner_id] - 1
            if left:
                self._by_owner[owner_id] = left
            else:
                del self._by_owner[owner_id]


# -- client disconnects ---------------------------------------------------------

_probe: contextvars.ContextVar[Probe | None] = contextvars.ContextVar(
    "tasks_store_disconnect_probe", default=None
)


def _socket_probe(sock: socket.socket) -> Probe:
    """A probe of a client socket: readable with nothing to read means the peer closed."""

    def closed() -> bool:
        try:
            poller = select.poll()
            poller.register(sock.fileno(), select.POLLIN | select.POLLHUP | select.POLLERR)
            events = poller.poll(0)
            if not events:
                return False
            flags = events[0][1]
            if flags & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                return True
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except (OSError, ValueError):
            return True

    return closed


def probe_from_environ(environ: Mapping[str, Any]) -> Probe | None:
    """
    Return a probe of the request's client connection, or None where the server gives none.

    waitress: ``waitress.client_disconnected``; gunicorn: a poll of
    ``gunicorn.socket``; anything else: None.
    """
    found = environ.get("waitress.client_disconnected")
    if callable(found):
        return found  # type: ignore[no-any-return]
    sock = environ.get("gunicorn.socket")
    if isinstance(sock, socket.socket) and hasattr(select, "poll"):
        return _socket_probe(sock)
    return None


@contextmanager
def connection_scope(environ: Mapping[str, Any]) -> Iterator[Probe | None]:
    """Make the request's probe (if any) the current one for the block; yield it."""
    probe = probe_from_environ(environ)
    token = _probe.set(probe)
    try:
        yield probe
    finally:
        _probe.reset(token)


def current_probe() -> Probe | None:
    """The probe of the request this thread serves, or None."""
    return _probe.get()


def client_disconnected() -> bool:
    """Whether the client of the request this thread serves hung up (False when unknown)."""
    probe = _probe.get()
    if probe is None:
        return False
    try:
        return bool(probe())
    except Exception:  # a probe that breaks says nothing
        return False


def wait_for_end(
    store: TaskStore,
    task_id: str,
    owner_id: str,
    *,
    timeout: float | None,
    probe: Probe | None = None,
    check_every: float = 0.5,
) -> TaskRecord:
    """
    ``store.wait`` that also gives up when the client hangs up.

    Without *probe*, exactly ``store.wait(task_id, owner_id, timeout=timeout)``.
    With one, waits in slices of *check_every* seconds and asks *probe*
    between them.

    Raises:
        ClientDisconnected: the probe said the client is gone.
        WaitTimeout, NotFound, Expired: as ``store.wait``.
    """
    if probe is None:
        return store.wait(task_id, owner_id, timeout=timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        piece = check_every
        if deadline is not None:
            piece = min(piece, max(0.0, deadline - time.monotonic()))
        try:
            return store.wait(task_id, owner_id, timeout=piece)
        except WaitTimeout:
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(task_id, timeout) from None  # type: ignore[arg-type]
        try:
            gone = bool(probe())
        except Exception:
            gone = False
        if gone:
            raise ClientDisconnected


# -- rate limits ----------------------------------------------------------------

#: The methods that are task operations, on either generation.
TASK_METHODS = frozenset(
    {"tasks/get", "tasks/result", "tasks/list", "tasks/cancel", "tasks/update"}
)
_EXTENSIONS_KEY = "io.modelcontextprotocol/clientCapabilities"
_TASKS_EXTENSION = "io.modelcontextprotocol/tasks"


class RateGuard:
    """
    Charge a request's task operations to its owner's buckets, before the method runs.

    Args:
        store: the task store (its backend decides where buckets live, and
            its ``poll_interval_ms`` the polling rate).
        limits: which limits are on.
        limiter: where buckets live; by default ``limiter_for(store)``.

    :meth:`charge` raises :class:`RateLimited`; :class:`McpServer` answers it
    429 with ``Retry-After``.  A request that is not a task operation costs
    nothing.  Owners are what the server resolved (``user:<p>``,
    ``session:<hash>``, or the anonymous ``local``, which all anonymous
    callers share).
    """

    def __init__(
        self, store: TaskStore, limits: RateLimits, limiter: RateLimiter | None = None
    ) -> None:
        self._limits = limits
        if limiter is None and limits.enabled:
            limiter = limiter_for(store)
        self._limiter = limiter
        poll_ms = getattr(store, "poll_interval_ms", None)
        self._poll: Bucket | None = None
        if limits.throttle_polling and isinstance(poll_ms, int) and poll_ms > 0:
            self._poll = Bucket(rate=1000 / poll_ms, burst=limits.poll_burst)

    @property
    def limits(self) -> RateLimits:
        """The limits charged."""
        return self._limits

    @staticmethod
    def creates_task(message: Mapping[str, Any], generation: str, tools: ToolRegistry) -> bool:
        """Whether a ``tools/call`` asks for a task (2025: ``task``; 2026: the extension)."""
        params = message.get("params")
        if not isinstance(params, Mapping):
            return False
        if generation.startswith("2025"):
            return "task" in params
        meta = params.get("_meta")
        caps = meta.get(_EXTENSIONS_KEY) if isinstance(meta, Mapping) else None
        extensions = caps.get("extensions") if isinstance(caps, Mapping) else None
        if not isinstance(extensions, Mapping) or _TASKS_EXTENSION not in extensions:
            return False
        name = params.get("name")
        tool = tools.get(name) if isinstance(name, str) else None
        return tool is not None and tool.task_support != "forbidden"

    def charge(
        self, request: HttpRequest, message: Any, generation: str, owner_id: str,
        tools: ToolRegistry,
    ) -> None:
        """
        Take what *message* costs from *owner_id*'s buckets.

        Raises:
            RateLimited: a bucket is empty (``retry_after`` says for how long).
            StoreError: the limiter's backend failed.
        """
        limiter = self._limiter
        if limiter is None or not isinstance(message, Mapping) or "id" not in message:
            return
        method = message.get("method")
        limits = self._limits
        create = method == "tools/call" and self.creates_task(message, generation, tools)
        if method not in TASK_METHODS and not create:
            return
        if limits.operations is not None:
            wait = limiter.take(f"ops:{owner_id}", limits.operations)
            if wait:
                raise RateLimited("operations", wait)
        if create and limits.creates is not None:
            wait = limiter.take(f"creates:{owner_id}", limits.creates)
            if wait:
                raise RateLimited("creates", wait)
        if method == "tasks/get" and self._poll is not None:
            params = message.get("params")
            task_id = params.get("taskId") if isinstance(params, Mapping) else None
            if isinstance(task_id, str) and len(task_id) <= 256:
                wait = limiter.take(f"polls:{owner_id}:{task_id}", self._poll)
                if wait:
                    raise RateLimited("polls", wait)

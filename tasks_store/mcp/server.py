"""
:class:`McpServer`: the protocol core.  One :class:`HttpRequest` in, one :class:`HttpResponse` out.

No WSGI here (the adapter is :mod:`tasks_store.mcp.wsgi`).  :meth:`McpServer.handle`
runs the checks every request gets, parses the body, picks the protocol
generation and hands the message to it:

1. ``Origin``, then ``Host``: present and not allowed -> 403 (DNS-rebinding
   protection; the defaults allow only loopback origins and hosts).
2. HTTP method: ``POST`` goes on; ``DELETE`` ends a 2025-11-25 session;
   ``GET`` (no server-initiated stream) and anything else -> 405.
3. ``Content-Type`` not ``application/json`` -> 415; an ``Accept`` that
   rules out JSON -> 406.
4. The body must be strict UTF-8 JSON (:func:`~tasks_store.mcp.jsonrpc.parse_message`)
   -> otherwise 400 with -32700 (or -32600 / -32602 as that function says).
5. The generation (:func:`protocol_generation`): 2026-07-28 when the
   ``MCP-Protocol-Version`` header is not a 2025-or-older version, or when
   ``params._meta["io.modelcontextprotocol/protocolVersion"]`` is present;
   otherwise the 2025-11-25 session protocol (:mod:`tasks_store.mcp.v2025`).

The 2026-07-28 generation lives in ``tasks_store.mcp.v2026`` as
``handle(server: McpServer, request: HttpRequest, message: Any) -> HttpResponse``,
imported on first use.  Until that module exists, such requests answer
HTTP 404 with -32601.

Owners (:meth:`McpServer.owner_for`): an authenticated principal ``p`` is
``"user:<p>"``; a session is ``"session:<sha256 hex of its id>"``; neither is
the anonymous owner ``"local"``, which the store refuses unless its
``allow_anonymous`` is on.  No session can ever equal a user, and no owner
id (so no store log line) contains a session id.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import importlib.metadata
import json
import logging
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from ..errors import INTERNAL_MESSAGE, InvalidRequest, MethodNotFound, TaskError
from ..security import DEFAULT_LOCAL_OWNER
from ..store import TaskStore
from ..store._base import require_store
from ..store.janitor import Janitor
from ..store.ratelimit import RateLimited
from ..store.sessions import SessionStore, check_session_store, sessions_for
from .http import JSON_MEDIA_TYPE, HttpRequest, HttpResponse, accepts_media
from .jsonrpc import BodyRejected, TasksRpc, error_response, parse_message
from .limits import BlockingGate, RateGuard, ServerLimits
from .prompts import Prompt, PromptRegistry
from .runner import TaskRunner
from .streams import StreamRegistry
from .tools import Tool, ToolRegistry

if TYPE_CHECKING:
    from .wsgi import TasksApp

__all__ = [
    "GENERATION_2025",
    "GENERATION_2026",
    "LATEST_2025_VERSION",
    "PROTOCOL_VERSION_META_KEY",
    "SUPPORTED_2025_VERSIONS",
    "McpServer",
    "error_reply",
    "protocol_generation",
]

logger = logging.getLogger("tasks_store")

#: The session protocol this module serves, and the stateless one it hands on.
GENERATION_2025: Final = "2025-11-25"
GENERATION_2026: Final = "2026-07-28"

#: The newest 2025 revision; ``initialize`` offers it to unknown versions.
LATEST_2025_VERSION: Final = "2025-11-25"
#: Every dated revision ``initialize`` accepts, newest first.  Only
#: 2025-11-25 has tasks.
SUPPORTED_2025_VERSIONS: tuple[str, ...] = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")

#: Where a 2026-07-28 request carries its protocol version.
PROTOCOL_VERSION_META_KEY: Final = "io.modelcontextprotocol/protocolVersion"

_DATED_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}")
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def _package_version() -> str:
    try:
        return importlib.metadata.version("tasks_store")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "unknown"


#: ``serverInfo`` when none is given: this package's name and installed version.
_DEFAULT_SERVER_INFO: Mapping[str, Any] = MappingProxyType(
    {"name": "tasks_store", "version": _package_version()}
)


def is_2025_or_older(version: str) -> bool:
    """
    Return whether a ``MCP-Protocol-Version`` value names a 2025 or older revision.

    >>> is_2025_or_older("2025-06-18"), is_2025_or_older("2026-07-28"), is_2025_or_older("x")
    (True, False, False)
    """
    version = version.strip()
    return _DATED_VERSION.fullmatch(version) is not None and version[:4] <= "2025"


def protocol_generation(request: HttpRequest, message: Any) -> str:
    """
    Return which generation serves *message*: :data:`GENERATION_2025` or :data:`GENERATION_2026`.

    2026-07-28 when the ``MCP-Protocol-Version`` header is present and not a
    2025-or-older version, or when ``params._meta`` carries
    ``io.modelcontextprotocol/protocolVersion``; else 2025-11-25.
    """
    header = request.header("mcp-protocol-version")
    if header is not None and not is_2025_or_older(header):
        return GENERATION_2026
    if isinstance(message, Mapping):
        params = message.get("params")
        if isinstance(params, Mapping):
            meta = params.get("_meta")
            if isinstance(meta, Mapping) and PROTOCOL_VERSION_META_KEY in meta:
                return GENERATION_2026
    return GENERATION_2025


def error_reply(
    status: int,
    error: TaskError | Mapping[str, Any],
    request_id: str | int | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> HttpResponse:
    """Return an HTTP reply carrying one JSON-RPC error response (no ``id`` when None)."""
    obj = error.to_jsonrpc_error() if isinstance(error, TaskError) else dict(error)
    return HttpResponse.json(status, error_response(request_id, obj), headers)


def _readable_id(message: Any) -> str | int | None:
    if isinstance(message, Mapping):
        value = message.get("id")
        if type(value) is str or type(value) is int:
            return value
    return None


_V2026_MISSING = object()
_v2026_lock = threading.Lock()
_v2026_handler: Any = None


def _load_v2026() -> Callable[[McpServer, HttpRequest, Any], HttpResponse] | None:
    """Return ``tasks_store.mcp.v2026.handle``, or None while that module does not exist."""
    global _v2026_handler
    handler = _v2026_handler  # read without the lock once resolved
    if handler is not None:
        return None if handler is _V2026_MISSING else handler
    with _v2026_lock:
        if _v2026_handler is None:
            try:
                module = importlib.import_module(".v2026", __package__)
            except ModuleNotFoundError as exc:
                if exc.name != f"{__package__}.v2026":
                    raise
                _v2026_handler = _V2026_MISSING
            else:
                _v2026_handler = module.handle
        handler = _v2026_handler
    if handler is _V2026_MISSING:
        return None
    return handler  # type: ignore[no-any-return]


class McpServer:
    """
    An MCP server over one task store: both protocol generations, one endpoint.

    Args:
        store: where tasks live (also where sessions live, unless *sessions*
            says otherwise).
        tools: a :class:`ToolRegistry`, or :class:`Tool` records to put in a
            new one; None for no tools.
        server_info: the ``Implementation`` in ``serverInfo`` (``name`` and
            ``version`` required).
        instructions: ``instructions`` in the ``initialize`` result, or None.
        result_timeout: seconds ``tasks/result`` blocks; None for no limit.
        runner: runs task-augmented tool calls; by default the server makes
            one with *max_workers* threads and :meth:`close` shuts it down.
        sessions: where 2025-11-25 sessions live; by default
            ``sessions_for(store)`` (the store's own backend, so sessions
            are valid on every worker sharing it).
        allowed_origins: ``Origin`` values accepted besides loopback ones
            (``"https://app.example"``); ``["*"]`` accepts any.  A request
            without ``Origin`` (not from a browser) is always accepted.
        allowed_hosts: ``Host`` values accepted besides loopback ones
            (``"mcp.example.com"``, or with a port); ``["*"]`` accepts any
            (behind a proxy that checks it).  A request without ``Host`` is
            accepted.
        tools_page_size: tools per ``tools/list`` page.
        max_workers: threads of the runner the server makes.
        prompts: a :class:`~tasks_store.mcp.prompts.PromptRegistry`, or
            :class:`~tasks_store.mcp.prompts.Prompt` records (2026-07-28
            ``prompts/*``); None for none.
        limits: blocking-call bounds and rate limits
            (:class:`~tasks_store.mcp.limits.ServerLimits`; by default at most
            4 blocking calls at once, 2 per owner, and no rate limit).
        janitor_interval: seconds between two sweeps of a background
            :class:`~tasks_store.store.janitor.Janitor` (``cleanup_expired``
            and lease recovery), stopped by :meth:`close`; None for none.

    Raises:
        TypeError: *store*, *tools*, *runner* or *sessions* of the wrong type.
        ValueError: a bad *server_info*, *result_timeout*, *tools_page_size*
            or *max_workers*, or a *runner* on another store.

    Thread-safe: one instance serves every request thread.  Use it as a
    context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        store: TaskStore,
        tools: ToolRegistry | Iterable[Tool] | None = None,
        *,
        server_info: Mapping[str, Any] | None = None,
        instructions: str | None = None,
        result_timeout: float | None = 60.0,
        runner: TaskRunner | None = None,
        sessions: SessionStore | None = None,
        allowed_origins: Iterable[str] = (),
        allowed_hosts: Iterable[str] = (),
        tools_page_size: int = 100,
        max_workers: int = 8,
        prompts: PromptRegistry | Iterable[Prompt] | None = None,
        limits: ServerLimits | None = None,
        janitor_interval: float | None = None,
    ) -> None:
        self._store = require_store(store)
        if tools is None:
            registry = ToolRegistry()
        elif isinstance(tools, ToolRegistry):
            registry = tools
        elif isinstance(tools, (str, bytes, Mapping)) or not isinstance(tools, Iterable):
            msg = f"tools must be a ToolRegistry or an iterable of Tool, got {type(tools).__name__}"
            raise TypeError(msg)
        else:
            registry = ToolRegistry(tools)
        self._tools = registry
        self._server_info = _check_server_info(server_info)
        if instructions is not None and not isinstance(instructions, str):
            msg = f"instructions must be a str or None, got {type(instructions).__name__}"
            raise TypeError(msg)
        self._instructions = instructions
        if limits is not None and not isinstance(limits, ServerLimits):
            msg = f"limits must be a ServerLimits, got {type(limits).__name__}"
            raise TypeError(msg)
        self._limits = ServerLimits() if limits is None else limits
        self._gate = BlockingGate(
            total=self._limits.max_blocking, per_owner=self._limits.max_blocking_per_owner
        )
        self._rate_guard = RateGuard(self._store, self._limits.rate_limits)
        self._rpc = TasksRpc(
            self._store, result_timeout=result_timeout, gate=self._gate,
            disconnect_check_s=self._limits.disconnect_check_s,
        )  # fmt: skip
        if isinstance(tools_page_size, bool) or not isinstance(tools_page_size, int) or (
            tools_page_size < 1
        ):
            msg = f"tools_page_size must be a positive int, got {tools_page_size!r}"
            raise ValueError(msg)
        self._tools_page_size = tools_page_size
        self._owned_runner: TaskRunner | None = None
        if runner is None:
            runner = self._owned_runner = TaskRunner(self._store, max_workers=max_workers)
        elif not isinstance(runner, TaskRunner):
            msg = f"runner must be a TaskRunner, got {type(runner).__name__}"
            raise TypeError(msg)
        elif runner.store is not self._store:
            msg = "runner works on another store than the server's"
            raise ValueError(msg)
        self._runner = runner
        self._sessions = (
            sessions_for(self._store) if sessions is None else check_session_store(sessions)
        )
        origins = [allowed_origins] if isinstance(allowed_origins, str) else list(allowed_origins)
        for origin in origins:
            if not isinstance(origin, str) or not origin:
                msg = f"allowed_origins must hold non-empty strs, got {origin!r}"
                raise TypeError(msg)
        self._allowed_origins = frozenset(o.rstrip("/").lower() for o in origins)
        hosts = [allowed_hosts] if isinstance(allowed_hosts, str) else list(allowed_hosts)
        for host in hosts:
            if not isinstance(host, str) or not host:
                msg = f"allowed_hosts must hold non-empty strs, got {host!r}"
                raise TypeError(msg)
        self._allowed_hosts = frozenset(h.strip().lower() for h in hosts)
        self._log_key = secrets.token_bytes(32)
        self._prompts = prompts if isinstance(prompts, PromptRegistry) else (
            PromptRegistry(prompts or ())
        )
        self._streams = StreamRegistry()
        self._janitor: Janitor | None = None
        if janitor_interval is not None:
            self.start_janitor(janitor_interval)

    # -- properties -----------------------------------------------------------

    @property
    def store(self) -> TaskStore:
        """The task store."""
        return self._store

    @property
    def prompts(self) -> PromptRegistry:
        """The prompts (2026-07-28 ``prompts/list`` and ``prompts/get``)."""
        return self._prompts

    @property
    def streams(self) -> StreamRegistry:
        """The open streamed replies (SSE), ended together by :meth:`close`."""
        return self._streams

    @property
    def tools(self) -> ToolRegistry:
        """The tools (add more at any time with ``server.tools.add``)."""
        return self._tools

    @property
    def runner(self) -> TaskRunner:
        """Runs task-augmented tool calls."""
        return self._runner

    @property
    def sessions(self) -> SessionStore:
        """Where 2025-11-25 sessions live."""
        return self._sessions

    @property
    def rpc(self) -> TasksRpc:
        """The 2025-11-25 ``tasks/*`` handler on :attr:`store`."""
        return self._rpc

    @property
    def result_timeout(self) -> float | None:
        """Seconds ``tasks/result`` waits; None for no limit."""
        return self._rpc.result_timeout

    @property
    def server_info(self) -> dict[str, Any]:
        """A copy of the ``serverInfo`` object."""
        return json.loads(json.dumps(dict(self._server_info)))  # type: ignore[no-any-return]

    @property
    def instructions(self) -> str | None:
        """The ``instructions`` of the ``initialize`` result."""
        return self._instructions

    @property
    def tools_page_size(self) -> int:
        """Tools per ``tools/list`` page."""
        return self._tools_page_size

    @property
    def limits(self) -> ServerLimits:
        """The blocking-call bounds and rate limits in force."""
        return self._limits

    @property
    def gate(self) -> BlockingGate:
        """
        The bound on blocking calls: ``with server.gate.acquire(owner, "stream"):``
        around anything that holds a thread waiting (see :mod:`tasks_store.mcp.limits`).
        """
        return self._gate

    # -- owners and logs ------------------------------------------------------

    def owner_for(self, principal: str | None, session_id: str | None) -> str:
        """
        Return the task owner for a caller.

        ``"user:<principal>"`` when there is a principal (it always wins),
        else ``"session:<sha256 hex of session_id>"``, else the anonymous
        owner ``"local"`` (refused by the store unless ``allow_anonymous``).
        An empty string counts as absent.
        """
        if principal:
            return f"user:{principal}"
        if session_id:
            return f"session:{hashlib.sha256(session_id.encode('utf-8')).hexdigest()}"
        return DEFAULT_LOCAL_OWNER

    def log_id(self, session_id: str) -> str:
        """
        Return a short keyed hash of *session_id*, for logs (never log the id).

        HMAC-SHA-256 with a key drawn when the server is built: stable within
        the process, unlinkable across processes and to the stored hash.
        """
        digest = hmac.new(self._log_key, session_id.encode("utf-8"), hashlib.sha256)
        return digest.hexdigest()[:12]

    # -- serving --------------------------------------------------------------

    def handle(self, request: HttpRequest) -> HttpResponse:
        """
        Answer one HTTP request.

        Never raises: a fault is logged on the ``tasks_store`` logger and
        answered 500 with -32603 ``"Internal error"``.
        """
        try:
            return self._handle(request)
        except Exception:
            logger.exception("internal error in McpServer")
            return error_reply(500, TaskError(INTERNAL_MESSAGE))

    def _handle(self, request: HttpRequest) -> HttpResponse:
        origin = request.header("origin")
        if origin is not None and not self.origin_allowed(origin):
            return error_reply(403, InvalidRequest(f"Origin not allowed: {_clip(origin)}"))
        host = request.header("host")
        if host is not None and not self.host_allowed(host):
            return error_reply(403, InvalidRequest(f"Host not allowed: {_clip(host)}"))
        method = request.method.upper()
        if method == "DELETE":
            header = request.header("mcp-protocol-version")
            if header is None or is_2025_or_older(header):
                from . import v2025

                return v2025.end_session(self, request)
        if method != "POST":
            allow = "POST, DELETE"
            return error_reply(
                405,
                InvalidRequest(f"Method {_clip(method)} is not allowed here; use POST"),
                headers=(("Allow", allow),),
            )
        media_type = (request.header("content-type") or "").split(";")[0].strip().lower()
        if media_type != JSON_MEDIA_TYPE:
            return error_reply(415, InvalidRequest(f"Content-Type must be {JSON_MEDIA_TYPE}"))
        accept = request.header("accept")
        if accept is not None and not accepts_media(accept, JSON_MEDIA_TYPE):
            return error_reply(
                406, InvalidRequest(f"Accept must allow {JSON_MEDIA_TYPE}: got {_clip(accept)}")
            )
        try:
            message = parse_message(request.body)  # strict JSON: see jsonrpc.parse_message
        except BodyRejected as exc:
            return error_reply(exc.status, exc.error, exc.request_id)
        generation = protocol_generation(request, message)
        if self._limits.rate_limits.enabled:
            refused = self._charge(request, message, generation)
            if refused is not None:
                return refused
        if generation == GENERATION_2026:
            handler = _load_v2026()
            if handler is None:
                error = MethodNotFound("Protocol 2026-07-28 is not served yet")
                return error_reply(404, error, _readable_id(message))
            return handler(self, request, message)
        from . import v2025

        return v2025.handle(self, request, message)

    def _charge(self, request: HttpRequest, message: Any, generation: str) -> HttpResponse | None:
        """Charge a task operation to its owner's rate limits; the 429 reply if over one."""
        session = request.header("mcp-session-id") if generation == GENERATION_2025 else None
        owner = self.owner_for(request.principal, session.strip() if session else None)
        try:
            self._rate_guard.charge(request, message, generation, owner, self._tools)
        except RateLimited as exc:
            retry = (("Retry-After", exc.retry_after_header),)
            return error_reply(429, exc, _readable_id(message), retry)
        return None

    def origin_allowed(self, origin: str) -> bool:
        """Return whether an ``Origin`` header value is accepted (loopback or listed)."""
        value = origin.strip().rstrip("/").lower()
        if "*" in self._allowed_origins or value in self._allowed_origins:
            return True
        try:
            host = urlsplit(value).hostname
        except ValueError:
            return False
        return host in _LOOPBACK_HOSTS

    def host_allowed(self, host: str) -> bool:
        """Return whether a ``Host`` header value is accepted (loopback or listed)."""
        value = host.strip().lower()
        if "*" in self._allowed_hosts or value in self._allowed_hosts:
            return True
        try:
            name = urlsplit(f"//{value}").hostname
        except ValueError:
            return False
        return name in _LOOPBACK_HOSTS or (name is not None and name in self._allowed_hosts)

    def wsgi_app(
        self,
        *,
        principal_from_environ: Callable[[Mapping[str, Any]], str | None] | None = None,
        max_body_bytes: int = 1_048_576,
    ) -> TasksApp:
        """
        Return a WSGI application serving this server; see :class:`TasksApp`.

        Args:
            principal_from_environ: ``fn(environ) -> str | None``, the
                authenticated user; by default ``REMOTE_USER``.
            max_body_bytes: largest body accepted (413 above it).
        """
        from .wsgi import TasksApp

        return TasksApp(
            self, principal_from_environ=principal_from_environ, max_body_bytes=max_body_bytes
        )

    def start_janitor(self, interval: float = 30.0) -> Janitor:
        """
        Start (once) a background janitor sweeping every *interval* seconds; :meth:`close` stops it.

        It recovers from the runner's lease table (and the store's, for
        other processes' runners); see :mod:`tasks_store.store.janitor`.
        """
        if self._janitor is None or not self._janitor.running:
            leases = self._runner.leases
            self._janitor = Janitor(self._store, interval=interval, leases=leases).start()
        return self._janitor

    @property
    def janitor(self) -> Janitor | None:
        """The background janitor, if one was started."""
        return self._janitor

    def close(self, *, wait: bool = True, cancel: bool = False) -> None:
        """Stop the janitor; shut down the runner the server made (:meth:`TaskRunner.shutdown`)."""
        if self._janitor is not None:
            self._janitor.stop()
        self._streams.close()
        if self._owned_runner is not None:
            self._owned_runner.shutdown(wait=wait, cancel=cancel)

    def __enter__(self) -> McpServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _check_server_info(info: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if info is None:
        return _DEFAULT_SERVER_INFO
    if not isinstance(info, Mapping):
        msg = f"server_info must be a mapping, got {type(info).__name__}"
        raise TypeError(msg)
    for key in ("name", "version"):
        if not isinstance(info.get(key), str) or not info[key]:
            msg = f"server_info[{key!r}] must be a non-empty str, got {info.get(key)!r}"
            raise ValueError(msg)
    try:
        copy = json.loads(json.dumps(dict(info), allow_nan=False))
    except (TypeError, ValueError) as exc:
        msg = f"server_info must be plain JSON: {exc}"
        raise ValueError(msg) from None
    return MappingProxyType(copy)



def _clip(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else f"{text[: limit - 3]}..."

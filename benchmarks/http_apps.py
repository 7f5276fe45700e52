"""
The WSGI applications the HTTP benchmark serves, and a waitress launcher.

* :data:`mcp_app`: this project's :class:`~tasks_store.mcp.McpServer` (both
  protocol generations on ``/mcp``) with one tool, ``work``, that the peers in
  :mod:`benchmarks.peers` serve too: ``{"ms": int}`` sleeps that many
  milliseconds (stopping early once cancelled) and returns ``done``; its
  ``taskSupport`` is ``optional``.
* :data:`floor_app`: the floor, a bare WSGI app that reads the request body
  and answers a fixed JSON-RPC result, so the protocol's own cost shows.

Both are built lazily, once per process, on the first request: gunicorn and
granian import this module in the master and fork workers from it, and each
worker then makes its own store, Redis client and runner threads.  They are
configured through the environment (set by :mod:`benchmarks.http`):

``TASKS_STORE_BENCH_STORE``  ``memory`` (default) or ``redis``
``TASKS_STORE_BENCH_REDIS``  the Redis URL, with ``redis``
``TASKS_STORE_BENCH_POLL_MS``  the ``pollInterval`` tasks advertise (100)
``TASKS_STORE_BENCH_RUNNER``  runner threads per process (32); its queue is
                             bounded at 10⁶ tasks (the peers bound none)

``python -m benchmarks.http_apps --app mcp|floor --port N --threads N`` serves
one of them with waitress.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["FLOOR_BODY", "WORK_TOOL", "floor_app", "main", "mcp_app"]

#: What the floor answers to every request.
FLOOR_BODY = b'{"jsonrpc":"2.0","id":1,"result":{"status":"completed"}}'

#: The benchmark tool's definition, as every server lists it.
WORK_TOOL: dict[str, Any] = {
    "name": "work",
    "description": "Sleep `ms` milliseconds (stopping early when cancelled), then return 'done'.",
    "inputSchema": {
        "type": "object",
        "properties": {"ms": {"type": "integer", "minimum": 0, "maximum": 600000}},
        "required": ["ms"],
        "additionalProperties": False,
    },
}

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def floor_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The floor: read the body, answer :data:`FLOOR_BODY`."""
    length = environ.get("CONTENT_LENGTH")
    if length:
        environ["wsgi.input"].read(int(length))
    start_response(
        "200 OK",
        [("Content-Type", "application/json"), ("Content-Length", str(len(FLOOR_BODY)))],
    )
    return [FLOOR_BODY]


def _work(arguments: dict[str, Any], ctx: Any) -> dict[str, Any]:
    deadline = time.monotonic() + arguments["ms"] / 1000
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or ctx.is_cancelled():
            break
        time.sleep(min(left, 0.05))
    return {"content": [{"type": "text", "text": "done"}]}


def build_mcp_app() -> WsgiApp:
    """Build this process's McpServer WSGI app from the environment."""
    from tasks_store import InMemoryTaskStore, TaskSecurityConfig
    from tasks_store.mcp import McpServer, ToolRegistry

    kind = os.environ.get("TASKS_STORE_BENCH_STORE", "memory")
    poll_ms = int(os.environ.get("TASKS_STORE_BENCH_POLL_MS", "100"))
    runner_threads = int(os.environ.get("TASKS_STORE_BENCH_RUNNER", "32"))
    # quota high enough never to refuse a benchmark's create (it is still checked)
    # the 2026-07-28 clients are anonymous (no session, no auth): their task
    # ids are the capability, as the Tasks extension allows
    security = TaskSecurityConfig(max_tasks_per_owner=10**9, allow_anonymous=True)
    store: Any
    if kind == "redis":
        import redis

        from tasks_store.store.redis import RedisTaskStore

        client = redis.Redis.from_url(
            os.environ["TASKS_STORE_BENCH_REDIS"], max_connections=256, socket_timeout=30
        )
        store = RedisTaskStore(client, poll_interval_ms=poll_ms, security=security)
    else:
        store = InMemoryTaskStore(poll_interval_ms=poll_ms, security=security)
    tools = ToolRegistry()
    tools.tool(
        name=WORK_TOOL["name"],
        description=WORK_TOOL["description"],
        input_schema=WORK_TOOL["inputSchema"],
        task_support="optional",
    )(_work)
    from tasks_store.mcp import TaskRunner

    try:  # queue bounds as high as the peers' (they have none)
        runner = TaskRunner(
            store, max_workers=runner_threads, max_queued=10**6, max_queued_per_owner=10**6
        )
    except TypeError:  # a runner without queue bounds
        runner = TaskRunner(store, max_workers=runner_threads)
    server = McpServer(
        store,
        tools,
        server_info={"name": "tasks_store-bench", "version": "1.0.0"},
        result_timeout=120.0,
        runner=runner,
    )
    return server.wsgi_app()  # type: ignore[return-value]


class _Lazy:
    """A WSGI app built on its first request, once per process."""

    def __init__(self, build: Callable[[], WsgiApp]) -> None:
        self._build = build
        self._app: WsgiApp | None = None
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        app = self._app
        if app is None:
            with self._lock:
                if self._app is None:
                    self._app = self._build()
                app = self._app
        return app(environ, start_response)


#: This project's server, built on first use in each worker process.
mcp_app = _Lazy(build_mcp_app)


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Serve ``mcp`` or ``floor`` with waitress on 127.0.0.1 until SIGTERM."""
    import waitress

    parser = argparse.ArgumentParser(description="serve a benchmark app with waitress")
    parser.add_argument("--app", choices=("mcp", "floor"), default="mcp")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    app: Any = mcp_app if args.app == "mcp" else floor_app
    if args.app == "mcp":
        app._app = build_mcp_app()  # built before the first request is timed
    server = waitress.create_server(
        app,
        host="127.0.0.1",
        port=args.port,
        threads=args.threads,
        connection_limit=1000,
        backlog=2048,
        ident="waitress",
    )
    signal.signal(signal.SIGTERM, _stop)
    print(f"listening on 127.0.0.1:{server.effective_port}", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


if __name__ == "__main__":
    main()

"""
A demo MCP server with tasks: three tools, served by waitress (multi-threaded).

Start it (needs the ``examples`` extra: waitress and jsonschema)::

    python examples/wsgi_server.py --host 127.0.0.1 --port 8765 \\
        [--store memory|redis] [--redis-url URL] [--threads N] [--token NAME=SECRET ...]
        [--allowed-host HOST ...]

It serves ``http://HOST:PORT/mcp`` (2025-11-25: ``initialize`` first, then the
``Mcp-Session-Id`` it returns on every request; see docs/serving.md).

Tools:

* ``slow_count`` (``{"steps": int, "delay"?: number}``, ``taskSupport:
  optional``) counts to ``steps``, sleeping ``delay`` seconds (1.0) per step,
  writes ``step``, ``steps`` and ``progress`` into the task's variables after
  each step (``tasks/get`` shows them in ``_meta``), stops at the next step
  when the task is cancelled, and returns ``Counted to N.``
* ``echo`` (``{"text": str}``, ``taskSupport: forbidden``) returns the text.
* ``greet_user`` (``{"greeting"?: str}``, ``taskSupport: optional``) asks the
  user their name (an elicitation), then greets them by it.  As a task it
  waits in ``input_required`` until the answer comes: on 2025-11-25 through
  ``tasks/result``, which streams the ``elicitation/create`` request (SSE)
  and takes the client's response as a POST; on 2026-07-28 through
  ``tasks/get`` (``inputRequests``) and ``tasks/update``.  Called inline on
  2026-07-28 it is a multi round-trip request.  The answer may reach any
  worker sharing the store.

Owners.  Without tokens, each session owns its tasks.  With tokens
(``--token alice=s3cret``, repeatable, or ``TASKS_STORE_DEMO_TOKENS="alice=s3cret,bob=pa55"``)
every request must carry ``Authorization: Bearer <secret>`` (401 otherwise),
and the token's name is the authenticated user: the owner of their tasks in
every session and on every worker.  :class:`BearerAuth` is the whole recipe:
a WSGI middleware that sets ``REMOTE_USER``, which :class:`TasksApp` reads.

Only loopback ``Host`` and ``Origin`` values are accepted (DNS-rebinding
protection); ``--allowed-host mcp.example.com`` accepts another Host (bind
with ``--host 0.0.0.0`` to serve other machines).

``--store redis`` keeps tasks and sessions on Redis, so several processes
(started with the same ``--redis-url``) serve the same sessions and tasks.
Stop it with Ctrl-C or SIGTERM; tasks still running are then cancelled.

Operating limits (docs/serving.md, "Operating it"): waitress's own body limit
matches the app's ``max_body_bytes`` (waitress refuses a body of
``max_request_body_size`` bytes or more, hence the ``+ 1``), so a huge body is
refused before waitress reads it; ``channel_request_lookahead=1`` lets
waitress see a client hang up while its ``tasks/result`` waits; a janitor
sweeps expired tasks and fails tasks whose worker died every 30 s.  Under
gunicorn (no body limit of its own: the app refuses by ``Content-Length``
unread) bound the request line and headers instead::

    gunicorn -k gthread --threads 16 --limit-request-line 8190 \
        --limit-request-fields 100 --limit-request-field_size 8190 app:application
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import signal
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import waitress

from tasks_store import InMemoryTaskStore, TaskSecurityConfig, TaskStore, WaitTimeout
from tasks_store.mcp import McpServer, ToolRegistry
from tasks_store.mcp.tools import ToolContext

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

TOKENS_ENV = "TASKS_STORE_DEMO_TOKENS"

tools = ToolRegistry()


@tools.tool(
    description=(
        "Count to `steps`, one step every `delay` seconds (1.0), reporting progress "
        "in the task's variables. Run it as a task to poll it."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "steps": {"type": "integer", "minimum": 1, "maximum": 100},
            "delay": {"type": "number", "minimum": 0, "maximum": 10},
        },
        "required": ["steps"],
        "additionalProperties": False,
    },
    task_support="optional",
)
def slow_count(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    steps: int = arguments["steps"]
    delay: float = arguments.get("delay", 1.0)
    for step in range(1, steps + 1):
        if ctx.is_cancelled():
            return {"content": [{"type": "text", "text": f"Stopped at {step - 1}."}]}
        time.sleep(delay)
        ctx.set_variables({"step": step, "steps": steps, "progress": step / steps})
    return {"content": [{"type": "text", "text": f"Counted to {steps}."}]}


@tools.tool(
    description="Return the text it is given.",
    input_schema={
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
        "additionalProperties": False,
    },
)
def echo(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": arguments["text"]}]}


#: How long greet_user waits for the user's answer, in seconds.
ANSWER_TIMEOUT = 300.0


@tools.tool(
    description=(
        "Ask the user their name, then greet them by it. Run it as a task: it waits "
        "(input_required) until the user answers."
    ),
    input_schema={
        "type": "object",
        "properties": {"greeting": {"type": "string", "maxLength": 40}},
        "additionalProperties": False,
    },
    task_support="optional",
)
def greet_user(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    greeting = arguments.get("greeting", "Hello")
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "title": "Your name"}},
        "required": ["name"],
    }
    try:
        answer = ctx.elicit("What is your name?", schema, timeout=ANSWER_TIMEOUT)
    except WaitTimeout:
        return {"content": [{"type": "text", "text": "Nobody answered; no greeting."}]}
    content = answer.get("content")
    if answer.get("action") != "accept" or not isinstance(content, dict):
        return {"content": [{"type": "text", "text": "No name given; no greeting."}]}
    name = str(content.get("name", "")).strip() or "stranger"
    ctx.report_progress(f"Greeting {name}")
    return {"content": [{"type": "text", "text": f"{greeting}, {name}!"}]}


class BearerAuth:
    """
    WSGI middleware: ``Authorization: Bearer <secret>`` -> ``REMOTE_USER=<name>``.

    Args:
        app: the application to protect.
        tokens: secret -> user name.

    A request without a known token gets 401 with ``WWW-Authenticate:
    Bearer`` and never reaches *app*.  Secrets are compared in constant
    time, and never logged.  In production, check an OAuth access token
    here instead (its subject is the user), as the MCP authorization spec
    describes.
    """

    def __init__(self, app: WSGIApplication, tokens: Mapping[str, str]) -> None:
        self._app = app
        self._tokens = dict(tokens)

    def user_for(self, authorization: str | None) -> str | None:
        """Return the user a ``Authorization`` header value authenticates, or None."""
        if authorization is None:
            return None
        scheme, _, secret = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return None
        given = secret.strip().encode("utf-8")
        found = None
        for known, user in self._tokens.items():
            if hmac.compare_digest(known.encode("utf-8"), given):
                found = user
        return found

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        user = self.user_for(environ.get("HTTP_AUTHORIZATION"))
        if user is None:
            error = {"code": -32600, "message": "Unauthorized: send Authorization: Bearer <token>"}
            body = json.dumps({"jsonrpc": "2.0", "error": error}).encode()
            start_response(
                "401 Unauthorized",
                [
                    ("Content-Type", "application/json"),
                    ("WWW-Authenticate", 'Bearer realm="mcp"'),
                    ("Content-Length", str(len(body))),
                ],
            )
            return [body]
        environ["REMOTE_USER"] = user
        return self._app(environ, start_response)


def parse_tokens(specs: Iterable[str]) -> dict[str, str]:
    """
    Return secret -> name from ``NAME=SECRET`` items.

    Raises:
        ValueError: an item without ``=``, an empty name or secret, or a
            secret given twice.
    """
    tokens: dict[str, str] = {}
    for spec in specs:
        name, sep, secret = spec.partition("=")
        if not sep or not name.strip() or not secret.strip():
            msg = f"a token is NAME=SECRET, got {spec!r}"
            raise ValueError(msg)
        if secret.strip() in tokens:
            msg = f"the secret of {name.strip()!r} is given twice"
            raise ValueError(msg)
        tokens[secret.strip()] = name.strip()
    return tokens


def make_store(kind: str, redis_url: str | None, *, security: TaskSecurityConfig) -> TaskStore:
    """Return the task store the command line asks for."""
    if kind == "memory":
        return InMemoryTaskStore(poll_interval_ms=1000, security=security)
    import redis

    from tasks_store.store.redis import RedisTaskStore

    client = redis.Redis.from_url(
        redis_url or "redis://127.0.0.1:6379/0", socket_timeout=5, socket_connect_timeout=2
    )
    return RedisTaskStore(client, poll_interval_ms=1000, security=security)


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (8765; 0 picks one)")
    parser.add_argument("--threads", type=int, default=16, help="waitress worker threads (16)")
    parser.add_argument("--store", choices=("memory", "redis"), default="memory")
    parser.add_argument("--redis-url", help="with --store redis (redis://127.0.0.1:6379/0)")
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="HOST",
        help="accept this Host header besides loopback ones (repeatable; '*' for any)",
    )
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="NAME=SECRET",
        help=f"accept this bearer token for user NAME (repeatable; also ${TOKENS_ENV})",
    )
    args = parser.parse_args(argv)
    if args.redis_url and args.store != "redis":
        parser.error("--redis-url needs --store redis")
    specs = list(args.token)
    env_tokens = os.environ.get(TOKENS_ENV, "")
    specs += [item for item in env_tokens.split(",") if item.strip()]
    try:
        tokens = parse_tokens(specs)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    store = make_store(args.store, args.redis_url, security=TaskSecurityConfig())
    mcp = McpServer(
        store,
        tools,
        server_info={"name": "tasks_store-demo", "version": "1.0.0"},
        result_timeout=60.0,
        allowed_hosts=args.allowed_host,
        janitor_interval=30.0,  # cleanup_expired and lost-worker recovery, stopped by close()
    )
    app = mcp.wsgi_app()
    served: WSGIApplication = BearerAuth(app, tokens) if tokens else app
    server = waitress.create_server(
        served,
        host=args.host,
        port=args.port,
        threads=args.threads,
        max_request_body_size=app.max_body_bytes + 1,  # waitress refuses >= this, unread
        channel_request_lookahead=1,  # a blocked tasks/result or a stream sees its client leave
    )

    def interrupt(signum: int, frame: object) -> None:
        # End the open streams and blocked calls first: waitress's run()
        # catches the KeyboardInterrupt and waits (up to 5 s) for its threads
        # before the finally below would get to close the app.
        app.close(cancel=True)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)  # stop on SIGTERM as on Ctrl-C
    signal.signal(signal.SIGINT, interrupt)
    auth = f", bearer tokens for {len(tokens)} user(s)" if tokens else ""
    print(
        f"MCP tasks demo listening on http://{args.host}:{server.effective_port}/mcp "
        f"(store: {args.store}{auth})",
        flush=True,
    )
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        app.close(cancel=True)  # running tools see ctx.is_cancelled() and stop


if __name__ == "__main__":
    main()

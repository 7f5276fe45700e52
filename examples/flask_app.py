"""
Recipe: the MCP endpoint inside a Flask app, under a URL prefix, owned by the logged-in user.

The MCP app is a plain WSGI app (:class:`~tasks_store.mcp.wsgi.TasksApp`), so
a Flask view hands it the request's WSGI environ, with ``REMOTE_USER`` set to
the Flask-Login user's id.  ``REMOTE_USER`` is the WSGI convention for "the
server authenticated this user", and it is what ``TasksApp`` takes as the
principal by default; the owner of that user's tasks is ``user:<id>``, in
every MCP session.  A ``REMOTE_USER`` already in the environ is overwritten,
so only Flask-Login decides.

Use ``g.user`` instead of Flask-Login the same way: put its id in
``REMOTE_USER``.

Run the demo (a login form at ``/login``, the endpoint at ``/api/mcp``)::

    python examples/flask_app.py --port 8770     # users: alice/wonderland, bob/builder

Requests to ``/api/mcp`` without a login get 401.  MCP clients send the
Flask session cookie along with the ``Mcp-Session-Id`` header.
"""

from __future__ import annotations

import argparse
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user

from tasks_store import InMemoryTaskStore
from tasks_store.mcp import McpServer, TasksApp, Tool
from tasks_store.mcp.tools import ToolContext


class User(UserMixin):
    """A user of the demo: Flask-Login needs an ``id``."""

    def __init__(self, user_id: str) -> None:
        self.id = user_id


def whoami(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """Say which owner the call runs for."""
    return {"content": [{"type": "text", "text": f"owner {ctx.owner_id}"}]}


def mcp_blueprint(mcp_app: TasksApp, *, url_prefix: str = "/api/mcp") -> Blueprint:
    """
    Return a blueprint serving *mcp_app* at *url_prefix* for logged-in users.

    POST (messages), DELETE (end a session) and GET (405) all go to the MCP
    app; Flask-Login's ``login_required`` answers 401 before it for anyone
    not logged in.
    """
    blueprint = Blueprint("mcp", __name__, url_prefix=url_prefix)

    @blueprint.route("", methods=["POST", "GET", "DELETE"])
    @login_required
    def endpoint() -> Response:
        environ = dict(request.environ)
        environ["REMOTE_USER"] = str(current_user.get_id())  # overrides any given
        return Response.from_app(mcp_app, environ)

    return blueprint


def create_app(
    mcp_app: TasksApp,
    users: Mapping[str, str],
    *,
    url_prefix: str = "/api/mcp",
    secret_key: str | None = None,
) -> Flask:
    """
    Return a Flask app with a login form and the MCP endpoint.

    Args:
        mcp_app: the MCP WSGI app (``McpServer(...).wsgi_app()``).
        users: user name -> password (a demo; use your real user store).
        url_prefix: where the MCP endpoint lives.
        secret_key: Flask's session key; a random one by default.
    """
    app = Flask(__name__)
    app.secret_key = secret_key or secrets.token_hex(32)
    # Flask's own body limit, the MCP app's: a bigger body is refused (413) before it is read.
    app.config["MAX_CONTENT_LENGTH"] = mcp_app.max_body_bytes
    login = LoginManager(app)

    @login.user_loader
    def load_user(user_id: str) -> User | None:
        return User(user_id) if user_id in users else None

    @login.unauthorized_handler
    def unauthorized() -> tuple[Response, int]:
        error = {"code": -32600, "message": "Unauthorized: log in first"}
        return jsonify({"jsonrpc": "2.0", "error": error}), 401

    @app.post("/login")
    def do_login() -> tuple[Response, int]:
        name = request.form.get("username", "")
        password = request.form.get("password", "")
        expected = users.get(name)
        if expected is None or not secrets.compare_digest(expected, password):
            return jsonify({"error": "bad credentials"}), 403
        login_user(User(name))
        return jsonify({"user": name}), 200

    app.register_blueprint(mcp_blueprint(mcp_app, url_prefix=url_prefix))
    return app


def demo_tools() -> Iterable[Tool]:
    return [Tool(name="whoami", fn=whoami, description="Say who the owner is.")]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8770)
    args = parser.parse_args(argv)
    server = McpServer(InMemoryTaskStore(), demo_tools())
    app = create_app(server.wsgi_app(), {"alice": "wonderland", "bob": "builder"})
    try:
        app.run(host="127.0.0.1", port=args.port, threaded=True)
    finally:
        server.close(cancel=True)


if __name__ == "__main__":
    main()

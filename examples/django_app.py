"""
Recipe: the MCP endpoint inside a Django project, under a URL prefix, owned by ``request.user``.

Django already parses the request, so the view skips WSGI altogether and
talks to the protocol core: it builds a
:class:`~tasks_store.mcp.http.HttpRequest` from the Django request (method,
headers, body) with the logged-in user's name as the principal, calls
:meth:`McpServer.handle`, and copies the :class:`HttpResponse` into a Django
``HttpResponse``.  The owner of the user's tasks is ``user:<username>`` in
every MCP session; anyone not logged in gets 401.

In your project: build one :class:`McpServer` at start-up (``apps.py`` or
a module imported by ``urls.py``), and route to :func:`mcp_view`::

    urlpatterns = [path("api/mcp", mcp_view(server))]

Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (2.5 MB by default) bounds the body
before the view sees it.  The view is CSRF-exempt: MCP clients are not
browsers posting forms, and the session cookie alone does not authorize them
to anything the ``Mcp-Session-Id`` they hold does not.  If browsers may call
it, keep the server's Origin check (loopback-only by default; widen it with
``McpServer(allowed_origins=...)``).

This file configures demo settings only when nothing configured Django before
(SQLite in memory; tests/test_frameworks.py drives it with Django's test
client); in a project, keep just :func:`mcp_view` and the URL pattern.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import django
from django.conf import settings

if not settings.configured:  # the demo's settings; a real project has its own
    settings.configure(
        DEBUG=False,
        SECRET_KEY="demo-only-not-a-secret",
        ALLOWED_HOSTS=["127.0.0.1", "localhost", "testserver"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        # Django's body limit, as TasksApp's max_body_bytes (1 MiB): request.body refuses more.
        DATA_UPLOAD_MAX_MEMORY_SIZE=1_048_576,
    )
    django.setup()

from django.http import HttpRequest as DjangoRequest
from django.http import HttpResponse as DjangoResponse
from django.http import JsonResponse
from django.urls import URLPattern, path
from django.views.decorators.csrf import csrf_exempt

from tasks_store import InMemoryTaskStore
from tasks_store.mcp import HttpRequest, McpServer, Tool
from tasks_store.mcp.tools import ToolContext


def whoami(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """Say which owner the call runs for."""
    return {"content": [{"type": "text", "text": f"owner {ctx.owner_id}"}]}


def mcp_view(server: McpServer) -> Callable[[DjangoRequest], DjangoResponse]:
    """Return a Django view answering MCP requests through *server* for logged-in users."""

    @csrf_exempt
    def view(request: DjangoRequest) -> DjangoResponse:
        if not request.user.is_authenticated:
            error = {"code": -32600, "message": "Unauthorized: log in first"}
            return JsonResponse({"jsonrpc": "2.0", "error": error}, status=401)
        reply = server.handle(
            HttpRequest(
                method=request.method or "GET",
                path=request.path,
                headers=dict(request.headers),
                body=request.body if request.method == "POST" else b"",
                principal=request.user.get_username(),
            )
        )
        response = DjangoResponse(reply.body, status=reply.status)
        for name, value in reply.headers:
            response[name] = value
        return response

    return view


SERVER = McpServer(
    InMemoryTaskStore(),
    [Tool(name="whoami", fn=whoami, description="Say who the owner is.")],
    allowed_hosts=["*"],  # Django has checked Host against its ALLOWED_HOSTS already
)

urlpatterns: list[URLPattern] = [path("api/mcp", mcp_view(SERVER))]


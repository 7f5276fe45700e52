"""
The framework recipes: examples/flask_app.py and examples/django_app.py, each
driven by its framework's own test client, the MCP endpoint under a URL
prefix, the framework's logged-in user as the owner.
"""

# Asserts read ``expected == actual`` (project convention), which SIM300 calls Yoda.

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tasks_store import InMemoryTaskStore
from tasks_store.mcp import McpServer

from .mcp_schema import check_response

pytestmark = pytest.mark.timeout(60)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "framework-test", "version": "1"},
    },
}


def load(name: str) -> ModuleType:
    """Import examples/<name>.py as a module (examples is not a package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def call(name: str, request_id: int = 2, *, task: bool = False) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name}
    if task:
        params["task"] = {}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


# -- Flask ------------------------------------------------------------------------


@pytest.fixture
def flask_client() -> Iterator[Any]:
    flask_app = load("flask_app")
    server = McpServer(InMemoryTaskStore(), flask_app.demo_tools())
    app = flask_app.create_app(server.wsgi_app(), {"alice": "wonderland", "bob": "builder"})
    app.testing = True
    try:
        yield app.test_client()
    finally:
        server.close()


def flask_post(client: Any, body: Any, session: str | None = None) -> Any:
    headers = {"Mcp-Session-Id": session} if session else {}
    return client.post("/api/mcp", data=json.dumps(body), content_type="application/json",
                       headers=headers)


def flask_login(client: Any, user: str, password: str) -> None:
    response = client.post("/login", data={"username": user, "password": password})
    assert 200 == response.status_code, response.get_data(as_text=True)


def flask_session(client: Any) -> str:
    response = flask_post(client, INIT)
    assert 200 == response.status_code
    check_response(response.get_json(), "InitializeResult")
    session: str = response.headers["Mcp-Session-Id"]
    return session


def test_flask_needs_a_login(flask_client: Any) -> None:
    """Without a Flask-Login user the endpoint answers 401, before MCP sees anything."""
    response = flask_post(flask_client, INIT)
    assert 401 == response.status_code
    assert "Mcp-Session-Id" not in response.headers
    flask_client.post("/login", data={"username": "alice", "password": "wrong"})
    assert 401 == flask_post(flask_client, INIT).status_code


def test_flask_logged_in_user_owns_the_tasks(flask_client: Any) -> None:
    """The user is the owner in every MCP session; another user sees nothing."""
    flask_login(flask_client, "alice", "wonderland")
    first, second = flask_session(flask_client), flask_session(flask_client)
    whoami = flask_post(flask_client, call("whoami"), first).get_json()
    check_response(whoami, "CallToolResult")
    assert "owner user:alice" == whoami["result"]["content"][0]["text"]
    listed = flask_post(
        flask_client, {"jsonrpc": "2.0", "id": 3, "method": "tools/list"}, second
    ).get_json()
    assert ["whoami"] == [t["name"] for t in listed["result"]["tools"]]


def test_flask_users_are_isolated_and_mcp_statuses_pass_through(flask_client: Any) -> None:
    """bob cannot use alice's session id as alice; 404, 405 and DELETE reach the client."""
    flask_login(flask_client, "alice", "wonderland")
    alice_session = flask_session(flask_client)
    flask_login(flask_client, "bob", "builder")
    as_bob = flask_post(flask_client, call("whoami"), alice_session).get_json()
    assert "owner user:bob" == as_bob["result"]["content"][0]["text"]
    assert 404 == flask_post(flask_client, call("whoami"), "made-up").status_code
    assert 405 == flask_client.get("/api/mcp").status_code
    deleted = flask_client.delete("/api/mcp", headers={"Mcp-Session-Id": alice_session})
    assert 204 == deleted.status_code
    assert 404 == flask_post(flask_client, call("whoami"), alice_session).status_code


def test_flask_endpoint_lives_under_its_prefix(flask_client: Any) -> None:
    """Only /api/mcp is the endpoint."""
    flask_login(flask_client, "alice", "wonderland")
    assert 404 == flask_client.post("/mcp", data=json.dumps(INIT),
                                    content_type="application/json").status_code


# -- Django -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def django_app() -> Iterator[ModuleType]:
    module = load("django_app")
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)
    from django.contrib.auth import get_user_model

    users = get_user_model()
    for name in ("alice", "bob"):
        if not users.objects.filter(username=name).exists():
            users.objects.create_user(name, password="pw")
    try:
        yield module
    finally:
        module.SERVER.close()


def django_client(user: str | None) -> Any:
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    if user is not None:
        client.force_login(get_user_model().objects.get(username=user))
    return client


def django_post(client: Any, body: Any, session: str | None = None) -> Any:
    headers = {"Mcp-Session-Id": session} if session else {}
    return client.post("/api/mcp", data=json.dumps(body), content_type="application/json",
                       headers=headers)


def django_session(client: Any) -> str:
    response = django_post(client, INIT)
    assert 200 == response.status_code, response.content
    check_response(json.loads(response.content), "InitializeResult")
    session: str = response.headers["Mcp-Session-Id"]
    return session


def test_django_needs_a_login(django_app: ModuleType) -> None:
    """Anonymous Django users get 401."""
    response = django_post(django_client(None), INIT)
    assert 401 == response.status_code
    assert "Mcp-Session-Id" not in response.headers


def test_django_request_user_owns_the_tasks(django_app: ModuleType) -> None:
    """request.user is the owner across sessions and clients; another user sees nothing."""
    alice = django_client("alice")
    session = django_session(alice)
    created = json.loads(django_post(alice, call("whoami", task=False), session).content)
    check_response(created, "CallToolResult")
    assert "owner user:alice" == created["result"]["content"][0]["text"]
    other_login = django_client("alice")
    other_session = django_session(other_login)
    again = json.loads(django_post(other_login, call("whoami"), other_session).content)
    assert "owner user:alice" == again["result"]["content"][0]["text"]
    bob = django_client("bob")
    as_bob = json.loads(django_post(bob, call("whoami"), session).content)
    assert "owner user:bob" == as_bob["result"]["content"][0]["text"]


def test_django_mcp_statuses_pass_through(django_app: ModuleType) -> None:
    """404 for a made-up session, 405 for GET, 204 for DELETE, 415 for a bad content type."""
    client = django_client("alice")
    session = django_session(client)
    assert 404 == django_post(client, call("whoami"), "made-up").status_code
    assert 405 == client.get("/api/mcp").status_code
    assert 415 == client.post("/api/mcp", data="x", content_type="text/plain",
                              headers={"Mcp-Session-Id": session}).status_code
    assert 204 == client.delete("/api/mcp", headers={"Mcp-Session-Id": session}).status_code
    assert 404 == django_post(client, call("whoami"), session).status_code


def test_django_endpoint_lives_under_its_prefix(django_app: ModuleType) -> None:
    client = django_client("alice")
    assert 404 == client.post("/mcp", data=json.dumps(INIT),
                              content_type="application/json").status_code

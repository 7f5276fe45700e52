"""
Strict JSON (issue 13, item 5): ``parse_message`` and the HTTP app refuse non-interoperable JSON.

NaN and the infinities, numbers outside IEEE double range, duplicate keys and
lone surrogate escapes are answered with the code the issue asks for, never
with a traceback, on both protocol generations through a real waitress
server; ``Content-Length`` must be ASCII digits.
"""

# Asserts read ``expected == actual`` (project convention), which SIM300 calls Yoda.

from __future__ import annotations

import io
import json
import logging
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from http.client import HTTPResponse
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks_store import InMemoryTaskStore, TaskSecurityConfig
from tasks_store.errors import INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR
from tasks_store.mcp import McpServer, TasksRpc, Tool
from tasks_store.mcp.jsonrpc import BodyRejected, parse_message

from .http_harness import WAIT, Reply, Session, Stateless, serve
from .mcp_schema import check_response

pytestmark = pytest.mark.timeout(60)

GET = b'{"jsonrpc":"2.0","id":7,"method":"tasks/get","params":{"taskId":%s}}'


def rejected(body: bytes) -> BodyRejected:
    with pytest.raises(BodyRejected) as info:
        parse_message(body)
    return info.value


# -- parse_message -------------------------------------------------------------------


@pytest.mark.parametrize(
    "literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"1" + b"0" * 309]
)
def test_non_finite_and_out_of_range_numbers_are_parse_errors(literal: bytes) -> None:
    """NaN, the infinities and numbers beyond a double's range: -32700, 400, no id."""
    found = rejected(GET % literal)
    assert PARSE_ERROR == found.error.code
    assert 400 == found.status
    assert found.request_id is None


@pytest.mark.parametrize(
    "literal", [b"1e308", b"-1.7976931348623157e308", b"1e-400", b"9" * 308, b"2e-5"]
)
def test_numbers_inside_the_range_parse(literal: bytes) -> None:
    """The largest doubles, an underflow to 0, a 308-digit integer: accepted as before."""
    parse_message(GET % literal)


def test_a_duplicate_key_in_the_request_object_is_an_invalid_request() -> None:
    """The issue's gateway confusion: two "method" keys are -32600, not the last one winning."""
    body = b'{"jsonrpc":"2.0","id":1,"method":"tasks/cancel","method":"tasks/list"}'
    found = rejected(body)
    assert INVALID_REQUEST == found.error.code
    assert (400, None) == (found.status, found.request_id)
    assert "'method'" in found.error.message


def test_a_duplicate_key_inside_the_message_is_a_parse_error() -> None:
    """A repeated key in params (or deeper) is -32700."""
    for body in (
        b'{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"taskId":"a","taskId":"b"}}',
        b'{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":[{"k":1,"k":2}]}}',
    ):
        assert PARSE_ERROR == rejected(body).error.code


@pytest.mark.parametrize(
    ("body", "code", "status", "request_id"),
    [
        (GET % b'"\\ud800"', INVALID_PARAMS, 200, 7),
        (GET % b'"ok \\udfff ok"', INVALID_PARAMS, 200, 7),
        (b'{"jsonrpc":"2.0","id":3,"method":"x","params":{"\\udc00":1}}', INVALID_PARAMS, 200, 3),
        (b'{"jsonrpc":"2.0","id":"\\ud800","method":"x","params":{"a":"\\ud800"}}',
         INVALID_REQUEST, 400, None),
        (b'{"jsonrpc":"2.0","id":"\\ud800","method":"tasks/get"}', INVALID_REQUEST, 400, None),
        (b'{"jsonrpc":"2.0","id":1,"method":"tasks/\\ud800"}', INVALID_REQUEST, 400, None),
        (b'{"jsonrpc":"2.0","id":1,"method":"x","\\ud800":0}', INVALID_REQUEST, 400, None),
        (b'["\\ud800"]', INVALID_REQUEST, 400, None),
        (b'{"jsonrpc":"2.0","method":"x","params":{"a":"\\ud800"}}', INVALID_PARAMS, 400, None),
    ],
    ids=["taskId", "inside", "params-key", "id-and-params", "id", "method", "key", "array",
         "notification"],
)  # fmt: skip
def test_a_lone_surrogate_is_invalid_params_or_request(
    body: bytes, code: int, status: int, request_id: int | None
) -> None:
    """A lone surrogate in params: -32602 under the id; in the envelope: -32600, no id."""
    found = rejected(body)
    assert (code, status, request_id) == (found.error.code, found.status, found.request_id)
    json.dumps(found.error.to_jsonrpc_error(), ensure_ascii=False).encode("utf-8")


def test_surrogate_pairs_and_escaped_backslashes_are_text() -> None:
    """A proper pair is one character; "\\\\ud800" is a backslash and letters: both accepted."""
    message = parse_message(GET % b'"\\ud83d\\ude00 \\\\ud800"')
    assert "\U0001f600 \\ud800" == message["params"]["taskId"]


def test_handle_json_uses_the_strict_parser() -> None:
    """TasksRpc.handle_json answers the same refusals, under the id where readable."""
    rpc = TasksRpc(InMemoryTaskStore())
    response = rpc.handle_json(GET % b"NaN", "alice")
    assert response is not None
    assert PARSE_ERROR == response["error"]["code"]
    response = rpc.handle_json(GET % b'"\\ud800"', "alice")
    assert response is not None
    assert (7, INVALID_PARAMS) == (response["id"], response["error"]["code"])


# -- Content-Length ------------------------------------------------------------------


@pytest.mark.parametrize("length", ["²", "١٢", "1_0", "+5", "0x10", " 5 5"])
def test_content_length_must_be_ascii_digits(length: str) -> None:
    """A Content-Length that str.isdigit() or int() would accept but is not ASCII digits: 400."""
    with McpServer(InMemoryTaskStore()) as server:
        app = server.wsgi_app()
        environ = {
            "REQUEST_METHOD": "POST",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": length,
            "wsgi.input": io.BytesIO(b"{}"),
        }
        statuses: list[str] = []
        body = b"".join(app(environ, lambda status, headers: statuses.append(status)))
    assert ["400 Bad Request"] == statuses
    assert INVALID_REQUEST == json.loads(body)["error"]["code"]


# -- through the HTTP app, both generations ------------------------------------------


class Collect(logging.Handler):
    """Keeps every record of the tasks_store logger at WARNING and above."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def echo(arguments: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Return the arguments as text (a NaN would show here)."""
    return {"content": [{"type": "text", "text": json.dumps(arguments)}]}


@pytest.fixture(scope="module")
def http() -> Iterator[tuple[Session, Stateless, Collect]]:
    """One waitress server for the module; a 2025 session and a 2026 client on it."""
    store = InMemoryTaskStore(security=TaskSecurityConfig(allow_anonymous=True))
    tools = [Tool(name="echo", fn=echo, task_support="optional")]
    collect = Collect()
    logger = logging.getLogger("tasks_store")
    logger.addHandler(collect)
    with McpServer(store, tools) as server, serve(server.wsgi_app(), threads=4) as served:
        session, stateless = Session(served.port), Stateless(served.port)
        try:
            yield session, stateless, collect
        finally:
            session.close()
            stateless.close()
            logger.removeHandler(collect)


#: A defect and the (code, HTTP status, id answered?) it must get.
DEFECTS = {
    "nan": (PARSE_ERROR, 400, False),
    "infinity": (PARSE_ERROR, 400, False),
    "-infinity": (PARSE_ERROR, 400, False),
    "1e400": (PARSE_ERROR, 400, False),
    "huge-int": (PARSE_ERROR, 400, False),
    "dup-nested": (PARSE_ERROR, 400, False),
    "dup-envelope": (INVALID_REQUEST, 400, False),
    "surrogate-params": (INVALID_PARAMS, 200, True),
    "surrogate-params-key": (INVALID_PARAMS, 200, True),
    "surrogate-id": (INVALID_REQUEST, 400, False),
    "surrogate-method": (INVALID_REQUEST, 400, False),
}

_LITERALS = {"nan": "NaN", "infinity": "Infinity", "-infinity": "-Infinity",
             "1e400": "1e400", "huge-int": "1" + "0" * 400}  # fmt: skip


def inject(base: dict[str, Any], defect: str, where: list[str]) -> bytes:
    """Return *base* as JSON text with *defect* put at the path *where* inside params."""
    marker = "__DEFECT__"
    message = json.loads(json.dumps(base))
    target = message["params"]
    for key in where:
        target = target.setdefault(key, {})
    if defect in _LITERALS:
        target["value"] = marker
        return json.dumps(message).replace(f'"{marker}"', _LITERALS[defect]).encode()
    if defect == "dup-nested":
        target["dup"] = marker
        return json.dumps(message).replace(f'"dup": "{marker}"', '"dup": 1, "dup": 2').encode()
    if defect == "dup-envelope":
        text = json.dumps(message)
        return text.replace('"jsonrpc": "2.0"', '"jsonrpc": "2.0", "id": 99').encode()
    if defect == "surrogate-params":
        target["value"] = marker
        return json.dumps(message).replace(marker, "x\\ud834y").encode()
    if defect == "surrogate-params-key":
        target[marker] = 1
        return json.dumps(message).replace(marker, "\\udfff").encode()
    if defect == "surrogate-id":
        message["id"] = marker
        return json.dumps(message).replace(marker, "\\ud800").encode()
    assert "surrogate-method" == defect
    message["method"] = message["method"] + marker
    return json.dumps(message).replace(marker, "\\udbff").encode()


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    generation=st.sampled_from(["2025-11-25", "2026-07-28"]),
    method=st.sampled_from(["tasks/get", "tasks/cancel", "tools/call"]),
    defect=st.sampled_from(sorted(DEFECTS)),
    where=st.lists(st.sampled_from(["arguments", "a", "b"]), max_size=3),
)
def test_every_defect_through_the_http_app_on_both_generations(
    http: tuple[Session, Stateless, Collect],
    generation: str,
    method: str,
    defect: str,
    where: list[str],
) -> None:
    """Each defect gets its code and status over real HTTP; nothing logs a traceback."""
    session, stateless, collect = http
    params: dict[str, Any] = {"name": "echo"} if method == "tools/call" else {"taskId": "t-1"}
    if generation == "2025-11-25":
        body = inject(json.loads(session.encode(method, params)), defect, where)
        reply: Reply = session.raw(body)
    else:
        encoded = json.loads(stateless.encode(method, params))
        body = inject(encoded, defect, where)
        reply = stateless.raw(body, method, params)
    code, status, with_id = DEFECTS[defect]
    assert (status, code) == (reply.status, reply.error["code"]), reply
    assert with_id == ("id" in reply.body)
    check_response(reply.body)
    assert "Traceback" not in json.dumps(reply.body)
    assert [] == [r for r in collect.records if r.exc_info or r.levelno >= logging.ERROR]
    # The server still answers this client normally.
    if generation == "2025-11-25":
        assert 200 == session.call("ping").status
    else:
        assert 200 == stateless.call("tools/list").status


def test_nan_never_reaches_a_tool(http: tuple[Session, Stateless, Collect]) -> None:
    """The issue's NaN in tool arguments is refused before the tool runs; a finite one runs."""
    session, _, _ = http
    bad = session.raw(
        b'{"jsonrpc":"2.0","id":5,"method":"tools/call",'
        b'"params":{"name":"echo","arguments":{"x":NaN}}}'
    )
    assert (400, PARSE_ERROR) == (bad.status, bad.error["code"])
    good = session.call("tools/call", {"name": "echo", "arguments": {"x": 1.5}})
    assert '{"x": 1.5}' == good.result["content"][0]["text"]


# -- body size: the demo server's own limit matches max_body_bytes (item 6) --------------

DEMO = Path(__file__).parents[1] / "examples" / "wsgi_server.py"


def _raw_post(port: int, length: int, body: bytes) -> tuple[int, bytes]:
    """Send a POST declaring *length* bytes and carrying *body*; return (status, reply body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(
            b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % length + body
        )
        response = HTTPResponse(sock)
        response.begin()
        return response.status, response.read()


def test_the_demo_refuses_a_huge_body_unread_and_takes_exactly_the_limit(
    tmp_path: Path,
) -> None:
    """
    examples/wsgi_server.py sets waitress's max_request_body_size to the app's
    max_body_bytes (+1: waitress refuses that many or more): a 200 MiB Content-Length
    is refused at once, before any body byte is sent; 1 MiB exactly reaches the app.
    """
    out = tmp_path / "demo.out"
    with open(out, "wb") as stdout:
        demo = subprocess.Popen(
            [sys.executable, str(DEMO), "--host", "127.0.0.1", "--port", "0"],
            stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + WAIT
        while (found := re.search(r"127\.0\.0\.1:(\d+)/mcp", out.read_text())) is None:
            assert demo.poll() is None
            assert time.monotonic() < deadline
            time.sleep(0.05)
        port = int(found.group(1))
        status, _ = _raw_post(port, 200 * 1024 * 1024, b"")
        assert 413 == status
        limit = 1_048_576
        status, body = _raw_post(port, limit, b"{}" + b" " * (limit - 2))
        assert 400 == status  # the app read it: no session yet
        assert INVALID_REQUEST == json.loads(body)["error"]["code"]
        status, _ = _raw_post(port, limit + 1, b"{}" + b" " * (limit - 1))
        assert 413 == status
    finally:
        demo.terminate()
        demo.wait(WAIT)

"""The test harness's own promises: a waitress server it starts always stops, and says how."""

from __future__ import annotations

import http.client
import socket
import threading
import warnings
from collections.abc import Iterable
from typing import Any

import waitress

from .http_harness import HOST, WAIT, TeardownWarning, eventually, running

NAME = "harness-waitress-loop"


def hello(environ: dict[str, Any], start: Any) -> Iterable[bytes]:
    start("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


def alive(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


def test_a_server_stops_with_a_connection_open_and_no_warning() -> None:
    server = waitress.create_server(hello, host=HOST, port=0, threads=2)
    client = http.client.HTTPConnection(HOST, server.effective_port, timeout=WAIT)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with running(server, NAME):
            client.request("GET", "/")
            assert b"hello" == client.getresponse().read()  # a keep-alive channel stays open
    assert [] == alive(NAME)
    assert {} == server._map
    assert [] == [t for t in threading.enumerate() if t.name.startswith("waitress-")]
    client.close()


def test_a_server_whose_listener_closed_itself_still_stops_and_says_what_waitress_logged() -> None:
    """
    An accept that raises makes waitress's listener close itself and its trigger
    pipe, while the open channels keep the loop running; the harness still stops it.
    """
    server = waitress.create_server(hello, host=HOST, port=0, threads=2)
    port = server.effective_port
    kept = http.client.HTTPConnection(HOST, port, timeout=WAIT)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with running(server, NAME):
            kept.request("GET", "/")
            assert b"hello" == kept.getresponse().read()

            def refuse(server: Any, conn: socket.socket, *args: Any, **kwargs: Any) -> None:
                conn.close()
                raise RuntimeError("a channel that cannot be made")

            server.channel_class = refuse
            with socket.create_connection((HOST, port), timeout=WAIT):
                eventually(lambda: not server.accepting, "the listener closed itself")
            assert server.trigger._closed  # waitress closed the trigger with the listener
            assert alive(NAME)  # the kept channel holds the loop open
    assert [TeardownWarning] == [w.category for w in caught]
    assert "uncaptured python exception" in str(caught[0].message)
    assert [] == alive(NAME)
    assert {} == server._map
    kept.close()

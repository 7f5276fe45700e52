"""The test harness's own promises: a waitress server it starts always stops."""

from __future__ import annotations

import os
import threading
import warnings
from typing import Any

import pytest
import waitress

from .http_harness import HOST, TeardownWarning, stop_waitress


def _started() -> tuple[Any, threading.Thread]:
    server = waitress.create_server(lambda environ, start: [], host=HOST, port=0)
    thread = threading.Thread(target=server.run, name="harness-waitress-loop")
    thread.start()
    return server, thread


def test_a_server_stops_through_its_trigger_without_a_warning() -> None:
    server, thread = _started()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stop_waitress(server, thread)
    assert not thread.is_alive()
    assert {} == server._map


def test_a_server_whose_trigger_is_gone_still_stops_and_says_so() -> None:
    server, thread = _started()
    os.close(server.trigger.trigger)  # its write end, as the rare EBADF at teardown finds it
    with pytest.warns(TeardownWarning, match="Bad file descriptor"):
        stop_waitress(server, thread)
    assert not thread.is_alive()
    assert {} == server._map

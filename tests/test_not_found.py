"""
Constant-time not-found (issue 13, item 7): one reply path, the WARNING written off it.

The costs themselves are measured by the benchmark (``python -m benchmarks
--sections latency``: rows ``get (unknown id)`` and ``get (another owner's
id)``); these tests check the behaviour: the same answer, the warning still
written, by a background thread, bounded.
"""

# Asserts read ``expected == actual`` (project convention), which SIM300 calls Yoda.

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

import pytest

from tasks_store import NotFound
from tasks_store.mcp import McpServer, Tool
from tasks_store.store._base import foreign_log
from tasks_store.store.offpath import OffPathLog

from .http_harness import WAIT, Session, serve

pytestmark = pytest.mark.timeout(60)


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def collected() -> Any:
    logger = logging.getLogger("i13-offpath")
    logger.setLevel(logging.DEBUG)
    handler = Collect()
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, handler
    logger.removeHandler(handler)


def test_lines_are_written_by_the_background_thread_in_order(collected: Any) -> None:
    logger, handler = collected
    log = OffPathLog(logger, "test lines")
    for i in range(20):
        log.log("line %d", i)
    assert log.flush(WAIT)
    assert [f"line {i}" for i in range(20)] == [r.getMessage() for r in handler.records]
    assert {"tasks_store-offpath-log"} == {r.threadName for r in handler.records}
    assert {logging.WARNING} == {r.levelno for r in handler.records}


def test_a_full_queue_drops_and_says_so(collected: Any) -> None:
    """Beyond max_queued, lines are counted, not kept; one summary line says how many."""
    logger, handler = collected
    log = OffPathLog(logger, "test lines", max_queued=5, per_second=1000)
    gate = threading.Event()

    class Slow(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            gate.wait(WAIT)

    slow = Slow()
    logger.addHandler(slow)
    try:
        log.log("first")  # the thread blocks writing it
        time.sleep(0.05)
        for i in range(50):
            log.log("more %d", i)
        gate.set()
        assert log.flush(WAIT)
    finally:
        logger.removeHandler(slow)
    log.log("after")
    assert log.flush(WAIT)
    messages = [r.getMessage() for r in handler.records]
    assert "first" == messages[0]
    assert messages[1].startswith("45 test lines not written (45 over the queue's 5")
    assert [f"more {i}" for i in range(5)] == messages[2:7]
    assert "after" == messages[7]


def test_the_writer_is_rate_limited(collected: Any) -> None:
    """At most per_second lines a second (a burst of as many); the rest summarised."""
    logger, handler = collected
    log = OffPathLog(logger, "test lines", per_second=10)
    for i in range(200):
        log.log("burst %d", i)
    assert log.flush(WAIT)
    written = [r.getMessage() for r in handler.records]
    assert 10 <= len(written) < 200  # the burst, and whatever refilled meanwhile
    eventually_summary = time.monotonic() + WAIT
    while not any("not written" in r.getMessage() for r in handler.records):
        assert time.monotonic() < eventually_summary
        time.sleep(0.05)
    summary = next(r.getMessage() for r in handler.records if "not written" in r.getMessage())
    assert f"{200 - log.written} test lines not written (0 over the queue's" in summary


def test_a_foreign_id_and_an_unknown_id_answer_alike_over_http(make_store: Any) -> None:
    """
    Through waitress: bob asking for alice's task and for an id that never existed
    gets the same reply, byte for byte but the id; the WARNING is still written.
    """
    store = make_store(clock=time.time)
    echo = Tool(name="echo", fn=lambda a, c: {"content": []}, task_support="optional")
    handler = Collect()
    assert foreign_log.flush(WAIT)  # lines earlier tests queued are not this test's
    logging.getLogger("tasks_store").addHandler(handler)
    try:
        with McpServer(store, [echo]) as server, serve(server.wsgi_app(), threads=4) as served:
            alice, bob = Session(served.port), Session(served.port)
            task_id = alice.call("tools/call", {"name": "echo", "task": {}}).result["task"][
                "taskId"
            ]
            unknown = str(uuid.UUID(int=uuid.UUID(task_id).int ^ 1))
            theirs = bob.call("tasks/get", {"taskId": task_id})
            never = bob.call("tasks/get", {"taskId": unknown})
            assert (theirs.status, theirs.headers.keys()) == (never.status, never.headers.keys())
            assert theirs.error == {
                **never.error,
                "message": never.error["message"].replace(unknown, task_id),
                "data": {"taskId": task_id},
            }
            for session in (alice, bob):
                session.close()
        assert foreign_log.flush(WAIT)
    finally:
        logging.getLogger("tasks_store").removeHandler(handler)
    denied = [r for r in handler.records if "denied to owner" in r.getMessage()]
    assert 1 == len(denied), [r.getMessage() for r in denied]
    assert task_id in denied[0].getMessage()
    assert "tasks_store-offpath-log" == denied[0].threadName


def test_the_store_path_raises_the_same_not_found(store: Any) -> None:
    """At store level too: the same NotFound for both, fields and message."""
    record = store.create("alice", "tools/call")
    errors = []
    for task_id in (record.task_id, "00000000-0000-4000-8000-000000000000"):
        with pytest.raises(NotFound) as info:
            store.get(task_id, "bob")
        errors.append(info.value.to_jsonrpc_error())
    assert errors[0]["data"] == {"taskId": record.task_id}
    assert errors[0]["message"].replace(record.task_id, "X") == errors[1]["message"].replace(
        "00000000-0000-4000-8000-000000000000", "X"
    )
    assert foreign_log.flush(WAIT)

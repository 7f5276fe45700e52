"""
:class:`OffPathLog`: log lines written by a background thread, off the caller's path, bounded.

The store logs a foreign access (a caller naming another owner's task) at
WARNING, as the spec's security section asks.  Writing that line costs
tens of microseconds (formatting, the handlers' I/O), which an unknown id
does not cost: the difference would tell a caller which ids exist.  So the
store hands the line to an :class:`OffPathLog`: the caller appends it to a
deque (about 0.1 µs), and one daemon thread writes it.

The writer does not wake for every line: when it is idle the first line
wakes it (one ``Event.set``), then it writes what has piled up, pauses
``batch_s`` (20 ms), and takes the next pile; so under a stream of foreign
accesses the callers pay a plain append each, and the writer takes the
interpreter lock once a pile, not once a line.

Bounded twice: at most ``max_queued`` lines wait (beyond that they are
counted, not kept), and at most ``per_second`` lines are written a second
(a burst of as many); lines over either bound are summarised in one
WARNING (``"N foreign-access warnings not written (...)"``) when writing
resumes, or within a second of quiet.  So a client probing ids can neither
slow the request threads nor flood the log.  The thread starts on first use
(again in a forked child); :meth:`OffPathLog.flush` waits until every line
queued before it is handled (tests, shutdown; it runs at interpreter exit).
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import threading
import time
import weakref
from typing import Any

__all__ = ["OffPathLog"]

_instances: weakref.WeakSet[OffPathLog] = weakref.WeakSet()


class OffPathLog:
    """
    Lines for *logger* at *level*, written by a background thread; see the module docstring.

    Args:
        logger: where the lines go.
        what: what a line is, for the summary of lines not written.
        level: the level of every line.
        max_queued: the most lines waiting to be written.
        per_second: the most lines written a second (also the burst).
        batch_s: the writer's pause between two piles of lines.
    """

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        level: int = logging.WARNING,
        max_queued: int = 10_000,
        per_second: float = 100.0,
        batch_s: float = 0.02,
    ) -> None:
        self._logger = logger
        self._what = what
        self._level = level
        self._max = max_queued
        self._rate = per_second
        self._batch_s = batch_s
        self._lines: collections.deque[tuple[str, tuple[Any, ...]] | threading.Event] = (
            collections.deque()
        )
        self._wake = threading.Event()
        self._sleeping = False
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._start_lock = threading.Lock()
        self.dropped = 0  # lines not queued: the queue was full
        self.suppressed = 0  # lines not written: over the rate
        self.written = 0
        _instances.add(self)

    def log(self, msg: str, *args: Any) -> None:
        """Queue one line (``msg % args``); never blocks, never raises on a full queue."""
        if self._thread is None or self._pid != os.getpid():
            self._start()
        lines = self._lines
        if len(lines) >= self._max:
            self.dropped += 1
            return
        lines.append((msg, args))
        if self._sleeping:
            self._sleeping = False
            self._wake.set()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every line queued before this call is handled; False on timeout."""
        if self._thread is None or self._pid != os.getpid():
            return True
        marker = threading.Event()
        self._lines.append(marker)
        self._sleeping = False
        self._wake.set()
        return marker.wait(timeout)

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None and self._pid == os.getpid():
                return
            if self._pid != os.getpid():  # a forked child: the parent's thread is not here
                self._pid = os.getpid()
                self._lines = collections.deque()
                self._wake = threading.Event()
            self._thread = threading.Thread(
                target=self._run, name="tasks_store-offpath-log", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        lines, wake = self._lines, self._wake
        tokens, at = self._rate, time.monotonic()
        while True:
            if not lines:
                self._sleeping = True
                if not lines:  # a line appended before the flag was seen is taken now
                    woken = wake.wait(1.0)
                    wake.clear()
                    if not woken:  # a quiet second: say what was not written, if anything
                        self._summarise()
                        continue
                self._sleeping = False
            while lines:
                item = lines.popleft()
                if isinstance(item, threading.Event):
                    item.set()
                    continue
                now = time.monotonic()
                tokens = min(self._rate, tokens + (now - at) * self._rate)
                at = now
                if tokens < 1:
                    self.suppressed += 1
                    continue
                tokens -= 1
                try:
                    self._summarise()
                    msg, args = item
                    self._logger.log(self._level, msg, *args)
                    self.written += 1
                except Exception:  # a broken handler must not end the thread
                    continue
            time.sleep(self._batch_s)

    def _summarise(self) -> None:
        missed, self.dropped = self.dropped, 0
        quiet, self.suppressed = self.suppressed, 0
        if missed or quiet:
            self._logger.log(
                self._level,
                "%d %s not written (%d over the queue's %d, %d over %g a second)",
                missed + quiet, self._what, missed, self._max, quiet, self._rate,
            )  # fmt: skip


@atexit.register
def _flush_all() -> None:
    for log in list(_instances):
        log.flush(timeout=1.0)

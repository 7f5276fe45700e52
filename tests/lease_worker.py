"""
A worker process for the lease kill test (``tests/test_leases.py``).

``python -m tests.lease_worker REDIS_URL LEASE_SECONDS`` serves an
``McpServer`` on a RedisTaskStore under waitress on 127.0.0.1 (ephemeral
port, printed on the first line of stdout), with a runner holding leases of
``LEASE_SECONDS`` and one tool, ``forever``, that runs until cancelled.  The
test kills it with SIGKILL while the tool runs.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import redis
import waitress

from tasks_store import TaskSecurityConfig
from tasks_store.mcp import McpServer, TaskRunner, Tool
from tasks_store.store.redis import RedisTaskStore


def forever(arguments: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Say it started, then run until cancelled."""
    ctx.set_variable("started", True)
    while not ctx.is_cancelled():
        time.sleep(0.05)
    return {"content": [{"type": "text", "text": "cancelled"}]}


def main(url: str, lease_seconds: float) -> None:
    store = RedisTaskStore(
        redis.Redis.from_url(url), security=TaskSecurityConfig(max_tasks_per_owner=50)
    )
    runner = TaskRunner(store, lease_seconds=lease_seconds)
    tools = [Tool(name="forever", fn=forever, task_support="required")]
    server = McpServer(store, tools, runner=runner)
    http = waitress.create_server(server.wsgi_app(), host="127.0.0.1", port=0, threads=4)
    print(http.effective_port, flush=True)  # type: ignore[union-attr]
    http.run()


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))

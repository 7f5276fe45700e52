"""
Peer: FastMCP 3.x (2025-11-25 tasks, Docket in memory) on uvicorn.

Run with the python of the benchmark's FastMCP 3 virtualenv::

    python benchmarks/peers/fastmcp3_server.py --port N [--poll-ms 100] [--concurrency 32]

It serves 2025-11-25 at ``http://127.0.0.1:N/mcp`` (stateful sessions, JSON
responses).  One tool, ``work {ms}``, ``task=TaskConfig(mode="optional")``:
sleeps ``ms`` milliseconds, returns ``done``.  Tasks run on FastMCP's Docket
worker with the ``memory://`` backend (single process), ``--concurrency`` at
a time.  Prints ``listening`` once it serves.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import timedelta


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--poll-ms", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    os.environ.setdefault("FASTMCP_DOCKET_URL", "memory://")
    os.environ["FASTMCP_DOCKET_CONCURRENCY"] = str(args.concurrency)

    import uvicorn
    from fastmcp import FastMCP
    from fastmcp.server.tasks.config import TaskConfig

    mcp = FastMCP("bench-fastmcp3")

    @mcp.tool(
        task=TaskConfig(mode="optional", poll_interval=timedelta(milliseconds=args.poll_ms))
    )
    async def work(ms: int) -> str:
        """Sleep `ms` milliseconds, then return 'done'."""
        await asyncio.sleep(ms / 1000)
        return "done"

    app = mcp.http_app(path="/mcp", json_response=True)
    print("listening", file=sys.stderr, flush=True)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

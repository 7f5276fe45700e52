"""
Peer: FastMCP 4.x (2026-07-28, the Tasks extension ``io.modelcontextprotocol/tasks``) on uvicorn.

Run with the python of the benchmark's FastMCP 4 virtualenv::

    python benchmarks/peers/fastmcp4_server.py --port N [--poll-ms 100] [--concurrency 32]

It serves the stateless 2026-07-28 protocol at ``http://127.0.0.1:N/mcp``
(JSON responses) with ``TasksExtension(url="memory://")``: Docket in memory,
``--concurrency`` tasks at a time.  One tool, ``work {ms}``,
``task=TaskConfig(mode="optional")``: sleeps ``ms`` milliseconds, returns
``done``.  Prints ``listening`` once it serves.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import timedelta


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--poll-ms", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    import uvicorn
    from fastmcp import FastMCP
    from fastmcp.utilities.tasks import TaskConfig
    from fastmcp_tasks import TasksExtension

    mcp = FastMCP("bench-fastmcp4")
    mcp.add_extension(TasksExtension(url="memory://", concurrency=args.concurrency))

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

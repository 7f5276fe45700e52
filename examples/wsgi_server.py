"""
A demo MCP tasks server: one slow tool, served by waitress (multi-threaded).

Start it (needs the ``examples`` extra, i.e. waitress)::

    python examples/wsgi_server.py            # http://127.0.0.1:8765/mcp

then drive it with curl (see docs/serving.md).  The tool ``slow_count``
counts to ``steps`` (default 5), sleeping ``delay`` seconds (default 1.0)
per step, writes its progress into the task's variables (shown by
``tasks/get`` in ``_meta``), stops early when the task is cancelled, and
returns a line of text.  Callers are told apart by their ``Mcp-Session-Id``
header.
"""

from __future__ import annotations

import argparse
import logging
import signal
import time
from typing import Any

import waitress

from tasks_store import InMemoryTaskStore, TaskContext, TasksRpc
from tasks_store.mcp.wsgi import TasksApp


def slow_count(arguments: dict[str, Any], ctx: TaskContext | None) -> dict[str, Any]:
    """Count to ``steps``, one step per ``delay`` seconds, reporting progress."""
    steps = arguments.get("steps", 5)
    delay = arguments.get("delay", 1.0)
    if type(steps) is not int or not 1 <= steps <= 100:
        msg = "steps must be an integer from 1 to 100"
        raise ValueError(msg)
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= 10:
        msg = "delay must be a number of seconds from 0 to 10"
        raise ValueError(msg)
    for step in range(1, steps + 1):
        if ctx is not None and ctx.is_cancelled():
            return {"content": [{"type": "text", "text": "cancelled"}], "isError": True}
        time.sleep(delay)
        if ctx is not None:
            ctx.set_variables({"step": step, "steps": steps, "progress": step / steps})
    return {"content": [{"type": "text", "text": f"Counted to {steps}."}]}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (8765; 0 picks one)")
    parser.add_argument("--threads", type=int, default=16, help="waitress worker threads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    store = InMemoryTaskStore(poll_interval_ms=1000)
    rpc = TasksRpc(store, result_timeout=60.0)
    app = TasksApp(rpc, tools={"slow_count": slow_count})
    server = waitress.create_server(app, host=args.host, port=args.port, threads=args.threads)
    signal.signal(signal.SIGTERM, _interrupt)  # stop on SIGTERM as on Ctrl-C
    print(f"MCP tasks demo listening on http://{args.host}:{server.effective_port}/mcp", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        app.close(cancel=True)  # running tools see ctx.is_cancelled() and stop

if __name__ == "__main__":
    main()

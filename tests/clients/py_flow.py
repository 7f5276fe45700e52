"""
Drive an MCP server with the official Python SDK client (mcp==1.30.0) over
Streamable HTTP, protocol 2025-11-25, and print ONE JSON object of what it saw.

Run with the python of ``tests.node_tools.python_client_env()`` (mcp 1.30.0 in
its own virtualenv; never the project's environment)::

    PY tests/clients/py_flow.py http://127.0.0.1:N/mcp [--tool echo] [--tool-args '{"text": "hi"}']
        [--task-tool slow_count] [--task-args '{"steps": 2}'] [--cancel-args '{"steps": 30}']
        [--timeout 60]

Steps, each through the SDK's own API (``ClientSession`` and its deprecated,
experimental ``session.experimental`` tasks API, the last release that has it):

1. ``initialize`` (``session.initialize()``), then ``tools/list``;
2. ``session.experimental.call_tool_as_task(task_tool, task_args, ttl=60000)``:
   a ``tools/call`` with ``params.task = {"ttl": 60000}``;
3. ``session.experimental.poll_task(id)``: ``tasks/get`` until a terminal status,
   sleeping the task's ``pollInterval`` (500 ms when absent) between polls;
4. ``get_task_result(id, CallToolResult)`` (``tasks/result``), ``list_tasks()``
   (``tasks/list``);
5. a second task with ``cancel_args``, ``cancel_task(id)`` (``tasks/cancel``) right
   after it is created, then ``tasks/get`` until terminal (bounded);
6. ``session.call_tool(tool, tool_args)``: a plain call, no ``task``.

A failing step is recorded in ``errors`` (``step``, ``code`` for a JSON-RPC
error, ``message``) and the steps that need it are skipped.  ``finished`` says
the flow ran to its end (exit status 0; 1 when it was cut short, e.g. by
``--timeout`` or a broken transport; 2 on bad arguments); ``ok`` is ``finished``
with no error.  Printed keys: ``client``, ``client_version``, ``ok``, ``finished``,
``protocol_version``, ``session_id_present``, ``server_info``,
``server_capabilities``, ``tools`` ({name: taskSupport or null}), ``task``
(``task_id``, ``created``, ``statuses``, ``final_status``, ``result``), ``list``
(``task_ids``, ``statuses`` by id, ``next_cursor``, ``contains_task``),
``cancel`` (``task_id``, ``created_status``, ``cancel_result``, ``statuses``,
``final_status``), ``plain_call`` (``tool``, ``arguments``, ``result``),
``errors``, ``wire`` (one entry per HTTP request: ``http``, ``jsonrpc``,
``status``, ``content_type``, ``protocol_version`` header, ``session_id`` sent,
``accept``) and ``client_capabilities`` (as sent in ``initialize``).

Verified against: tests/clients/reference_server.py (mcp 1.30.0 low-level server
with ``enable_tasks()``, uvicorn, SSE and ``--json-response`` modes).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from importlib.metadata import version
from typing import Any

warnings.filterwarnings("ignore", message="The experimental tasks API is deprecated")

import anyio  # noqa: E402
import httpx  # noqa: E402
import mcp.types as types  # noqa: E402
from flow_common import TERMINAL, FlowBase, dump, json_object, run_and_report  # noqa: E402
from mcp import ClientSession  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402
from mcp.shared._httpx_utils import create_mcp_http_client  # noqa: E402


class Flow(FlowBase):
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.report: dict[str, Any] = {
            "client": "python-sdk",
            "client_version": version("mcp"),
            "url": args.url,
            "ok": False,
            "finished": False,
            "protocol_version": None,
            "session_id_present": False,
            "server_info": None,
            "server_capabilities": None,
            "client_capabilities": None,
            "tools": None,
            "task": None,
            "list": None,
            "cancel": None,
            "plain_call": None,
            "errors": [],
            "wire": [],
        }

    def request_fields(self, request: httpx.Request) -> dict[str, Any]:
        return {
            "protocol_version": request.headers.get("mcp-protocol-version"),
            "session_id": "mcp-session-id" in request.headers,
            "accept": request.headers.get("accept"),
        }

    async def poll(self, session: ClientSession, task_id: str, bound: float) -> list[str]:
        """tasks/get until terminal or ``bound`` seconds, honouring pollInterval."""
        statuses: list[str] = []
        deadline = time.monotonic() + bound
        while True:
            got = await session.experimental.get_task(task_id)
            statuses.append(got.status)
            if got.status in TERMINAL or time.monotonic() > deadline:
                return statuses
            await anyio.sleep((got.pollInterval or 500) / 1000)

    async def run(self) -> None:
        args = self.args
        client = create_mcp_http_client()
        client.event_hooks["request"].append(self.on_request)
        client.event_hooks["response"].append(self.on_response)
        async with client, streamable_http_client(args.url, http_client=client) as (
            read,
            write,
            get_session_id,
        ):
            async with ClientSession(read, write, read_timeout_seconds=_seconds(args)) as session:
                await self.steps(session, get_session_id)

    async def steps(self, session: ClientSession, get_session_id: Any) -> None:
        args = self.args
        report = self.report
        try:
            init = await session.initialize()
        except Exception as exc:
            self.error("initialize", exc)
            return
        report["protocol_version"] = str(init.protocolVersion)
        report["server_info"] = dump(init.serverInfo)
        report["server_capabilities"] = dump(init.capabilities)
        report["session_id_present"] = bool(get_session_id())

        try:
            listed = await session.list_tools()
            report["tools"] = {
                tool.name: (tool.execution.taskSupport if tool.execution else None)
                for tool in listed.tools
            }
        except Exception as exc:
            self.error("tools/list", exc)

        task_id: str | None = None
        task: dict[str, Any] = {"statuses": []}
        report["task"] = task
        try:
            created = await session.experimental.call_tool_as_task(
                args.task_tool, args.task_args, ttl=60000
            )
            task_id = created.task.taskId
            task["task_id"] = task_id
            task["created"] = dump(created)
            async for status in session.experimental.poll_task(task_id):
                task["statuses"].append(status.status)
            task["final_status"] = task["statuses"][-1] if task["statuses"] else None
        except Exception as exc:
            self.error("tools/call (task)", exc)
        if task_id is not None:
            try:
                result = await session.experimental.get_task_result(task_id, types.CallToolResult)
                task["result"] = dump(result)
            except Exception as exc:
                self.error("tasks/result", exc)
            try:
                listing = await session.experimental.list_tasks()
                ids = [t.taskId for t in listing.tasks]
                report["list"] = {
                    "task_ids": ids,
                    "statuses": {t.taskId: t.status for t in listing.tasks},
                    "next_cursor": listing.nextCursor,
                    "contains_task": task_id in ids,
                }
            except Exception as exc:
                self.error("tasks/list", exc)

        cancel: dict[str, Any] = {}
        report["cancel"] = cancel
        try:
            created = await session.experimental.call_tool_as_task(
                args.task_tool, args.cancel_args, ttl=60000
            )
            cancel_id = created.task.taskId
            cancel["task_id"] = cancel_id
            cancel["created_status"] = created.task.status
            cancelled = await session.experimental.cancel_task(cancel_id)
            cancel["cancel_result"] = dump(cancelled)
            cancel["statuses"] = await self.poll(session, cancel_id, bound=args.timeout / 3)
            cancel["final_status"] = cancel["statuses"][-1]
        except Exception as exc:
            self.error("tasks/cancel", exc)

        plain: dict[str, Any] = {"tool": args.tool, "arguments": args.tool_args}
        report["plain_call"] = plain
        try:
            plain["result"] = dump(await session.call_tool(args.tool, args.tool_args))
        except Exception as exc:
            self.error("tools/call", exc)
        report["finished"] = True


def _seconds(args: argparse.Namespace) -> Any:
    from datetime import timedelta

    return timedelta(seconds=max(5.0, args.timeout / 3))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--tool", default="echo", help="tool of the plain call (echo)")
    parser.add_argument("--tool-args", type=json_object, default={"text": "hello"})
    parser.add_argument("--task-tool", default="slow_count")
    parser.add_argument("--task-args", type=json_object, default={"steps": 2})
    parser.add_argument("--cancel-args", type=json_object, default={"steps": 30})
    parser.add_argument("--timeout", type=float, default=60.0, help="whole flow, seconds")
    args = parser.parse_args(argv)
    flow = Flow(args)
    return run_and_report(flow.run, flow.report, args.timeout, flow.error)


if __name__ == "__main__":
    sys.exit(main())

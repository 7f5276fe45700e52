"""
Drive a task that asks for input with the official Python SDK client
(mcp==1.30.0), protocol 2025-11-25, and print ONE JSON object of what it saw.

Run with the python of ``tests.node_tools.python_client_env()``::

    PY tests/clients/py_elicit_flow.py http://127.0.0.1:N/mcp [--call-url http://127.0.0.1:M/mcp]
        [--tool greet_user] [--tool-args '{}'] [--answer '{"name": "Ada"}'] [--timeout 60]

Steps, each through the SDK's own API (``ClientSession`` with an
``elicitation_callback``, and its experimental tasks API):

1. ``initialize`` (the callback makes the client declare ``elicitation``),
   then ``tools/list``;
2. ``session.experimental.call_tool_as_task(tool, tool_args, ttl=60000)``;
   with ``--call-url`` this one request goes to that other server (another
   process sharing the store), so the tool runs there;
3. ``tasks/get`` until the task is ``input_required`` (bounded);
4. ``get_task_result(id, CallToolResult)``: ``tasks/result``, which the
   server answers with an SSE stream carrying the tool's ``elicitation/create``
   request; the SDK calls the callback, which accepts with ``--answer``, and
   POSTs the response back; the stream ends with the result;
5. ``tasks/get`` once more: the final status.

Printed keys: ``client``, ``client_version``, ``ok``, ``finished``,
``protocol_version``, ``client_capabilities``, ``tools``, ``task`` (``task_id``,
``created``, ``statuses`` seen while polling, ``result``, ``final``),
``elicitations`` (each request the callback got: ``message``,
``requested_schema``, ``related_task``), ``errors`` (as py_flow.py) and
``wire`` (one entry per HTTP request: ``http``, ``jsonrpc``, ``status``,
``content_type``, ``port``).  ``ok`` is ``finished`` with no error.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from datetime import timedelta
from importlib.metadata import version
from typing import Any

warnings.filterwarnings("ignore", message="The experimental tasks API is deprecated")

import anyio  # noqa: E402
import httpx  # noqa: E402
import mcp.types as types  # noqa: E402
from flow_common import TERMINAL, FlowBase, dump, json_object, run_and_report  # noqa: E402
from mcp import ClientSession  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

RELATED_TASK = "io.modelcontextprotocol/related-task"


class Router(httpx.AsyncBaseTransport):
    """Send ``tools/call`` to *call_url* (another server), everything else where it was going."""

    def __init__(self, call_url: str | None) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._call = httpx.URL(call_url) if call_url else None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._call is not None and request.method == "POST":
            try:
                body = json.loads(request.content)
            except ValueError:
                body = None
            if isinstance(body, dict) and body.get("method") == "tools/call":
                request.url = request.url.copy_with(host=self._call.host, port=self._call.port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class Flow(FlowBase):
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.report: dict[str, Any] = {
            "client": "python-sdk",
            "client_version": version("mcp"),
            "url": args.url,
            "call_url": args.call_url,
            "ok": False,
            "finished": False,
            "protocol_version": None,
            "client_capabilities": None,
            "tools": None,
            "task": None,
            "elicitations": [],
            "errors": [],
            "wire": [],
        }

    def response_fields(self, response: httpx.Response) -> dict[str, Any]:
        return {"port": response.request.url.port}

    async def elicit(self, context: Any, params: types.ElicitRequestParams) -> Any:
        meta = params.meta.model_dump(by_alias=True) if params.meta is not None else {}
        self.report["elicitations"].append(
            {
                "message": params.message,
                "requested_schema": getattr(params, "requestedSchema", None),
                "related_task": meta.get(RELATED_TASK),
            }
        )
        return types.ElicitResult(action="accept", content=self.args.answer)

    async def run(self) -> None:
        args = self.args
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(30.0, read=300.0), transport=Router(args.call_url)
        )
        client.event_hooks["request"].append(self.on_request)
        client.event_hooks["response"].append(self.on_response)
        async with client, streamable_http_client(args.url, http_client=client) as (
            read,
            write,
            _,
        ):
            async with ClientSession(
                read,
                write,
                read_timeout_seconds=timedelta(seconds=max(5.0, args.timeout / 2)),
                elicitation_callback=self.elicit,
            ) as session:
                await self.steps(session)

    async def steps(self, session: ClientSession) -> None:
        args = self.args
        report = self.report
        try:
            init = await session.initialize()
        except Exception as exc:
            self.error("initialize", exc)
            return
        report["protocol_version"] = str(init.protocolVersion)
        try:
            listed = await session.list_tools()
            report["tools"] = {
                t.name: (t.execution.taskSupport if t.execution else None) for t in listed.tools
            }
        except Exception as exc:
            self.error("tools/list", exc)
        task: dict[str, Any] = {"statuses": []}
        report["task"] = task
        try:
            created = await session.experimental.call_tool_as_task(
                args.tool, args.tool_args, ttl=60000
            )
        except Exception as exc:
            self.error("tools/call (task)", exc)
            return
        task_id = created.task.taskId
        task["task_id"] = task_id
        task["created"] = dump(created)
        deadline = time.monotonic() + args.timeout / 3
        while True:
            got = await session.experimental.get_task(task_id)
            task["statuses"].append(got.status)
            if got.status == "input_required" or got.status in TERMINAL:
                break
            if time.monotonic() > deadline:
                self.error("tasks/get", TimeoutError("the task never asked for input"))
                return
            await anyio.sleep(0.1)
        try:
            result = await session.experimental.get_task_result(task_id, types.CallToolResult)
            task["result"] = dump(result)
        except Exception as exc:
            self.error("tasks/result", exc)
        try:
            task["final"] = dump(await session.experimental.get_task(task_id))
        except Exception as exc:
            self.error("tasks/get (final)", exc)
        report["finished"] = True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--call-url", help="send tools/call here (another server on the store)")
    parser.add_argument("--tool", default="greet_user")
    parser.add_argument("--tool-args", type=json_object, default={})
    parser.add_argument("--answer", type=json_object, default={"name": "Ada"})
    parser.add_argument("--timeout", type=float, default=60.0, help="whole flow, seconds")
    args = parser.parse_args(argv)
    flow = Flow(args)
    return run_and_report(flow.run, flow.report, args.timeout, flow.error)


if __name__ == "__main__":
    sys.exit(main())

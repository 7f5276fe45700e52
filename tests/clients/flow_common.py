"""
What the two Python SDK client scripts (``py_flow.py``, ``py_elicit_flow.py``) share.

They run as scripts under the mcp client's own python
(``tests.node_tools.python_client_env()``), so this module is imported from
their folder, never from the test suite's environment.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx
from mcp.shared.exceptions import McpError

TERMINAL = {"completed", "failed", "cancelled"}


def dump(model: Any) -> Any:
    """A pydantic model of the SDK as its JSON, camelCase, without the unset fields."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def error_entry(step: str, exc: BaseException) -> dict[str, Any]:
    """One ``errors`` entry of a report: the step, the exception, the JSON-RPC or HTTP code."""
    entry: dict[str, Any] = {"step": step, "type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, McpError):
        entry["code"] = exc.error.code
        entry["message"] = exc.error.message
        if exc.error.data is not None:
            entry["data"] = exc.error.data
    elif isinstance(exc, httpx.HTTPStatusError):
        entry["http_status"] = exc.response.status_code
    return entry


def json_object(text: str) -> dict[str, Any]:
    """An argparse type: a JSON object."""
    value = json.loads(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("not a JSON object")
    return value


class FlowBase:
    """
    A flow's report, its ``errors`` and its ``wire`` log: every HTTP exchange,
    through httpx's event hooks ``on_request``/``on_response``, with the
    client's capabilities taken from its ``initialize``.  A flow adds fields
    to a wire entry with :meth:`request_fields` and :meth:`response_fields`.
    """

    report: dict[str, Any]

    def error(self, step: str, exc: BaseException) -> None:
        self.report["errors"].append(error_entry(step, exc))

    def request_fields(self, request: httpx.Request) -> dict[str, Any]:
        return {}

    def response_fields(self, response: httpx.Response) -> dict[str, Any]:
        return {}

    async def on_request(self, request: httpx.Request) -> None:
        method: Any = None
        if request.method == "POST":
            try:
                body = json.loads(request.content)
            except ValueError:
                body = None
            if isinstance(body, dict):
                method = body.get("method", "(response)")
                if method == "initialize":
                    self.report["client_capabilities"] = body.get("params", {}).get("capabilities")
            elif isinstance(body, list):
                method = [m.get("method") for m in body if isinstance(m, dict)]
        entry = {"http": request.method, "jsonrpc": method, **self.request_fields(request)}
        request.extensions["flow_entry"] = entry
        self.report["wire"].append(entry)

    async def on_response(self, response: httpx.Response) -> None:
        entry = response.request.extensions.get("flow_entry")
        if isinstance(entry, dict):
            entry["status"] = response.status_code
            entry["content_type"] = response.headers.get("content-type")
            entry.update(self.response_fields(response))


def run_and_report(
    run: Callable[[], Awaitable[None]], report: dict[str, Any], timeout: float,
    error: Callable[[str, BaseException], None],
) -> int:  # fmt: skip
    """
    Run the flow within *timeout* seconds, print *report* as ONE JSON line, and
    return the exit status: 0 when the flow ran to its end, 1 when it was cut short.
    """
    started = time.monotonic()

    async def bounded() -> None:
        with anyio.fail_after(timeout):
            await run()

    try:
        anyio.run(bounded)
    except Exception as exc:  # includes the transport task group's ExceptionGroup
        error("flow", exc)
    report["ok"] = bool(report["finished"]) and not report["errors"]
    report["seconds"] = round(time.monotonic() - started, 2)
    print(json.dumps(report, sort_keys=True))
    sys.stdout.flush()
    return 0 if report["finished"] else 1

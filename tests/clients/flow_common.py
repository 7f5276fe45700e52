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

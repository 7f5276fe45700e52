"""
The benchmark suite cannot rot: ``--quick`` runs end to end, and the
``GlobalLockStore`` rival keeps the contract it is compared on.

No timing is asserted anywhere: only that every section's rows and every
output file exist.  The quick run is the slow part, so its tests carry the
``bench_smoke`` marker: the default test run leaves them out and ``.ci/run``
runs them as a step of their own (``pytest -m bench_smoke``).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from benchmarks import main, sections
from benchmarks.global_lock import GlobalLockStore
from benchmarks.report import build_tables
from benchmarks.stores import (
    ALL_OPS,
    MCP_NAME,
    NOT_FOUND_OPS,
    REFERENCE,
    STORES,
    StoreEntry,
    StoreUnavailable,
)
from tasks_store import (
    InMemoryTaskStore,
    InvalidCursor,
    InvalidParams,
    InvalidTransition,
    NotFound,
    ResourceExhausted,
    TaskSecurityConfig,
)

from .conftest import FakeClock

STORE_NAMES = [entry.name for entry in STORES]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Run ``python -m benchmarks --quick`` once, in process; return (out dir, stdout)."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("bench")
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = main(["--quick", "--out", str(out)])
    assert status == 0
    assert "memory" in stderr.getvalue()  # the progress bar went to stderr
    return out, stdout.getvalue()


@pytest.mark.bench_smoke
@pytest.mark.timeout(600)
def test_quick_run_writes_every_file(quick_run: tuple[Path, str]) -> None:
    """results.json, results.md and, with matplotlib, both plots are written."""
    out, _ = quick_run
    expected = {"results.json", "results.md"}
    if importlib.util.find_spec("matplotlib") is not None:
        expected |= {"threads.png", "size.png"}
    assert expected <= {p.name for p in out.iterdir()}
    for name in expected:
        assert (out / name).stat().st_size > 0


@pytest.mark.bench_smoke
@pytest.mark.timeout(600)
def test_quick_run_json_has_every_row(quick_run: tuple[Path, str]) -> None:
    """Every section holds a row per store (and per op, size or thread count)."""
    out, _ = quick_run
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    meta = results["meta"]
    assert meta["quick"] is True
    assert {"python", "machine", "cpus", "packages"} <= set(meta)
    assert "tasks_store" in meta["packages"]
    settings = results["settings"]

    latency = {(r["store"], r["op"]) for r in results["latency"]["rows"]}
    # The not-found pair is timed on every store that has owners (the SDK's has none).
    owned = [s for s in STORE_NAMES if s != MCP_NAME]
    assert latency == {(s, op) for s in STORE_NAMES for op in ALL_OPS} | {
        (s, op) for s in owned for op in sections.NOT_FOUND_OPS
    }
    sizes = {(r["store"], r["op"], r["size"]) for r in results["size"]["rows"]}
    assert sizes == {
        (s, op, n)
        for s in STORE_NAMES
        for op in sections.SIZE_OPS
        for n in settings["sizes"]
    }
    threads = {(r["store"], r["threads"]) for r in results["threads"]["rows"]}
    assert threads == {(s, t) for s in STORE_NAMES for t in settings["thread_counts"]}
    assert {r["store"] for r in results["memory"]["rows"]} == set(STORE_NAMES)
    assert {r["store"] for r in results["floor"]["rows"]} == set(STORE_NAMES)
    reference = [r for r in results["latency"]["rows"] if r["store"] == REFERENCE]
    assert all(r["samples"] > 0 for r in reference)
    assert results["targets"]


@pytest.mark.bench_smoke
@pytest.mark.timeout(600)
def test_quick_run_prints_and_writes_tables(quick_run: tuple[Path, str]) -> None:
    """Each section's table, with a row per store, is printed and in results.md."""
    out, stdout = quick_run
    markdown = (out / "results.md").read_text(encoding="utf-8")
    titles = [
        "1. Per-operation latency",
        "2. Thread scaling",
        "3. Size scaling",
        "4. Memory per task",
        "5. Floor",
        "Targets",
    ]
    for title in titles:
        assert title in stdout
        assert f"### {title}" in markdown
    for name in STORE_NAMES:
        for op in ALL_OPS:
            assert any(
                line.startswith(f"| {op} | {name} |") for line in markdown.splitlines()
            ), (op, name)
    for op in NOT_FOUND_OPS:  # issue 13: both not-found reads, on the stores that isolate owners
        for name in ("InMemoryTaskStore", "RedisTaskStore"):
            assert any(
                line.startswith(f"| {op} | {name} |") for line in markdown.splitlines()
            ), (op, name)


@pytest.mark.bench_smoke
@pytest.mark.timeout(600)
def test_report_rebuilds_from_json(quick_run: tuple[Path, str], tmp_path: Path) -> None:
    """``--report results.json`` rebuilds the Markdown without measuring."""
    out, _ = quick_run
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["--report", str(out / "results.json"), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "results.md").read_text(encoding="utf-8").count("### ") == 6


def test_unavailable_store_still_reports() -> None:
    """A store whose factory raises StoreUnavailable gets rows that say so."""

    def broken(concurrent: bool) -> Any:
        raise StoreUnavailable("not installed here")

    entry = StoreEntry("Broken", broken, frozenset(ALL_OPS), "cannot be built")
    results: dict[str, Any] = {
        "floor": sections.run_floor([entry], sections.QUICK, lambda label: None),
        "memory": sections.run_memory([entry], sections.QUICK, lambda label: None),
    }
    assert results["floor"]["rows"] == [{"store": "Broken", "unavailable": "not installed here"}]
    assert results["memory"]["rows"][0]["unavailable"] == "not installed here"
    text = "\n".join(table.text() for table in build_tables(results))
    assert "unavailable" in text


def test_registry_names_the_reference_first() -> None:
    """One registry: unique names, the reference first, known operations only."""
    assert STORE_NAMES[0] == REFERENCE
    assert len(set(STORE_NAMES)) == len(STORE_NAMES)
    for entry in STORES:
        assert entry.supports <= set(ALL_OPS)


# -- GlobalLockStore keeps the contract it is compared on ------------------------

Factory = Callable[..., Any]


@pytest.fixture(params=[InMemoryTaskStore, GlobalLockStore], ids=["memory", "global-lock"])
def make(request: pytest.FixtureRequest, clock: FakeClock) -> Factory:
    """Build the rival and the reference alike: each test checks both agree."""

    def build(**kwargs: Any) -> Any:
        return request.param(clock=clock, **kwargs)

    return build


def test_quota_counts_live_tasks_only(make: Factory, clock: FakeClock) -> None:
    """The owner's quota refuses one more live task; expired ones free a slot."""
    store = make(security=TaskSecurityConfig(max_tasks_per_owner=2))
    store.create("alice", "tools/call", ttl=1_000)
    store.create("alice", "tools/call", ttl=60_000)
    with pytest.raises(ResourceExhausted):
        store.create("alice", "tools/call")
    store.create("bob", "tools/call")  # another owner's quota is separate
    clock.advance(1.0)
    store.create("alice", "tools/call")


def test_owners_are_isolated(make: Factory) -> None:
    """Another owner's task is NotFound, for reads and writes, and absent from list."""
    store = make()
    record = store.create("alice", "tools/call")
    with pytest.raises(NotFound):
        store.get(record.task_id, "mallory")
    with pytest.raises(NotFound):
        store.cancel(record.task_id, "mallory")
    assert store.list("mallory").tasks == ()
    assert store.get(record.task_id, "alice").status.value == "working"


def test_list_pages_newest_first_once_each(make: Factory) -> None:
    """Following next_cursor returns every task exactly once, newest first."""
    store = make()
    created = [store.create("alice", "tools/call").task_id for _ in range(7)]
    store.create("bob", "tools/call")
    seen: list[str] = []
    cursor = None
    while True:
        page = store.list("alice", cursor=cursor, limit=3)
        seen += [record.task_id for record in page.tasks]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == created[::-1]
    first = store.list("alice", limit=3)
    with pytest.raises(InvalidCursor):
        store.list("bob", cursor=first.next_cursor)


def test_cleanup_removes_and_counts_expired(make: Factory, clock: FakeClock) -> None:
    """cleanup_expired removes exactly the expired tasks and says how many."""
    store = make()
    short = [store.create(f"owner-{i}", "tools/call", ttl=500).task_id for i in range(3)]
    kept = store.create("owner-0", "tools/call", ttl=60_000).task_id
    assert store.cleanup_expired() == 0
    clock.advance(0.5)
    assert store.cleanup_expired() == 3
    assert store.cleanup_expired() == 0
    assert len(store) == 1
    for task_id in short:
        with pytest.raises(NotFound):
            store.get(task_id, "owner-0")
    assert store.get(kept, "owner-0").task_id == kept


def test_writes_follow_the_state_machine(make: Factory) -> None:
    """Writes return new records; a terminal task refuses further changes."""
    store = make()
    task_id = store.create("alice", "tools/call").task_id
    assert store.update_status(task_id, "alice", "input_required").status.value == (
        "input_required"
    )
    merged = store.set_variables(task_id, "alice", {"a": 1, "b": 2})
    assert dict(store.set_variables(task_id, "alice", {"a": None}).variables) == {"b": 2}
    assert dict(merged.variables) == {"a": 1, "b": 2}
    done = store.complete_with_result(task_id, "alice", "completed", None, {"ok": True})
    assert done.status.value == "completed"
    assert store.get_result(task_id, "alice") == {"ok": True}
    with pytest.raises(InvalidTransition):
        store.cancel(task_id, "alice")


def test_foreign_caller_gets_not_found_whatever_else_is_wrong(make: Factory) -> None:
    """The owner is checked before the other arguments: NotFound, not InvalidParams."""
    store = make()
    task_id = store.create("alice", "tools/call").task_id
    with pytest.raises(NotFound):
        store.update_status(task_id, "mallory", "no-such-status")
    with pytest.raises(NotFound):
        store.set_variables(task_id, "mallory", {1: "not a str key"})
    with pytest.raises(NotFound):
        store.complete_with_result(task_id, "mallory", "working", None, object())
    with pytest.raises(InvalidParams):
        store.update_status(task_id, "alice", "no-such-status")

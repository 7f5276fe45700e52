"""
The five measurements: latency, floor, size scaling, thread scaling, memory.

Each ``run_*`` function takes the store entries, the :class:`Settings` and a
progress callback, and returns a JSON-ready dict of figures.  Stores are
measured one after another in the same process, on the same data, with the
same seeded random choices, so ratios between them come from one run.
"""

from __future__ import annotations

import gc
import random
import statistics
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .stores import ALL_OPS, NOT_FOUND_OPS, RESULT, StoreEntry, StoreUnavailable, Target
from .timing import gc_paused, per_call, summary, timer_overhead_ns

__all__ = [
    "FULL",
    "QUICK",
    "Settings",
    "run_floor",
    "run_latency",
    "run_memory",
    "run_sizes",
    "run_threads",
]

Progress = Callable[[str], None]

PROBE_OWNER = "probe-owner"
#: TTL of the tasks a fill creates: the contract stores' default, one hour.
FILL_TTL_MS = 3_600_000
#: Three small keys, as ``set_variables`` is measured with.
SMALL_VARIABLES = {"step": 3, "phase": "fetch", "done": False}
#: Variables whose compact JSON is exactly 1 KiB: ``{"blob":"xx...x"}``.
KIB_VARIABLES = {"blob": "x" * (1024 - len('{"blob":""}'))}
PAGE = 50


@dataclass(frozen=True)
class Settings:
    """How big and how long every measurement is; see :data:`FULL` and :data:`QUICK`."""

    quick: bool
    seed: int
    owners: int
    probe_tasks: int
    latency_size: int
    repeats: int
    samples: int
    warmup: int
    budget_s: float
    thread_counts: tuple[int, ...]
    thread_size: int
    thread_seconds: float
    thread_repeats: int
    sizes: tuple[int, ...]
    size_samples: int
    cleanup_samples: int
    memory_size: int
    memory_budget_s: float
    floor_lookups: int


FULL = Settings(
    quick=False,
    seed=20251125,
    owners=1000,
    probe_tasks=200,
    latency_size=10_000,
    repeats=5,
    samples=1000,
    warmup=200,
    budget_s=4.0,
    thread_counts=(1, 2, 4, 8, 16),
    thread_size=10_000,
    thread_seconds=1.0,
    thread_repeats=3,
    sizes=(1_000, 10_000, 100_000),
    size_samples=400,
    cleanup_samples=3,
    memory_size=100_000,
    memory_budget_s=45.0,
    floor_lookups=100_000,
)

QUICK = Settings(
    quick=True,
    seed=20251125,
    owners=100,
    probe_tasks=200,
    latency_size=1_000,
    repeats=2,
    samples=40,
    warmup=10,
    budget_s=0.03,
    thread_counts=(1, 2, 4, 8, 16),
    thread_size=500,
    thread_seconds=0.03,
    thread_repeats=1,
    sizes=(500, 1_000, 2_000),
    size_samples=20,
    cleanup_samples=1,
    memory_size=1_000,
    memory_budget_s=0.8,
    floor_lookups=5_000,
)


def owner_names(n: int) -> list[str]:
    """Return *n* owner ids, built once: every task of an owner shares its string."""
    return [f"owner-{i:04d}" for i in range(n)]


@dataclass
class Fill:
    """What a store was filled with: (task_id, owner_id) pairs."""

    tasks: list[tuple[str, str]]
    probe: list[tuple[str, str]]
    owners: list[str]


def fill(target: Target, size: int, settings: Settings, *, probe: bool = True) -> Fill:
    """
    Fill *target* with *size* tasks round-robin over the owners, plus the probe's.

    Uses the target's ``load`` (its ``create`` for ``InMemoryTaskStore``).
    """
    owners = owner_names(settings.owners)
    load = target.load
    with gc_paused():
        probe_tasks = (
            [(load(PROBE_OWNER, FILL_TTL_MS), PROBE_OWNER) for _ in range(settings.probe_tasks)]
            if probe
            else []
        )
        tasks = []
        for i in range(size):
            owner = owners[i % len(owners)]
            tasks.append((load(owner, FILL_TTL_MS), owner))
    return Fill(tasks, probe_tasks, owners)


def _build(entry: StoreEntry, concurrent: bool) -> tuple[Target | None, str | None]:
    try:
        return entry.factory(concurrent), None
    except StoreUnavailable as exc:
        return None, str(exc)


def _us(stats: dict[str, Any]) -> dict[str, Any]:
    """Convert a :func:`summary` in ns to µs."""
    return {
        key: (value / 1000 if key != "samples" and value is not None else value)
        for key, value in stats.items()
    }


# -- per-operation timing ------------------------------------------------------


class _OpTimer:
    """Times one operation on one filled store: warm-up, then repeats."""

    def __init__(self, settings: Settings, samples: int, overhead_ns: float) -> None:
        self.settings = settings
        self.samples = samples
        self.overhead_ns = overhead_ns

    def run(
        self,
        fn: Callable[..., Any],
        argsets: Sequence[tuple[Any, ...]],
        *,
        after_repeat: Callable[[list[Any]], None] | None = None,
    ) -> dict[str, Any]:
        """
        Time *fn* over *argsets*: the first ``warmup`` untimed, then repeats.

        With *after_repeat*, each repeat keeps the return values and hands
        them over, untimed, once the repeat is done.
        """
        s = self.settings
        warm = min(s.warmup, max(0, len(argsets) - s.repeats))
        start = time.perf_counter()
        warm_deadline = start + s.budget_s / 4
        for args in argsets[:warm]:
            fn(*args)
            if time.perf_counter() > warm_deadline:
                break
        rest = argsets[warm:]
        per = max(1, min(self.samples, len(rest) // s.repeats))
        begun = time.perf_counter()
        repeats: list[list[int]] = []
        for r in range(s.repeats):
            chunk = rest[r * per : (r + 1) * per]
            deadline = begun + s.budget_s * (r + 1) / s.repeats
            kept: list[Any] | None = [] if after_repeat is not None else None
            repeats.append(per_call(fn, chunk, deadline=deadline, min_samples=3, keep=kept))
            if after_repeat is not None and kept is not None:
                after_repeat(kept)
        return _us(summary(repeats, self.overhead_ns))

    def cleanup(self, target: Target, data: Fill, size: int) -> dict[str, Any]:
        """Time ``cleanup_expired`` removing 1% of *size* tasks, repeatedly."""
        assert target.cleanup_expired is not None
        k = max(1, size // 100)
        owners = data.owners
        repeats: list[list[int]] = []
        removed: list[int] = []
        begun = time.perf_counter()
        pc = time.perf_counter_ns
        target.cleanup_expired()  # warm-up: nothing to remove
        for r in range(self.settings.repeats):
            deadline = begun + self.settings.budget_s * 2 * (r + 1) / self.settings.repeats
            samples: list[int] = []
            for _ in range(self.settings.cleanup_samples):
                for i in range(k):
                    target.load(owners[i % len(owners)], 1)  # expires in 1 ms
                time.sleep(0.005)
                with gc_paused():
                    t0 = pc()
                    count = target.cleanup_expired()
                    t1 = pc()
                samples.append(t1 - t0)
                removed.append(count)
                if time.perf_counter() > deadline:
                    break
            repeats.append(samples)
        stats = _us(summary(repeats, self.overhead_ns))
        stats["removed"] = statistics.median(removed)
        return stats


def _probe_cursors(target: Target, owner: str, pages: int) -> list[str | None]:
    """Walk the first *pages* pages of *owner*'s list; return the cursor of each."""
    cursors: list[str | None] = [None]
    cursor: str | None = None
    for _ in range(pages - 1):
        cursor = target.next_cursor(target.list(owner, cursor=cursor, limit=PAGE))
        if cursor is None:
            break
        cursors.append(cursor)
    return cursors


class _Bench:
    """One filled store and the seeded choices its operations are timed with."""

    def __init__(
        self,
        target: Target,
        entry: StoreEntry,
        data: Fill,
        size: int,
        settings: Settings,
        samples: int,
        overhead_ns: float,
        *,
        on_probe: bool,
    ) -> None:
        self.target = target
        self.entry = entry
        self.data = data
        self.size = size
        self.settings = settings
        self.on_probe = on_probe
        self.rng = random.Random(settings.seed)
        self.timer = _OpTimer(settings, samples, overhead_ns)
        self.n = settings.warmup + settings.repeats * samples
        self.pool = list(data.tasks)
        self.rng.shuffle(self.pool)
        self.half = len(self.pool) // 2

    def measure(self, op: str) -> dict[str, Any]:
        """
        Time *op*; return its figures (µs).

        *on_probe*: ``get`` reads the probe owner's tasks and ``create`` adds
        to the probe owner (size scaling); otherwise both spread over all owners.
        """
        target, data, rng, n, timer = self.target, self.data, self.rng, self.n, self.timer
        pool, half = self.pool, self.half
        fn = getattr(target, op)
        if fn is None or op not in self.entry.supports:
            return {"unsupported": target.notes.get(op, "not in this store")}
        if op == "get":
            source = data.probe if self.on_probe else data.tasks
            args: list[tuple[Any, ...]] = [rng.choice(source) for _ in range(n)]
            return timer.run(fn, args)
        if op == "list":
            cursors = _probe_cursors(target, PROBE_OWNER, self.settings.probe_tasks // PAGE)
            args = [(PROBE_OWNER, cursors[i % len(cursors)]) for i in range(n)]

            def list_page(owner: str, cursor: str | None, _list: Any = fn) -> Any:
                return _list(owner, cursor=cursor, limit=PAGE)

            return timer.run(list_page, args)
        if op == "update_status":
            args = [(tid, owner, "input_required") for tid, owner in pool[: min(n, half)]]
            return timer.run(fn, args)
        if op == "set_variables":
            args = [(*rng.choice(data.tasks), SMALL_VARIABLES) for _ in range(n)]
            return timer.run(fn, args)
        if op == "create":
            owners = [PROBE_OWNER] if self.on_probe else data.owners
            ttl = target.create_ttl_ms
            args = [(owners[i % len(owners)], "tools/call", ttl) for i in range(n)]
            return timer.run(fn, args, after_repeat=target.remove)
        if op == "complete_with_result":
            args = [(tid, owner, "completed", None, RESULT) for tid, owner in pool[:half][:n]]
            return timer.run(fn, args)
        if op == "cancel":
            args = [(tid, owner) for tid, owner in pool[half:][:n]]
            return timer.run(fn, args)
        if op == "cleanup_expired":
            return timer.cleanup(target, data, self.size)
        raise ValueError(op)  # pragma: no cover - ALL_OPS is closed


def _measure_ops(
    bench: _Bench, ops: Sequence[str], progress: Progress, label: str
) -> dict[str, dict[str, Any]]:
    """Time each of *ops* on one filled store, in turn; return op -> figures (µs)."""
    out: dict[str, dict[str, Any]] = {}
    for op in ops:
        progress(f"{label} · {bench.entry.name} · {op}")
        out[op] = bench.measure(op)
    return out


def _driver_overhead_us(target: Target) -> float | None:
    """Median µs of one empty call through the target's driver (None: direct)."""
    if target.driver_overhead is None:
        return None
    overhead = timer_overhead_ns()
    times = per_call(
        target.driver_overhead, [()] * 2000, deadline=time.perf_counter() + 1.0, min_samples=50
    )
    return max(0.0, statistics.median(times) - overhead) / 1000


# -- 1. latency ----------------------------------------------------------------


def run_latency(
    entries: Sequence[StoreEntry], settings: Settings, progress: Progress
) -> dict[str, Any]:
    """
    Per-operation latency, one thread, each store holding ``latency_size`` tasks.

    Every store is filled first; then each operation is timed on every store
    in turn, the order rotated from one operation to the next, so that a
    change in the machine's load falls on all stores alike.
    """
    overhead = timer_overhead_ns()
    figures: dict[str, dict[str, dict[str, Any]]] = {}
    drivers: dict[str, float] = {}
    benches: list[_Bench] = []
    try:
        for entry in entries:
            target, reason = _build(entry, False)
            if target is None:
                figures[entry.name] = {op: {"unavailable": reason} for op in ALL_OPS}
                continue
            benches.append(
                _Bench(
                    target,
                    entry,
                    fill(target, settings.latency_size, settings),
                    settings.latency_size,
                    settings,
                    settings.samples,
                    overhead,
                    on_probe=False,
                )
            )
            figures[entry.name] = {}
            driver = _driver_overhead_us(target)
            if driver is not None:
                drivers[entry.name] = driver
        for index, op in enumerate(ALL_OPS):
            turn = index % max(1, len(benches))
            for bench in benches[turn:] + benches[:turn]:
                progress(f"latency · {op} · {bench.entry.name}")
                figures[bench.entry.name][op] = bench.measure(op)
            for name, by_op in figures.items():
                if by_op.get(op, {}).get("unavailable"):
                    progress(f"latency · {op} · {name} (unavailable)")
        for bench in benches:  # issue 13: an unknown id costs what another owner's id costs
            progress(f"latency · get not found · {bench.entry.name}")
            figures[bench.entry.name].update(_not_found_figures(bench))
    finally:
        for bench in benches:
            bench.target.close()
    rows = [
        {"store": entry.name, "op": op, **figures[entry.name][op]}
        for entry in entries
        for op in (*ALL_OPS, *NOT_FOUND_OPS)
        if op in figures[entry.name]
    ]
    return {
        "size": settings.latency_size,
        "owners": settings.owners,
        "timer_overhead_ns": overhead,
        "driver_overhead_us": drivers,
        "order": "each op on every store in turn, order rotated per op",
        "rows": rows,
    }




def _not_found_figures(bench: _Bench) -> dict[str, dict[str, Any]]:
    """
    Time ``get`` of an id that never existed and of another owner's id, interleaved.

    Only for stores that refuse a foreign owner (raise ``LookupError``); the
    foreign-access WARNING goes to a null handler meanwhile (it is written off
    the request path; what is timed is the caller's share).  Four alternating
    rounds of each; the figures merge them.
    """
    import logging
    import uuid

    target, data = bench.target, bench.data
    owners = data.owners
    if target.get is None or len(owners) < 2 or "get" not in bench.entry.supports:
        return {}
    after = {owner: owners[(i + 1) % len(owners)] for i, owner in enumerate(owners)}
    foreign = [(task_id, after[owner]) for task_id, owner in data.tasks[: bench.n]]
    unknown = [(str(uuid.UUID(int=bench.rng.getrandbits(128), version=4)), owner)
               for _, owner in foreign]  # fmt: skip

    def get(task_id: str, owner: str, _get: Any = target.get) -> None:
        try:  # noqa: SIM105 - cheaper than suppress(); both rows pay the same
            _get(task_id, owner)
        except LookupError:
            pass

    try:
        target.get(*foreign[0])
    except LookupError:
        pass
    else:
        return {}  # this store answers another owner's id: nothing to compare
    log = logging.getLogger("tasks_store")
    null, propagate = logging.NullHandler(), log.propagate
    log.addHandler(null)
    log.propagate = False
    runs: dict[str, list[dict[str, Any]]] = {op: [] for op in NOT_FOUND_OPS}
    try:
        for _ in range(4):
            for op, args in zip(NOT_FOUND_OPS, (unknown, foreign), strict=True):
                runs[op].append(bench.timer.run(get, args))
    finally:
        log.removeHandler(null)
        log.propagate = propagate
    out: dict[str, dict[str, Any]] = {}
    for op, parts in runs.items():
        merged = {key: statistics.median(p[key] for p in parts) for key in ("median", "p99")}
        merged["min"] = min(p["min"] for p in parts)
        merged["max"] = max(p["max"] for p in parts)
        merged["samples"] = sum(p.get("samples", 0) or 0 for p in parts)
        out[op] = merged
    return out


# -- 5. floor ------------------------------------------------------------------


class _Floor:
    """The least a thread-safe lookup can cost: a lock and a dict, no checks."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._lock = threading.Lock()
        self._d: dict[str, None] = dict.fromkeys(keys)

    def get(self, task_id: str, owner_id: str) -> None:
        with self._lock:
            return self._d[task_id]


def _loop_empty(seq: Sequence[tuple[str, str]]) -> int:
    pc = time.perf_counter_ns
    t0 = pc()
    for _tid, _owner in seq:
        pass
    return pc() - t0


def _loop_inline(seq: Sequence[tuple[str, str]], lock: Any, d: dict[str, None]) -> int:
    pc = time.perf_counter_ns
    t0 = pc()
    for tid, _owner in seq:
        with lock:
            d[tid]
    return pc() - t0


def _loop_call(seq: Sequence[tuple[str, str]], fn: Callable[[str, str], Any]) -> int:
    pc = time.perf_counter_ns
    t0 = pc()
    for tid, owner in seq:
        fn(tid, owner)
    return pc() - t0


def run_floor(
    entries: Sequence[StoreEntry], settings: Settings, progress: Progress
) -> dict[str, Any]:
    """
    ``get`` against the floor, in ns per lookup, each net of the bare loop.

    Per repeat, in turn: the bare ``for`` loop, ``with lock: d[key]`` inline,
    the same in a method (``_Floor.get``), and the store's ``get``, over the
    same seeded sequence of the store's own ids.
    """
    rows: list[dict[str, Any]] = []
    for entry in entries:
        progress(f"floor · {entry.name}")
        rng = random.Random(settings.seed)
        target, reason = _build(entry, False)
        if target is None:
            rows.append({"store": entry.name, "unavailable": reason})
            continue
        try:
            data = fill(target, settings.latency_size, settings, probe=False)
            get = target.get
            probe = [rng.choice(data.tasks) for _ in range(20)]
            for tid, owner in probe:  # warm-up, and an estimate of the cost
                get(tid, owner)
            est = max(1, _loop_call(probe, get)) / len(probe)
            per_repeat = settings.budget_s * 1e9 / settings.repeats
            n = int(min(settings.floor_lookups, max(50, per_repeat / est)))
            seq = [rng.choice(data.tasks) for _ in range(n)]
            floor = _Floor([tid for tid, _ in data.tasks])
            lock, d = floor._lock, floor._d
            figures: dict[str, list[float]] = {"inline": [], "method": [], "get": []}
            _loop_inline(seq, lock, d)  # warm-up
            _loop_call(seq[: min(n, 1000)], get)
            for _ in range(settings.repeats):
                with gc_paused():
                    empty = _loop_empty(seq)
                    figures["inline"].append((_loop_inline(seq, lock, d) - empty) / n)
                    figures["method"].append((_loop_call(seq, floor.get) - empty) / n)
                    figures["get"].append((_loop_call(seq, get) - empty) / n)
        finally:
            target.close()
        row: dict[str, Any] = {"store": entry.name, "lookups": n}
        for name, values in figures.items():
            row[name] = {
                "median": statistics.median(values),
                "min": min(values),
                "max": max(values),
            }
        row["get_over_inline"] = row["get"]["median"] / row["inline"]["median"]
        row["get_over_method"] = row["get"]["median"] / row["method"]["median"]
        rows.append(row)
    return {"size": settings.latency_size, "rows": rows}


# -- 3. size scaling -------------------------------------------------------------

#: The size section's rows, per store and size: the four ops measured on a
#: store filled over many owners, then ``cleanup_one_owner``.
SIZE_OPS = ("create", "get", "list", "cleanup_expired", "cleanup_one_owner")
#: TTL (ms) of the tasks ``cleanup_one_owner`` keeps: longer than it moves the clock.
KEEP_TTL_MS = 86_400_000
#: How far (ms) ``cleanup_one_owner`` moves the clock between two of its samples.
STEP_MS = 60_000


def run_sizes(
    entries: Sequence[StoreEntry], settings: Settings, progress: Progress
) -> dict[str, Any]:
    """
    Cost of create/get/list/cleanup as other owners' tasks grow; probe owner fixed.

    A store is built and filled at every size first; then each operation is
    timed at every size in turn, the order rotated from one operation to the
    next, so that a change in the machine's load does not fall on one size.
    (An ``exclusive`` store is measured one size after another.)  Then
    ``cleanup_one_owner`` (:func:`_cleanup_one_owner`), on stores of its own.
    """
    overhead = timer_overhead_ns()
    rows: list[dict[str, Any]] = []
    ops = ("get", "list", "create", "cleanup_expired")
    for entry in entries:
        groups = [list(settings.sizes)]
        if entry.exclusive:
            groups = [[size] for size in settings.sizes]
        for group in groups:
            benches: list[_Bench] = []
            figures: dict[int, dict[str, dict[str, Any]]] = {}
            try:
                for size in group:
                    target, reason = _build(entry, False)
                    if target is None:
                        figures[size] = {op: {"unavailable": reason} for op in ops}
                        for op in ops:
                            progress(f"size {size:,} · {entry.name} · {op} (unavailable)")
                        continue
                    figures[size] = {}
                    benches.append(
                        _Bench(
                            target, entry, fill(target, size, settings), size, settings,
                            settings.size_samples, overhead, on_probe=True,
                        )
                    )
                for index, op in enumerate(ops):
                    turn = index % max(1, len(benches))
                    for bench in benches[turn:] + benches[:turn]:
                        progress(f"size {bench.size:,} · {entry.name} · {op}")
                        figures[bench.size][op] = bench.measure(op)
            finally:
                for bench in benches:
                    bench.target.close()
            rows.extend(
                {"store": entry.name, "op": op, "size": size, **figures[size][op]}
                for size in group
                for op in ops
            )
            del benches
            gc.collect()
        for size in settings.sizes:
            progress(f"size {size:,} · {entry.name} · cleanup_one_owner")
            row = _cleanup_one_owner(entry, size, settings, overhead)
            rows.append({"store": entry.name, "op": "cleanup_one_owner", "size": size, **row})
            gc.collect()
    floors = []
    for size in settings.sizes:
        progress(f"size {size:,} · floor of cleanup_expired")
        floors.append({"size": size, **_cleanup_floor(size, settings)})
    return {
        "sizes": list(settings.sizes),
        "owners": settings.owners,
        "probe_tasks": settings.probe_tasks,
        "rows": rows,
        "cleanup_floor": floors,
    }


class _SetClock:
    """A clock that stands still until set: ``clock.now`` is the time, epoch seconds."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _cleanup_one_owner(
    entry: StoreEntry, size: int, settings: Settings, overhead_ns: float
) -> dict[str, Any]:
    """
    Time ``cleanup_expired`` removing 1% of *size* tasks, all of one owner.

    The owner holds *size* tasks plus, older than those, one batch of 1% of
    *size* per sample, batch *i* expiring ``(i + 1) * STEP_MS`` after
    creation.  Each sample moves the store's clock (it stands still
    otherwise, so the batches are the owner's oldest tasks) until the next
    batch is due, and times one ``cleanup_expired``: it removes the owner's
    oldest keys, the worst place for a store that keeps them in a plain list.
    """
    if entry.clocked is None or "cleanup_expired" not in entry.supports:
        return {"unsupported": "no cleanup_expired on an injected clock"}
    clock = _SetClock()
    try:
        target = entry.clocked(clock)
    except StoreUnavailable as exc:
        return {"unavailable": str(exc)}
    assert target.cleanup_expired is not None
    samples = settings.repeats * settings.cleanup_samples
    k = max(1, size // 100)
    start = clock.now
    pc = time.perf_counter_ns
    try:
        with gc_paused():
            for batch in range(samples):
                for _ in range(k):
                    target.load(PROBE_OWNER, (batch + 1) * STEP_MS)
            for _ in range(size):
                target.load(PROBE_OWNER, KEEP_TTL_MS)
        repeats: list[list[int]] = []
        removed: list[int] = []
        for r in range(settings.repeats):
            times: list[int] = []
            for c in range(settings.cleanup_samples):
                batch = r * settings.cleanup_samples + c
                clock.now = start + ((batch + 1) * STEP_MS + STEP_MS // 2) / 1000
                time.sleep(0.005)  # the pause the other cleanup rows are timed after
                with gc_paused():
                    t0 = pc()
                    count = target.cleanup_expired()
                    t1 = pc()
                times.append(t1 - t0)
                removed.append(count)
            repeats.append(times)
    finally:
        target.close()
    stats = _us(summary(repeats, overhead_ns))
    stats["removed"] = statistics.median(removed)
    stats["owner_tasks"] = size
    return stats


def _cleanup_floor(size: int, settings: Settings) -> dict[str, Any]:
    """
    The least removing 1% of *size* tasks can cost: ``del d[key]`` for known keys.

    A plain dict of *size* random ids, each holding its own small object;
    1% of the keys, known in advance, deleted under one lock after the same
    5 ms pause that ``cleanup_expired`` is measured after.  No store can
    remove those tasks for less, whatever its index of expiry times.
    """
    rng = random.Random(settings.seed)
    keys = [f"{rng.getrandbits(128):032x}" for _ in range(size)]
    d: dict[str, list[str]] = {key: [key] for key in keys}
    lock = threading.Lock()
    k = max(1, size // 100)
    repeats: list[list[int]] = []
    pc = time.perf_counter_ns
    for _ in range(settings.repeats):
        samples: list[int] = []
        for _ in range(settings.cleanup_samples):
            chosen = rng.sample(keys, k)
            time.sleep(0.005)
            with gc_paused():
                t0 = pc()
                with lock:
                    for key in chosen:
                        del d[key]
                t1 = pc()
            samples.append(t1 - t0)
            for key in chosen:
                d[key] = [key]
        repeats.append(samples)
    return _us(summary(repeats))


# -- 2. thread scaling -----------------------------------------------------------


Plan = list[tuple[int, str, str, Any]]


def _plan(rng: random.Random, data: Fill, length: int) -> Plan:
    """A thread's ops: 70% get, 20% set_variables, 10% create+complete."""
    plan: Plan = []
    for i in range(length):
        tid, owner = rng.choice(data.tasks)
        roll = rng.random()
        if roll < 0.7:
            plan.append((0, tid, owner, None))
        elif roll < 0.9:
            plan.append((1, tid, owner, {"step": i, "phase": "fetch", "done": False}))
        else:
            plan.append((2, tid, owner, None))
    return plan


def _mixed_run(target: Target, plans: list[Plan], seconds: float) -> float:
    """Run one thread per plan for *seconds*; return total store calls per second."""
    threads = len(plans)
    barrier = threading.Barrier(threads + 1)
    stop = [False]
    counts = [0] * threads
    errors: list[BaseException] = []
    get, write = target.get, target.mixed_write
    create, complete, task_id = target.create, target.complete_with_result, target.task_id
    assert write is not None

    def worker(index: int) -> None:
        plan = plans[index]
        mask = len(plan) - 1  # a power of two
        done = 0
        i = 0
        barrier.wait()
        try:
            while not stop[0]:
                kind, tid, owner, variables = plan[i & mask]
                i += 1
                if kind == 0:
                    get(tid, owner)
                    done += 1
                elif kind == 1:
                    write(tid, owner, variables)
                    done += 1
                else:
                    record = create(owner, "tools/call", None)
                    complete(task_id(record), owner, "completed", None, RESULT)
                    done += 2
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        counts[index] = done

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    with gc_paused():
        barrier.wait()
        t0 = time.perf_counter()
        time.sleep(seconds)
        stop[0] = True
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return sum(counts) / elapsed


def run_threads(
    entries: Sequence[StoreEntry], settings: Settings, progress: Progress
) -> dict[str, Any]:
    """Total ops/s of the mixed workload on one shared store, 1..16 threads."""
    rows: list[dict[str, Any]] = []
    plan_length = 4096
    for entry in entries:
        for threads in settings.thread_counts:
            progress(f"threads {threads} · {entry.name}")
            rates: list[float] = []
            reason = None
            for r in range(settings.thread_repeats):
                target, reason = _build(entry, True)
                if target is None:
                    break
                try:
                    data = fill(target, settings.thread_size, settings, probe=False)
                    plans = [
                        _plan(random.Random(settings.seed * 100 + r * 31 + i), data, plan_length)
                        for i in range(threads)
                    ]
                    rates.append(_mixed_run(target, plans, settings.thread_seconds))
                finally:
                    target.close()
            if reason is not None:
                rows.append({"store": entry.name, "threads": threads, "unavailable": reason})
                continue
            rows.append(
                {
                    "store": entry.name,
                    "threads": threads,
                    "ops_per_s": statistics.median(rates),
                    "min": min(rates),
                    "max": max(rates),
                    "repeats": len(rates),
                }
            )
    return {
        "size": settings.thread_size,
        "owners": settings.owners,
        "seconds": settings.thread_seconds,
        "mix": {"get": 0.7, "set_variables": 0.2, "create+complete": 0.1},
        "rows": rows,
    }


# -- 4. memory -------------------------------------------------------------------


def _held(ids: list[tuple[str, str]]) -> int:
    """Bytes of the benchmark's own list of (id, owner) pairs, not the store's."""
    return sys.getsizeof(ids) + sum(sys.getsizeof(pair) for pair in ids)


def run_memory(
    entries: Sequence[StoreEntry], settings: Settings, progress: Progress
) -> dict[str, Any]:
    """
    Bytes per task held (tracemalloc), empty variables then 1 KiB of them.

    A store whose calls are slow under tracemalloc (one that talks to a
    server) is measured over fewer tasks, as many as fit ``memory_budget_s``
    at the rate of its first 5,000; its row gives the count used.
    """
    rows: list[dict[str, Any]] = []
    n = settings.memory_size
    for entry in entries:
        progress(f"memory · {entry.name}")
        row: dict[str, Any] = {"store": entry.name, "tasks": n}
        gc.collect()
        ours = not tracemalloc.is_tracing()  # leave a caller's tracing running
        if ours:
            tracemalloc.start()
        target: Target | None = None
        try:
            target, reason = _build(entry, False)
            if target is None:
                row["unavailable"] = reason
                rows.append(row)
                continue
            gc.collect()
            base = tracemalloc.get_traced_memory()[0]
            began = time.perf_counter()
            first = min(n, 5000)
            data = fill(target, first, settings, probe=False)
            rate = (time.perf_counter() - began) / first  # s per task, fill alone
            if target.set_variables is not None:
                rate *= 2  # the 1 KiB pass costs about as much again
            count = int(min(n, max(first, settings.memory_budget_s / rate)))
            if count > first:
                data.tasks += fill(target, count - first, settings, probe=False).tasks
            row["tasks"] = count
            gc.collect()
            held = _held(data.tasks)
            row["empty"] = (tracemalloc.get_traced_memory()[0] - base - held) / count
            if target.set_variables is None:
                row["kib"] = None
                row["kib_note"] = target.notes.get("set_variables", "no variables")
            else:
                set_variables = target.set_variables
                with gc_paused():
                    for tid, owner in data.tasks:
                        set_variables(tid, owner, KIB_VARIABLES)
                gc.collect()
                row["kib"] = (tracemalloc.get_traced_memory()[0] - base - held) / count
        finally:
            if ours:
                tracemalloc.stop()
            if target is not None:
                target.close()
        rows.append(row)
        del data, target
        gc.collect()
    return {"tasks": n, "kib_bytes": 1024, "rows": rows}

"""
The ``redis`` section: :class:`RedisTaskStore` counted in round trips, its
thread scaling beside raw redis-py's, and several processes on one server.

- **Round trips**: each operation's median cost divided by the median cost
  of a raw redis-py ``PING`` on the same client, the two timed in turn,
  sample by sample, in the same run (so a change in the machine's load
  falls on both).  One round trip is the floor for anything remote; the
  issue's targets are ``get`` <= 1.3, ``create`` <= 1.5, ``update_status``,
  ``set_variables`` and ``complete_with_result`` <= 2.5, ``list`` of 50 <= 3.
- **Threads**: ops/s of 1..16 threads calling ``RedisTaskStore.get``, beside
  the same threads calling redis-py's ``HMGET`` of the same hash (the one
  command ``get`` sends): the two should scale alike.
- **Processes**: total ``get`` ops/s of 4 processes on the one server,
  against one process (each its own client and store, spawned).

``python -m benchmarks --sections redis``; its tables render under level-2
headings in ``results.md``, a part of their own beside the store sections.
"""

from __future__ import annotations

import multiprocessing
import random
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from .report import Table, _num
from .stores import BENCH_SECURITY, RESULT, StoreEntry
from .timing import gc_paused

__all__ = ["TARGETS", "build_tables", "run_redis", "steps"]

Progress = Callable[[str], None]

#: Round-trip targets (issue 12), per operation; None: shown, no target.
TARGETS: dict[str, float | None] = {
    "get": 1.3,
    "create": 1.5,
    "update_status": 2.5,
    "set_variables": 2.5,
    "complete_with_result": 2.5,
    "cancel": None,
    "list": 3.0,
}
#: Rows measured again with the store's record cache off (every read decodes).
COLD = ("get", "list")
PAGE = 50
OWNERS = 100
PROBE = "probe-owner"
SMALL_VARIABLES = {"step": 3, "phase": "fetch", "done": False}
PROCESSES = 4


def steps(quick: bool) -> int:
    """How many progress steps :func:`run_redis` reports."""
    return len(TARGETS) + len(COLD) + len(_thread_counts(quick)) + 2


def _thread_counts(quick: bool) -> tuple[int, ...]:
    return (1, 2, 4, 8, 16)


def _sizes(quick: bool) -> tuple[int, float, int]:
    """(samples per op, seconds per thread/process run, runs per figure)."""
    return (60, 0.05, 1) if quick else (2000, 1.0, 3)


class _Rig:
    """A filled store on the run's server, and the seeded choices the ops use."""

    def __init__(self, samples: int, seed: int) -> None:
        from tasks_store.store.redis import RedisTaskStore

        from .redis_local import redis_client

        self.client, self.url = redis_client()
        self.store = RedisTaskStore(self.client, security=BENCH_SECURITY)
        self.rng = random.Random(seed)
        owners = [f"owner-{i:03d}" for i in range(OWNERS)]
        create = self.store.create
        with gc_paused():
            self.tasks = [
                (create(owners[i % OWNERS], "tools/call", 3_600_000).task_id, owners[i % OWNERS])
                for i in range(2 * samples + 100)
            ]
            for _ in range(4 * PAGE):
                create(PROBE, "tools/call", 3_600_000)
        self.owners = owners

    def close(self) -> None:
        self.client.flushall()
        self.client.close()

    def argsets(self, op: str, n: int) -> tuple[Callable[..., Any], list[tuple[Any, ...]]]:
        """The store method timed for *op* and *n* argument tuples for it."""
        store, rng, tasks = self.store, self.rng, self.tasks
        fresh = tasks[:n]  # each moved once: working -> input_required -> completed
        if op == "get":
            return store.get, [rng.choice(tasks) for _ in range(n)]
        if op == "create":
            return store.create, [(self.owners[i % OWNERS], "tools/call", 3_600_000)
                                  for i in range(n)]  # fmt: skip
        if op == "update_status":
            return store.update_status, [(t, o, "input_required") for t, o in fresh]
        if op == "set_variables":
            return store.set_variables, [(*rng.choice(tasks), SMALL_VARIABLES) for _ in range(n)]
        if op == "complete_with_result":
            return store.complete_with_result, [(t, o, "completed", None, RESULT) for t, o in fresh]
        if op == "cancel":
            return store.cancel, [(t, o) for t, o in tasks[n : 2 * n]]
        if op == "list":
            cursors: list[str | None] = [None]
            for _ in range(3):
                cursors.append(store.list(PROBE, cursor=cursors[-1], limit=PAGE).next_cursor)

            def page(cursor: str | None) -> Any:
                return store.list(PROBE, cursor=cursor, limit=PAGE)

            return page, [(cursors[i % 4],) for i in range(n)]
        raise ValueError(op)


def _interleaved(
    ping: Callable[[], Any], fn: Callable[..., Any], argsets: Sequence[tuple[Any, ...]]
) -> tuple[list[int], list[int]]:
    """Time ``ping()`` then ``fn(*args)``, in turn, for every argument tuple; ns each."""
    pc = time.perf_counter_ns
    pings: list[int] = []
    ops: list[int] = []
    for _ in range(min(50, len(argsets) // 10)):  # warm-up, untimed
        ping()
    with gc_paused():
        for args in argsets:
            t0 = pc()
            ping()
            t1 = pc()
            fn(*args)
            t2 = pc()
            pings.append(t1 - t0)
            ops.append(t2 - t1)
    return pings, ops


def _server_us(client: Any) -> float:
    """µs the server spent in every command but PING since the last CONFIG RESETSTAT."""
    stats = client.info("commandstats")
    return float(
        sum(v["usec"] for k, v in stats.items() if k not in ("cmdstat_ping", "cmdstat_info"))
    )


def _round_trips(rig: _Rig, samples: int, progress: Progress) -> list[dict[str, Any]]:
    rows = []
    plan = [(op, target, False) for op, target in TARGETS.items()]
    plan += [(op, None, True) for op in COLD]
    for op, target, cold in plan:
        progress(f"redis · round trips · {op}{' (cold)' if cold else ''}")
        fn, argsets = rig.argsets(op, samples)
        size = rig.store._cache_size
        if cold:  # every read decodes its records, as a process that never saw them
            rig.store._cache_size = 0
            rig.store._cache.clear()
        try:
            rig.client.config_resetstat()
            pings, ops = _interleaved(rig.client.ping, fn, argsets)
            server_us = _server_us(rig.client) / len(ops)
        finally:
            rig.store._cache_size = size
        ping_us = statistics.median(pings) / 1000
        op_us = statistics.median(ops) / 1000
        ratio = op_us / ping_us
        rows.append(
            {
                "op": op,
                "cold": cold,
                "median_us": op_us,
                "ping_us": ping_us,
                "server_us": server_us,
                "round_trips": ratio,
                "p90_round_trips": sorted(o / p for o, p in zip(ops, pings, strict=True))[
                    int(0.9 * len(ops))
                ],
                "target": target,
                "met": None if target is None else ratio <= target,
                "samples": len(ops),
            }
        )
    return rows


def _rate(calls: Sequence[Callable[[], Any]], seconds: float) -> float:
    """Run one thread per call, each repeating it for *seconds*; return total calls/s."""
    barrier = threading.Barrier(len(calls) + 1)
    stop = [False]
    counts = [0] * len(calls)
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        call = calls[index]
        done = 0
        barrier.wait()
        try:
            while not stop[0]:
                call()
                done += 1
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        counts[index] = done

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    barrier.wait()
    t0 = time.perf_counter()
    time.sleep(seconds)
    stop[0] = True
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return sum(counts) / elapsed


def _threads(rig: _Rig, quick: bool, progress: Progress) -> list[dict[str, Any]]:
    from tasks_store.store.redis import FIELDS

    _, seconds, runs = _sizes(quick)
    rows = []
    for threads in _thread_counts(quick):
        progress(f"redis · threads {threads}")
        picks = [rig.tasks[(i * 37) % len(rig.tasks)] for i in range(threads)]
        keys = [rig.store._keys(owner, task_id).task for task_id, owner in picks]
        raw = [lambda key=key: rig.client.hmget(key, FIELDS) for key in keys]
        ours = [lambda pick=pick: rig.store.get(*pick) for pick in picks]
        raw_rates, store_rates = [], []
        for _ in range(runs):  # in turn, so that a change of load falls on both
            raw_rates.append(_rate(raw, seconds))
            store_rates.append(_rate(ours, seconds))
        rows.append(
            {
                "threads": threads,
                "raw_ops_per_s": statistics.median(raw_rates),
                "store_ops_per_s": statistics.median(store_rates),
            }
        )
    return rows


def process_worker(
    url: str, picks: list[tuple[str, str]], seconds: float, barrier: Any, out: Any
) -> None:
    """One process of the processes row: its own client and store, ``get`` for *seconds*."""
    import redis

    from tasks_store.store.redis import RedisTaskStore

    client = redis.Redis.from_url(url)
    store = RedisTaskStore(client, security=BENCH_SECURITY)
    get = store.get
    barrier.wait()
    done, i, n = 0, 0, len(picks)
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop:
        get(*picks[i % n])
        i += 1
        done += 1
    out.put(done / seconds)
    client.close()


def _processes(rig: _Rig, quick: bool, progress: Progress) -> list[dict[str, Any]]:
    _, seconds, runs = _sizes(quick)
    seconds = max(seconds, 0.3)  # a spawned process needs a moment to warm up
    ctx = multiprocessing.get_context("spawn")
    rows = []
    for procs in (1, PROCESSES):
        progress(f"redis · {procs} process{'es' if procs > 1 else ''}")
        rates = []
        for _ in range(runs):
            barrier = ctx.Barrier(procs)
            out = ctx.Queue()
            workers = [
                ctx.Process(
                    target=process_worker,
                    args=(rig.url, rig.tasks[p::procs][:200], seconds, barrier, out),
                )
                for p in range(procs)
            ]
            for w in workers:
                w.start()
            rates.append(sum(out.get(timeout=120) for _ in workers))
            for w in workers:
                w.join(30)
        rows.append({"processes": procs, "ops_per_s": statistics.median(rates)})
    return rows


def run_redis(
    entries: Sequence[StoreEntry], settings: Any, progress: Progress
) -> dict[str, Any]:
    """Run the section (see the module docstring); *entries* are not used."""
    from .redis_local import RedisUnavailable

    quick = bool(settings.quick)
    samples, seconds, runs = _sizes(quick)
    try:
        rig = _Rig(samples, settings.seed)
    except RedisUnavailable as exc:
        for _ in range(steps(quick)):
            progress("redis (unavailable)")
        return {"unavailable": str(exc)}
    try:
        round_trips = _round_trips(rig, samples, progress)
        threads = _threads(rig, quick, progress)
        processes = _processes(rig, quick, progress)
    finally:
        rig.close()
    return {
        "samples": samples,
        "seconds": seconds,
        "runs": runs,
        "tasks": len(rig.tasks),
        "round_trips": round_trips,
        "threads": threads,
        "processes": processes,
    }


# -- tables ------------------------------------------------------------------------


class RedisTable(Table):
    """A table of the redis section: Markdown under a level-2 heading."""

    def markdown(self) -> str:
        text = super().markdown()
        return "## " + text[len("### ") :] if text.startswith("### ") else text


def build_tables(results: dict[str, Any]) -> list[Table]:
    """The redis section's tables, if the results hold it."""
    section = results.get("redis")
    if not section:
        return []
    if "unavailable" in section:
        return [RedisTable("redis", "Redis round trips", ["status"], [[section["unavailable"]]])]
    verdict = {True: "met", False: "MISSED", None: "-"}
    rows = [
        [
            row["op"]
            + (f" (page of {PAGE})" if row["op"] == "list" else "")
            + (", records not cached" if row.get("cold") else ""),
            _num(row["median_us"]),
            _num(row.get("server_us")),
            _num(row["ping_us"]),
            f"{row['round_trips']:.2f}",
            "-" if row["target"] is None else f"<= {row['target']}",
            verdict[row["met"]],
        ]
        for row in section["round_trips"]
    ]
    trips = RedisTable(
        "redis",
        "Redis round trips (median op / median PING, interleaved)",
        ["op", "store µs", "of it in Redis µs", "PING µs", "round trips", "target", "verdict"],
        rows,
        [
            f"RedisTaskStore on a local redis-server (loopback), {section['tasks']:,} tasks; "
            f"{section['samples']:,} samples per op, each op call timed right after a raw "
            "redis-py PING on the same client; round trips = median op / median PING.",
            "'of it in Redis': the server's own time per call (INFO commandstats, the "
            "op's commands and scripts, PING excluded).",
            "The store decodes a record once per version and hands it out again while the "
            "server's version is unchanged (4,096 small records); the rows 'records not "
            "cached' decode every record, as a process that never read those tasks.",
        ],
    )
    one = section["threads"][0]
    thread_rows = [
        [
            str(row["threads"]),
            _num(row["raw_ops_per_s"]),
            f"{row['raw_ops_per_s'] / one['raw_ops_per_s']:.2f}x",
            _num(row["store_ops_per_s"]),
            f"{row['store_ops_per_s'] / one['store_ops_per_s']:.2f}x",
            f"{row['store_ops_per_s'] / row['raw_ops_per_s']:.2f}",
        ]
        for row in section["threads"]
    ]
    threads = RedisTable(
        "redis-threads",
        "Redis thread scaling (ops/s, all threads)",
        ["threads", "redis-py HMGET", "x 1 thread", "RedisTaskStore.get", "x 1 thread", "ratio"],
        thread_rows,
        [
            f"One client, one store; each thread repeats its call for {section['seconds']} s "
            f"(median of {section['runs']} runs, raw and store in turn). HMGET is the one "
            "command get sends.",
        ],
    )
    single = section["processes"][0]["ops_per_s"]
    process_rows = [
        [str(row["processes"]), _num(row["ops_per_s"]), f"{row['ops_per_s'] / single:.2f}x"]
        for row in section["processes"]
    ]
    processes = RedisTable(
        "redis-processes",
        "Redis processes on one server (RedisTaskStore.get, total ops/s)",
        ["processes", "ops/s", "x one process"],
        process_rows,
        ["Each process spawned with its own client and store, one thread each."],
    )
    return [trips, threads, processes]

"""
Section ``http``: the server end to end, side by side with the peers.

Each server of :mod:`benchmarks.http_servers` runs in its own process on
127.0.0.1 and is driven by :mod:`benchmarks.loadgen`, run in a process of its
own (``python -m benchmarks.loadgen``; several for 64 clients), the same way
for every server.  Per server, in this order:

1. ``get``, ``create`` and ``mixed`` at each client count (1, 16, 64), each
   run ``repeats`` times (3) after one setup; requests/s and p50/p99;
2. ``poll`` and ``block``: one task at a time per client, create -> result;
3. memory: a fresh server process, RSS of its process tree before and after
   ``memory_tasks`` (10,000) tasks were created and completed, per 10k tasks.

The floor rows (bare WSGI) run ``get`` only.  A server that cannot be
installed or started gets an ``unavailable`` row and the run goes on.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .http_servers import (
    PEERS,
    REPO,
    Running,
    ServerSpec,
    ServerUnavailable,
    floor,
    ours,
    redis_url,
    rss_bytes,
)

__all__ = ["FULL", "QUICK", "HttpSettings", "run_http", "specs", "steps"]

Progress = Callable[[str], None]
POLL_MS = 100


@dataclass(frozen=True)
class HttpSettings:
    """How long and how big every HTTP measurement is."""

    quick: bool
    clients: tuple[int, ...]
    repeats: int
    seconds: float
    latency_clients: tuple[int, ...]
    latency_seconds: float
    latency_ms: int
    mixed_ms: int
    memory_tasks: int
    memory_budget_s: float
    tasks_per_client: int
    poll_ms: int
    #: load-generator processes per client count (the rest: one)
    procs: tuple[tuple[int, int], ...]


FULL = HttpSettings(
    quick=False,
    clients=(1, 16, 64),
    repeats=3,
    seconds=2.0,
    latency_clients=(1, 16),
    latency_seconds=2.0,
    latency_ms=250,
    mixed_ms=5000,
    memory_tasks=10_000,
    memory_budget_s=40.0,
    tasks_per_client=4,
    poll_ms=POLL_MS,
    procs=((64, 2),),
)

QUICK = HttpSettings(
    quick=True,
    clients=(16,),
    repeats=1,
    seconds=1.0,
    latency_clients=(1,),
    latency_seconds=1.0,
    latency_ms=100,
    mixed_ms=5000,
    memory_tasks=500,
    memory_budget_s=6.0,
    tasks_per_client=2,
    poll_ms=POLL_MS,
    procs=(),
)

WORKLOADS = ("get", "create", "mixed")


def specs(quick: bool) -> list[ServerSpec]:
    """The servers of a run, in the order the tables show them."""
    if quick:
        mine = [ours("waitress", "memory"), ours("gunicorn", "redis")]
        floors = [floor("waitress")]
    else:
        mine = [
            ours("waitress", "memory"),
            ours("gunicorn", "memory"),
            ours("granian", "memory"),
            ours("gunicorn", "memory", wire="2026"),
            ours("gunicorn", "redis"),
            ours("gunicorn", "redis", workers=4),
            ours("granian", "redis"),
            ours("granian", "redis", workers=4),
        ]
        floors = [
            floor("waitress"),
            floor("gunicorn"),
            floor("granian"),
            floor("gunicorn", 4),
            floor("granian", 4),
        ]
    return [*mine, *floors, *PEERS]


def steps(quick: bool) -> int:
    """Progress steps of the section (one per server and phase)."""
    out = 0
    for spec in specs(quick):
        out += 1 if spec.kind == "floor" else 3
    return out + 1


def _loadgen(job: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run one load-generator job in its own process; return its JSON."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.loadgen"], input=json.dumps(job), env=env,
            cwd=REPO, capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"the load generator took more than {timeout:.0f} s"}
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        return {"error": f"the load generator failed ({done.returncode}): {tail}"}
    return dict(json.loads(done.stdout))


def _spread(values: Sequence[float | None]) -> dict[str, Any]:
    got = [v for v in values if v is not None]
    if not got:
        return {"median": None, "min": None, "max": None}
    return {"median": statistics.median(got), "min": min(got), "max": max(got)}


def _procs(settings: HttpSettings, clients: int) -> int:
    return dict(settings.procs).get(clients, 1)


def _job(running: Running, settings: HttpSettings, **kw: Any) -> dict[str, Any]:
    job = {
        "port": running.port,
        "wire": running.spec.wire,
        "tool": "work",
        "seconds": settings.seconds,
        "tasks_per_client": settings.tasks_per_client,
        "mixed_ms": settings.mixed_ms,
        "latency_ms": settings.latency_ms,
        "seed": 20251125,
    }
    job.update(kw)
    return job


def _measure(
    running: Running, settings: HttpSettings, workload: str, clients: int
) -> dict[str, Any]:
    """``repeats`` runs of *workload* at *clients*; one row of medians and ranges."""
    runs = []
    for r in range(settings.repeats):
        job = _job(running, settings, workload=workload, clients=clients,
                   procs=_procs(settings, clients), seed=20251125 + r)
        runs.append(_loadgen(job, timeout=settings.seconds + 240))
        if "error" in runs[-1] or not running.alive():
            break
    row: dict[str, Any] = {"workload": workload, "clients": clients}
    failed = [run for run in runs if "error" in run]
    if failed or not running.alive():
        reason = failed[0]["error"] if failed else f"server died: {running.log_tail()}"
        row["unavailable"] = reason
        return row
    row["repeats"] = len(runs)
    row["rps"] = _spread([run["requests_per_s"] for run in runs])
    ops: dict[str, Any] = {}
    for op in sorted({op for run in runs for op in run["ops"]}):
        ops[op] = {
            "per_s": _spread([run["ops"].get(op, {}).get("per_s") for run in runs]),
            "p50_ms": _spread([run["ops"].get(op, {}).get("p50_ms") for run in runs]),
            "p99_ms": _spread([run["ops"].get(op, {}).get("p99_ms") for run in runs]),
        }
    row["ops"] = ops
    errors: dict[str, int] = {}
    for run in runs:
        for op, n in run["errors"].items():
            errors[op] = errors.get(op, 0) + n
    row["errors"] = errors
    samples = [s for run in runs for s in run.get("error_samples", [])]
    if samples:
        row["error_samples"] = samples[:3]
    row["loadgen_cpu"] = max(run["loadgen_cpu"] for run in runs)
    row["loadgen_cpu_max_proc"] = max(run["loadgen_cpu_max_proc"] for run in runs)
    row["procs"] = runs[0]["procs"]
    return row


def _latency(running: Running, settings: HttpSettings, mode: str, clients: int) -> dict[str, Any]:
    row: dict[str, Any] = {"mode": mode, "clients": clients}
    if mode == "block" and running.spec.blocking is not None:
        row["unsupported"] = running.spec.blocking
        return row
    runs = []
    for r in range(settings.repeats):
        job = _job(running, settings, workload=mode, clients=clients,
                   seconds=settings.latency_seconds, seed=20251125 + r)
        runs.append(_loadgen(job, timeout=settings.latency_seconds + 240))
        if "error" in runs[-1]:
            row["unavailable"] = runs[-1]["error"]
            return row
    row["tasks"] = sum(run.get("tasks", 0) for run in runs)
    if row["tasks"] == 0:
        samples = [s for run in runs for s in run.get("error_samples", [])]
        row["unavailable"] = samples[0] if samples else "no task finished"
        return row
    row["p50_ms"] = _spread([run["ops"].get(mode, {}).get("p50_ms") for run in runs])
    row["p99_ms"] = _spread([run["ops"].get(mode, {}).get("p99_ms") for run in runs])
    sent = sum(run["requests_per_s"] for run in runs) * settings.latency_seconds
    row["requests_per_task"] = sent / row["tasks"]
    errors: dict[str, int] = {}
    for run in runs:
        for op, n in run["errors"].items():
            errors[op] = errors.get(op, 0) + n
    row["errors"] = errors
    return row


def _memory(spec: ServerSpec, settings: HttpSettings, env: dict[str, str],
            redis_client: Any) -> dict[str, Any]:
    """RSS per 10k live tasks on a fresh server process."""
    row: dict[str, Any] = {"config": spec.name}
    try:
        running = spec.start(env, tag="-memory")
    except ServerUnavailable as exc:
        row["unavailable"] = str(exc)
        return row
    try:
        warm = _job(running, settings, workload="fill", clients=4, fill=40, seconds=30.0)
        _loadgen(warm, timeout=120)
        time.sleep(0.3)
        before = rss_bytes(running.process.pid)
        redis_before = _redis_used(redis_client) if spec.store == "redis" else None
        job = _job(running, settings, workload="fill", clients=16, fill=settings.memory_tasks,
                   seconds=settings.memory_budget_s)
        out = _loadgen(job, timeout=settings.memory_budget_s + 240)
        if "error" in out:
            row["unavailable"] = out["error"]
            return row
        time.sleep(0.5)
        after = rss_bytes(running.process.pid)
        created = int(out["created"])
        row["tasks"] = created
        row["rss_before_mb"] = before / 2**20
        row["rss_after_mb"] = after / 2**20
        row["per_10k_mb"] = (after - before) / 2**20 * 10_000 / max(1, created)
        if redis_before is not None:
            row["redis_per_10k_mb"] = (
                (_redis_used(redis_client) - redis_before) / 2**20 * 10_000 / max(1, created)
            )
        row["fill_per_s"] = created / out["elapsed_s"] if out["elapsed_s"] else None
    finally:
        running.stop()
    return row


def _redis_used(client: Any) -> int:
    return int(client.info("memory")["used_memory"])


def _uptime() -> str:
    try:
        with open("/proc/loadavg") as handle:
            return " ".join(handle.read().split()[:3])
    except OSError:
        return "n/a"


def run_config(
    spec: ServerSpec, settings: HttpSettings, progress: Progress, redis: tuple[str, Any] | None
) -> dict[str, Any]:
    """Every measurement of one server; its config row, rows, latency rows, memory row."""
    config: dict[str, Any] = {
        "name": spec.name, "kind": spec.kind, "server": spec.server,
        "processes": spec.processes, "store": spec.store, "wire": spec.wire,
        "about": spec.about,
    }
    out: dict[str, Any] = {"config": config, "rows": [], "latency": [], "memory": None}
    env = {"TASKS_STORE_BENCH_STORE": spec.store if spec.kind == "ours" else "memory",
           "TASKS_STORE_BENCH_POLL_MS": str(settings.poll_ms)}
    redis_client = None
    phases = 1 if spec.kind == "floor" else 3
    try:
        if spec.kind == "ours" and spec.store == "redis":
            if redis is None:
                redis = redis_url()
            env["TASKS_STORE_BENCH_REDIS"] = redis[0]
            redis_client = redis[1]
            redis_client.flushall()
        running = spec.start(env)
    except ServerUnavailable as exc:
        config["unavailable"] = str(exc)
        for _ in range(phases):
            progress(f"http · {spec.name} (unavailable)")
        return out
    config["versions"] = spec.versions()
    try:
        warm = _job(running, settings, workload="get", clients=16, seconds=0.5,
                    tasks_per_client=1)
        _loadgen(warm, timeout=180)
        progress(f"http · {spec.name} · throughput")
        workloads = ("get",) if spec.kind == "floor" else WORKLOADS
        for workload in workloads:
            for clients in settings.clients:
                out["rows"].append(_measure(running, settings, workload, clients))
        if spec.kind != "floor":
            progress(f"http · {spec.name} · create -> result")
            for mode in ("poll", "block"):
                for clients in settings.latency_clients:
                    out["latency"].append(_latency(running, settings, mode, clients))
    finally:
        running.stop()
    if spec.kind != "floor":
        progress(f"http · {spec.name} · memory")
        if spec.processes == 1:
            if redis_client is not None:
                redis_client.flushall()
            out["memory"] = _memory(spec, settings, env, redis_client)
        else:
            out["memory"] = {"config": spec.name, "unsupported": "several processes"}
    return out


def run_http(entries: Sequence[Any], settings: Any, progress: Progress) -> dict[str, Any]:
    """
    The section runner (the store entries are not used: the servers are
    :func:`specs`); ``settings.quick`` picks :data:`QUICK` or :data:`FULL`.
    """
    hs = QUICK if getattr(settings, "quick", False) else FULL
    return run_servers(specs(hs.quick), hs, progress)


def run_servers(
    servers: Sequence[ServerSpec], hs: HttpSettings, progress: Progress
) -> dict[str, Any]:
    """Measure *servers* with *hs*; the section's results dict."""
    load_before = _uptime()
    began = time.monotonic()
    configs, rows, latency, memory = [], [], [], []
    redis: tuple[str, Any] | None = None
    for spec in servers:
        if spec.kind == "ours" and spec.store == "redis" and redis is None:
            try:
                redis = redis_url()
            except ServerUnavailable:
                redis = None
        got = run_config(spec, hs, progress, redis)
        configs.append(got["config"])
        rows += [{"config": spec.name, **row} for row in got["rows"]]
        latency += [{"config": spec.name, **row} for row in got["latency"]]
        if got["memory"] is not None:
            memory.append(got["memory"])
    progress("http · done")
    from .http_report import evaluate_targets

    section: dict[str, Any] = {
        "settings": asdict(hs),
        "configs": configs,
        "rows": rows,
        "latency": latency,
        "memory": memory,
        "load": {"before": load_before, "after": _uptime()},
        "elapsed_s": time.monotonic() - began,
    }
    section["targets"] = evaluate_targets(section)
    return section

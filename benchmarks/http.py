"""
Section ``http``: the server end to end, side by side with the peers.

Each server of :mod:`benchmarks.http_servers` runs in its own process on
127.0.0.1 and is driven by :mod:`benchmarks.loadgen`, run in a process of its
own (``python -m benchmarks.loadgen``; several for 64 clients), the same way
for every server.  All servers are started first and kept running; then, for
each of ``repeats`` (3) repeats, every measurement runs on every server in
turn (the servers' order rotated per repeat, so a change in the machine's
load falls on all alike):

1. ``get``, ``create`` and ``mixed`` at each client count (1, 16, 64):
   requests/s and p50/p99; the row is the median of the repeats, with min-max;
2. ``poll`` and ``block``: one task at a time per client, create -> result.

Then memory: a fresh process of each server in turn, RSS of its process tree
before and after ``memory_tasks`` (10,000) tasks were created and completed,
per 10k tasks.

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
    """Progress steps of the section: start, each repeat's phases, each memory figure, done."""
    settings = QUICK if quick else FULL
    mcp = sum(1 for spec in specs(quick) if spec.kind != "floor")
    return 1 + settings.repeats * (len(WORKLOADS) + 1) + mcp + 1


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


def _one_run(running: Running, settings: HttpSettings, workload: str, clients: int,
             repeat: int) -> dict[str, Any]:
    """One load-generator run of *workload* at *clients* against *running*."""
    if workload in ("poll", "block"):
        job = _job(running, settings, workload=workload, clients=clients,
                   seconds=settings.latency_seconds, seed=20251125 + repeat)
        return _loadgen(job, timeout=settings.latency_seconds + 240)
    job = _job(running, settings, workload=workload, clients=clients,
               procs=_procs(settings, clients), seed=20251125 + repeat)
    out = _loadgen(job, timeout=settings.seconds + 240)
    if "error" not in out and not running.alive():
        out = {"error": f"server died: {running.log_tail()}"}
    return out


def _errors(runs: Sequence[dict[str, Any]]) -> dict[str, int]:
    errors: dict[str, int] = {}
    for run in runs:
        for op, n in run.get("errors", {}).items():
            errors[op] = errors.get(op, 0) + n
    return errors


def _aggregate(workload: str, clients: int, runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One row of medians and ranges from the repeats of *workload* at *clients*."""
    row: dict[str, Any] = {"workload": workload, "clients": clients}
    failed = [run for run in runs if "error" in run]
    if failed or not runs:
        row["unavailable"] = failed[0]["error"] if failed else "not run"
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
    row["errors"] = _errors(runs)
    samples = [s for run in runs for s in run.get("error_samples", [])]
    if samples:
        row["error_samples"] = samples[:3]
    row["loadgen_cpu"] = max(run["loadgen_cpu"] for run in runs)
    row["loadgen_cpu_max_proc"] = max(run["loadgen_cpu_max_proc"] for run in runs)
    row["procs"] = runs[0]["procs"]
    return row


def _aggregate_latency(mode: str, clients: int, runs: Sequence[dict[str, Any]],
                       settings: HttpSettings) -> dict[str, Any]:
    row: dict[str, Any] = {"mode": mode, "clients": clients}
    failed = [run for run in runs if "error" in run]
    if failed or not runs:
        row["unavailable"] = failed[0]["error"] if failed else "not run"
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
    row["errors"] = _errors(runs)
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


def _config_row(spec: ServerSpec) -> dict[str, Any]:
    return {
        "name": spec.name, "kind": spec.kind, "server": spec.server,
        "processes": spec.processes, "store": spec.store, "wire": spec.wire,
        "about": spec.about,
    }


def _env(spec: ServerSpec, settings: HttpSettings, redis: tuple[str, Any] | None) -> dict[str, str]:
    env = {"TASKS_STORE_BENCH_STORE": spec.store if spec.kind == "ours" else "memory",
           "TASKS_STORE_BENCH_POLL_MS": str(settings.poll_ms)}
    if spec.kind == "ours" and spec.store == "redis":
        if redis is None:
            raise ServerUnavailable("no redis-server for RedisTaskStore")
        env["TASKS_STORE_BENCH_REDIS"] = redis[0]
    return env


def run_http(entries: Sequence[Any], settings: Any, progress: Progress) -> dict[str, Any]:
    """
    The section runner (the store entries are not used: the servers are
    :func:`specs`); ``settings.quick`` picks :data:`QUICK` or :data:`FULL`.
    """
    hs = QUICK if getattr(settings, "quick", False) else FULL
    return run_servers(specs(hs.quick), hs, progress)


#: Set to 1 to let ``--quick`` install peers that are not in the cache yet.
INSTALL_ENV = "TASKS_STORE_BENCH_INSTALL"


def _install_all(servers: Sequence[ServerSpec], quick: bool) -> dict[str, str]:
    """
    Install every server's packages (the peers' venvs, npm) at once; name -> why not.

    The quick mode installs nothing (a first install takes minutes): a peer
    not in the cache yet is reported unavailable, with how to install it,
    unless ``TASKS_STORE_BENCH_INSTALL=1``.
    """
    from concurrent.futures import ThreadPoolExecutor

    def one(spec: ServerSpec) -> str | None:
        if quick and os.environ.get(INSTALL_ENV) != "1" and not spec.installed():
            return (
                "not installed yet, and --quick installs nothing: a full run installs it, "
                f"or {INSTALL_ENV}=1 python -m benchmarks --quick"
            )
        try:
            spec.prepare()
        except ServerUnavailable as exc:
            return str(exc)
        return None

    with ThreadPoolExecutor(max_workers=4) as pool:
        reasons = list(pool.map(one, servers))
    return {spec.name: why for spec, why in zip(servers, reasons, strict=True) if why}


def run_servers(
    servers: Sequence[ServerSpec], hs: HttpSettings, progress: Progress
) -> dict[str, Any]:
    """
    Measure *servers* with *hs*; the section's results dict.

    Every server is started first and kept running; then each measurement
    (a workload at a client count) runs on every server in turn, one repeat
    after another, the servers' order rotated from one repeat to the next, so
    that a change in the machine's load falls on all of them alike.  Memory
    is measured last, on a fresh process of each server, one at a time.
    """
    load_before = _uptime()
    began = time.monotonic()
    redis: tuple[str, Any] | None = None
    redis_reason = "no redis-server"
    if any(s.kind == "ours" and s.store == "redis" for s in servers):
        try:
            redis = redis_url()
            redis[1].flushall()
        except ServerUnavailable as exc:
            redis_reason = str(exc)
            redis = None
    configs = [_config_row(spec) for spec in servers]
    missing = _install_all(servers, hs.quick)
    running: dict[str, Running] = {}
    for spec, config in zip(servers, configs, strict=True):
        try:
            if spec.name in missing:
                raise ServerUnavailable(missing[spec.name])
            if spec.kind == "ours" and spec.store == "redis" and redis is None:
                raise ServerUnavailable(redis_reason)
            running[spec.name] = spec.start(_env(spec, hs, redis))
        except ServerUnavailable as exc:
            config["unavailable"] = str(exc)
            continue
        config["versions"] = spec.versions()
    progress(f"http · {len(running)} of {len(servers)} servers started")
    runs: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    try:
        for server in running.values():  # warm-up, untimed
            _loadgen(_job(server, hs, workload="get", clients=16, seconds=0.5,
                          tasks_per_client=1), timeout=180)
        order = list(running)
        for repeat in range(hs.repeats):
            turn = repeat % max(1, len(order))
            rotated = order[turn:] + order[:turn]
            for workload in (*WORKLOADS, "latency"):
                progress(f"http · repeat {repeat + 1} · {workload}")
                for name in rotated:
                    server = running[name]
                    if workload != "get" and server.spec.kind == "floor":
                        continue
                    if workload == "latency":
                        cases = [(mode, c) for mode in ("poll", "block")
                                 for c in hs.latency_clients]
                    else:
                        cases = [(workload, c) for c in hs.clients]
                    for kind, clients in cases:
                        if kind == "block" and server.spec.blocking is not None:
                            continue
                        key = (name, kind, clients)
                        done = runs.setdefault(key, [])
                        if done and "error" in done[-1]:
                            continue  # failed once: not again
                        done.append(_one_run(server, hs, kind, clients, repeat))
    finally:
        for server in running.values():
            server.stop()
    rows: list[dict[str, Any]] = []
    latency: list[dict[str, Any]] = []
    memory: list[dict[str, Any]] = []
    for spec in servers:
        if spec.name not in running:
            continue
        for workload in ("get",) if spec.kind == "floor" else WORKLOADS:
            for clients in hs.clients:
                got = runs.get((spec.name, workload, clients), [])
                rows.append({"config": spec.name, **_aggregate(workload, clients, got)})
        if spec.kind == "floor":
            continue
        for mode in ("poll", "block"):
            for clients in hs.latency_clients:
                if mode == "block" and spec.blocking is not None:
                    latency.append({"config": spec.name, "mode": mode, "clients": clients,
                                    "unsupported": spec.blocking})
                    continue
                got = runs.get((spec.name, mode, clients), [])
                latency.append({"config": spec.name,
                                **_aggregate_latency(mode, clients, got, hs)})
    for spec in servers:
        if spec.kind == "floor":
            continue
        progress(f"http · memory · {spec.name}")
        if spec.name not in running:
            continue
        if spec.processes > 1:
            memory.append({"config": spec.name, "unsupported": "several processes"})
            continue
        redis_client = redis[1] if redis is not None and spec.store == "redis" else None
        if redis_client is not None:
            redis_client.flushall()
        memory.append(_memory(spec, hs, _env(spec, hs, redis), redis_client))
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
        "order": "all servers running; each measurement on every server in turn, "
        "repeat after repeat, the order rotated per repeat; memory last, one fresh "
        "process at a time",
    }
    section["targets"] = evaluate_targets(section)
    return section

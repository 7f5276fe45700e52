"""
The tasks_store benchmark suite: ``python -m benchmarks [--quick] [--out DIR]``.

It measures, in one process and one run, ``tasks_store.InMemoryTaskStore``
against :class:`benchmarks.global_lock.GlobalLockStore` (one lock, scans) and
the MCP Python SDK's own ``InMemoryTaskStore``: per-operation latency, thread
scaling, size scaling, memory per task, and ``get`` against the floor of a
locked dict lookup.  It prints a table per section and writes
``results.json``, ``results.md`` and PNG plots to ``--out``.  The stores
compared are listed once, in :mod:`benchmarks.stores`.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from . import http, redis_rounds, sections
from .report import build_tables, evaluate_targets, write_markdown, write_plots
from .stores import STORES, StoreEntry

__all__ = ["SECTIONS", "main"]

Runner = Callable[[Sequence[StoreEntry], sections.Settings, Callable[[str], None]], dict[str, Any]]

#: Section name -> its runner, in running order.
SECTIONS: dict[str, Runner] = {
    "latency": sections.run_latency,
    "floor": sections.run_floor,
    "size": sections.run_sizes,
    "threads": sections.run_threads,
    "memory": sections.run_memory,
    "http": http.run_http,  # end to end over HTTP: benchmarks/http.py
    "redis": redis_rounds.run_redis,  # round trips, threads, processes: benchmarks/redis_rounds.py
}


def _steps(name: str, settings: sections.Settings, stores: int) -> int:
    """How many progress steps section *name* reports."""
    if name == "http":
        return http.steps(settings.quick)
    if name == "redis":
        return redis_rounds.steps(settings.quick)
    per_store = {
        "latency": 8,
        "floor": 1,
        "size": len(settings.sizes) * 5,
        "threads": len(settings.thread_counts),
        "memory": 1,
    }
    once = {"size": len(settings.sizes)}  # the floor of cleanup_expired, per size
    return per_store[name] * stores + once.get(name, 0)


class Progress:
    """A progress bar on *stream*: redrawn in place on a terminal, lines otherwise."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = max(1, total)
        self.done = 0
        self.stream = sys.stderr if stream is None else stream
        self.tty = self.stream.isatty()
        self.started = time.monotonic()

    def __call__(self, label: str) -> None:
        self.done += 1
        width = 24
        filled = min(width, width * self.done // self.total)
        elapsed = int(time.monotonic() - self.started)
        text = (
            f"[{'#' * filled}{'.' * (width - filled)}] {self.done:>3}/{self.total} "
            f"{elapsed // 60}:{elapsed % 60:02d}  {label}"
        )
        if self.tty:
            self.stream.write("\r\x1b[K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _versions() -> dict[str, str]:
    out = {}
    for name in ("tasks_store", "mcp", "attrs", "cattrs", "pydantic", "matplotlib"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark tasks_store.InMemoryTaskStore against its rivals.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="shrink every size: the whole suite in seconds"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("bench-results"), help="output directory"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed")
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of: {', '.join(SECTIONS)}",
    )
    parser.add_argument(
        "--report",
        type=Path,
        default=None,
        metavar="RESULTS_JSON",
        help="measure nothing: rebuild tables, results.md and plots from a results.json",
    )
    return parser


def _emit(results: dict[str, Any], out: Path, stdout: TextIO) -> None:
    results["targets"] = evaluate_targets(results)
    tables = build_tables(results)
    for table in tables:
        stdout.write("\n" + table.text() + "\n")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    write_markdown(results, tables, out / "results.md")
    written = write_plots(results, out)
    names = ["results.json", "results.md", *(p.name for p in written)]
    if not written:
        names.append("(no plots: matplotlib is not installed)")
    stdout.write(f"\nwrote {', '.join(names)} to {out}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the suite; return the exit status.

    Args:
        argv: command-line arguments (``sys.argv[1:]`` when None).
    """
    args = _parser().parse_args(argv)
    if args.report is not None:
        stored = json.loads(args.report.read_text(encoding="utf-8"))
        _emit(stored, args.out, sys.stdout)
        return 0
    wanted = [name.strip() for name in args.sections.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in SECTIONS]
    if unknown:
        _parser().error(f"unknown section(s): {', '.join(unknown)}")
    settings = sections.QUICK if args.quick else sections.FULL
    if args.seed is not None:
        settings = sections.Settings(**{**asdict(settings), "seed": args.seed})
    command = "python -m benchmarks" + (" " + " ".join(argv) if argv else "")
    if argv is None:
        command = "python -m benchmarks" + "".join(f" {a}" for a in sys.argv[1:])
    results: dict[str, Any] = {
        "meta": {
            "command": command,
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "quick": settings.quick,
            "machine": f"{platform.system()} {platform.release()} {platform.machine()}",
            "processor": platform.processor(),
            "cpus": _cpus(),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "packages": _versions(),
        },
        "settings": asdict(settings),
        "stores": [
            {"name": e.name, "about": e.about, "supports": sorted(e.supports)} for e in STORES
        ],
    }
    progress = Progress(sum(_steps(name, settings, len(STORES)) for name in wanted))
    begun = time.monotonic()
    timings: dict[str, float] = {}
    for name in wanted:
        started = time.monotonic()
        results[name] = SECTIONS[name](STORES, settings, progress)
        timings[name] = round(time.monotonic() - started, 2)
    progress.finish()
    results["meta"]["elapsed_s"] = time.monotonic() - begun
    results["meta"]["section_s"] = timings
    _emit(results, args.out, sys.stdout)
    return 0

"""
Tables, targets, Markdown and plots, all from one results dict.

The same dict is written as ``results.json``; ``python -m benchmarks
--report results.json`` rebuilds the tables, ``results.md`` and the plots
from it without measuring again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .stores import ALL_OPS, MCP_NAME, NOT_FOUND_OPS, REFERENCE

__all__ = ["Table", "build_tables", "evaluate_targets", "write_markdown", "write_plots"]


@dataclass
class Table:
    """One section's table: title, column headers, rows of text, notes."""

    key: str
    title: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        """Return the table aligned for a terminal."""
        widths = [len(h) for h in self.headers]
        for row in self.rows:
            widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
        line = "  ".join("-" * w for w in widths)

        def fmt(cells: Sequence[str]) -> str:
            return "  ".join(
                cell.ljust(w) if i < 2 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()

        out = [self.title, "=" * len(self.title), fmt(self.headers), line]
        out += [fmt(row) for row in self.rows]
        out += [f"  * {note}" for note in self.notes]
        return "\n".join(out)

    def markdown(self) -> str:
        """Return the table in GitHub Markdown."""
        align = ["---" if i < 2 else "---:" for i in range(len(self.headers))]
        out = [f"### {self.title}", ""]
        out.append("| " + " | ".join(self.headers) + " |")
        out.append("| " + " | ".join(align) + " |")
        for row in self.rows:
            out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
        if self.notes:
            out.append("")
            out += [f"- {note}" for note in self.notes]
        return "\n".join(out)


def _num(value: float | None, digits: int = 3) -> str:
    """Format with *digits* significant figures, thousands separated."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    return f"{value:,.{decimals}f}"


def _ratio(value: float | None, reference: float | None) -> str:
    if value is None or reference is None or reference == 0:
        return "n/a"
    return f"{value / reference:.2f}x"


def _size(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def _lookup(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    for row in rows:
        if all(row.get(k) == v for k, v in match.items()):
            return row
    return None


def _stores(rows: list[dict[str, Any]]) -> list[str]:
    seen: list[str] = []
    for row in rows:
        if row["store"] not in seen:
            seen.append(row["store"])
    return seen


def _missing(row: dict[str, Any] | None) -> str | None:
    """The text a table shows instead of a figure, or None when there is one."""
    if row is None:
        return "n/a"
    if "unavailable" in row:
        return "unavailable"
    if "unsupported" in row:
        return "n/a"
    return None


# -- tables ----------------------------------------------------------------------


def _latency_table(section: dict[str, Any]) -> Table:
    rows = section["rows"]
    out: list[list[str]] = []
    notes: list[str] = []
    for op in (*ALL_OPS, *NOT_FOUND_OPS):
        ref = _lookup(rows, store=REFERENCE, op=op)
        ref_median = None if _missing(ref) or ref is None else ref["median"]
        for store in _stores(rows):
            row = _lookup(rows, store=store, op=op)
            if row is None and op in NOT_FOUND_OPS:
                continue  # measured only on stores that refuse a foreign owner
            missing = _missing(row)
            if missing or row is None:
                out.append([op, store, missing or "n/a", "", "", ""])
                continue
            out.append(
                [
                    op,
                    store,
                    _num(row["median"]),
                    _num(row["p99"]),
                    f"{_num(row['min'])}-{_num(row['max'])}",
                    _ratio(row["median"], ref_median),
                ]
            )
    for store in _stores(rows):
        for row in rows:
            if row["store"] == store and "unavailable" in row:
                notes.append(f"{store}: unavailable: {row['unavailable']}")
                break
        for row in rows:
            if row["store"] == store and "unsupported" in row:
                notes.append(f"{store}, {row['op']}: n/a, {row['unsupported']}")
    for store, overhead in section.get("driver_overhead_us", {}).items():
        notes.append(
            f"{store} is async: each call is run to completion on one event loop "
            f"(run_until_complete); an empty coroutine costs {_num(overhead)} µs this way, "
            "included above."
        )
    notes.append(
        f"Each store holds {section['size']:,} tasks over {section['owners']:,} owners "
        "(plus a probe owner with 200, whose pages `list` reads); timer overhead "
        f"({section['timer_overhead_ns']:.0f} ns) subtracted."
    )
    return Table(
        "latency",
        f"1. Per-operation latency, one thread, {section['size']:,} tasks",
        ["operation", "store", "median µs", "p99 µs", "repeat medians µs", f"x {REFERENCE}"],
        out,
        notes,
    )


def _floor_table(section: dict[str, Any]) -> Table:
    rows = section["rows"]
    out: list[list[str]] = []
    ref = _lookup(rows, store=REFERENCE)
    ref_get = None if _missing(ref) or ref is None else ref["get"]["median"]
    if ref is not None and not _missing(ref):
        out.append(["floor", "`with lock: d[key]` inline", _num(ref["inline"]["median"]),
                    f"{_num(ref['inline']['min'])}-{_num(ref['inline']['max'])}", "1.00x", ""])
        out.append(["floor", "the same in a method", _num(ref["method"]["median"]),
                    f"{_num(ref['method']['min'])}-{_num(ref['method']['max'])}",
                    _ratio(ref["method"]["median"], ref["inline"]["median"]), ""])
    for row in rows:
        missing = _missing(row)
        if missing:
            out.append(["get", row["store"], missing, "", "", ""])
            continue
        out.append(
            [
                "get",
                row["store"],
                _num(row["get"]["median"]),
                f"{_num(row['get']['min'])}-{_num(row['get']['max'])}",
                f"{row['get_over_inline']:.2f}x",
                _ratio(row["get"]["median"], ref_get),
            ]
        )
    notes = [
        f"ns per lookup over the same seeded ids of a {section['size']:,}-task store, "
        "net of the bare loop; each store's get measured beside its own floor run.",
        "x floor: the store's get over the inline floor measured in the same repeat "
        "(over the method form: "
        + ", ".join(
            f"{r['store']} {r['get_over_method']:.2f}x" for r in rows if not _missing(r)
        )
        + ").",
    ]
    return Table(
        "floor",
        "5. Floor: get against `with lock: d[key]`",
        ["what", "store", "ns/lookup", "repeats min-max", "x floor", f"x {REFERENCE}"],
        out,
        notes,
    )


def _size_table(section: dict[str, Any]) -> Table:
    rows = section["rows"]
    sizes: list[int] = section["sizes"]
    first, last = sizes[0], sizes[-1]
    headers = ["operation", "store"]
    headers += [f"{_size(s)} µs" for s in sizes]
    headers += [f"{_size(s)}/{_size(first)}" for s in sizes[1:]]
    headers += [f"x {REFERENCE} at {_size(last)}"]
    out: list[list[str]] = []
    for op in ("create", "get", "list", "cleanup_expired", "cleanup_one_owner"):
        ref = _lookup(rows, store=REFERENCE, op=op, size=last)
        ref_last = None if _missing(ref) or ref is None else ref["median"]
        for store in _stores(rows):
            cells = [op, store]
            medians: list[float | None] = []
            for s in sizes:
                row = _lookup(rows, store=store, op=op, size=s)
                missing = _missing(row)
                medians.append(None if missing or row is None else row["median"])
                cells.append(missing or _num(row["median"]) if row else "n/a")
            cells += [_ratio(m, medians[0]) for m in medians[1:]]
            cells.append(_ratio(medians[-1], ref_last))
            out.append(cells)
        floors = {f["size"]: f["median"] for f in section.get("cleanup_floor", [])}
        if op == "cleanup_expired" and floors:
            line = [f.get(s) for s in sizes for f in [floors]]
            cells = [op, "floor: del 1% of keys from a dict"]
            cells += [_num(v) for v in line]
            cells += [_ratio(v, line[0]) for v in line[1:]]
            cells.append(_ratio(line[-1], ref_last))
            out.append(cells)
    notes = [
        f"Stores pre-filled with {', '.join(_size(s) for s in sizes)} tasks over "
        f"{section['owners']:,} owners plus a probe owner holding the same "
        f"{section['probe_tasks']} tasks at every size.",
        "get reads the probe's tasks, list pages through the probe's tasks (50 a page), "
        "create adds to the probe owner, cleanup_expired removes 1% of the size.",
        "cleanup_one_owner: one owner holds every task and cleanup_expired removes its "
        "oldest 1% (the cost of removing keys from one owner's ordered index).",
        f"{MCP_NAME} has no owners: its list pages over every task.",
        "floor row: deleting the same number of known keys from a plain dict of that size "
        "under one lock, after the same 5 ms pause: the least any store's cleanup can cost.",
    ]
    return Table("size", "3. Size scaling (median µs per op)", headers, out, notes)


def _threads_table(section: dict[str, Any]) -> Table:
    rows = section["rows"]
    out: list[list[str]] = []
    counts = sorted({row["threads"] for row in rows})
    for threads in counts:
        ref = _lookup(rows, store=REFERENCE, threads=threads)
        ref_rate = None if _missing(ref) or ref is None else ref["ops_per_s"]
        for store in _stores(rows):
            row = _lookup(rows, store=store, threads=threads)
            missing = _missing(row)
            if missing or row is None:
                out.append([str(threads), store, missing or "n/a", "", "", ""])
                continue
            one = _lookup(rows, store=store, threads=counts[0])
            one_rate = None if one is None or _missing(one) else one["ops_per_s"]
            out.append(
                [
                    str(threads),
                    store,
                    _num(row["ops_per_s"]),
                    f"{_num(row['min'])}-{_num(row['max'])}",
                    _ratio(row["ops_per_s"], one_rate),
                    _ratio(row["ops_per_s"], ref_rate),
                ]
            )
    notes = [
        f"Mixed workload on one shared store of {section['size']:,} tasks over "
        f"{section['owners']:,} owners: 70% get, 20% set_variables, 10% create then "
        f"complete_with_result; {section['seconds']} s per run; ops = store calls.",
        f"{MCP_NAME}: callers submit to one event loop in its own thread "
        "(run_coroutine_threadsafe); set_variables is replaced by "
        "update_task(status_message=...).",
        "Higher is better.",
    ]
    return Table(
        "threads",
        "2. Thread scaling (ops/s, all threads)",
        ["threads", "store", "ops/s", "repeats min-max", "x 1 thread", f"x {REFERENCE}"],
        out,
        notes,
    )


def _memory_table(section: dict[str, Any]) -> Table:
    rows = section["rows"]
    ref = _lookup(rows, store=REFERENCE)
    ref_empty = None if ref is None or _missing(ref) else ref["empty"]
    ref_kib = None if ref is None or _missing(ref) else ref.get("kib")
    out: list[list[str]] = []
    notes: list[str] = []
    for row in rows:
        missing = _missing(row)
        if missing:
            out.append([row["store"], missing, "", "", ""])
            continue
        out.append(
            [
                row["store"],
                _num(row["empty"]),
                _num(row.get("kib")),
                _ratio(row["empty"], ref_empty),
                _ratio(row.get("kib"), ref_kib),
            ]
        )
        if row.get("kib_note"):
            notes.append(f"{row['store']}: 1 KiB column n/a, {row['kib_note']}.")
        if row.get("tasks", section["tasks"]) != section["tasks"]:
            notes.append(
                f"{row['store']}: measured over {row['tasks']:,} tasks (its calls are slow "
                "under tracemalloc; the run's memory budget)."
            )
    notes.append(
        f"tracemalloc, {section['tasks']:,} tasks, bytes held by the store per task "
        "(ids and owner strings included, the benchmark's own lists excluded)."
    )
    return Table(
        "memory",
        f"4. Memory per task at {_size(section['tasks'])} tasks",
        ["store", "empty vars B/task", "1 KiB vars B/task", "x ref (empty)", "x ref (1 KiB)"],
        out,
        notes,
    )


def build_tables(results: dict[str, Any]) -> list[Table]:
    """Return a table per section present in *results*, in section order."""
    makers = [
        ("latency", _latency_table),
        ("threads", _threads_table),
        ("size", _size_table),
        ("memory", _memory_table),
        ("floor", _floor_table),
    ]
    tables = [make(results[key]) for key, make in makers if key in results]
    if results.get("targets"):
        tables.append(_targets_table(results["targets"]))
    from . import http_report, redis_rounds  # their sections' tables (they import this module)

    return tables + http_report.build_tables(results) + redis_rounds.build_tables(results)


# -- targets ---------------------------------------------------------------------


def _fig(rows: list[dict[str, Any]], key: str = "median", **match: Any) -> float | None:
    row = _lookup(rows, **match)
    if row is None or _missing(row):
        return None
    value = row.get(key)
    return None if value is None else float(value)


def _check(
    out: list[dict[str, Any]], target: str, measured: str, met: bool | None
) -> None:
    out.append({"target": target, "measured": measured, "met": met})


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Check each of the issue's targets against *results*; None: not measured."""
    out: list[dict[str, Any]] = []
    gl = "GlobalLockStore"
    if "floor" in results:
        rows = results["floor"]["rows"]
        ref = _lookup(rows, store=REFERENCE)
        other = _lookup(rows, store=gl)
        if ref and not _missing(ref):
            ratio = ref["get_over_inline"]
            _check(out, "get <= 3x the floor", f"{ratio:.2f}x the floor "
                   f"({ref['get_over_method']:.2f}x its method form)", ratio <= 3)
            if other and not _missing(other):
                a, b = ref["get"]["median"], other["get"]["median"]
                _check(out, f"get faster than {gl}", f"{_num(a)} vs {_num(b)} ns "
                       f"({b / a:.2f}x faster)", a < b)
    if "size" in results:
        rows = results["size"]["rows"]
        sizes = results["size"]["sizes"]
        first, last = sizes[0], sizes[-1]
        for op, limit in (("create", 1.3), ("list", 1.3), ("get", 2.0)):
            a = _fig(rows, store=REFERENCE, op=op, size=first)
            b = _fig(rows, store=REFERENCE, op=op, size=last)
            if a and b is not None:
                _check(out, f"{op} at {_size(last)} <= {limit}x {op} at {_size(first)}",
                       f"{b / a:.2f}x ({_num(a)} -> {_num(b)} µs)", b / a <= limit)
        a = _fig(rows, store=REFERENCE, op="cleanup_expired", size=last)
        b = _fig(rows, store=gl, op="cleanup_expired", size=last)
        floor = next(
            (f["median"] for f in results["size"].get("cleanup_floor", []) if f["size"] == last),
            None,
        )
        if a and b is not None:
            bound = "" if not floor else (
                f"; deleting those keys from a plain dict alone takes {_num(floor)} µs, "
                f"so no design can beat {gl} by more than {b / floor:.1f}x here"
            )
            _check(out, f"cleanup_expired (1% of {_size(last)}) >= 20x faster than {gl}",
                   f"{b / a:.1f}x ({_num(a)} vs {_num(b)} µs){bound}", b / a >= 20)
    if "latency" in results:
        section = results["latency"]
        rows = section["rows"]
        overhead = section.get("driver_overhead_us", {}).get(MCP_NAME, 0.0)
        worst: tuple[float, str] | None = None
        parts = []
        for op in ALL_OPS:
            a = _fig(rows, store=REFERENCE, op=op)
            b = _fig(rows, store=MCP_NAME, op=op)
            if a and b is not None:
                ratio = max(0.0, b - overhead) / a
                parts.append(f"{op} {ratio:.1f}x")
                if worst is None or ratio < worst[0]:
                    worst = (ratio, op)
        if worst is not None:
            _check(out, f"every op >= 2x faster than the MCP SDK's store at "
                   f"{_size(section['size'])} tasks",
                   "; ".join(parts) + " (SDK net of its event-loop cost)", worst[0] >= 2)
        for op in ("update_status", "set_variables", "complete_with_result"):
            a = _fig(rows, store=REFERENCE, op=op)
            b = _fig(rows, store=gl, op=op)
            if a is not None and b:
                _check(out, f"{op} <= 1.2x {gl} (one thread)",
                       f"{a / b:.2f}x ({_num(a)} vs {_num(b)} µs)", a / b <= 1.2)
    if "threads" in results:
        rows = results["threads"]["rows"]
        one = _fig(rows, "ops_per_s", store=REFERENCE, threads=1)
        eight = _fig(rows, "ops_per_s", store=REFERENCE, threads=8)
        gl8 = _fig(rows, "ops_per_s", store=gl, threads=8)
        if one and eight is not None:
            _check(out, "8 threads >= 0.9x one thread",
                   f"{eight / one:.2f}x ({_num(eight)} vs {_num(one)} ops/s)", eight / one >= 0.9)
        if eight is not None and gl8:
            _check(out, f"8 threads >= {gl} at 8 threads",
                   f"{eight / gl8:.2f}x ({_num(eight)} vs {_num(gl8)} ops/s)", eight >= gl8)
    if "memory" in results:
        rows = results["memory"]["rows"]
        empty = _fig(rows, "empty", store=REFERENCE)
        if empty is not None:
            _check(out, "<= 1 KiB per task, empty variables", f"{empty:,.0f} B/task",
                   empty <= 1024)
    return out


def _targets_table(targets: list[dict[str, Any]]) -> Table:
    verdict = {True: "met", False: "MISSED", None: "not measured"}
    rows = [[t["target"], t["measured"], verdict[t["met"]]] for t in targets]
    return Table("targets", "Targets (issue 3)", ["target", "measured", "verdict"], rows)


# -- files -----------------------------------------------------------------------


def write_markdown(results: dict[str, Any], tables: list[Table], path: Path) -> None:
    """Write *tables* as Markdown, headed by the machine and the command."""
    meta = results["meta"]
    lines = [
        "# tasks_store benchmark results",
        "",
        f"- command: `{meta['command']}`",
        f"- when: {meta['started']} (took {meta.get('elapsed_s', 0):.0f} s)",
        f"- machine: {meta['machine']}, {meta['cpus']} CPUs usable, "
        f"Python {meta['python']} ({meta['implementation']})",
        "- packages: " + ", ".join(f"{k} {v}" for k, v in meta["packages"].items()),
        f"- seed {results['settings']['seed']}; "
        + ("QUICK run: sizes shrunk, figures not evidence" if meta["quick"] else "full run"),
        "",
        "Lower is better for times and bytes, higher for ops/s.  `x InMemoryTaskStore` is "
        "the store's figure over InMemoryTaskStore's, measured in the same run.",
        "",
    ]
    for table in tables:
        lines += [table.markdown(), ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def write_plots(results: dict[str, Any], out: Path) -> list[Path]:
    """Write the thread- and size-scaling plots; [] when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written: list[Path] = []
    names = [store["name"] for store in results.get("stores", [])]
    color = {name: f"C{i % 10}" for i, name in enumerate(names)}  # one colour per store
    if "threads" in results:
        rows = [r for r in results["threads"]["rows"] if not _missing(r)]
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for store in _stores(rows):
            mine = sorted((r for r in rows if r["store"] == store), key=lambda r: r["threads"])
            xs = [r["threads"] for r in mine]
            ax.errorbar(
                xs,
                [r["ops_per_s"] for r in mine],
                yerr=[
                    [r["ops_per_s"] - r["min"] for r in mine],
                    [r["max"] - r["ops_per_s"] for r in mine],
                ],
                marker="o",
                capsize=3,
                label=store,
                color=color.get(store),
            )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(results["settings"]["thread_counts"])
        ax.set_xticklabels([str(t) for t in results["settings"]["thread_counts"]])
        ax.set_xlabel("threads")
        ax.set_ylabel("ops/s, all threads (higher is better)")
        ax.set_title("Mixed workload: 70% get, 20% set_variables, 10% create+complete")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = out / "threads.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    if "size" in results:
        rows = [r for r in results["size"]["rows"] if not _missing(r)]
        fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
        for ax, op in zip(axes.flat, ("create", "get", "list", "cleanup_expired"), strict=True):
            for store in _stores(rows):
                mine = sorted(
                    (r for r in rows if r["store"] == store and r["op"] == op),
                    key=lambda r: r["size"],
                )
                if not mine:
                    continue
                ax.errorbar(
                    [r["size"] for r in mine],
                    [r["median"] for r in mine],
                    yerr=[
                        [r["median"] - r["min"] if r["min"] <= r["median"] else 0 for r in mine],
                        [r["max"] - r["median"] if r["max"] >= r["median"] else 0 for r in mine],
                    ],
                    marker="o",
                    capsize=3,
                    label=store,
                    color=color.get(store),
                )
            floor = sorted(results["size"].get("cleanup_floor", []), key=lambda f: f["size"])
            if op == "cleanup_expired" and floor:
                ax.plot(
                    [f["size"] for f in floor],
                    [f["median"] for f in floor],
                    "k--",
                    label="floor: del 1% of keys from a dict",
                )
                ax.legend(fontsize=8)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(op)
            ax.set_xlabel("tasks in the store")
            ax.set_ylabel("µs per op (lower is better)")
            ax.grid(True, which="both", alpha=0.3)
        axes.flat[0].legend(fontsize=8)
        fig.suptitle("Size scaling (log-log); probe owner fixed at 200 tasks")
        fig.tight_layout()
        path = out / "size.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    from . import http_report

    return written + http_report.write_plots(results, out)

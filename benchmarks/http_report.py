"""
Tables, targets and the plot of the ``http`` section, from the results dict alone.

The tables render in ``results.md`` under level-2 headings (``## HTTP ...``):
the end-to-end benchmark is a part of its own beside the store sections.
``x best peer`` divides a figure by the best peer's at the same client count,
taken in the same run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .report import Table, _num

__all__ = ["HttpTable", "build_tables", "evaluate_targets", "write_plots"]


class HttpTable(Table):
    """A table of the HTTP section: Markdown under a level-2 heading."""

    def markdown(self) -> str:
        text = super().markdown()
        return "## " + text[len("### "):] if text.startswith("### ") else text


def _configs(section: dict[str, Any]) -> list[dict[str, Any]]:
    return list(section.get("configs", []))


def _row(
    section: dict[str, Any], config: str, workload: str, clients: int
) -> dict[str, Any] | None:
    for row in section.get("rows", []):
        if row["config"] == config and row["workload"] == workload and row["clients"] == clients:
            return row
    return None


def _rps(row: dict[str, Any] | None) -> float | None:
    if row is None or "unavailable" in row:
        return None
    value = row["rps"]["median"]
    return None if value is None else float(value)


def _best_peer(section: dict[str, Any], workload: str, clients: int) -> tuple[str, float] | None:
    best: tuple[str, float] | None = None
    for config in _configs(section):
        if config["kind"] != "peer" or "unavailable" in config:
            continue
        value = _rps(_row(section, config["name"], workload, clients))
        if value is not None and (best is None or value > best[1]):
            best = (config["name"], value)
    return best


def _floor_of(section: dict[str, Any], config: dict[str, Any]) -> dict[str, Any] | None:
    for other in _configs(section):
        if (
            other["kind"] == "floor"
            and other["server"] == config["server"]
            and other["processes"] == config["processes"]
        ):
            return other
    return None


def _ms(spread: dict[str, Any] | None) -> str:
    if not spread or spread.get("median") is None:
        return "n/a"
    return _num(spread["median"])


def _range(spread: dict[str, Any]) -> str:
    if spread.get("min") is None:
        return ""
    if spread["min"] == spread["max"]:
        return ""
    return f" ({_num(spread['min'])}-{_num(spread['max'])})"


def _unavailable_notes(section: dict[str, Any]) -> list[str]:
    notes = []
    for config in _configs(section):
        if "unavailable" in config:
            notes.append(f"{config['name']}: unavailable: {config['unavailable'][:300]}")
    return notes


def _throughput_table(section: dict[str, Any], workload: str, title: str, op: str) -> HttpTable:
    clients: list[int] = list(section["settings"]["clients"])
    mid = 16 if 16 in clients else clients[-1]
    headers = ["server", "procs"] + [f"{c} clients req/s" for c in clients]
    lat_at = [mid] if workload != "get" or clients[-1] == mid else [mid, clients[-1]]
    headers += [f"p50 / p99 ms @{c}" for c in lat_at] + [f"x best peer @{mid}"]
    if workload == "get":
        headers.append(f"x floor @{mid}")
    out: list[list[str]] = []
    best = _best_peer(section, workload, mid)
    for config in _configs(section):
        if workload != "get" and config["kind"] == "floor":
            continue
        name = config["name"]
        cells = [name, str(config["processes"])]
        if "unavailable" in config:
            out.append(cells + ["unavailable"] + [""] * (len(headers) - 3))
            continue
        for c in clients:
            row = _row(section, name, workload, c)
            if row is None:
                cells.append("n/a")
            elif "unavailable" in row:
                cells.append("failed")
            else:
                cells.append(_num(row["rps"]["median"]) + _range(row["rps"]))
        for c in lat_at:
            row = _row(section, name, workload, c)
            if row is not None and "unavailable" not in row:
                ops = row["ops"].get(op) or next(iter(row["ops"].values()), {})
                cells.append(f"{_ms(ops.get('p50_ms'))} / {_ms(ops.get('p99_ms'))}")
            else:
                cells.append("n/a")
        row = _row(section, name, workload, mid)
        value = _rps(row)
        cells.append("n/a" if value is None or best is None else f"{value / best[1]:.2f}x")
        if workload == "get":
            floor = _floor_of(section, config) if config["kind"] != "floor" else None
            fvalue = _rps(_row(section, floor["name"], "get", mid)) if floor else None
            cells.append("n/a" if value is None or not fvalue else f"{value / fvalue:.2f}x")
        out.append(cells)
    notes = [
        f"Median of {section['settings']['repeats']} runs of {section['settings']['seconds']} s "
        "(min-max in brackets); closed loop: each client sends its next request when the "
        "previous one is answered, on one keep-alive connection.",
    ]
    if best is not None:
        notes.append(f"best peer at {mid} clients: {best[0]} ({_num(best[1])} req/s).")
    errors = []
    for row in section.get("rows", []):
        if row["workload"] == workload and row.get("errors"):
            errors.append(f"{row['config']} @{row['clients']}: {row['errors']}")
        if row["workload"] == workload and "unavailable" in row:
            errors.append(f"{row['config']} @{row['clients']}: failed: {row['unavailable'][:200]}")
    if errors:
        notes.append("errors (JSON-RPC error answers, counted as failed requests, not in req/s): "
                     + "; ".join(errors[:8]))
    if workload == "get":
        notes.append("x floor: against the bare WSGI app on the same server and process count.")
    if workload == "mixed":
        notes.append("mixed: 70% tasks/get, 20% tools/call creating a task that runs "
                     f"{section['settings']['mixed_ms']} ms, 10% tasks/cancel of the client's "
                     "newest running task; req/s counts all three.")
    notes += _unavailable_notes(section) if workload == "get" else []
    return HttpTable(f"http-{workload}", title, headers, out, notes)


def _latency_table(section: dict[str, Any]) -> HttpTable:
    settings = section["settings"]
    counts: list[int] = list(settings["latency_clients"])
    headers = ["server"]
    for mode in ("poll", "block"):
        headers += [f"{mode} p50 / p99 ms @{c}" for c in counts]
    out = []
    notes = []
    for config in _configs(section):
        if config["kind"] == "floor":
            continue
        cells = [config["name"]]
        if "unavailable" in config:
            out.append(cells + ["unavailable"] + [""] * (len(headers) - 2))
            continue
        for mode in ("poll", "block"):
            for c in counts:
                row = next((r for r in section.get("latency", []) if r["config"] == config["name"]
                            and r["mode"] == mode and r["clients"] == c), None)
                if row is None:
                    cells.append("n/a")
                elif "unsupported" in row:
                    cells.append("n/a")
                    if c == counts[0]:
                        notes.append(f"{config['name']}, block: n/a, {row['unsupported']}.")
                elif "unavailable" in row:
                    cells.append("failed")
                    notes.append(f"{config['name']}, {mode} @{c}: {row['unavailable'][:200]}")
                else:
                    cells.append(f"{_ms(row['p50_ms'])} / {_ms(row['p99_ms'])}")
        out.append(cells)
    notes.insert(0, (
        f"Time from sending tools/call (a task whose tool sleeps {settings['latency_ms']} ms) "
        "to holding its result, one task at a time per client.  poll: tasks/get every "
        f"pollInterval (every server advertises {settings['poll_ms']} ms), then tasks/result "
        "(2025-11-25; 2026-07-28 inlines the result in tasks/get).  block: tasks/result sent "
        "at once, answered when the task ends."))
    return HttpTable("http-latency", "HTTP 4. Create -> result", headers, out, notes)


def _memory_table(section: dict[str, Any]) -> HttpTable:
    out = []
    notes = []
    for config in _configs(section):
        if config["kind"] == "floor":
            continue
        row = next((r for r in section.get("memory", []) if r["config"] == config["name"]), None)
        name = config["name"]
        if "unavailable" in config or row is None:
            out.append([name, "unavailable" if "unavailable" in config else "n/a", "", "", ""])
            continue
        if "unsupported" in row:
            out.append([name, "n/a", "", "", ""])
            continue
        if "unavailable" in row:
            out.append([name, "failed", "", "", ""])
            notes.append(f"{name}: {row['unavailable'][:200]}")
            continue
        redis = row.get("redis_per_10k_mb")
        out.append([
            name,
            _num(row["per_10k_mb"]),
            "" if redis is None else _num(redis),
            f"{row['tasks']:,}",
            f"{_num(row['rss_before_mb'])} -> {_num(row['rss_after_mb'])}",
        ])
    notes.insert(0, (
        "RSS of the server's process tree (VmRSS summed) before and after creating the tasks "
        "(each completed, result held, TTL 10 min), scaled to 10k tasks; a fresh process, "
        "after a warm-up of 40 tasks.  Redis: used_memory of the redis-server as well.  "
        "Several-process configurations: n/a."))
    return HttpTable(
        "http-memory", "HTTP 5. Memory per 10k live tasks",
        ["server", "server RSS MB / 10k", "redis MB / 10k", "tasks", "RSS MB before -> after"],
        out, notes,
    )


def _mine(section: dict[str, Any], processes: int, store: str = "memory") -> list[dict[str, Any]]:
    return [c for c in _configs(section) if c["kind"] == "ours" and c["processes"] == processes
            and c["store"] == store and "unavailable" not in c]


def evaluate_targets(section: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 14's targets; ``met`` None when not measured."""
    out: list[dict[str, Any]] = []
    clients = section["settings"]["clients"]
    mid = 16 if 16 in clients else clients[-1]
    best = _best_peer(section, "get", mid)
    ours = [(c["name"], _rps(_row(section, c["name"], "get", mid))) for c in _mine(section, 1)]
    ours = [(n, v) for n, v in ours if v is not None]
    target = f"tasks/get req/s at {mid} clients >= 2x the best peer's (1 process each)"
    if ours and best is not None:
        name, value = max(ours, key=lambda p: p[1])
        out.append({"target": target, "measured": f"{value / best[1]:.2f}x ({name} {_num(value)} "
                    f"vs {best[0]} {_num(best[1])} req/s)", "met": value >= 2 * best[1]})
    else:
        out.append({"target": target, "measured": "not measured", "met": None})
    parts = []
    worst: float | None = None
    for config in _configs(section):
        if config["kind"] != "ours" or config["wire"] != "2025" or config["store"] != "memory":
            continue
        floor = _floor_of(section, config)
        value = _rps(_row(section, config["name"], "get", mid))
        fvalue = _rps(_row(section, floor["name"], "get", mid)) if floor else None
        if value and fvalue:
            ratio = fvalue / value  # time per request over the floor's
            parts.append(f"{config['server']} {ratio:.2f}x")
            worst = ratio if worst is None else max(worst, ratio)
    target = "time per tasks/get <= 1.5x the bare-WSGI floor's, same server"
    out.append({"target": target,
                "measured": "; ".join(parts) + f" (at {mid} clients)" if parts else "not measured",
                "met": None if worst is None else worst <= 1.5})
    top = max(clients)
    one = next((c for c in _mine(section, 1, "redis") if c["server"] == "gunicorn"), None)
    four = next((c for c in _mine(section, 4, "redis") if c["server"] == "gunicorn"), None)
    a = _rps(_row(section, one["name"], "get", top)) if one else None
    b = _rps(_row(section, four["name"], "get", top)) if four else None
    target = f"RedisTaskStore, gunicorn 4 workers: tasks/get at {top} clients >= 2.5x 1 worker"
    if a and b:
        out.append({"target": target, "measured": f"{b / a:.2f}x ({_num(b)} vs {_num(a)} req/s)",
                    "met": b >= 2.5 * a})
    else:
        out.append({"target": target, "measured": "not measured", "met": None})
    return out


def _targets_table(section: dict[str, Any]) -> HttpTable:
    verdict = {True: "met", False: "MISSED", None: "not measured"}
    rows = [[t["target"], t["measured"], verdict[t["met"]]] for t in evaluate_targets(section)]
    load = section.get("load", {})
    notes = [f"machine load average (1, 5, 15 min) before the section: {load.get('before')}, "
             f"after: {load.get('after')}."]
    loadgen = [r.get("loadgen_cpu_max_proc") for r in section.get("rows", [])
               if r.get("loadgen_cpu_max_proc") is not None]
    if loadgen:
        notes.append(f"load generator: at most {max(loadgen):.2f} of a core busy in any of its "
                     "processes during any run.")
    return HttpTable("http-targets", "HTTP targets (issue 14)", ["target", "measured", "verdict"],
                     rows, notes)


def build_tables(results: dict[str, Any]) -> list[Table]:
    """The HTTP section's tables, or [] when the run has none."""
    section = results.get("http")
    if not section:
        return []
    return [
        _throughput_table(section, "get", "HTTP 1. tasks/get requests/s", "get"),
        _throughput_table(section, "create", "HTTP 2. tools/call creating a task, requests/s",
                          "create"),
        _throughput_table(section, "mixed", "HTTP 3. Mixed workload requests/s", "get"),
        _latency_table(section),
        _memory_table(section),
        _targets_table(section),
    ]


def write_plots(results: dict[str, Any], out: Path) -> list[Path]:
    """``http.png``: requests/s against concurrency (get, create, mixed); [] without matplotlib."""
    section = results.get("http")
    if not section or not section.get("rows"):
        return []
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    clients = list(section["settings"]["clients"])
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.2))
    names = [c["name"] for c in _configs(section) if "unavailable" not in c]
    palette = plt.get_cmap("tab20").colors  # 20 distinct colours: one per server
    colours = {name: palette[i % len(palette)] for i, name in enumerate(names)}
    for ax, workload in zip(axes, ("get", "create", "mixed"), strict=True):
        for config in _configs(section):
            if "unavailable" in config or (config["kind"] == "floor" and workload != "get"):
                continue
            rows = [_row(section, config["name"], workload, c) for c in clients]
            points = [(c, r) for c, r in zip(clients, rows, strict=True)
                      if r is not None and "unavailable" not in r]
            if not points:
                continue
            style = {"ours": "-", "floor": ":", "peer": "--"}[config["kind"]]
            ax.errorbar(
                [c for c, _ in points],
                [r["rps"]["median"] for _, r in points],
                yerr=[[r["rps"]["median"] - r["rps"]["min"] for _, r in points],
                      [r["rps"]["max"] - r["rps"]["median"] for _, r in points]],
                marker="o", capsize=3, linestyle=style, label=config["name"],
                color=colours.get(config["name"]),
            )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(clients)
        ax.set_xticklabels([str(c) for c in clients])
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel("requests/s (higher is better)")
        ax.set_title({"get": "tasks/get", "create": "tools/call creating a task",
                      "mixed": "mixed 70/20/10"}[workload])
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=7)
    fig.suptitle("HTTP end to end: solid = tasks_store, dashed = peers, dotted = bare-WSGI floor")
    fig.tight_layout(rect=(0, 0.2, 1, 1))
    path = out / "http.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]

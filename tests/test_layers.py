"""
The package is three layers, each importing only the layers below it:

    mcp/      protocol: JSON-RPC, both protocol generations, tools, runner, WSGI
      |
    store/    storage: the contract, the shared write path, the backends
      |
    domain    status, errors, config, security, records, wire, rules

These tests read every module's imports (so a lazy import inside a function
counts too), import every module on its own in a fresh interpreter (so no
import cycle hides behind import order), and check what importing the lower
layers pulls in at run time.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "tasks_store"

DOMAIN = {"status", "errors", "config", "security", "records", "wire", "rules"}
#: Old module paths kept as thin aliases that warn (see CHANGELOG.md).
ALIASES = {"redis", "wsgi", "jsonrpc", "context", "runner"}


def _modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


MODULES = _modules()


def _layer(module: str) -> str:
    """'domain', 'store', 'mcp', 'alias' or 'package' for a tasks_store module."""
    parts = module.split(".")
    if len(parts) == 1:
        return "package"
    if parts[1] in ("store", "mcp"):
        return parts[1]
    if parts[1] in DOMAIN:
        return "domain"
    if parts[1] in ALIASES:
        return "alias"
    msg = f"{module} belongs to no layer: add it to one in tests/test_layers.py"
    raise AssertionError(msg)


def _imports(module: str) -> set[str]:
    """Every tasks_store module *module* imports, anywhere in its source."""
    path = PACKAGE.parent / Path(*module.split("."))
    source = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    tree = ast.parse(source.read_text(encoding="utf-8"))
    package = module if source.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            if node.module:  # `from .. import rules` imports only tasks_store.rules
                found.add(stem)
            found.update(f"{stem}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] == "tasks_store"}


ALLOWED = {
    "domain": {"domain"},
    "store": {"domain", "store"},
    "mcp": {"domain", "store", "mcp"},
}


def _target_layer(name: str) -> str | None:
    """The layer an imported name lives in (None: the package itself or a name in it)."""
    parts = name.split(".")
    if len(parts) == 1:
        return None
    if parts[1] in ("store", "mcp"):
        return parts[1]
    if parts[1] in DOMAIN:
        return "domain"
    return None  # a name re-exported by the package, e.g. tasks_store.TaskStatus


@pytest.mark.parametrize("module", [m for m in MODULES if _layer(m) in ALLOWED])
def test_module_imports_only_its_own_layer_and_below(module: str) -> None:
    """domain imports only domain; store imports domain and store; nothing imports upwards."""
    layer = _layer(module)
    wrong = sorted(
        name
        for name in _imports(module)
        if (target := _target_layer(name)) is not None and target not in ALLOWED[layer]
    )
    assert [] == wrong, f"{module} ({layer}) imports {wrong}"
    package_level = sorted(n for n in _imports(module) if n == "tasks_store")
    assert [] == package_level, f"{module} imports the package itself (import the module)"


def test_wire_imports_records_never_the_reverse() -> None:
    """records is below wire: records.py imports no wire, wire.py does import records."""
    assert "tasks_store.records" in _imports("tasks_store.wire")
    assert not any(n.startswith("tasks_store.wire") for n in _imports("tasks_store.records"))


def test_every_module_is_classified() -> None:
    """Each module sits in one layer (or is the package, or a deprecated alias)."""
    assert {"package", "domain", "store", "mcp", "alias"} >= {_layer(m) for m in MODULES}
    assert {"tasks_store.store.redis", "tasks_store.mcp.wsgi"} <= set(MODULES)


_IMPORT_EACH = """
import importlib, json, sys, traceback, warnings
failures = {}
for module in sys.argv[1:]:
    # Forget every tasks_store module, so *module* is imported first, on its
    # own, exactly as in a new interpreter (third-party modules stay loaded).
    for name in [n for n in sys.modules if n == "tasks_store" or n.startswith("tasks_store.")]:
        del sys.modules[name]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the aliases warn by design
            importlib.import_module(module)
    except BaseException:
        failures[module] = traceback.format_exc()
print(json.dumps(failures))
"""


@pytest.fixture(scope="module")
def import_failures() -> dict[str, str]:
    """Import each module first and alone (one fresh interpreter, package state reset each time)."""
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH, *MODULES],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    import json

    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_alone_in_a_fresh_interpreter(
    module: str, import_failures: dict[str, str]
) -> None:
    """No import cycle: each module imports first, on its own, with no tasks_store module loaded."""
    assert module not in import_failures, import_failures.get(module)


_LOADED = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(sys.modules)))
"""


def _loaded_by(module: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _LOADED, module],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    import json

    return set(json.loads(done.stdout))


def test_importing_the_store_layer_loads_no_protocol_and_no_redis() -> None:
    """`import tasks_store.store` loads neither tasks_store.mcp nor redis-py."""
    loaded = _loaded_by("tasks_store.store")
    assert [] == sorted(m for m in loaded if m.startswith("tasks_store.mcp"))
    assert "redis" not in loaded


def test_importing_the_package_never_needs_redis() -> None:
    """`import tasks_store` works without loading redis-py; RedisTaskStore loads it on use."""
    assert "redis" not in _loaded_by("tasks_store")
    assert "redis" in _loaded_by("tasks_store.store.redis")

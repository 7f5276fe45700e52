"""
The old module paths of the protocol layer still work, and warn.

``tasks_store.jsonrpc``, ``.wsgi``, ``.context`` and ``.runner`` moved to
``tasks_store.mcp``; each old path is a thin alias that raises a
DeprecationWarning on import and gives the same objects as the new module.
Each check runs in a fresh interpreter, so the warning really fires (a module
warns only the first time it is imported).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Each old module, its new home, and the names its ``__all__`` listed.
OLD_MODULES: dict[str, tuple[str, list[str]]] = {
    "tasks_store.jsonrpc": (
        "tasks_store.mcp.jsonrpc",
        [
            "ERROR_CODES",
            "INTERNAL_ERROR",
            "INVALID_PARAMS",
            "INVALID_REQUEST",
            "MAX_TASK_ID_LENGTH",
            "METHOD_NOT_FOUND",
            "PARSE_ERROR",
            "InvalidRequest",
            "MethodNotFound",
            "ParseError",
            "TasksRpc",
            "ToolFn",
            "encode_response",
            "error_code",
            "error_object",
            "error_response",
        ],
    ),
    "tasks_store.wsgi": ("tasks_store.mcp.wsgi", ["TasksApp", "default_owner_from_environ"]),
    "tasks_store.context": ("tasks_store.mcp.context", ["TaskContext"]),
    "tasks_store.runner": ("tasks_store.mcp.runner", ["TaskFn", "TaskRunner"]),
}

_CHECK = """
import importlib, json, sys, warnings

old, new = sys.argv[1], sys.argv[2]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    __import__(old)  # as an import statement does
alias = sys.modules[old]
module = importlib.import_module(new)
print(json.dumps({
    "warnings": [
        {"category": w.category.__name__, "message": str(w.message), "filename": w.filename}
        for w in caught
    ],
    "all": list(alias.__all__),
    "same": {name: getattr(alias, name) is getattr(module, name) for name in alias.__all__},
}))
"""


def _run(*args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 0 == done.returncode, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def outcomes() -> dict[str, dict[str, object]]:
    """Import each old module in its own fresh interpreter, all started at once."""
    running = {
        old: subprocess.Popen(
            [sys.executable, "-c", _CHECK, old, new],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for old, (new, _) in OLD_MODULES.items()
    }
    done = {}
    for old, process in running.items():
        out, err = process.communicate(timeout=120)
        assert 0 == process.returncode, err
        done[old] = json.loads(out)
    return done


@pytest.mark.parametrize("old", sorted(OLD_MODULES))
def test_old_path_warns_once_naming_the_new_one(
    old: str, outcomes: dict[str, dict[str, object]]
) -> None:
    """Importing the old path raises one DeprecationWarning, pointing at the importer."""
    new = OLD_MODULES[old][0]
    assert [
        {
            "category": "DeprecationWarning",
            "message": f"{old} is deprecated; import from tasks_store or {new}",
            "filename": "<string>",  # the importing code (stacklevel=2), not the alias
        }
    ] == outcomes[old]["warnings"]


@pytest.mark.parametrize("old", sorted(OLD_MODULES))
def test_old_path_exposes_the_same_objects(
    old: str, outcomes: dict[str, dict[str, object]]
) -> None:
    """Every name the old module's __all__ listed is still there, the very same object."""
    names = OLD_MODULES[old][1]
    assert names == outcomes[old]["all"]
    assert dict.fromkeys(names, True) == outcomes[old]["same"]


def test_the_package_and_the_new_paths_import_no_alias() -> None:
    """Importing tasks_store and tasks_store.mcp (and using them) raises no warning."""
    code = """
import json, sys, warnings
warnings.simplefilter("error")
import tasks_store, tasks_store.mcp
from tasks_store import TaskContext, TaskRunner, TasksRpc
from tasks_store.mcp import TasksApp
old = [m for m in ("jsonrpc", "wsgi", "context", "runner") if f"tasks_store.{m}" in sys.modules]
print(json.dumps({
    "old": old,
    "same": [
        TaskContext is tasks_store.mcp.TaskContext,
        TaskRunner is tasks_store.mcp.TaskRunner,
        TasksRpc is tasks_store.mcp.TasksRpc,
    ],
}))
"""
    assert {"old": [], "same": [True, True, True]} == _run(code)

"""Constructors and entry points of the serving layer refuse bad arguments up front."""

from __future__ import annotations

from typing import Any

import pytest

from tasks_store import InMemoryTaskStore, InvalidParams, TaskContext, TaskRunner, TasksRpc
from tasks_store.mcp.wsgi import TasksApp


def _tool(arguments: dict[str, Any], ctx: Any) -> dict[str, Any]:
    return {"content": []}


@pytest.mark.parametrize("store", [None, "store", InMemoryTaskStore])
def test_everything_built_on_a_store_refuses_a_non_store(store: object) -> None:
    """TasksRpc, TaskRunner and TaskContext raise TypeError for something that is not a store."""
    with pytest.raises(TypeError, match="store must be a task store"):
        TasksRpc(store)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="store must be a task store"):
        TaskRunner(store)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="store must be a task store"):
        TaskContext(store, "id", "alice")  # type: ignore[arg-type]


def test_task_context_refuses_ids_that_are_not_strings() -> None:
    """A TaskContext needs str ids: the store could never find anything else."""
    store = InMemoryTaskStore()
    with pytest.raises(InvalidParams, match="task_id must be a str"):
        TaskContext(store, 1, "alice")  # type: ignore[arg-type]
    with pytest.raises(InvalidParams, match="owner_id must be a str"):
        TaskContext(store, "id", None)  # type: ignore[arg-type]


def test_runner_refuses_a_non_callable_before_creating_a_task() -> None:
    """start() with something that cannot run raises TypeError and leaves the store empty."""
    store = InMemoryTaskStore()
    with TaskRunner(store) as runner:
        with pytest.raises(TypeError, match="fn must be callable"):
            runner.start("alice", "tools/call", None)  # type: ignore[arg-type]
    assert 0 == len(store)


@pytest.mark.parametrize(
    ("tools", "match"),
    [
        ([_tool], "tools must be a mapping"),
        ({1: _tool}, "tools must map str names to callables"),
        ({"echo": "not a function"}, "tools must map str names to callables"),
    ],
)
def test_tools_must_map_names_to_functions(tools: object, match: str) -> None:
    """A malformed tools table is a TypeError when the app or handler is built, not at a call."""
    rpc = TasksRpc(InMemoryTaskStore())
    with pytest.raises(TypeError, match=match):
        TasksApp(rpc, tools=tools)  # type: ignore[arg-type]
    with TaskRunner(InMemoryTaskStore()) as runner:
        with pytest.raises(TypeError, match=match):
            TasksRpc(InMemoryTaskStore(), tools=tools, runner=runner)  # type: ignore[arg-type]


def test_app_refuses_a_non_rpc_and_a_non_callable_owner_function() -> None:
    """TasksApp needs a TasksRpc and, if given, a callable owner_from_environ."""
    with pytest.raises(TypeError, match="rpc must be a TasksRpc"):
        TasksApp(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="owner_from_environ must be callable"):
        TasksApp(TasksRpc(InMemoryTaskStore()), owner_from_environ="REMOTE_USER")  # type: ignore[arg-type]

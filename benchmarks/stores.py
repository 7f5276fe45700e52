"""
The stores the benchmarks compare: one registry, :data:`STORES`.

Each entry names a store, says which operations it has, and gives a factory
returning a :class:`Target`: the store's operations with the signatures of
:class:`tasks_store.TaskStore`, so every section calls every store alike.
For a store that keeps the contract the target's operations *are* its bound
methods (no wrapper to measure); other stores get thin adapters.

Adding a backend is one entry, e.g. for a Redis store::

    StoreEntry(
        "RedisTaskStore",
        lambda concurrent: contract_target(RedisTaskStore(redis_url, security=BENCH_SECURITY)),
        ALL_OPS,
        "tasks_store's Redis backend: Lua scripts, one round trip per call",
    ),

A factory raises :class:`StoreUnavailable` when its store cannot be built
(a missing package, no server); the run then reports its rows as
unavailable and goes on.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tasks_store import InMemoryTaskStore, TaskSecurityConfig

from .global_lock import GlobalLockStore

__all__ = [
    "ALL_OPS",
    "BENCH_SECURITY",
    "NOT_FOUND_OPS",
    "REFERENCE",
    "RESULT",
    "STORES",
    "StoreEntry",
    "StoreUnavailable",
    "Target",
    "contract_target",
]

T = TypeVar("T")

#: The operations measured, in the order the tables show them.
ALL_OPS: tuple[str, ...] = (
    "create",
    "get",
    "update_status",
    "set_variables",
    "complete_with_result",
    "cancel",
    "list",
    "cleanup_expired",
)

#: The two not-found reads, rows of the latency section (issue 13, item 7): an
#: unknown id must cost what another owner's id costs.
NOT_FOUND_OPS: tuple[str, ...] = ("get (unknown id)", "get (another owner's id)")

#: The store every ratio is taken against.
REFERENCE = "InMemoryTaskStore"

#: Quota high enough never to refuse a benchmark's create (it is still checked).
BENCH_SECURITY = TaskSecurityConfig(max_tasks_per_owner=10**9)

#: The result a completing task stores: a small ``tools/call`` result.
RESULT: dict[str, Any] = {"content": [{"type": "text", "text": "done"}], "isError": False}

#: TTL (ms) of the tasks a ``create`` measurement adds to a contract store;
#: short, so that they expire and ``cleanup_expired`` removes them afterwards.
CREATE_TTL_MS = 25


class StoreUnavailable(RuntimeError):
    """The store cannot be built in this environment; the message says why."""


@dataclass
class Target:
    """
    One store, as the benchmarks call it.

    The operation fields take the arguments of the :class:`tasks_store.TaskStore`
    methods of the same name; None marks an operation the store lacks.
    """

    name: str
    create: Callable[[str, str, int | None], Any]
    get: Callable[[str, str], Any]
    update_status: Callable[[str, str, str], Any]
    set_variables: Callable[[str, str, Mapping[str, Any]], Any] | None
    complete_with_result: Callable[[str, str, str, str | None, Any], Any]
    cancel: Callable[[str, str], Any]
    list: Callable[..., Any]
    cleanup_expired: Callable[[], int] | None
    #: the task id in what ``create`` returned
    task_id: Callable[[Any], str]
    #: the next cursor in what ``list`` returned
    next_cursor: Callable[[Any], str | None]
    #: insert a task as ``create`` would, for filling: (owner_id, ttl_ms) -> id
    load: Callable[[str, int | None], str]
    #: take out, untimed, tasks a ``create`` measurement added
    remove: Callable[[Sequence[Any]], None]
    #: TTL (ms) a ``create`` measurement gives its tasks
    create_ttl_ms: int | None = CREATE_TTL_MS
    #: the write the mixed workload uses for set_variables (a stand-in if it lacks it)
    mixed_write: Callable[[str, str, Mapping[str, Any]], Any] | None = None
    #: one empty call through the adapter's driver, to time it (None: direct calls)
    driver_overhead: Callable[[], None] | None = None
    close: Callable[[], None] = lambda: None
    notes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mixed_write is None:
            self.mixed_write = self.set_variables


def contract_target(store: Any, name: str | None = None) -> Target:
    """
    Return the :class:`Target` of a store that keeps the ``TaskStore`` contract.

    Its operations are the store's own bound methods.  Filling uses the
    store's ``preload`` when it has one, else ``create``.  Tasks a ``create``
    measurement adds get a short TTL and are removed by ``cleanup_expired``.
    """
    preload = getattr(store, "preload", None)

    def load(owner_id: str, ttl_ms: int | None) -> str:
        if preload is not None:
            return str(preload(owner_id, ttl_ms))
        return str(store.create(owner_id, "tools/call", ttl_ms).task.task_id)

    def remove(records: Sequence[Any]) -> None:
        if records:
            last = max(record.expires_at_ms or 0 for record in records) / 1000
            time.sleep(max(0.0, last - time.time()) + 0.002)
            store.cleanup_expired()

    return Target(
        name=name or type(store).__name__,
        create=store.create,
        get=store.get,
        update_status=store.update_status,
        set_variables=store.set_variables,
        complete_with_result=store.complete_with_result,
        cancel=store.cancel,
        list=store.list,
        cleanup_expired=store.cleanup_expired,
        task_id=lambda record: str(record.task.task_id),
        next_cursor=lambda page: page.next_cursor,
        load=load,
        remove=remove,
    )


# -- the MCP Python SDK's store, driven through one event loop -----------------

MCP_NAME = "mcp InMemoryTaskStore"
MCP_OPS = frozenset(
    {"create", "get", "update_status", "complete_with_result", "cancel", "list"}
)


def mcp_version() -> str | None:
    """Return the installed ``mcp`` version, or None."""
    try:
        return importlib.metadata.version("mcp")
    except importlib.metadata.PackageNotFoundError:
        return None


class _Loop:
    """
    One long-lived asyncio event loop that runs the SDK's coroutines.

    *threaded*: the loop runs in its own thread and callers on any thread
    submit with ``run_coroutine_threadsafe`` (for the thread-scaling runs);
    otherwise the calling thread runs it with ``run_until_complete``.
    """

    def __init__(self, threaded: bool) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread: threading.Thread | None = None
        if threaded:
            self.thread = threading.Thread(
                target=self.loop.run_forever, name="mcp-sdk-loop", daemon=True
            )
            self.thread.start()
            loop = self.loop

            def run(coro: Coroutine[Any, Any, T]) -> T:
                return asyncio.run_coroutine_threadsafe(coro, loop).result()

        else:
            run = self.loop.run_until_complete  # type: ignore[assignment]
        self.run: Callable[[Coroutine[Any, Any, Any]], Any] = run

    def close(self) -> None:
        if self.thread is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join()
        self.loop.close()


def mcp_target(concurrent: bool) -> Target:
    """
    Return the MCP SDK's ``InMemoryTaskStore`` as a :class:`Target`.

    Mapped operations: ``create`` is ``create_task``, ``get`` ``get_task``,
    ``update_status`` and ``cancel`` are ``update_task``,
    ``complete_with_result`` is ``update_task`` then ``store_result`` in one
    coroutine, ``list`` is ``list_tasks`` (page size 50; the store has no
    owners, so it pages over every task).  It has no ``set_variables`` and no
    public ``cleanup_expired`` (it scans for expired tasks inside every
    ``create_task``, ``get_task`` and ``list_tasks``).  Owner ids are ignored.

    Raises:
        StoreUnavailable: ``mcp`` (1.23 to 1.29) is not importable.
    """
    try:
        from mcp.shared.experimental.tasks.helpers import create_task_state
        from mcp.shared.experimental.tasks.in_memory_task_store import (
            InMemoryTaskStore as SdkStore,
        )
        from mcp.shared.experimental.tasks.in_memory_task_store import StoredTask
        from mcp.types import CallToolResult, TaskMetadata, TextContent
    except ImportError as exc:
        msg = f"cannot import the MCP SDK's task store: {exc}"
        raise StoreUnavailable(msg) from None

    store = SdkStore(page_size=50)
    driver = _Loop(threaded=concurrent)
    run = driver.run
    result = CallToolResult(content=[TextContent(type="text", text="done")], isError=False)
    metadata: dict[int | None, Any] = {}

    def meta(ttl: int | None) -> Any:
        found = metadata.get(ttl)
        if found is None:
            found = metadata[ttl] = TaskMetadata(ttl=ttl)
        return found

    def create(owner_id: str, request_method: str, ttl: int | None = None) -> Any:
        return run(store.create_task(meta(3_600_000 if ttl is None else ttl)))

    def get(task_id: str, owner_id: str) -> Any:
        return run(store.get_task(task_id))

    def update_status(
        task_id: str, owner_id: str, status: str, status_message: str | None = None
    ) -> Any:
        return run(store.update_task(task_id, status=status, status_message=status_message))  # type: ignore[arg-type]

    async def _complete(task_id: str, status: str, status_message: str | None) -> Any:
        task = await store.update_task(task_id, status=status, status_message=status_message)  # type: ignore[arg-type]
        await store.store_result(task_id, result)
        return task

    def complete_with_result(
        task_id: str, owner_id: str, status: str, status_message: str | None, _: Any
    ) -> Any:
        return run(_complete(task_id, status, status_message))

    def cancel(task_id: str, owner_id: str, status_message: str | None = None) -> Any:
        return run(store.update_task(task_id, status="cancelled", status_message=status_message))

    def list_page(owner_id: str, *, cursor: str | None = None, limit: int | None = None) -> Any:
        return run(store.list_tasks(cursor))

    def set_message(task_id: str, owner_id: str, variables: Mapping[str, Any]) -> Any:
        # stand-in for set_variables in the mixed workload: its nearest write
        return run(store.update_task(task_id, status_message=str(dict(variables))))

    def load(owner_id: str, ttl_ms: int | None) -> str:
        # what create_task stores, without its scan of every task (O(n) each)
        task = create_task_state(meta(ttl_ms))
        store._tasks[task.taskId] = StoredTask(
            task=task, expires_at=store._calculate_expiry(ttl_ms)
        )
        return str(task.taskId)

    def remove(tasks: Sequence[Any]) -> None:
        for task in tasks:
            run(store.delete_task(task.taskId))

    async def _nothing() -> None:
        return None

    def noop() -> None:
        run(_nothing())

    return Target(
        name=MCP_NAME,
        create=create,
        get=get,
        update_status=update_status,
        set_variables=None,
        complete_with_result=complete_with_result,
        cancel=cancel,
        list=list_page,
        cleanup_expired=None,
        task_id=lambda task: str(task.taskId),
        next_cursor=lambda page: page[1],
        load=load,
        remove=remove,
        create_ttl_ms=3_600_000,
        mixed_write=set_message,
        driver_overhead=noop,
        close=driver.close,
        notes={
            "set_variables": "no variables in the SDK's store",
            "cleanup_expired": "no public cleanup; it scans every task inside create/get/list",
            "mixed_write": "set_variables stands in as update_task(status_message=...)",
        },
    )


# -- tasks_store's Redis backend, on a redis-server started for the run ---------

REDIS_NAME = "RedisTaskStore"


def redis_target(concurrent: bool, clock: Callable[[], float] | None = None) -> Target:
    """
    Return :class:`tasks_store.store.redis.RedisTaskStore` as a :class:`Target`.

    The first call starts one local ``redis-server`` for the whole run
    (:mod:`benchmarks.redis_local`); each store gets the flushed server and
    its own client.  *clock*: the store's clock (the wall clock when None).

    Raises:
        StoreUnavailable: ``redis-server`` is not on PATH, redis-py is not
            installed, or the server did not start.
    """
    from .redis_local import RedisUnavailable, redis_store

    extra: dict[str, Any] = {} if clock is None else {"clock": clock}
    try:
        store, client = redis_store(security=BENCH_SECURITY, **extra)
    except RedisUnavailable as exc:
        raise StoreUnavailable(str(exc)) from None
    target = contract_target(store, REDIS_NAME)

    def close() -> None:
        client.flushall()
        client.close()

    target.close = close
    return target


@dataclass(frozen=True)
class StoreEntry:
    """
    One store in the comparison.

    Args:
        name: its row label.
        factory: builds a fresh, empty store; the argument says whether
            several threads will call it at once.
        supports: the operations of :data:`ALL_OPS` it has.
        about: one line on what it is.
        exclusive: only one of its stores may exist at a time (they share a
            server that each new one flushes); sections then build them one
            after another instead of side by side.
        clocked: builds a fresh, empty store on the given clock (epoch
            seconds), for a measurement that moves time instead of waiting;
            None if the store takes no clock.
    """

    name: str
    factory: Callable[[bool], Target]
    supports: frozenset[str]
    about: str
    exclusive: bool = False
    clocked: Callable[[Callable[[], float]], Target] | None = None


#: Every store compared, reference first.
STORES: tuple[StoreEntry, ...] = (
    StoreEntry(
        REFERENCE,
        lambda concurrent: contract_target(InMemoryTaskStore(security=BENCH_SECURITY)),
        frozenset(ALL_OPS),
        "tasks_store.InMemoryTaskStore: striped locks, frozen records, lock-free reads",
        clocked=lambda clock: contract_target(
            InMemoryTaskStore(security=BENCH_SECURITY, clock=clock)
        ),
    ),
    StoreEntry(
        "GlobalLockStore",
        lambda concurrent: contract_target(GlobalLockStore(security=BENCH_SECURITY)),
        frozenset(ALL_OPS),
        "benchmarks.global_lock: one lock, records copied out on every read, scans "
        "for quota/list/cleanup",
        clocked=lambda clock: contract_target(
            GlobalLockStore(security=BENCH_SECURITY, clock=clock)
        ),
    ),
    StoreEntry(
        MCP_NAME,
        mcp_target,
        MCP_OPS,
        "mcp.shared.experimental.tasks.in_memory_task_store.InMemoryTaskStore "
        "(MIT), async, through one event loop",
    ),
    StoreEntry(
        REDIS_NAME,
        redis_target,
        frozenset(ALL_OPS),
        "tasks_store.store.redis.RedisTaskStore on a local redis-server (loopback, no "
        "persistence): Lua scripts, 1-2 round trips per call; its memory rows "
        "count only the client's heap, the tasks live in the server",
        exclusive=True,
        clocked=lambda clock: redis_target(False, clock),
    ),
)

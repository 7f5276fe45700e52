"""
The lock order of :class:`InMemoryTaskStore`, checked by watching every lock.

The module's lock factories (``_StripeLock``, ``_OwnerLock``) are replaced,
before a store is built, by wrappers that keep each thread's stack of held
locks and record a violation whenever a thread:

- takes a stripe lock while it holds an owner lock,
- holds two different stripe locks at once, or
- holds two different owner locks at once.

Every public method then runs from many threads at once (waits included, woken
by completions and by cleanup), and no violation may be recorded.  ``get`` and
``get_result`` must take no lock at all.
"""

from __future__ import annotations

import threading
import traceback
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tasks_store import (
    Expired,
    InMemoryTaskStore,
    NotFound,
    StoreConfig,
    TaskError,
    TaskSecurityConfig,
)
from tasks_store.store import memory

from .conftest import FakeClock
from .test_threads import join_all, raise_unexpected, start_together, wait_until_blocked

OWNERS = ["alice", "bob", "carol", "dave"]


class LockWatch:
    """Keeps, per thread, the stack of watched locks held; records order violations."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._count_lock = threading.Lock()  # guards the counters below; not watched
        self.acquired: Counter[str] = Counter()
        #: times a thread took an owner lock while holding a stripe (the allowed nesting)
        self.nested = 0
        self.violations: list[str] = []

    def stack(self) -> list[TrackedLock]:
        held: list[TrackedLock] | None = getattr(self._local, "held", None)
        if held is None:
            held = self._local.held = []
        return held

    def before_acquire(self, lock: TrackedLock) -> None:
        held = self.stack()
        problem = None
        if lock.kind == "stripe" and any(h.kind == "owner" for h in held):
            problem = "took a stripe lock while holding an owner lock"
        elif any(h.kind == lock.kind and h is not lock for h in held):
            problem = f"took a second {lock.kind} lock"
        if problem is not None:
            where = "".join(traceback.format_stack(limit=8)[:-2])
            self.violations.append(f"{threading.current_thread().name}: {problem}\n{where}")
        if lock.kind == "owner" and any(h.kind == "stripe" for h in held):
            with self._count_lock:
                self.nested += 1

    def push(self, lock: TrackedLock, times: int = 1) -> None:
        self.stack().extend([lock] * times)
        with self._count_lock:
            self.acquired[lock.kind] += 1

    def pop(self, lock: TrackedLock) -> None:
        held = self.stack()
        for i in range(len(held) - 1, -1, -1):
            if held[i] is lock:
                del held[i]
                return
        self.violations.append(f"released a {lock.kind} lock this thread does not hold")

    def pop_all(self, lock: TrackedLock) -> int:
        held = self.stack()
        times = sum(1 for h in held if h is lock)
        held[:] = [h for h in held if h is not lock]
        return times

    def total(self) -> int:
        with self._count_lock:
            return sum(self.acquired.values())


class TrackedLock:
    """A lock that reports every acquire and release to a :class:`LockWatch`."""

    def __init__(self, watch: LockWatch, kind: str, inner: Any) -> None:
        self.watch = watch
        self.kind = kind
        self.inner = inner

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        self.watch.before_acquire(self)
        got: bool = self.inner.acquire(blocking, timeout)
        if got:
            self.watch.push(self)
        return got

    def release(self) -> None:
        self.watch.pop(self)
        self.inner.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class TrackedRLock(TrackedLock):
    """A re-entrant :class:`TrackedLock` that a ``threading.Condition`` can sleep on."""

    def _is_owned(self) -> bool:
        owned: bool = self.inner._is_owned()
        return owned

    def _release_save(self) -> tuple[Any, int]:
        times = self.watch.pop_all(self)
        return self.inner._release_save(), times

    def _acquire_restore(self, state: tuple[Any, int]) -> None:
        self.watch.before_acquire(self)
        self.inner._acquire_restore(state[0])
        self.watch.push(self, state[1])


@pytest.fixture
def watch(monkeypatch: pytest.MonkeyPatch) -> LockWatch:
    """Make every store built from now on use watched locks."""
    lock_watch = LockWatch()
    monkeypatch.setattr(
        memory, "_StripeLock", lambda: TrackedRLock(lock_watch, "stripe", threading.RLock())
    )
    monkeypatch.setattr(
        memory, "_OwnerLock", lambda: TrackedLock(lock_watch, "owner", threading.Lock())
    )
    return lock_watch


def _attempt(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a store method; a refusal (any TaskError) is fine here, only the locks matter."""
    try:
        return call(*args, **kwargs)
    except TaskError as exc:
        return exc


def _exercise(store: InMemoryTaskStore, owner: str, n: int) -> None:
    """Call every public method, error paths included, as *owner*."""
    other = OWNERS[(OWNERS.index(owner) + 1) % len(OWNERS)]
    ids = []
    for k in range(8):  # more than the quota of 6: some are refused
        created = _attempt(store.create, owner, "tools/call", 1_000 if k % 3 == 0 else None)
        if not isinstance(created, TaskError):
            ids.append(created.task_id)
    for k, task_id in enumerate(ids):
        _attempt(store.get, task_id, owner)
        _attempt(store.get, task_id, other)  # foreign: NotFound
        _attempt(store.set_variables, task_id, owner, {f"v{n}": k, "shared": [n, k]})
        _attempt(store.set_variables, task_id, owner, {"big": "x" * 200})  # over the limit
        _attempt(store.update_status, task_id, owner, "input_required", f"by {n}")
        _attempt(store.update_status, task_id, owner, "input_required")  # self-transition
        _attempt(store.set_result, task_id, owner, {"partial": n})
        _attempt(store.get_result, task_id, owner)  # NotReady
        _attempt(store.wait, task_id, owner, timeout=0)  # WaitTimeout
        if k % 2:
            _attempt(store.complete_with_result, task_id, owner, "completed", "ok", [n, k])
        else:
            _attempt(store.cancel, task_id, owner, "stop")
        _attempt(store.cancel, task_id, owner)  # already terminal
        _attempt(store.set_result, task_id, owner, "late")  # already terminal
        _attempt(store.get_result, task_id, owner)
        _attempt(store.wait, task_id, owner, timeout=1)
    cursor = None
    while True:
        page = store.list(owner, cursor=cursor, limit=2)
        _attempt(store.list, other, cursor=page.next_cursor or "bogus", limit=2)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    _attempt(store.cleanup_expired)
    assert 0 <= len(store)


def _one_round(store: InMemoryTaskStore, clock: FakeClock) -> None:
    """Every method from ten threads, while eight waiters sleep in wait()."""
    # Waiters asleep in wait(): woken by a completion, or by cleanup removing the task.
    to_finish = [store.create(owner, "tools/call").task_id for owner in OWNERS]
    to_expire = [store.create(owner, "tools/call", ttl=60_000).task_id for owner in OWNERS]
    waits = [
        lambda t=task_id, o=owner: store.wait(t, o, timeout=10)
        for task_id, owner in zip(to_finish + to_expire, OWNERS + OWNERS, strict=True)
    ]
    waiters, wait_outcomes = start_together(waits)
    wait_until_blocked(store, waiters)

    def finish() -> None:
        for task_id, owner in zip(to_finish, OWNERS, strict=True):
            store.complete_with_result(task_id, owner, "completed", None, "done")

    def expire() -> int:
        clock.advance(61)
        return store.cleanup_expired()

    calls: list[Callable[[], Any]] = [
        lambda n=n: _exercise(store, OWNERS[n % len(OWNERS)], n) for n in range(8)
    ]
    calls += [finish, expire]
    workers, outcomes = start_together(calls)
    join_all(workers)
    join_all(waiters)
    raise_unexpected(outcomes)
    finished, removed = wait_outcomes[: len(to_finish)], wait_outcomes[len(to_finish) :]
    raise_unexpected(finished)
    assert ["completed"] * len(to_finish) == [o.value.status.value for o in finished]
    # Removed while waiting gives NotFound; a waiter that another terminal write on
    # its stripe woke after the clock moved but before cleanup sees Expired first.
    assert all(isinstance(o.error, (NotFound, Expired)) for o in removed), removed
    store._check()


@pytest.mark.timeout(60)
def test_every_method_from_many_threads_keeps_the_lock_order(watch: LockWatch) -> None:
    """No code path takes a stripe inside an owner lock, or two locks of one kind."""
    for _ in range(3):
        clock = FakeClock()
        store = InMemoryTaskStore(
            config=StoreConfig(max_variable_size_bytes=100),
            security=TaskSecurityConfig(max_tasks_per_owner=6),
            stripes=4,
            clock=clock,
        )
        _one_round(store, clock)
    assert [] == watch.violations, "\n".join(watch.violations)
    assert [] == watch.stack(), "the test thread still holds a lock"
    assert 0 < watch.acquired["stripe"]
    assert 0 < watch.acquired["owner"]
    assert 0 < watch.nested, "no owner lock was ever taken under a stripe: nothing was checked"


@pytest.mark.timeout(60)
def test_the_watch_reports_every_wrong_order(watch: LockWatch) -> None:
    """The checker itself flags owner-then-stripe, two stripes and two owners."""
    stripe_a, stripe_b = memory._StripeLock(), memory._StripeLock()
    owner_a, owner_b = memory._OwnerLock(), memory._OwnerLock()
    with stripe_a, owner_a:  # the documented order
        pass
    with stripe_a, stripe_a:  # re-entering one stripe is still one lock
        pass
    assert [] == watch.violations
    with owner_a, stripe_a:
        pass
    with stripe_a, stripe_b:
        pass
    with owner_a, owner_b:
        pass
    problems = [v.split("\n")[0].split(": ", 1)[1] for v in watch.violations]
    assert [
        "took a stripe lock while holding an owner lock",
        "took a second stripe lock",
        "took a second owner lock",
    ] == problems
    assert [] == watch.stack()


@pytest.mark.timeout(60)
def test_get_and_get_result_take_no_lock(watch: LockWatch) -> None:
    """Reads never lock: get and get_result acquire no stripe or owner lock."""
    clock = FakeClock()
    store = InMemoryTaskStore(stripes=4, clock=clock)
    working = store.create("alice", "tools/call").task_id
    done = store.create("alice", "tools/call").task_id
    store.complete_with_result(done, "alice", "completed", None, {"ok": True})
    expiring = store.create("alice", "tools/call", ttl=1_000).task_id
    clock.advance(2)  # expired, not yet cleaned up: still readable
    before = watch.total()
    for _ in range(50):
        for task_id in (working, done, expiring):
            store.get(task_id, "alice")
            _attempt(store.get, task_id, "bob")  # foreign: NotFound
            _attempt(store.get_result, task_id, "alice")
        _attempt(store.get, "no-such-task", "alice")
    assert 0 == watch.total() - before
    store.set_variables(working, "alice", {"a": 1})  # a write does lock: the count works
    assert 0 < watch.total() - before

"""
Threaded stress tests: many threads at once, released together by a Barrier.

Every test repeats several rounds and carries a ``pytest-timeout`` so a
deadlock fails fast.  Nothing here measures time: where a test must know that
waiters are asleep before it acts, it looks at their stacks
(:func:`wait_until_blocked`), with a generous bound that only a hang reaches.
"""

from __future__ import annotations

import dis
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from types import CodeType, FrameType
from typing import Any

import pytest

from tasks_store import (
    InMemoryTaskStore,
    InvalidTransition,
    NotFound,
    NotReady,
    ResourceExhausted,
    StoreConfig,
    TaskError,
    TaskSecurityConfig,
    TaskStatus,
)

from .conftest import FakeClock

JOIN_TIMEOUT = 30.0
#: Methods a backend's ``wait`` sleeps in, passing its local ``sleep``, once it
#: has checked the task (``cond.wait(sleep)``, ``pubsub.get_message(timeout=sleep)``).
#: A new backend that sleeps in another call adds its name here.
SLEEP_METHODS = frozenset({"wait", "get_message"})

MakeStore = Callable[..., Any]


# -- helpers ------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _switch_threads_often() -> Iterator[None]:
    """Hand the GIL over far more often than the default 5 ms: more interleavings per round."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(before)


class Outcome:
    """What one thread's call gave: a value or an exception."""

    __slots__ = ("error", "value")

    def __init__(self, value: Any = None, error: BaseException | None = None) -> None:
        self.value = value
        self.error = error

    @property
    def ok(self) -> bool:
        return self.error is None

    def __repr__(self) -> str:
        return f"Outcome(value={self.value!r}, error={self.error!r})"


def start_together(
    calls: list[Callable[[], Any]],
) -> tuple[list[threading.Thread], list[Outcome]]:
    """Start one thread per call; all are released by one Barrier.  Returns unjoined."""
    barrier = threading.Barrier(len(calls), timeout=JOIN_TIMEOUT)
    outcomes = [Outcome() for _ in calls]

    def worker(index: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            outcomes[index].value = call()
        except BaseException as exc:  # handed to the test thread to assert on
            outcomes[index].error = exc

    threads = [
        threading.Thread(target=worker, args=(i, call), daemon=True) for i, call in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    return threads, outcomes


def join_all(threads: Iterable[threading.Thread]) -> None:
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
        assert not thread.is_alive(), f"{thread.name} is stuck"


def run_together(calls: list[Callable[[], Any]]) -> list[Outcome]:
    """Run every call in its own thread, all released at once; return their outcomes."""
    threads, outcomes = start_together(calls)
    join_all(threads)
    return outcomes


def raise_unexpected(
    outcomes: Iterable[Outcome], allowed: tuple[type[BaseException], ...] = ()
) -> None:
    """Re-raise the first error that is not one of *allowed*."""
    for outcome in outcomes:
        if outcome.error is not None and not isinstance(outcome.error, allowed):
            raise outcome.error


def _sleep_lines(store: Any) -> set[int]:
    """Lines of ``store.wait`` that call a sleeping method with ``sleep``, from its bytecode."""
    lines: dict[int, set[Any]] = {}
    line = 0
    for ins in dis.get_instructions(type(store).wait):
        positions = getattr(ins, "positions", None)
        if positions is not None and positions.lineno is not None:
            line = positions.lineno
        elif type(ins.starts_line) is int:  # Python 3.10
            line = ins.starts_line
        lines.setdefault(line, set()).add(ins.argval)
    found = {n for n, names in lines.items() if "sleep" in names and names & SLEEP_METHODS}
    assert found, f"{type(store).__name__}.wait sleeps in no method SLEEP_METHODS knows"
    return found


def _sleeping(frame: FrameType | None, wait_code: CodeType, lines: set[int]) -> bool:
    """
    Whether *frame* (a thread's innermost) is inside wait()'s sleeping call.

    The thread runs on while its frames are walked, and on CPython 3.11 an
    ``f_back`` read then can give an object that is not a frame (once, ``False``,
    in a Redis Cluster run): that counts as "not yet", and the caller looks again.
    """
    depth = 0
    while frame is not None:
        if not isinstance(frame, FrameType):
            return False
        if frame.f_code is wait_code:
            return depth > 0 and frame.f_lineno in lines
        frame = frame.f_back
        depth += 1
    return False


def wait_until_blocked(store: Any, threads: list[threading.Thread]) -> None:
    """Return once every thread is inside ``store.wait``'s sleeping call, past its checks."""
    wait_code = type(store).wait.__code__
    lines = _sleep_lines(store)
    deadline = time.monotonic() + JOIN_TIMEOUT
    while True:
        frames = sys._current_frames()
        if all(_sleeping(frames.get(t.ident or 0), wait_code, lines) for t in threads):
            return
        assert time.monotonic() < deadline, "waiters never went to sleep in wait()"
        time.sleep(0.001)


def check_internals(store: Any) -> None:
    """Assert the backend's own invariants: every store that has a ``_check()`` runs it."""
    check = getattr(store, "_check", None)
    assert check is not None or not isinstance(store, InMemoryTaskStore)
    if check is not None:
        check()


def list_everything(store: Any, owner: str, limit: int = 50) -> list[Any]:
    """Follow ``next_cursor`` to the end; return every record seen, in order."""
    seen: list[Any] = []
    cursor = None
    while True:
        page = store.list(owner, cursor=cursor, limit=limit)
        seen.extend(page.tasks)
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


# -- variables ----------------------------------------------------------------


@pytest.mark.timeout(60)
def test_concurrent_variable_writes_lose_nothing(make_store: MakeStore) -> None:
    """Sixteen threads merging their own keys into one task lose none of them."""
    threads, keys_each = 16, 20
    store = make_store()
    for _ in range(4):
        task_id = store.create("alice", "tools/call").task_id

        def writer(n: int, task_id: str = task_id) -> None:
            for k in range(keys_each):
                store.set_variables(task_id, "alice", {f"t{n}-k{k}": [n, k]})
            # then delete every third of its own keys in one merge
            store.set_variables(
                task_id, "alice", {f"t{n}-k{k}": None for k in range(0, keys_each, 3)}
            )

        outcomes = run_together([lambda n=n: writer(n) for n in range(threads)])
        raise_unexpected(outcomes)
        expected = {
            f"t{n}-k{k}": [n, k] for n in range(threads) for k in range(keys_each) if k % 3 != 0
        }
        assert expected == dict(store.get(task_id, "alice").variables)
    check_internals(store)


# -- quota --------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_creates_racing_at_the_quota_never_overshoot(make_store: MakeStore) -> None:
    """Thirty-two creates at once against a quota of ten: exactly ten succeed."""
    store = make_store(security=TaskSecurityConfig(max_tasks_per_owner=10))
    for round_ in range(6):
        owner = f"owner-{round_}"
        outcomes = run_together([lambda o=owner: store.create(o, "tools/call") for _ in range(32)])
        raise_unexpected(outcomes, (ResourceExhausted,))
        created = [o.value.task_id for o in outcomes if o.ok]
        assert 10 == len(created)
        assert 22 == sum(isinstance(o.error, ResourceExhausted) for o in outcomes)
        assert sorted(created) == sorted(r.task_id for r in list_everything(store, owner))
        assert 10 * (round_ + 1) == len(store)
    check_internals(store)


@pytest.mark.timeout(60)
def test_expired_tasks_free_the_quota_under_a_race(make_store: MakeStore, clock: FakeClock) -> None:
    """Expired tasks stop counting at once, even while cleanup races the creators."""
    store = make_store(security=TaskSecurityConfig(max_tasks_per_owner=10))
    for round_ in range(5):
        owner = f"owner-{round_}"
        old = {store.create(owner, "tools/call", ttl=1_000).task_id for _ in range(10)}
        clock.advance(2)
        calls: list[Callable[[], Any]] = [
            lambda o=owner: store.create(o, "tools/call", ttl=600_000) for _ in range(32)
        ]
        calls.append(store.cleanup_expired)
        outcomes = run_together(calls)
        raise_unexpected(outcomes, (ResourceExhausted,))
        created = {o.value.task_id for o in outcomes[:32] if o.ok}
        assert 10 == len(created)
        assert 10 == outcomes[32].value
        assert created == {r.task_id for r in list_everything(store, owner)}
        assert not old & created
        assert 10 * (round_ + 1) == len(store)
    check_internals(store)


@pytest.mark.timeout(60)
def test_creates_while_cleanup_empties_the_owner_are_all_kept(
    make_store: MakeStore, clock: FakeClock
) -> None:
    """A create racing the removal of its owner's last task is never lost."""
    store = make_store()
    for round_ in range(20):
        owner = f"owner-{round_}"
        store.create(owner, "tools/call", ttl=1_000)
        clock.advance(2)
        calls: list[Callable[[], Any]] = [store.cleanup_expired]
        calls += [lambda o=owner: store.create(o, "tools/call") for _ in range(12)]
        outcomes = run_together(calls)
        raise_unexpected(outcomes)
        assert 1 == outcomes[0].value
        created = {o.value.task_id for o in outcomes[1:]}
        assert created == {r.task_id for r in list_everything(store, owner)}
        for task_id in created:
            assert owner == store.get(task_id, owner).owner_id
        check_internals(store)


# -- one winner ---------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("completers", "cancellers"), [(1, 1), (4, 4)])
def test_complete_and_cancel_race_has_one_winner(
    make_store: MakeStore, completers: int, cancellers: int
) -> None:
    """Racing completions and cancels: one wins, the rest get InvalidTransition."""
    store = make_store()
    winners: Counter[str] = Counter()
    for round_ in range(60):
        task_id = store.create("alice", "tools/call").task_id
        status = "completed" if round_ % 2 else "failed"
        calls: list[Callable[[], Any]] = [
            lambda n=n, t=task_id, s=status: store.complete_with_result(
                t, "alice", s, f"done by {n}", {"by": n}
            )
            for n in range(completers)
        ]
        calls += [
            lambda n=n, t=task_id: store.cancel(t, "alice", f"cancelled by {n}")
            for n in range(cancellers)
        ]
        outcomes = run_together(calls)
        raise_unexpected(outcomes, (InvalidTransition,))
        won = [i for i, o in enumerate(outcomes) if o.ok]
        assert 1 == len(won)
        assert len(calls) - 1 == sum(isinstance(o.error, InvalidTransition) for o in outcomes)
        winner = won[0]
        final = store.get(task_id, "alice")
        assert outcomes[winner].value.task.to_wire() == final.task.to_wire()
        if winner < completers:
            winners["complete"] += 1
            assert (status, f"done by {winner}") == (final.status.value, final.task.status_message)
            assert {"by": winner} == final.result
            assert {"by": winner} == store.get_result(task_id, "alice")
        else:
            winners["cancel"] += 1
            n = winner - completers
            assert ("cancelled", f"cancelled by {n}") == (
                final.status.value,
                final.task.status_message,
            )
            assert False is final.has_result
            with pytest.raises(NotReady):
                store.get_result(task_id, "alice")
    assert 60 == sum(winners.values())
    check_internals(store)


# -- wait ---------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_all_waiters_wake_on_completion(make_store: MakeStore) -> None:
    """Every thread blocked in wait() wakes when the task completes and gets the record."""
    store = make_store()
    for round_ in range(5):
        task_id = store.create("alice", "tools/call").task_id
        threads, outcomes = start_together(
            [lambda t=task_id: store.wait(t, "alice", timeout=10) for _ in range(8)]
        )
        wait_until_blocked(store, threads)
        done = store.complete_with_result(task_id, "alice", "completed", None, [round_])
        join_all(threads)
        raise_unexpected(outcomes)
        for outcome in outcomes:
            assert TaskStatus.COMPLETED == outcome.value.status
            assert done.task.to_wire() == outcome.value.task.to_wire()
            assert [round_] == outcome.value.result
    check_internals(store)


@pytest.mark.timeout(60)
def test_waiters_get_not_found_when_cleanup_removes_the_task(
    make_store: MakeStore, clock: FakeClock
) -> None:
    """Waiters on a task that expires and is cleaned up wake with NotFound."""
    store = make_store()
    if hasattr(store, "recheck_interval_s"):
        # Redis also re-reads on a timer; a tick between advance() and cleanup would
        # rightly see the task expired-but-present (Expired).  No tick in that window.
        store.recheck_interval_s = JOIN_TIMEOUT
    for _ in range(5):
        task_id = store.create("alice", "tools/call", ttl=60_000).task_id
        threads, outcomes = start_together(
            [lambda t=task_id: store.wait(t, "alice", timeout=10) for _ in range(4)]
        )
        wait_until_blocked(store, threads)
        clock.advance(61)
        assert 1 == store.cleanup_expired()
        join_all(threads)
        raise_unexpected(outcomes, (NotFound,))
        assert [NotFound] * 4 == [type(o.error) for o in outcomes]
    check_internals(store)


@pytest.mark.timeout(60)
def test_no_wakeup_is_lost_when_the_task_ends_during_the_check(make_store: MakeStore) -> None:
    """A task that ends while waiters are between their check and their sleep still wakes them."""
    store = make_store(security=TaskSecurityConfig(max_tasks_per_owner=1_000))
    finishers: list[Callable[[str], Any]] = [
        lambda t: store.complete_with_result(t, "alice", "completed", None, 1),
        lambda t: store.cancel(t, "alice"),
        lambda t: store.update_status(t, "alice", "failed"),
    ]
    for round_ in range(150):
        task_id = store.create("alice", "tools/call").task_id
        finish = finishers[round_ % len(finishers)]
        calls: list[Callable[[], Any]] = [
            lambda t=task_id: store.wait(t, "alice", timeout=10) for _ in range(4)
        ]
        calls.append(lambda f=finish, t=task_id: f(t))
        outcomes = run_together(calls)
        raise_unexpected(outcomes)
        final = store.get(task_id, "alice")
        assert final.status.is_terminal
        for outcome in outcomes[:4]:
            assert final.task.to_wire() == outcome.value.task.to_wire()
    check_internals(store)


class TripClock(FakeClock):
    """A FakeClock that runs an action, once, when the armed thread next reads it."""

    def __init__(self) -> None:
        super().__init__()
        self._trip: tuple[int, Callable[[], Any]] | None = None
        self.tripped = 0

    def arm(self, action: Callable[[], Any]) -> None:
        self._trip = (threading.get_ident(), action)

    def __call__(self) -> float:
        trip = self._trip
        if trip is not None and trip[0] == threading.get_ident():
            self._trip = None
            self.tripped += 1
            trip[1]()
        return self.now


@pytest.mark.timeout(60)
def test_a_transition_between_check_and_sleep_still_wakes_the_waiter(
    make_store: MakeStore,
) -> None:
    """A task ended by another thread right after wait() read it (no lock held) still returns."""
    clock = TripClock()
    store = make_store(clock=clock)
    finishers: list[Callable[[str], Any]] = [
        lambda t: store.complete_with_result(t, "alice", "completed", None, 1),
        lambda t: store.cancel(t, "alice"),
        lambda t: store.update_status(t, "alice", "failed"),
    ]
    for round_ in range(15):
        task_id = store.create("alice", "tools/call").task_id
        finish = finishers[round_ % len(finishers)]

        def end_elsewhere(f: Callable[[str], Any] = finish, t: str = task_id) -> None:
            # wait() has read the record and checks it against the clock: end the
            # task from another thread now, before the waiter goes to sleep.
            raise_unexpected(run_together([lambda: f(t)]))

        clock.arm(end_elsewhere)
        record = store.wait(task_id, "alice", timeout=10)
        assert round_ + 1 == clock.tripped, "the transition did not land inside wait()"
        assert store.get(task_id, "alice").task.to_wire() == record.task.to_wire()
        assert record.status.is_terminal
    check_internals(store)


# -- list ---------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_paging_while_others_insert_and_clean_up(make_store: MakeStore, clock: FakeClock) -> None:
    """Paging to the end sees no task twice and every task that existed throughout."""
    store = make_store(
        config=StoreConfig(default_ttl_ms=None, max_ttl_ms=None),
        security=TaskSecurityConfig(max_tasks_per_owner=100_000),
    )
    for round_ in range(3):
        alice, bob = f"alice-{round_}", f"bob-{round_}"
        stable, doomed = set(), set()
        for _ in range(150):
            stable.add(store.create(alice, "tools/call").task_id)
            doomed.add(store.create(alice, "tools/call", ttl=1_000).task_id)
        clock.advance(2)
        inserted: list[str] = []

        def insert(owner: str, inserted: list[str] = inserted) -> None:
            for _ in range(60):
                inserted.append(store.create(owner, "tools/call").task_id)

        def page(limit: int, owner: str = alice) -> list[Any]:
            return list_everything(store, owner, limit=limit)

        calls: list[Callable[[], Any]] = [lambda n=n: page(3 + 2 * n) for n in range(4)]
        calls += [lambda o=alice: insert(o), lambda o=alice: insert(o), lambda o=bob: insert(o)]
        calls.append(store.cleanup_expired)
        outcomes = run_together(calls)
        raise_unexpected(outcomes)
        assert len(doomed) == outcomes[-1].value
        known = stable | doomed | set(inserted)
        for outcome in outcomes[:4]:
            ids = [record.task_id for record in outcome.value]
            assert len(ids) == len(set(ids)), "a task was listed twice"
            assert set() == stable - set(ids), "a task that existed throughout was missed"
            assert set() == set(ids) - known, "a task nobody created was listed"
            assert {alice} == {record.owner_id for record in outcome.value}
            keys = [(record.created_ms, record.seq) for record in outcome.value]
            assert sorted(keys, reverse=True) == keys, "pages are not newest first"
        final = list_everything(store, alice)
        assert {alice} == {record.owner_id for record in final}
        assert set() == {record.task_id for record in final} & doomed
        assert 150 + 120 == len(final)
    check_internals(store)


# -- everything at once -------------------------------------------------------

STATUSES = [s.value for s in TaskStatus]
OWNERS = ["alice", "bob", "carol", "dave"]


def _random_ops(
    store: Any, clock: FakeClock, created: list[tuple[str, str, int | None]], seed: int, steps: int
) -> Counter[str]:
    """Do *steps* random calls; return how many of each kind succeeded or failed how."""
    rng = random.Random(seed)
    seen: Counter[str] = Counter()
    for _ in range(steps):
        owner = rng.choice(OWNERS)
        task_id = "no-such-task"
        if created and rng.random() < 0.9:
            # *created* only grows (list.append is atomic), so choosing from it is safe
            task_id, creator, _ = rng.choice(created)
            owner = creator if rng.random() < 0.75 else owner
        op = rng.randrange(12)
        try:
            if op == 0:
                ttl = rng.choice([None, 0, 500, 5_000, 60_000])
                record = store.create(owner, "tools/call", ttl=ttl)
                created.append((record.task_id, owner, record.expires_at_ms))
            elif op == 1:
                store.update_status(task_id, owner, rng.choice(STATUSES), f"m{seed}")
            elif op == 2:
                key = rng.choice("abcdef")
                store.set_variables(task_id, owner, {key: rng.choice([None, seed, "x" * 5])})
            elif op == 3:
                store.set_result(task_id, owner, {"seed": seed})
            elif op == 4:
                store.complete_with_result(task_id, owner, "completed", None, [seed])
            elif op == 5:
                store.cancel(task_id, owner)
            elif op == 6:
                store.get(task_id, owner)
            elif op == 7:
                store.get_result(task_id, owner)
            elif op == 8:
                list_everything(store, owner, limit=rng.randint(1, 10))
            elif op == 9:
                store.wait(task_id, owner, timeout=0)
            elif op == 10:
                store.cleanup_expired()
            elif seed == 0:  # one thread moves the clock
                clock.advance(rng.choice([0.1, 0.5, 1.0]))
            seen[f"{op} ok"] += 1
        except TaskError as exc:
            seen[f"{op} {type(exc).__name__}"] += 1
    return seen


@pytest.mark.timeout(60)
def test_mixed_operations_from_many_threads_keep_the_store_consistent(
    make_store: MakeStore, clock: FakeClock
) -> None:
    """After many threads do random calls at once, the store is still self-consistent."""
    store = make_store(security=TaskSecurityConfig(max_tasks_per_owner=15))
    for _ in range(3):
        created: list[tuple[str, str, int | None]] = []
        outcomes = run_together(
            [lambda n=n, c=created: _random_ops(store, clock, c, n, 300) for n in range(8)]
        )
        raise_unexpected(outcomes)
        totals: Counter[str] = sum((o.value for o in outcomes), Counter())
        assert 0 < totals["0 ok"], "no task was ever created"
        check_internals(store)
        listed = {owner: list_everything(store, owner, limit=7) for owner in OWNERS}
        assert len(store) == sum(len(records) for records in listed.values())
        held = {record.task_id for records in listed.values() for record in records}
        for owner, records in listed.items():
            for record in records:
                assert record.task.to_wire() == store.get(record.task_id, owner).task.to_wire()
                for other in set(OWNERS) - {owner}:
                    with pytest.raises(NotFound):
                        store.get(record.task_id, other)
        now_ms = int(clock() * 1000)
        expiry = {task_id: expires for task_id, _, expires in created}
        for task_id in set(expiry) - held:  # removed: only by cleanup, and only once expired
            expires = expiry[task_id]
            assert expires is not None, "a task without a TTL vanished"
            assert expires <= now_ms, "an unexpired task vanished"
            for owner in OWNERS:
                with pytest.raises(NotFound):
                    store.get(task_id, owner)
        clock.advance(120)
        store.cleanup_expired()
        check_internals(store)

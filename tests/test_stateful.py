"""
A Hypothesis state machine that drives a store against a plain-dict model.

:class:`StoreMachine` holds the rules and the model; it is backend-neutral.
A backend gets a subclass that says how to build its store (and, optionally,
how to check its internals and tear it down)::

    class RedisMachine(StoreMachine):
        def make_store(self, **kwargs):
            return RedisTaskStore(client=fresh_client(), **kwargs)

    class TestRedisStore(RedisMachine.TestCase):
        \"\"\"Any sequence of calls on the Redis store agrees with the model.\"\"\"
        settings = MACHINE_SETTINGS

Limits are small (3 live tasks per owner, TTLs of seconds, 40 bytes of
variables, and of outstanding input requests and responses) so the steps hit
quotas, expiry and the size limits often.

Input requests (``request_input``, ``respond_input``, ``withdraw_input``,
``wait_input`` without blocking) and progress messages
(``set_status_message``) are rules too: keys from a small alphabet, so that
reused, unknown, answered and withdrawn keys come up often.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import attrs
import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
)

from tasks_store import (
    Expired,
    InMemoryTaskStore,
    InvalidCursor,
    InvalidParams,
    InvalidTransition,
    NotFound,
    NotReady,
    ResourceExhausted,
    StoreConfig,
    TaskSecurityConfig,
    TaskStatus,
    TtlExceeded,
    VariableSizeExceeded,
    WaitTimeout,
)
from tasks_store.errors import InputSizeExceeded, TaskEnded

from .conftest import FakeClock
from .strategies import json_values, texts

pytestmark = pytest.mark.timeout(120)

MACHINE_SETTINGS = settings(max_examples=60, stateful_step_count=40, deadline=None)

OWNERS = ["alice", "bob", "carol"]
QUOTA = 3
MAX_VARIABLE_BYTES = 40
POLL_INTERVAL_MS = 1000
#: (default_ttl_ms, max_ttl_ms) of the two store set-ups a run may start with.
TTL_SETUPS = {"bounded": (5_000, 20_000), "unlimited": (None, None)}

STATUS_VALUES = [s.value for s in TaskStatus]
TERMINAL_VALUES = [s.value for s in TaskStatus if s.is_terminal]
NO_RESULT = object()

messages = st.one_of(st.none(), texts)
ttls = st.one_of(st.none(), st.integers(0, 25_000))
variable_updates = st.dictionaries(
    st.sampled_from("abc"),
    st.one_of(st.none(), st.integers(-9, 9), st.text("xy€", max_size=8)),
    max_size=3,
)
results = st.one_of(st.none(), json_values)
input_keys = st.lists(st.sampled_from("pqrs"), min_size=1, max_size=3, unique=True)
#: One small request (33 bytes of JSON with its key): two fill the 40 bytes.
REQUEST = {"method": "x", "params": {}}
answer_values = st.one_of(st.just({}), st.builds(lambda n: {"n": n}, st.integers(0, 9)))
input_answers = st.dictionaries(st.sampled_from("pqrst"), answer_values, max_size=3)


def _stamp(epoch_ms: int) -> str:
    """ISO 8601 UTC with milliseconds, as the protocol wants it."""
    when = datetime.fromtimestamp(epoch_ms // 1000, timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S") + f".{epoch_ms % 1000:03d}Z"


def _size(variables: dict[str, Any]) -> int:
    text = json.dumps(variables, ensure_ascii=False, separators=(",", ":"))
    return len(text.encode("utf-8"))


def _input_size(outstanding: dict[str, Any], answered: dict[str, Any]) -> int:
    return _size(outstanding) + _size(answered)


@attrs.define
class ModelTask:
    """What the model knows of one task."""

    owner: str
    order: int
    created_ms: int
    updated_ms: int
    ttl_ms: int | None
    status: str = "working"
    message: str | None = None
    variables: dict[str, Any] = attrs.Factory(dict)
    result: Any = NO_RESULT
    issued: list[str] = attrs.Factory(list)
    outstanding: dict[str, Any] = attrs.Factory(dict)
    answered: dict[str, Any] = attrs.Factory(dict)

    @property
    def expires_ms(self) -> int | None:
        return None if self.ttl_ms is None else self.created_ms + self.ttl_ms

    def expired(self, now_ms: int) -> bool:
        return self.expires_ms is not None and now_ms >= self.expires_ms

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_VALUES


class StoreMachine(RuleBasedStateMachine):
    """Drive a store with every public method and compare it to a plain model."""

    owners = Bundle("owners")
    tasks = Bundle("tasks")

    # -- hooks for backends ---------------------------------------------------

    def make_store(self, **kwargs: Any) -> Any:
        """Return a fresh, empty store of the backend under test."""
        raise NotImplementedError

    def check_internals(self) -> None:
        """Assert the backend's own invariants; nothing by default."""

    # -- set-up ---------------------------------------------------------------

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.store: Any = None
        self.model: dict[str, ModelTask] = {}
        self.known_owners: set[str] = set()
        self.owner_of: dict[str, str] = {}  # every task id ever created -> its owner
        self.ended: dict[str, str] = {}  # task id -> the terminal status it reached
        self.created = 0
        self.max_ttl_ms: int | None = None
        self.default_ttl_ms: int | None = None

    @initialize(target=owners)
    def seed_owners(self) -> Any:
        self.known_owners.update(OWNERS)
        return multiple(*OWNERS)

    @initialize(
        target=tasks,
        setup=st.sampled_from(sorted(TTL_SETUPS)),
        first=st.lists(st.tuples(st.sampled_from(OWNERS), ttls), max_size=6),
    )
    def build_store(self, setup: str, first: list[tuple[str, int | None]]) -> Any:
        """Build the store with one of the TTL set-ups and create a few tasks."""
        self.default_ttl_ms, self.max_ttl_ms = TTL_SETUPS[setup]
        self.store = self.make_store(
            config=StoreConfig(
                max_variable_size_bytes=MAX_VARIABLE_BYTES,
                default_ttl_ms=self.default_ttl_ms,
                max_ttl_ms=self.max_ttl_ms,
            ),
            security=TaskSecurityConfig(max_tasks_per_owner=QUOTA),
            poll_interval_ms=POLL_INTERVAL_MS,
            clock=self.clock,
        )
        created = [self.create_one(owner, ttl) for owner, ttl in first]
        return multiple(*(task_id for task_id in created if task_id is not None))

    @property
    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def caller(self, task_id: str, owner: str, as_owner: bool) -> str:
        """The owner to call as: the task's creator when *as_owner*, else *owner*."""
        return self.owner_of[task_id] if as_owner else owner

    def visible(self, task_id: str, owner: str) -> ModelTask | None:
        """The model task if *owner* may see it; None when the store must say NotFound."""
        task = self.model.get(task_id)
        return task if task is not None and task.owner == owner else None

    def change_error(self, task: ModelTask | None) -> type[Exception] | None:
        """The error every change must raise before its own rules: NotFound, Expired."""
        if task is None:
            return NotFound
        if task.expired(self.now_ms):
            return Expired
        return None

    def refused(self, error: type[Exception], method: Any, *args: Any, **kwargs: Any) -> None:
        """Call a store method that must raise *error*; count the outcome for the statistics."""
        event(f"{method.__name__} -> {error.__name__}")
        with pytest.raises(error):
            method(*args, **kwargs)

    def assert_matches(self, task_id: str, task: ModelTask, record: Any) -> None:
        assert task_id == record.task_id
        assert task.owner == record.owner_id
        assert task.status == record.task.status.value
        assert task.message == record.task.status_message
        assert task.variables == dict(record.variables)
        assert (task.result is not NO_RESULT) == record.has_result
        assert (None if task.result is NO_RESULT else task.result) == record.result
        assert task.ttl_ms == record.task.ttl
        assert task.expires_ms == record.expires_at_ms
        assert _stamp(task.created_ms) == record.task.created_at
        assert _stamp(task.updated_ms) == record.task.last_updated_at
        assert POLL_INTERVAL_MS == record.task.poll_interval
        assert tuple(task.issued) == record.input_keys
        live = not task.terminal
        assert (task.outstanding if live else {}) == dict(record.input_requests)
        assert (task.answered if live else {}) == dict(record.input_responses)

    def touch(self, task_id: str, task: ModelTask, record: Any) -> None:
        """Record a successful change in the model and check what the store returned."""
        event("change -> ok")
        task.updated_ms = self.now_ms
        if task.terminal:
            self.ended.setdefault(task_id, task.status)
        if record is not None:
            self.assert_matches(task_id, task, record)

    # -- rules ----------------------------------------------------------------

    @rule(target=tasks, owner=owners, requested=st.lists(ttls, min_size=1, max_size=4))
    def create(self, owner: str, requested: list[int | None]) -> Any:
        """Create one task per requested TTL, one after another."""
        created = []
        for ttl in requested:
            task_id = self.create_one(owner, ttl)
            if task_id is not None:
                created.append(task_id)
        return multiple(*created)

    def create_one(self, owner: str, ttl: int | None) -> str | None:
        now = self.now_ms
        live = sum(1 for t in self.model.values() if t.owner == owner and not t.expired(now))
        if ttl is not None and self.max_ttl_ms is not None and ttl > self.max_ttl_ms:
            self.refused(TtlExceeded, self.store.create, owner, "tools/call", ttl)
            return None
        if live >= QUOTA:
            self.refused(ResourceExhausted, self.store.create, owner, "tools/call", ttl)
            return None
        record = self.store.create(owner, "tools/call", ttl)
        event("create -> ok")
        self.created += 1
        task = ModelTask(
            owner=owner,
            order=self.created,
            created_ms=now,
            updated_ms=now,
            ttl_ms=self.default_ttl_ms if ttl is None else ttl,
        )
        self.model[record.task_id] = task
        self.owner_of[record.task_id] = owner
        self.assert_matches(record.task_id, task, record)
        assert "tools/call" == record.request_method
        return record.task_id

    @rule(
        task_id=tasks,
        owner=owners,
        as_owner=st.booleans(),
        status=st.sampled_from(STATUS_VALUES),
        message=messages,
    )
    def update_status(
        self, task_id: str, owner: str, as_owner: bool, status: str, message: str | None
    ) -> None:
        owner = self.caller(task_id, owner, as_owner)
        task = self.visible(task_id, owner)
        error = self.change_error(task)
        if (
            task is not None
            and error is None
            and not TaskStatus(task.status).can_transition_to(status)
        ):
            error = InvalidTransition
        if error is not None:
            self.refused(error, self.store.update_status, task_id, owner, status, message)
            return
        assert task is not None
        record = self.store.update_status(task_id, owner, status, message)
        task.status, task.message = status, message
        self.touch(task_id, task, record)

    @rule(task_id=tasks, owner=owners, as_owner=st.booleans(), message=messages)
    def cancel(self, task_id: str, owner: str, as_owner: bool, message: str | None) -> None:
        owner = self.caller(task_id, owner, as_owner)
        task = self.visible(task_id, owner)
        error = self.change_error(task)
        if error is None and task is not None and task.terminal:
            error = InvalidTransition
        if error is not None:
            self.refused(error, self.store.cancel, task_id, owner, message)
            return
        assert task is not None
        record = self.store.cancel(task_id, owner, message)
        task.status, task.message = "cancelled", message
        self.touch(task_id, task, record)

    @rule(task_id=tasks, owner=owners, as_owner=st.booleans(), updates=variable_updates)
    def set_variables(
        self, task_id: str, owner: str, as_owner: bool, updates: dict[str, Any]
    ) -> None:
        owner = self.caller(task_id, owner, as_owner)
        task = self.visible(task_id, owner)
        error = self.change_error(task)
        merged: dict[str, Any] = {}
        if error is None and task is not None:
            merged = dict(task.variables)
            for key, value in updates.items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
            if _size(merged) > MAX_VARIABLE_BYTES:
                error = VariableSizeExceeded
        if error is not None:
            self.refused(error, self.store.set_variables, task_id, owner, updates)
            return
        assert task is not None
        record = self.store.set_variables(task_id, owner, updates)
        task.variables = merged
        self.touch(task_id, task, record)

    @rule(task_id=tasks, owner=owners, as_owner=st.booleans(), result=results)
    def set_result(self, task_id: str, owner: str, as_owner: bool, result: Any) -> None:
        owner = self.caller(task_id, owner, as_owner)
        task = self.visible(task_id, owner)
        error = self.change_error(task)
        if error is None and task is not None and task.terminal:
            error = InvalidTransition
        if error is not None:
            self.refused(error, self.store.set_result, task_id, owner, result)
            return
        assert task is not None
        assert None is self.store.set_result(task_id, owner, result)
        task.result = result
        self.touch(task_id, task, None)

    @rule(
        task_id=tasks,
        owner=owners,
        as_owner=st.booleans(),
        status=st.sampled_from(TERMINAL_VALUES),
        message=messages,
        result=results,
    )
    def complete_with_result(
        self,
        task_id: str,
        owner: str,
        as_owner: bool,
        status: str,
        message: str | None,
        result: Any,
    ) -> None:
        owner = self.caller(task_id, owner, as_owner)
        task = self.visible(task_id, owner)
        error = self.change_error(task)
        if error is None and task is not None and task.terminal:
            error = InvalidTransition
        if error is not None:
            self.refused(
                error, self.store.complete_with_result, task_id, owner, status, message, result
            )
            return
        assert task is not None
        record = self.store.complete_with_result(task_id, owner, status, message, result)
        task.status, task.message, task.result = status, message, result
        self.touch(task_id, task, record)

    @rule(task_id=tasks, owner=owners, as_owner=st.booleans())
    def get(self, task_id: str, owner: str, as_owner: bool) -> None:
        owner = self.caller(task_id, owner, as_owner)
        task = self.visible(task_id, owner)
        if task is None:
            self.refused(NotFound, self.store.get, task_id, owner)
            return
        record = self.store.get(task_id, owner)
        self.assert_matches(task_id, task, record)
        assert task.expired(self.now_ms) == record.is_expired(self.clock())

    @rule(owner=owners, task_id=st.uuids(version=4).map(str))
    def get_unknown(self, owner: str, task_id: str) -> None:
        self.refused(NotFound, self.store.get, task_id, owner)

    @rule(task_id=tasks, owner=owners, as_owner=st.booleans())
    def get_result(self, task_id: str, owner: str, as_owner: bool) -> None:
        owner = self.caller(task_id, owner, as_owner)
        task = self.visible(task_id, owner)
        error: type[Exception] | None = None
        if task is None:
            error = NotFound
        elif task.terminal:
            error = NotReady if task.result is NO_RESULT else None
        else:
            error = Expired if task.expired(self.now_ms) else NotReady
        if error is not None:
            self.refused(error, self.store.get_result, task_id, owner)
            return
        assert task is not None
        assert task.result == self.store.get_result(task_id, owner)

    @rule(task_id=tasks, owner=owners, as_owner=st.booleans())
    def wait_without_blocking(self, task_id: str, owner: str, as_owner: bool) -> None:
        owner = self.caller(task_id, owner, as_owner)
        task = self.visible(task_id, owner)
        error: type[Exception] | None = None
        if task is None:
            error = NotFound
        elif not task.terminal:
            error = Expired if task.expired(self.now_ms) else WaitTimeout
        if error is not None:
            self.refused(error, self.store.wait, task_id, owner, timeout=0)
            return
        assert task is not None
        self.assert_matches(task_id, task, self.store.wait(task_id, owner, timeout=0))

    @rule(owner=owners, limit=st.integers(1, 4))
    def list_all(self, owner: str, limit: int) -> None:
        expected = sorted(
            (tid for tid, t in self.model.items() if t.owner == owner),
            key=lambda tid: self.model[tid].order,
            reverse=True,
        )
        seen: list[str] = []
        cursor = None
        while True:
            page = self.store.list(owner, cursor=cursor, limit=limit)
            assert len(page.tasks) <= limit
            for record in page.tasks:
                self.assert_matches(record.task_id, self.model[record.task_id], record)
            seen.extend(record.task_id for record in page.tasks)
            if page.next_cursor is None:
                break
            for other in self.known_owners - {owner}:
                self.refused(
                    InvalidCursor, self.store.list, other, cursor=page.next_cursor, limit=limit
                )
            cursor = page.next_cursor
            event("list followed a cursor")
            assert len(seen) <= len(expected)
        assert expected == seen

    # -- input requests and progress messages ---------------------------------

    def resumed(self, task: ModelTask) -> None:
        """An input_required task with nothing outstanding is back to working, message cleared."""
        if task.status == "input_required" and not task.outstanding:
            task.status, task.message = "working", None

    @rule(
        task_id=tasks, owner=owners, as_owner=st.booleans(), keys=input_keys, message=messages
    )
    def request_input(
        self, task_id: str, owner: str, as_owner: bool, keys: list[str], message: str | None
    ) -> None:
        owner = self.caller(task_id, owner, as_owner)
        task = self.visible(task_id, owner)
        requests = dict.fromkeys(keys, REQUEST)
        error = self.change_error(task)
        if error is None and task is not None:
            if task.terminal:
                error = InvalidTransition
            elif set(keys) & set(task.issued):
                error = InvalidParams
            elif _input_size({**task.outstanding, **requests}, task.answered) > MAX_VARIABLE_BYTES:
                error = InputSizeExceeded
        if error is not None:
            self.refused(error, self.store.request_input, task_id, owner, requests, message)
            return
        assert task is not None
        record = self.store.request_input(task_id, owner, requests, message)
        task.issued.extend(keys)
        task.outstanding.update(requests)
        task.status, task.message = "input_required", message
        self.touch(task_id, task, record)

    @rule(task_id=tasks, owner=owners, as_owner=st.booleans(), answers=input_answers)
    def respond_input(
        self, task_id: str, owner: str, as_owner: bool, answers: dict[str, Any]
    ) -> None:
        owner = self.caller(task_id, owner, as_owner)
        task = self.visible(task_id, owner)
        if task is None:
            self.refused(NotFound, self.store.respond_input, task_id, owner, answers)
            return
        if task.terminal:
            assert () == self.store.respond_input(task_id, owner, answers)
            return
        if task.expired(self.now_ms):
            self.refused(Expired, self.store.respond_input, task_id, owner, answers)
            return
        accepted = tuple(key for key in answers if key in task.outstanding)
        outstanding = {k: v for k, v in task.outstanding.items() if k not in accepted}
        answered = {**task.answered, **{key: answers[key] for key in accepted}}
        if accepted and _input_size(outstanding, answered) > MAX_VARIABLE_BYTES:
            self.refused(InputSizeExceeded, self.store.respond_input, task_id, owner, answers)
            return
        assert accepted == self.store.respond_input(task_id, owner, answers)
        if not accepted:
            event("respond_input -> nothing accepted")
            return
        task.outstanding, task.answered = outstanding, answered
        self.resumed(task)
        self.touch(task_id, task, None)

    @rule(task_id=tasks, owner=owners, as_owner=st.booleans(), keys=input_keys)
    def withdraw_input(self, task_id: str, owner: str, as_owner: bool, keys: list[str]) -> None:
        owner = self.caller(task_id, owner, as_owner)
        task = self.visible(task_id, owner)
        error = None if task is None or task.terminal else self.change_error(task)
        if task is None:
            error = NotFound
        if error is not None:
            self.refused(error, self.store.withdraw_input, task_id, owner, keys)
            return
        assert task is not None
        record = self.store.withdraw_input(task_id, owner, keys)
        removed = [k for k in keys if k in task.outstanding or k in task.answered]
        if task.terminal or not removed:
            event("withdraw_input -> nothing to withdraw")
            self.assert_matches(task_id, task, record)
            return
        for key in removed:
            task.outstanding.pop(key, None)
            task.answered.pop(key, None)
        self.resumed(task)
        self.touch(task_id, task, record)

    @rule(task_id=tasks, owner=owners, as_owner=st.booleans(), keys=input_keys)
    def take_input(self, task_id: str, owner: str, as_owner: bool, keys: list[str]) -> None:
        """wait_input with timeout=0: the answers when all are there, else its error."""
        owner = self.caller(task_id, owner, as_owner)
        task = self.visible(task_id, owner)
        error: type[Exception] | None = None
        if task is None:
            error = NotFound
        elif task.terminal:
            error = TaskEnded
        elif task.expired(self.now_ms):
            error = Expired
        elif any(k not in task.outstanding and k not in task.answered for k in keys):
            error = InvalidParams
        elif any(k not in task.answered for k in keys):
            error = WaitTimeout
        if error is not None:
            self.refused(error, self.store.wait_input, task_id, owner, keys, timeout=0)
            return
        assert task is not None
        taken = self.store.wait_input(task_id, owner, keys, timeout=0)
        event("wait_input -> answers taken")
        assert {key: task.answered.pop(key) for key in keys} == taken

    @rule(
        task_id=tasks,
        owner=owners,
        as_owner=st.booleans(),
        message=messages,
        updates=st.one_of(st.none(), variable_updates),
    )
    def set_status_message(
        self,
        task_id: str,
        owner: str,
        as_owner: bool,
        message: str | None,
        updates: dict[str, Any] | None,
    ) -> None:
        owner = self.caller(task_id, owner, as_owner)
        task = self.visible(task_id, owner)
        error = self.change_error(task)
        merged: dict[str, Any] = {}
        if error is None and task is not None:
            if task.terminal:
                error = InvalidTransition
            else:
                merged = dict(task.variables)
                for key, value in (updates or {}).items():
                    if value is None:
                        merged.pop(key, None)
                    else:
                        merged[key] = value
                if _size(merged) > MAX_VARIABLE_BYTES:
                    error = VariableSizeExceeded
        call = self.store.set_status_message
        if error is not None:
            self.refused(error, call, task_id, owner, message, variables=updates)
            return
        assert task is not None
        record = call(task_id, owner, message, variables=updates)
        task.message, task.variables = message, merged
        self.touch(task_id, task, record)

    @rule(seconds=st.sampled_from([0.5, 1.0, 2.0, 5.0, 10.0, 30.0]))
    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def cleanup_expired(self) -> None:
        now = self.now_ms
        gone = [tid for tid, t in self.model.items() if t.expired(now)]
        assert len(gone) == self.store.cleanup_expired()
        event(f"cleanup removed {min(len(gone), 2)}{'+' if len(gone) >= 2 else ''}")
        for task_id in gone:
            del self.model[task_id]

    # -- invariants -----------------------------------------------------------

    @invariant()
    def every_task_matches_the_model(self) -> None:
        """Each task reads as the model has it; one that ended still has the status it ended in."""
        for task_id, task in self.model.items():
            record = self.store.get(task_id, task.owner)
            self.assert_matches(task_id, task, record)
            if task_id in self.ended:
                assert self.ended[task_id] == record.task.status.value, f"{task_id} left its end"

    @invariant()
    def tasks_are_invisible_to_other_owners(self) -> None:
        for task_id, task in self.model.items():
            for other in self.known_owners - {task.owner}:
                self.refused(NotFound, self.store.get, task_id, other)

    @invariant()
    def length_matches(self) -> None:
        assert len(self.model) == len(self.store)

    @invariant()
    def backend_internals_hold(self) -> None:
        self.check_internals()


class MemoryMachine(StoreMachine):
    """The machine over :class:`InMemoryTaskStore`, checking its internals too."""

    def make_store(self, **kwargs: Any) -> Any:
        return InMemoryTaskStore(stripes=4, **kwargs)

    def check_internals(self) -> None:
        self.store._check()


class TestMemoryStore(MemoryMachine.TestCase):  # type: ignore[misc,name-defined]
    """Any sequence of calls on the in-memory store agrees with the plain-dict model."""

    settings = MACHINE_SETTINGS


class RedisMachine(StoreMachine):
    """The machine over :class:`RedisTaskStore` on the session's server, checking its keys too."""

    #: The session's client, set by the test class's fixture.
    client: Any = None

    @classmethod
    def flush(cls) -> None:
        cls.client.flushall()

    def make_store(self, **kwargs: Any) -> Any:
        from tasks_store.store.redis import RedisTaskStore

        self.flush()
        return RedisTaskStore(type(self).client, **kwargs)

    def check_internals(self) -> None:
        self.store._check()


@pytest.mark.redis
class TestRedisStore(RedisMachine.TestCase):  # type: ignore[misc,name-defined]
    """Any sequence of calls on the Redis store agrees with the plain-dict model."""

    settings = MACHINE_SETTINGS

    @pytest.fixture(autouse=True)
    def _redis_client(self, redis_client: Any) -> Any:
        RedisMachine.client = redis_client
        yield
        RedisMachine.client = None


class RedisClusterMachine(RedisMachine):
    """The same machine on the session's three-node cluster."""

    client: Any = None

    @classmethod
    def flush(cls) -> None:
        from redis.cluster import RedisCluster

        cls.client.flushall(target_nodes=RedisCluster.PRIMARIES)


@pytest.mark.redis
class TestRedisClusterStore(RedisClusterMachine.TestCase):  # type: ignore[misc,name-defined]
    """Any sequence of calls on the store on Redis Cluster agrees with the plain-dict model."""

    settings = MACHINE_SETTINGS

    @pytest.fixture(autouse=True)
    def _cluster_client(self, cluster_store_client: Any) -> Any:
        RedisClusterMachine.client = cluster_store_client
        yield
        RedisClusterMachine.client = None

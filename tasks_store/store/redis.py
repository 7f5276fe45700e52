"""
:class:`RedisTaskStore`: the :class:`TaskStore` contract on a Redis server.

The store is shared by every process and machine that points at the same
server, so a task created by one worker is seen by all.  The domain rules live
in :mod:`tasks_store.rules`, exactly as for :class:`InMemoryTaskStore`; this
module holds only storage.

Keys
====

``<p>`` is ``key_prefix``; ``<n>:<owner>`` is the owner id's UTF-8 length,
a colon and the owner id itself (the length makes the key unambiguous
whatever characters the owner id holds).

==================================  ======  ====================================
key                                 type    holds
==================================  ======  ====================================
``<p>:o:<n>:<owner>:t:<id>``        hash    one task: ``ver`` (version), ``op``
                                            (last write token), ``seq``,
                                            ``task`` (wire JSON), ``info``
                                            (owner, method, created, expires),
                                            ``vars`` and ``result`` (JSON text)
``<p>:o:<n>:<owner>:list``          zset    the owner's tasks for ``list``: score
                                            0, member
                                            ``<created_ms:16>:<seq:16>:<id>``
``<p>:o:<n>:<owner>:live``          zset    id -> expires_at_ms (+inf: no TTL),
                                            for the quota
``<p>:expiry``                      zset    ``<list member>:<owner>`` ->
                                            expires_at_ms, for cleanup
``<p>:id:<id>``                     string  the owner (JSON) of task *id*
``<p>:seq``, ``<p>:count``          string  creation counter; tasks held
``<p>:secret``                      string  cursor secret (hex), set once
``<p>:ev:<id>`` (channel)           pubsub  task *id* ended, or was removed
==================================  ======  ====================================

The owner is part of every task key, so a caller can only ever address its
own tasks: another owner's id names a key that does not exist.  The id index
is read only after a miss, to log a foreign access with both owners.

Atomicity
=========

Every write is one Lua script (``tasks_store/store/lua/*.lua``, run with EVALSHA):

- ``create.lua`` counts the owner's live tasks and writes the task and all
  its index entries, or refuses, in one step: the quota holds across
  processes.
- A change is :class:`~tasks_store.store._base.BaseTaskStore`'s write path
  on its optimistic side only: it reads the record and its version, computes
  the new record in Python with :mod:`tasks_store.rules` and one clock
  reading, and ``swap.lua`` stores it only if the version is unchanged
  (compare and swap); otherwise the script returns the current record and
  the change is computed again, up to 64 times.  No update is lost.  A change
  that ends the task publishes on its channel in the same script.
- Each write carries a random token, so a call that redis-py retries after a
  lost reply is recognised as already applied, not applied twice.

Expiry
======

Expiry is decided with the store's clock against ``expires_at_ms`` kept in
the record, as in memory: an expired task stays readable until
:meth:`RedisTaskStore.cleanup_expired` removes it.  Redis also drops a task's
keys :attr:`RedisTaskStore.retention_ms` after it expired (``PEXPIREAT``,
server time), a backstop that bounds memory if cleanup never runs.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from importlib import resources
from typing import Any, ClassVar, NamedTuple, NoReturn

import redis
from redis.commands.core import Script

from .. import rules
from ..config import StoreConfig, TaskSecurityConfig
from ..errors import InvalidCursor, NotFound, StoreError, WaitTimeout
from ..records import Task, TaskPage, TaskRecord
from ..status import TaskStatus
from ._base import BaseTaskStore, Build, log_created, log_foreign

__all__ = ["RedisTaskStore"]

#: Tries of a compare-and-swap write before giving up with StoreError.
_MAX_TRIES = 64
#: Expired tasks removed per cleanup script call (one atomic step each).
_CLEANUP_BATCH = 500
#: The hash fields of a record, in the order the scripts return them.
_FIELDS = ("ver", "seq", "task", "info", "vars", "result")
#: Largest value a position field of a list member can hold (16 digits).
_POS_LIMIT = 10**16


def _load_script(name: str) -> str:
    """Return the text of the Lua script *name*, shipped in ``tasks_store/store/lua/``."""
    return resources.files("tasks_store.store").joinpath("lua").joinpath(name).read_text("utf-8")


def _text(value: bytes | str) -> str:
    """Return a reply as str, whatever the client's ``decode_responses``."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _raw(text: str) -> bytes:
    """Return *text* as bytes for a key; every str maps to distinct bytes."""
    return text.encode("utf-8", "surrogatepass")


def _member_head(created_ms: int) -> str:
    return f"{created_ms:016d}:"


def _task_json(task: Task) -> str:
    # ASCII-only: a status message may hold a lone surrogate, as in memory.
    return json.dumps(task.to_wire(), separators=(",", ":"))


class _Keys:
    """The keys of one task (and its owner's indexes)."""

    __slots__ = ("channel", "index", "list", "live", "task", "task_head")

    def __init__(self, prefix: bytes, owner_id: str, task_id: str) -> None:
        owner = _raw(owner_id)
        base = b"%s:o:%d:%s" % (prefix, len(owner), owner)
        tid = _raw(task_id)
        self.task_head = base + b":t:"
        self.task = self.task_head + tid
        self.list = base + b":list"
        self.live = base + b":live"
        self.index = prefix + b":id:" + tid
        self.channel = prefix + b":ev:" + tid


class _Version(NamedTuple):
    """A handle on one version of a task, for a write (``BaseTaskStore``'s *ref*)."""

    keys: _Keys
    version: int
    record: TaskRecord
    #: this write's token, the same on every try: recognises a retried call
    token: str


class RedisTaskStore(BaseTaskStore[_Version]):
    """
    A thread-safe task store on a Redis server, shared by many processes.

    It keeps the same contract as :class:`InMemoryTaskStore` (same results,
    same errors): switching stores is a one-line change.

    Args:
        client: a ``redis.Redis`` client (either ``decode_responses``); the
            store uses its connection pool from every thread.
        config: limits; ``StoreConfig()`` when None.
        security: quota and anonymous access; ``TaskSecurityConfig()`` when None.
        poll_interval_ms: the ``pollInterval`` given to new tasks.
        key_prefix: the first part of every key; stores sharing a prefix
            share their tasks.
        clock: returns the time in epoch seconds; every timestamp and expiry
            decision uses it.  Give every process the same (wall) clock.

    Raises:
        TypeError: *client*, *config*, *security* or *clock* is of the wrong
            type.
        ValueError: *poll_interval_ms* is not an int >= 0, or *key_prefix*
            is not a non-empty str.

    Every method raises :class:`StoreError` (code -32603), with the redis-py
    error as ``__cause__``, when the server cannot be reached or fails; a
    failed call leaves nothing half-written, and the store works again once
    the server is back.
    """

    #: How long, in ms, Redis keeps an expired task before dropping its keys
    #: itself (a backstop for when :meth:`cleanup_expired` does not run).
    retention_ms: ClassVar[int] = 86_400_000
    #: The longest a waiter sleeps, in seconds, before reading its task again
    #: without a message: the safety net for a message lost while its
    #: subscription reconnected (it also wakes on every message, at the
    #: task's expiry and at its timeout).  The default matches the default
    #: ``pollInterval``.
    recheck_interval_s: ClassVar[float] = 5.0
    #: Every write is a compare-and-swap, tried up to 64 times (then StoreError).
    _costly_tries: ClassVar[int] = _MAX_TRIES
    _cheap_tries: ClassVar[int] = _MAX_TRIES

    def __init__(
        self,
        client: redis.Redis,
        *,
        config: StoreConfig | None = None,
        security: TaskSecurityConfig | None = None,
        poll_interval_ms: int = 5000,
        key_prefix: str = "tasks_store",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(client, redis.Redis):
            msg = f"client must be a redis.Redis, got {type(client).__name__}"
            raise TypeError(msg)
        super().__init__(
            config=config, security=security, poll_interval_ms=poll_interval_ms, clock=clock
        )
        if not isinstance(key_prefix, str) or not key_prefix:
            msg = f"key_prefix must be a non-empty str, got {key_prefix!r}"
            raise ValueError(msg)
        self._client = client
        self._key_prefix = key_prefix
        self._prefix = _raw(key_prefix)
        self._expiry_key = self._prefix + b":expiry"
        self._seq_key = self._prefix + b":seq"
        self._count_key = self._prefix + b":count"
        self._secret_key = self._prefix + b":secret"
        self._secret: str | None = None  # cached; the server's copy wins
        self._secret_lock = threading.Lock()  # guards _secret's first load
        self._create = client.register_script(_load_script("create.lua"))
        self._swap = client.register_script(_load_script("swap.lua"))
        self._list = client.register_script(_load_script("list.lua"))
        self._cleanup = client.register_script(_load_script("cleanup.lua"))

    # -- properties -----------------------------------------------------------

    @property
    def key_prefix(self) -> str:
        """The first part of every key this store uses."""
        return self._key_prefix

    def __len__(self) -> int:
        """
        Return how many tasks are held, expired ones included.

        A task counts until :meth:`cleanup_expired` removes it.  Cost: O(1).
        """
        with self._guard("len"):
            value = self._client.get(self._count_key)
        return 0 if value is None else int(value)

    def __repr__(self) -> str:
        return f"<RedisTaskStore prefix={self._key_prefix!r}>"

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """Turn a redis-py error into :class:`StoreError`, cause chained."""
        try:
            yield
        except redis.RedisError as exc:
            msg = f"Redis failed during {what}: {type(exc).__name__}: {exc}"
            raise StoreError(msg) from exc

    def _run(self, script: Script, what: str, keys: Sequence[bytes], args: Sequence[Any]) -> Any:
        with self._guard(what):
            return script(keys=keys, args=args)

    # -- records --------------------------------------------------------------

    @staticmethod
    def _parse(fields: Sequence[Any]) -> tuple[int, TaskRecord] | None:
        """Return (version, record) from a task hash's fields; None if absent."""
        ver, seq, task, info, variables, result = fields
        if task is None or ver is None:
            return None
        meta = json.loads(info)
        record = TaskRecord(
            task=Task.from_wire(json.loads(task)),
            owner_id=meta["owner"],
            request_method=meta["method"],
            created_ms=meta["created"],
            seq=int(seq),
            expires_at_ms=meta["expires"],
            variables_json=_text(variables),
            result_json=None if result is None else _text(result),
        )
        return int(ver), record

    def _read(self, keys: _Keys) -> tuple[int, TaskRecord] | None:
        with self._guard("read"):
            fields = self._client.hmget(keys.task, _FIELDS)
        return self._parse(fields)

    def _locate(self, task_id: object, owner_id: object) -> tuple[_Keys, int, TaskRecord]:
        """Return the keys, version and record of a task the caller owns."""
        task_id = rules.check_task_id(task_id)
        owner = rules.check_caller(owner_id, self._security)
        keys = _Keys(self._prefix, owner, task_id)
        found = self._read(keys)
        if found is None:
            self._not_found(keys, task_id, owner)
        version, record = found
        return keys, version, record

    def _not_found(self, keys: _Keys, task_id: str, owner: str) -> NoReturn:
        with self._guard("read"):
            holder = self._client.get(keys.index)
        if holder is not None:
            holder_id = json.loads(holder)
            if holder_id != owner:
                log_foreign(task_id, owner, holder_id)
        raise NotFound(task_id)

    # -- create ---------------------------------------------------------------

    def create(
        self, owner_id: str, request_method: str, ttl: int | None = None
    ) -> TaskRecord:
        """
        Create a working task for *owner_id*; see :meth:`TaskStore.create`.

        The quota check and every write are one script (``create.lua``).
        Cost: O(log n) in the owner's own tasks; one round trip.
        """
        owner_id = rules.check_caller(owner_id, self._security)
        request_method = rules.check_request_method(request_method)
        ttl_ms = rules.resolve_ttl(ttl, self._config)
        now_ms = self._now_ms()
        token = os.urandom(8).hex()
        head = _member_head(now_ms)
        backstop = "" if ttl_ms is None else str(ttl_ms + self.retention_ms)
        info = json.dumps(
            {
                "owner": owner_id,
                "method": request_method,
                "created": now_ms,
                "expires": None if ttl_ms is None else now_ms + ttl_ms,
            },
            separators=(",", ":"),
        )
        owner_json = json.dumps(owner_id)
        for _ in range(3):  # a taken id (never seen in practice): draw again
            task_id = rules.new_task_id()
            draft = rules.new_record(
                task_id, owner_id, request_method, ttl_ms, now_ms, self._poll_interval_ms, 0
            )
            keys = _Keys(self._prefix, owner_id, task_id)
            reply = self._run(
                self._create,
                "create",
                (
                    keys.task,
                    keys.list,
                    keys.live,
                    self._expiry_key,
                    keys.index,
                    self._seq_key,
                    self._count_key,
                ),
                (
                    now_ms,
                    self._security.max_tasks_per_owner,
                    task_id,
                    head,
                    "" if draft.expires_at_ms is None else draft.expires_at_ms,
                    backstop,
                    _raw(owner_id),
                    token,
                    _task_json(draft.task),
                    info,
                    owner_json,
                ),
            )
            code = int(reply[0])
            if code == 1:
                record = TaskRecord(
                    task=draft.task,
                    owner_id=owner_id,
                    request_method=request_method,
                    created_ms=now_ms,
                    seq=int(reply[1]),
                    expires_at_ms=draft.expires_at_ms,
                )
                log_created(record)
                return record
            if code == 0:
                rules.check_quota(int(reply[1]), self._security)
                break  # the rule allowed it: the limits disagree
        msg = f"could not create a task for request {request_method!r}; try again"
        raise StoreError(msg)

    # -- reads ----------------------------------------------------------------

    def get(self, task_id: str, owner_id: str) -> TaskRecord:
        """
        Return the task's record; see :meth:`TaskStore.get`.

        Cost: O(1): one HMGET.
        """
        return self._locate(task_id, owner_id)[2]

    def get_result(self, task_id: str, owner_id: str) -> Any:
        """
        Return the result of a terminal task; see :meth:`TaskStore.get_result`.

        Cost: O(1) plus decoding the result.
        """
        record = self.get(task_id, owner_id)
        return rules.read_result(record, self._now_ms())

    def _get_secret(self) -> str:
        secret = self._secret
        if secret is None:
            with self._secret_lock:
                secret = self._secret
                if secret is None:
                    secret = self._fetch_secret(os.urandom(16).hex())
        return secret

    def _fetch_secret(self, candidate: str) -> str:
        with self._guard("list"):
            self._client.set(self._secret_key, candidate, nx=True)
            value = self._client.get(self._secret_key)
        secret = candidate if value is None else _text(value)
        self._secret = secret
        return secret

    def list(
        self, owner_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> TaskPage:
        """
        Return a page of the owner's tasks, newest first; see :meth:`TaskStore.list`.

        One script (``list.lua``) reads the page from the owner's sorted set
        and its records in one snapshot.  A cursor is the position (creation
        ms, sequence number) of the last task returned, so it stays valid
        whatever is created or removed meanwhile.

        Cost: O(log n + limit) in the owner's own tasks; independent of other
        owners'.  One round trip.
        """
        owner_id = rules.check_caller(owner_id, self._security)
        size = rules.check_limit(limit)
        secret = self._get_secret()
        tag = rules.owner_tag(bytes.fromhex(secret), owner_id)
        bound = "+"
        if cursor is not None:
            try:
                position = rules.decode_cursor(cursor, tag)
            except InvalidCursor:
                fresh = self._fetch_secret(secret)  # the server's may be newer
                if fresh == secret:
                    raise
                secret = fresh
                tag = rules.owner_tag(bytes.fromhex(secret), owner_id)
                position = rules.decode_cursor(cursor, tag)
            created, seq = position
            if created < 0:
                return TaskPage((), None)
            if created >= _POS_LIMIT:
                bound = "+"
            elif seq < 0:
                bound = f"({created:016d}:"
            elif seq >= _POS_LIMIT:
                bound = f"({created:016d};"  # ';' sorts after ':': every seq
            else:
                bound = f"({created:016d}:{seq:016d}:"
        keys = _Keys(self._prefix, owner_id, "")
        reply = self._run(
            self._list,
            "list",
            (keys.list, self._secret_key),
            (bound, size + 1, secret, keys.task_head),
        )
        current = _text(reply[0])
        if current != secret:  # the server lost its data and has a new secret
            self._secret = current
            if cursor is not None:
                raise InvalidCursor(cursor)
            tag = rules.owner_tag(bytes.fromhex(current), owner_id)
        members = [_text(m) for m in reply[1]]
        tasks = []
        for fields in reply[2 : 2 + size]:
            found = self._parse(fields)
            if found is not None:  # None: dropped by the retention backstop
                tasks.append(found[1])
        next_cursor = None
        if len(members) > size:
            last = members[size - 1]
            next_cursor = rules.encode_cursor(int(last[:16]), int(last[17:33]), tag)
        return TaskPage(tuple(tasks), next_cursor)

    # -- writes: the storage interface of BaseTaskStore ------------------------
    #
    # Every write is optimistic (there is no lock to fall back on): the rules
    # run here, in Python, and swap.lua stores their record only if the
    # task's version is still the one they were computed from.

    def _read_for_write(self, task_id: str, owner_id: str) -> _Version:
        """Read the caller's task and its version; draw this write's token."""
        keys, version, record = self._locate(task_id, owner_id)
        return _Version(keys, version, record, os.urandom(8).hex())

    def _record_at(self, ref: _Version) -> TaskRecord:
        return ref.record

    def _compare_and_swap(self, ref: _Version, new: TaskRecord, wake: bool) -> _Version | None:
        """
        Run ``swap.lua``: store *new* if the version is still *ref*'s.

        Publishes the new status on the task's channel if *wake*.  Returns
        None once stored (or found stored by this write's token, a call
        redis-py retried), else the current version from the script's reply.

        Raises:
            NotFound: the task was removed meanwhile.
            StoreError: Redis failed.
        """
        record = ref.record
        args: list[Any] = [ref.version, ref.token, b"", b""]
        if wake:
            args[2] = ref.keys.channel
            args[3] = new.task.status.value
        args += [b"task", _task_json(new.task)]
        if new.variables_json is not record.variables_json:
            args += [b"vars", new.variables_json]
        if new.result_json is not None and new.result_json is not record.result_json:
            args += [b"result", new.result_json]
        reply = self._run(self._swap, "write", (ref.keys.task,), args)
        code = int(reply[0])
        if code > 0:
            return None
        found = self._parse(reply[1:]) if code == 0 else None
        if found is None:
            raise NotFound(record.task.task_id)  # removed by cleanup_expired meanwhile
        version, current = found
        return ref._replace(version=version, record=current)

    def _lost_race(self, ref: _Version, attempt: int) -> _Version:
        """
        After the third lost try, a short random back-off, then a fresh read.

        A hot task spreads its writers out; the version the swap returned is
        older than the pause, so the next try reads the task again.
        """
        if attempt < 2:
            return ref
        time.sleep(random.uniform(0, min(0.02, 0.0005 * 2**attempt)))
        found = self._read(ref.keys)
        if found is None:
            raise NotFound(ref.record.task.task_id)  # removed by cleanup_expired meanwhile
        version, record = found
        return ref._replace(version=version, record=record)

    def _write_locked(self, ref: _Version, build: Build) -> tuple[TaskRecord, TaskRecord]:
        """No lock to fall back on: every one of the optimistic tries lost."""
        task_id = ref.record.task.task_id
        msg = f"Task {task_id}: gave up after {_MAX_TRIES} conflicting writes; try again"
        raise StoreError(msg)

    # -- expiry ---------------------------------------------------------------

    def cleanup_expired(self) -> int:
        """
        Remove every expired task; return how many were removed.

        Reads the global expiry index from its oldest entry; removes tasks in
        batches of 500, each one atomic step (``cleanup.lua``), and wakes
        their waiters.  Never scans the keyspace.

        Cost: O(k log n) for k tasks removed, plus one round trip per batch.
        """
        now_ms = self._now_ms()
        removed = 0
        while True:
            n = int(
                self._run(
                    self._cleanup,
                    "cleanup_expired",
                    (self._expiry_key, self._count_key),
                    (now_ms, _CLEANUP_BATCH, self._prefix),
                )
            )
            removed += n
            if n < _CLEANUP_BATCH:
                return removed

    # -- wait -----------------------------------------------------------------

    def wait(
        self, task_id: str, owner_id: str, *, timeout: float | None = None
    ) -> TaskRecord:
        """
        Block until the task is terminal; see :meth:`TaskStore.wait`.

        The waiter subscribes to the task's channel, waits for Redis to
        confirm, and only then reads the record: a write that ends the task
        after that read is a message on the channel, so no wake-up is lost.  It reads
        again on every message, at the task's expiry, at its timeout, and
        otherwise every :attr:`recheck_interval_s` seconds (a message lost
        while the subscription reconnected).  It never polls faster.

        Uses one connection from the client's pool while it waits.
        """
        keys, _, record = self._locate(task_id, owner_id)
        limit = rules.check_timeout(timeout)
        if rules.wait_done(record, self._now_ms()):
            return record
        if limit == 0:
            raise WaitTimeout(record.task.task_id, limit)
        deadline = None if limit is None else time.monotonic() + limit
        task_id = record.task.task_id
        with self._guard("wait"):
            pubsub = self._client.pubsub()  # type: ignore[no-untyped-call]
        try:
            with self._guard("wait"):
                pubsub.subscribe(keys.channel)
                confirm_by = time.monotonic() + self.recheck_interval_s
                while time.monotonic() < confirm_by:
                    message = pubsub.get_message(timeout=self.recheck_interval_s)
                    if message is not None and message["type"] == "subscribe":
                        break
            while True:
                found = self._read(keys)
                if found is None:
                    raise NotFound(task_id)
                current = found[1]
                now_ms = self._now_ms()
                if rules.wait_done(current, now_ms):
                    return current
                sleep = self.recheck_interval_s
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise WaitTimeout(task_id, limit)  # type: ignore[arg-type]
                    sleep = min(sleep, left)
                if current.expires_at_ms is not None:
                    sleep = min(sleep, max(0.0, (current.expires_at_ms - now_ms) / 1000))
                with self._guard("wait"):
                    pubsub.get_message(timeout=sleep)
        finally:
            with suppress(redis.RedisError):  # the connection is gone anyway
                pubsub.close()

    # -- invariants -----------------------------------------------------------

    def _check(self) -> None:
        """
        Assert every invariant of the keyspace.  For tests only: it SCANs the
        prefix; call it with no writer running.

        Raises:
            AssertionError: naming the broken invariant.
        """
        client = self._client
        prefix = self._prefix
        tasks: dict[bytes, TaskRecord] = {}
        for key in client.scan_iter(match=prefix + b":o:*:t:*", count=1000):
            raw = key if isinstance(key, bytes) else _raw(key)
            found = self._parse(client.hmget(raw, _FIELDS))
            assert found is not None, f"{raw!r}: not a task hash"
            tasks[raw] = found[1]
        count = client.get(self._count_key)
        assert int(count or 0) == len(tasks), "task counter != task hashes"
        entries: list[tuple[bytes | str, float]] = client.zrange(  # type: ignore[assignment]
            self._expiry_key, 0, -1, withscores=True
        )
        expiry = {_text(m): int(s) for m, s in entries}
        listed: set[str] = set()
        for raw, record in tasks.items():
            task_id = record.task.task_id
            keys = _Keys(prefix, record.owner_id, task_id)
            assert raw == keys.task, f"{task_id}: stored under another owner's key"
            member = f"{record.created_ms:016d}:{record.seq:016d}:{task_id}"
            assert client.zscore(keys.list, member) is not None, f"{task_id}: not listed"
            score = client.zscore(keys.live, task_id)
            want = float("inf") if record.expires_at_ms is None else record.expires_at_ms
            assert score == want, f"{task_id}: live index has {score}, want {want}"
            holder = client.get(keys.index)
            assert holder is not None, f"{task_id}: not in the id index"
            assert json.loads(holder) == record.owner_id, f"{task_id}: id index wrong"
            if record.expires_at_ms is not None:
                em = member + ":" + record.owner_id
                assert expiry.get(em) == record.expires_at_ms, f"{task_id}: expiry index"
                listed.add(em)
            status = record.task.status
            if status is TaskStatus.WORKING or status is TaskStatus.INPUT_REQUIRED:
                pass
            else:
                assert status.is_terminal, f"{task_id}: unknown status"
        assert set(expiry) == listed, "expiry index holds entries of no task"

"""
:class:`RedisTaskStore`: the :class:`TaskStore` contract on a Redis server or
a Redis Cluster.

The store is shared by every process and machine that points at the same
server, so a task created by one worker is seen by all.  The domain rules live
in :mod:`tasks_store.rules` and :mod:`tasks_store.status`, exactly as for
:class:`InMemoryTaskStore`; this module holds only storage, and the Lua
scripts get the transition table generated from :mod:`tasks_store.status`.

Keys
====

``<p>`` is ``key_prefix``.  Every owner lives in one of :data:`SHARDS`
shards, ``k = crc32(owner) mod SHARDS``, and every key of the owner and of
its shard starts with the shard's hash tag ``{<p>:<k>}``: every script
touches one hash slot, so the store runs on Redis Cluster unchanged.
``<n>:<owner>`` is the owner id's UTF-8 length, a colon and the owner id
(the length makes the key unambiguous whatever characters it holds).

=====================================  ======  ================================
key (``<t>`` = ``{<p>:<k>}``)          type    holds
=====================================  ======  ================================
``<t>:o:<n>:<owner>:t:<id>``           hash    one task, field per part (see
                                               ``lua/lib.lua``)
``<t>:o:<n>:<owner>:list``             zset    the owner's tasks for ``list``:
                                               score 0, member
                                               ``<created_ms:16>:<seq:16>:<id>``
``<t>:o:<n>:<owner>:live``             zset    id -> expires_at_ms (+inf: no
                                               TTL), for the quota
``<t>:expiry``                         zset    ``<list member>:<owner>`` ->
                                               expires_at_ms, for cleanup
``<t>:id:<id>``                        string  the owner (JSON) of task *id*
``<t>:seq``, ``<t>:count``             string  creation counter; tasks held
``<t>:secret``                         string  the shard's cursor secret (hex)
``<t>:ev:<id>`` (channel)              pubsub  task *id* ended, or was removed
=====================================  ======  ================================

A task id's last hex digit is its owner's shard, so the id index of a
foreign access is found from the id alone.  The owner is part of every task
key, so a caller can only ever address its own tasks: another owner's id
names a key that does not exist.

Writes
======

Each write is one Lua script (``tasks_store/store/lua/*.lua``, run with
EVALSHA; ``lua/lib.lua`` is put in front of each, after the generated
tables), behind :class:`~tasks_store.store._base.BaseTaskStore`'s one write
path, which keeps the check order, the logging and the wake-ups:

- ``create.lua``: the quota check and every write, one step: the quota holds
  across processes.
- ``change.lua``: ``update_status``, ``cancel``, ``complete_with_result``
  and ``set_result``, one step each (the write path's *applied* side): it
  checks expiry and the transition table, writes, and publishes an ending.
  The record returned, and any refusal's error, are the rules' own, run in
  Python on the fields the script judged.
- ``swap.lua``: ``set_variables`` merges in Python (size limit included) and
  swaps in if the version did not move; after three lost swaps it takes the
  task's short lock (``lock.lua``), during which no other swap gets through,
  so every writer succeeds and none loses an update.
- Each write carries a random token, so a call that redis-py retries after a
  lost reply is recognised as already applied, not applied twice.

Expiry
======

Expiry is decided with the store's clock against ``expires_at_ms`` kept in
the record, as in memory: an expired task stays readable until
:meth:`RedisTaskStore.cleanup_expired` removes it.  Every key a task makes
also expires by itself (server clock) :attr:`RedisTaskStore.retention_ms`
after the task did, so memory stays bounded if cleanup never runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from importlib import resources
from typing import Any, ClassVar, NoReturn

import attrs
import redis
from redis.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisClusterException

from .. import rules
from ..config import StoreConfig, TaskSecurityConfig
from ..errors import InvalidCursor, NotFound, StoreError, WaitTimeout
from ..records import Task, TaskPage, TaskRecord
from ..status import TaskStatus
from ..wire import format_timestamp
from ._base import (
    BaseTaskStore,
    Build,
    Change,
    TaskWatch,
    block,
    log_created,
    log_foreign,
    redis_key_prefix,
    wakes_waiters,
)

__all__ = ["SHARDS", "RedisTaskStore"]

#: Shards an owner's keys and the per-shard indexes are spread over; a task
#: id's last hex digit names its shard, hence 16.
SHARDS = 16
#: Expired tasks removed per cleanup script call (one atomic step each).
_CLEANUP_BATCH = 500
#: Tasks past their retention a create removes from its shard, at most.
_SWEEP = 8
#: Optimistic tries of ``set_variables`` before it takes the task's lock.
_SWAP_TRIES = 3
#: The lock's lease, ms (server clock): it lapses by itself after that.
_LOCK_LEASE_MS = 2000
#: The longest a writer waits for a task's lock before StoreError, s.
_LOCK_WAIT_S = 30.0
#: Records a store keeps decoded, at most (see RedisTaskStore._from_fields),
#: and the most characters of variables and result one of them may hold.
_CACHE_SIZE = 4096
_CACHE_TEXT = 2048
#: Seconds a store's pub/sub thread stays up with no waiter before it stops.
_IDLE_S = 10.0
#: The store's scripts in ``lua/`` (each run with ``lib.lua`` in front).
SCRIPTS = (
    "lib.lua",
    "create.lua",
    "change.lua",
    "swap.lua",
    "lock.lua",
    "list.lua",
    "cleanup.lua",
    "check.lua",
)
#: A task hash's fields, in the order every script returns them.
FIELDS = ("st", "msg", "upd", "ver", "vars", "res", "exp", "fix", "inp")
#: Largest value a position field of a list member can hold (16 digits).
_POS_LIMIT = 10**16
_HEX = "0123456789abcdef"
_ID_FORM = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_STATUS: dict[Any, TaskStatus] = {s.value: s for s in TaskStatus}
_STATUS.update({s.value.encode(): s for s in TaskStatus})
_GLOB = re.compile(rb"([*?\[\]\\])")


# -- scripts --------------------------------------------------------------------


def _lua_text(value: str) -> str:
    return json.dumps(value)  # a JSON string of ASCII is a Lua string literal


def lua_tables() -> str:
    """
    Return the Lua tables every script starts with, generated from the domain layer.

    ``TRANSITIONS`` from :meth:`TaskStatus.can_transition_to`, ``TERMINAL``
    from :attr:`TaskStatus.is_terminal`, ``FIELDS`` from :data:`FIELDS`.
    """
    rows = []
    for source in TaskStatus:
        targets = ", ".join(
            f"[{_lua_text(t.value)}] = true" for t in TaskStatus if source.can_transition_to(t)
        )
        rows.append(f"  [{_lua_text(source.value)}] = {{{targets}}},")
    terminal = ", ".join(f"[{_lua_text(s.value)}] = true" for s in TaskStatus if s.is_terminal)
    fields = ", ".join(_lua_text(f) for f in FIELDS)
    return (
        "-- generated by tasks_store/store/redis.py from tasks_store.status\n"
        "local TRANSITIONS = {\n" + "\n".join(rows) + "\n}\n"
        f"local TERMINAL = {{{terminal}}}\n"
        f"local FIELDS = {{{fields}}}\n"
    )


def _load_script(name: str) -> str:
    """Return the Lua script *name* with its prelude: the generated tables and ``lib.lua``."""
    folder = resources.files("tasks_store.store").joinpath("lua")
    library = folder.joinpath("lib.lua").read_text("utf-8")
    return lua_tables() + library + folder.joinpath(name).read_text("utf-8")


class _Script:
    """A Lua script run with EVALSHA, loaded again if the server lost it."""

    __slots__ = ("client", "sha", "text")

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.text = _load_script(name)
        self.sha = hashlib.sha1(self.text.encode("utf-8")).hexdigest()

    def __call__(self, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        try:
            return self.client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            self.sha = self.client.script_load(self.text)
            return self.client.evalsha(self.sha, len(keys), *keys, *args)


# -- keys -----------------------------------------------------------------------


def _text(value: bytes | str) -> str:
    """Return a reply as str, whatever the client's ``decode_responses``."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _raw(text: str) -> bytes:
    """Return *text* as bytes for a key; every str maps to distinct bytes."""
    return text.encode("utf-8", "surrogatepass")


def shard_of(owner_id: str) -> int:
    """Return the shard of *owner_id*: a stable hash (crc32 of its UTF-8), mod :data:`SHARDS`."""
    return zlib.crc32(_raw(owner_id)) % SHARDS


def _shard_of_id(task_id: str) -> int | None:
    """The shard a task id of this store names (its last hex digit); None for another id."""
    if len(task_id) != 36 or _ID_FORM.fullmatch(task_id) is None:
        return None
    return int(task_id[-1], 16)


class _Shard:
    """The keys of one shard: its tag and its indexes."""

    __slots__ = ("count", "expiry", "number", "secret", "seq", "tag")

    def __init__(self, prefix: bytes, number: int) -> None:
        self.number = number
        self.tag = b"{%s:%d}" % (prefix, number)
        self.expiry = self.tag + b":expiry"
        self.count = self.tag + b":count"
        self.seq = self.tag + b":seq"
        self.secret = self.tag + b":secret"

    def index(self, task_id: str) -> bytes:
        return self.tag + b":id:" + _raw(task_id)

    def channel(self, task_id: str) -> bytes:
        return self.tag + b":ev:" + _raw(task_id)


class _Owner:
    """An owner's keys and encodings, built once per owner (the store caches them)."""

    __slots__ = ("id", "json", "list", "live", "raw", "shard", "task_head")

    def __init__(self, shards: Sequence[_Shard], owner_id: str) -> None:
        raw = _raw(owner_id)
        shard = shards[zlib.crc32(raw) % SHARDS]
        base = b"%s:o:%d:%s" % (shard.tag, len(raw), raw)
        self.id = owner_id
        self.raw = raw
        self.json = json.dumps(owner_id)
        self.shard = shard
        self.task_head = base + b":t:"
        self.list = base + b":list"
        self.live = base + b":live"


class _Keys:
    """The keys of one task of one owner (and of its owner's indexes)."""

    __slots__ = ("owner", "shard", "task", "task_id", "who")

    def __init__(self, who: _Owner, task_id: str) -> None:
        self.who = who
        self.shard = who.shard
        self.owner = who.id
        self.task_id = task_id
        self.task = who.task_head + _raw(task_id)


class _Handle:
    """
    A write's handle on one task (``BaseTaskStore``'s *ref*).

    ``record`` and ``version`` are None until the task is read; ``locked``
    marks a handle a swap returned because another writer holds the lock.
    """

    __slots__ = ("cached", "keys", "locked", "record", "token", "version")

    def __init__(self, keys: _Keys, token: str) -> None:
        self.keys = keys
        self.token = token  # this write's: the same on every try
        self.version: int | None = None
        self.record: TaskRecord | None = None
        self.locked = False
        self.cached = False  # record from the store's decoded copies, not read now

    def at(self, version: int, record: TaskRecord, locked: bool = False) -> _Handle:
        handle = _Handle(self.keys, self.token)
        handle.version, handle.record, handle.locked = version, record, locked
        return handle


# -- records --------------------------------------------------------------------

#: Request methods decoded once (a store sees a handful): raw JSON -> str.
_METHODS: dict[Any, str] = {}


#: Request methods encoded once: str -> JSON.
_METHOD_JSON: dict[str, str] = {}


def _method_json(method: str) -> str:
    text = _METHOD_JSON.get(method)
    if text is None:
        text = json.dumps(method)
        if len(_METHOD_JSON) > 1024:
            _METHOD_JSON.clear()
        _METHOD_JSON[method] = text
    return text


def _method(raw: bytes | str) -> str:
    method = _METHODS.get(raw)
    if method is None:
        method = str(json.loads(raw))
        if len(_METHODS) > 1024:
            _METHODS.clear()
        _METHODS[raw] = method
    return method


def _decode(task_id: str, owner_id: str, parts: Sequence[Any]) -> tuple[Any, TaskRecord]:
    """
    Return (version, record) from a task's stored parts, trusted as the store wrote them.

    *parts*: ``st, msg, upd, ver, vars, res, exp``, the fixed field's
    ``created, seq, ttl, poll, method, createdAt``, and ``inp``; bytes or
    str alike (an absent field empty or None).  Nothing is validated again:
    only this store writes these fields.
    """
    st, msg, upd, ver, variables, result, exp, created, seq, ttl, poll, method, stamp, inp = parts
    task = Task(
        task_id=task_id,
        status=_STATUS[st],
        status_message=json.loads(msg) if msg else None,
        created_at=_text(stamp),
        last_updated_at=_text(upd),
        ttl=int(ttl) if ttl else None,
        poll_interval=int(poll),
    )
    record = TaskRecord(
        task=task,
        owner_id=owner_id,
        request_method=_method(method),
        created_ms=int(created),
        seq=int(seq),
        expires_at_ms=int(exp) if exp else None,
        variables_json=_text(variables),
        result_json=_text(result) if result else None,
        inputs_json=_text(inp) if inp else "{}",
    )
    return ver, record


def _fields_parts(fields: Sequence[Any]) -> list[Any]:
    """The parts :func:`_decode` takes, from a task's :data:`FIELDS` values."""
    fixed = fields[7]
    return [*fields[:7], *fixed.split(b"\0" if isinstance(fixed, bytes) else "\0"), fields[8]]


def _message_arg(change: Change) -> str:
    """change.lua's message argument: "" keeps it, "-" clears it, else its JSON."""
    if not change.sets_message:
        return ""
    return "-" if change.message is None else json.dumps(change.message)


# -- waiters --------------------------------------------------------------------


class _Subscriber:
    """
    One pub/sub connection per store and process, shared by every waiter.

    A background thread reads the connection and sets the events of the
    waiters of each channel a message arrives on.  The first waiter of a
    channel subscribes to it, the last unsubscribes.  :meth:`watch` returns
    once Redis has confirmed the subscription, so a write after it is never
    missed.  When the connection fails, every waiter is woken (they read
    their task again), and once redis-py has reconnected and subscribed
    again, again.  The thread stops after :data:`_IDLE_S` seconds without a
    waiter, giving its connection back to the pool.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._pid = os.getpid()
        #: channel -> the events of its waiters
        self._waiters: dict[bytes, set[threading.Event]] = {}
        #: channel -> SUBSCRIBE commands sent whose reply is not read yet
        self._pending: dict[bytes, int] = {}
        #: channel -> set once its subscription is confirmed
        self._ready: dict[bytes, threading.Event] = {}
        self._pubsub: Any = None
        self._thread: threading.Thread | None = None

    def watch(
        self, channel: bytes, confirm_s: float, event: threading.Event | None = None
    ) -> threading.Event:
        """
        Register a waiter on *channel*; return its event once subscribed (or *confirm_s*).

        *event*: the waiter's event, when it watches several channels with one.
        """
        event = threading.Event() if event is None else event
        with self._lock:
            self._start()
            waiters = self._waiters.get(channel)
            if waiters is None:
                waiters = self._waiters[channel] = set()
                ready = self._ready[channel] = threading.Event()
                self._pending[channel] = self._pending.get(channel, 0) + 1
                try:
                    self._pubsub.subscribe(channel)
                except BaseException:
                    del self._waiters[channel], self._ready[channel]
                    self._pending[channel] -= 1
                    raise
            else:
                ready = self._ready[channel]
            waiters.add(event)
        ready.wait(confirm_s)  # not confirmed in time: the waiter's rechecks cover it
        return event

    def unwatch(self, channel: bytes, event: threading.Event) -> None:
        """Unregister a waiter; the last one of a channel unsubscribes."""
        with self._lock:
            waiters = self._waiters.get(channel)
            if waiters is None:
                return
            waiters.discard(event)
            if waiters:
                return
            del self._waiters[channel], self._ready[channel]
            with suppress(redis.RedisError, RedisClusterException, OSError):
                self._pubsub.unsubscribe(channel)  # else the reconnect drops it

    @property
    def channels(self) -> int:
        """How many channels have waiters."""
        return len(self._waiters)

    def _start(self) -> None:
        """Start the reading thread if it is not running; the caller holds the lock."""
        if self._pid != os.getpid():  # forked: the parent's connection is not ours
            self.__init__(self._client)  # type: ignore[misc]
        if self._thread is not None and self._thread.is_alive():
            return
        self._pubsub = self._client.pubsub()
        self._pending.clear()
        self._thread = threading.Thread(
            target=self._run, args=(self._pubsub,), name="tasks_store-redis-waiters", daemon=True
        )
        self._thread.start()

    def _wake_all(self) -> None:
        with self._lock:
            for waiters in self._waiters.values():
                for event in waiters:
                    event.set()

    def _run(self, pubsub: Any) -> None:
        idle_since = time.monotonic()
        while True:
            with self._lock:
                if self._waiters:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > _IDLE_S or self._pubsub is not pubsub:
                    if self._pubsub is pubsub:
                        self._pubsub = None
                        self._thread = None
                    with suppress(Exception):
                        pubsub.close()
                    return
            try:
                message = pubsub.get_message(timeout=1.0)
            except Exception:  # the connection failed or was closed under it
                # Every waiter reads its task again; redis-py reconnects and
                # subscribes again on the next read, which wakes them again.
                self._wake_all()
                time.sleep(0.05)
                continue
            if message is not None:
                self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        channel = message["channel"]
        if isinstance(channel, str):
            channel = _raw(channel)
        with self._lock:
            waiters = self._waiters.get(channel, ())
            if kind == "subscribe":
                left = max(0, self._pending.get(channel, 0) - 1)
                if left:
                    self._pending[channel] = left
                else:
                    self._pending.pop(channel, None)
                    ready = self._ready.get(channel)
                    if ready is not None:
                        ready.set()
            elif kind != "message":
                return
            for event in waiters:  # a message, or a (re)subscription: read again
                event.set()


class _Watch(TaskWatch):
    """A :class:`TaskWatch` on Redis: one event, set by the shared subscriber's messages."""

    __slots__ = ("_channels", "_closed", "_event", "_subscriber")

    def __init__(
        self, subscriber: _Subscriber, channels: Sequence[bytes], confirm_s: float
    ) -> None:
        self._subscriber = subscriber
        self._event = threading.Event()
        self._channels: list[bytes] = []
        self._closed = False
        try:
            for channel in channels:
                subscriber.watch(channel, confirm_s, self._event)
                self._channels.append(channel)
        except BaseException:
            self.close()
            raise
        self._event.clear()  # a (re)subscription is not a change

    def wait(self, timeout: float | None) -> bool:
        """Block until a watched task changed (True) or *timeout* seconds passed (False)."""
        changed = block(self._event.wait, timeout)
        if changed:
            self._event.clear()  # the caller reads after this: nothing set before is lost
        return changed

    def wake(self) -> None:
        """Wake the waiting thread as if a watched task changed."""
        self._event.set()

    def close(self) -> None:
        """Stop watching; idempotent."""
        if not self._closed:
            self._closed = True
            for channel in self._channels:
                self._subscriber.unwatch(channel, self._event)


# -- the store ------------------------------------------------------------------


class RedisTaskStore(BaseTaskStore[_Handle]):
    """
    A thread-safe task store on a Redis server or cluster, shared by many processes.

    It keeps the same contract as :class:`InMemoryTaskStore` (same results,
    same errors): switching stores is a one-line change.

    Args:
        client: a ``redis.Redis`` or ``redis.cluster.RedisCluster`` client
            (either ``decode_responses``); the store uses its connection
            pool from every thread, plus one connection per process for all
            its waiters.
        config: limits; ``StoreConfig()`` when None.
        security: quota and anonymous access; ``TaskSecurityConfig()`` when None.
        poll_interval_ms: the ``pollInterval`` given to new tasks.
        key_prefix: the first part of every key; stores sharing a prefix
            share their tasks.  It may not hold ``{`` or ``}`` (it is part
            of the keys' hash tag).
        clock: returns the time in epoch seconds; every timestamp and expiry
            decision uses it.  Give every process the same (wall) clock.

    Raises:
        TypeError: *client*, *config*, *security* or *clock* is of the wrong
            type.
        ValueError: *poll_interval_ms* is not an int >= 0, or *key_prefix*
            is not a non-empty str without braces.

    Every method raises :class:`StoreError` (code -32603), with the redis-py
    error as ``__cause__``, when the server cannot be reached or fails; a
    failed call leaves nothing half-written, and the store works again once
    the server is back.
    """

    #: How long, in ms, every key of a task outlives its expiry: then Redis
    #: drops them itself (a backstop for when :meth:`cleanup_expired` does
    #: not run).
    retention_ms: ClassVar[int] = 86_400_000
    #: The longest a waiter sleeps, in seconds, before reading its task again
    #: without a message: the safety net for a message lost while the
    #: subscription reconnected (it also wakes on every message, at the
    #: task's expiry and at its timeout).  The default matches the default
    #: ``pollInterval``.
    recheck_interval_s: ClassVar[float] = 5.0
    #: set_variables swaps optimistically three times, then takes the lock.
    _costly_tries: ClassVar[int] = _SWAP_TRIES
    #: wait_input reads again at least this often without a message.
    _watch_recheck_s: ClassVar[float | None] = recheck_interval_s

    def __init__(
        self,
        client: redis.Redis | RedisCluster,
        *,
        config: StoreConfig | None = None,
        security: TaskSecurityConfig | None = None,
        poll_interval_ms: int = 5000,
        key_prefix: str = "tasks_store",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(client, (redis.Redis, RedisCluster)):
            msg = f"client must be a redis.Redis or a RedisCluster, got {type(client).__name__}"
            raise TypeError(msg)
        super().__init__(
            config=config, security=security, poll_interval_ms=poll_interval_ms, clock=clock
        )
        self._prefix = redis_key_prefix(key_prefix)
        self._client = client
        self._cluster = isinstance(client, RedisCluster)
        self._key_prefix = key_prefix
        self._shards = tuple(_Shard(self._prefix, k) for k in range(SHARDS))
        self._secrets: dict[int, str] = {}  # cached per shard; the server's copy wins
        self._owners: dict[str, _Owner] = {}
        self._cache: dict[str, tuple[int, TaskRecord]] = {}  # task id -> (version, record)
        self._cache_size = _CACHE_SIZE  # 0: decode every read (the benchmark's cold rows)
        self._local = threading.local()  # the version a change.lua write stored
        #: a new task's status, the domain's (rules.new_record), for create.lua
        self._first_status = rules.new_record("", "", "-", None, 0, 0, 0).task.status.value
        self._create = _Script(client, "create.lua")
        self._change = _Script(client, "change.lua")
        self._swap = _Script(client, "swap.lua")
        self._lock = _Script(client, "lock.lua")
        self._list = _Script(client, "list.lua")
        self._cleanup = _Script(client, "cleanup.lua")
        self._dump = _Script(client, "check.lua")
        self._subscriber = _Subscriber(client)

    # -- properties -----------------------------------------------------------

    @property
    def key_prefix(self) -> str:
        """The first part of every key this store uses."""
        return self._key_prefix

    @property
    def client(self) -> Any:
        """The redis-py client (``Redis`` or ``RedisCluster``) this store was given."""
        return self._client

    def __len__(self) -> int:
        """
        Return how many tasks are held, expired ones included.

        A task counts from its creation until :meth:`cleanup_expired`
        removes it, or until its keys are dropped once its retention has
        passed: by a later create in its shard, by a ``list`` that meets it,
        or with every key of its shard when its shard's last task's
        retention has passed.  Cost: one MGET of the shards' counters.
        """
        keys = [shard.count for shard in self._shards]
        client: Any = self._client
        with self._guard("len"):
            values = client.mget_nonatomic(keys) if self._cluster else client.mget(keys)
        return sum(int(value) for value in values if value is not None)

    def __repr__(self) -> str:
        return f"<RedisTaskStore prefix={self._key_prefix!r}>"

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """Turn a redis-py error into :class:`StoreError`, cause chained."""
        try:
            yield
        except (redis.RedisError, RedisClusterException) as exc:
            msg = f"Redis failed during {what}: {type(exc).__name__}: {exc}"
            raise StoreError(msg) from exc

    def _run(self, script: _Script, what: str, keys: Sequence[bytes], args: Sequence[Any]) -> Any:
        try:  # not _guard: a context manager costs a microsecond on every call
            return script(keys=keys, args=args)
        except (redis.RedisError, RedisClusterException) as exc:
            msg = f"Redis failed during {what}: {type(exc).__name__}: {exc}"
            raise StoreError(msg) from exc

    def _owner(self, owner_id: str) -> _Owner:
        """The owner's keys, from the store's cache (at most 4,096 owners kept)."""
        who = self._owners.get(owner_id)
        if who is None:
            if len(self._owners) >= 4096:
                self._owners.clear()
            who = self._owners[owner_id] = _Owner(self._shards, owner_id)
        return who

    def _keys(self, owner_id: str, task_id: str) -> _Keys:
        return _Keys(self._owner(owner_id), task_id)

    def _channel(self, owner_id: str, task_id: str) -> bytes:
        """The channel a waiter on the task listens to (for tests and tools)."""
        return self._owner(owner_id).shard.channel(task_id)

    # -- records --------------------------------------------------------------

    def _read(self, keys: _Keys) -> tuple[int, TaskRecord] | None:
        """Return the task's (version, record), or None if there is no such task."""
        try:
            fields = self._client.hmget(keys.task, FIELDS)
        except (redis.RedisError, RedisClusterException) as exc:
            msg = f"Redis failed during read: {type(exc).__name__}: {exc}"
            raise StoreError(msg) from exc
        if fields[0] is None:
            return None
        return self._from_fields(keys.task_id, keys.owner, fields)

    # A record is decoded once per version: the store keeps the last record
    # it decoded or wrote of up to 4,096 tasks (small ones: variables and
    # result together at most 2,048 characters; the oldest entry goes first),
    # and hands it out again while the version the server returns is the
    # same.  Versions only grow (every write adds 1), so an equal version is
    # an equal record; records are frozen, so sharing one is safe, as
    # InMemoryTaskStore shares them.

    def _from_fields(
        self, task_id: str, owner_id: str, fields: Sequence[Any]
    ) -> tuple[int, TaskRecord]:
        """(version, record) from a task's :data:`FIELDS` values, decoded once per version."""
        version = int(fields[3])
        hit = self._cache.get(task_id)
        if hit is not None and hit[0] == version and hit[1].owner_id == owner_id:
            return hit
        record = _decode(task_id, owner_id, _fields_parts(fields))[1]
        return self._remember(task_id, version, record)

    def _remember(self, task_id: str, version: int, record: TaskRecord) -> tuple[int, TaskRecord]:
        entry = (version, record)
        result = record.result_json
        size = len(record.variables_json) + len(record.inputs_json)
        if size + (0 if result is None else len(result)) <= _CACHE_TEXT:
            cache = self._cache
            if len(cache) >= self._cache_size:
                try:
                    del cache[next(iter(cache))]  # the oldest entry
                except (StopIteration, KeyError, RuntimeError):  # changed meanwhile
                    cache.clear()
            if self._cache_size:
                cache[task_id] = entry
        return entry

    def _locate(self, task_id: object, owner_id: object) -> tuple[_Keys, TaskRecord]:
        """Check the ids; return the caller's task's keys and record, or raise NotFound."""
        task_id = rules.check_task_id(task_id)
        keys = self._keys(rules.check_caller(owner_id, self._security), task_id)
        found = self._read(keys)
        if found is None:
            self._not_found(keys)
        return keys, found[1]

    def _not_found(self, keys: _Keys) -> NoReturn:
        """Raise NotFound; log a foreign access first (the id index names the holder)."""
        task_id, owner = keys.task_id, keys.owner
        number = _shard_of_id(task_id)
        if number is not None:
            with self._guard("read"):
                holder = self._client.get(self._shards[number].index(task_id))
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
        who = self._owner(owner_id)
        shard = who.shard
        expires = None if ttl_ms is None else now_ms + ttl_ms
        keep = "" if ttl_ms is None else str(ttl_ms + self.retention_ms)
        stamp = format_timestamp(now_ms)  # as rules.new_record stamps it
        tail = "\0".join(
            ("" if ttl_ms is None else str(ttl_ms), str(self._poll_interval_ms),
             _method_json(request_method), stamp)
        )
        last = _HEX[shard.number]
        for _ in range(3):  # a taken id (never seen in practice): draw again
            task_id = rules.new_task_id()[:-1] + last
            reply = self._run(
                self._create,
                "create",
                (
                    who.task_head + _raw(task_id),
                    who.list,
                    who.live,
                    shard.expiry,
                    shard.index(task_id),
                    shard.seq,
                    shard.count,
                    shard.secret,
                ),
                (
                    now_ms,
                    self._security.max_tasks_per_owner,
                    task_id,
                    f"{now_ms:016d}:",
                    "" if expires is None else expires,
                    keep,
                    who.raw,
                    token,
                    stamp,
                    tail,
                    who.json,
                    shard.tag,
                    now_ms - self.retention_ms,
                    _SWEEP,
                    self._first_status,
                ),
            )
            code = int(reply[0])
            if code == 1:
                record = rules.new_record(
                    task_id,
                    owner_id,
                    request_method,
                    ttl_ms,
                    now_ms,
                    self._poll_interval_ms,
                    int(reply[1]),
                )
                self._remember(task_id, 1, record)
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
        return self._locate(task_id, owner_id)[1]

    def get_result(self, task_id: str, owner_id: str) -> Any:
        """
        Return the result of a terminal task; see :meth:`TaskStore.get_result`.

        Cost: O(1) plus decoding the result.
        """
        record = self.get(task_id, owner_id)
        return rules.read_result(record, self._now_ms())

    def _fetch_secret(self, shard: _Shard) -> str | None:
        """Read the shard's cursor secret from the server (None: it has none); cache it."""
        with self._guard("list"):
            value = self._client.get(shard.secret)
        if value is None:
            return None
        secret = self._secrets[shard.number] = _text(value)
        return secret

    def list(
        self, owner_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> TaskPage:
        """
        Return a page of the owner's tasks, newest first; see :meth:`TaskStore.list`.

        One script (``list.lua``) reads the page from the owner's sorted set
        and its records in one snapshot, decoded only for the tasks the page
        returns.  A cursor is the position (creation ms, sequence number) of
        the last task returned, so it stays valid whatever is created or
        removed meanwhile.  A page is short only at the end of the list.

        Cost: O(log n + limit) in the owner's own tasks; independent of other
        owners'.  One round trip (two the first time a process lists a
        shard with a cursor).
        """
        owner_id = rules.check_caller(owner_id, self._security)
        size = rules.check_limit(limit)
        who = self._owner(owner_id)
        shard = who.shard
        secret = self._secrets.get(shard.number)
        bound = "+"
        if cursor is not None:
            if secret is None:
                secret = self._fetch_secret(shard)
            if secret is None:  # the shard holds nothing, so no cursor of it is valid
                raise InvalidCursor(cursor)
            try:
                tag = rules.owner_tag(bytes.fromhex(secret), owner_id)
                position = rules.decode_cursor(cursor, tag)
            except InvalidCursor:
                fresh = self._fetch_secret(shard)  # the server's may be newer
                if fresh is None or fresh == secret:
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
        reply = self._run(
            self._list,
            "list",
            (who.list, shard.secret, shard.expiry, shard.count),
            (bound, size, secret or os.urandom(16).hex(), who.task_head, shard.tag, who.raw),
        )
        if reply[0] is None:  # the shard holds no task
            return TaskPage((), None)
        current = _text(reply[0])
        if current != secret:  # a new secret: first use, or the server lost its data
            self._secrets[shard.number] = current
            if cursor is not None:
                raise InvalidCursor(cursor)
        tasks = [
            self._from_fields(_text(reply[i]), owner_id, reply[i + 1])[1]
            for i in range(2, len(reply), 2)
        ]
        next_cursor = None
        if int(reply[1]) and tasks:
            last = tasks[-1]
            tag = rules.owner_tag(bytes.fromhex(current), owner_id)
            next_cursor = rules.encode_cursor(last.created_ms, last.seq, tag)
        return TaskPage(tuple(tasks), next_cursor)

    # -- writes: the storage interface of BaseTaskStore ------------------------
    #
    # update_status, cancel, complete_with_result and set_result are applied
    # on the server (change.lua, _apply); set_variables merges in Python and
    # swaps in (swap.lua), taking the task's lock (lock.lua) after three lost
    # swaps.  BaseTaskStore keeps the check order, the logging and the
    # wake-ups for both.

    def _read_for_write(self, task_id: str, owner_id: str) -> _Handle:
        """Check the ids and the caller; draw this write's token.  No I/O."""
        task_id = rules.check_task_id(task_id)
        owner = rules.check_caller(owner_id, self._security)
        return _Handle(self._keys(owner, task_id), os.urandom(8).hex())

    def _found(self, ref: _Handle) -> None:
        """Read the task into *ref* if it is not yet; NotFound if there is none."""
        if ref.record is None:
            found = self._read(ref.keys)
            if found is None:
                self._not_found(ref.keys)
            ref.version, ref.record = found

    def _record_at(self, ref: _Handle) -> TaskRecord:
        """
        The record to build from: the one decoded last, if the store keeps it
        (no read: the swap checks its version, and returns the current record
        if it moved), else the task as read now.
        """
        if ref.record is None:
            hit = self._cache.get(ref.keys.task_id)
            if hit is not None and hit[1].owner_id == ref.keys.owner:
                ref.version, ref.record = hit
                ref.cached = True
                return hit[1]
        self._found(ref)
        return ref.record  # type: ignore[return-value]

    def _verified(self, ref: _Handle) -> _Handle | None:
        """The task as read now, if *ref*'s record came from the store's decoded copies."""
        if not ref.cached:
            return None
        fresh = _Handle(ref.keys, ref.token)
        self._found(fresh)
        return fresh

    def _apply(self, ref: _Handle, change: Change) -> tuple[bool, TaskRecord] | None:
        """
        Run ``change.lua``: one round trip applies or refuses *change*.

        Returns whether it was applied and the record it was judged against
        (the task before the write).  A call redis-py retried after a lost
        reply finds its own write applied: the record before it is then the
        current one with the status it had.
        """
        keys = ref.keys
        status = change.status
        reply = self._run(
            self._change,
            "write",
            (keys.task,),
            (
                change.now_ms,
                format_timestamp(change.now_ms),
                ref.token,
                "" if status is None else status.value,
                _message_arg(change),
                change.result_json or "",
                keys.shard.channel(keys.task_id),
            ),
        )
        code = int(reply[0])
        if code < 0:
            self._not_found(keys)
        if code == 2:  # applied by an earlier try of this very call
            current = self._from_fields(keys.task_id, keys.owner, reply[2:])[1]
            before = attrs.evolve(current.task, status=_STATUS[reply[1]])
            return True, attrs.evolve(current, task=before)
        version, current = self._from_fields(keys.task_id, keys.owner, reply[1:])
        if code == 1:  # _changed keeps the record the write path builds, at this version
            self._local.applied = (keys.task_id, version + 1)
        return code == 1, current

    def _changed(self, old: TaskRecord, new: TaskRecord) -> None:
        """Keep the record a change.lua write stored, decoded (same thread, same write)."""
        applied = getattr(self._local, "applied", None)
        if applied is not None:
            self._local.applied = None
            if applied[0] == new.task.task_id:
                self._remember(applied[0], applied[1], new)

    def _swap_args(self, ref: _Handle, new: TaskRecord, lock: str, wake: bool) -> tuple[Any, ...]:
        """swap.lua's arguments; a part the record read (*ref*'s) has alike is kept as stored."""
        task = new.task
        old: TaskRecord = ref.record  # type: ignore[assignment]
        message = task.status_message
        if message == old.task.status_message:
            message_arg = "="
        else:
            message_arg = "" if message is None else json.dumps(message)
        inputs = new.inputs_json
        return (
            ref.version,
            ref.token,
            lock,
            task.status.value,
            message_arg,
            task.last_updated_at,
            new.variables_json,
            new.result_json or "",
            ref.keys.shard.channel(ref.keys.task_id),  # every swap is announced: watches
            "=" if inputs == old.inputs_json else inputs,
        )

    def _compare_and_swap(self, ref: _Handle, new: TaskRecord, wake: bool) -> _Handle | None:
        """
        Run ``swap.lua``: store *new* if the version is still *ref*'s.

        Publishes the new status on the task's channel if *wake*.  Returns
        None once stored (or found stored by this write's token, a call
        redis-py retried), else a handle on the current version from the
        script's reply, marked ``locked`` while another writer holds the
        task's lock.

        Raises:
            NotFound: the task was removed meanwhile.
            StoreError: Redis failed.
        """
        args = self._swap_args(ref, new, "", wake)
        return self._swapped(ref, new, self._run(self._swap, "write", (ref.keys.task,), args))

    def _swapped(self, ref: _Handle, new: TaskRecord, reply: Sequence[Any]) -> _Handle | None:
        code = int(reply[0])
        if code == 1:
            self._remember(ref.keys.task_id, ref.version + 1, new)  # type: ignore[operator]
            return None
        if code == 2:
            return None
        if code < 0:
            raise NotFound(ref.keys.task_id)  # removed by cleanup_expired meanwhile
        version, current = self._from_fields(ref.keys.task_id, ref.keys.owner, reply[1:])
        return ref.at(version, current, locked=code == 3)

    def _lost_race(self, ref: _Handle, attempt: int) -> _Handle | None:
        """Try again at once from the record the swap returned; take the lock if it is held."""
        return None if ref.locked else ref

    def _write_locked(self, ref: _Handle, build: Build) -> tuple[TaskRecord, TaskRecord]:
        """
        Under the task's short lock (``lock.lua``): read, build, swap, release.

        While the lock is held no other swap is stored, so this one gets
        through (a status change may still come between: it is built again).
        Waits for another holder with a short random back-off; the lease
        lapses by itself if a holder dies.

        Raises:
            NotFound: the task was removed.
            StoreError: Redis failed, or the lock was not free for
                :data:`_LOCK_WAIT_S` seconds.
        """
        keys = ref.keys
        deadline = time.monotonic() + _LOCK_WAIT_S
        pause = 0.0002
        while True:
            reply = self._run(self._lock, "write", (keys.task,), (ref.token, _LOCK_LEASE_MS))
            code = int(reply[0])
            if code < 0:
                raise NotFound(keys.task_id)
            if code == 0:
                if time.monotonic() > deadline:
                    msg = f"Task {keys.task_id}: its write lock stayed taken; try again"
                    raise StoreError(msg)
                time.sleep(random.uniform(pause / 2, pause))
                pause = min(pause * 2, 0.005)
                continue
            version, old = self._from_fields(keys.task_id, keys.owner, reply[1:])
            held = ref.at(version, old)
            try:
                while True:
                    new = build(old)
                    args = self._swap_args(held, new, ref.token, False)
                    reply = self._run(self._swap, "write", (keys.task,), args)
                    after = self._swapped(held, new, reply)
                    if after is None:
                        return old, new
                    if after.locked:  # the lease lapsed and another writer took it
                        break
                    held, old = after, after.record  # type: ignore[assignment]
            except BaseException:
                with suppress(StoreError):
                    self._run(self._lock, "write", (keys.task,), (ref.token, ""))
                raise

    # -- expiry ---------------------------------------------------------------

    def cleanup_expired(self) -> int:
        """
        Remove every expired task; return how many were removed.

        One pipelined round trip reads each shard's oldest expiry; each
        shard with a task due then removes its expired tasks in batches of
        500, each one atomic step (``cleanup.lua``), waking their waiters.
        Never scans the keyspace.

        Cost: O(k log n) for k tasks removed, plus one round trip, and one
        per batch of a shard with tasks due.
        """
        now_ms = self._now_ms()
        with self._guard("cleanup_expired"):
            pipe = self._client.pipeline(transaction=False)
            for shard in self._shards:
                pipe.zrange(shard.expiry, 0, 0, withscores=True)
            heads = pipe.execute()
        removed = 0
        for shard, head in zip(self._shards, heads, strict=True):
            if not head or head[0][1] > now_ms:
                continue
            while True:
                taken, count = self._run(
                    self._cleanup,
                    "cleanup_expired",
                    (shard.expiry, shard.count),
                    (now_ms, _CLEANUP_BATCH, shard.tag),
                )
                removed += int(count)
                if int(taken) < _CLEANUP_BATCH:
                    break
        return removed

    # -- wait -----------------------------------------------------------------

    def wait(
        self, task_id: str, owner_id: str, *, timeout: float | None = None
    ) -> TaskRecord:
        """
        Block until the task is terminal; see :meth:`TaskStore.wait`.

        Every waiter of the store in this process shares one pub/sub
        connection: the waiter registers on the task's channel, waits for
        Redis to confirm the subscription, and only then reads the record,
        so a write that ends the task after that read is a message it gets,
        and no wake-up is lost.  It reads again on every message, at the
        task's expiry, at its timeout, and otherwise every
        :attr:`recheck_interval_s` seconds (a message lost while the
        connection was down).  It never polls faster.

        Holds no pool connection while it sleeps.
        """
        keys, record = self._locate(task_id, owner_id)
        limit = rules.check_timeout(timeout)
        if rules.wait_done(record, self._now_ms()):
            return record
        if limit == 0:
            raise WaitTimeout(record.task.task_id, limit)
        deadline = None if limit is None else time.monotonic() + limit
        channel = keys.shard.channel(keys.task_id)
        with self._guard("wait"):
            waiter = self._subscriber.watch(channel, self.recheck_interval_s)
        try:
            while True:
                waiter.clear()
                found = self._read(keys)
                if found is None:
                    raise NotFound(keys.task_id)
                current = found[1]
                now_ms = self._now_ms()
                if rules.wait_done(current, now_ms):
                    return current
                sleep = self.recheck_interval_s
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise WaitTimeout(keys.task_id, limit)  # type: ignore[arg-type]
                    sleep = min(sleep, left)
                if current.expires_at_ms is not None:
                    sleep = min(sleep, max(0.0, (current.expires_at_ms - now_ms) / 1000))
                waiter.wait(sleep)
        finally:
            self._subscriber.unwatch(channel, waiter)

    # -- watches and shared secrets (issue 11) --------------------------------
    #
    # Every write is announced on the task's channel: swap.lua publishes every
    # swap, change.lua every ending, and _write_applied below the other
    # changes change.lua applies, so a watch in any process wakes on each.

    def _write_applied(
        self, ref: _Handle, change: Change
    ) -> tuple[TaskRecord, TaskRecord] | None:
        """
        The write path's applied side (``change.lua``), then one PUBLISH for
        a change that does not end the task (the script announces endings).
        """
        done = super()._write_applied(ref, change)
        if done is not None and not wakes_waiters(*done):
            keys = ref.keys
            with self._guard("write"):
                self._client.publish(keys.shard.channel(keys.task_id), done[1].task.status.value)
        return done

    def watch(self, owner_id: str, task_ids: Iterable[str]) -> TaskWatch:
        """
        Watch *owner_id*'s tasks *task_ids*; see :meth:`TaskStore.watch`.

        The watch shares the store's one pub/sub connection in this process
        with every waiter: it registers on each task's channel and returns
        once Redis has confirmed the subscriptions, so a change after it is a
        message it gets.  Ids under which the owner holds no task are not
        watched (one EXISTS each, pipelined).  Holds no pool connection.
        """
        owner = rules.check_caller(owner_id, self._security)
        ids = list(dict.fromkeys(rules.check_task_id(task_id) for task_id in task_ids))
        keys = [self._keys(owner, task_id) for task_id in ids]
        held: list[Any] = []
        if keys:
            with self._guard("watch"):
                pipe = self._client.pipeline(transaction=False)
                for key in keys:
                    pipe.exists(key.task)
                held = pipe.execute()
        channels = [k.shard.channel(k.task_id) for k, n in zip(keys, held, strict=True) if n]
        with self._guard("watch"):
            return _Watch(self._subscriber, channels, self.recheck_interval_s)

    def shared_secret(self, name: str) -> bytes:
        """
        Return the secret called *name*, the same for every process on this
        Redis and key prefix; see :meth:`TaskStore.shared_secret`.

        Kept at ``<p>:secret:<name>`` (32 random bytes, hex, written once with
        ``SET NX``, outside the shards' ``{<p>:<k>}`` keys); read once per
        process.
        """
        if not isinstance(name, str) or not name:
            msg = f"name must be a non-empty str, got {name!r}"
            raise TypeError(msg)
        cache: dict[str, bytes] = self.__dict__.setdefault("_shared", {})
        found = cache.get(name)
        if found is None:
            key = self._prefix + b":secret:" + _raw(name)
            with self._guard("shared_secret"):
                self._client.set(key, os.urandom(32).hex(), nx=True)
                value = self._client.get(key)
            if value is None:
                msg = f"Redis lost the secret {name!r} just written; try again"
                raise StoreError(msg)
            found = cache.setdefault(name, bytes.fromhex(_text(value)))
        return found

    # -- invariants -----------------------------------------------------------

    def _dump_shards(self) -> Sequence[tuple[_Shard, Sequence[Any]]]:
        """
        Every key of every shard, whole (``check.lua``): on one server one
        script for all shards, on a cluster one per shard, pipelined.
        """
        script = self._dump
        escaped = _GLOB.sub(rb"\\\1", self._prefix)
        if not self._cluster:
            entries = script(keys=(self._shards[0].count,), args=(b"{" + escaped + b":*",))
            by_tag: dict[bytes, list[Any]] = {shard.tag: [] for shard in self._shards}
            for entry in entries:
                key = entry[0] if isinstance(entry[0], bytes) else _raw(entry[0])
                tag = key[: key.index(b"}") + 1]
                assert tag in by_tag, f"{key!r}: no shard's key"
                by_tag[tag].append(entry)
            return [(shard, by_tag[shard.tag]) for shard in self._shards]
        client: Any = self._client
        for _ in range(2):
            # One script per shard, pipelined; each names its node, or the
            # pipeline would ask the server for each EVALSHA's keys first.
            pipe = client.pipeline(transaction=False)
            for shard in self._shards:
                pattern = b"{" + escaped + b":%d}:*" % shard.number
                node = client.get_node_from_key(shard.count)
                pipe.execute_command(
                    "EVALSHA", script.sha, 1, shard.count, pattern, target_nodes=node
                )
            try:
                return list(zip(self._shards, pipe.execute(), strict=True))
            except NoScriptError:
                script.sha = client.script_load(script.text)
        raise AssertionError("check.lua could not be loaded")

    def _check(self) -> None:
        """
        Assert every invariant of the keyspace.  For tests only: it runs KEYS
        per shard; call it with no writer running.

        Raises:
            AssertionError: naming the broken invariant.
        """
        for shard, entries in self._dump_shards():
            if entries:
                _check_shard(shard, entries)


# -- invariants (tests only) ----------------------------------------------------

_TASK_FIELDS = frozenset({"st", "upd", "ver", "op", "prev", "vars", "exp", "fix"})
_OPTIONAL_FIELDS = frozenset({"msg", "res", "inp"})


def _pairs(flat: Sequence[Any]) -> dict[bytes, bytes]:
    """A flat [k1, v1, k2, v2...] reply as a dict of bytes."""
    def b(x: Any) -> bytes:
        return x if isinstance(x, bytes) else _raw(str(x))

    return {b(flat[i]): b(flat[i + 1]) for i in range(0, len(flat), 2)}


def _score(text: bytes) -> float:
    return float(text.decode().replace("inf", "Infinity")) if text else 0.0


def _check_shard(shard: _Shard, entries: Sequence[Any]) -> None:
    """
    Assert the invariants of one shard's keys (``check.lua``'s dump of them).

    Every key is of a known kind and type; every task hash is whole, in its
    owner's shard, listed, counted live, indexed by id and (with a TTL) by
    expiry, and has no lock left; no index holds an entry of a task that is
    gone; the counter is the number of tasks; the sequence is past every
    task's; and no key expires before a task it serves (none without TTL
    while one of them has none).
    """
    tag = shard.tag
    #: ms an expiry may be blurred by (before Redis 7.0, read as PTTL plus the time)
    slack = 50
    tasks: dict[tuple[str, str], tuple[TaskRecord, int]] = {}  # (owner, id) -> record, expires at
    lists: dict[str, tuple[dict[bytes, bytes], int]] = {}
    lives: dict[str, tuple[dict[bytes, bytes], int]] = {}
    index: dict[str, tuple[bytes, int]] = {}
    single: dict[bytes, tuple[Any, int]] = {}
    for raw_key, kind, at, value in entries:
        key = raw_key if isinstance(raw_key, bytes) else _raw(raw_key)
        kind = _text(kind)
        assert key.startswith(tag + b":"), f"{key!r}: outside the shard"
        rest = key[len(tag) + 1 :]
        if rest.startswith(b"o:"):
            length, _, tail = rest[2:].partition(b":")
            owner_raw, what = tail[: int(length)], tail[int(length) :]
            owner = owner_raw.decode("utf-8", "surrogatepass")
            assert shard_of(owner) == shard.number, f"{key!r}: owner of another shard"
            if what.startswith(b":t:") and kind == "hash":
                task_id = what[3:].decode()
                fields = _pairs(value)
                names = {name.decode() for name in fields}
                assert _TASK_FIELDS <= names <= _TASK_FIELDS | _OPTIONAL_FIELDS, (
                    f"{task_id}: fields {sorted(names)}"
                )
                assert _shard_of_id(task_id) == shard.number, f"{task_id}: id of another shard"
                values = [fields.get(name.encode()) for name in FIELDS]
                _, record = _decode(task_id, owner, _fields_parts(values))
                assert int(fields[b"ver"]) >= 1, f"{task_id}: version"
                assert fields[b"prev"].decode() in _STATUS, f"{task_id}: previous status"
                tasks[(owner, task_id)] = (record, int(at))
            elif what == b":list" and kind == "zset":
                lists[owner] = (_pairs(value), int(at))
            elif what == b":live" and kind == "zset":
                lives[owner] = (_pairs(value), int(at))
            else:
                raise AssertionError(f"{key!r}: unknown key of type {kind}")
        elif rest.startswith(b"id:") and kind == "string":
            index[rest[3:].decode()] = (value[0], int(at))
        elif rest in (b"expiry", b"count", b"seq", b"secret"):
            want = "zset" if rest == b"expiry" else "string"
            assert kind == want, f"{key!r}: a {kind}, not a {want}"
            single[rest] = (value, int(at))
        else:
            raise AssertionError(f"{key!r}: unknown key of type {kind}")

    def serves(what: str, at: int, served: Sequence[int]) -> None:
        """A key lives at least as long as every task it serves (-1: for ever)."""
        if not served:
            return
        if -1 in served:
            assert at == -1, f"{what}: expires, but serves a task without TTL"
        else:
            assert at == -1 or at >= max(served) - slack, f"{what}: expires before its tasks"

    expiry = _pairs(single[b"expiry"][0]) if b"expiry" in single else {}
    expected_expiry: dict[bytes, bytes] = {}
    by_owner: dict[str, list[int]] = {}
    for (owner, task_id), (record, at) in tasks.items():
        member = f"{record.created_ms:016d}:{record.seq:016d}:{task_id}".encode()
        listed = lists.get(owner, ({}, 0))[0]
        assert member in listed, f"{task_id}: not listed"
        live = lives.get(owner, ({}, 0))[0].get(_raw(task_id))
        score = float("inf") if record.expires_at_ms is None else float(record.expires_at_ms)
        assert live is not None, f"{task_id}: not in the live index"
        assert _score(live) == score, f"{task_id}: live index has {live!r}"
        holder = index.get(task_id)
        assert holder is not None, f"{task_id}: not in the id index"
        assert json.loads(holder[0]) == owner, f"{task_id}: id index names another owner"
        if record.expires_at_ms is None:
            assert at == -1, f"{task_id}: no TTL, but its hash expires"
            assert holder[1] == -1, f"{task_id}: no TTL, but its id index expires"
        else:
            assert at > 0, f"{task_id}: its hash never expires ({at})"
            assert abs(holder[1] - at) <= slack, f"{task_id}: id index expires apart"
            expected_expiry[member + b":" + _raw(owner)] = b"%d" % record.expires_at_ms
        by_owner.setdefault(owner, []).append(at)
    assert set(expiry) == set(expected_expiry), "expiry index != the tasks with a TTL"
    for member, text in expiry.items():
        assert _score(text) == float(expected_expiry[member]), f"{member!r}: expiry score"
    for owner, (members, at) in lists.items():
        assert len(members) == len(by_owner.get(owner, ())), f"{owner!r}: list holds stale entries"
        serves(f"{owner!r}'s list", at, by_owner.get(owner, []))
    for owner, (members, at) in lives.items():
        assert len(members) == len(by_owner.get(owner, ())), f"{owner!r}: live holds stale entries"
        serves(f"{owner!r}'s live index", at, by_owner.get(owner, []))
    assert set(index) == {task_id for _, task_id in tasks}, "id index holds entries of no task"
    all_pttls = [at for _, at in tasks.values()]
    count = single.get(b"count")
    assert (0 if count is None else int(count[0][0])) == len(tasks), "task counter != tasks held"
    for name in (b"count", b"seq", b"secret"):
        if name in single:
            serves(f"shard {shard.number} {name.decode()}", single[name][1], all_pttls)
    if b"expiry" in single:
        timed = [at for at in all_pttls if at != -1]
        serves(f"shard {shard.number} expiry", single[b"expiry"][1], timed)
    if tasks:
        assert b"seq" in single, "tasks held but no sequence"
        top = max(record.seq for record, _ in tasks.values())
        assert int(single[b"seq"][0][0]) >= top, "sequence behind a task's"

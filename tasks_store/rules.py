"""
The domain rules, in one place, for every backend.

Argument checks, the anonymous rule, TTL ceiling (reject, never clamp),
quota, expiry, the state machine applied to records, the variables merge and
size limit, the ``list`` cursor, and a task's input requests.  Everything
here is pure: no locks, no I/O, no clock.  A backend reads the current
record, calls a rule with one clock reading, and stores the record the rule
returns, atomically.

Input requests (a task asking its client for input) live in the record's
``inputs_json``: every key ever issued (a key is never reused over the
task's lifetime), the requests still outstanding (``open``), and the
responses received but not yet consumed by the waiting tool
(``answered``).  :func:`request_input` adds requests and moves the task to
``input_required`` in one step; :func:`respond_input` records responses for
keys outstanding right now (anything else is ignored) and moves the task
back to ``working`` once none is left; :func:`withdraw_input` supersedes
requests; :func:`take_input` hands answered responses to the tool once.
The outstanding requests and unconsumed responses, as compact UTF-8 JSON,
count against the store's ``max_variable_size_bytes`` (apart from the
variables; :func:`input_size`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from .config import StoreConfig, TaskSecurityConfig
from .errors import (
    AnonymousAccessDenied,
    Expired,
    InputSizeExceeded,
    InvalidCursor,
    InvalidParams,
    InvalidTransition,
    NotReady,
    ResourceExhausted,
    TaskEnded,
    TtlExceeded,
    VariableSizeExceeded,
)
from .records import _ERROR_TAG, JsonRpcError, Task, TaskRecord
from .security import ANONYMOUS_OWNERS
from .status import TaskStatus, coerce_status
from .wire import check_json, compact_json, format_timestamp

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_INPUT_KEY_LENGTH",
    "MAX_PAGE_SIZE",
    "MAX_TTL_MS",
    "check_caller",
    "check_input_keys",
    "check_input_requests",
    "check_input_responses",
    "check_limit",
    "check_message",
    "check_quota",
    "check_request_method",
    "check_task_id",
    "check_terminal_status",
    "check_timeout",
    "check_variables",
    "complete",
    "decode_cursor",
    "encode_cursor",
    "ensure_live",
    "input_ready",
    "input_size",
    "merge_variables",
    "new_record",
    "new_task_id",
    "owner_tag",
    "read_result",
    "request_input",
    "resolve_ttl",
    "respond_input",
    "take_input",
    "transition",
    "wait_done",
    "with_result",
    "with_status_message",
    "with_variables",
    "withdraw_input",
]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
#: The longest TTL any store represents, in ms (10**14 ms, about 3,170 years),
#: whatever ``max_ttl_ms`` says.  Creation time plus TTL stays a
#: :class:`~datetime.datetime` (year 9999 at the latest) for clocks before
#: year 6800, and an integer that a double (Lua's number, Redis's scripts)
#: holds exactly, retention included; a longer TTL is refused, never clamped.
MAX_TTL_MS = 10**14
#: Longest input request key (in characters).
MAX_INPUT_KEY_LENGTH = 256


# -- arguments ----------------------------------------------------------------


def check_caller(owner_id: object, security: TaskSecurityConfig) -> str:
    """
    Check the caller's owner id; return it.

    Raises:
        InvalidParams: *owner_id* is not a str.
        AnonymousAccessDenied: the owner is anonymous (``""`` or ``"local"``)
            and anonymous use is off.
    """
    if type(owner_id) is not str:
        if not isinstance(owner_id, str):
            msg = f"owner_id must be a str, got {type(owner_id).__name__}"
            raise InvalidParams(msg)
        owner_id = str(owner_id)
    if owner_id in ANONYMOUS_OWNERS and not security.allow_anonymous:
        raise AnonymousAccessDenied()
    return owner_id


def check_task_id(task_id: object) -> str:
    """Raise :class:`InvalidParams` unless *task_id* is a str; return it."""
    if type(task_id) is not str:
        if not isinstance(task_id, str):
            msg = f"task_id must be a str, got {type(task_id).__name__}"
            raise InvalidParams(msg)
        task_id = str(task_id)
    return task_id


def check_request_method(request_method: object) -> str:
    """Raise :class:`InvalidParams` unless *request_method* is a non-empty str."""
    if not isinstance(request_method, str) or not request_method:
        msg = f"request_method must be a non-empty str, got {request_method!r}"
        raise InvalidParams(msg)
    return str(request_method)


def check_message(status_message: object) -> str | None:
    """Raise :class:`InvalidParams` unless *status_message* is a str or None."""
    if status_message is None or type(status_message) is str:
        return status_message
    if isinstance(status_message, str):
        return str(status_message)
    msg = f"status_message must be a str or None, got {type(status_message).__name__}"
    raise InvalidParams(msg)


def check_terminal_status(status: object) -> TaskStatus:
    """
    Return *status* as a terminal :class:`TaskStatus`.

    Raises:
        InvalidParams: it is not a status, or not a terminal one.
    """
    target = coerce_status(status)
    if not target.is_terminal:
        msg = (
            f"status must be terminal (completed, failed or cancelled), "
            f"got {target.value}"
        )
        raise InvalidParams(msg)
    return target


def check_limit(limit: object) -> int:
    """
    Return the page size for ``list``: *limit*, or 50 when None.

    Raises:
        InvalidParams: *limit* is not an int in 1..1000.
    """
    if limit is None:
        return DEFAULT_PAGE_SIZE
    if type(limit) is not int or not 1 <= limit <= MAX_PAGE_SIZE:
        msg = f"limit must be an int from 1 to {MAX_PAGE_SIZE}, got {limit!r}"
        raise InvalidParams(msg)
    return limit


def check_timeout(timeout: object) -> float | None:
    """
    Return a ``wait`` timeout in seconds (None: no limit).

    Raises:
        InvalidParams: *timeout* is not a finite number >= 0.
    """
    if timeout is None:
        return None
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not 0 <= timeout < float("inf")
    ):
        msg = f"timeout must be a number of seconds >= 0 or None, got {timeout!r}"
        raise InvalidParams(msg)
    return float(timeout)


def resolve_ttl(ttl: object, config: StoreConfig) -> int | None:
    """
    Return the TTL in ms for a new task (None: unlimited).

    None asks for the store's default.  A TTL above the ceiling is refused,
    never clamped, and so is one above :data:`MAX_TTL_MS`, the longest any
    store can represent (checked after the ceiling, so a configured ceiling
    still answers :class:`TtlExceeded`).

    Raises:
        InvalidParams: *ttl* is not an int >= 0 (bools are refused), or it
            (or the default it stands for) is above :data:`MAX_TTL_MS`.
        TtlExceeded: *ttl* is above ``config.max_ttl_ms``.
    """
    if ttl is None:
        ttl = config.default_ttl_ms
        if ttl is None or ttl <= MAX_TTL_MS:
            return ttl
    elif type(ttl) is not int or ttl < 0:
        msg = f"ttl must be an int of milliseconds >= 0 or None, got {ttl!r}"
        raise InvalidParams(msg)
    elif config.max_ttl_ms is not None and ttl > config.max_ttl_ms:
        raise TtlExceeded(ttl, config.max_ttl_ms)
    if ttl > MAX_TTL_MS:
        msg = f"ttl must be at most {MAX_TTL_MS} ms (about 3,170 years), got {ttl!r}"
        raise InvalidParams(msg)
    return ttl


def check_quota(live_tasks: int, security: TaskSecurityConfig) -> None:
    """
    Raise :class:`ResourceExhausted` if an owner with *live_tasks* may not create one more.

    Expired tasks are not live: the caller counts only unexpired ones.
    """
    limit = security.max_tasks_per_owner
    if live_tasks >= limit:
        raise ResourceExhausted(
            f"At most {limit} live tasks per owner; wait for some to expire"
        )


# -- records ------------------------------------------------------------------


def new_task_id() -> str:
    """Return a random UUID version 4 (RFC 4122 form) from ``os.urandom``."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_record(
    task_id: str,
    owner_id: str,
    request_method: str,
    ttl_ms: int | None,
    now_ms: int,
    poll_interval_ms: int,
    seq: int,
) -> TaskRecord:
    """Return the record of a task just created: working, no variables, no result."""
    stamp = format_timestamp(now_ms)
    task = Task(
        task_id=task_id,
        status=TaskStatus.WORKING,
        created_at=stamp,
        last_updated_at=stamp,
        ttl=ttl_ms,
        poll_interval=poll_interval_ms,
    )
    return TaskRecord(
        task=task,
        owner_id=owner_id,
        request_method=request_method,
        created_ms=now_ms,
        seq=seq,
        expires_at_ms=None if ttl_ms is None else now_ms + ttl_ms,
    )


def ensure_live(record: TaskRecord, now_ms: int) -> None:
    """Raise :class:`Expired` if *record* has expired at *now_ms*: it may no longer change."""
    expires = record.expires_at_ms
    if expires is not None and now_ms >= expires:
        raise Expired(record.task.task_id, record.expires_at)  # type: ignore[arg-type]


def _ensure_open(record: TaskRecord, now_ms: int, what: str) -> TaskStatus:
    """
    Refuse a change of *what* on a task that expired or ended; return its status.

    Raises:
        Expired: the task has expired.
        InvalidTransition: the task is terminal (*what* is final).
    """
    ensure_live(record, now_ms)
    status = record.task.status
    if status.is_terminal:
        raise InvalidTransition(
            record.task.task_id,
            status.value,
            status.value,
            f"The task is already {status.value}; {what} can no longer change",
        )
    return status


def _rebuild(
    record: TaskRecord,
    now_ms: int,
    status: TaskStatus,
    status_message: str | None,
    variables_json: str,
    result_json: str | None,
    inputs_json: str | None = None,
) -> TaskRecord:
    """
    Return *record* with these parts and *now_ms* as its update time.

    *inputs_json* None keeps the record's input state (a terminal task has
    none outstanding whatever it holds: see ``TaskRecord.input_requests``).
    """
    if inputs_json is None:
        inputs_json = record.inputs_json
    old = record.task
    task = Task(
        task_id=old.task_id,
        status=status,
        status_message=status_message,
        created_at=old.created_at,
        last_updated_at=format_timestamp(now_ms),
        ttl=old.ttl,
        poll_interval=old.poll_interval,
        meta=old.meta,
    )
    return TaskRecord(
        task=task,
        owner_id=record.owner_id,
        request_method=record.request_method,
        created_ms=record.created_ms,
        seq=record.seq,
        expires_at_ms=record.expires_at_ms,
        variables_json=variables_json,
        result_json=result_json,
        inputs_json=inputs_json,
    )


def transition(
    record: TaskRecord, status: TaskStatus, status_message: str | None, now_ms: int
) -> TaskRecord:
    """
    Return *record* moved to *status*, with *status_message* replacing the old one.

    Raises:
        Expired: the task has expired.
        InvalidTransition: the state machine does not allow the move.
    """
    ensure_live(record, now_ms)
    record.task.status.validate_transition(record.task.task_id, status)
    return _rebuild(
        record, now_ms, status, status_message, record.variables_json, record.result_json
    )


def complete(
    record: TaskRecord,
    status: TaskStatus,
    status_message: str | None,
    result_json: str,
    now_ms: int,
) -> TaskRecord:
    """
    Return *record* moved to the terminal *status* with its result, in one step.

    Raises:
        Expired, InvalidTransition: as for :func:`transition`.
    """
    ensure_live(record, now_ms)
    record.task.status.validate_transition(record.task.task_id, status)
    return _rebuild(
        record, now_ms, status, status_message, record.variables_json, result_json
    )


def with_result(record: TaskRecord, result_json: str, now_ms: int) -> TaskRecord:
    """
    Return *record* with its result replaced; the status is unchanged.

    Raises:
        Expired: the task has expired.
        InvalidTransition: the task is terminal; its result is final.
    """
    status = _ensure_open(record, now_ms, "its result")
    task = record.task
    return _rebuild(
        record, now_ms, status, task.status_message, record.variables_json, result_json
    )


def check_variables(updates: object) -> dict[str, Any]:
    """
    Return a checked copy of a ``set_variables`` argument.

    Raises:
        InvalidParams: *updates* is not a mapping, a key is not a str, or a
            value is not plain JSON.
    """
    if not isinstance(updates, Mapping):
        msg = f"variables must be a mapping, got {type(updates).__name__}"
        raise InvalidParams(msg)
    checked = dict(updates)
    check_json(checked, "variables")
    return checked


def merge_variables(
    current_json: str, updates: Mapping[str, Any], limit_bytes: int
) -> str:
    """
    Return the JSON text of *current_json* merged with checked *updates*.

    New keys are added, existing ones overwritten, and a None value deletes
    its key.

    Raises:
        InvalidParams: a string is not valid Unicode (a lone surrogate).
        VariableSizeExceeded: the merged map's compact UTF-8 JSON is larger
            than *limit_bytes*.

    Cost: O(size of the current and new variables).
    """
    merged: dict[str, Any] = json.loads(current_json)
    for key, value in updates.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    text = compact_json(merged)
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        msg = "variables hold a string that is not valid Unicode (lone surrogate)"
        raise InvalidParams(msg) from None
    if size > limit_bytes:
        raise VariableSizeExceeded(limit_bytes, size)
    return text


def with_variables(record: TaskRecord, variables_json: str, now_ms: int) -> TaskRecord:
    """
    Return *record* with its variables replaced by *variables_json*.

    Raises:
        Expired: the task has expired.
    """
    ensure_live(record, now_ms)
    task = record.task
    return _rebuild(
        record, now_ms, task.status, task.status_message, variables_json, record.result_json
    )


def with_status_message(
    record: TaskRecord,
    status_message: str | None,
    updates: Mapping[str, Any] | None,
    limit_bytes: int,
    now_ms: int,
) -> TaskRecord:
    """
    Return *record* with *status_message* in place and checked variable
    *updates* (when not None) merged, its status unchanged: a progress message.

    Raises:
        Expired: the task has expired.
        InvalidTransition: the task is terminal; its message is final.
        VariableSizeExceeded, InvalidParams: as :func:`merge_variables`.
    """
    status = _ensure_open(record, now_ms, "its status message")
    variables = record.variables_json
    if updates is not None:
        variables = merge_variables(variables, updates, limit_bytes)
    return _rebuild(record, now_ms, status, status_message, variables, record.result_json)


def read_result(record: TaskRecord, now_ms: int) -> Any:
    """
    Return the result of a terminal task.

    Raises:
        NotReady: the task is not terminal, or ended without a result.
        Expired: the task expired before it ended: it never will.
    """
    status = record.task.status
    if status.is_terminal and record.result_json is not None:
        return record.result
    if not status.is_terminal:
        ensure_live(record, now_ms)
    raise NotReady(record.task.task_id, status.value)


def wait_done(record: TaskRecord, now_ms: int) -> bool:
    """
    Return whether a waiter on *record* is done (the task is terminal).

    Raises:
        Expired: the task expired before it ended: it never will.
    """
    if record.task.status.is_terminal:
        return True
    ensure_live(record, now_ms)
    return False


# -- input requests -----------------------------------------------------------


def _check_key(key: object, what: str) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_INPUT_KEY_LENGTH:
        msg = (
            f"{what} keys must be non-empty str of at most {MAX_INPUT_KEY_LENGTH} "
            f"characters, got {_shown(key)}"
        )
        raise InvalidParams(msg)
    return str(key)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def check_input_requests(requests: object) -> dict[str, dict[str, Any]]:
    """
    Return a checked copy of ``request_input``'s *requests*: key to
    ``{"method": str, "params": dict}``.

    Raises:
        InvalidParams: *requests* is not a non-empty mapping; a key is not a
            non-empty str of at most 256 characters; a request is not a
            mapping holding a non-empty str ``method`` and (optionally) a
            mapping ``params``, or holds anything else, or is not plain JSON.
    """
    if not isinstance(requests, Mapping) or not requests:
        msg = "requests must be a non-empty mapping of key to {method, params}"
        raise InvalidParams(msg)
    checked: dict[str, dict[str, Any]] = {}
    for key, request in requests.items():
        name = _check_key(key, "input request")
        if not isinstance(request, Mapping):
            msg = f"requests[{name!r}] must be a mapping with method and params"
            raise InvalidParams(msg)
        method = request.get("method")
        if not isinstance(method, str) or not method:
            msg = f"requests[{name!r}]['method'] must be a non-empty str, got {_shown(method)}"
            raise InvalidParams(msg)
        params = request.get("params", {})
        if not isinstance(params, Mapping):
            msg = f"requests[{name!r}]['params'] must be a mapping, got {type(params).__name__}"
            raise InvalidParams(msg)
        extra = sorted(str(k) for k in request if k not in ("method", "params"))
        if extra:
            msg = f"requests[{name!r}] holds keys other than method and params: {extra}"
            raise InvalidParams(msg)
        checked[name] = {"method": str(method), "params": dict(params)}
    check_json(checked, "requests")
    return checked


def check_input_responses(responses: object) -> dict[str, Any]:
    """
    Return a checked copy of ``respond_input``'s *responses*: key to a JSON
    object (a :class:`JsonRpcError`, the client's error answer, is tagged as
    a stored result is).

    Raises:
        InvalidParams: *responses* is not a mapping, a key is not a str, or
            a response is not a JSON object (nor a :class:`JsonRpcError`).
    """
    if not isinstance(responses, Mapping):
        msg = f"responses must be a mapping of key to response, got {type(responses).__name__}"
        raise InvalidParams(msg)
    checked: dict[str, Any] = {}
    for key, value in responses.items():
        if not isinstance(key, str):
            msg = f"response keys must be str, got {_shown(key)}"
            raise InvalidParams(msg)
        if isinstance(value, JsonRpcError):
            checked[str(key)] = {_ERROR_TAG: value.to_dict()}
        elif isinstance(value, Mapping):
            checked[str(key)] = dict(value)
        else:
            msg = f"responses[{_shown(key)}] must be a JSON object, got {type(value).__name__}"
            raise InvalidParams(msg)
    check_json(checked, "responses")
    return checked


def check_input_keys(keys: object) -> tuple[str, ...]:
    """
    Return *keys* (a collection of input request keys) as a tuple, duplicates dropped.

    Raises:
        InvalidParams: *keys* is a str, not iterable, empty, or holds a key
            that is not a non-empty str.
    """
    if isinstance(keys, (str, bytes)) or not isinstance(keys, Iterable):
        msg = f"keys must be a collection of str (not one str), got {type(keys).__name__}"
        raise InvalidParams(msg)
    checked = tuple(dict.fromkeys(_check_key(key, "input request") for key in keys))
    if not checked:
        msg = "keys must name at least one input request"
        raise InvalidParams(msg)
    return checked


def _inputs(record: TaskRecord) -> dict[str, Any]:
    """The record's input state, decoded (a fresh copy)."""
    if record.inputs_json == "{}":
        return {"issued": [], "open": {}, "answered": {}}
    state: dict[str, Any] = json.loads(record.inputs_json)
    return state


def input_size(record: TaskRecord) -> int:
    """
    Return what a task's input requests weigh against the size limit: the
    compact UTF-8 JSON of its outstanding requests plus that of its
    unconsumed responses (the issued keys are bookkeeping and do not count).
    """
    state = _inputs(record)
    return len(compact_json(state["open"]).encode("utf-8")) + len(
        compact_json(state["answered"]).encode("utf-8")
    )


def _inputs_text(state: Mapping[str, Any], limit_bytes: int) -> str:
    """Encode an input state; check it against the size limit (see :func:`input_size`)."""
    try:
        size = len(compact_json(state["open"]).encode("utf-8")) + len(
            compact_json(state["answered"]).encode("utf-8")
        )
    except UnicodeEncodeError:
        msg = "input requests hold a string that is not valid Unicode (lone surrogate)"
        raise InvalidParams(msg) from None
    if size > limit_bytes:
        raise InputSizeExceeded(limit_bytes, size)
    return compact_json(state)


def _resumed(record: TaskRecord, state: Mapping[str, Any]) -> tuple[TaskStatus, str | None]:
    """The status and message once *state* is stored: back to working when nothing is open."""
    status = record.task.status
    if status is TaskStatus.INPUT_REQUIRED and not state["open"]:
        return TaskStatus.WORKING, None
    return status, record.task.status_message


def request_input(
    record: TaskRecord,
    requests: Mapping[str, Mapping[str, Any]],
    status_message: str | None,
    now_ms: int,
    limit_bytes: int,
) -> TaskRecord:
    """
    Return *record* with checked *requests* outstanding, moved to
    ``input_required`` (it stays there if it is already), with
    *status_message* replacing the old one: one step.

    Raises:
        Expired: the task has expired.
        InvalidTransition: the task is terminal.
        InvalidParams: a key was issued before (keys are unique over the
            task's whole lifetime, answered or not).
        InputSizeExceeded: the input state would grow past *limit_bytes*.
    """
    ensure_live(record, now_ms)
    status = record.task.status
    task_id = record.task.task_id
    if status.is_terminal:
        raise InvalidTransition(
            task_id,
            status.value,
            TaskStatus.INPUT_REQUIRED.value,
            f"The task is already {status.value}; it can no longer ask for input",
        )
    state = _inputs(record)
    issued = set(state["issued"])
    reused = [key for key in requests if key in issued]
    if reused:
        msg = (
            f"Task {task_id}: input request keys are unique over a task's lifetime; "
            f"already issued: {', '.join(repr(k) for k in reused[:5])}"
        )
        raise InvalidParams(msg)
    state["issued"].extend(requests)
    state["open"].update(requests)
    text = _inputs_text(state, limit_bytes)
    return _rebuild(
        record,
        now_ms,
        TaskStatus.INPUT_REQUIRED,
        status_message,
        record.variables_json,
        record.result_json,
        text,
    )


def respond_input(
    record: TaskRecord, responses: Mapping[str, Any], now_ms: int, limit_bytes: int
) -> tuple[TaskRecord, tuple[str, ...]] | None:
    """
    Return *record* with the checked *responses* to its outstanding keys
    recorded, and the keys accepted; None when no key is outstanding (then
    nothing is to be stored).

    Keys never issued, already answered or withdrawn are ignored.  Once no
    request is outstanding an ``input_required`` task is back to
    ``working``, its status message cleared (the question is answered); a
    partial answer leaves it ``input_required``.  A terminal task has no
    outstanding request: None.

    Raises:
        Expired: the task has expired before it ended.
        InputSizeExceeded: the input state would grow past *limit_bytes*.
    """
    if record.task.status.is_terminal:
        return None
    ensure_live(record, now_ms)
    state = _inputs(record)
    accepted = tuple(key for key in responses if key in state["open"])
    if not accepted:
        return None
    for key in accepted:
        del state["open"][key]
        state["answered"][key] = responses[key]
    status, message = _resumed(record, state)
    text = _inputs_text(state, limit_bytes)
    new = _rebuild(
        record, now_ms, status, message, record.variables_json, record.result_json, text
    )
    return new, accepted


def withdraw_input(
    record: TaskRecord, keys: tuple[str, ...], now_ms: int
) -> TaskRecord | None:
    """
    Return *record* with the requests *keys* superseded: no longer
    outstanding, and any unconsumed response to them dropped; None when none
    of them is outstanding or answered (nothing to store).  Once no request
    is outstanding an ``input_required`` task is back to ``working``.

    Raises:
        Expired: the task has expired before it ended.
    """
    if record.task.status.is_terminal:
        return None
    ensure_live(record, now_ms)
    state = _inputs(record)
    removed = [key for key in keys if key in state["open"] or key in state["answered"]]
    if not removed:
        return None
    for key in removed:
        state["open"].pop(key, None)
        state["answered"].pop(key, None)
    status, message = _resumed(record, state)
    return _rebuild(
        record,
        now_ms,
        status,
        message,
        record.variables_json,
        record.result_json,
        compact_json(state),
    )


def input_ready(record: TaskRecord, keys: tuple[str, ...], now_ms: int) -> bool:
    """
    Return whether every request of *keys* is answered (a waiter may take them).

    Raises:
        TaskEnded: the task is terminal (cancelled, say): it never will be.
        Expired: the task expired before it ended.
        InvalidParams: a key is neither outstanding nor answered: never
            issued, withdrawn, or already consumed.
    """
    status = record.task.status
    if status.is_terminal:
        raise TaskEnded(record.task.task_id, status.value)
    ensure_live(record, now_ms)
    state = _inputs(record)
    answered, outstanding = state["answered"], state["open"]
    unknown = [key for key in keys if key not in answered and key not in outstanding]
    if unknown:
        msg = (
            f"Task {record.task.task_id}: not waiting for input "
            f"{', '.join(repr(k) for k in unknown[:5])}: never issued, withdrawn or "
            "already consumed"
        )
        raise InvalidParams(msg)
    return all(key in answered for key in keys)


def take_input(
    record: TaskRecord, keys: tuple[str, ...], now_ms: int
) -> tuple[TaskRecord, dict[str, Any]]:
    """
    Return *record* without the answered responses to *keys*, and those
    responses (decoded; a client's error answer as a :class:`JsonRpcError`):
    each response is handed out once.  The wire task does not change (not
    even ``lastUpdatedAt``): nothing a client sees moved.

    Raises:
        TaskEnded, Expired, InvalidParams: as :func:`input_ready`; also
            InvalidParams when a key is not answered yet.
    """
    if not input_ready(record, keys, now_ms):
        waiting = [key for key in keys if key not in record.input_responses]
        msg = f"Task {record.task.task_id}: input {waiting[0]!r} is not answered yet"
        raise InvalidParams(msg)
    state = _inputs(record)
    taken = {key: state["answered"].pop(key) for key in keys}
    new = attrs.evolve(record, inputs_json=compact_json(state))
    return new, {key: _decoded(value) for key, value in taken.items()}


def _decoded(value: Any) -> Any:
    if type(value) is dict and len(value) == 1 and _ERROR_TAG in value:
        error = value[_ERROR_TAG]
        return JsonRpcError(error["code"], error["message"], error.get("data"))
    return value


# -- list cursors -------------------------------------------------------------


def owner_tag(secret: bytes, owner_id: str) -> str:
    """Return a short keyed hash of *owner_id*: binds a cursor to its owner without naming it."""
    digest = hashlib.blake2b(owner_id.encode("utf-8"), key=secret, digest_size=8)
    return digest.hexdigest()


def encode_cursor(created_ms: int, seq: int, tag: str) -> str:
    """Return the opaque cursor for "after the task at (*created_ms*, *seq*)"."""
    raw = f"{created_ms}.{seq}.{tag}".encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: object, tag: str) -> tuple[int, int]:
    """
    Return the ``(created_ms, seq)`` position a cursor stands for.

    Raises:
        InvalidCursor: *cursor* is malformed or was issued to another owner.
    """
    if not isinstance(cursor, str) or not 0 < len(cursor) <= 128:
        raise InvalidCursor(cursor)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, seq, got_tag = raw.decode("ascii").split(".")
        position = (int(created), int(seq))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor(cursor) from None
    if got_tag != tag or encode_cursor(*position, tag) != cursor:
        raise InvalidCursor(cursor)
    return position

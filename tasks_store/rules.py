"""
The domain rules, in one place, for every backend.

Argument checks, the anonymous rule, TTL ceiling (reject, never clamp),
quota, expiry, the state machine applied to records, the variables merge and
size limit, and the ``list`` cursor.  Everything here is pure: no locks, no
I/O, no clock.  A backend reads the current record, calls a rule with one
clock reading, and stores the record the rule returns, atomically.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from .config import StoreConfig, TaskSecurityConfig
from .errors import (
    AnonymousAccessDenied,
    Expired,
    InvalidCursor,
    InvalidParams,
    InvalidTransition,
    NotReady,
    ResourceExhausted,
    TtlExceeded,
    VariableSizeExceeded,
)
from .records import Task, TaskRecord
from .security import ANONYMOUS_OWNERS
from .status import TaskStatus, coerce_status
from .wire import check_json, compact_json, format_timestamp

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "MAX_TTL_MS",
    "check_caller",
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
    "merge_variables",
    "new_record",
    "new_task_id",
    "owner_tag",
    "read_result",
    "resolve_ttl",
    "transition",
    "wait_done",
    "with_result",
    "with_variables",
]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
#: The longest TTL any store represents, in ms (10**14 ms, about 3,170 years),
#: whatever ``max_ttl_ms`` says.  Creation time plus TTL stays a
#: :class:`~datetime.datetime` (year 9999 at the latest) for clocks before
#: year 6800, and an integer that a double (Lua's number, Redis's scripts)
#: holds exactly, retention included; a longer TTL is refused, never clamped.
MAX_TTL_MS = 10**14


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


def _rebuild(
    record: TaskRecord,
    now_ms: int,
    status: TaskStatus,
    status_message: str | None,
    variables_json: str,
    result_json: str | None,
) -> TaskRecord:
    """Return *record* with these parts and *now_ms* as its update time."""
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
    ensure_live(record, now_ms)
    status = record.task.status
    if status.is_terminal:
        raise InvalidTransition(
            record.task.task_id,
            status.value,
            status.value,
            f"The task is already {status.value}; its result can no longer change",
        )
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

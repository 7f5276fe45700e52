"""
:class:`TaskContext`: what a tool handler uses while its task runs.

A context is a handle: it holds no state of its own and every call goes to
the store, so it is as thread-safe as the store and always sees the task as
it is now (a cancellation from another thread included).

A tool asks its client for input through its context, and gets the
client's answer back as the return value::

    answer = ctx.elicit("Delete report.pdf?", {"type": "object",
                        "properties": {"confirm": {"type": "boolean"}}})
    if answer["action"] == "accept" and answer["content"]["confirm"]:
        ...

In a task (:class:`TaskContext`) the call blocks: the request is stored
with the task, the task is ``input_required`` until the client answers
(2026-07-28: ``tasks/get`` shows it, ``tasks/update`` answers it;
2025-11-25: ``tasks/result`` streams it as a request and the client POSTs
its response), on whichever worker that happens.  ``ctx.create_message``
(sampling), ``ctx.list_roots`` and the generic ``ctx.request_input`` work
the same way.  ``ctx.report_progress(message)`` sets the task's
``statusMessage`` without changing its status.

:class:`CallContext` is what a tool gets when its call is answered inline
(no task): the same variable methods, kept in the context for the one call.
An inline 2025-11-25 call has no input flow (its input methods raise
:class:`~tasks_store.errors.InputNotAvailable`); a 2026-07-28 one asks
through a multi round-trip request (``RequestCallContext`` in
:mod:`tasks_store.mcp.v2026`).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any, TypeVar

from ..errors import (
    INTERNAL_ERROR,
    InputNotAvailable,
    InputRequestFailed,
    InvalidParams,
    NotFound,
    WaitTimeout,
)
from ..records import JsonRpcError, TaskRecord
from ..rules import check_task_id
from ..status import TaskStatus
from ..store import TaskStore
from ..store._base import require_store
from ..wire import check_json
from .mrtr import elicitation_request, roots_request, sampling_request

__all__ = ["AsksForInput", "CallContext", "TaskContext"]

_MESSAGE_LIMIT = 200

_T = TypeVar("_T")



class AsksForInput:
    """
    :meth:`elicit`, :meth:`create_message` and :meth:`list_roots`, written once
    over the class's own :meth:`request_input`, which decides what asking
    means: block for the answer in a task (:class:`TaskContext`), ask in a
    multi round-trip reply (2026-07-28 inline calls), or refuse in an inline
    call that has no input flow (:class:`CallContext`).
    """

    def request_input(
        self,
        requests: Mapping[str, Mapping[str, Any]],
        *,
        status_message: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Ask the client for input (key to ``{"method", "params"}``); return key to result."""
        raise NotImplementedError

    def _input_key(self, prefix: str) -> str:
        """A key for a request the caller did not name."""
        return _fresh_key(prefix)

    def _ask(
        self, key: str | None, prefix: str, request: dict[str, Any], status: str,
        timeout: float | None,
    ) -> dict[str, Any]:  # fmt: skip
        key = key or self._input_key(prefix)
        answer: dict[str, Any] = self.request_input(
            {key: request}, status_message=status, timeout=timeout
        )[key]
        return answer

    def elicit(
        self,
        message: str,
        requested_schema: Mapping[str, Any],
        *,
        key: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """
        Ask the user (form-mode elicitation) and return the answer.

        Returns the client's ``ElicitResult``: ``{"action": "accept",
        "content": {...}}``, or ``"decline"``/``"cancel"`` without content.
        *message* is also the task's ``statusMessage`` while it waits.
        *key* names the request (a fresh one by default).  Raises as
        :meth:`request_input`.
        """
        request = elicitation_request(message, requested_schema)
        return self._ask(key, "elicitation", request, _clip(message), timeout)

    def create_message(
        self,
        messages: list[Mapping[str, Any]] | str,
        max_tokens: int,
        *,
        key: str | None = None,
        timeout: float | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """
        Ask the client's model (sampling) and return its answer.

        *messages* is a ``SamplingMessage`` list, or one str (a user text
        message); more ``params`` go as keywords in the protocol's camelCase
        (``systemPrompt=...``).  Returns the ``CreateMessageResult``
        (``role``, ``content``, ``model``, ``stopReason``).  Raises as
        :meth:`request_input`.
        """
        request = sampling_request(messages, max_tokens, **params)
        return self._ask(key, "sampling", request, "Waiting for the model", timeout)

    def list_roots(self, *, key: str | None = None, timeout: float | None = None) -> dict[str, Any]:
        """Ask the client for its roots; return the ``ListRootsResult``."""
        status = "Waiting for the client's roots"
        return self._ask(key, "roots", roots_request(), status, timeout)


class TaskContext(AsksForInput):
    """
    One running task, as its handler sees it.

    Args:
        store: the store holding the task.
        task_id: the task's id.
        owner_id: the task's owner; every call is made on their behalf.

    Raises:
        TypeError: *store* is not a task store.
        InvalidParams: *task_id* or *owner_id* is not a str.

    >>> from tasks_store import InMemoryTaskStore
    >>> store = InMemoryTaskStore()
    >>> task = store.create("alice", "tools/call")
    >>> ctx = TaskContext(store, task.task_id, "alice")
    >>> ctx.set_variable("progress", 0.5).status.value
    'working'
    >>> ctx.get_float("progress")
    0.5
    """

    __slots__ = ("_owner_id", "_store", "_task_id")

    #: True: the call runs as a task (:class:`CallContext` says False).
    in_task = True

    def __init__(self, store: TaskStore, task_id: str, owner_id: str) -> None:
        self._store = require_store(store)
        self._task_id = check_task_id(task_id)
        if not isinstance(owner_id, str):
            msg = f"owner_id must be a str, got {type(owner_id).__name__}"
            raise InvalidParams(msg)
        self._owner_id = owner_id

    def __repr__(self) -> str:
        return f"TaskContext(task_id={self._task_id!r})"

    @property
    def task_id(self) -> str:
        """The task's id."""
        return self._task_id

    @property
    def owner_id(self) -> str:
        """The task's owner."""
        return self._owner_id

    @property
    def store(self) -> TaskStore:
        """The store holding the task."""
        return self._store

    def record(self) -> TaskRecord:
        """
        Return the task's current record.

        Raises:
            NotFound: the task is gone (removed after it expired).
        """
        return self._store.get(self._task_id, self._owner_id)

    # -- variables ------------------------------------------------------------

    def variables(self) -> dict[str, Any]:
        """
        Return a copy of the task's variables.

        Raises:
            NotFound: the task is gone.
        """
        return dict(self.record().variables)

    def get_variable(self, key: str, default: Any = None) -> Any:
        """
        Return the variable *key*, or *default* when it is not set.

        Raises:
            NotFound: the task is gone.
        """
        return self.record().variables.get(key, default)

    def get_str(self, key: str, default: str | None = None) -> str | None:
        """
        Return the string variable *key*, or *default* when it is not set.

        Raises:
            InvalidParams: the variable is set and is not a string.
            NotFound: the task is gone.
        """
        return self._typed(key, default, str, "a string")

    def get_int(self, key: str, default: int | None = None) -> int | None:
        """
        Return the integer variable *key*, or *default* when it is not set.

        Raises:
            InvalidParams: the variable is set and is not an integer (a
                boolean is not one).
            NotFound: the task is gone.
        """
        return self._typed(key, default, int, "an integer")

    def get_float(self, key: str, default: float | None = None) -> float | None:
        """
        Return the number variable *key* as a float, or *default* when not set.

        An integer is accepted and converted (JSON has one number type).

        Raises:
            InvalidParams: the variable is set and is not a number.
            NotFound: the task is gone.
        """
        value = self.record().variables.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _wrong_type(key, "a number", value)
        return float(value)

    def get_bool(self, key: str, default: bool | None = None) -> bool | None:
        """
        Return the boolean variable *key*, or *default* when it is not set.

        Raises:
            InvalidParams: the variable is set and is not a boolean.
            NotFound: the task is gone.
        """
        return self._typed(key, default, bool, "a boolean")

    def _typed(self, key: str, default: _T | None, kind: type[_T], name: str) -> _T | None:
        value = self.record().variables.get(key)
        if value is None:
            return default
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise _wrong_type(key, name, value)
        return value

    def set_variable(self, key: str, value: Any) -> TaskRecord:
        """
        Set the variable *key* to *value*; None deletes it.

        Returns:
            The task's new record.

        Raises:
            InvalidParams: *key* is not a str or *value* is not JSON.
            VariableSizeExceeded: the variables would grow past the limit.
            NotFound, Expired: the task is gone or expired.
        """
        return self._store.set_variables(self._task_id, self._owner_id, {key: value})

    def set_variables(self, variables: Mapping[str, Any]) -> TaskRecord:
        """
        Merge *variables* into the task's (None values delete keys).

        Returns:
            The task's new record.

        Raises:
            InvalidParams, VariableSizeExceeded, NotFound, Expired: as
                :meth:`TaskStore.set_variables`.
        """
        return self._store.set_variables(self._task_id, self._owner_id, variables)

    # -- status ---------------------------------------------------------------

    def require_input(self, message: str | None = None) -> TaskRecord:
        """
        Move the task to ``input_required``.

        Raises:
            InvalidTransition: the task is not working (e.g. cancelled).
            NotFound, Expired: the task is gone or expired.
        """
        return self._store.update_status(
            self._task_id, self._owner_id, TaskStatus.INPUT_REQUIRED, message
        )

    def resume(self, message: str | None = None) -> TaskRecord:
        """
        Move the task back to ``working``.

        Raises:
            InvalidTransition: the task is not ``input_required``.
            NotFound, Expired: the task is gone or expired.
        """
        return self._store.update_status(
            self._task_id, self._owner_id, TaskStatus.WORKING, message
        )

    def complete(self, result: Any, message: str | None = None) -> TaskRecord:
        """
        End the task ``completed`` with *result*, in one step.

        Raises:
            InvalidTransition: the task has already ended (e.g. cancelled).
            InvalidParams: *result* is not JSON.
            NotFound, Expired: the task is gone or expired.
        """
        return self._store.complete_with_result(
            self._task_id, self._owner_id, TaskStatus.COMPLETED, message, result
        )

    def fail(self, message: str, result: Any = None) -> TaskRecord:
        """
        End the task ``failed`` with status message *message*.

        Args:
            message: the status message, also the error message by default.
            result: what ``tasks/result`` answers; None stores
                ``JsonRpcError(-32603, message)``, so the request reads as
                having failed with an internal error.

        Raises:
            InvalidTransition: the task has already ended.
            InvalidParams: *result* is not JSON.
            NotFound, Expired: the task is gone or expired.
        """
        if result is None:
            result = JsonRpcError(INTERNAL_ERROR, message)
        return self._store.complete_with_result(
            self._task_id, self._owner_id, TaskStatus.FAILED, message, result
        )

    def is_cancelled(self) -> bool:
        """
        Return whether the task was cancelled, or is gone from the store.

        A handler should check this now and then and stop early when True:
        nobody will read what it would produce.
        """
        try:
            return self.record().status is TaskStatus.CANCELLED
        except NotFound:
            return True

    # -- progress and input -----------------------------------------------------

    def report_progress(
        self, message: str | None, variables: Mapping[str, Any] | None = None
    ) -> TaskRecord:
        """
        Set the task's ``statusMessage`` to *message* (None clears it), and
        merge *variables* into its variables when given, in one step; the
        status does not change.

        Raises:
            InvalidTransition: the task has ended (e.g. cancelled).
            InvalidParams, VariableSizeExceeded: bad *message* or *variables*.
            NotFound, Expired: the task is gone or expired.
        """
        return self._store.set_status_message(
            self._task_id, self._owner_id, message, variables=variables
        )

    def request_input(
        self,
        requests: Mapping[str, Mapping[str, Any]],
        *,
        status_message: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """
        Ask the client for input and block until every request is answered.

        Args:
            requests: key to ``{"method", "params"}`` (build them with
                :func:`~tasks_store.mcp.mrtr.elicitation_request`,
                ``sampling_request``, ``roots_request``).  A key is unique
                over the task's whole lifetime.
            status_message: the task's ``statusMessage`` while it waits.
            timeout: seconds to wait; None waits as long as the task lives.

        Returns:
            Key to the client's result (an ``ElicitResult``,
            ``CreateMessageResult`` or ``ListRootsResult`` object).

        Raises:
            TaskEnded: the task was cancelled (or ended) while waiting.
            Expired: the task expired while waiting.
            WaitTimeout: *timeout* passed first; the requests are withdrawn.
            InputRequestFailed: the client answered a request with an error.
            InvalidParams, InputSizeExceeded: bad requests, a reused key,
                requests too large.
            NotFound: the task is gone.
        """
        self._store.request_input(self._task_id, self._owner_id, requests, status_message)
        keys = list(requests)
        try:
            answers = self._store.wait_input(
                self._task_id, self._owner_id, keys, timeout=timeout
            )
        except WaitTimeout:
            self._store.withdraw_input(self._task_id, self._owner_id, keys)
            raise
        for key, answer in answers.items():
            if isinstance(answer, JsonRpcError):
                raise InputRequestFailed(self._task_id, key, answer.to_dict())
        return answers



class CallContext(AsksForInput):
    """
    The context of a ``tools/call`` answered inline, without a task.

    It has the reading and writing side of :class:`TaskContext`
    (``variables``, ``get_variable``, ``get_str``/``get_int``/``get_float``/
    ``get_bool``, ``set_variable(s)``, ``is_cancelled``), so one tool body
    serves both kinds of call.  Variables live in this object for the one
    call and are never stored (there is no task to store them in);
    ``is_cancelled()`` is always False; ``task_id`` is None.

    Args:
        owner_id: who is calling.
        tool_name: the tool being run.

    Raises:
        InvalidParams: *owner_id* or *tool_name* is not a str.

    Not shared between threads: one call, one context.

    >>> ctx = CallContext("user:alice", "echo")
    >>> ctx.set_variable("progress", 1.0)
    >>> ctx.get_float("progress"), ctx.task_id, ctx.in_task
    (1.0, None, False)
    """

    __slots__ = ("_owner_id", "_status_message", "_tool_name", "_variables")

    #: False: the call is answered inline.
    in_task = False
    #: No task: always None.
    task_id: None = None

    def __init__(self, owner_id: str, tool_name: str) -> None:
        for name, value in (("owner_id", owner_id), ("tool_name", tool_name)):
            if not isinstance(value, str):
                msg = f"{name} must be a str, got {type(value).__name__}"
                raise InvalidParams(msg)
        self._owner_id = owner_id
        self._tool_name = tool_name
        self._variables: dict[str, Any] = {}
        self._status_message: str | None = None

    def __repr__(self) -> str:
        return f"CallContext(tool_name={self._tool_name!r})"

    @property
    def owner_id(self) -> str:
        """The caller."""
        return self._owner_id

    @property
    def tool_name(self) -> str:
        """The tool being run."""
        return self._tool_name

    def variables(self) -> dict[str, Any]:
        """Return a copy of the call's variables."""
        return dict(self._variables)

    def get_variable(self, key: str, default: Any = None) -> Any:
        """Return the variable *key*, or *default* when it is not set."""
        return self._variables.get(key, default)

    def get_str(self, key: str, default: str | None = None) -> str | None:
        """As :meth:`TaskContext.get_str`."""
        return _typed(self._variables, key, default, str, "a string")

    def get_int(self, key: str, default: int | None = None) -> int | None:
        """As :meth:`TaskContext.get_int`."""
        return _typed(self._variables, key, default, int, "an integer")

    def get_float(self, key: str, default: float | None = None) -> float | None:
        """As :meth:`TaskContext.get_float`."""
        value = self._variables.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _wrong_type(key, "a number", value)
        return float(value)

    def get_bool(self, key: str, default: bool | None = None) -> bool | None:
        """As :meth:`TaskContext.get_bool`."""
        return _typed(self._variables, key, default, bool, "a boolean")

    def set_variable(self, key: str, value: Any) -> None:
        """
        Set the variable *key* to *value*; None deletes it.

        Raises:
            InvalidParams: *key* is not a str or *value* is not JSON.
        """
        self.set_variables({key: value})

    def set_variables(self, variables: Mapping[str, Any]) -> None:
        """
        Merge *variables* into the call's (None values delete keys).

        Raises:
            InvalidParams: a key is not a str or a value is not JSON.
        """
        if not isinstance(variables, Mapping):
            msg = f"variables must be a mapping, got {type(variables).__name__}"
            raise InvalidParams(msg)
        for key, value in variables.items():
            if not isinstance(key, str):
                msg = f"variable names must be str, got {key!r}"
                raise InvalidParams(msg)
            check_json(value, f"variables[{key!r}]")
        for key, value in variables.items():
            if value is None:
                self._variables.pop(key, None)
            else:
                self._variables[key] = value

    def is_cancelled(self) -> bool:
        """Return False: an inline call is never cancelled through the store."""
        return False

    # -- progress and input -----------------------------------------------------

    def report_progress(
        self, message: str | None, variables: Mapping[str, Any] | None = None
    ) -> None:
        """Keep *message* as :attr:`status_message` and merge *variables* (for this call only)."""
        if message is not None and not isinstance(message, str):
            msg = f"message must be a str or None, got {type(message).__name__}"
            raise InvalidParams(msg)
        if variables is not None:
            self.set_variables(variables)
        self._status_message = message

    @property
    def status_message(self) -> str | None:
        """The last message given to :meth:`report_progress`, or None."""
        return self._status_message

    def request_input(
        self,
        requests: Mapping[str, Mapping[str, Any]],
        *,
        status_message: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """
        Ask the client for input: not possible in an inline call of this kind.

        Raises:
            InputNotAvailable: always (a 2025-11-25 call answered inline has
                no input flow; run the tool as a task, or serve 2026-07-28).
        """
        msg = (
            f"Tool {self._tool_name!r} asked the client for input in an inline call, which "
            "has no input flow here: call it as a task, or over 2026-07-28"
        )
        raise InputNotAvailable(msg)



def _typed(
    variables: Mapping[str, Any], key: str, default: _T | None, kind: type[_T], name: str
) -> _T | None:
    value = variables.get(key)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _wrong_type(key, name, value)
    return value


def _wrong_type(key: str, expected: str, value: object) -> InvalidParams:
    msg = f"variable {key!r} must be {expected}, got {type(value).__name__}"
    return InvalidParams(msg)


def _fresh_key(prefix: str) -> str:
    """A new input request key: *prefix* and 64 random bits (never reused in practice)."""
    return f"{prefix}-{secrets.token_hex(8)}"


def _clip(text: str) -> str:
    return text if len(text) <= _MESSAGE_LIMIT else f"{text[: _MESSAGE_LIMIT - 3]}..."

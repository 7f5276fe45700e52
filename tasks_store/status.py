"""
Task statuses and the one table of allowed transitions.

::

    working <-> input_required
       |             |
       +------+------+
              v
    completed | failed | cancelled      (terminal: never change again)
"""

from __future__ import annotations

import enum

from .errors import InvalidParams, InvalidTransition

__all__ = ["TaskStatus", "coerce_status"]


class TaskStatus(str, enum.Enum):
    """
    The status of a task, as the protocol spells it.

    A ``str`` enum: ``TaskStatus.WORKING == "working"``.
    """

    WORKING = "working"
    INPUT_REQUIRED = "input_required"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value

    @property
    def is_terminal(self) -> bool:
        """True for completed, failed and cancelled."""
        return self in _TERMINAL

    def can_transition_to(self, other: TaskStatus | str) -> bool:
        """
        Return whether a task in this status may move to *other*.

        Self-transitions are not transitions: ``working -> working`` is False.

        >>> TaskStatus.WORKING.can_transition_to("completed")
        True
        >>> TaskStatus.COMPLETED.can_transition_to(TaskStatus.WORKING)
        False
        """
        return coerce_status(other) in _TRANSITIONS[self]

    def validate_transition(self, task_id: str, other: TaskStatus | str) -> None:
        """
        Raise unless this status may move to *other*.

        Raises:
            InvalidTransition: the move is not in the table.  For a terminal
                source and for a self-transition, ``suggested_action`` says
                what to do instead.
            InvalidParams: *other* is not a status.
        """
        target = coerce_status(other)
        if target in _TRANSITIONS[self]:
            return
        suggestion: str | None = None
        if self in _TERMINAL:
            suggestion = (
                f"The task is already {self.value} and terminal tasks never "
                "change; create a new task instead"
            )
        elif target is self:
            suggestion = f"The task is already {self.value}; nothing to change"
        raise InvalidTransition(task_id, self.value, target.value, suggestion)


_TERMINAL = frozenset(
    {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED}
)
_TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.WORKING: frozenset({TaskStatus.INPUT_REQUIRED, *_TERMINAL}),
    TaskStatus.INPUT_REQUIRED: frozenset({TaskStatus.WORKING, *_TERMINAL}),
    TaskStatus.COMPLETED: frozenset(),
    TaskStatus.FAILED: frozenset(),
    TaskStatus.CANCELLED: frozenset(),
}
_BY_VALUE = {s.value: s for s in TaskStatus}


def coerce_status(value: object) -> TaskStatus:
    """
    Return *value* as a :class:`TaskStatus`; it may be one or its string.

    Raises:
        InvalidParams: *value* names no status.
    """
    if isinstance(value, TaskStatus):
        return value
    if isinstance(value, str):
        status = _BY_VALUE.get(value)
        if status is not None:
            return status
    names = ", ".join(sorted(_BY_VALUE))
    msg = f"Unknown task status {value!r}; expected one of: {names}"
    raise InvalidParams(msg)

"""
Store limits and security settings: frozen, checked when built.

A limit that is negative, a bool or not an int raises :class:`ValueError` at
construction, so a bad setting fails at start-up rather than on a request.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["StoreConfig", "TaskSecurityConfig"]


def _limit(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None and attribute.name in _OPTIONAL:
        return
    if type(value) is not int or value < 0:  # bool is an int subclass: refused
        kind = "an int >= 0" + (" or None" if attribute.name in _OPTIONAL else "")
        msg = f"{attribute.name} must be {kind}, got {value!r}"
        raise ValueError(msg)


_OPTIONAL = frozenset({"default_ttl_ms", "max_ttl_ms"})


@attrs.frozen
class StoreConfig:
    """
    Limits every store enforces.

    Args:
        max_variable_size_bytes: the most bytes a task's variables may take as
            compact UTF-8 JSON.
        default_ttl_ms: TTL of a task created without one; None for unlimited.
        max_ttl_ms: the highest TTL a caller may ask for; None for no ceiling.
            A higher request is refused with ``TtlExceeded``, never clamped.

    Raises:
        ValueError: a limit is not an int >= 0, or the default TTL is above
            the ceiling (an unlimited default counts as above any ceiling).
    """

    max_variable_size_bytes: int = attrs.field(default=1_048_576, validator=_limit)
    default_ttl_ms: int | None = attrs.field(default=3_600_000, validator=_limit)
    max_ttl_ms: int | None = attrs.field(default=86_400_000, validator=_limit)

    def __attrs_post_init__(self) -> None:
        if self.max_ttl_ms is None:
            return
        if self.default_ttl_ms is None or self.default_ttl_ms > self.max_ttl_ms:
            msg = (
                f"default_ttl_ms ({self.default_ttl_ms}) must not exceed "
                f"max_ttl_ms ({self.max_ttl_ms})"
            )
            raise ValueError(msg)


def _flag(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if type(value) is not bool:
        msg = f"{attribute.name} must be a bool, got {value!r}"
        raise ValueError(msg)


@attrs.frozen
class TaskSecurityConfig:
    """
    Who may create tasks, and how many.

    Args:
        max_tasks_per_owner: live (unexpired) tasks one owner may hold.
        allow_anonymous: whether the anonymous owners ``""`` and ``"local"``
            may use the store at all.  Off by default.

    Raises:
        ValueError: a limit is not an int >= 0, or the flag is not a bool.
    """

    max_tasks_per_owner: int = attrs.field(default=100, validator=_limit)
    allow_anonymous: bool = attrs.field(default=False, validator=_flag)

    def with_max_tasks_per_owner(self, n: int) -> TaskSecurityConfig:
        """Return a copy with ``max_tasks_per_owner`` set to *n*."""
        return attrs.evolve(self, max_tasks_per_owner=n)

    def with_allow_anonymous(self, flag: bool) -> TaskSecurityConfig:
        """Return a copy with ``allow_anonymous`` set to *flag*."""
        return attrs.evolve(self, allow_anonymous=flag)

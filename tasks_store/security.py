"""
Who owns a task: owner resolution and the anonymous rule.

Every task belongs to the owner that created it.  The owner is the first
non-empty of the OAuth subject, the client id and the session id; a caller
with none of them is the anonymous owner :data:`DEFAULT_LOCAL_OWNER`.
"""

from __future__ import annotations

from .errors import InvalidParams

__all__ = ["ANONYMOUS_OWNERS", "DEFAULT_LOCAL_OWNER", "resolve_owner_id"]

DEFAULT_LOCAL_OWNER = "local"
#: Owner ids that mean "nobody in particular"; refused unless anonymous use is on.
ANONYMOUS_OWNERS = frozenset({"", DEFAULT_LOCAL_OWNER})


def resolve_owner_id(
    auth_subject: str | None = None,
    client_id: str | None = None,
    session_id: str | None = None,
) -> str:
    """
    Return the owner id for a caller: subject > client id > session id > "local".

    Empty strings count as absent.

    >>> resolve_owner_id(None, "client-7", "session-1")
    'client-7'
    >>> resolve_owner_id()
    'local'

    Raises:
        InvalidParams: an argument is neither a str nor None.
    """
    given = (
        ("auth_subject", auth_subject),
        ("client_id", client_id),
        ("session_id", session_id),
    )
    for name, value in given:
        if value is not None and not isinstance(value, str):
            msg = f"{name} must be a str or None, got {type(value).__name__}"
            raise InvalidParams(msg)
    for _, value in given:
        if value:
            return value
    return DEFAULT_LOCAL_OWNER

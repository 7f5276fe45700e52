"""StoreConfig, TaskSecurityConfig and owner resolution."""

# Asserts read ``expected == actual`` (project convention), which SIM300 calls Yoda.

from __future__ import annotations

from typing import Any

import attrs
import pytest

from tasks_store import (
    DEFAULT_LOCAL_OWNER,
    InvalidParams,
    StoreConfig,
    TaskSecurityConfig,
    resolve_owner_id,
)

#: Values no limit accepts (None is also refused where a limit is required).
BAD_LIMITS = [
    pytest.param(-1, id="negative"),
    pytest.param(True, id="True"),
    pytest.param(False, id="False"),
    pytest.param(1.0, id="float"),
    pytest.param(1.5, id="fraction"),
    pytest.param("10", id="str"),
    pytest.param([], id="list"),
    pytest.param(float("nan"), id="nan"),
]

# -- StoreConfig --------------------------------------------------------------


def test_store_config_defaults() -> None:
    """A default StoreConfig allows 1 MiB of variables, 1 h default TTL, 24 h max TTL."""
    config = StoreConfig()
    assert 1_048_576 == config.max_variable_size_bytes
    assert 3_600_000 == config.default_ttl_ms
    assert 86_400_000 == config.max_ttl_ms


@pytest.mark.parametrize("field", ["max_variable_size_bytes", "default_ttl_ms", "max_ttl_ms"])
@pytest.mark.parametrize("value", BAD_LIMITS)
def test_store_config_rejects_bad_limits(field: str, value: Any) -> None:
    """A negative, bool, float or non-int limit raises ValueError naming the field."""
    kwargs: dict[str, Any] = {field: value}
    if field == "default_ttl_ms":
        kwargs["max_ttl_ms"] = None  # so only the bad value can fail
    with pytest.raises(ValueError, match=field):
        StoreConfig(**kwargs)


def test_store_config_size_limit_may_not_be_none() -> None:
    """max_variable_size_bytes is required to be an int; None is refused."""
    with pytest.raises(ValueError, match="max_variable_size_bytes"):
        StoreConfig(max_variable_size_bytes=None)  # type: ignore[arg-type]


def test_store_config_zero_limits_are_allowed() -> None:
    """Zero is a valid limit for each field."""
    config = StoreConfig(max_variable_size_bytes=0, default_ttl_ms=0, max_ttl_ms=0)
    assert (0, 0, 0) == attrs.astuple(config)


def test_store_config_ttls_may_be_unlimited() -> None:
    """Both TTLs may be None: tasks then live until removed."""
    config = StoreConfig(default_ttl_ms=None, max_ttl_ms=None)
    assert None is config.default_ttl_ms
    assert None is config.max_ttl_ms


def test_store_config_default_may_equal_max() -> None:
    """A default TTL equal to the ceiling is allowed."""
    assert 5000 == StoreConfig(default_ttl_ms=5000, max_ttl_ms=5000).default_ttl_ms


def test_store_config_default_above_max_is_refused() -> None:
    """A default TTL above the ceiling raises ValueError."""
    with pytest.raises(ValueError, match="default_ttl_ms"):
        StoreConfig(default_ttl_ms=5001, max_ttl_ms=5000)


def test_store_config_unlimited_default_with_a_ceiling_is_refused() -> None:
    """An unlimited default TTL counts as above any ceiling."""
    with pytest.raises(ValueError, match="default_ttl_ms"):
        StoreConfig(default_ttl_ms=None, max_ttl_ms=5000)


def test_store_config_any_default_without_a_ceiling() -> None:
    """With no ceiling, any default TTL is allowed."""
    assert 10**12 == StoreConfig(default_ttl_ms=10**12, max_ttl_ms=None).default_ttl_ms


def test_store_config_is_frozen() -> None:
    """A StoreConfig cannot be changed after it is built."""
    config = StoreConfig()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.max_ttl_ms = 1  # type: ignore[misc]
    assert 86_400_000 == config.max_ttl_ms


def test_store_config_equality_and_hash() -> None:
    """Configs with the same limits are equal and hash alike."""
    assert StoreConfig(max_ttl_ms=9_000_000) == StoreConfig(max_ttl_ms=9_000_000)
    assert hash(StoreConfig()) == hash(StoreConfig())


# -- TaskSecurityConfig -------------------------------------------------------


def test_security_config_defaults() -> None:
    """By default an owner may hold 100 live tasks and anonymous use is off."""
    security = TaskSecurityConfig()
    assert 100 == security.max_tasks_per_owner
    assert False is security.allow_anonymous


@pytest.mark.parametrize("value", [*BAD_LIMITS, pytest.param(None, id="None")])
def test_security_config_rejects_bad_quota(value: Any) -> None:
    """A negative, bool, float, None or non-int quota raises ValueError."""
    with pytest.raises(ValueError, match="max_tasks_per_owner"):
        TaskSecurityConfig(max_tasks_per_owner=value)


@pytest.mark.parametrize("value", [1, 0, "yes", None])
def test_security_config_rejects_non_bool_flag(value: Any) -> None:
    """allow_anonymous must be a real bool."""
    with pytest.raises(ValueError, match="allow_anonymous"):
        TaskSecurityConfig(allow_anonymous=value)


def test_with_max_tasks_per_owner_returns_a_new_config() -> None:
    """with_max_tasks_per_owner returns a changed copy and leaves the original alone."""
    old = TaskSecurityConfig(allow_anonymous=True)
    new = old.with_max_tasks_per_owner(7)
    assert TaskSecurityConfig(max_tasks_per_owner=7, allow_anonymous=True) == new
    assert TaskSecurityConfig(max_tasks_per_owner=100, allow_anonymous=True) == old
    assert new is not old


def test_with_allow_anonymous_returns_a_new_config() -> None:
    """with_allow_anonymous returns a changed copy and leaves the original alone."""
    old = TaskSecurityConfig(max_tasks_per_owner=3)
    new = old.with_allow_anonymous(True)
    assert TaskSecurityConfig(max_tasks_per_owner=3, allow_anonymous=True) == new
    assert TaskSecurityConfig(max_tasks_per_owner=3, allow_anonymous=False) == old
    assert False is new.with_allow_anonymous(False).allow_anonymous


@pytest.mark.parametrize("value", [-1, True, 2.0])
def test_with_max_tasks_per_owner_validates(value: Any) -> None:
    """The copy is validated like a fresh config."""
    with pytest.raises(ValueError, match="max_tasks_per_owner"):
        TaskSecurityConfig().with_max_tasks_per_owner(value)


def test_with_allow_anonymous_validates() -> None:
    """with_allow_anonymous refuses a non-bool flag."""
    with pytest.raises(ValueError, match="allow_anonymous"):
        TaskSecurityConfig().with_allow_anonymous(1)  # type: ignore[arg-type]


def test_security_config_is_frozen() -> None:
    """A TaskSecurityConfig cannot be changed after it is built."""
    security = TaskSecurityConfig()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        security.allow_anonymous = True  # type: ignore[misc]
    assert False is security.allow_anonymous


# -- owners -------------------------------------------------------------------


def test_default_local_owner() -> None:
    """The anonymous owner is called "local"."""
    assert "local" == DEFAULT_LOCAL_OWNER


@pytest.mark.parametrize(
    ("subject", "client", "session", "expected"),
    [
        ("sub", "client", "session", "sub"),
        ("sub", None, None, "sub"),
        (None, "client", "session", "client"),
        (None, None, "session", "session"),
        (None, "client", None, "client"),
        ("sub", None, "session", "sub"),
        ("", "client", "session", "client"),
        ("", "", "session", "session"),
        (None, "", "session", "session"),
        ("", "", "", "local"),
        (None, None, None, "local"),
        ("", None, None, "local"),
    ],
)
def test_resolve_owner_id_precedence(
    subject: str | None, client: str | None, session: str | None, expected: str
) -> None:
    """The owner is the first non-empty of subject, client id, session id, else "local"."""
    assert expected == resolve_owner_id(subject, client, session)
    assert expected == resolve_owner_id(
        auth_subject=subject, client_id=client, session_id=session
    )


def test_resolve_owner_id_without_arguments() -> None:
    """A caller with no identity at all is the local owner."""
    assert DEFAULT_LOCAL_OWNER == resolve_owner_id()


def test_resolve_owner_id_keeps_whitespace_ids() -> None:
    """Only the empty string counts as absent; other strings are ids as given."""
    assert " " == resolve_owner_id(" ", "client")


@pytest.mark.parametrize("argument", ["auth_subject", "client_id", "session_id"])
@pytest.mark.parametrize("value", [1, b"sub", ["sub"], 0, False])
def test_resolve_owner_id_type_errors(argument: str, value: Any) -> None:
    """A non-str, non-None argument raises InvalidParams naming it, even if falsy."""
    with pytest.raises(InvalidParams, match=argument):
        resolve_owner_id(**{argument: value})


def test_resolve_owner_id_checks_every_argument() -> None:
    """A bad later argument is refused even when an earlier one would win."""
    with pytest.raises(InvalidParams, match="session_id"):
        resolve_owner_id("sub", "client", 42)  # type: ignore[arg-type]

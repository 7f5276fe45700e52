"""
Shared Hypothesis strategies for the tasks_store tests.

Everything here builds values a user could hand to the library: owner ids a
store accepts, task ids, statuses, plain JSON, variable updates (None deletes
a key) and wire objects valid under the 2025-11-25 schema.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from tasks_store import CreateTaskResult, Task, TaskStatus

__all__ = [
    "create_task_results",
    "json_objects",
    "json_values",
    "metas",
    "owner_ids",
    "status_values",
    "statuses",
    "task_ids",
    "tasks",
    "texts",
    "timestamps",
    "variable_keys",
    "variable_updates",
]

#: Text JSON can carry exactly: every code point but lone surrogates.
texts = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=20)

#: Owner ids a default store accepts: non-empty and not the anonymous "local".
owner_ids = st.text(
    alphabet=st.characters(exclude_categories=("Cs",)), min_size=1, max_size=20
).filter(lambda s: s != "local")

#: Task ids: the store's UUID form and arbitrary strings a client might send.
task_ids = st.one_of(st.uuids(version=4).map(str), texts)

#: Every status, as the enum.
statuses = st.sampled_from(list(TaskStatus))

#: Every status, as the enum or its string value (methods accept both).
status_values = st.one_of(statuses, statuses.map(lambda s: s.value))

_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)

#: Plain JSON values: dicts have str keys, floats are finite.
json_values: st.SearchStrategy[Any] = st.recursive(
    _json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(texts, children, max_size=4),
    ),
    max_leaves=12,
)

#: JSON objects (str keys).
json_objects = st.dictionaries(texts, json_values, max_size=5)

#: Keys for task variables, from a small alphabet so updates hit earlier keys.
variable_keys = st.text(alphabet="abcde", min_size=1, max_size=2)

#: A ``set_variables`` argument: None values delete their key.
variable_updates = st.dictionaries(
    variable_keys, st.one_of(st.none(), json_values), max_size=5
)

#: ``_meta`` objects: None or a JSON object.
metas = st.one_of(st.none(), json_objects)

_datetimes = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.just(timezone.utc),
)


def _with_millis(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _whole_seconds(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _with_offset(when: datetime) -> str:
    return (when + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00")


#: ISO 8601 timestamps as the schema allows them: with or without
#: milliseconds, ``Z`` or a numeric offset.
timestamps = st.one_of(
    _datetimes.map(_with_millis),
    _datetimes.map(_whole_seconds),
    _datetimes.map(_with_offset),
)

_millis = st.integers(min_value=0, max_value=2**53)

#: Wire Tasks valid under ``$defs.Task`` of the schema.
tasks = st.builds(
    Task,
    task_id=task_ids,
    status=statuses,
    status_message=st.one_of(st.none(), texts),
    created_at=timestamps,
    last_updated_at=timestamps,
    ttl=st.one_of(st.none(), _millis),
    poll_interval=st.one_of(st.none(), _millis),
    meta=metas,
)

#: CreateTaskResults valid under ``$defs.CreateTaskResult`` of the schema.
create_task_results = st.builds(CreateTaskResult, task=tasks, meta=metas)

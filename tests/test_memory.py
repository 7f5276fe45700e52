"""
InMemoryTaskStore's own machinery behind cleanup_expired: the bucketed expiry
queue, and each owner's sorted keys.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks_store import InMemoryTaskStore, NotFound, TaskSecurityConfig

from .conftest import FakeClock


@settings(max_examples=60, deadline=None)
@given(
    ttls=st.lists(st.integers(min_value=0, max_value=5000), min_size=1, max_size=40),
    steps=st.lists(st.integers(min_value=0, max_value=1500), min_size=1, max_size=8),
    offset_ms=st.integers(min_value=0, max_value=1023),
)
def test_cleanup_removes_exactly_the_expired_tasks(
    ttls: list[int], steps: list[int], offset_ms: int
) -> None:
    """Each cleanup removes every task expired by then and no other, across bucket edges."""
    clock = FakeClock(1_764_066_600.0 + offset_ms / 1000)
    store = InMemoryTaskStore(
        clock=clock, stripes=4, security=TaskSecurityConfig(max_tasks_per_owner=1000)
    )
    start_ms = int(clock() * 1000)
    created = [
        (store.create(f"owner-{n % 3}", "tools/call", ttl=ttl), ttl) for n, ttl in enumerate(ttls)
    ]
    elapsed = 0
    for step in steps:
        clock.now += step / 1000
        elapsed = int(clock() * 1000) - start_ms
        expected_gone = {r.task_id for r, ttl in created if ttl <= elapsed}
        store.cleanup_expired()
        store._check()
        for record, _ in created:
            try:
                store.get(record.task_id, record.owner_id)
                present = True
            except NotFound:
                present = False
            assert (record.task_id not in expected_gone) == present
    assert len(created) - sum(ttl <= elapsed for _, ttl in created) == len(store)


def test_cleanup_removes_the_oldest_tasks_of_one_owner_holding_many() -> None:
    """One owner, its oldest third expired: cleanup takes exactly those; list pages the rest."""
    clock = FakeClock()
    store = InMemoryTaskStore(
        clock=clock, stripes=4, security=TaskSecurityConfig(max_tasks_per_owner=10_000)
    )
    old = [store.create("alice", "tools/call", ttl=1_000).task_id for _ in range(1_000)]
    kept = [store.create("alice", "tools/call", ttl=60_000).task_id for _ in range(2_000)]
    clock.advance(2)
    assert 1_000 == store.cleanup_expired()
    store._check()
    listed: list[str] = []
    cursor = None
    while True:
        page = store.list("alice", cursor=cursor, limit=1000)
        listed += [record.task_id for record in page.tasks]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert kept[::-1] == listed
    for task_id in old[::97]:
        with pytest.raises(NotFound):
            store.get(task_id, "alice")

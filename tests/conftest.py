"""
Shared fixtures: an injected clock and a ``store`` built for every backend.

``BACKENDS`` lists the store backends; every test that takes ``store`` or
``make_store`` runs once per backend.  A backend is a factory taking the
store's keyword arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tasks_store import InMemoryTaskStore, TaskStore

START = 1_764_066_600.0  # 2025-11-25T10:30:00Z


class FakeClock:
    """A clock tests move by hand: ``clock.advance(seconds)``."""

    def __init__(self, start: float = START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _memory(request: pytest.FixtureRequest) -> Callable[..., TaskStore]:
    return InMemoryTaskStore


BACKENDS = [pytest.param(_memory, id="memory")]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=BACKENDS)
def make_store(request: pytest.FixtureRequest, clock: FakeClock) -> Iterator[Callable[..., Any]]:
    """Build stores of the backend under test; the fake clock unless given another."""
    factory = request.param(request)

    def make(**kwargs: Any) -> Any:
        kwargs.setdefault("clock", clock)
        return factory(**kwargs)

    yield make


@pytest.fixture
def store(make_store: Callable[..., Any]) -> Any:
    """A store of the backend under test, with default limits and the fake clock."""
    return make_store()

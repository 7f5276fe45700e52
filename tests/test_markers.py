"""The marked steps stay out of a run unless its ``-m`` names them (tests/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import STEPS, steps_asked


class _Config:
    def __init__(self, markexpr: str) -> None:
        self.markexpr = markexpr

    def getoption(self, name: str) -> Any:
        assert "markexpr" == name
        return self.markexpr


@pytest.mark.parametrize(
    ("markexpr", "asked"),
    [
        ("", set()),
        ("redis", set()),  # a backend's tests: not the soak or conformance runs on it
        ("not redis", set()),
        ("soak", {"soak"}),
        ("conformance and redis", {"conformance"}),
        ("bench_smoke or soak", {"bench_smoke", "soak"}),
        ("not conformance", {"conformance"}),  # named: -m itself then leaves it out
        ("bench_smokes", set()),  # a whole word only
    ],
)
def test_a_step_is_asked_for_only_by_name(markexpr: str, asked: set[str]) -> None:
    assert asked == steps_asked(_Config(markexpr))  # type: ignore[arg-type]


def test_this_run_holds_no_step_it_did_not_ask_for(request: pytest.FixtureRequest) -> None:
    left_out = set(STEPS) - steps_asked(request.config)
    held = [
        item.nodeid
        for item in request.session.items
        if any(item.get_closest_marker(step) for step in left_out)
    ]
    assert [] == held

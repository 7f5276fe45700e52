"""
Timing primitives: per-call samples, batch loops, and their statistics.

Every timed loop runs with the garbage collector off (collected first), as
:mod:`timeit` does, so that a collection triggered by one store's garbage
is not billed to whichever call happens to run next.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = [
    "gc_paused",
    "per_call",
    "percentile",
    "summary",
    "timer_overhead_ns",
]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Collect, then keep the garbage collector off for the block."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def timer_overhead_ns(n: int = 20_000) -> float:
    """Return the median cost of the two ``perf_counter_ns`` reads around a call."""
    pc = time.perf_counter_ns
    samples = []
    for _ in range(n):
        t0 = pc()
        t1 = pc()
        samples.append(t1 - t0)
    return float(statistics.median(samples))


def per_call(
    fn: Callable[..., Any],
    argsets: Sequence[tuple[Any, ...]],
    *,
    deadline: float,
    min_samples: int,
    keep: list[Any] | None = None,
) -> list[int]:
    """
    Time each ``fn(*args)`` on its own; return the nanoseconds of each.

    Stops early once ``time.perf_counter()`` passes *deadline*, after at
    least *min_samples* calls.  With *keep*, appends each return value.
    """
    pc = time.perf_counter_ns
    out: list[int] = []
    append = out.append
    stop_ns = int(deadline * 1e9)
    with gc_paused():
        if keep is None:
            for i, args in enumerate(argsets):
                t0 = pc()
                fn(*args)
                t1 = pc()
                append(t1 - t0)
                if i >= min_samples and t1 > stop_ns:
                    break
        else:
            keep_append = keep.append
            for i, args in enumerate(argsets):
                t0 = pc()
                value = fn(*args)
                t1 = pc()
                append(t1 - t0)
                keep_append(value)
                if i >= min_samples and t1 > stop_ns:
                    break
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """Return the *q*-th percentile (0..100) by nearest rank."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return float(ordered[rank])


def summary(repeats: Sequence[Sequence[float]], overhead: float = 0.0) -> dict[str, Any]:
    """
    Summarise samples from several repeats, each less *overhead* (floored at 0).

    Returns ``median`` and ``p99`` over all samples pooled, ``min`` and
    ``max`` of the per-repeat medians, and the sample count, in the units given.
    """
    net = [[max(0.0, v - overhead) for v in rep] for rep in repeats if rep]
    pooled = [v for rep in net for v in rep]
    if not pooled:
        return {"median": None, "p99": None, "min": None, "max": None, "samples": 0}
    medians = [statistics.median(rep) for rep in net]
    return {
        "median": float(statistics.median(pooled)),
        "p99": percentile(pooled, 99),
        "min": float(min(medians)),
        "max": float(max(medians)),
        "samples": len(pooled),
    }

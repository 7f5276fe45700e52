"""
A/B timing of the store's writes across two trees, for changes smaller than a full run's noise.

Run it once per tree, alternating, in one sitting::

    PYTHONPATH=/path/to/before python benchmarks/ab_writes.py
    PYTHONPATH=/path/to/after  python benchmarks/ab_writes.py

Each run builds an ``InMemoryTaskStore`` and, 5 times, times 2,000 calls each
of ``create``, ``update_status``, ``complete_with_result``, ``cancel`` and
``get`` with the garbage collector off; it prints the best repeat of each in
µs per call. It imports ``tasks_store`` from ``PYTHONPATH``, so it runs
unchanged against an older checkout (it uses only the public API of 0.1.0).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

from tasks_store import InMemoryTaskStore, TaskSecurityConfig

CALLS = 2_000
REPEATS = 5
RESULT = {"content": [{"type": "text", "text": "42"}]}


def _per_call(fn: Callable[[int], object]) -> float:
    started = time.perf_counter()
    for i in range(CALLS):
        fn(i)
    return (time.perf_counter() - started) / CALLS * 1e6


def _one_repeat(store: InMemoryTaskStore) -> dict[str, float]:
    ids = [store.create("alice", "tools/call", ttl=600_000).task_id for _ in range(3 * CALLS)]
    gc.collect()
    gc.disable()
    try:
        return {
            "create": _per_call(lambda i: store.create("carol", "tools/call", ttl=600_000)),
            "update_status": _per_call(
                lambda i: store.update_status(ids[i], "alice", "input_required")
            ),
            "complete_with_result": _per_call(
                lambda i: store.complete_with_result(
                    ids[CALLS + i], "alice", "completed", "done", RESULT
                )
            ),
            "cancel": _per_call(lambda i: store.cancel(ids[2 * CALLS + i], "alice")),
            "get": _per_call(lambda i: store.get(ids[i], "alice")),
        }
    finally:
        gc.enable()


def main() -> None:
    store = InMemoryTaskStore(security=TaskSecurityConfig(max_tasks_per_owner=100_000))
    best: dict[str, float] = {}
    for _ in range(REPEATS):
        for op, us in _one_repeat(store).items():
            best[op] = min(us, best.get(op, us))
    print(" ".join(f"{op}={us:.2f}" for op, us in best.items()))


if __name__ == "__main__":
    main()

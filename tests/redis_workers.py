"""
Code the Redis tests run in other processes (``multiprocessing``, spawn).

Each process builds its own client and store from a URL; nothing is shared
with the parent but the server, a barrier and a result queue.  A URL of the
scheme ``redis+cluster://`` names a Redis Cluster by one of its nodes.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import redis
from redis.cluster import RedisCluster

from tasks_store import (
    InvalidTransition,
    ResourceExhausted,
    TaskSecurityConfig,
)
from tasks_store.store.redis import RedisTaskStore

__all__ = [
    "QUOTA",
    "SHARED_OWNER",
    "THREADS",
    "client_of",
    "complete_when_waited",
    "quota_worker",
    "variables_worker",
]

THREADS = 8
QUOTA = 10
SHARED_TRIES = 3
SHARED_OWNER = "shared"


def client_of(url: str) -> redis.Redis | RedisCluster:
    """A client of the server, or of the cluster for a ``redis+cluster://`` URL."""
    if url.startswith("redis+cluster://"):
        return RedisCluster.from_url("redis://" + url.partition("://")[2])
    return redis.Redis.from_url(url)


def _store(url: str) -> RedisTaskStore:
    return RedisTaskStore(client_of(url), security=TaskSecurityConfig(max_tasks_per_owner=QUOTA))


def quota_worker(proc: int, url: str, barrier: Any, results: Any) -> None:
    """
    Run THREADS threads against one store; put one tuple of counts per thread.

    Each thread: (1) tries SHARED_TRIES creates for the shared owner (quota
    QUOTA); (2) creates QUOTA tasks for its own owner, sets a variable and
    completes each, then one create more (refused); (3) after every thread of
    every process is done, races to end each shared task, completing or
    cancelling it.
    """
    store = _store(url)

    def run(thread: int) -> None:
        owner = f"p{proc}-t{thread}"
        created = refused = own_refused = wins = losses = 0
        barrier.wait()
        for _ in range(SHARED_TRIES):
            try:
                store.create(SHARED_OWNER, "tools/call", ttl=None)
                created += 1
            except ResourceExhausted:
                refused += 1
        for i in range(QUOTA):
            task_id = store.create(owner, "tools/call").task_id
            store.set_variables(task_id, owner, {"i": i})
            store.complete_with_result(
                task_id, owner, "completed", None, {"p": proc, "t": thread, "i": i}
            )
        try:
            store.create(owner, "tools/call")
        except ResourceExhausted:
            own_refused += 1
        barrier.wait()
        ids: list[str] = []
        cursor = None
        while True:
            page = store.list(SHARED_OWNER, cursor=cursor, limit=3)
            ids += [t.task_id for t in page.tasks]
            cursor = page.next_cursor
            if cursor is None:
                break
        for task_id in ids:
            try:
                if (proc + thread) % 2:
                    store.complete_with_result(
                        task_id, SHARED_OWNER, "completed", None, [proc, thread]
                    )
                else:
                    store.cancel(task_id, SHARED_OWNER, f"p{proc}-t{thread}")
                wins += 1
            except InvalidTransition:
                losses += 1
        results.put((proc, thread, created, refused, own_refused, wins, losses, len(ids)))

    threads = [threading.Thread(target=run, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def complete_when_waited(url: str, task_id: str, owner_id: str, channel: str) -> None:
    """Once someone subscribes to *channel* (a waiter), complete the task."""
    client = client_of(url)
    deadline = time.monotonic() + 60
    while not any(n for _, n in client.pubsub_numsub(channel)):
        if time.monotonic() > deadline:
            raise SystemExit("nobody waited on the task")
        time.sleep(0.01)
    store = RedisTaskStore(client)
    store.complete_with_result(task_id, owner_id, "completed", "from another process", 42)


def variables_worker(
    proc: int, url: str, task_id: str, owner: str, threads: int, writes: int, barrier: Any
) -> None:
    """*threads* threads, released with every other process's, each merging *writes* keys."""
    store = _store(url)
    errors: list[BaseException] = []

    def run(thread: int) -> None:
        barrier.wait()
        try:
            for i in range(writes):
                store.set_variables(task_id, owner, {f"p{proc}-t{thread}-{i}": i})
        except BaseException as exc:  # reported through the exit code
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise SystemExit(f"{len(errors)} writes failed: {errors[0]!r}")

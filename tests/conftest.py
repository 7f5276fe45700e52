"""
Shared fixtures: an injected clock and a ``store`` built for every backend.

``BACKENDS`` lists the store backends; every test that takes ``store`` or
``make_store`` runs once per backend.  A backend is a factory taking the
store's keyword arguments.  The Redis backend runs on one ``redis-server``
started for the session (``redis_server``), flushed before each test; the
Redis Cluster backend on one three-node cluster started for the session
(``redis_cluster``, :mod:`tests.redis_cluster`), every node flushed before
each test.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster

from tasks_store import InMemoryTaskStore, TaskStore

from .cluster_fixtures import cluster_client, redis_cluster
from .redis_cluster import LocalRedisCluster
from .redis_server import RedisServer

__all__ = ["BACKENDS", "START", "FakeClock", "cluster_client", "redis_cluster"]  # fixtures too

#: Scripts run by the tests in other environments (the official clients' own
#: virtualenv and node), never imported by pytest itself.
collect_ignore = ["clients"]

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


def _redis(request: pytest.FixtureRequest) -> Callable[..., TaskStore]:
    from tasks_store.store.redis import RedisTaskStore

    client = request.getfixturevalue("redis_client")
    return functools.partial(RedisTaskStore, client)


def _redis_cluster(request: pytest.FixtureRequest) -> Callable[..., TaskStore]:
    from tasks_store.store.redis import RedisTaskStore

    client = request.getfixturevalue("cluster_store_client")
    return functools.partial(RedisTaskStore, client)


BACKENDS = [
    pytest.param(_memory, id="memory"),
    pytest.param(_redis, id="redis", marks=pytest.mark.redis),
    pytest.param(_redis_cluster, id="redis-cluster", marks=pytest.mark.redis),
]

#: The test modules whose ``store``/``make_store`` tests also run on the
#: cluster: the store layer (contract, threads, properties, state machine,
#: the Redis tests).  The protocol layer above sees a store only through the
#: contract those prove, and would add a minute to the run; it runs on the
#: other two backends.
CLUSTER_MODULES = frozenset(
    {"test_contract", "test_threads", "test_properties", "test_stateful", "test_locking"}
)


#: The marked steps: left out of a run unless its ``-m`` names them
#: (``.ci/run`` runs each on its own with ``-m NAME``).
STEPS = ("bench_smoke", "conformance", "soak")


def steps_asked(config: pytest.Config) -> set[str]:
    """The marked steps the run's ``-m`` expression names (``-m redis``: none)."""
    expression = config.getoption("markexpr") or ""
    return {step for step in STEPS if re.search(rf"\b{step}\b", expression)}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """
    Leave out the marked steps the ``-m`` does not name, and the cluster
    backend's runs of modules outside :data:`CLUSTER_MODULES`.
    """
    left_out = set(STEPS) - steps_asked(config)
    kept, left = [], []
    for item in items:
        spec = getattr(item, "callspec", None)
        on_cluster = spec is not None and spec.params.get("make_store") is _redis_cluster
        module = getattr(item, "module", None)
        name = "" if module is None else module.__name__.rpartition(".")[2]
        a_step = any(item.get_closest_marker(step) for step in left_out)
        if a_step or (
            on_cluster and name not in CLUSTER_MODULES and not name.startswith("test_redis")
        ):
            left.append(item)
        else:
            kept.append(item)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of the whole session on a free loopback port; fails if it cannot start."""
    server = RedisServer(Path(tmp_path_factory.mktemp("redis")))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client of the session's server, which is flushed first."""
    client = redis_server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture(scope="session")
def _cluster_session_client(redis_cluster: LocalRedisCluster) -> Iterator[RedisCluster]:
    """One cluster client for the session's store tests (building one costs ~0.1 s)."""
    client = redis_cluster.client()
    yield client
    client.close()


@pytest.fixture
def cluster_store_client(_cluster_session_client: RedisCluster) -> RedisCluster:
    """The session's cluster client, every primary flushed first."""
    _cluster_session_client.flushall(target_nodes=RedisCluster.PRIMARIES)
    return _cluster_session_client


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=BACKENDS)
def make_store(request: pytest.FixtureRequest, clock: FakeClock) -> Callable[..., Any]:
    """Build stores of the backend under test; the fake clock unless given another."""
    factory = request.param(request)

    def make(**kwargs: Any) -> Any:
        kwargs.setdefault("clock", clock)
        return factory(**kwargs)

    return make


@pytest.fixture
def store(make_store: Callable[..., Any]) -> Any:
    """A store of the backend under test, with default limits and the fake clock."""
    return make_store()

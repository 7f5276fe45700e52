"""
Fixtures of a real three-node Redis Cluster (see :mod:`tests.redis_cluster`).

Plain fixture functions: a conftest (or a test module) exposes them by
importing them, ``from .cluster_fixtures import cluster_client, redis_cluster``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.cluster import RedisCluster

from .redis_cluster import LocalRedisCluster

__all__ = ["cluster_client", "redis_cluster"]


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    """A 3-master Redis Cluster of the whole session on loopback; fails if it cannot form."""
    cluster = LocalRedisCluster(Path(tmp_path_factory.mktemp("redis-cluster")))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster_client(redis_cluster: LocalRedisCluster) -> Iterator[RedisCluster]:
    """A ``redis.cluster.RedisCluster`` of the session's cluster, every node flushed first."""
    redis_cluster.flushall()
    client = redis_cluster.client()
    try:
        yield client
    finally:
        client.close()

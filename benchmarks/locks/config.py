"""Sizes, servers and targets of the thread-lock benchmark."""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks import servers

PG_URL_VAR, PG_DEFAULT = servers.PG_URL_VAR, servers.PG_DEFAULT
REDIS_URL_VAR, REDIS_DEFAULT = servers.REDIS_URL_VAR, servers.REDIS_DEFAULT
BACKENDS = ("sqlite", "postgres", "redis")
MODES = ("sync", "async")
ADDED_TRIPS = 2  # target 1: one round trip to take the lock, one to give it back
THROUGHPUT_RATIO = 0.8  # target 2: LockedGraph runs/s >= 0.8 x the bare graph's


@dataclass(frozen=True)
class Sizes:
    rounds: int = 9  # 1: interleaved rounds (bare graph, LockedGraph) per backend and mode
    runs: int = 50  # 1: timed runs of each configuration per round
    locks: int = 200  # 1: timed lock + unlock alone, and round trips, per round
    warm: int = 5  # untimed runs of each configuration on a freshly opened saver
    counted: int = 20  # 1: runs of each configuration whose round trips are counted
    tp_rounds: int = 5  # 2: throughput rounds per configuration (the two alternate)
    tp_runs: int = 40  # 2: runs per process per throughput round
    processes: int = 8  # 2: processes, each on its own thread


FULL = Sizes()
QUICK = Sizes(rounds=3, runs=10, locks=50, warm=2, counted=5, tp_rounds=2, tp_runs=8)

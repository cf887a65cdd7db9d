"""The thread-lock benchmark (``python -m benchmarks.locks_bench``): what `LockedGraph` costs.

Two targets, on each backend (a SQLite file, PostgreSQL, Redis standalone):

1. *A LockedGraph run adds at most one round trip to acquire and one to release.* The graph
   is ``START -> bump -> END`` on ``count: Annotated[int, operator.add]``, run with
   ``invoke({"count": 1})`` (``ainvoke`` with an async node for the async savers) on a
   thread that already has checkpoints. Each saver comes from ``saver_from_url`` /
   ``async_saver_from_url`` with its defaults and stays open for the whole measurement;
   `LockedGraph` with its defaults (``wait=None``, ``lease=30``).

   * Table 1 (`runs.run_time`): ``rounds`` interleaved rounds of ``runs`` bare runs and
     ``runs`` LockedGraph runs (bare first on even rounds, ``gc.collect()`` before each
     batch), medians and p90s over all samples, *added* = the difference of the medians,
     *ratio* = their quotient; *lock alone* times ``thread_lock`` taken and released with
     nothing inside, *round trip* a ``SELECT 1`` / ``PING`` on a client of its own, both in
     the same rounds.
   * Table 2 (`runs.round_trips`, `count`): on a freshly opened saver, its first LockedGraph
     run alone, then ``counted`` runs of each configuration, with every statement / command
     the process sends counted by patching psycopg and redis-py (and ``fcntl.lockf``) while
     counting only. SQLite has no server: its lock costs two ``lockf`` system calls and no
     round trip.

2. *8 processes each driving its own thread through LockedGraph reach at least 0.8x the
   runs/s of the bare graph.* Table 3 (`fleet`): 8 forkserver workers, started once, each
   with its own saver and thread per backend; per round both configurations, alternating
   which goes first, each worker running the graph ``tp_runs`` times after a barrier; a
   round's figure is all runs / (last end - first start).

Stores: a file in a temporary directory (removed), a schema ``pk_locks_<pid>_<hex>``
(dropped), keys under ``pk-bench-<pid>-<hex>-locks`` (SCAN + UNLINK); also on failure.
``--quick`` uses 3 rounds, 10 runs, 2 throughput rounds of 8 runs per process (~15 s): a
smoke test, not figures to report. The JSON (``--json``) holds every figure by backend.
"""

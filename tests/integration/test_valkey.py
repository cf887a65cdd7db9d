"""The Valkey backend is Valkey, and the rule for tests that need a missing tool.

The contract, conformance and graph tests run on Valkey through the ``harness``
(``VALKEY_MODULES`` in tests/helpers/harness.py); this module checks what they run on.
"""

from __future__ import annotations

import pytest
import redis

from tests.helpers.backends import require_tool, valkey_url


def test_the_valkey_backend_is_a_valkey_server_of_its_own() -> None:
    with redis.Redis.from_url(valkey_url()) as client:
        info = client.info("server")
        assert info.get("server_name") == "valkey", info
        assert int(str(info["valkey_version"]).split(".")[0]) >= 8
        assert client.config_get("save")["save"] == ""  # no persistence
        assert client.connection_pool.connection_kwargs["host"] == "127.0.0.1"


def test_a_missing_tool_skips_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no-such-tool-pk is not installed: the X"):
        require_tool("no-such-tool-pk", purpose="the X tests")


def test_a_missing_tool_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"no-such-tool-pk .*CI is set"):
        require_tool("no-such-tool-pk", purpose="the X tests")


def test_a_found_tool_is_its_path() -> None:
    assert require_tool("sh", purpose="nothing").endswith("/sh")
    assert require_tool("anything", "/opt/given", purpose="nothing") == "/opt/given"

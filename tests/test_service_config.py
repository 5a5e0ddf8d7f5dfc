"""The service's configuration keys (config.ServiceSettings): Anchore's names, defaults, secrets kept out of repr."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from layerscan.config import load_config
from layerscan.errors import ConfigError


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_service_settings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(
        tmp_path,
        """
        service_dir: /var/lib/layerscan
        default_admin_password: foobar
        credentials:
          database: {db_connect: 'postgresql://anchore:pw@db/anchore', db_pool_size: 30}
          users:
            ci: {password: ci-secret}
        services:
          apiext: {listen: 127.0.0.1, port: 18228, require_auth: false, max_request_threads: 50}
          analyzer: {max_threads: 2, lease_seconds: 20, max_attempts: 5}
        """,
    )
    with caplog.at_level(logging.WARNING):
        c = load_config(path)
    assert caplog.records == []
    s = c.service
    assert (s.service_dir, s.database_url) == ("/var/lib/layerscan", "postgresql://anchore:pw@db/anchore")
    assert (s.default_admin_password, s.users) == ("foobar", {"ci": "ci-secret"})
    assert (s.apiext_listen, s.apiext_port, s.apiext_require_auth) == ("127.0.0.1", 18228, False)
    assert (s.lease_seconds, s.max_attempts, c.max_threads) == (20, 5, 2)
    assert "foobar" not in repr(c) and "ci-secret" not in repr(c) and "pw@db" not in repr(c)


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    s = load_config(None).service
    assert s.service_dir == str(tmp_path / "layerscan")
    assert s.database_url == f"sqlite:///{tmp_path / 'layerscan' / 'layerscan.db'}"
    assert (s.apiext_listen, s.apiext_port, s.apiext_require_auth) == ("0.0.0.0", 8228, True)
    assert (s.lease_seconds, s.max_attempts, s.default_admin_password, s.users) == (60, 3, None, {})
    assert s.enabled is True


def test_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"credentials\.users\.ci\.password: required"):
        load_config(write(tmp_path, "credentials: {users: {ci: {email: x@example.com}}}\n"))
    with pytest.raises(ConfigError, match=r"services\.apiext\.port"):
        load_config(write(tmp_path, "services: {apiext: {port: 99999}}\n"))
    with pytest.raises(ConfigError, match=r"services\.analyzer\.lease_seconds"):
        load_config(write(tmp_path, "services: {analyzer: {lease_seconds: 0}}\n"))


def test_an_analyzer_turned_off(tmp_path: Path) -> None:
    """enabled: false or max_threads: 0 leaves the API only; a worker on such a config refuses to start."""
    c = load_config(write(tmp_path, "services: {analyzer: {enabled: false}}\n"))
    assert c.service.enabled is False
    path = write(tmp_path, "services: {analyzer: {max_threads: 0}}\n")
    assert load_config(path).max_threads == 0
    proc = subprocess.run(
        [sys.executable, "-m", "layerscan", "worker", "--config", path], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "a worker would analyze nothing" in proc.stderr and "Traceback" not in proc.stderr


def test_queue_names_celerys_redis_broker_and_keeps_its_password_out_of_sight(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "service_dir: /x\n")).service.queue_url is None
    c = load_config(write(tmp_path, "queue: 'redis://:broker-pw@redis.internal:6379/0'\n"))
    assert c.service.queue_url == "redis://:broker-pw@redis.internal:6379/0"
    assert "broker-pw" not in repr(c)
    with pytest.raises(ConfigError, match="queue: expected a redis://") as info:
        load_config(write(tmp_path, "queue: 'amqp://guest:guest-pw@rabbit/'\n"))
    assert "guest-pw" not in str(info.value)

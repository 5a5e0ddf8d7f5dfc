"""Scan-request credentials, sealed in a real store, reach the analysis of that image from that host
only, open only with the service's key, and are gone when the job ends or after their ttl."""

from __future__ import annotations

import dataclasses
import logging
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from layerscan.config import Config, Registry, ServiceSettings
from layerscan.service.job_credentials import KEY_FILE, Credentials, config_for, hand_over
from layerscan.service.schema import job_credentials
from layerscan.service.store import Store

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
HOST = "harbor.example:8443"
SPEC = f"registry:{HOST}/lib/app@{DIGEST}"
PASSWORD = "robot-password-7f3c"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'state' / 'layerscan.db'}")
    yield s
    s.close()


def service(tmp_path: Path, secret: str | None = None, **kw: object) -> Config:
    return Config(service=ServiceSettings(service_dir=str(tmp_path / "state"), keys_secret=secret), **kw)  # type: ignore[arg-type]


def add_job(store: Store) -> None:
    store.add_image(DIGEST, "c" * 64, f"{HOST}/lib/app:latest", SPEC, b"{}", b"{}", DIGEST)


def test_credentials_go_to_their_image_at_their_host_only(store: Store, tmp_path: Path) -> None:
    config = service(tmp_path, registries={HOST: Registry(ca_cert="/ca.pem")})
    hand_over(store, config, DIGEST, HOST, Credentials(username="robot$scan", password=PASSWORD))
    scoped = config_for(store, SPEC, config)
    assert scoped.registries[HOST] == Registry(ca_cert="/ca.pem", username="robot$scan", password=PASSWORD)
    assert config.registries[HOST].username is None  # the shared config is untouched
    # Another host serving the same digest, another image, a non-registry source: nothing.
    assert config_for(store, f"registry:elsewhere.example/lib/app@{DIGEST}", config) is config
    assert config_for(store, f"registry:{HOST}/lib/app@{OTHER}", config) is config
    assert config_for(store, "oci-dir:/images/app", config) is config
    assert PASSWORD not in repr(Credentials(username="u", password=PASSWORD, token=PASSWORD))


def test_sealed_in_the_store_and_opened_only_with_the_same_key(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = service(tmp_path, secret="shared-by-every-host")
    hand_over(store, config, DIGEST, HOST, Credentials(token=PASSWORD))
    with store.engine.connect() as conn:
        (sealed,) = conn.execute(select(job_credentials.c.sealed)).one()
    assert PASSWORD.encode() not in sealed and b"token" not in sealed
    assert config_for(store, SPEC, service(tmp_path, secret="shared-by-every-host")).registries[HOST].token == PASSWORD
    with caplog.at_level(logging.WARNING):
        other = service(tmp_path, secret="another-deployment")
        assert config_for(store, SPEC, other) is other
    assert "do not open" in caplog.text and PASSWORD not in caplog.text


def test_without_keys_secret_a_key_file_in_service_dir(store: Store, tmp_path: Path) -> None:
    config = service(tmp_path)
    hand_over(store, config, DIGEST, HOST, Credentials(token=PASSWORD))
    key = tmp_path / "state" / KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_bytes()) == 32
    # Another process on the same service_dir (a `layerscan worker`) opens them.
    assert config_for(store, SPEC, dataclasses.replace(config)).registries[HOST].token == PASSWORD


def test_gone_when_the_job_ends_or_after_their_ttl(store: Store, tmp_path: Path) -> None:
    config = service(tmp_path)
    add_job(store)
    hand_over(store, config, DIGEST, HOST, Credentials(token=PASSWORD))
    job = store.claim("w", 60)
    assert job is not None
    assert store.fail(job, "registry said 500", max_attempts=2) == "not_analyzed"
    assert store.get_credentials(DIGEST) is not None, "kept for the next attempt"
    job = store.claim("w", 60)
    assert job is not None
    assert store.fail(job, "registry said 500 again", max_attempts=2) == "analysis_failed"
    assert store.get_credentials(DIGEST) is None

    store.add_image(DIGEST, "c" * 64, f"{HOST}/lib/app:latest", SPEC, b"{}", b"{}", DIGEST, force=True)
    hand_over(store, config, DIGEST, HOST, Credentials(token=PASSWORD))
    job = store.claim("w", 60)
    assert job is not None
    store.complete(job, {}, {"anchore": b"[]"})
    assert store.get_credentials(DIGEST) is None

    hand_over(store, config, OTHER, HOST, Credentials(token=PASSWORD), ttl=0.05)
    time.sleep(0.1)
    assert store.get_credentials(OTHER) is None
    assert config_for(store, f"registry:{HOST}/lib/app@{OTHER}", config).registries == {}

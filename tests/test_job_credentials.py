"""Scan-request credentials reach the analysis of that image from that host only, and not for long."""

from __future__ import annotations

import time

from layerscan.config import Config, Registry
from layerscan.service.job_credentials import JobCredentials

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


def test_credentials_go_to_their_image_at_their_host_only() -> None:
    held = JobCredentials()
    held.put(DIGEST, "harbor.example:8443", username="robot$scan", password="secret")
    config = Config(registries={"harbor.example:8443": Registry(ca_cert="/ca.pem")})
    scoped = held.config_for(f"registry:harbor.example:8443/lib/app@{DIGEST}", config)
    assert scoped.registries["harbor.example:8443"] == Registry(
        ca_cert="/ca.pem", username="robot$scan", password="secret"
    )
    assert config.registries["harbor.example:8443"].username is None  # the shared config is untouched
    # Another host serving the same digest, another image, a non-registry source: nothing.
    assert held.config_for(f"registry:elsewhere.example/lib/app@{DIGEST}", config) is config
    assert held.config_for(f"registry:harbor.example:8443/lib/app@{OTHER}", config) is config
    assert held.config_for("oci-dir:/images/app", config) is config
    assert "secret" not in repr(held._held)


def test_credentials_are_dropped_after_success_or_their_ttl() -> None:
    held = JobCredentials(ttl=0.05)
    held.put(DIGEST, "h.example", token="jwt")
    assert held.config_for(f"registry:h.example/r@{DIGEST}", Config()).registries["h.example"].token == "jwt"
    held.done(f"registry:h.example/r@{DIGEST}")
    assert held.held() == 0
    held.put(DIGEST, "h.example", token="jwt")
    time.sleep(0.1)
    assert held.held() == 0
    assert held.config_for(f"registry:h.example/r@{DIGEST}", Config()).registries == {}

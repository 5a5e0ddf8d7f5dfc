"""pytest fixtures for real-registry tests: one storage, pushed once, served by four registries.

`registry` (anonymous, with the corpus pushed), `basic_registry` (htpasswd),
`token_registry` (+ `token_server`), `tls_registry` (+ `tls_certs`), and `fault_proxy`
(in front of the anonymous registry, reset for every test).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from conftest import IMAGES
from registry_harness import (
    Certs,
    FaultProxy,
    RegistryServer,
    TokenServer,
    htpasswd_file,
    make_ca,
    push_index,
    push_layout,
)

USER, PASSWORD = "tester", "s3cret-pass"
IMAGE_REPOS = {name: f"corpus/{name}" for name in ("debian-minbase", "debian-apps", "rpm-sqlite")}
MULTI_REPO = "corpus/multi"
# Two "platforms" of one tag; small images, so that picking one is cheap to check.
MULTI_PLATFORMS = (
    ("rpm-sqlite", {"os": "linux", "architecture": "amd64"}),
    ("debian-minbase", {"os": "linux", "architecture": "arm64", "variant": "v8"}),
)


@dataclasses.dataclass(frozen=True)
class Pushed:
    server: RegistryServer
    storage: Path
    digests: dict[str, str]  # repo:tag -> manifest digest as pushed

    @property
    def host(self) -> str:
        return self.server.host


@pytest.fixture(scope="session")
def registry_storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("registry-storage")


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory, registry_storage: Path, corpus: Path) -> Iterator[Pushed]:
    server = RegistryServer(tmp_path_factory.mktemp("registry-anon"), registry_storage)
    try:
        digests = {}
        with requests.Session() as s:
            for name, repo in IMAGE_REPOS.items():
                # rpm-sqlite goes up in chunks, to exercise the chunked upload path too.
                digests[f"{repo}:latest"] = push_layout(
                    s, server.url, repo, "latest", IMAGES / name, chunk=4096 if name == "rpm-sqlite" else 0
                )
            digests[f"{MULTI_REPO}:latest"] = push_index(
                s, server.url, MULTI_REPO, "latest", [(IMAGES / n, p) for n, p in MULTI_PLATFORMS]
            )
        yield Pushed(server, registry_storage, digests)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory: pytest.TempPathFactory, registry: Pushed) -> Iterator[Pushed]:
    work = tmp_path_factory.mktemp("registry-basic")
    passwd = htpasswd_file(work / "htpasswd", {USER: PASSWORD})
    server = RegistryServer(work, registry.storage, auth={"htpasswd": {"realm": "layerscan-test", "path": str(passwd)}})
    yield Pushed(server, registry.storage, registry.digests)
    server.stop()


@pytest.fixture(scope="session")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenServer]:
    server = TokenServer(tmp_path_factory.mktemp("token"), {USER: PASSWORD})
    yield server
    server.stop()


@pytest.fixture(scope="session")
def token_registry(
    tmp_path_factory: pytest.TempPathFactory, registry: Pushed, token_server: TokenServer
) -> Iterator[Pushed]:
    server = RegistryServer(
        tmp_path_factory.mktemp("registry-token"), registry.storage, auth=token_server.registry_auth()
    )
    yield Pushed(server, registry.storage, registry.digests)
    server.stop()


@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_ca(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory: pytest.TempPathFactory, registry: Pushed, tls_certs: Certs) -> Iterator[Pushed]:
    server = RegistryServer(
        tmp_path_factory.mktemp("registry-tls"), registry.storage, tls=(tls_certs.server_cert, tls_certs.server_key)
    )
    yield Pushed(server, registry.storage, registry.digests)
    server.stop()


@pytest.fixture(scope="session")
def _session_proxy(registry: Pushed) -> Iterator[FaultProxy]:
    proxy = FaultProxy(registry.server.url, registry.storage)
    yield proxy
    proxy.stop()


@pytest.fixture
def fault_proxy(_session_proxy: FaultProxy) -> FaultProxy:
    _session_proxy.reset()
    return _session_proxy


@pytest.fixture(scope="session")
def _basic_proxy(basic_registry: Pushed) -> Iterator[FaultProxy]:
    proxy = FaultProxy(basic_registry.server.url, basic_registry.storage)
    yield proxy
    proxy.stop()


@pytest.fixture
def basic_fault_proxy(_basic_proxy: FaultProxy) -> FaultProxy:
    """A fault proxy in front of the htpasswd registry (to see where Authorization goes)."""
    _basic_proxy.reset()
    return _basic_proxy

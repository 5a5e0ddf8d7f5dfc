"""submit(): a reference is resolved at a real registry (Debian's docker-registry) before it is
queued; what does not resolve is a SubmitError with the HTTP status, and nothing is queued."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from layerscan.config import Config, Registry
from layerscan.service.store import Store
from layerscan.service.submit import SubmitError, submit
from registry_harness import REGISTRY_BIN, RegistryServer, free_port, htpasswd_file
from service_harness import app_image, push_image

pytestmark = pytest.mark.skipif(not Path(REGISTRY_BIN).exists(), reason=f"{REGISTRY_BIN} is not installed")
USER, PASSWORD = "submitter", "correct horse"


@dataclasses.dataclass(frozen=True)
class Registries:
    anonymous: str  # host:port
    basic: str
    digest: str  # of apps/app1:latest


@pytest.fixture(scope="module")
def registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registries]:
    work = tmp_path_factory.mktemp("submit-registry")
    anonymous = RegistryServer(work / "anon", work / "storage")
    passwd = htpasswd_file(work / "htpasswd", {USER: PASSWORD})
    basic = RegistryServer(work / "basic", work / "storage", auth={"htpasswd": {"realm": "test", "path": str(passwd)}})
    try:
        digest, _ = push_image(anonymous.url, "apps/app1", "latest", app_image(1))
        yield Registries(anonymous.host, basic.host, digest)
    finally:
        basic.stop()
        anonymous.stop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


def config_for(*hosts: str, **registries: Registry) -> Config:
    return Config(insecure_registries=hosts, registries=dict(registries))


def reject(store: Store, config: Config, tag: str | None, digest: str | None = None) -> SubmitError:
    with pytest.raises(SubmitError) as info:
        submit(store, config, tag, digest)
    assert store.list_images() == [], "nothing is queued"
    return info.value


def test_a_tag_that_resolves_is_queued_pinned_to_its_digest(registries: Registries, store: Store) -> None:
    config = config_for(registries.anonymous)
    tag = f"{registries.anonymous}/apps/app1:latest"
    rec = submit(store, config, tag, None)
    assert rec.image_digest == registries.digest
    assert rec.analysis_status == "not_analyzed"
    assert rec.fulltags == (tag,)
    assert rec.source == f"registry:{registries.anonymous}/apps/app1@{registries.digest}"
    manifest = json.loads(rec.manifest)
    assert rec.image_id == manifest["config"]["digest"].split(":")[1]
    assert json.loads(rec.config)["architecture"] == "amd64"
    # The stored documents are the registry's bytes, so they still hash to their digests.
    assert "sha256:" + hashlib.sha256(rec.manifest).hexdigest() == rec.image_digest
    assert hashlib.sha256(rec.config).hexdigest() == rec.image_id
    assert rec.parent_digest == rec.image_digest  # a tag that names a manifest, not an index
    # The same image by digest, under another tag name: one image, two tags.
    again = submit(store, config, f"{registries.anonymous}/apps/app1:v1", registries.digest)
    assert again.image_digest == rec.image_digest
    assert again.fulltags == (tag, f"{registries.anonymous}/apps/app1:v1")
    full = f"{registries.anonymous}/apps/app1@{registries.digest}"
    assert submit(store, config, tag, full).image_digest == rec.image_digest
    assert len(store.list_images()) == 1


def test_what_does_not_resolve_is_rejected_with_its_status(registries: Registries, store: Store) -> None:
    config = config_for(registries.anonymous)
    host = registries.anonymous
    e = reject(store, config, f"{host}/apps/app1:no-such-tag")
    assert e.status == 404 and "MANIFEST_UNKNOWN" in e.reason
    assert reject(store, config, f"{host}/apps/nothing-here:latest").status == 404
    assert reject(store, config, f"{host}/apps/app1:latest", "sha256:" + "0" * 64).status == 404
    assert reject(store, config, "Not A/Reference!").status == 400
    assert reject(store, config, None, registries.digest).status == 400  # a digest needs its tag
    assert reject(store, config, f"{host}/apps/app1:latest", "sha256:abc").status == 400
    assert reject(store, config, f"{host}/apps/app1:latest", f"{host}/other/repo@{registries.digest}").status == 400
    closed = f"127.0.0.1:{free_port()}"
    e = reject(store, config_for(closed), f"{closed}/apps/app1:latest")
    assert e.status == 502


def test_a_registry_that_refuses_the_credentials_is_401(registries: Registries, store: Store) -> None:
    host = registries.basic
    tag = f"{host}/apps/app1:latest"
    e = reject(store, config_for(host, **{host: Registry(username=USER, password="wrong")}), tag)
    assert e.status == 401
    assert "wrong" not in e.reason
    assert reject(store, config_for(host), tag).status == 401  # no credentials at all
    rec = submit(store, config_for(host, **{host: Registry(username=USER, password=PASSWORD)}), tag, None)
    assert rec.image_digest == registries.digest

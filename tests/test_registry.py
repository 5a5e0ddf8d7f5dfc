"""The registry source against a real docker-registry: auth flavours, TLS, platforms, faults, cache."""

from __future__ import annotations

import base64
import hashlib
import json
import mmap
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import IMAGES, answers
from layerscan.config import Config, Registry
from layerscan.errors import DigestMismatch, SourceError
from layerscan.image import Descriptor, Platform
from layerscan.refs import ImageRef
from layerscan.sources import open_source
from layerscan.sources.auth import AuthError, find_credentials
from layerscan.sources.registry import RegistryClient, RegistryError, RegistrySource
from layerscan.sources.resolve import PlatformNotFound, ResolvedImage
from registry_fixtures import MULTI_REPO, PASSWORD, USER
from registry_harness import OCI_INDEX, OCI_MANIFEST, SCHEMA1, Fault, layout_manifest
from registry_worker import pull_all

ENGINE = "native"
SCHEMA1_PRETTYJWS = "application/vnd.docker.distribution.manifest.v1+prettyjws"
SMALL = "corpus/rpm-sqlite"


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RegistryClient, "backoff", 0.01)


@pytest.fixture(autouse=True)
def no_ambient_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Credentials come only from what a test sets up."""
    for k in list(os.environ):
        if k.startswith("LAYERSCAN_REGISTRY_") or k in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def open_registry(ref: str, *, platform: Platform | None, config: Config) -> ResolvedImage:
    """The image `ref` names, through the one path every source takes (open_source -> resolve)."""
    spec = ref if ref.startswith(("registry:", "docker://")) else f"registry:{ref}"
    return open_source(spec, platform=platform, config=config)


def cfg(host: str, tmp_path: Path, **kw) -> Config:
    kw.setdefault("insecure_registries", (host,))
    return Config(tmp_dir=str(tmp_path / "tmp"), **kw)


def expected_diff_ids(name: str) -> dict[str, str]:
    return {la["digest"]: la["diff_id"] for la in answers(name)["layers"]}


# ---------------------------------------------------------------------------- access


@pytest.mark.corpus
def test_anonymous_pull_matches_the_corpus(registry, tmp_path):
    src = open_registry(f"registry:{registry.host}/{SMALL}:latest", platform=None, config=cfg(registry.host, tmp_path))
    try:
        a = answers("rpm-sqlite")
        assert src.manifest_digest == a["manifest_digest"]
        assert src.config_digest == a["config_digest"]
        assert src.config["rootfs"]["diff_ids"] == [la["diff_id"] for la in a["layers"]]
        assert src.repo_tags == (f"{registry.host}/{SMALL}:latest",)
        assert src.repo_digests == (f"{registry.host}/{SMALL}@{a['manifest_digest']}",)
        assert pull_all(src, ENGINE) == expected_diff_ids("rpm-sqlite")
    finally:
        src.close()
    assert not (tmp_path / "tmp").exists() or not any((tmp_path / "tmp").rglob("*"))


@pytest.mark.corpus
def test_pull_by_digest_verifies_it(registry, tmp_path):
    digest = answers("rpm-sqlite")["manifest_digest"]
    src = open_registry(
        f"docker://{registry.host}/{SMALL}@{digest}", platform=None, config=cfg(registry.host, tmp_path)
    )
    src.close()
    assert src.manifest_digest == digest and src.repo_tags == ()
    with pytest.raises(RegistryError, match="MANIFEST_UNKNOWN"):
        open_registry(f"{registry.host}/{SMALL}@sha256:{'0' * 64}", platform=None, config=cfg(registry.host, tmp_path))


@pytest.mark.corpus
def test_manifest_not_matching_the_pulled_digest_is_refused(fault_proxy, tmp_path):
    digest = answers("rpm-sqlite")["manifest_digest"]
    other, _ = layout_manifest(IMAGES / "debian-minbase")
    fault_proxy.faults.append(Fault("manifest", body=other))
    with pytest.raises(DigestMismatch, match=f"expected {digest}"):
        _open_via(fault_proxy, tmp_path, repo=f"{SMALL}@{digest}")


def test_unknown_repository_is_a_clear_error(registry, tmp_path):
    with pytest.raises(RegistryError, match="HTTP 404.*NAME_UNKNOWN|HTTP 404.*MANIFEST_UNKNOWN"):
        open_registry(f"{registry.host}/corpus/nope:latest", platform=None, config=cfg(registry.host, tmp_path))


@pytest.mark.corpus
def test_basic_auth(basic_registry, tmp_path):
    host = basic_registry.host
    ref = f"{host}/{SMALL}:latest"
    with pytest.raises(AuthError, match="requires a username and password"):
        open_registry(ref, platform=None, config=cfg(host, tmp_path))
    bad = cfg(host, tmp_path, registries={host: Registry(username=USER, password="wrong")})
    with pytest.raises(AuthError, match="refused") as err:
        open_registry(ref, platform=None, config=bad)
    assert "wrong" not in str(err.value)
    good = cfg(host, tmp_path, registries={host: Registry(username=USER, password=PASSWORD)})
    src = open_registry(ref, platform=None, config=good)
    try:
        assert pull_all(src, ENGINE) == expected_diff_ids("rpm-sqlite")
    finally:
        src.close()


@pytest.mark.corpus
def test_basic_auth_from_docker_config_json(basic_registry, tmp_path, monkeypatch):
    host = basic_registry.host
    docker = tmp_path / "home" / ".docker"
    docker.mkdir(parents=True)
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (docker / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    src = open_registry(f"{host}/{SMALL}:latest", platform=None, config=cfg(host, tmp_path))
    src.close()
    assert src.manifest_digest == answers("rpm-sqlite")["manifest_digest"]


def test_token_auth_caches_and_refreshes_tokens(token_registry, token_server, tmp_path, caplog):
    host = token_registry.host
    ref = f"{host}/corpus/debian-apps:latest"
    with pytest.raises(AuthError, match="refused a token"):
        open_registry(ref, platform=None, config=cfg(host, tmp_path))
    token_server.issued.clear()
    config = cfg(host, tmp_path, registries={host: Registry(username=USER, password=PASSWORD)})
    caplog.set_level("DEBUG")
    src = open_registry(ref, platform=None, config=config)
    try:
        # Manifest, config and 5 layers with one token for the repository scope.
        small = [d for d in src.layers if d.size < 3_000_000]
        for desc in small:
            with src.open_layer(desc) as blob:
                assert hashlib.sha256(b"".join(blob.data)).hexdigest() == desc.digest.split(":")[1]
        # One token for the ping (no scope), one for the repository, reused for every blob.
        assert token_server.issued == [(USER, ""), (USER, "repository:corpus/debian-apps:pull")]
        # A token the registry refuses is fetched again, once.
        auth = src.source.client.auth
        auth._tokens["repository:corpus/debian-apps:pull"].value = "not-a-valid-jwt"
        with src.open_layer(small[0]) as blob:
            b"".join(blob.data)
        assert len(token_server.issued) == 3
    finally:
        src.close()
    assert PASSWORD not in caplog.text and "Bearer ey" not in caplog.text


@pytest.mark.corpus
def test_token_auth_anonymous_and_with_an_identity_token(token_registry, token_server, tmp_path, monkeypatch):
    host = token_registry.host
    ref = f"{host}/{SMALL}:latest"
    monkeypatch.setattr(token_server, "anonymous", True)
    token_server.issued.clear()
    open_registry(ref, platform=None, config=cfg(host, tmp_path)).close()
    assert token_server.issued[-1] == ("", f"repository:{SMALL}:pull")
    monkeypatch.setattr(token_server, "anonymous", False)
    monkeypatch.setitem(token_server.refresh_tokens, "idtoken-123", USER)
    docker = tmp_path / "home" / ".docker"
    docker.mkdir(parents=True)
    (docker / "config.json").write_text(json.dumps({"auths": {host: {"identitytoken": "idtoken-123"}}}))
    src = open_registry(ref, platform=None, config=cfg(host, tmp_path))
    try:
        assert pull_all(src, ENGINE) == expected_diff_ids("rpm-sqlite")
    finally:
        src.close()
    assert token_server.issued[-1] == (USER, f"repository:{SMALL}:pull")


@pytest.mark.corpus
def test_tls_with_a_test_ca(tls_registry, tls_certs, tmp_path):
    host = tls_registry.host
    ref = f"{host}/{SMALL}:latest"
    with pytest.raises(RegistryError, match="TLS verification failed.*ca_cert"):
        open_registry(ref, platform=None, config=Config(tmp_dir=str(tmp_path)))
    src = open_registry(ref, platform=None, config=Config(tmp_dir=str(tmp_path), ca_cert=str(tls_certs.ca_cert)))
    try:
        assert pull_all(src, ENGINE) == expected_diff_ids("rpm-sqlite")
    finally:
        src.close()
    per_registry = Config(tmp_dir=str(tmp_path), registries={host: Registry(ca_cert=str(tls_certs.ca_cert))})
    open_registry(ref, platform=None, config=per_registry).close()


@pytest.mark.corpus
def test_manifest_list_picks_the_platform(registry, tmp_path):
    ref = f"{registry.host}/{MULTI_REPO}:latest"
    config = cfg(registry.host, tmp_path)
    amd64 = open_registry(ref, platform=Platform("linux", "amd64"), config=config)
    arm64 = open_registry(ref, platform=Platform.parse("linux/arm64"), config=config)
    amd64.close()
    arm64.close()
    assert amd64.manifest_digest == answers("rpm-sqlite")["manifest_digest"]
    assert arm64.manifest_digest == answers("debian-minbase")["manifest_digest"]
    assert arm64.parent_digest == amd64.parent_digest == registry.digests[f"{MULTI_REPO}:latest"]
    with pytest.raises(PlatformNotFound, match="linux/amd64, linux/arm64/v8"):
        open_registry(ref, platform=Platform("linux", "s390x"), config=config)


# ---------------------------------------------------------------------------- faults


def _layer(name: str, index: int) -> Descriptor:
    _, manifest = layout_manifest(IMAGES / name)
    return Descriptor.from_json(manifest["layers"][index])


def _open_via(proxy, tmp_path, repo="corpus/debian-apps:latest", **kw):
    return open_registry(f"{proxy.host}/{repo}", platform=None, config=cfg(proxy.host, tmp_path, **kw))


def _read_layer(src, desc: Descriptor) -> bytes:
    with src.open_layer(desc) as blob:
        data = bytes(blob.data) if isinstance(blob.data, (bytes, mmap.mmap)) else b"".join(blob.data)
    assert "sha256:" + hashlib.sha256(data).hexdigest() == desc.digest
    return data


@pytest.mark.corpus
def test_cut_mid_blob_resumes_with_range(fault_proxy, tmp_path):
    desc = _layer("debian-apps", 1)  # 2 MB
    fault_proxy.faults.append(Fault("cut", desc.digest, at=700_000))
    src = _open_via(fault_proxy, tmp_path)
    try:
        _read_layer(src, desc)
    finally:
        src.close()
    ranges = [r for m, p, r in fault_proxy.requests if p.endswith(desc.digest) and m == "GET"]
    assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")
    assert 0 < int(ranges[1][6:-1]) <= 700_000


@pytest.mark.corpus
def test_500_then_ok(fault_proxy, tmp_path):
    desc = _layer("debian-apps", 4)
    fault_proxy.faults.append(Fault("status", desc.digest, status=500))
    src = _open_via(fault_proxy, tmp_path)
    try:
        _read_layer(src, desc)
    finally:
        src.close()
    assert fault_proxy.blob_gets[desc.digest] == 2


@pytest.mark.corpus
def test_429_honours_retry_after(fault_proxy, tmp_path):
    desc = _layer("debian-apps", 4)
    fault_proxy.faults.append(Fault("status", desc.digest, status=429, retry_after="1"))
    src = _open_via(fault_proxy, tmp_path)
    try:
        t0 = time.monotonic()
        _read_layer(src, desc)
        assert time.monotonic() - t0 >= 1.0
    finally:
        src.close()
    assert fault_proxy.blob_gets[desc.digest] == 2


@pytest.mark.corpus
def test_persistent_5xx_gives_up_with_a_clear_error(fault_proxy, tmp_path):
    desc = _layer("debian-apps", 4)
    fault_proxy.faults.append(Fault("status", desc.digest, status=503, times=-1))
    src = _open_via(fault_proxy, tmp_path)
    try:
        with pytest.raises(RegistryError, match="HTTP 503"):
            _read_layer(src, desc)
    finally:
        src.close()
    assert fault_proxy.blob_gets[desc.digest] == RegistryClient.attempts


@pytest.mark.corpus
@pytest.mark.parametrize("cache", [True, False], ids=["cache", "stream"])
def test_corrupt_byte_is_a_digest_error_and_nothing_is_cached(fault_proxy, tmp_path, cache):
    desc = _layer("debian-apps", 1)
    fault_proxy.faults.append(Fault("corrupt", desc.digest, at=123_456, times=-1))
    src = _open_via(fault_proxy, tmp_path, layer_cache_enable=cache)
    try:
        with pytest.raises(DigestMismatch, match=desc.digest):
            _read_layer(src, desc)
    finally:
        src.close()
    tmp = tmp_path / "tmp"
    if cache:
        assert list((tmp / "anchore_layercache" / "sha256").iterdir()) == []  # not even a temp file
    else:
        assert not tmp.exists()


@pytest.mark.corpus
def test_redirect_to_another_host_gets_no_authorization(basic_fault_proxy, tmp_path):
    proxy = basic_fault_proxy
    desc = _layer("debian-apps", 4)
    proxy.faults.append(Fault("redirect", times=-1))
    config = cfg(proxy.host, tmp_path, registries={proxy.host: Registry(username=USER, password=PASSWORD)})
    src = open_registry(f"{proxy.host}/corpus/debian-apps:latest", platform=None, config=config)
    try:
        _read_layer(src, desc)
    finally:
        src.close()
    seen = proxy.blob_host.seen
    assert len(seen) == 2  # the config blob and the layer went to 127.0.0.2
    assert all("Authorization" not in h and "authorization" not in {k.lower() for k in h} for h in seen)


def test_schema1_is_a_clear_error(fault_proxy, tmp_path):
    fault_proxy.faults.append(Fault("manifest", body=SCHEMA1, media_type=SCHEMA1_PRETTYJWS))
    with pytest.raises(SourceError, match="schema 1 manifests are not supported"):
        _open_via(fault_proxy, tmp_path)


# ---------------------------------------------------------------------------- one resolve() for every source


def _index_of(raw: bytes, size: int) -> dict:
    entry = {"mediaType": OCI_MANIFEST, "digest": "sha256:" + hashlib.sha256(raw).hexdigest(), "size": size}
    return {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{**entry, "platform": {"os": "linux", "architecture": "amd64"}}],
    }


# A broken top document (from the real manifest): what it is served as, and the error every source gives.
BROKEN: dict[str, tuple[Callable[[bytes, dict], dict], str, str]] = {
    "unknown manifest type": (
        lambda raw, m: {**m, "mediaType": "application/x-helm"},
        OCI_MANIFEST,
        "unknown media type 'application/x-helm'",
    ),
    "unknown layer type": (
        lambda raw, m: {
            **m,
            "layers": [{**m["layers"][0], "mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip"}],
        },
        OCI_MANIFEST,
        "layer 0 has unknown media type",
    ),
    "schema 1": (lambda raw, m: json.loads(SCHEMA1), SCHEMA1_PRETTYJWS, "schema 1 manifests are not supported"),
    "digest naming a path": (
        lambda raw, m: {**m, "config": {**m["config"], "digest": "sha256:../../etc"}},
        OCI_MANIFEST,
        "not a valid digest",
    ),
    "negative size": (lambda raw, m: {**m, "layers": [{**m["layers"][0], "size": -1}]}, OCI_MANIFEST, "negative size"),
    "no layers": (lambda raw, m: {k: v for k, v in m.items() if k != "layers"}, OCI_MANIFEST, "has no layers list"),
    "index entry size": (
        lambda raw, m: _index_of(raw, len(raw) + 1),
        OCI_INDEX,
        "is {n} bytes, its descriptor says {n1}",
    ),
}


@pytest.mark.parametrize("case", BROKEN)
def test_registry_and_layout_refuse_the_same_documents_alike(fault_proxy, tmp_path, case):
    """The checks layouts always had now hold for registry manifests too: both go through resolve()."""
    change, media_type, message = BROKEN[case]
    raw, manifest = layout_manifest(IMAGES / "rpm-sqlite")
    message = message.format(n=len(raw), n1=len(raw) + 1)
    top = json.dumps(change(raw, manifest)).encode()
    layout = tmp_path / "layout"
    (layout / "blobs" / "sha256").mkdir(parents=True)
    for data in (top, raw):
        (layout / "blobs" / "sha256" / hashlib.sha256(data).hexdigest()).write_bytes(data)
    top_desc = {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(top).hexdigest(), "size": len(top)}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top_desc]}))
    fault_proxy.faults.append(Fault("manifest", body=top, media_type=media_type))  # the tag's manifest only
    errors = []
    for spec in (f"oci-dir:{layout}", f"registry:{fault_proxy.host}/{SMALL}:latest"):
        with pytest.raises(SourceError) as e:
            open_source(spec, config=cfg(fault_proxy.host, tmp_path)).close()
        errors.append(e.value)
    assert [type(e) for e in errors] == [type(errors[0])] * 2 and all(message in str(e) for e in errors), errors
    assert all("\n" not in str(e) for e in errors)


def test_a_manifest_served_as_application_json_is_read_by_its_shape(fault_proxy, tmp_path):
    raw, manifest = layout_manifest(IMAGES / "rpm-sqlite")
    bare = json.dumps({k: v for k, v in manifest.items() if k != "mediaType"}).encode()  # OCI allows leaving it out
    fault_proxy.faults.append(Fault("manifest", body=bare, media_type="application/json"))
    with _open_via(fault_proxy, tmp_path, repo=f"{SMALL}:latest") as src:
        assert src.raw_manifest == bare and src.config_digest == answers("rpm-sqlite")["config_digest"]


def test_foreign_layer_skipped_when_not_allowed(registry, tmp_path, caplog):
    src = open_registry(
        f"{registry.host}/{SMALL}:latest",
        platform=None,
        config=cfg(registry.host, tmp_path, fetch_foreign_layers=False),
    )
    desc = Descriptor(
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        src.layers[0].digest,
        src.layers[0].size,
        urls=("http://127.0.0.2:9/nowhere",),
    )
    try:
        with src.open_layer(desc) as blob:
            assert blob is None
    finally:
        src.close()
    assert "foreign" in caplog.text


def test_foreign_layer_fetched_from_its_urls(fault_proxy, registry, tmp_path):
    src = open_registry(f"{registry.host}/{SMALL}:latest", platform=None, config=cfg(registry.host, tmp_path))
    layer = src.layers[0]
    url = f"{fault_proxy.blob_host.url}/blobs/{layer.digest}"
    desc = Descriptor(
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        layer.digest,
        layer.size,
        urls=("http://127.0.0.2:9/down", url),
    )
    try:
        _read_layer(src, desc)
    finally:
        src.close()
    assert len(fault_proxy.blob_host.seen) == 1


# ---------------------------------------------------------------------------- the layer cache


@pytest.mark.corpus
def test_warm_cache_downloads_no_layer(fault_proxy, tmp_path):
    layers = [la["digest"] for la in answers("debian-apps")["layers"]]
    for _ in range(2):
        fault_proxy.blob_gets.clear()
        src = _open_via(fault_proxy, tmp_path, layer_cache_enable=True)
        try:
            pull_all(src, ENGINE)
        finally:
            src.close()
        counts = fault_proxy.layer_gets(layers)
        if _ == 0:
            assert counts == {d: 1 for d in layers}
    assert counts == {d: 0 for d in layers}
    cached = {
        p.name for p in (tmp_path / "tmp" / "anchore_layercache" / "sha256").iterdir() if not p.name.startswith(".")
    }
    assert cached == {d.split(":")[1] for d in layers}


@pytest.mark.corpus
def test_cache_off_writes_no_layer_bytes(fault_proxy, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    src = _open_via(fault_proxy, tmp_path, layer_cache_enable=False)
    try:
        assert pull_all(src, ENGINE) == expected_diff_ids("debian-apps")
    finally:
        src.close()
    assert [p for p in tmp.rglob("*")] == []


# ---------------------------------------------------------------------------- where credentials come from


def test_credentials_order(tmp_path, monkeypatch):
    host = "reg.example:5000"
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    env: dict[str, str] = {"HOME": str(home)}

    def found() -> tuple[str, str, str]:
        c = find_credentials(host, explicit, env=env)
        return (c.username, c.password or c.identity_token, c.source) if c else ("", "", "")

    explicit = Config()
    assert found() == ("", "", "")
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(json.dumps({"auths": {host: {"auth": base64.b64encode(b"podman:p5").decode()}}}))
    env["REGISTRY_AUTH_FILE"] = str(auth_file)
    assert found()[:2] == ("podman", "p5")
    (home / ".docker" / "config.json").write_text(
        json.dumps({"auths": {f"https://{host}": {"auth": base64.b64encode(b"docker:d0").decode()}}})
    )
    assert found()[:2] == ("docker", "d0")
    (home / ".docker" / "config.json").write_text(json.dumps({"auths": {host: {"identitytoken": "idtok"}}}))
    assert found()[1] == "idtok"
    helper = tmp_path / "bin" / "docker-credential-testhelper"
    helper.parent.mkdir()
    helper.write_text('#!/bin/sh\nread server\necho "{\\"Username\\":\\"helper\\",\\"Secret\\":\\"h3-$server\\"}"\n')
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    env["PATH"] = f"{helper.parent}:{os.environ['PATH']}"
    (home / ".docker" / "config.json").write_text(
        json.dumps({"credHelpers": {host: "testhelper"}, "auths": {host: {"identitytoken": "idtok"}}})
    )
    assert found()[:2] == ("helper", f"h3-{host}")
    (home / ".docker" / "config.json").write_text(json.dumps({"credsStore": "testhelper"}))
    assert found()[0] == "helper"
    env["LAYERSCAN_REGISTRY_USERNAME"], env["LAYERSCAN_REGISTRY_PASSWORD"] = "envuser", "e1"
    assert found()[:2] == ("envuser", "e1")
    env["LAYERSCAN_REGISTRY_REG_EXAMPLE_5000_USERNAME"] = "hostuser"
    env["LAYERSCAN_REGISTRY_REG_EXAMPLE_5000_PASSWORD"] = "e2"
    assert found()[:2] == ("hostuser", "e2")
    explicit = Config(registries={host: Registry(username="cli", password="c1")})
    assert found() == ("cli", "c1", "explicit credentials")
    assert "c1" not in repr(find_credentials(host, explicit, env=env))


def test_docker_hub_credentials_use_the_index_key(tmp_path):
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    (home / ".docker" / "config.json").write_text(
        json.dumps({"auths": {"https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:h").decode()}}})
    )
    c = find_credentials("registry-1.docker.io", Config(), env={"HOME": str(home)})
    assert c is not None and (c.username, c.password) == ("hub", "h")


def test_bad_credentials_file_is_a_clear_error(tmp_path):
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    (home / ".docker" / "config.json").write_text(json.dumps({"auths": {"h:1": {"auth": "bm90LWEtcGFpcg=="}}}))
    with pytest.raises(AuthError, match="not base64 of user:password"):
        find_credentials("h:1", Config(), env={"HOME": str(home)})


def test_constructing_a_source_does_no_io(tmp_path):
    """Credentials, the network and the layer cache are touched in open(), never in the constructor."""
    home = tmp_path / "home" / ".docker"
    home.mkdir(parents=True)
    (home / "config.json").write_text("not json: reading it would fail")
    config = Config(tmp_dir=str(tmp_path / "tmp"), layer_cache_enable=True)
    source = RegistrySource(ImageRef.parse("127.0.0.1:9/nowhere:1"), config)  # nothing listens on port 9
    source.close()
    assert not (tmp_path / "tmp").exists()
    with pytest.raises(AuthError, match="config.json"):  # open() is where the lookup happens
        RegistrySource(ImageRef.parse("127.0.0.1:9/nowhere:1"), config).open()

"""anchore-cli 0.9.3 itself against `layerscan serve` and two `layerscan worker` processes, with the
corpus images in Debian's docker-registry on loopback: what the CLI prints equals what
`layerscan analyze` finds in the same image, auth is enforced, a bad tag is refused at add."""

from __future__ import annotations

import collections
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from api_harness import ServeProcess, admin_session, api_config, api_only, api_port, run_cli
from conftest import IMAGES, ROOT
from registry_fixtures import IMAGE_REPOS, Pushed
from registry_harness import REGISTRY_BIN
from service_harness import WorkerProcess, wait_for

pytestmark = [
    pytest.mark.skipif(not Path(REGISTRY_BIN).exists(), reason=f"{REGISTRY_BIN} is not installed"),
    pytest.mark.skipif(not IMAGES.is_dir(), reason=f"the corpus is not at {IMAGES}"),
]

IMAGE = "debian-apps"
# anchore-cli content type -> layerscan's package type
CTYPES = {"os": "dpkg", "npm": "npm", "python": "python", "java": "java", "gem": "gem"}


class Cluster:
    """`layerscan serve` (API only) and two `layerscan worker` processes on one state."""

    def __init__(self, directory: Path, registry_host: str) -> None:
        self.port = api_port()
        # One state, two configs: the workers analyze, `serve` only answers (its analyzer is off).
        self.config = api_config(directory, registry_host, api_port=self.port, lease_seconds=30)
        self.serve = ServeProcess(api_only(self.config), self.port)
        self.url = self.serve.url
        self.workers = [WorkerProcess(self.config), WorkerProcess(self.config)]
        wait_for(lambda: len(self.analyzers()) == 2, 60, "both workers registered")

    def analyzers(self) -> list[dict]:
        states = admin_session().get(f"{self.url}/system").json()["service_states"]
        return [s for s in states if s["servicename"] == "analyzer"]

    def cli(self, *args: str, **kw: str) -> subprocess.CompletedProcess:
        return run_cli(self.url, *args, **kw)

    def close(self) -> None:
        for w in self.workers:
            w.stop()
        self.serve.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, registry: Pushed) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("anchore-cli"), registry.host)
    yield c
    c.close()


@pytest.fixture(scope="module")
def analyzed(registry: Pushed, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`layerscan analyze` of the same image from the same registry: the counts to match."""
    out = tmp_path_factory.mktemp("analyze") / "report.json"
    ref = f"registry:{registry.host}/{IMAGE_REPOS[IMAGE]}:latest"
    subprocess.run(
        [sys.executable, "-m", "layerscan", "analyze", ref, "--insecure-registry", registry.host, "-o", str(out)],
        check=True,
        cwd=ROOT,
        capture_output=True,
        timeout=300,
    )
    return json.loads(out.read_text())


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def tag_of(registry: Pushed, name: str) -> str:
    return f"{registry.host}/{IMAGE_REPOS[name]}:latest"


def table_rows(text: str) -> list[list[str]]:
    """The rows of a prettytable PLAIN_COLUMNS table, header first."""
    return [re.split(r"\s{2,}", line.strip()) for line in text.strip().splitlines() if line.strip()]


def added(cluster: Cluster, tag: str) -> str:
    """`image add` then `image wait`: the digest, once analyzed."""
    out = ok(cluster.cli("image", "add", tag))
    assert "Analysis Status: not_analyzed" in out or "Analysis Status: analyz" in out, out
    digest = re.search(r"Image Digest: (sha256:[0-9a-f]{64})", out)
    assert digest is not None, out
    waited = ok(cluster.cli("image", "wait", tag, "--interval", "0.5", "--timeout", "120"))
    assert "Analysis Status: analyzed" in waited, waited
    return digest.group(1)


def test_system_status_lists_the_api_and_both_workers(cluster: Cluster) -> None:
    out = ok(cluster.cli("system", "status"))
    assert re.search(r"Service apiext \(.+, http://127\.0\.0\.1:\d+\): up", out), out
    assert out.count("Service analyzer (") == 2, out
    assert "Engine DB Version: 0.0.16" in out and "Engine Code Version: 1.1.0" in out


def test_add_wait_get_list_content_metadata_match_analyze(cluster: Cluster, registry: Pushed, analyzed: dict) -> None:
    tag = tag_of(registry, IMAGE)
    digest = added(cluster, tag)
    assert digest == registry.digests[f"{IMAGE_REPOS[IMAGE]}:latest"]

    got = ok(cluster.cli("image", "get", tag))
    assert f"Image Digest: {digest}" in got and "Analysis Status: analyzed" in got
    assert "Distro: debian" in got and "Distro Version: 12" in got and "Architecture: amd64" in got
    assert f"Layer Count: {len(analyzed['image']['layers'])}" in got
    assert f"Image ID: {analyzed['image']['config_digest'].split(':')[1]}" in got
    assert f"Full Tag: {tag}" in got

    listed = table_rows(ok(cluster.cli("image", "list")))
    assert listed[0] == ["Full Tag", "Image Digest", "Analysis Status"]
    assert [tag, digest, "analyzed"] in listed[1:]

    expected = collections.Counter(p["type"] for p in analyzed["packages"])
    for ctype, ptype in CTYPES.items():
        table = table_rows(ok(cluster.cli("image", "content", tag, ctype)))
        assert len(table) - 1 == expected[ptype], (ctype, table[:3])
        as_json = json.loads(ok(cluster.cli("--json", "image", "content", tag, ctype)))
        assert len(as_json["content"]) == expected[ptype]
    os_rows = table_rows(ok(cluster.cli("image", "content", tag, "os")))
    assert os_rows[0] == ["Package", "Version", "Licenses"]
    versions = {p["name"]: p["version"] for p in analyzed["packages"] if p["type"] == "dpkg"}
    assert {row[0]: row[1] for row in os_rows[1:]} == versions
    files = json.loads(ok(cluster.cli("--json", "image", "content", tag, "files")))["content"]
    assert len(files) == len(analyzed["files"])
    by_path = {f["path"]: f for f in analyzed["files"]}
    assert {f["filename"]: f["sha256"] for f in files} == {p: f["sha256"] for p, f in by_path.items()}
    assert table_rows(ok(cluster.cli("image", "content", tag, "files")))[0] == ["Filename", "Size"]

    types = ok(cluster.cli("image", "content", tag))
    assert all(f"{t}: available" in types for t in ("os", "files", "npm", "gem", "python", "java", "nuget"))
    manifest = ok(cluster.cli("image", "metadata", tag, "manifest"))
    assert f"Image Digest: {digest}" in manifest and '"layers"' in manifest
    history = ok(cluster.cli("image", "metadata", tag, "docker_history"))
    assert "Metadata Type: docker_history" in history and "CreatedBy" in history
    assert "FROM scratch" in ok(cluster.cli("image", "metadata", tag, "dockerfile"))


def anchore_export(tmp_path: Path, source: str, *options: str) -> Path:
    """`layerscan analyze SOURCE --format anchore` made elsewhere, as `image import` takes it."""
    export = tmp_path / "export.json"
    subprocess.run(
        [sys.executable, "-m", "layerscan", "analyze", source, *options, "--format", "anchore", "-o", str(export)],
        check=True,
        cwd=ROOT,
        capture_output=True,
        timeout=300,
    )
    return export


def test_import_then_delete(cluster: Cluster, registry: Pushed, tmp_path: Path) -> None:
    """An export made by `analyze --format anchore` elsewhere goes in with `image import`."""
    tag = tag_of(registry, "rpm-sqlite")
    export = anchore_export(tmp_path, f"registry:{tag}", "--insecure-registry", registry.host)
    out = ok(cluster.cli("image", "import", "--infile", str(export)))
    digest = registry.digests[f"{IMAGE_REPOS['rpm-sqlite']}:latest"]
    assert f"Image Digest: {digest}" in out and "Analysis Status: analyzed" in out and f"Full Tag: {tag}" in out
    rpms = json.loads(export.read_text())[0]["image"]["imagedata"]["analysis_report"]["package_list"]
    assert len(table_rows(ok(cluster.cli("image", "content", tag, "os")))) - 1 == len(rpms["pkgs.allinfo"]["base"])

    assert ok(cluster.cli("image", "del", digest)).strip() == "Success"
    assert admin_session().get(f"{cluster.url}/images/{digest}").status_code == 404


def test_import_of_an_untagged_local_export(cluster: Cluster, tmp_path: Path) -> None:
    """An air-gapped host's `analyze oci-dir:… --format anchore`: no tag, still printed whole."""
    export = anchore_export(tmp_path, f"oci-dir:{IMAGES / 'debian-minbase'}")
    out = ok(cluster.cli("image", "import", "--infile", str(export)))
    assert "WARNING" not in out and "Full Tag: localhost/debian-minbase:<none>" in out, out
    digest = re.search(r"Image Digest: (sha256:[0-9a-f]{64})", out)
    assert digest is not None
    got = ok(cluster.cli("image", "get", digest.group(1)))
    assert "Analysis Status: analyzed" in got and "Distro: debian" in got and "WARNING" not in got
    assert table_rows(ok(cluster.cli("image", "list")))[1:]  # a table, not raw JSON


def test_wrong_password_is_refused_and_the_cli_says_so(cluster: Cluster) -> None:
    proc = cluster.cli("image", "list", password="not-the-password")
    assert proc.returncode == 2
    assert "Error: Unauthorized" in proc.stdout and "HTTP Code: 401" in proc.stdout, proc.stdout
    debug = cluster.cli("system", "status", password="not-the-password")
    assert debug.returncode == 2 and "401" in debug.stdout


def test_no_credentials_is_401_with_a_challenge(cluster: Cluster) -> None:
    import requests

    for path in ("/images", "/v1/images", "/v1/system", "/metrics", "/ui", "/v1/swagger.json"):
        resp = requests.get(f"http://127.0.0.1:{cluster.port}{path}")
        assert resp.status_code == 401, path
        assert resp.headers["WWW-Authenticate"].startswith("Basic realm=")
        assert resp.json()["message"] == "Unauthorized"
    for path in ("/", "/v1", "/health", "/version", "/v1/version"):
        assert requests.get(f"http://127.0.0.1:{cluster.port}{path}").status_code == 200, path
    assert "not-the-password" not in cluster.serve.log() and "test-admin-pass" not in cluster.serve.log()


def test_a_tag_that_does_not_exist_is_rejected_at_add(cluster: Cluster, registry: Pushed) -> None:
    before = admin_session().get(f"{cluster.url}/images").json()
    proc = cluster.cli("image", "add", f"{registry.host}/corpus/debian-apps:no-such-tag")
    assert proc.returncode == 1, proc.stdout
    assert "HTTP Code: 404" in proc.stdout and "no-such-tag" in proc.stdout, proc.stdout
    assert admin_session().get(f"{cluster.url}/images").json() == before  # nothing queued

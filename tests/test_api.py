"""Anchore's API as served by a real `layerscan serve` process (API only): auth, both path forms,
every validation error a 400 with a message, and the content, metadata and artifacts of an
image imported from a corpus export equal to what `layerscan analyze` found in it."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from api_harness import ADMIN_PASSWORD, ServeProcess, admin_session, serving
from conftest import IMAGES, ROOT
from registry_fixtures import IMAGE_REPOS, Pushed
from registry_harness import REGISTRY_BIN

pytestmark = [
    pytest.mark.skipif(not IMAGES.is_dir(), reason=f"the corpus is not at {IMAGES}"),
    pytest.mark.skipif(not Path(REGISTRY_BIN).exists(), reason=f"{REGISTRY_BIN} is not installed"),
]

IMAGE = "debian-apps"


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`layerscan analyze` of the corpus image: the Anchore export and the layerscan JSON."""
    out = tmp_path_factory.mktemp("reports")
    paths = {}
    for fmt in ("anchore", "json"):
        paths[fmt] = out / f"{IMAGE}.{fmt}.json"
        subprocess.run(
            [sys.executable, "-m", "layerscan", "analyze", f"oci-dir:{IMAGES / IMAGE}", "--format", fmt]
            + ["-o", str(paths[fmt])],
            check=True,
            cwd=ROOT,
            capture_output=True,
            timeout=300,
        )
    return paths


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, registry: Pushed) -> Iterator[ServeProcess]:
    """API only (no analyzer): what is submitted stays queued."""
    with serving(tmp_path_factory.mktemp("api"), registry.host, max_threads=0) as serve:
        yield serve


@pytest.fixture(scope="module")
def imported(api: ServeProcess, reports: dict[str, Path]) -> dict:
    """The corpus export, imported as anchore-cli posts it (the list's one element)."""
    export = json.loads(reports["anchore"].read_text())
    resp = admin_session().post(f"{api.url}/imageimport", json=export[0])
    assert resp.status_code == 200, resp.text
    (image,) = resp.json()
    assert image["analysis_status"] == "analyzed" and image["imageDigest"].startswith("sha256:")
    return image


@pytest.fixture(scope="module")
def native(reports: dict[str, Path]) -> dict:
    return json.loads(reports["json"].read_text())


def get(api: ServeProcess, path: str, **kw: object) -> requests.Response:
    return admin_session().get(f"{api.url}{path}", **kw)  # type: ignore[arg-type]


def assert_error(resp: requests.Response, status: int, *words: str) -> None:
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    assert body["httpcode"] == status and isinstance(body["message"], str), body
    assert "Traceback" not in resp.text
    for word in words:
        assert word in body["message"], body


# ---------------------------------------------------------------------------- service routes


def test_public_routes_and_both_path_forms(api: ServeProcess) -> None:
    base = f"http://127.0.0.1:{api.port}"
    assert requests.get(f"{base}/").json() == "v1" == requests.get(f"{base}/v1").json()
    assert requests.get(f"{base}/health").json() == "ok"
    version = requests.get(f"{base}/version").json()
    assert version["service"]["version"] == "1.1.0" and version["db"]["schema_version"] == "0.0.16"
    s = admin_session()
    assert s.get(f"{base}/images").json() == s.get(f"{base}/v1/images").json()
    assert s.get(f"{base}/status").json()["up"] is True


def test_swagger_json(api: ServeProcess) -> None:
    doc = get(api, "/swagger.json").json()
    assert doc["swagger"] == "2.0" and doc["info"]["version"] == "0.1.20"
    for path in ("/images", "/images/{imageDigest}/content/{ctype}", "/imageimport", "/system", "/metrics"):
        assert path in doc["paths"], path
    refs = {v for v in json.dumps(doc).split('"') if v.startswith("#/definitions/")}
    assert {r.rsplit("/", 1)[1] for r in refs} <= set(doc["definitions"])


def test_any_configured_user_may_log_in_and_nobody_else(api: ServeProcess) -> None:
    assert requests.get(f"{api.url}/images", auth=("reader", "reader-pass")).status_code == 200
    for auth in (("reader", ADMIN_PASSWORD), ("admin", "reader-pass"), ("nobody", "x"), ("admin", "")):
        resp = requests.get(f"{api.url}/images", auth=auth)
        assert resp.status_code == 401 and "WWW-Authenticate" in resp.headers
    bearer = requests.get(f"{api.url}/images", headers={"Authorization": "Bearer abc"})
    garbage = requests.get(f"{api.url}/images", headers={"Authorization": "Basic !!!notbase64"})
    assert bearer.status_code == garbage.status_code == 401
    assert ADMIN_PASSWORD not in api.log() and "reader-pass" not in api.log()


def serve_once(tmp_path: Path, config: str) -> subprocess.CompletedProcess:
    """`layerscan serve` with a config it should refuse: its exit code and one-line error."""
    (tmp_path / "config.yaml").write_text(config)
    return subprocess.run(
        [sys.executable, "-m", "layerscan", "serve", "--config", str(tmp_path / "config.yaml")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_serve_refuses_to_start_with_auth_and_no_user(tmp_path: Path) -> None:
    proc = serve_once(tmp_path, "services:\n  analyzer: {enabled: false}\n")
    assert proc.returncode == 2
    assert "no user can log in" in proc.stderr and "Traceback" not in proc.stderr


def test_serve_on_a_port_in_use_exits_3(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = serve_once(
            tmp_path,
            f"default_admin_password: x\nservice_dir: {tmp_path}\n"
            f"services:\n  analyzer: {{enabled: false}}\n  apiext: {{listen: 127.0.0.1, port: {port}}}\n",
        )
    assert proc.returncode == 3
    assert f"layerscan: error: serve: cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------------------- bad requests


@pytest.mark.parametrize(
    "method, path, body, status, words",
    [
        ("POST", "/images", b"not json", 400, ["not JSON"]),
        ("POST", "/images", b"[1, 2]", 400, ["ImageAnalysisRequest"]),
        ("POST", "/images", b"{}", 400, ["'tag' is a required property"]),
        ("POST", "/images", b'{"tag": 5}', 400, ["tag must be a string"]),
        ("POST", "/images", b'{"source": {"archive": {"digest": "x"}}}', 400, ["source.archive"]),
        ("POST", "/images?force=maybe", b'{"tag": "a/b:c"}', 400, ["force"]),
        ("POST", "/images", b'{"tag": "UPPER/Case:x"}', 400, ["lowercase"]),
        ("POST", "/images", b'{"tag": "a/b:c", "digest": "sha256:short"}', 400, ["digest"]),
        ("GET", "/images?analysis_status=done", None, 400, ["analysis_status"]),
        ("GET", "/images?fulltag=Bad:Tag:x", None, 400, []),
        ("GET", "/images?history=perhaps", None, 400, ["history"]),
        ("GET", "/images/not-a-digest", None, 400, ["not an image digest"]),
        ("GET", "/images/by_id/xyz", None, 400, ["not an image id"]),
        ("GET", "/images/sha256:" + "0" * 64, None, 404, ["not found"]),
        ("DELETE", "/images/sha256:" + "0" * 64, None, 404, ["not found"]),
        ("POST", "/imageimport", b"{}", 400, ["not an Anchore image export"]),
        ("POST", "/imageimport", b"[]", 400, []),
        ("GET", "/no/such/route", None, 404, []),
        ("PUT", "/images", None, 405, []),
    ],
)
def test_bad_requests_get_a_message_not_a_traceback(
    api: ServeProcess, method: str, path: str, body: bytes | None, status: int, words: list[str]
) -> None:
    resp = admin_session().request(method, f"{api.url}{path}", data=body)
    assert_error(resp, status, *words)


# ---------------------------------------------------------------------------- an imported image


def test_get_list_and_by_id(api: ServeProcess, imported: dict, native: dict) -> None:
    digest = imported["imageDigest"]
    assert digest == native["image"]["manifest_digest"]
    image_id = native["image"]["config_digest"].split(":")[1]
    (by_digest,) = get(api, f"/images/{digest}").json()
    (by_id,) = get(api, f"/images/by_id/{image_id}").json()
    assert by_digest == by_id
    meta = by_digest["image_content"]["metadata"]
    assert meta["distro"] == "debian" and meta["distro_version"] == "12" and meta["arch"] == "amd64"
    assert meta["layer_count"] == len(native["image"]["layers"]) and meta["image_size"] > 0
    assert by_digest["analyzed_at"].endswith("Z") and by_digest["userId"] == "admin"
    # An export of a local image names no tag: one detail, untagged as Docker shows it.
    (detail,) = by_digest["image_detail"]
    assert (detail["registry"], detail["repo"], detail["tag"]) == ("localhost", IMAGE, "<none>")
    assert detail["fulldigest"] == f"localhost/{IMAGE}@{digest}" and detail["imageId"] == image_id
    assert digest in [i["imageDigest"] for i in get(api, "/images", params={"analysis_status": "analyzed"}).json()]
    assert get(api, "/images", params={"analysis_status": "analyzing"}).json() == []


def test_content_equals_analyze(api: ServeProcess, imported: dict, native: dict) -> None:
    digest = imported["imageDigest"]
    assert get(api, f"/images/{digest}/content").json() == [
        "os", "files", "npm", "gem", "python", "java", "binary", "go", "malware", "nuget"
    ]  # fmt: skip
    by_type: dict[str, list[dict]] = {}
    for p in native["packages"]:
        by_type.setdefault(p["type"], []).append(p)
    os_rows = get(api, f"/images/{digest}/content/os").json()
    assert os_rows["imageDigest"] == digest and os_rows["content_type"] == "os"
    assert {r["package"]: r["version"] for r in os_rows["content"]} == {
        p["name"]: p["version"] for p in by_type["dpkg"]
    }
    assert all(r["licenses"] == (r["license"].split(" ") if r["license"] else []) for r in os_rows["content"])
    for ctype, ptype in (("npm", "npm"), ("gem", "gem"), ("python", "python"), ("java", "java"), ("nuget", "nuget")):
        rows = get(api, f"/images/{digest}/content/{ctype}").json()["content"]
        # As in Anchore, a python package is named as its distribution declares it ("Flask").
        names = [p["metadata"]["name"] if ptype == "python" else p["name"] for p in by_type[ptype]]
        assert sorted((r["package"], r["version"]) for r in rows) == sorted(
            zip(names, (p["version"] for p in by_type[ptype]), strict=True)
        ), ctype
    files = get(api, f"/images/{digest}/content/files").json()["content"]
    expected = {f["path"]: f for f in native["files"]}
    assert len(files) == len(expected)
    for row in files:
        f = expected[row["filename"]]
        assert row["sha256"] == (f["sha256"] if f["type"] in ("file", "hardlink") else None), row
        assert int(row["mode"], 8) == int(f["mode"], 8) & 0o7777 and len(row["mode"]) == 5
    assert get(api, f"/images/{digest}/content/malware").json()["content"] == []
    assert_error(get(api, f"/images/{digest}/content/vulns"), 404, "not available")


def test_artifacts_and_metadata(api: ServeProcess, imported: dict, native: dict) -> None:
    digest = imported["imageDigest"]
    (passwd,) = get(api, f"/images/{digest}/artifacts/retrieved_files").json()
    assert passwd["path"] == "/etc/passwd"
    sha = {f["path"]: f["sha256"] for f in native["files"]}
    assert hashlib.sha256(base64.b64decode(passwd["b64_content"])).hexdigest() == sha["/etc/passwd"]
    found = {
        (a["path"], m["name"], line + 1)
        for a in get(api, f"/images/{digest}/artifacts/secret_search").json()
        for m in a["matches"]
        for line in m["lines"]
    }
    expected = {(s["path"], s["rule"], s["line"]) for s in native["secrets"] if s["in_final_image"]}
    assert found and found <= expected
    assert ("/root/.ssh/id_rsa", "PRIV_KEY", 1) in found
    assert get(api, f"/images/{digest}/artifacts/file_content_search").json() == []
    history = get(api, f"/images/{digest}/metadata/docker_history").json()
    assert history["metadata_type"] == "docker_history"
    entries = json.loads(base64.b64decode(history["metadata"]))
    assert [h["Id"] for h in entries if h["Id"] != "<missing>"] == [la["digest"] for la in native["image"]["layers"]]
    dockerfile = base64.b64decode(get(api, f"/images/{digest}/metadata/dockerfile").json()["metadata"]).decode()
    assert dockerfile.startswith("FROM scratch\n")
    assert get(api, f"/images/{digest}/metadata").json() == ["manifest", "docker_history", "dockerfile"]


def test_metrics(api: ServeProcess, imported: dict) -> None:
    text = get(api, "/metrics").text
    assert 'layerscan_queue_images{state="analyzed"} 1.0' in text
    assert 'layerscan_queue_images{state="not_analyzed"}' in text
    assert "# TYPE anchore_analysis_time_seconds histogram" in text
    assert "layerscan_images_analyzed_total" in text and "layerscan_analyzers_up" in text


def test_submitted_image_waits_and_its_content_is_404_until_analyzed(api: ServeProcess, registry: Pushed) -> None:
    tag = f"{registry.host}/{IMAGE_REPOS['debian-minbase']}:latest"
    (queued,) = admin_session().post(f"{api.url}/images?autosubscribe=False", json={"tag": tag}).json()
    digest = queued["imageDigest"]
    assert digest == registry.digests[f"{IMAGE_REPOS['debian-minbase']}:latest"]
    assert queued["analysis_status"] == "not_analyzed" and queued["image_content"]["metadata"]["distro"] is None
    assert [d["fulltag"] for d in queued["image_detail"]] == [tag]
    (again,) = (
        admin_session()
        .post(
            f"{api.url}/images",
            json={
                "source": {
                    "digest": {"pullstring": f"{registry.host}/{IMAGE_REPOS['debian-minbase']}@{digest}", "tag": tag}
                }
            },
        )
        .json()
    )
    assert again["imageDigest"] == digest
    (listed,) = get(api, "/images", params={"fulltag": tag, "history": "false"}).json()
    assert listed["imageDigest"] == digest
    assert_error(get(api, f"/images/{digest}/content/os"), 404, "image is not analyzed - analysis_status: not_analyzed")
    assert 'layerscan_queue_images{state="not_analyzed"} 1.0' in get(api, "/metrics").text
    assert admin_session().delete(f"{api.url}/images/{digest}").json()["status"] == "deleting"


def test_delete(api: ServeProcess, imported: dict) -> None:
    digest = imported["imageDigest"]
    resp = admin_session().delete(f"{api.url}/images/{digest}")
    assert resp.json() == {"digest": digest, "status": "deleting", "detail": None}
    assert_error(get(api, f"/images/{digest}"), 404)
    assert_error(get(api, f"/images/{digest}/content/os"), 404)

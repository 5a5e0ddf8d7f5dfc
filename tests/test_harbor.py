"""Harbor's scanner adapter API as served by a real `layerscan serve` (with its analyzer), pulling
from real docker-registry processes holding the corpus images, as Harbor drives a scanner:
metadata, scan with the registry credentials Harbor hands over (a robot account as Basic, a
token as Bearer), poll the report through its 302s, and the SBOM equal to `layerscan analyze`'s.
Then the failures (a digest that is not there, an analysis that fails, Harbor's credential
wrong), and schemathesis against the spec's published OpenAPI document (tests/schemas)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import schemathesis
import yaml
from hypothesis import settings
from schemathesis.config import NotAServerErrorConfig

from api_harness import ADMIN_PASSWORD, ServeProcess, admin_session, api_config, api_only, api_port
from conftest import IMAGES, ROOT
from layerscan.service.store import Store
from redis_harness import REDIS_BIN, RedisServer
from registry_fixtures import IMAGE_REPOS, PASSWORD, USER, Pushed
from registry_harness import REGISTRY_BIN, Fault, FaultProxy, TokenServer
from service_harness import WorkerProcess
from test_registry_analyze import analyze_cli

pytestmark = [
    pytest.mark.skipif(not IMAGES.is_dir(), reason=f"the corpus is not at {IMAGES}"),
    pytest.mark.skipif(not Path(REGISTRY_BIN).exists(), reason=f"{REGISTRY_BIN} is not installed"),
]

SPEC = ROOT / "tests" / "schemas" / "harbor-scanner-adapter-openapi-v1.2.yaml"
SBOM_REPORT = "application/vnd.security.sbom.report+json; version=1.0"
MEDIA_TYPES = {"cyclonedx": "application/vnd.cyclonedx+json", "spdx": "application/spdx+json"}
ROBOT = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


@pytest.fixture(scope="module")
def harbor(
    tmp_path_factory: pytest.TempPathFactory,
    basic_registry: Pushed,
    token_registry: Pushed,
    _session_proxy: FaultProxy,
) -> Iterator[ServeProcess]:
    """serve with one analyzer; it has no credentials of its own for any registry: only Harbor's."""
    directory = tmp_path_factory.mktemp("harbor")
    port = api_port()
    config = api_config(directory, basic_registry.host, api_port=port)
    doc = yaml.safe_load(config.read_text())
    doc["insecure_registries"] += [token_registry.host, _session_proxy.host]
    config.write_text(yaml.safe_dump(doc))
    serve = ServeProcess(config, port)
    try:
        yield serve
    finally:
        serve.stop()


def base(serve: ServeProcess) -> str:
    return f"http://127.0.0.1:{serve.port}/api/v1"


def scan_request(registry: str, name: str, digest: str, authorization: str | None) -> dict:
    doc = {
        "registry": {"url": f"http://{registry}"},
        "artifact": {
            "repository": IMAGE_REPOS[name],
            "digest": digest,
            "tag": "latest",
            "mime_type": "application/vnd.oci.image.manifest.v1+json",
        },
        "enabled_capabilities": [
            {
                "type": "sbom",
                "produces_mime_types": [SBOM_REPORT],
                "parameters": {"sbom_media_types": list(MEDIA_TYPES.values())},
            }
        ],
    }
    if authorization:
        doc["registry"]["authorization"] = authorization
    return doc


def post_scan(serve: ServeProcess, doc: dict, session: requests.Session | None = None) -> requests.Response:
    return (session or admin_session()).post(
        f"{base(serve)}/scan",
        data=json.dumps(doc),
        headers={"Content-Type": "application/vnd.scanner.adapter.scan.request+json; version=1.1"},
    )


def get_report(serve: ServeProcess, scan_id: str, fmt: str) -> requests.Response:
    return admin_session().get(
        f"{base(serve)}/scan/{scan_id}/report",
        params={"sbom_media_type": MEDIA_TYPES[fmt]},
        headers={"Accept": SBOM_REPORT},
        allow_redirects=False,
    )


def poll(serve: ServeProcess, scan_id: str, fmt: str, timeout: float = 240) -> tuple[requests.Response, int]:
    """Poll as Harbor does until the answer is not a 302; the 302s seen on the way."""
    deadline, redirects = time.monotonic() + timeout, 0
    while True:
        resp = get_report(serve, scan_id, fmt)
        if resp.status_code != 302:
            return resp, redirects
        assert int(resp.headers["Refresh-After"]) > 0
        redirects += 1
        assert time.monotonic() < deadline, f"scan {scan_id} still running after {timeout}s:\n{serve.log()}"
        time.sleep(0.2)  # not Refresh-After's seconds: the test need not wait that long


def analyze(registry: str, name: str, digest: str, fmt: str, tmp: Path) -> dict:
    """`layerscan analyze --format fmt` of the same image at the same registry, as a user runs it."""
    source = f"registry:{registry}/{IMAGE_REPOS[name]}@{digest}"
    options = ("--format", fmt, "--insecure-registry", registry, "--no-cache", "--username", USER, "--password-stdin")
    proc, out = analyze_cli(tmp, source, *options, stdin=PASSWORD)  # the last --format wins
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text())


def without_run_fields(fmt: str, doc: dict) -> dict:
    """The SBOM less what differs from run to run: its timestamp (the serial is stable already)."""
    doc = json.loads(json.dumps(doc))
    if fmt == "cyclonedx":
        doc["metadata"].pop("timestamp")
    else:
        doc["creationInfo"].pop("created")
    return doc


# ---------------------------------------------------------------------------- the happy paths


def test_metadata(harbor: ServeProcess) -> None:
    resp = admin_session().get(f"{base(harbor)}/metadata")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/vnd.scanner.adapter.metadata+json; version=1.1"
    doc = resp.json()
    assert doc["scanner"]["name"] == "layerscan" and doc["scanner"]["version"]
    (capability,) = doc["capabilities"]
    assert capability["type"] == "sbom"
    assert capability["consumes_mime_types"] == [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
    assert capability["produces_mime_types"] == [SBOM_REPORT]
    assert sorted(capability["additional_attributes"]["sbom_media_types"]) == sorted(MEDIA_TYPES.values())


def test_scan_with_a_robot_account_gives_analyzes_sboms(
    harbor: ServeProcess, basic_registry: Pushed, tmp_path: Path
) -> None:
    """Basic registry credentials handed over in the request; the SBOMs equal analyze's; the
    credentials appear in no log and no stored byte."""
    name = "rpm-sqlite"
    digest = basic_registry.digests[f"{IMAGE_REPOS[name]}:latest"]
    resp = post_scan(harbor, scan_request(basic_registry.host, name, digest, ROBOT))
    assert resp.status_code == 202, resp.text
    assert resp.headers["content-type"] == "application/vnd.scanner.adapter.scan.response+json; version=1.0"
    scan_id = resp.json()["id"]
    for fmt in ("cyclonedx", "spdx"):
        report, _ = poll(harbor, scan_id, fmt)
        assert report.status_code == 200, report.text
        assert report.headers["content-type"] == SBOM_REPORT
        body = report.json()
        assert body["media_type"] == MEDIA_TYPES[fmt]
        assert body["artifact"] == {
            "repository": IMAGE_REPOS[name],
            "digest": digest,
            "mime_type": "application/vnd.oci.image.manifest.v1+json",
        }
        assert body["scanner"]["name"] == "layerscan"
        expected = analyze(basic_registry.host, name, digest, fmt, tmp_path)
        assert without_run_fields(fmt, body["sbom"]) == without_run_fields(fmt, expected)
    service_dir = Path(yaml.safe_load((Path(harbor.log_path).parent / "config.yaml").read_text())["service_dir"])
    stored = b"".join(p.read_bytes() for p in service_dir.rglob("*") if p.is_file())
    assert stored, f"nothing stored under {service_dir}"
    for secret in (PASSWORD, ROBOT.split(" ", 1)[1]):
        assert secret.encode() not in stored
        assert secret not in harbor.log()


def test_scan_with_a_bearer_token(harbor: ServeProcess, token_registry: Pushed, token_server: TokenServer) -> None:
    """A registry token, as older Harbors hand over, is sent as is: no token server is asked."""
    name = "debian-minbase"
    digest = token_registry.digests[f"{IMAGE_REPOS[name]}:latest"]
    token = token_server.token(USER, f"repository:{IMAGE_REPOS[name]}:pull")
    issued = len(token_server.issued)
    resp = post_scan(harbor, scan_request(token_registry.host, name, digest, f"Bearer {token}"))
    assert resp.status_code == 202, resp.text
    report, redirects = poll(harbor, resp.json()["id"], "cyclonedx")
    assert report.status_code == 200, report.text
    assert redirects >= 1  # the image was analyzed while Harbor polled
    assert report.json()["sbom"]["bomFormat"] == "CycloneDX"
    assert len(token_server.issued) == issued
    assert token not in harbor.log()


# ---------------------------------------------------------------------------- failures


def test_a_digest_that_is_not_there_is_refused_with_the_error_body(
    harbor: ServeProcess, basic_registry: Pushed
) -> None:
    digest = "sha256:" + "0" * 64
    resp = post_scan(harbor, scan_request(basic_registry.host, "rpm-sqlite", digest, ROBOT))
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/vnd.scanner.adapter.error+json; version=1.0"
    assert "404" in resp.json()["error"]["message"]
    assert admin_session().get(f"{harbor.url}/images/{digest}").status_code == 404  # nothing queued


def test_wrong_registry_credentials_are_refused(harbor: ServeProcess, basic_registry: Pushed) -> None:
    name = "rpm-sqlite"
    digest = basic_registry.digests[f"{IMAGE_REPOS[name]}:latest"]
    wrong = "Basic " + base64.b64encode(f"{USER}:not-the-password".encode()).decode()
    resp = post_scan(harbor, scan_request(basic_registry.host, name, digest, wrong))
    assert resp.status_code == 422, resp.text
    assert "refused" in resp.json()["error"]["message"]
    assert "not-the-password" not in harbor.log()


def test_a_failed_analysis_gives_the_error_body(harbor: ServeProcess, _session_proxy: FaultProxy) -> None:
    """Every download of the image's top layer corrupted: the analysis fails, the report is a 500."""
    _session_proxy.reset()
    name = "debian-apps"
    layout = IMAGES / name
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"]
    manifest = json.loads((layout / "blobs" / "sha256" / digest.split(":")[1]).read_text())
    top = manifest["layers"][-1]["digest"]
    _session_proxy.faults.append(Fault("corrupt", digest=top, times=-1, at=100))
    try:
        resp = post_scan(harbor, scan_request(_session_proxy.host, name, digest, None))
        assert resp.status_code == 202, resp.text
        report, _ = poll(harbor, resp.json()["id"], "spdx")
    finally:
        _session_proxy.reset()
    assert report.status_code == 500, report.text
    assert report.headers["content-type"] == "application/vnd.scanner.adapter.error+json; version=1.0"
    message = report.json()["error"]["message"]
    assert "failed" in message and top.split(":")[1][:12] in message, message


@pytest.mark.parametrize(
    "auth",
    [None, ("admin", "wrong"), ("nobody", ADMIN_PASSWORD)],
    ids=["none", "wrong-password", "unknown-user"],
)
def test_a_wrong_harbor_credential_is_refused(harbor: ServeProcess, basic_registry: Pushed, auth: object) -> None:
    s = requests.Session()
    s.auth = auth  # type: ignore[assignment]
    assert s.get(f"{base(harbor)}/metadata").status_code == 401
    digest = basic_registry.digests[f"{IMAGE_REPOS['rpm-sqlite']}:latest"]
    assert post_scan(harbor, scan_request(basic_registry.host, "rpm-sqlite", digest, ROBOT), s).status_code == 401
    bearer = requests.get(f"{base(harbor)}/metadata", headers={"Authorization": f"Bearer {ADMIN_PASSWORD}"})
    assert bearer.status_code == 401


def test_unknown_scan_and_bad_report_requests(harbor: ServeProcess, basic_registry: Pushed) -> None:
    assert get_report(harbor, "not-a-scan", "spdx").status_code == 404
    any_id = base64.urlsafe_b64encode(b"corpus/none@sha256:" + b"1" * 64).decode().rstrip("=")
    assert get_report(harbor, any_id, "spdx").status_code == 404
    name = "rpm-sqlite"
    known = base64.urlsafe_b64encode(
        f"{IMAGE_REPOS[name]}@{basic_registry.digests[IMAGE_REPOS[name] + ':latest']}".encode()
    )
    known_id = known.decode().rstrip("=")
    resp = admin_session().get(f"{base(harbor)}/scan/{known_id}/report", allow_redirects=False)
    assert resp.status_code == 400 and "sbom_media_type" in resp.json()["error"]["message"]
    vuln = admin_session().get(
        f"{base(harbor)}/scan/{known_id}/report",
        params={"sbom_media_type": MEDIA_TYPES["spdx"]},
        headers={"Accept": "application/vnd.security.vulnerability.report; version=1.1"},
    )
    assert vuln.status_code == 501


# ---------------------------------------------------------------------------- the spec, fuzzed

# Loaded at import, with the serve process's URL given per call (schemathesis's from_fixture does
# not run on pytest 9).
schema = schemathesis.openapi.from_path(SPEC)
# 501 is the spec's answer to a request for a capability the scanner lacks (a vulnerability report).
schema.config.checks.not_a_server_error = NotAServerErrorConfig(expected_statuses=["2xx", "3xx", "4xx", "501"])
# 422 is its answer to a field the schema allows but the scanner cannot use: a digest that is not
# sha256:<hex>, an authorization that is not Basic base64(user:password), a registry not reachable.
schema.config.checks.positive_data_acceptance.expected_statuses += ["422"]
ADMIN = "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()


@schema.parametrize()
@settings(max_examples=40, deadline=None)
def test_the_published_openapi_document(case: schemathesis.Case, harbor: ServeProcess) -> None:
    """Every answer to generated requests (valid and not) is one the spec documents, in its shape."""
    case.call_and_validate(base_url=base(harbor), headers={"Authorization": ADMIN})


@pytest.mark.parametrize("queue", ["store", "celery"])
def test_a_separate_worker_pulls_with_the_credentials_harbor_sent(
    basic_registry: Pushed, tmp_path: Path, queue: str
) -> None:
    """serve with its analyzer off and a worker process of its own (polling the store, or Celery's
    on Redis): Harbor's robot account reaches that worker (sealed through the store with
    keys.secret), the image is analyzed there, and the credential is in no log and, once the job
    is done, in no stored byte."""
    if queue == "celery" and not Path(REDIS_BIN).exists():
        pytest.skip(f"{REDIS_BIN} is not installed")
    port = api_port()
    config = api_config(tmp_path, basic_registry.host, api_port=port)
    doc = yaml.safe_load(config.read_text())
    doc["keys"] = {"secret": "shared-by-serve-and-its-workers"}
    redis = RedisServer(tmp_path / "redis") if queue == "celery" else None
    if redis is not None:
        doc["queue"] = redis.url
    config.write_text(yaml.safe_dump(doc))
    serve = ServeProcess(api_only(config), port)
    worker = WorkerProcess(config, *(["--celery"] if redis is not None else []))
    try:
        name = "debian-minbase"
        digest = basic_registry.digests[f"{IMAGE_REPOS[name]}:latest"]
        resp = post_scan(serve, scan_request(basic_registry.host, name, digest, ROBOT))
        assert resp.status_code == 202, resp.text
        report, _ = poll(serve, resp.json()["id"], "cyclonedx")
        assert report.status_code == 200, report.text + worker.log()
        assert worker.analyzed() == [digest], "the separate worker analyzed it"
        assert report.json()["sbom"]["bomFormat"] == "CycloneDX"
        stored = b"".join(p.read_bytes() for p in Path(doc["service_dir"]).rglob("*") if p.is_file())
        for secret in (PASSWORD, ROBOT.split(" ", 1)[1]):
            assert secret.encode() not in stored
            assert secret not in serve.log() + worker.log()
        with Store.open(f"sqlite:///{Path(doc['service_dir']) / 'layerscan.db'}") as store:
            assert store.get_credentials(digest) is None, "dropped when the job ended"
    finally:
        worker.stop()
        serve.stop()
        if redis is not None:
            redis.stop()

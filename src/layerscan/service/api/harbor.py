"""Harbor's Pluggable Scanner Adapter API (goharbor/pluggable-scanner-spec v1.2), as an SBOM scanner:

    GET  /api/v1/metadata                 the scanner and its one capability, `sbom`
    POST /api/v1/scan                     queue an artifact (202 and a scan id)
    GET  /api/v1/scan/{id}/report         302 + Refresh-After while it runs; the SBOM; or an error

A scan is an image submitted to the service's queue (submit.py) like Anchore's POST /images, so
the same analyzers run it and an image already analyzed is answered from the store. The scan id
names the artifact (base64url of `repository@digest`): any API process answers for it.

The registry credentials in a scan request (`Basic` robot account or `Bearer` token) go, sealed
through the store, to whichever worker analyzes that image, for that registry host only
(job_credentials.py); they are never logged, and gone from the store when the job ends. Harbor authenticates to this API like any client: with `Basic` credentials
of one of the service's users (auth.py), which its scanner registration sends as configured.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from ... import __version__
from ...config import Config
from ...refs import REPOSITORY, SHA256_DIGEST, TAG
from ..job_credentials import Credentials, hand_over, scoped
from ..store import ANALYZED, FAILED, ImageRecord
from ..submit import SubmitError, submit
from .context import context_of

log = logging.getLogger(__name__)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
SBOM_REPORT = "application/vnd.security.sbom.report+json; version=1.0"
METADATA_TYPE = "application/vnd.scanner.adapter.metadata+json; version=1.1"
SCAN_RESPONSE_TYPE = "application/vnd.scanner.adapter.scan.response+json; version=1.0"
ERROR_TYPE = "application/vnd.scanner.adapter.error+json; version=1.0"
# SBOM media type -> the stored report kind (jobs.STORED_REPORTS) that holds it.
SBOM_KINDS = {"application/spdx+json": "spdx", "application/vnd.cyclonedx+json": "cyclonedx"}
SCANNER = {"name": "layerscan", "vendor": "layerscan", "version": __version__}
REFRESH_AFTER_S = 5  # how soon Harbor asks again while an image waits or is analyzed
MAX_BODY = 1 << 16  # a scan request is well under a kilobyte


class HarborError(Exception):
    """An answer other than 2xx, in the spec's ErrorResponse shape."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


def error_response(status: int, message: str) -> Response:
    return JSONResponse({"error": {"message": message}}, status_code=status, media_type=ERROR_TYPE)


Handler = Callable[[Request], Awaitable[Response]]


def harbor_errors(handler: Handler) -> Handler:
    """Every error of these routes in Harbor's shape (the app's handlers answer in Anchore's)."""

    @functools.wraps(handler)
    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except HarborError as e:
            return error_response(e.status, e.message)
        except Exception as e:
            log.error("%s %s failed: %s", request.method, request.url.path, e, exc_info=e)
            return error_response(500, f"internal error: {type(e).__name__}")

    return guarded


# ---------------------------------------------------------------------------- metadata


@harbor_errors
async def metadata(request: Request) -> Response:
    capability = {
        "type": "sbom",
        "consumes_mime_types": [OCI_MANIFEST, DOCKER_MANIFEST],
        "produces_mime_types": [SBOM_REPORT],
        "additional_attributes": {"sbom_media_types": list(SBOM_KINDS)},
    }
    properties = {"harbor.scanner-adapter/scanner-type": "sbom"}
    body = {"scanner": SCANNER, "capabilities": [capability], "properties": properties}
    return JSONResponse(body, media_type=METADATA_TYPE)


# ---------------------------------------------------------------------------- scan requests


@harbor_errors
async def accept_scan(request: Request) -> Response:
    ctx = context_of(request)
    body = await request.body()
    if len(body) > MAX_BODY:
        raise HarborError(400, f"the scan request is larger than {MAX_BODY} bytes")
    if not body.strip():  # the spec leaves the body optional; its registry and artifact are not
        raise HarborError(422, "the scan request is empty: registry and artifact are required")
    try:
        doc = json.loads(body)
    except ValueError:
        raise HarborError(400, "the scan request is not JSON") from None
    scan = parse_scan_request(doc, ctx.config)
    record = await run_in_threadpool(_queue, ctx.store, ctx.config, scan)
    log.info("harbor: scan of %s/%s@%s accepted (%s)", scan.host, scan.repository, scan.digest, record.analysis_status)
    return JSONResponse({"id": scan_id(scan.repository, scan.digest)}, status_code=202, media_type=SCAN_RESPONSE_TYPE)


class ScanRequest:
    """A validated scan request. The credentials are kept out of its repr."""

    def __init__(
        self, host: str, repository: str, digest: str, tag: str | None, username: str | None, secret: str | None
    ) -> None:
        self.host, self.repository, self.digest, self.tag = host, repository, digest, tag
        self.username, self.secret = username, secret  # Basic: user and password; Bearer: secret is the token

    def __repr__(self) -> str:
        return f"ScanRequest({self.host}/{self.repository}@{self.digest})"


def parse_scan_request(doc: Any, config: Config) -> ScanRequest:
    """400 for a body of the wrong shape or types, 422 for a value layerscan cannot use, 501 for a
    request for what this scanner does not do (a vulnerability report, an artifact that is not an image)."""
    if not isinstance(doc, dict):
        raise HarborError(400, "the scan request must be a JSON object")
    registry, artifact = _object(doc, "registry"), _object(doc, "artifact")
    url, authorization = _string(registry, "registry.url", "url"), _string(registry, "registry.authorization")
    repository, digest = _string(artifact, "artifact.repository"), _string(artifact, "artifact.digest")
    tag, mime_type = _string(artifact, "artifact.tag"), _string(artifact, "artifact.mime_type")
    _check_capabilities(doc.get("enabled_capabilities"))
    if mime_type and mime_type not in (OCI_MANIFEST, DOCKER_MANIFEST):
        raise HarborError(501, f"artifact.mime_type {mime_type!r}: layerscan scans OCI and Docker image manifests")
    host = _registry_host(url, config)
    if not repository or not REPOSITORY.fullmatch(repository):
        raise HarborError(422, f"artifact.repository {repository!r} is not a repository name")
    if not digest or not SHA256_DIGEST.fullmatch(digest):
        raise HarborError(422, "artifact.digest must be sha256:<64 lowercase hex>")
    if tag and not TAG.fullmatch(tag):
        raise HarborError(422, f"artifact.tag {tag!r} is not a tag")
    username, secret = _credentials(authorization)
    return ScanRequest(host, repository, digest, tag or None, username, secret)


def _object(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key)
    if not isinstance(value, dict):
        raise HarborError(400, f"{key} must be an object")
    return value


def _string(doc: dict[str, Any], where: str, key: str | None = None) -> str | None:
    value = doc.get(key or where.rpartition(".")[2])
    if value is not None and not isinstance(value, str):
        raise HarborError(400, f"{where} must be a string")
    return value


def _check_capabilities(enabled: Any) -> None:
    """Without enabled_capabilities, everything the scanner offers is asked for (the spec's default)."""
    if enabled is None:
        return
    if not isinstance(enabled, list) or not all(isinstance(c, dict) for c in enabled):
        raise HarborError(400, "enabled_capabilities must be an array of objects")
    types = [c.get("type") for c in enabled]
    if not all(isinstance(t, str) for t in types):
        raise HarborError(400, "enabled_capabilities[].type must be a string")
    unknown = [t for t in types if t not in ("sbom", "vulnerability")]
    if unknown:
        raise HarborError(422, f"enabled_capabilities: unknown type {unknown[0]!r}; the spec's are sbom, vulnerability")
    if "sbom" not in types:
        raise HarborError(501, f"layerscan has only the sbom capability; asked for {', '.join(map(str, types))}")


def _registry_host(url: str | None, config: Config) -> str:
    """host[:port] of registry.url. Plain HTTP only to a registry the config calls insecure (TLS by default)."""
    if not url:
        raise HarborError(422, "registry.url is required")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a port that is not a number)
    except ValueError:
        raise HarborError(422, f"registry.url {url!r} is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.path.strip("/"):
        raise HarborError(422, f"registry.url {url!r} is not http(s)://host[:port]")
    host = parts.netloc.lower()
    settings = config.registries.get(host)
    insecure = host in config.insecure_registries or bool(settings and settings.insecure)
    if parts.scheme == "http" and not insecure:
        raise HarborError(422, f"registry {host} is plain HTTP; list it in insecure_registries to allow that")
    return host


def _credentials(authorization: str | None) -> tuple[str | None, str | None]:
    """(username, password) from `Basic …`, (None, token) from `Bearer …`, (None, None) without one."""
    if not authorization:
        return None, None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return None, value
    if scheme.lower() == "basic" and value:
        try:
            user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            sep = ""
        if sep and user:
            return user, password
        raise HarborError(422, "registry.authorization: Basic credentials are not base64 of user:password")
    raise HarborError(422, "registry.authorization must be 'Basic <base64>' or 'Bearer <token>'")


def _queue(store: Any, config: Config, scan: ScanRequest) -> ImageRecord:
    """Hand the credentials over, and submit the image (again if its last analysis failed, or if it
    was analyzed without its SBOMs: imported, or stored by an older layerscan)."""
    credentials = (
        Credentials(username=scan.username, password=scan.secret)
        if scan.username is not None
        else Credentials(token=scan.secret)
        if scan.secret is not None
        else None
    )
    if credentials is not None:  # before the job exists: a worker may take it at once
        hand_over(store, config, scan.digest, scan.host, credentials)
    known = store.get_image(scan.digest)
    force = known is not None and (
        known.analysis_status == FAILED
        or (known.analysis_status == ANALYZED and store.get_report(scan.digest, "cyclonedx") is None)
    )
    tag = f"{scan.host}/{scan.repository}:{scan.tag or 'latest'}"
    try:
        record = submit(
            store, scoped(config, scan.host, credentials) if credentials else config, tag, scan.digest, force=force
        )
    except SubmitError as e:
        store.drop_credentials(scan.digest)
        # The artifact is not there, the registry refused Harbor's credentials, or it cannot be
        # reached at the URL given: a field Harbor gave cannot be used (422, the reason says which).
        raise HarborError(422, e.reason) from None
    if record.analysis_status == ANALYZED:
        store.drop_credentials(scan.digest)  # answered from the store: nothing will pull it
    return record


def scan_id(repository: str, digest: str) -> str:
    return base64.urlsafe_b64encode(f"{repository}@{digest}".encode()).decode().rstrip("=")


def parse_scan_id(value: str) -> tuple[str, str]:
    """(repository, digest) of a scan id; 404 for one this API did not give out."""
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    repository, _, digest = text.rpartition("@")
    if not (
        REPOSITORY.fullmatch(repository) and SHA256_DIGEST.fullmatch(digest) and scan_id(repository, digest) == value
    ):
        raise HarborError(404, f"no scan {value!r}")
    return repository, digest


# ---------------------------------------------------------------------------- reports


@harbor_errors
async def scan_report(request: Request) -> Response:
    repository, digest = parse_scan_id(str(request.path_params["scan_request_id"]))
    accept = request.headers.get("accept", "")
    if accept and not _accepts_sbom(accept):
        raise HarborError(501, f"layerscan produces {SBOM_REPORT} only; Accept was {accept!r}")
    media_type = request.query_params.get("sbom_media_type")
    if media_type not in SBOM_KINDS:
        raise HarborError(400, f"sbom_media_type must be one of {', '.join(SBOM_KINDS)}")
    return await run_in_threadpool(_report, request, repository, digest, media_type)


def _accepts_sbom(accept: str) -> bool:
    types = {part.split(";", 1)[0].strip().lower() for part in accept.split(",")}
    return bool(types & {SBOM_REPORT.split(";", 1)[0], "*/*", "application/*"})


def _report(request: Request, repository: str, digest: str, media_type: str) -> Response:
    store = context_of(request).store
    record = store.get_image(digest)
    if record is None:
        raise HarborError(404, f"no scan of {repository}@{digest}")
    if record.analysis_status == FAILED:
        raise HarborError(500, f"the analysis of {digest} failed: {record.last_error}")
    sbom = store.get_report(digest, SBOM_KINDS[media_type]) if record.analysis_status == ANALYZED else None
    if sbom is None:  # waiting, being analyzed, or (re)queued to be analyzed with its SBOMs
        return Response(status_code=302, headers={"Refresh-After": str(REFRESH_AFTER_S)})
    report = {
        "generated_at": (record.analyzed_at or datetime.datetime.now(datetime.UTC)).isoformat(),
        "artifact": {"repository": repository, "digest": digest, "mime_type": _manifest_type(record)},
        "scanner": SCANNER,
        "vendor_attributes": {},
        "media_type": media_type,
        "sbom": json.loads(sbom),
    }
    return JSONResponse(report, media_type=SBOM_REPORT)


def _manifest_type(record: ImageRecord) -> str:
    try:
        found = json.loads(record.manifest).get("mediaType")
    except (ValueError, AttributeError):
        found = None
    return found if isinstance(found, str) else OCI_MANIFEST  # an OCI manifest may leave it out


ROUTES = [
    Mount(
        "/api/v1",
        routes=[
            Route("/metadata", metadata, methods=["GET"]),
            Route("/scan", accept_scan, methods=["POST"]),
            Route("/scan/{scan_request_id}/report", scan_report, methods=["GET"]),
        ],
    )
]

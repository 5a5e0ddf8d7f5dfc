"""The `registry:` source: an OCI distribution client (manifests, config, layer blobs).

Blob access only: resolve() checks the manifests and config it hands out. Nothing
touches the network or the disk before `open()`.

Every blob is sha256-checked while it streams. Transient failures (connection errors,
5xx, 429) are retried with backoff, honouring Retry-After, and an interrupted blob
resumes with Range. Redirects are followed by hand so that Authorization never reaches
a host other than the registry. Layers go through the layer cache when it is enabled,
and otherwise stream straight into the scanner without touching the disk.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import logging
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from ..config import Config
from ..errors import SourceError
from ..image import Descriptor, LayerBlob
from ..refs import ImageRef
from ..store.layers import LayerCache
from .auth import AuthError, Credentials, RegistryAuth, find_credentials
from .media import INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, SCHEMA1_MEDIA_TYPES, is_foreign, verify_digest
from .resolve import Document, Entry

log = logging.getLogger(__name__)

_ACCEPT = ", ".join([*MANIFEST_MEDIA_TYPES, *INDEX_MEDIA_TYPES])
_MANIFEST_TYPES = frozenset({*MANIFEST_MEDIA_TYPES, *INDEX_MEDIA_TYPES, *SCHEMA1_MEDIA_TYPES})
_CHUNK = 256 << 10  # what a cut connection can lose before the Range resume
_TIMEOUT = (10, 60)  # connect, read
_MAX_REDIRECTS = 5
_MAX_MANIFEST = 4 << 20  # as containerd limits manifests
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class RegistryError(SourceError):
    """The registry could not give us the image: not found, unsupported, or failing."""


class _UnverifiedTLS(HTTPAdapter):
    """The session of an insecure registry, whose requests all say verify=False: TLS from one
    context that loads no CA store. Without it urllib3 loads the system's store (~20 ms) for each
    connection, only to ignore it: a plain-HTTP registry paid that on every analysis's HTTPS try."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        super().init_poolmanager(*args, **kwargs, ssl_context=context)


class RegistryClient:
    """One repository on one registry, over one requests session (thread-safe for our use)."""

    attempts = 5  # per request, counting the first
    backoff = 0.5  # seconds, doubled per attempt
    max_wait = 30.0  # cap on backoff and Retry-After

    def __init__(self, ref: ImageRef, config: Config, credentials: Credentials | None) -> None:
        self.ref = ref
        settings = config.registries.get(ref.registry)
        insecure = ref.registry in config.insecure_registries or bool(settings and settings.insecure)
        ca_cert = (settings.ca_cert if settings else None) or config.ca_cert
        self.verify: bool | str = False if insecure else (ca_cert or True)
        self.insecure = insecure
        self.session = requests.Session()
        adapter = (_UnverifiedTLS if insecure else HTTPAdapter)(pool_maxsize=max(10, config.max_threads * 2))
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.auth = RegistryAuth(self.session, ref.registry, credentials, self.verify)
        self.base = f"https://{ref.registry}"
        self.scope = f"repository:{ref.repository}:pull"

    def close(self) -> None:
        self.session.close()

    # ------------------------------------------------------------------ requests

    def ping(self) -> None:
        """GET /v2/: proves the API is there and learns the auth scheme.

        An insecure registry is tried once over HTTPS without verification, then over plain HTTP.
        """
        if self.insecure:
            try:
                self.session.get(urljoin(self.base, "/v2/"), verify=False, timeout=_TIMEOUT).close()
            except requests.RequestException:
                log.info("registry %s: no HTTPS; it is insecure, using plain HTTP", self.ref.registry)
                self.base = f"http://{self.ref.registry}"
        self._request("GET", "/v2/", scope="").close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        scope: str | None = None,
        headers: dict | None = None,
        stream: bool = False,
        ok: tuple[int, ...] = (200,),
    ) -> requests.Response:
        """A request to the registry with auth, retries and hand-followed redirects."""
        url = urljoin(self.base, path)
        scope = self.scope if scope is None else scope
        unauthorized = 0
        for attempt in range(1, self.attempts + 1):
            try:
                resp = self._send(method, url, scope, headers or {}, stream)
            except requests.exceptions.SSLError as e:
                raise RegistryError(
                    f"registry {self.ref.registry}: TLS verification failed ({_reason(e)}); "
                    "give its CA with ca_cert, or list it in insecure_registries"
                ) from None
            except (requests.ConnectionError, requests.Timeout) as e:
                if attempt == self.attempts:
                    raise RegistryError(
                        f"registry {self.ref.registry}: {_reason(e)} (after {attempt} attempts)"
                    ) from None
                self._sleep(attempt, None, f"{method} {url}: {type(e).__name__}")
                continue
            if resp.status_code in ok:
                return resp
            resp.close()
            if resp.status_code == 401 and unauthorized == 0:
                unauthorized += 1
                self.auth.challenged(resp, scope)
                continue
            if resp.status_code in (401, 403):
                raise self.auth.refused(f"{method} {urlsplit(url).path}")
            if resp.status_code in _RETRY_STATUS and attempt < self.attempts:
                self._sleep(attempt, resp.headers.get("Retry-After"), f"{method} {url}: HTTP {resp.status_code}")
                continue
            raise RegistryError(
                f"registry {self.ref.registry}: {method} {urlsplit(url).path}: "
                f"HTTP {resp.status_code}{_error_detail(resp)}"
            )
        raise RegistryError(
            f"registry {self.ref.registry}: {method} {urlsplit(url).path}: gave up after {self.attempts} attempts"
        )

    def _send(self, method: str, url: str, scope: str, headers: dict, stream: bool) -> requests.Response:
        registry_origin = _origin(url)
        for _ in range(_MAX_REDIRECTS + 1):
            h = dict(headers)
            # Authorization goes to the registry only, never to blob storage it redirects to.
            if _origin(url) == registry_origin:
                value = self.auth.header(scope)
                if value:
                    h["Authorization"] = value
            resp = self.session.request(
                method, url, headers=h, stream=stream, allow_redirects=False, verify=self.verify, timeout=_TIMEOUT
            )
            if resp.status_code not in (301, 302, 303, 307, 308) or "Location" not in resp.headers:
                return resp
            resp.close()
            url = urljoin(url, resp.headers["Location"])
        raise RegistryError(f"registry {self.ref.registry}: more than {_MAX_REDIRECTS} redirects")

    def _sleep(self, attempt: int, retry_after: str | None, why: str) -> None:
        wait = min(self.backoff * 2 ** (attempt - 1), self.max_wait)
        if retry_after:
            wait = min(max(_retry_after_seconds(retry_after), 0.0), self.max_wait)
        log.warning("%s; retrying in %.1fs (attempt %d of %d)", why, wait, attempt + 1, self.attempts)
        time.sleep(wait)

    # ------------------------------------------------------------------ manifests and blobs

    def manifest(self, reference: str) -> tuple[bytes, str]:
        """The raw manifest or index and the media type its Content-Type gives ("" if it names none)."""
        resp = self._request("GET", f"/v2/{self.ref.repository}/manifests/{reference}", headers={"Accept": _ACCEPT})
        with resp:
            raw = resp.content
        if len(raw) > _MAX_MANIFEST:
            raise RegistryError(f"manifest {reference}: larger than {_MAX_MANIFEST} bytes")
        content_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        # Some registries say application/json: then the document's mediaType, or its shape, tells.
        return raw, content_type if content_type in _MANIFEST_TYPES else ""

    def blob(self, desc: Descriptor) -> bytes:
        """A small blob (config), read whole and verified."""
        return b"".join(self.blob_chunks(desc))

    def blob_chunks(self, desc: Descriptor, urls: tuple[str, ...] = ()) -> Iterator[bytes]:
        """The blob's bytes as they arrive, resumed with Range after a cut; raises DigestMismatch at the end if wrong.

        `urls`: fetch from these (a foreign layer) instead of the registry, without credentials.
        """
        algo, _, expected = desc.digest.partition(":")
        if algo != "sha256":
            raise RegistryError(f"blob {desc.digest}: only sha256 digests are supported")
        h = hashlib.sha256()
        got = 0
        cuts = 0
        while True:
            headers = {"Range": f"bytes={got}-"} if got else {}
            resp = self._open_blob(desc, urls, headers)
            skip = got if resp.status_code == 200 else 0  # the server ignored Range: drop what we have
            try:
                for chunk in resp.iter_content(_CHUNK):
                    if skip:
                        n = min(skip, len(chunk))
                        chunk, skip = chunk[n:], skip - n
                        if not chunk:
                            continue
                    got += len(chunk)
                    if got > desc.size:
                        raise RegistryError(f"blob {desc.digest}: more bytes than the {desc.size} its descriptor says")
                    h.update(chunk)
                    yield chunk
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError, requests.Timeout) as e:
                cuts += 1
                if cuts >= self.attempts:
                    raise RegistryError(
                        f"blob {desc.digest}: download interrupted {cuts} times ({_reason(e)})"
                    ) from None
                log.warning(
                    "blob %s: cut after %d of %d bytes (%s); resuming", desc.digest, got, desc.size, type(e).__name__
                )
                continue
            finally:
                resp.close()
            if got < desc.size:
                cuts += 1
                if cuts >= self.attempts:
                    raise RegistryError(f"blob {desc.digest}: ended after {got} of {desc.size} bytes, {cuts} times")
                log.warning("blob %s: ended after %d of %d bytes; resuming", desc.digest, got, desc.size)
                continue
            break
        verify_digest(h, desc.digest, f"blob {desc.digest}")

    def _open_blob(self, desc: Descriptor, urls: tuple[str, ...], headers: dict) -> requests.Response:
        if not urls:
            return self._request(
                "GET", f"/v2/{self.ref.repository}/blobs/{desc.digest}", headers=headers, stream=True, ok=(200, 206)
            )
        failures = []
        for url in urls:
            try:
                resp = self.session.get(url, headers=headers, stream=True, timeout=_TIMEOUT)
            except requests.RequestException as e:
                failures.append(f"{url}: {type(e).__name__}")
                continue
            if resp.status_code in (200, 206):
                return resp
            resp.close()
            failures.append(f"{url}: HTTP {resp.status_code}")
        raise RegistryError(f"foreign layer {desc.digest}: no URL served it ({'; '.join(failures)})")


class RegistrySource:
    """Blobs of one repository of a registry, starting at the manifest or index `ref` names.

    Layers go through the layer cache when it is enabled, else they stream. Foreign layers
    are fetched from their urls, as Anchore does, unless config.fetch_foreign_layers is off.
    """

    def __init__(self, ref: ImageRef, config: Config) -> None:
        self.ref = ref
        self.name = str(ref)
        self._config = config
        self._client: RegistryClient | None = None
        self._cache: LayerCache | None = None

    @property
    def client(self) -> RegistryClient:
        if self._client is None:
            raise RuntimeError(f"{self.name}: not opened")
        return self._client

    def open(self) -> Document:
        """Find credentials, ping the registry, open the layer cache, and fetch the manifest `ref` names."""
        config = self._config
        self._client = RegistryClient(self.ref, config, find_credentials(self.ref.registry, config))
        self._client.ping()
        self._cache = LayerCache.from_config(config)
        raw, media_type = self._client.manifest(self.ref.reference)
        return Document(raw, "manifest", media_type, self.ref.digest)

    def entry(self, entry: Entry) -> Document:
        raise AssertionError("a registry reference names one manifest or index: there is no listing")

    def manifest(self, desc: Descriptor) -> Document:
        raw, media_type = self.client.manifest(desc.digest)
        return Document(raw, "manifest", desc.media_type or media_type, desc.digest, desc.size)

    def blob(self, desc: Descriptor, what: str) -> bytes:
        return self.client.blob(desc)

    @contextlib.contextmanager
    def layer(self, desc: Descriptor) -> Iterator[LayerBlob | None]:
        fetch: Callable[[], Iterator[bytes]]
        if is_foreign(desc):
            fetch_foreign = self._config.fetch_foreign_layers
            if not (fetch_foreign and desc.urls):
                log.warning(
                    "layer %s (%s) is foreign and %s: skipped",
                    desc.digest,
                    desc.media_type,
                    "has no urls" if fetch_foreign else "fetching foreign layers is off",
                )
                yield None
                return
            fetch = lambda: self.client.blob_chunks(desc, desc.urls)  # noqa: E731
        else:
            fetch = lambda: self.client.blob_chunks(desc)  # noqa: E731
        if self._cache is None:
            # blob_chunks() checks the sha256 as it streams and raises before its last chunk
            # is consumed, so the scanner need not hash the same bytes a second time.
            yield LayerBlob(fetch(), verified=True)
            return
        with self._cache.layer(desc.digest, desc.size, fetch) as blob:
            yield blob

    def image_names(
        self, entry: Entry | None, manifest_digest: str, config_digest: str
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return tuple(t for t in (self.ref.repo_tag(),) if t), (self.ref.repo_digest(manifest_digest),)

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
        if self._client is not None:
            self._client.close()


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def _retry_after_seconds(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return when.timestamp() - time.time() if when else 0.0


def _reason(e: Exception) -> str:
    """The innermost cause of a requests error, on one line."""
    while e.args and isinstance(e.args[0], Exception):
        e = e.args[0]
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text[:300]


def _error_detail(resp: requests.Response) -> str:
    """The registry's own error code (NAME_UNKNOWN, MANIFEST_UNKNOWN...), when it gives one."""
    try:
        errors = resp.json().get("errors") or []
        codes = ", ".join(str(e.get("code")) for e in errors if isinstance(e, dict))
    except (ValueError, AttributeError):
        return ""
    return f" ({codes})" if codes else ""


__all__ = ["AuthError", "RegistryClient", "RegistryError", "RegistrySource"]

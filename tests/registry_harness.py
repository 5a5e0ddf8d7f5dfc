"""A real registry for tests: Debian's docker-registry on loopback, and what goes around it.

* `RegistryServer`: /usr/bin/docker-registry with a generated config (anonymous,
  htpasswd, token, TLS), on a free loopback port, over a storage dir that several
  servers may share (push once, serve it with every auth flavour).
* `push_layout` / `push_index`: our own pusher over the registry API (monolithic or
  chunked blob uploads, then manifest PUT).
* `TokenServer`: a token endpoint issuing RS256 JWTs signed by a test key whose
  certificate the registry trusts.
* `make_ca`: a test CA and a server certificate for 127.0.0.1.
* `FaultProxy`: a threaded HTTP proxy in front of a registry that counts blob GETs
  per digest and injects faults (cut, 5xx, 429, corrupt byte, redirect to 127.0.0.2,
  a schema 1 manifest).
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import datetime
import hashlib
import http.client
import http.server
import json
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests
import yaml

REGISTRY_BIN = "/usr/bin/docker-registry"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_CHUNK = 1 << 20


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(host: str, port: int, timeout: float = 15.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout}s")


# ---------------------------------------------------------------------------- the registry


class RegistryServer:
    """One docker-registry process. `auth` is the registry config's `auth:` section (or None)."""

    def __init__(
        self, workdir: Path, storage: Path, *, auth: dict | None = None, tls: tuple[Path, Path] | None = None
    ) -> None:
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"{'https' if tls else 'http'}://{self.host}"
        workdir.mkdir(parents=True, exist_ok=True)
        http_section: dict = {"addr": self.host, "secret": uuid.uuid4().hex}
        if tls:
            http_section["tls"] = {"certificate": str(tls[0]), "key": str(tls[1])}
        config = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
            "http": http_section,
        }
        if auth:
            config["auth"] = auth
        self.config_path = workdir / "config.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = workdir / "registry.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [REGISTRY_BIN, "serve", str(self.config_path)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            wait_port("127.0.0.1", self.port, proc=self.proc)
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"docker-registry did not start: {self.log_path.read_text()[-2000:]}") from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def htpasswd_file(path: Path, users: dict[str, str]) -> Path:
    lines = [
        subprocess.run(["htpasswd", "-Bbn", u, p], check=True, capture_output=True, text=True).stdout.strip()
        for u, p in users.items()
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------------------- pushing


def push_blob(session: requests.Session, base: str, repo: str, digest: str, data: bytes, *, chunk: int = 0) -> None:
    """Upload one blob: monolithic PUT, or PATCH chunks of `chunk` bytes then PUT."""
    if session.head(f"{base}/v2/{repo}/blobs/{digest}").status_code == 200:
        return
    resp = session.post(f"{base}/v2/{repo}/blobs/uploads/")
    resp.raise_for_status()
    location = requests.compat.urljoin(base, resp.headers["Location"])
    if chunk:
        for start in range(0, len(data), chunk):
            part = data[start : start + chunk]
            resp = session.patch(
                location,
                data=part,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{start}-{start + len(part) - 1}",
                },
            )
            resp.raise_for_status()
            location = requests.compat.urljoin(base, resp.headers["Location"])
        data = b""
    sep = "&" if "?" in location else "?"
    resp = session.put(
        f"{location}{sep}digest={digest}", data=data, headers={"Content-Type": "application/octet-stream"}
    )
    resp.raise_for_status()


def push_manifest(session: requests.Session, base: str, repo: str, reference: str, raw: bytes, media_type: str) -> str:
    resp = session.put(f"{base}/v2/{repo}/manifests/{reference}", data=raw, headers={"Content-Type": media_type})
    resp.raise_for_status()
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def layout_manifest(layout: Path) -> tuple[bytes, dict]:
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"]
    raw = _blob_path(layout, digest).read_bytes()
    return raw, json.loads(raw)


def _blob_path(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest.split(":", 1)[1]


def push_layout(session: requests.Session, base: str, repo: str, tag: str, layout: Path, *, chunk: int = 0) -> str:
    """Push the image of an OCI layout (its one manifest) as repo:tag; returns the manifest digest."""
    raw, manifest = layout_manifest(layout)
    for desc in [manifest["config"], *manifest["layers"]]:
        push_blob(session, base, repo, desc["digest"], _blob_path(layout, desc["digest"]).read_bytes(), chunk=chunk)
    return push_manifest(session, base, repo, tag, raw, manifest.get("mediaType", OCI_MANIFEST))


def push_index(session: requests.Session, base: str, repo: str, tag: str, images: list[tuple[Path, dict]]) -> str:
    """Push several layouts by digest into `repo` and an OCI index of them (platform dicts given) as `tag`."""
    manifests = []
    for layout, platform in images:
        raw, manifest = layout_manifest(layout)
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        for desc in [manifest["config"], *manifest["layers"]]:
            push_blob(session, base, repo, desc["digest"], _blob_path(layout, desc["digest"]).read_bytes())
        push_manifest(session, base, repo, digest, raw, OCI_MANIFEST)
        manifests.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": len(raw), "platform": platform})
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).encode()
    return push_manifest(session, base, repo, tag, index, OCI_INDEX)


def storage_blob(storage: Path, digest: str) -> Path:
    hex_ = digest.split(":", 1)[1]
    return storage / "docker" / "registry" / "v2" / "blobs" / "sha256" / hex_[:2] / hex_ / "data"


# ---------------------------------------------------------------------------- certificates


@dataclasses.dataclass(frozen=True)
class Certs:
    ca_cert: Path
    server_cert: Path
    server_key: Path


def _key():
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


def self_signed(common_name: str):
    """A self-signed CA certificate and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_ca(directory: Path) -> Certs:
    """A test CA and a server certificate it signed for 127.0.0.1 and localhost."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = self_signed("layerscan test CA")
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    certs = Certs(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    certs.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    certs.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    certs.server_key.write_bytes(_pem_key(key))
    return certs


# ---------------------------------------------------------------------------- small threaded HTTP servers


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def _serve(
    host: str, handler: type[http.server.BaseHTTPRequestHandler], owner: object
) -> tuple[_Server, threading.Thread]:
    server = _Server((host, 0), handler)
    server.owner = owner  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, name=f"{type(owner).__name__}", daemon=True)
    thread.start()
    return server, thread


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass

    def send_body(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


# ---------------------------------------------------------------------------- token server


class TokenServer:
    """A Docker token endpoint: GET /token?service=&scope= with optional Basic auth -> a signed JWT.

    `users` may pull; with `anonymous`, anyone may. Counts the tokens it issued.
    """

    issuer = "layerscan-test-issuer"
    service = "layerscan-test-registry"

    def __init__(
        self, directory: Path, users: dict[str, str], *, anonymous: bool = False, expires_in: int = 300
    ) -> None:
        from cryptography.hazmat.primitives import serialization

        self.users = users
        self.refresh_tokens: dict[str, str] = {}  # identity token -> user
        self.anonymous = anonymous
        self.expires_in = expires_in
        self.issued: list[tuple[str, str]] = []  # (subject, scope)
        cert, self._key = self_signed("layerscan test token signer")
        self._x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
        directory.mkdir(parents=True, exist_ok=True)
        self.cert_path = directory / "token-signer.pem"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._server, self._thread = _serve("127.0.0.1", _TokenHandler, self)
        self.realm = f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def registry_auth(self) -> dict:
        return {
            "token": {
                "realm": self.realm,
                "service": self.service,
                "issuer": self.issuer,
                "rootcertbundle": str(self.cert_path),
            }
        }

    def token(self, subject: str, scope: str) -> str:
        import jwt

        access = []
        for item in scope.split(" ") if scope else []:
            kind, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "iat": now,
            "nbf": now - 5,
            "exp": now + self.expires_in,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        self.issued.append((subject, scope))
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"x5c": self._x5c})

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _TokenHandler(_Handler):
    def do_POST(self) -> None:
        """OAuth2 refresh-token grant (Docker's identity tokens): `refresh_tokens` maps a token to its user."""
        owner: TokenServer = self.server.owner  # type: ignore[attr-defined]
        form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode())
        user = owner.refresh_tokens.get(form.get("refresh_token", [""])[0])
        if form.get("grant_type") != ["refresh_token"] or user is None:
            self.send_body(401, b'{"details":"bad refresh token"}', {"Content-Type": "application/json"})
            return
        body = json.dumps(
            {"access_token": owner.token(user, " ".join(form.get("scope", []))), "expires_in": owner.expires_in}
        ).encode()
        self.send_body(200, body, {"Content-Type": "application/json"})

    def do_GET(self) -> None:
        owner: TokenServer = self.server.owner  # type: ignore[attr-defined]
        query = parse_qs(urlsplit(self.path).query)
        subject = ""
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            if owner.users.get(user) != password:
                self.send_body(401, b'{"details":"bad credentials"}', {"Content-Type": "application/json"})
                return
            subject = user
        elif not owner.anonymous:
            self.send_body(401, b'{"details":"credentials required"}', {"Content-Type": "application/json"})
            return
        scope = " ".join(query.get("scope", []))
        body = json.dumps({"token": owner.token(subject, scope), "expires_in": owner.expires_in}).encode()
        self.send_body(200, body, {"Content-Type": "application/json"})


# ---------------------------------------------------------------------------- fault-injecting proxy


@dataclasses.dataclass
class Fault:
    """One fault for blob GETs of `digest` (any blob when None), applied `times` times (-1: always).

    kind: "cut" (close after `at` bytes), "status" (answer `status`, with Retry-After when
    `retry_after` is set), "corrupt" (flip the byte at `at`), "redirect" (307 to the blob
    host on 127.0.0.2), "manifest" (manifest GETs answered with `body`, as `media_type`).
    """

    kind: str
    digest: str | None = None
    times: int = 1
    at: int = 0
    status: int = 500
    retry_after: str | None = None
    body: bytes = b""
    media_type: str = OCI_MANIFEST


class FaultProxy:
    """A loopback HTTP proxy in front of a registry, with a blob host on 127.0.0.2 for redirects."""

    def __init__(self, upstream: str, storage: Path) -> None:
        self.upstream = urlsplit(upstream)
        self.storage = storage
        self.faults: list[Fault] = []
        self.blob_gets: collections.Counter[str] = collections.Counter()  # digest -> GETs reaching the proxy
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range)
        self.lock = threading.Lock()
        self._server, _ = _serve("127.0.0.1", _ProxyHandler, self)
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self.url = f"http://{self.host}"
        self.blob_host = BlobHost(storage)

    def reset(self) -> None:
        with self.lock:
            self.faults.clear()
            self.blob_gets.clear()
            self.requests.clear()
        self.blob_host.reset()

    def take_fault(self, digest: str | None, kinds: tuple[str, ...]) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.kind in kinds and fault.times != 0 and fault.digest in (None, digest):
                    if fault.times > 0:
                        fault.times -= 1
                    return fault
        return None

    def layer_gets(self, digests: list[str]) -> dict[str, int]:
        with self.lock:
            return {d: self.blob_gets[d] for d in digests}

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.blob_host.stop()


_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "proxy-authorization",
        "proxy-authenticate",
        "host",
    }
)
SCHEMA1 = json.dumps(
    {
        "schemaVersion": 1,
        "name": "x",
        "tag": "latest",
        "architecture": "amd64",
        "fsLayers": [],
        "history": [],
        "signatures": [],
    }
).encode()


class _ProxyHandler(_Handler):
    def do_GET(self) -> None:
        self._forward()

    def do_HEAD(self) -> None:
        self._forward()

    def _forward(self) -> None:
        proxy: FaultProxy = self.server.owner  # type: ignore[attr-defined]
        path = urlsplit(self.path).path
        digest = path.rsplit("/", 1)[1] if "/blobs/sha256:" in path else None
        with proxy.lock:
            proxy.requests.append((self.command, path, self.headers.get("Range")))
            if digest and self.command == "GET":
                proxy.blob_gets[digest] += 1
        manifest_fault = proxy.take_fault(None, ("manifest",)) if "/manifests/" in path else None
        if manifest_fault:
            self.send_body(200, manifest_fault.body, {"Content-Type": manifest_fault.media_type})
            return
        fault = proxy.take_fault(digest, ("status", "redirect")) if digest else None
        if fault and fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            self.send_body(fault.status, b'{"errors":[{"code":"UNAVAILABLE"}]}', headers)
            return
        if fault and fault.kind == "redirect":
            self.send_body(307, b"", {"Location": f"{proxy.blob_host.url}/blobs/{digest}?sig=test"})
            return
        conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        conn.request(self.command, self.path, headers=headers)
        up = conn.getresponse()
        stream_fault = proxy.take_fault(digest, ("cut", "corrupt")) if digest and up.status in (200, 206) else None
        self.send_response(up.status)
        body = None if up.getheader("Content-Length") is not None else up.read()
        for k, v in up.getheaders():
            if k.lower() not in _HOP_BY_HOP and not (body is not None and k.lower() == "content-length"):
                self.send_header(k, v)
        if body is not None:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            conn.close()
            return
        if body is not None:
            self.wfile.write(body)
            conn.close()
            return
        sent = 0
        try:
            while chunk := up.read(64 << 10):
                if stream_fault and stream_fault.kind == "cut" and sent + len(chunk) > stream_fault.at:
                    self.wfile.write(chunk[: stream_fault.at - sent])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if stream_fault and stream_fault.kind == "corrupt" and sent <= stream_fault.at < sent + len(chunk):
                    i = stream_fault.at - sent
                    chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1 :]
                self.wfile.write(chunk)
                sent += len(chunk)
        finally:
            conn.close()


class BlobHost:
    """Blob storage on 127.0.0.2 (another host, as S3 would be): serves registry blobs from disk, records headers."""

    def __init__(self, storage: Path) -> None:
        self.storage = storage
        self.seen: list[dict[str, str]] = []  # headers of every request
        self._server, _ = _serve("127.0.0.2", _BlobHandler, self)
        self.url = f"http://127.0.0.2:{self._server.server_address[1]}"

    def reset(self) -> None:
        self.seen.clear()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _BlobHandler(_Handler):
    def do_GET(self) -> None:
        owner: BlobHost = self.server.owner  # type: ignore[attr-defined]
        owner.seen.append(dict(self.headers.items()))
        digest = urlsplit(self.path).path.rsplit("/", 1)[1]
        try:
            data = storage_blob(owner.storage, digest).read_bytes()
        except FileNotFoundError:
            self.send_body(404, b"")
            return
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            self.send_body(206, data[start:], {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"})
        else:
            self.send_body(200, data)


def iter_layer_digests(layout: Path) -> Iterator[str]:
    _, manifest = layout_manifest(layout)
    for desc in manifest["layers"]:
        yield desc["digest"]

"""What the service tests run against: small images that share base layers, pushed to a real
registry; a throttling proxy in front of it (a slow registry, so that an analysis is reliably
still running when a test kills its worker); and `layerscan worker` processes."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import requests
import yaml

from imagebuilder import Image, Layer, blob_name, d, f, oci_layout
from registry_harness import OCI_MANIFEST, FaultProxy, RegistryServer, _Handler, _serve, push_blob, push_manifest

# ---------------------------------------------------------------------------- images


def base_layers() -> list[Layer]:
    """Two layers every test image shares: a Debian-like base with two dpkg packages, and a Python package."""
    status = (
        b"Package: base-files\nStatus: install ok installed\nVersion: 12.4\nArchitecture: amd64\n"
        b"Maintainer: Santiago Vila <sanvila@debian.org>\nInstalled-Size: 390\n\n"
        b"Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2\nArchitecture: amd64\n"
        b"Maintainer: Matthias Klose <doko@debian.org>\nInstalled-Size: 7164\n\n"
    )
    os_release = b'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'
    filler = bytes(range(256)) * 2048  # 512 KiB, so that a layer takes a while through the throttle
    return [
        Layer(
            [
                d("etc"),
                f("etc/os-release", os_release),
                f("etc/passwd", b"root:x:0:0:root:/root:/bin/bash\n"),
                d("usr"),
                d("usr/lib"),
                f("usr/lib/filler.bin", filler),
                d("var"),
                d("var/lib"),
                d("var/lib/dpkg"),
                f("var/lib/dpkg/status", status),
            ]
        ),
        Layer(
            [
                d("usr/lib/python3"),
                d("usr/lib/python3/dist-packages"),
                d("usr/lib/python3/dist-packages/six-1.16.0.dist-info"),
                f(
                    "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
                    b"Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\nLicense: MIT\n",
                ),
                f("usr/lib/python3/dist-packages/six.py", b"# six\n"),
            ],
            "zstd",
        ),
    ]


def app_secret(n: int) -> str:
    """A made-up AWS secret key that looks random, as a real one does (AAA…A is an example to the allow rules)."""
    return base64.b64encode(hashlib.sha256(b"app%d" % n).digest()).decode()[:40]


def app_image(n: int) -> Image:
    """The shared base plus one layer of its own (an npm package and a planted secret)."""
    package = json.dumps({"name": f"app-{n}", "version": f"1.0.{n}", "license": "MIT"}).encode()
    secret = f"aws_secret_access_key = {app_secret(n)}\n".encode()
    top = Layer([d("app"), f("app/package.json", package), f("app/.env", secret), f(f"app/n{n}.txt", b"%d\n" % n)])
    return Image([*base_layers(), top], config={"Cmd": ["node", "app"]})


@contextlib.contextmanager
def app_registry(work: Path, count: int) -> Iterator[tuple[FaultProxy, list[list[str]]]]:
    """A real registry holding apps/app0..app{count-1}:latest (app_image), behind a proxy that counts
    blob GETs: (the proxy, each image's layer digests)."""
    server = RegistryServer(work, work / "storage")
    proxy = FaultProxy(server.url, work / "storage")
    try:
        yield proxy, [push_image(server.url, f"apps/app{n}", "latest", app_image(n))[1] for n in range(count)]
    finally:
        proxy.stop()
        server.stop()


def push_image(registry_url: str, repo: str, tag: str, image: Image) -> tuple[str, list[str]]:
    """Push one image; its manifest digest and layer digests."""
    files = oci_layout([image])
    index = json.loads(files["index.json"])
    manifest_digest = index["manifests"][0]["digest"]
    raw = files[blob_name(manifest_digest)]
    assert isinstance(raw, bytes)
    manifest = json.loads(raw)
    with requests.Session() as s:
        for desc in [manifest["config"], *manifest["layers"]]:
            data = files[blob_name(desc["digest"])]
            assert isinstance(data, bytes)
            push_blob(s, registry_url, repo, desc["digest"], data)
        push_manifest(s, registry_url, repo, tag, raw, OCI_MANIFEST)
    return manifest_digest, [x["digest"] for x in manifest["layers"]]


# ---------------------------------------------------------------------------- a slow registry


class ThrottleProxy:
    """A loopback HTTP proxy in front of a registry that holds every blob GET back `delay` seconds,
    and, between hold() and release(), until release(): a client that needs a blob meanwhile is
    certainly mid-job, whatever the machine's speed."""

    def __init__(self, upstream: str, delay: float) -> None:
        self.upstream = urlsplit(upstream)
        self.delay = delay
        self.gate = threading.Event()
        self.gate.set()
        self._server, _ = _serve("127.0.0.1", _ThrottleHandler, self)
        self.host = f"127.0.0.1:{self._server.server_address[1]}"

    def hold(self) -> None:
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    def stop(self) -> None:
        self.gate.set()
        self._server.shutdown()
        self._server.server_close()


class _ThrottleHandler(_Handler):
    def do_GET(self) -> None:
        self._forward()

    def do_HEAD(self) -> None:
        self._forward()

    def _forward(self) -> None:
        proxy: ThrottleProxy = self.server.owner  # type: ignore[attr-defined]
        if "/blobs/" in self.path:
            proxy.gate.wait(120)
            time.sleep(proxy.delay)
        conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            conn.request(self.command, self.path, headers=headers)
            up = conn.getresponse()
            body = up.read()
            passed = {
                k: v
                for k, v in up.getheaders()
                if k.lower() not in ("content-length", "transfer-encoding", "connection")
            }
            if self.command == "HEAD":
                self.send_response(up.status)
                for k, v in passed.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", up.getheader("Content-Length") or "0")
                self.end_headers()
            else:
                self.send_body(up.status, body, passed)
        finally:
            conn.close()


# ---------------------------------------------------------------------------- service config and worker processes


STATUS_PASSWORD = "worker-status-secret"


def service_config(directory: Path, registry_host: str, **analyzer: object) -> Path:
    """A config.yaml for a service in `directory` (SQLite state, scratch space) pulling from `registry_host`."""
    settings = {"cycle_timer_seconds": 1, "max_threads": 1, "lease_seconds": 3, "max_attempts": 2, "port": 0}
    settings.update(analyzer)
    doc = {
        "tmp_dir": str(directory / "scratch"),
        "service_dir": str(directory / "service"),
        "insecure_registries": [registry_host],
        "default_admin_password": STATUS_PASSWORD,  # the worker's status port requires auth
        "services": {"analyzer": settings},
    }
    (directory / "scratch").mkdir(parents=True, exist_ok=True)
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


class WorkerProcess:
    """`layerscan worker --config CONFIG` in its own process, its log in a file."""

    count = 0

    def __init__(self, config: Path, *extra: str) -> None:
        WorkerProcess.count += 1
        self.log_path = config.parent / f"worker-{WorkerProcess.count}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "layerscan", "worker", "--config", str(config), *extra],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.worker_prefix = f"{socket.gethostname()}-{self.proc.pid}-"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def analyzed(self) -> list[str]:
        """The digests this worker stored analyses of, from its log."""
        return re.findall(r": analyzed (sha256:[0-9a-f]{64}) in ", self.log())

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def terminate(self, timeout: float = 30) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self._log.close()
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if not self._log.closed:
            self._log.close()


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)

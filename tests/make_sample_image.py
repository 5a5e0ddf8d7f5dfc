"""Regenerate examples/sample-image: a small, deterministic OCI layout for `make demo`.

    .venv/bin/python tests/make_sample_image.py [OUTDIR]

Three layers over a Debian-like root: dpkg status, a Node app with a package.json,
a Python dist-info, planted FAKE secrets (one in a file a later layer deletes, one
reached through a symlink) and whiteouts. Same bytes on every run: fixed mtimes,
sorted entries, numeric owners, gzip without a timestamp.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "examples" / "sample-image"
MTIME = 1_700_000_000

# Made-up values in the shapes scanners look for; none of them is a real credential. They look
# random, as real ones do: a value that says "sample" or "fake" is an example to the allow rules.
FAKE_AWS_ID = "AKIA" + "Z7QK3WVN8RT2XM5L"
FAKE_AWS_SECRET = "Vq3Lm8Zr2Tw7Xb4Nc9Hd1Fs6Gy0Ua5Ei3KoPj7Rx"
FAKE_GITHUB = "ghp_" + "Tq4Zm8Lr2Xw7Vb3Nc9Hd6Fs1Gy5Ua0Ei2KoP"

DPKG_STATUS = """\
Package: base-files
Status: install ok installed
Priority: required
Section: admin
Installed-Size: 340
Maintainer: Santiago Vila <sanvila@debian.org>
Architecture: amd64
Version: 12.4+deb12u5
Description: Debian base system miscellaneous files

Package: hello
Status: install ok installed
Priority: optional
Section: devel
Installed-Size: 280
Maintainer: Santiago Vila <sanvila@debian.org>
Architecture: amd64
Version: 2.10-3
Description: example package based on GNU hello

"""

LAYERS: list[list[tuple[str, str, int, bytes | str]]] = [
    # (kind, path, mode, content or link target)
    [
        ("dir", "bin", 0o755, b""),
        ("dir", "etc", 0o755, b""),
        ("dir", "usr", 0o755, b""),
        ("dir", "usr/bin", 0o755, b""),
        ("dir", "usr/lib", 0o755, b""),
        ("dir", "var", 0o755, b""),
        ("dir", "var/lib", 0o755, b""),
        ("dir", "var/lib/dpkg", 0o755, b""),
        ("dir", "var/lib/dpkg/info", 0o755, b""),
        ("file", "bin/hello", 0o755, b"#!/bin/sh\necho hello\n"),
        ("file", "etc/debian_version", 0o644, b"12.5\n"),
        ("file", "etc/motd", 0o644, b"Welcome to the layerscan sample image.\n"),
        ("symlink", "etc/os-release", 0o777, "../usr/lib/os-release"),
        ("file", "etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n"),
        ("file", "usr/bin/su", 0o4755, b"\x7fELF fake setuid binary\n"),
        (
            "file",
            "usr/lib/os-release",
            0o644,
            b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n',
        ),
        ("file", "var/lib/dpkg/info/base-files.list", 0o644, b"/etc/debian_version\n/usr/lib/os-release\n"),
        ("file", "var/lib/dpkg/info/hello.list", 0o644, b"/bin/hello\n"),
        ("file", "var/lib/dpkg/status", 0o644, DPKG_STATUS.encode()),
    ],
    [
        ("dir", "app", 0o755, b""),
        ("dir", "app/node_modules", 0o755, b""),
        ("dir", "app/node_modules/left-pad", 0o755, b""),
        ("dir", "root", 0o700, b""),
        ("dir", "root/.aws", 0o700, b""),
        ("dir", "usr/lib/python3", 0o755, b""),
        ("dir", "usr/lib/python3/dist-packages", 0o755, b""),
        ("dir", "usr/lib/python3/dist-packages/sample_tool-1.2.0.dist-info", 0o755, b""),
        ("file", "app/.env", 0o600, f"NODE_ENV=production\nGITHUB_TOKEN={FAKE_GITHUB}\n".encode()),
        (
            "file",
            "app/node_modules/left-pad/package.json",
            0o644,
            b'{"name": "left-pad", "version": "1.3.0", "license": "WTFPL"}\n',
        ),
        (
            "file",
            "app/package.json",
            0o644,
            b'{"name": "sample-app", "version": "0.1.0", "dependencies": {"left-pad": "1.3.0"}}\n',
        ),
        ("file", "app/server.js", 0o644, b"console.log('sample');\n"),
        (
            "file",
            "root/.aws/credentials",
            0o600,
            f"[default]\naws_access_key_id = {FAKE_AWS_ID}\naws_secret_access_key = {FAKE_AWS_SECRET}\n".encode(),
        ),
        (
            "file",
            "usr/lib/python3/dist-packages/sample_tool-1.2.0.dist-info/METADATA",
            0o644,
            b"Metadata-Version: 2.1\nName: sample-tool\nVersion: 1.2.0\nLicense: MIT\n",
        ),
        (
            "file",
            "usr/lib/python3/dist-packages/sample_tool-1.2.0.dist-info/RECORD",
            0o644,
            b"sample_tool-1.2.0.dist-info/METADATA,,\n",
        ),
    ],
    [
        ("dir", "app", 0o755, b""),
        ("dir", "etc", 0o755, b""),
        ("dir", "root/.aws", 0o700, b""),
        ("symlink", "app/current.env", 0o777, ".env"),
        ("whiteout", "etc/.wh.motd", 0o644, b""),
        ("whiteout", "root/.aws/.wh.credentials", 0o644, b""),
    ],
]


def layer_tar(members: list[tuple[str, str, int, bytes | str]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for kind, path, mode, data in sorted(members, key=lambda m: m[1]):
            ti = tarfile.TarInfo(path + ("/" if kind == "dir" else ""))
            ti.mode, ti.mtime, ti.uid, ti.gid = mode, MTIME, 0, 0
            if path == "app/.env":
                ti.uid = ti.gid = 1000
            payload = data if kind == "file" else b""
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
            elif kind == "symlink":
                ti.type, ti.linkname = tarfile.SYMTYPE, str(data)
            ti.size = len(payload)  # type: ignore[arg-type]
            tf.addfile(ti, io.BytesIO(payload) if payload else None)  # type: ignore[arg-type]
    return buf.getvalue()


def write_blob(out: Path, data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    (out / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def main(out: Path = OUT) -> None:
    if out.exists():
        shutil.rmtree(out)
    (out / "blobs" / "sha256").mkdir(parents=True)
    layers, diff_ids, history = [], [], []
    for i, members in enumerate(LAYERS):
        tar = layer_tar(members)
        diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
        blob = gzip.compress(tar, compresslevel=9, mtime=0)
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **write_blob(out, blob)})
        history.append({"created": "2023-11-14T22:13:20Z", "created_by": f"sample layer {i}"})
    history.append(
        {
            "created": "2023-11-14T22:13:20Z",
            "created_by": '/bin/sh -c #(nop)  CMD ["node","server.js"]',
            "empty_layer": True,
        }
    )
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"User": "app", "WorkingDir": "/app", "Cmd": ["node", "server.js"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }
    config_desc = {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        **write_blob(out, json.dumps(config, sort_keys=True).encode()),
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc,
        "layers": layers,
    }
    manifest_desc = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        **write_blob(out, json.dumps(manifest, sort_keys=True).encode()),
        "annotations": {"org.opencontainers.image.ref.name": "latest"},
        "platform": {"architecture": "amd64", "os": "linux"},
    }
    (out / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (out / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [manifest_desc]}, sort_keys=True))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)

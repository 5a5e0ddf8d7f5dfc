"""Anchore Engine's own analyzer as the reference for the Anchore export.

The harness in ../shared/tools/anchore-engine runs the archived engine's analyzer,
unmodified, on a local OCI layout. It is set up once by hand (its README), since it needs
the engine's sources and a Python 3.8 interpreter; without it the tests that use it skip.

The engine cannot read zstd or uncompressed layers (anchore-compat.md), so it is given a
gzip-only copy of an image: the same config and layer contents, each layer gzipped.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pyzstd

from conftest import SHARED

HARNESS = SHARED / "tools" / "anchore-engine"
_READY = (HARNESS / "work" / "venv" / "bin" / "python", HARNESS / "work" / "bin" / "syft", HARNESS / "work" / "src")
NOT_READY = (
    f"needs Anchore Engine's analyzer set up at {HARNESS}/work (run its setup.sh with the "
    "anchore-engine sources, see its README); CI has no Anchore sources"
)

_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def harness_ready() -> bool:
    return all(p.exists() for p in _READY)


def run_engine(oci_dir: Path, out: Path) -> dict[str, Any]:
    """The engine's export of `oci_dir`: its imagedata. Its work files go next to `out`.
    Raises EngineFailed when the engine cannot analyze the image."""
    env = {**os.environ, "ANC_WORK": str(out.parent / f"{out.stem}-work")}
    run = subprocess.run(
        [str(HARNESS / "run.sh"), str(oci_dir), str(out)], capture_output=True, text=True, timeout=900, env=env
    )
    if run.returncode != 0:
        raise EngineFailed(run.stderr.strip().splitlines()[-1] if run.stderr.strip() else f"exit {run.returncode}")
    return imagedata(json.loads(out.read_text()))


class EngineFailed(Exception):
    pass


def imagedata(export: list[dict[str, Any]]) -> dict[str, Any]:
    return export[0]["image"]["imagedata"]


def gzip_only_copy(src: Path, dst: Path) -> Path:
    """A copy of the OCI layout `src` whose layers are all gzip: zstd ones decompressed and
    gzipped, uncompressed ones gzipped. The config (and so the diff_ids) is unchanged."""
    blobs = dst / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    index = json.loads((src / "index.json").read_text())
    descriptor = index["manifests"][0]
    manifest = json.loads(_blob(src, descriptor["digest"]))
    shutil.copyfile(
        src / "blobs" / "sha256" / _hex(manifest["config"]["digest"]), blobs / _hex(manifest["config"]["digest"])
    )
    for layer in manifest["layers"]:
        data = _blob(src, layer["digest"])
        if layer["mediaType"].endswith("+zstd"):
            data = gzip.compress(pyzstd.decompress(data), mtime=0)
        elif not layer["mediaType"].endswith("+gzip"):
            data = gzip.compress(data, mtime=0)
        layer.update(mediaType=_GZIP, digest=_write(blobs, data), size=len(data))
    raw = json.dumps(manifest, separators=(",", ":")).encode()
    descriptor.update(digest=_write(blobs, raw), size=len(raw))
    (dst / "index.json").write_text(json.dumps(index))
    shutil.copyfile(src / "oci-layout", dst / "oci-layout")
    return dst


def _hex(digest: str) -> str:
    return digest.split(":", 1)[1]


def _blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / _hex(digest)).read_bytes()


def _write(blobs: Path, data: bytes) -> str:
    hex_ = hashlib.sha256(data).hexdigest()
    (blobs / hex_).write_bytes(data)
    return f"sha256:{hex_}"


Section = tuple[str, str]  # (analyzer, element), or ("image_report", key)


def sections(doc: dict[str, Any]) -> dict[Section, dict[str, Any]]:
    """An export's imagedata as {section: {key: decoded value}}: every analysis_report
    element, and each image_report entry as a section of its own."""
    out: dict[Section, dict[str, Any]] = {}
    for analyzer, elements in doc["analysis_report"].items():
        for element, body in elements.items():
            out[(analyzer, element)] = {k: _decoded(v) for k, v in body["base"].items()}
    for key, value in doc["image_report"].items():
        out[("image_report", key)] = value if isinstance(value, dict) else {"": value}
    return out


def equality(ours: dict[Section, dict[str, Any]], engine: dict[Section, dict[str, Any]]) -> dict[Section, float]:
    """Per section, the % of keys (of both exports) whose values are equal; 100 for a
    section both leave empty, 0 for one only one of them has."""
    out = {}
    for section in sorted(ours.keys() | engine.keys()):
        a, b = ours.get(section), engine.get(section)
        if a is None or b is None:
            out[section] = 0.0
            continue
        keys = a.keys() | b.keys()
        same = sum(1 for k in keys if k in a and k in b and a[k] == b[k])
        out[section] = 100.0 * same / len(keys) if keys else 100.0
    return out


def differences(ours: dict[Section, dict[str, Any]], engine: dict[Section, dict[str, Any]], n: int = 3) -> list[str]:
    """A few differing keys of each unequal section, for an assertion message."""
    out = []
    for section in sorted(ours.keys() | engine.keys()):
        a, b = ours.get(section), engine.get(section)
        if a is None or b is None:
            out.append(f"{section}: only in {'the engine' if a is None else 'ours'}")
            continue
        bad = sorted(k for k in a.keys() | b.keys() if a.get(k, "<absent>") != b.get(k, "<absent>"))
        for k in bad[:n]:
            out.append(
                f"{section} {k!r}: ours={str(a.get(k, '<absent>'))[:300]} engine={str(b.get(k, '<absent>'))[:300]}"
            )
        if len(bad) > n:
            out.append(f"{section}: {len(bad) - n} more")
    return out


def _decoded(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value

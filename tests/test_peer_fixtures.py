"""The packages Syft's and Trivy's own tests expect, from images built of their fixtures.

Each case of tests/fixtures/peers (see its README) becomes a one-layer OCI image, analyzed
through the whole pipeline: every package the peer's test expects is found (as a multiset:
two copies of one distribution are two packages), and nothing it says must be absent.
"""

from __future__ import annotations

import collections
import io
import json
import zipfile
from pathlib import Path

import pytest

from imagebuilder import Image, Layer, d, f, oci_layout, write_dir
from layerscan.catalog.model import Package
from layerscan.catalog.python import normalize
from layerscan.config import Config
from layerscan.pipeline import analyze

PEERS = Path(__file__).parent / "fixtures" / "peers"
TYPES = {"rpm": "rpm", "python": "python", "gem": "gem", "java": "java", "npm": "npm", "nuget": "nuget"}
ENGINE = "native"


def cases() -> list[Path]:
    return sorted(p.parent for p in PEERS.glob("*/*/expected.json"))


def image_of(root: Path, zips: list[str]) -> Image:
    """The case's file system as one layer; each directory named in `zips` becomes a zip file
    of that name, as the peer's own Makefile builds its archives ("cd DIR && zip -r X.jar .")."""
    entries = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if any(rel.startswith(f"{z}/") for z in zips):
            continue
        if rel in zips:
            entries.append(f(rel, zipped(p)))
        else:
            entries.append(d(rel) if p.is_dir() else f(rel, p.read_bytes()))
    return Image([Layer(entries)])


def zipped(directory: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(directory.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(directory).as_posix())
    return buf.getvalue()


def key(kind: str, name: str, version: str) -> tuple[str, str]:
    return (normalize(name) if kind == "python" else name, version)


def found(case: Path, zips: list[str], tmp: Path) -> list[Package]:
    layout = write_dir(oci_layout([image_of(case / "root", zips)]), tmp / "image")
    analysis = analyze(f"oci-dir:{layout}", Config(tmp_dir=str(tmp)), engine=ENGINE, progress=False)
    return [p for p in analysis.packages if p.type == TYPES[case.parent.name]]


@pytest.mark.parametrize("case", cases(), ids=lambda c: f"{c.parent.name}/{c.name}")
def test_what_the_peers_tests_expect(case: Path, tmp_path: Path) -> None:
    kind = case.parent.name
    exp = json.loads((case / "expected.json").read_text())
    packages = found(case, exp.get("zip", []), tmp_path)
    got = collections.Counter(key(kind, p.name, p.version) for p in packages)
    if kind == "java":  # Trivy names them groupId:artifactId
        got.update(key(kind, f"{p.metadata.group_id}:{p.name}", p.version) for p in packages)  # type: ignore[union-attr]
    want = collections.Counter(key(kind, e["name"], e["version"]) for e in exp["expected"])
    assert want - got == collections.Counter(), f"missing from {exp['upstream']['repo']}'s expectations"
    names = {n for n, _ in got}
    assert [a for a in exp["absent"] if key(kind, a, "")[0] in names] == []


def test_there_are_cases_from_both_peers() -> None:
    repos = {json.loads((c / "expected.json").read_text())["upstream"]["repo"] for c in cases()}
    assert repos == {"anchore/syft", "aquasecurity/trivy"}

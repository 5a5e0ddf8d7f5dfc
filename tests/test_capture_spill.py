"""Captures with their own size limits, and big captures spilled to a temp file instead of memory.

Both engines must decide the same (which file is captured, spilled, or too big) and hand
back the same contents; a 200 MB fat jar is cataloged, nested jars included, while the
process grows by a fraction of its size.
"""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from imagebuilder import Image, Layer, d, f, oci_layout, write_dir
from layerscan.catalog.java import JavaCataloger
from layerscan.config import Config
from layerscan.pipeline import scan_options
from layerscan.scan import scan_layer
from layerscan.scan.model import LayerResult, ScanOptions, Spill, captured_bytes
from layerscan.scan.rules import Rule
from layerscan.store.results import ResultCache
from layerscan.store.results.localstore import LocalStore
from tarbuilder import build

ENGINES = ["reference", "native"]
SPILL = 4096  # small, so small test files spill


def _layer(files: dict[str, bytes]) -> bytes:
    return build([f(p, data) for p, data in files.items()])


def _scan(blob: bytes, engine: str, **kw: object) -> dict:
    options = ScanOptions(capture_spill_bytes=SPILL, **kw)  # type: ignore[arg-type]
    r = scan_layer(blob, options, engine=engine)
    return {
        "captured": {p: (type(c).__name__, c if isinstance(c, bytes) else c.read()) for p, c in r.captured.items()},
        "too_big": sorted(r.too_big_to_capture),
        "secrets": [(s.rule, s.path) for s in r.secrets],
        "digests": [(rec.path, rec.sha256) for rec in r.entries],
    }


def test_engines_agree_on_limits_and_spills() -> None:
    rng = random.Random(7)
    files = {
        "etc/small.conf": b"tiny",
        "etc/big.conf": bytes(rng.randrange(256) for _ in range(3 * SPILL)),  # over the default limit
        "opt/a.jar": bytes(rng.randrange(256) for _ in range(5 * SPILL)),  # spilled
        "opt/b.jar": b"j" * (SPILL - 1),  # in memory
        "opt/huge.jar": b"h" * (20 * SPILL),  # over the jar limit
        "opt/secret.jar": b"key AKIAABCDEFGHIJKLMNOP\n" + b"s" * (2 * SPILL),  # secrets keep it in memory
        "var/lib/db": b"d" * (9 * SPILL),  # matches both globs: the larger limit
    }
    options = {
        "capture_globs": ("/etc/*", "/opt/*.jar", "/var/lib/*", "/var/**"),
        "capture_max_bytes": 2 * SPILL,
        "capture_limits": (("/opt/*.jar", 10 * SPILL), ("/var/**", 100 * SPILL)),
        "rules": (Rule("aws", r"AKIA[A-Z0-9]{16}"),),
        "secret_max_file_size": 3 * SPILL,
    }
    results = [_scan(_layer(files), engine, **options) for engine in ENGINES]
    assert all(r == results[0] for r in results)
    got = results[0]
    assert {p: kind for p, (kind, _) in got["captured"].items()} == {
        "/etc/small.conf": "bytes",
        "/opt/a.jar": "Spill",
        "/opt/b.jar": "bytes",
        "/opt/secret.jar": "bytes",
        "/var/lib/db": "Spill",
    }
    assert {p: c for p, (_, c) in got["captured"].items()} == {p: files[p.lstrip("/")] for p in got["captured"]}
    assert got["too_big"] == ["/etc/big.conf", "/opt/huge.jar"]
    assert got["secrets"] == [("aws", "/opt/secret.jar")]


@pytest.mark.parametrize("engine", ENGINES)
def test_spilled_captures_read_independently_and_the_file_goes_with_them(engine: str) -> None:
    files = {"a.jar": b"a" * (3 * SPILL), "b.jar": b"0123456789" * SPILL}
    r = scan_layer(_layer(files), ScanOptions(capture_globs=("/*.jar",), capture_spill_bytes=SPILL), engine=engine)
    a, b = r.captured["/a.jar"], r.captured["/b.jar"]
    assert isinstance(a, Spill) and isinstance(b, Spill) and a.file is b.file
    fa, fb = a.open(), b.open()
    fb.seek(5)
    assert fa.read(4) == b"aaaa" and fb.read(7) == b"5678901"
    fa.seek(-2, io.SEEK_END)
    assert fa.read() == b"aa" and b.read() == files["b.jar"]
    fd = a.file.fd
    assert os.path.realpath(f"/proc/self/fd/{fd}").endswith("(deleted)")  # unlinked from the start
    fa.close(), fb.close()
    del r, a, b, fa, fb
    assert not os.path.exists(f"/proc/self/fd/{fd}") or "layerscan-spill" not in os.readlink(f"/proc/self/fd/{fd}")


def _jar(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _pom(group: str, artifact: str, version: str) -> bytes:
    return f"groupId={group}\nartifactId={artifact}\nversion={version}\n".encode()


JAR_MB = 200
_MEASURE = """
import dataclasses, json, resource, sys
from layerscan import pipeline
from layerscan.config import Config
if sys.argv[4] == "in-memory":  # the control: every capture held in memory, as before spilling
    options = pipeline.scan_options
    pipeline.scan_options = lambda *a: dataclasses.replace(options(*a), capture_spill_bytes=1 << 40)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
a = pipeline.analyze("oci-dir:" + sys.argv[1], Config(tmp_dir=sys.argv[2]), engine=sys.argv[3], progress=False)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({
    "growth_kib": peak - base,
    "packages": sorted([p.name, p.version, p.location] for p in a.packages if p.type == "java"),
    "errors": [[e.path, e.reason] for e in a.catalog_errors],
}))
"""


@pytest.mark.parametrize("engine", ENGINES)
def test_a_200mb_fat_jar_is_cataloged_in_bounded_memory(tmp_path: Path, engine: str) -> None:
    """A Spring Boot jar: stored entries (as Spring Boot writes them) of incompressible data,
    nested jars in BOOT-INF/lib. Measured in a child process: its peak RSS minus its RSS
    before the analysis."""
    rng = random.Random(1)
    nested = {
        f"BOOT-INF/lib/lib{i}-1.{i}.jar": _jar(
            {
                f"META-INF/maven/org.example/lib{i}/pom.properties": _pom("org.example", f"lib{i}", f"1.{i}"),
                "blob.bin": rng.randbytes(4 << 20),
            },
            zipfile.ZIP_STORED,
        )
        for i in range(8)
    }
    filler = {f"BOOT-INF/classes/data{i}.bin": rng.randbytes(8 << 20) for i in range((JAR_MB - 32) // 8)}
    fat = _jar(
        {
            "META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\nImplementation-Title: demo\nImplementation-Version: 3.1\n",
            "META-INF/maven/com.example/demo/pom.properties": _pom("com.example", "demo", "3.1"),
            **nested,
            **filler,
        },
        zipfile.ZIP_STORED,
    )
    del nested, filler
    assert len(fat) > JAR_MB * 10**6
    layout = write_dir(oci_layout([Image([Layer([d("app"), f("app/demo-3.1.jar", fat)], "none")])]), tmp_path / "img")
    del fat
    spill_dir = tmp_path / "spill"
    spill_dir.mkdir()
    env = {**os.environ, "TMPDIR": str(spill_dir)}
    growth = {}
    for mode in ("spilled", "in-memory"):
        out = subprocess.run(
            [sys.executable, "-c", _MEASURE, str(layout), str(tmp_path / mode), engine, mode],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
        got = json.loads(out.stdout)
        assert got["errors"] == []
        assert got["packages"] == [
            ["demo", "3.1", "/app/demo-3.1.jar"],
            *[[f"lib{i}", f"1.{i}", f"/app/demo-3.1.jar:BOOT-INF/lib/lib{i}-1.{i}.jar"] for i in range(8)],
        ]
        growth[mode] = got["growth_kib"] / 1024
    # The in-memory run is the control: it shows the measure sees the jar when it is held in memory
    # (160-280 MiB in a quiet run). It is printed, not asserted: one run on the shared test machine
    # once measured 23 MiB for it.
    print(f"{engine}: peak RSS growth {growth} MiB for a {JAR_MB} MB jar")
    assert growth["spilled"] < JAR_MB / 4
    assert list(spill_dir.iterdir()) == []  # the spill file was never visible by name, and is gone
    assert tempfile.gettempdir() != str(spill_dir)


def test_each_cataloger_glob_gets_its_own_limit() -> None:
    """The rpm database's 1 GiB limit no longer raises the limit of every other glob."""
    options = scan_options(Config(), ())
    groups = {g: limit for globs, limit in options.capture_groups() for g in globs}
    assert groups["/var/lib/rpm/Packages"] >= 512 << 20
    assert groups[JavaCataloger.globs[0]] >= 512 << 20
    assert groups["/**/specifications/*.gemspec"] == Config().capture_max_bytes == options.capture_max_bytes


def test_a_layer_result_holding_a_spill_is_not_stored_in_the_result_cache(tmp_path: Path) -> None:
    options = ScanOptions(capture_globs=("/*.jar",), capture_spill_bytes=SPILL)
    cache = ResultCache(LocalStore(tmp_path, 10**9), options, "reference", Config())
    scans = []

    def scan(files: dict[str, bytes]) -> LayerResult:
        scans.append(1)
        return scan_layer(_layer(files), options, engine="reference")

    small, big = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    for _ in range(2):
        cache.layer(small, lambda: scan({"a.jar": b"a"}))
        got = cache.layer(big, lambda: scan({"a.jar": b"a" * (2 * SPILL)}))
        assert got is not None and captured_bytes(got.captured["/a.jar"]) == b"a" * (2 * SPILL)
    assert len(scans) == 3  # the small layer once, the one with a spill each time

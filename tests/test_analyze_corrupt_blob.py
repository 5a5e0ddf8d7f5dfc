"""A layer blob corrupted at rest fails as the digest mismatch it is, in both engines."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import IMAGES, answers
from layerscan.errors import DigestMismatch

pytestmark = pytest.mark.corpus  # every test here reads the shared corpus


@pytest.mark.parametrize("engine", ["native", "reference"])
def test_flipped_byte_in_a_gzip_layer_is_a_digest_mismatch(tmp_path: Path, engine: str) -> None:
    layout = tmp_path / "rpm-sqlite"
    shutil.copytree(IMAGES / "rpm-sqlite", layout)
    digest = answers("rpm-sqlite")["layers"][0]["digest"]
    blob = layout / "blobs" / "sha256" / digest.split(":", 1)[1]
    blob.chmod(0o644)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the deflate stream: the inflater fails before the digest is known
    blob.write_bytes(bytes(data))

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "layerscan",
            "analyze",
            f"oci-dir:{layout}",
            "--engine",
            engine,
            "-o",
            str(tmp_path / "r.json"),
            "--no-result-cache",  # cold: the blob is read (a warm run would not read it at all)
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == DigestMismatch.exit_code, proc.stderr
    assert "digest mismatch" in proc.stderr and digest in proc.stderr
    assert proc.stderr.strip().count("\n") == 0, "one line"
    assert not (tmp_path / "r.json").exists()

"""`layerscan scan-layer FILE` through the real CLI in a subprocess: a layer is scanned, and a file that
cannot be read (missing, a directory, a FIFO, no permission) is one error line and exit 7, as for
`layerscan analyze`, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ROOT
from imagebuilder import Layer, f
from layerscan.errors import SourceError

NOBODY = 65534


def layerscan(*args: str, as_nobody: bool = False) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "layerscan", *args]
    if as_nobody:  # root reads every file: drop to an unprivileged user for the permission check
        command = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)


def assert_unreadable(proc: subprocess.CompletedProcess[str], reason: str) -> None:
    assert proc.returncode == SourceError.exit_code == 7, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"layerscan: error: {reason}"], proc.stderr
    assert proc.stdout == ""


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory another user can enter (pytest's tmp_path is private to root)."""
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o755)
        yield Path(d)


def test_a_layer_is_scanned(public_dir: Path) -> None:
    blob = public_dir / "layer.tar.gz"
    blob.write_bytes(Layer([f("etc/motd", b"hi")], "gzip").blob())
    proc = layerscan("scan-layer", str(blob), "--engine", "reference")
    assert proc.returncode == 0, proc.stderr
    assert [e["path"] for e in json.loads(proc.stdout)["entries"]] == ["/etc/motd"]


@pytest.mark.parametrize("command", ["scan-layer", "analyze"])
def test_a_missing_file(command: str) -> None:
    proc = layerscan(command, "/nonexistent")
    assert proc.returncode == 7 and "Traceback" not in proc.stderr
    if command == "scan-layer":
        assert_unreadable(proc, "/nonexistent: no such file")


def test_a_directory(public_dir: Path) -> None:
    assert_unreadable(layerscan("scan-layer", str(public_dir)), f"{public_dir}: not a regular file")


def test_a_fifo_is_refused_without_blocking(public_dir: Path) -> None:
    fifo = public_dir / "fifo"
    os.mkfifo(fifo)
    assert_unreadable(layerscan("scan-layer", str(fifo)), f"{fifo}: not a regular file")


def test_an_unreadable_file(public_dir: Path) -> None:
    blob = public_dir / "secret.tar"
    blob.write_bytes(Layer([f("a", b"x")], "none").blob())
    blob.chmod(0)
    proc = layerscan("scan-layer", str(blob), as_nobody=os.geteuid() == 0)
    assert_unreadable(proc, f"{blob}: cannot read (Permission denied)")

"""`analyze -o` onto what is not a regular file: written to, never replaced by a rename (as root,
renaming over /dev/null would turn the machine's /dev/null into a plain file)."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from conftest import IMAGES
from layerscan.cli import main


@pytest.mark.corpus
def test_output_to_a_fifo_writes_through_it_and_leaves_it_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    code = main(["analyze", f"oci-dir:{IMAGES / 'rpm-sqlite'}", "--no-result-cache", "-o", str(fifo)])
    reader.join(30)
    assert code == 0
    assert stat.S_ISFIFO(os.stat(fifo).st_mode), "still a FIFO"
    assert received and received[0].startswith(b"{")
    assert [p.name for p in tmp_path.iterdir()] == ["report.fifo"], "no temp file left beside it"

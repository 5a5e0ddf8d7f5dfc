"""`analyze -o` onto what is not a regular file: written to, never replaced by a rename (as root,
renaming over /dev/null would turn the machine's /dev/null into a plain file); a report piped to a
reader that stops early."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
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


@pytest.mark.corpus
def test_a_reader_that_stops_early_gets_exit_code_141_not_a_traceback() -> None:
    """`layerscan analyze --json IMAGE | head -c 10`: the command as a user runs it (the console entry point)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "layerscan",
            "-q",
            "analyze",
            "--no-result-cache",
            "--json",
            f"oci-dir:{IMAGES / 'debian-minbase'}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(10) == b'{"schema":'
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


@pytest.mark.parametrize("port", ["70000", "-1", "x"])
def test_a_worker_status_port_that_is_not_a_port_is_a_usage_error(
    port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["worker", "--port", port])
    assert stopped.value.code == 2
    assert f"argument --port: {port!r} is not a TCP port (1-65535) nor 0" in capsys.readouterr().err

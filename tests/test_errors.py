"""The one table of exit codes (errors.ExitCode, errors.MEANING): every error class takes
its code from it, and the CLI's --help and the README say what it says."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import layerscan.cli  # noqa: F401  (every command, so every error class is defined)
import layerscan.pipeline  # noqa: F401  (imports every stage, so every error class is defined)
from layerscan.errors import MEANING, ExitCode, LayerscanError, exit_codes_help

README = Path(__file__).resolve().parent.parent / "README.md"


def _subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


def _words(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_every_error_class_exits_with_a_code_of_the_table() -> None:
    classes = [LayerscanError, *_subclasses(LayerscanError)]
    assert len(classes) > 8
    for cls in classes:
        assert cls.exit_code in set(ExitCode), cls.__name__
        # Codes 0 and 1 are outcomes, not errors; 130 is the interrupt.
        assert cls.exit_code not in (ExitCode.OK, ExitCode.FINDINGS, ExitCode.INTERRUPTED), cls.__name__
    assert set(MEANING) == set(ExitCode)


def test_help_lists_every_exit_code() -> None:
    for argv in (["--help"], ["analyze", "--help"]):
        proc = subprocess.run(
            [sys.executable, "-m", "layerscan", *argv], capture_output=True, text=True, timeout=120, check=True
        )
        assert exit_codes_help() in _words(proc.stdout), argv
    for code in ExitCode:
        assert f"{int(code)} {MEANING[code]}" in exit_codes_help()


def test_readme_lists_the_same_exit_codes() -> None:
    assert exit_codes_help().removeprefix("exit codes: ") in _words(README.read_text())


def test_ctrl_c_exits_130() -> None:
    """A real SIGINT while the CLI waits at its password prompt (stdin a terminal, no data)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "layerscan", "analyze", "registry:127.0.0.1:9/app:1", "--username", "u"]
        + ["--password-stdin"],
        stdin=follower,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # no controlling terminal: getpass prompts on stderr
    )
    os.close(follower)
    try:
        assert proc.stderr is not None
        seen = b""
        deadline = time.monotonic() + 60
        while b"Password:" not in seen:
            ready, _, _ = select.select([proc.stderr], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"no password prompt: {seen!r}"
            chunk = os.read(proc.stderr.fileno(), 4096)
            assert chunk, f"exited before prompting: {seen!r}"
            seen += chunk
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == ExitCode.INTERRUPTED == 130
        assert b"Traceback" not in seen + proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
        os.close(leader)

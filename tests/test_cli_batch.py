"""`layerscan batch` end to end: 8 images sharing base layers in a real registry, 4 worker
processes; every shared layer is downloaded once (counted at the registry's proxy), every
report equals `layerscan analyze`'s, a failing image fails alone."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from registry_harness import REGISTRY_BIN, FaultProxy
from service_harness import app_registry

pytestmark = pytest.mark.skipif(not Path(REGISTRY_BIN).exists(), reason=f"{REGISTRY_BIN} is not installed")
N_IMAGES = 8


def layerscan(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "layerscan", *args], input=stdin, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def pushed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FaultProxy, list[list[str]]]]:
    with app_registry(tmp_path_factory.mktemp("batch-registry"), N_IMAGES) as pushed:
        yield pushed


def test_batch_downloads_shared_layers_once_and_matches_analyze(
    pushed: tuple[FaultProxy, list[list[str]]], tmp_path: Path
) -> None:
    proxy, layers = pushed
    proxy.reset()
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"tmp_dir": str(tmp_path), "insecure_registries": [proxy.host]}))
    refs = [f"registry:{proxy.host}/apps/app{n}:latest" for n in range(N_IMAGES)]
    listing = tmp_path / "images.txt"
    listing.write_text("# the apps\n" + "\n".join(refs) + "\n\n")
    out = tmp_path / "reports"

    result = layerscan(
        "batch",
        str(listing),
        "--workers",
        "4",
        "--format",
        "anchore",
        "--output-dir",
        str(out),
        "--config",
        str(config),
    )
    assert result.returncode == 0, result.stderr

    shared = layers[0][:2]
    assert all(image[:2] == shared for image in layers), "the images share their two base layers"
    every_layer = sorted({d for image in layers for d in image})
    assert proxy.layer_gets(every_layer) == dict.fromkeys(every_layer, 1), "each layer downloaded once"

    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(line["source"] for line in lines) == sorted(refs)
    for line in lines:
        assert line["status"] == "analyzed" and line["error"] is None
        assert line["counts"]["packages"] == {"dpkg": 2, "npm": 1, "python": 1}
        assert line["counts"]["layers"] == 3 and line["counts"]["secrets"] >= 1
        analyzed = layerscan("analyze", line["source"], "--format", "anchore", "--config", str(config), "--no-cache")
        assert analyzed.returncode == 0, analyzed.stderr
        assert Path(line["report"]).read_text() == analyzed.stdout, line["source"]
        assert Path(line["report"]).parent == out
    assert len(list(out.iterdir())) == N_IMAGES


def test_a_failed_image_fails_alone_exit_3(pushed: tuple[FaultProxy, list[list[str]]], tmp_path: Path) -> None:
    proxy, _ = pushed
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"tmp_dir": str(tmp_path), "insecure_registries": [proxy.host]}))
    listing = f"registry:{proxy.host}/apps/app0:latest\nregistry:{proxy.host}/apps/missing:latest\n"
    result = layerscan("batch", "-", "--workers", "2", "--config", str(config), stdin=listing)
    assert result.returncode == 3
    lines = {json.loads(line)["source"].rsplit("/", 1)[1]: json.loads(line) for line in result.stdout.splitlines()}
    assert lines["app0:latest"]["status"] == "analyzed" and lines["app0:latest"]["report"] is None
    assert lines["missing:latest"]["status"] == "failed" and "HTTP 404" in lines["missing:latest"]["error"]
    assert "1 of 2 images failed" in result.stderr


def test_batch_usage_errors_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    result = layerscan("batch", str(empty))
    assert result.returncode == 2 and "no image references" in result.stderr
    result = layerscan("batch", str(tmp_path / "absent.txt"))
    assert result.returncode == 2 and "absent.txt" in result.stderr and "Traceback" not in result.stderr
    result = layerscan("batch", str(empty), "--workers", "0")
    assert result.returncode == 2 and "not a positive number" in result.stderr


def test_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    """With stderr a terminal, a bar counts images there; stdout keeps one clean JSON line per image."""
    sample = Path(__file__).resolve().parent.parent / "examples" / "sample-image"
    listing = tmp_path / "images.txt"
    listing.write_text(f"oci-dir:{sample}\n" * 2)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"tmp_dir": str(tmp_path)}))
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "layerscan",
            "batch",
            str(listing),
            "--workers",
            "1",
            "--config",
            str(tmp_path / "c.yaml"),
        ],
        stdout=subprocess.PIPE,
        stderr=slave,
        text=True,
    )
    os.close(slave)
    stdout, _ = proc.communicate(timeout=120)
    terminal = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the other end is closed
            break
        if not chunk:
            break
        terminal += chunk
    os.close(master)
    assert proc.returncode == 0, terminal.decode(errors="replace")
    assert b"2/2" in terminal and b"image" in terminal
    assert [json.loads(line)["status"] for line in stdout.splitlines()] == ["analyzed", "analyzed"]

"""A layer whose entry names leave the root ('..', absolute names) is analyzed with them read
inside the root, as containerd does, and the analysis warns about each one (issue 8, finding 8):
one bad name must not hide a whole image."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from imagebuilder import Image, Layer, d, f, h, oci_layout, write_dir
from layerscan.config import Config
from layerscan.pipeline import analyze
from scancheck import ENGINES

OS_RELEASE = b'ID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME="Alpine Linux v3.19"\n'


@pytest.mark.parametrize("engine", ENGINES)
def test_image_with_names_outside_the_root(tmp_path: Path, engine: str, caplog: pytest.LogCaptureFixture) -> None:
    image = Image(
        [
            Layer([d("etc"), f("etc/os-release", OS_RELEASE), f("../../etc/passwd", b"root:x:0:0::/root:/bin/sh\n")]),
            Layer([f("/usr/bin/tool", b"#!/bin/sh\n"), h("usr/bin/tool2", "../usr/bin/tool")], "zstd"),
        ]
    )
    layout = write_dir(oci_layout([image]), tmp_path / "layout")
    before = sorted(tmp_path.rglob("*"))
    with caplog.at_level(logging.WARNING, logger="layerscan"):
        a = analyze(f"oci-dir:{layout}", Config(), engine=engine, progress=False)

    assert {"/etc/os-release", "/etc/passwd", "/usr/bin/tool", "/usr/bin/tool2"} <= set(a.files)
    assert a.distro is not None and a.distro.id == "alpine"  # the layer was analyzed, not refused
    first, second = (layer.descriptor.digest for layer in a.layers)
    warnings = [
        f"layer 0 ({first}): entry '../../etc/passwd' escapes the root with '..': read as '/etc/passwd', inside the root",
        f"layer 1 ({second}): entry '/usr/bin/tool' is absolute: read as '/usr/bin/tool', inside the root",
        f"layer 1 ({second}): hardlink '/usr/bin/tool2': target '../usr/bin/tool' escapes the root with '..': "
        "read as '/usr/bin/tool', inside the root",
    ]
    assert a.warnings == warnings
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert all(w in logged for w in warnings)
    assert sorted(tmp_path.rglob("*")) == before, "the analysis wrote files"

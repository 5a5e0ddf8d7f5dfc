"""`layerscan cache`: the real command over a real cache directory."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from layerscan.cli import main
from layerscan.store.layers import DIRNAME, LayerCache


def fill(tmp_dir: Path, *blobs: bytes) -> list[str]:
    cache = LayerCache(tmp_dir / DIRNAME, 10_000, minimum_bytes=0)
    digests = []
    for b in blobs:
        d = "sha256:" + hashlib.sha256(b).hexdigest()
        with cache.layer(d, len(b), lambda b=b: iter([b])):
            pass
        digests.append(d)
    cache.close()
    return digests


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str]:
    code = main(["cache", *argv])
    return code, capsys.readouterr().out


def test_ls_stats_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a, b = fill(tmp_path, b"a" * 100, b"b" * 200)
    code, out = run(capsys, "ls", "--json", "--tmp-dir", str(tmp_path))
    assert code == 0 and [(e["digest"], e["size"], e["pinned"]) for e in json.loads(out)["layers"]] == [
        (a, 100, False),
        (b, 200, False),
    ]
    config = tmp_path / "config.yaml"
    config.write_text(f"tmp_dir: {tmp_path}\nanalyzer:\n  layer_cache_max_gigabytes: 2\n")
    code, out = run(capsys, "stats", "--json", "--config", str(config))
    stats = json.loads(out)["layers"]
    assert (stats["entries"], stats["bytes"], stats["max_bytes"], stats["pinned"]) == (2, 300, 2_000_000_000, 0)
    code, out = run(capsys, "ls", "--tmp-dir", str(tmp_path), "--only", "layers")
    assert a in out.splitlines()[1] and b in out.splitlines()[2]


def test_verify_drops_corrupt_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    good, bad = fill(tmp_path, b"good" * 50, b"bad!" * 50)
    path = tmp_path / DIRNAME / "sha256" / bad.split(":")[1]
    path.write_bytes(b"bad?" * 50)
    code, out = run(capsys, "verify", "--tmp-dir", str(tmp_path))
    assert code == 1 and f"{bad}  CORRUPT, dropped" in out and f"{good}  ok" in out
    assert not path.exists()
    code, out = run(capsys, "verify", "--json", "--tmp-dir", str(tmp_path))
    assert code == 0 and json.loads(out) == [{"digest": good, "ok": True, "dropped": False}]


def test_prune_and_clear(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    fill(tmp_path, b"1" * 100, b"2" * 100, b"3" * 100)
    code, out = run(capsys, "prune", "--json", "--max-gigabytes", "0.00000015", "--tmp-dir", str(tmp_path))
    assert code == 0 and json.loads(out)["layers"] == {"freed_bytes": 200, "bytes": 100, "entries": 1}
    code, out = run(capsys, "clear", "--tmp-dir", str(tmp_path), "--only", "layers")
    assert code == 0 and out.strip() == "layers: removed 1 entries"
    assert list((tmp_path / DIRNAME / "sha256").iterdir()) == []


def test_bad_config_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("analyzer:\n  layer_cache_max_gigabytes: lots\n")
    assert main(["cache", "stats", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "analyzer.layer_cache_max_gigabytes" in err and len(err.strip().splitlines()) == 1

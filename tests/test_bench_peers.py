"""benchmarks/peers.py compares equal work: its readers of Syft's, Trivy's and layerscan's reports
count what the answer keys say, its timer measures a real child, and its synthetic image is a
layout that layerscan and the naive baseline read alike. Syft and Trivy themselves are not needed:
their reports are the corpus's oracle files."""

from __future__ import annotations

import gzip
import os
import sys
from pathlib import Path

import pytest

from conftest import IMAGES, ROOT, answers

sys.path.insert(0, str(ROOT / "benchmarks"))

import peers  # noqa: E402

ENGINE = "native"


def oracle(tmp_path: Path, name: str, tool: str) -> Path:
    path = tmp_path / f"{name}.{tool}.json"
    path.write_bytes(gzip.decompress((IMAGES / f"{name}.{tool}.json.gz").read_bytes()))
    return path


def files_with_digests(name: str) -> int:
    by_type = answers(name)["final_filesystem"]["by_type"]
    return by_type.get("file", 0) + by_type.get("hardlink", 0)


@pytest.mark.corpus
def test_syft_report_counts_like_the_answer_key(tmp_path):
    a = answers("debian-apps")
    p = a["packages"]
    found = peers.parse_syft(oracle(tmp_path, "debian-apps", "syft"))
    # The app's own package.json is a package for Syft too; every jar, the WAR and its nested jars are entries.
    assert found.packages == {
        "dpkg": len(p["dpkg"]),
        "python": len(p["python"]),
        "gem": len(p["gems"]),
        "npm": len(p["npm_installed"]) + len(p["npm_app_manifests"]),
        "java": len(p["java_archives"]),
        "nuget": a["oracle_comparison"]["syft"]["counts"]["dotnet"],
    }
    # Syft gives empty files and hardlinks no digests.
    assert 0 < files_with_digests("debian-apps") - found.files_with_digests < 100
    assert found.secrets is None


@pytest.mark.corpus
def test_trivy_report_counts_like_the_answer_key(tmp_path):
    a = answers("debian-apps")
    found = peers.parse_trivy(oracle(tmp_path, "debian-apps", "trivy"))
    counts = a["oracle_comparison"]["trivy"]["counts"]
    assert found.packages == {
        "dpkg": counts["deb"],
        "python": counts["python"],
        "npm": counts["npm"],
        "gem": counts["gem"],
        "nuget": counts["dotnet"],
    }
    assert found.secrets == len({s["path"] for s in a["secrets"] if s.get("trivy_rule")})
    assert found.files_with_digests is None


@pytest.mark.corpus
def test_trivy_rpm_family_comes_from_the_purl(tmp_path):
    found = peers.parse_trivy(oracle(tmp_path, "rpm-sqlite", "trivy"))
    assert found.packages == {"rpm": len(answers("rpm-sqlite")["packages"]["rpm"])}


@pytest.mark.corpus
def test_layerscan_run_is_measured_and_read(tmp_path):
    tool = peers.layerscan_tool(ENGINE)
    run = tool.command(IMAGES / "rpm-sqlite", tmp_path)
    sample = peers.measure(run, [])
    assert sample.wall > 0 and sample.cpu > 0
    assert 10_000 < sample.rss_kb < 1_000_000  # a Python process, not this test's own floor of zero
    found = tool.parse(run.output)
    assert found.packages == {"rpm": len(answers("rpm-sqlite")["packages"]["rpm"])}
    assert found.files_with_digests == files_with_digests("rpm-sqlite")


def test_peak_rss_is_the_child_not_the_parent(tmp_path):
    out = tmp_path / "out"
    small = peers.measure(peers.Run(["sh", "-c", f": > {out}"], dict(os.environ), out), [])
    big = peers.measure(
        peers.Run([sys.executable, "-c", f"b = bytearray(80 << 20); open({str(out)!r}, 'w')"], dict(os.environ), out),
        [],
    )
    assert small.rss_kb < 10_000
    assert big.rss_kb > 80_000


def test_a_failing_tool_is_one_line(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(peers.BenchError, match=r"sh exited 3: boom"):
        peers.measure(peers.Run(["sh", "-c", "echo boom >&2; exit 3"], dict(os.environ), out), [])


def test_synthetic_image_reads_alike_in_layerscan_and_the_naive_baseline(tmp_path):
    layout = peers.build_big_image(tmp_path, 8)
    found = {}
    for tool in (peers.layerscan_tool(ENGINE), peers.Tool("naive", peers.naive_command, peers.parse_naive)):
        run = tool.command(layout, tmp_path)
        peers.measure(run, [])
        found[tool.name] = tool.parse(run.output)
    # No whiteouts in it, so extracting every layer hashes exactly the files layerscan digests.
    assert found["naive"].files_with_digests == found[ENGINE].files_with_digests > 100
    assert found[ENGINE].packages.get("dpkg", 0) > 0

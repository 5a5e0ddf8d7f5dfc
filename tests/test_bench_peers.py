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


def test_library_image_reads_alike_in_layerscan_and_the_naive_baseline(tmp_path):
    content = tmp_path / "content"
    dist = content / "python" / "demo-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
    (content / "python" / "demo").mkdir()
    (content / "python" / "demo" / "__init__.py").write_text("x = 1\n")
    pkg = content / "npm" / "node_modules" / "left-pad"
    pkg.mkdir(parents=True)
    (pkg / "package.json").write_text('{"name": "left-pad", "version": "1.3.0"}')
    layout = peers.build_library_image(tmp_path, 20, content)
    _, manifest = peers.layout_manifest(layout)
    assert [d["mediaType"].rsplit(".", 1)[-1] for d in manifest["layers"]] == [
        "tar+gzip",
        "tar+zstd",
        "tar+gzip",
        "tar+gzip",
        "tar",
        "tar+gzip",
    ]
    found = {}
    tools = (peers.layerscan_tool(ENGINE), peers.layerscan_tool(ENGINE, "anchore"))
    for tool in (*tools, peers.Tool("naive", peers.naive_command, peers.parse_naive)):
        run = tool.command(layout, tmp_path)
        peers.measure(run, [])
        found[tool.name] = tool.parse(run.output)
    # The only whiteouts strip test suites the tiny content has none of, so extracting every
    # layer hashes exactly the files layerscan digests.
    assert found["naive"].files_with_digests == found[ENGINE].files_with_digests > 20
    assert found["anchore"].files_with_digests == found[ENGINE].files_with_digests
    for f in (found[ENGINE], found["anchore"]):
        assert f.packages["python"] == 1 and f.packages["npm"] == 2  # left-pad and the vendored dependency
        assert f.packages.get("dpkg", 0) > 0
        assert f.secrets == 3  # the planted AWS key, GitHub token and Slack token, one file each


def test_markdown_and_chart_show_each_tool_against_layerscan(tmp_path):
    fast, slow = peers.Sample(1.0, 1.5, 100 << 10), peers.Sample(7.0, 9.0, 600 << 10)
    found = peers.Found({"npm": 2}, 10, 1)
    res = peers.ImageResult(
        "img",
        12.0,
        {"anchore": [fast, fast, fast], "syft": [slow, slow, peers.Sample(99, 99, 1)]},
        {"anchore": found, "syft": found},
    )
    assert res.summary("syft") == peers.Sample(7.0, 9.0, 600 << 10)  # the median, and the highest RSS
    page = peers.markdown([res], "python benchmarks/peers.py --big", tmp_path / "chart.png")
    assert "| syft | 7.00 | 9.00 | 600 | 7.00 | 6.00 | 10 | 1 | npm 2 |" in page
    assert "![wall time and peak RSS per tool](chart.png)" in page
    peers.draw_chart([res], tmp_path / "chart.png")
    assert (tmp_path / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

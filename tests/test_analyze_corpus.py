"""Every corpus image end to end, in every available engine: the JSON report's files
equal the ground truth, the planted secrets are found on their lines; and the
`analyze` command's exit codes."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from analyzed import ENGINES, analysis, ground_truth
from conftest import IMAGE_NAMES, IMAGES, answers
from layerscan.cli import main
from layerscan.report import native

# The corpus names a secret by its kind; these are the builtin rules that find each kind.
RULE_FOR_KIND = {
    "aws-access-key-id": "aws-access-key-id",
    "aws-secret-access-key": "aws-secret-access-key",
    "rsa-private-key": "private-key",
    "docker-config-auth": "docker-config-auth",
    "github-pat": "github-pat",
    "generic-api-key": "generic-api-key",
}
CASES = [(name, engine) for name in IMAGE_NAMES for engine in ENGINES]


def report(name: str, engine: str) -> dict:
    out = io.StringIO()
    native.write(analysis(name, engine), out)
    return json.loads(out.getvalue())


@pytest.mark.corpus
@pytest.mark.parametrize(("name", "engine"), CASES)
def test_files_equal_ground_truth(name: str, engine: str) -> None:
    truth = ground_truth(name)
    files = {f["path"]: f for f in report(name, engine)["files"]}
    assert set(files) == set(truth)
    for path, t in truth.items():
        f = files[path]
        expected = {
            "type": t["type"],
            "mode": t["mode"],
            "uid": t["uid"],
            "gid": t["gid"],
            "mtime": t["mtime"],
            "layer": t["layer"],
            "link": t.get("linkname"),
            "size": t.get("size", 0),
            "md5": t.get("md5"),
            "sha1": t.get("sha1"),
            "sha256": t.get("sha256"),
        }
        assert {k: f[k] for k in expected} == expected, path


@pytest.mark.corpus
@pytest.mark.parametrize(("name", "engine"), CASES)
def test_planted_secrets_found_on_their_lines(name: str, engine: str) -> None:
    doc = report(name, engine)
    found = {(s["rule"], s["path"], s["line"]): s for s in doc["secrets"]}
    planted = answers(name)["secrets"]
    for s in planted:
        hit = found.get((RULE_FOR_KIND[s["kind"]], s["path"], s["line"]))
        assert hit is not None, s["path"]
        assert (hit["layer"], hit["in_final_image"]) == (s["layer"], s["in_final_filesystem"])
        assert s["value"] not in hit["match"]
    planted_at = {(s["path"], s["line"]) for s in planted}
    assert {(s["path"], s["line"]) for s in doc["secrets"]} == planted_at  # and nothing else


@pytest.mark.corpus
@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_layers_and_distro(name: str) -> None:
    a = analysis(name)
    key = answers(name)
    assert a.manifest_digest == key["manifest_digest"] and a.config_digest == key["config_digest"]
    assert [(la.descriptor.digest, la.diff_id, la.entries) for la in a.layers] == [
        (la["digest"], la["diff_id"], la["tar_entries"]) for la in key["layers"]
    ]
    assert not a.warnings and not any(la.missing for la in a.layers)
    assert a.distro is not None and a.distro.id == key["os_release"]["ID"]
    assert a.bytes_in == sum(la["size"] for la in key["layers"])


# ----------------------------------------------------------------------------- the command


def run(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.corpus
def test_cli_writes_each_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = f"oci-dir:{IMAGES / 'rpm-sqlite'}"
    for fmt in ("json", "anchore"):
        out = tmp_path / f"r.{fmt}"
        code, stdout, _ = run(
            "analyze", source, "-o", str(out), "--format", fmt, "--engine", ENGINES[0], "--json", capsys=capsys
        )
        assert code == 0
        summary = json.loads(stdout)
        assert summary["report"] == str(out) and summary["exit_code"] == 0
        assert json.loads(out.read_text())
    code, stdout, _ = run("analyze", source, "--format", "table", "--engine", ENGINES[0], capsys=capsys)
    assert code == 0 and "Files" in stdout and "MB/s" in stdout


@pytest.mark.corpus
def test_cli_fail_on_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with_secrets = f"oci-dir:{IMAGES / 'debian-apps'}"
    code, _, _ = run(
        "analyze",
        with_secrets,
        "-o",
        str(tmp_path / "r.json"),
        "--engine",
        ENGINES[0],
        "--fail-on-secrets",
        capsys=capsys,
    )
    assert code == 1
    clean = f"oci-dir:{IMAGES / 'rpm-sqlite'}"
    code, _, _ = run("analyze", clean, "-o", str(tmp_path / "c.json"), "--fail-on-secrets", capsys=capsys)
    assert code == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["analyze"],
        ["analyze", "x", "--format", "xml"],
        ["analyze", "x", "--platform", "linux"],
        ["analyze", "x", "--engine", "turbo"],
    ],
)
def test_cli_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2


def test_cli_unreadable_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run("analyze", f"oci-dir:{tmp_path / 'nope'}", capsys=capsys)
    assert code >= 3
    assert err.startswith("layerscan: error:") and err.count("\n") == 1


@pytest.mark.corpus
def test_cli_digest_mismatch_keeps_the_old_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layout = tmp_path / "rpm-sqlite"
    shutil.copytree(IMAGES / "rpm-sqlite", layout)
    blob = layout / "blobs" / "sha256" / answers("rpm-sqlite")["layers"][0]["digest"].split(":")[1]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    out = tmp_path / "report.json"
    out.write_text("previous report\n")
    # Cold: an image analyzed before is served from the result cache without reading the blob.
    code, _, err = run(
        "analyze", f"oci-dir:{layout}", "-o", str(out), "--engine", ENGINES[0], "--no-result-cache", capsys=capsys
    )
    assert code != 0 and code >= 3
    assert err.startswith("layerscan: error:") and err.count("\n") == 1
    assert out.read_text() == "previous report\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".layerscan-")] == []


def test_cli_help_teaches() -> None:
    with pytest.raises(SystemExit) as e:
        main(["analyze", "--help"])
    assert e.value.code == 0


# ----------------------------------------------------------------------------- the bundled sample


SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sample-image"


def test_sample_image_is_what_its_script_makes(tmp_path: Path) -> None:
    from make_sample_image import main as make

    make(tmp_path / "img")
    made = {p.relative_to(tmp_path / "img"): p.read_bytes() for p in (tmp_path / "img").rglob("*") if p.is_file()}
    committed = {p.relative_to(SAMPLE): p.read_bytes() for p in SAMPLE.rglob("*") if p.is_file()}
    assert made == committed


def test_sample_secret_in_deleted_file_and_behind_link(capsys: pytest.CaptureFixture[str]) -> None:
    from make_sample_image import FAKE_AWS_ID, FAKE_GITHUB

    code, out, _ = run("analyze", f"oci-dir:{SAMPLE}", "--engine", ENGINES[0], "--fail-on-secrets", capsys=capsys)
    assert code == 1
    doc = json.loads(out)
    found = {(s["rule"], s["path"], s["line"]): s for s in doc["secrets"]}
    deleted = found[("aws-access-key-id", "/root/.aws/credentials", 2)]
    assert (deleted["layer"], deleted["in_final_image"]) == (1, False)
    assert found[("github-pat", "/app/.env", 2)]["in_final_image"]
    assert found[("github-pat", "/app/current.env", 2)]["in_final_image"]  # keyed by the link, as Anchore
    assert FAKE_AWS_ID not in out and FAKE_GITHUB not in out
    paths = {f["path"] for f in doc["files"]}
    assert "/etc/motd" not in paths and "/root/.aws/credentials" not in paths
    assert {p["name"] for p in doc["packages"]} >= {"base-files", "hello"}

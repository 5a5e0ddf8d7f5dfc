"""Secrets without noise, on a library-heavy image built from this machine's files.

The image (tests/library_image.py): Debian's jars and Python packages, this venv's
site-packages with botocore and friends installed beside it, an `npm install` tree (webpack,
eslint, babel, express, axios), and an app with secrets planted in its code, a config file,
a vendored dependency and a file a later layer deletes. Every planted secret is found; no
finding is anything else; Trivy (offline, secret scanner only) finds no more, and what it
finds, we find. Without the allow rules (secrets_all), the libraries' examples are reported
too, and stats.secrets_suppressed accounts for every one of them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import library_image
from layerscan.analysis import Analysis
from layerscan.config import Config
from layerscan.pipeline import analyze
from layerscan.scan.allow import GENERIC_RULES
from layerscan.scan.rules import ANCHORE_DEFAULT_SPECS

log = logging.getLogger(__name__)
ENGINE = "native"
NPM_PACKAGES = ("webpack", "eslint", "@babel/core", "express", "axios")
# fsspec and pydantic document URLs with credentials and passwords in their docstrings.
PIP_PACKAGES = (
    "botocore", "boto3", "s3transfer", "jmespath", "requests", "urllib3", "sqlalchemy", "redis", "kombu", "fsspec",
    "pydantic",
)  # fmt: skip
TRIVY = Path(sys.executable).parent / "trivy"
ANCHORE_IDS = {s.split("=", 1)[0] for s in ANCHORE_DEFAULT_SPECS}


@pytest.fixture(scope="session")
def image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[library_image.Planted]]:
    """Built once per session: npm and pip fetch from their registries (pip's configured index)."""
    root = tmp_path_factory.mktemp("library-image")
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed (scripts/bootstrap.sh installs it)")
    env = dict(os.environ, npm_config_cache=str(root / "npm-cache"), npm_config_update_notifier="false")
    (root / "npm").mkdir()
    (root / "npm" / "package.json").write_text('{"name": "app", "version": "1.0.0", "private": true}')
    argv = [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", *NPM_PACKAGES]
    subprocess.run(argv, cwd=root / "npm", env=env, check=True, capture_output=True, timeout=600)
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(root / "py"), *PIP_PACKAGES]
    subprocess.run(pip, check=True, capture_output=True, timeout=600)
    return library_image.build(root, root / "npm" / "node_modules", root / "py")


def run(layout: Path, tmp: Path, secrets_all: bool) -> Analysis:
    config = Config(tmp_dir=str(tmp), result_cache_enable=False, secrets_all=secrets_all)
    return analyze(f"oci-dir:{layout}", config, engine=ENGINE)


def trivy(layout: Path, tmp: Path) -> set[tuple[str, int]]:
    """(path, line) of every secret `trivy image` finds, offline, secret scanner only."""
    out = tmp / "trivy.json"
    argv = [str(TRIVY), "image", "--input", str(layout), "--cache-dir", str(tmp / "trivy-cache")]
    argv += ["--cache-backend", "memory", "--scanners", "secret", "--skip-db-update", "--skip-java-db-update"]
    argv += ["--offline-scan", "--skip-version-check", "--disable-telemetry", "--format", "json", "-o", str(out), "-q"]
    env = dict(os.environ, TMPDIR=str(tmp), TRIVY_DISABLE_VEX_NOTICE="true")
    subprocess.run(argv, env=env, check=True, timeout=900)
    found = set()
    for result in json.loads(out.read_text()).get("Results") or []:
        for s in result.get("Secrets") or []:
            found.add(("/" + result["Target"].lstrip("/"), s["StartLine"]))
    return found


@pytest.mark.timeout(1200)  # builds the image first: npm install, pip install, ~300 MB of layers
def test_planted_found_and_no_noise(image: tuple[Path, list[library_image.Planted]], tmp_path: Path) -> None:
    layout, planted = image
    a = run(layout, tmp_path, secrets_all=False)
    found = {(s.path, s.line): s for s in a.secrets}
    for p in planted:
        assert (p.path, p.line) in found, f"planted secret not found: {p}"
        assert found[(p.path, p.line)].in_final_image is not p.deleted
    assert set(found) == {(p.path, p.line) for p in planted}, "a finding that is no planted secret"
    # Per line, a specific rule of ours, and Anchore's rule for the same kind where it has one.
    assert all(s.rule in ANCHORE_IDS or s.rule not in GENERIC_RULES for s in a.secrets)

    everything = run(layout, tmp_path, secrets_all=True)
    assert len(everything.secrets) == len(a.secrets) + sum(a.secrets_suppressed.values())
    log.info(
        "library image: %d findings with the allow rules, %d without; suppressed %s",
        len(a.secrets),
        len(everything.secrets),
        a.secrets_suppressed,
    )
    assert len(everything.secrets) > 10 * len(a.secrets)  # the image is as noisy as a real one


@pytest.mark.timeout(1200)
def test_no_more_findings_than_trivy(image: tuple[Path, list[library_image.Planted]], tmp_path: Path) -> None:
    """Trivy skips whole paths (/vendor/, test and example names, usr/lib/...) where we allow on
    context only, so it misses the secrets planted in vendored code; beyond those we find no
    more than it does, and everything it finds. Counted by place (path, line): on a line
    with an AWS key or a private key, Anchore's rule reports it beside ours, as Anchore would."""
    layout, planted = image
    theirs = trivy(layout, tmp_path)
    findings = run(layout, tmp_path, secrets_all=False).secrets
    ours = {(s.path, s.line) for s in findings}
    # Trivy places a private key at its first body line, we at its BEGIN line.
    ours_near = ours | {(path, line + 1) for path, line in ours}
    assert theirs <= ours_near, f"trivy found what we did not: {theirs - ours_near}"
    planted_at = {(p.path, p.line) for p in planted}
    missed_by_trivy = {p for p in planted_at if p not in theirs and (p[0], p[1] + 1) not in theirs}
    log.info(
        "trivy: %d findings; ours: %d findings at %d places; planted secrets trivy missed: %s",
        len(theirs),
        len(findings),
        len(ours),
        sorted(missed_by_trivy),
    )
    assert all("/vendor/" in path or "/node_modules/" in path for path, _ in missed_by_trivy)
    assert len(ours) <= len(theirs) + len(missed_by_trivy)

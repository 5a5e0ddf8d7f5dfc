"""Shared test fixtures: where the corpus lives, and the engines to compare."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
IMAGES = CORPUS / "images"
FIXTURES = CORPUS / "fixtures"
IMAGE_NAMES = ("debian-minbase", "debian-apps", "rpm-sqlite")


def answers(name: str) -> dict:
    return json.loads((IMAGES / f"{name}.answers.json").read_text())


def layer_blob(name: str, digest: str) -> Path:
    return IMAGES / name / "blobs" / "sha256" / digest.split(":", 1)[1]


@pytest.fixture(scope="session")
def corpus() -> Path:
    assert IMAGES.is_dir(), f"the corpus is missing at {IMAGES}"
    return CORPUS


# tmp_dir defaults to the system's temp directory, where the result cache (on by default)
# would outlive the session and be shared with anyone else's runs. Each session gets a
# temp directory of its own, inherited by the commands the tests start.
_SESSION_TMP = tempfile.mkdtemp(prefix="layerscan-tests-")
os.environ["TMPDIR"] = _SESSION_TMP
tempfile.tempdir = None  # recomputed from TMPDIR


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_SESSION_TMP, ignore_errors=True)


pytest_plugins = ["registry_fixtures"]  # real-registry fixtures (tests/registry_fixtures.py)

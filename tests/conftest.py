"""Shared test fixtures: where the corpus lives, and the engines to compare."""

from __future__ import annotations

import json
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


pytest_plugins = ["registry_fixtures"]  # real-registry fixtures (tests/registry_fixtures.py)

"""Shared test fixtures: where the corpus lives, and the engines to compare.

The corpus and the Anchore docs live in ../shared (LAYERSCAN_SHARED points elsewhere).
When they are absent, the tests that need them are skipped with a reason that says so;
the others run. A test needs them when it is marked `corpus`, takes the `corpus`
fixture (directly or through another fixture, such as the registries, which hold the
corpus images), or is parametrized with `corpus_params`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("LAYERSCAN_SHARED") or ROOT.parent / "shared")
CORPUS = SHARED / "corpus"
IMAGES = CORPUS / "images"
FIXTURES = CORPUS / "fixtures"
IMAGE_NAMES = ("debian-minbase", "debian-apps", "rpm-sqlite")

HAVE_CORPUS = IMAGES.is_dir() and FIXTURES.is_dir() and (SHARED / "docs").is_dir()
NO_CORPUS = (
    f"needs the shared corpus, which is not at {SHARED} "
    "(set LAYERSCAN_SHARED to the directory holding corpus/ and docs/)"
)


def answers(name: str) -> dict:
    return json.loads((IMAGES / f"{name}.answers.json").read_text())


def layer_blob(name: str, digest: str) -> Path:
    return IMAGES / name / "blobs" / "sha256" / digest.split(":", 1)[1]


def corpus_params(values: Callable[[], Iterable[Any]], width: int = 1) -> list[Any]:
    """Parameters read from the corpus at collection (`width` argument names each); one
    skipped parameter when the corpus is absent."""
    if not HAVE_CORPUS:
        return [pytest.param(*[None] * width, marks=pytest.mark.skip(reason=NO_CORPUS), id="no-corpus")]
    return list(values())


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not HAVE_CORPUS:
        pytest.skip(NO_CORPUS)
    return CORPUS


# tmp_dir defaults to the system's temp directory, where the result cache (on by default)
# would outlive the session and be shared with anyone else's runs. Each session gets a
# temp directory of its own, inherited by the commands the tests start.
_SESSION_TMP = tempfile.mkdtemp(prefix="layerscan-tests-")
os.environ["TMPDIR"] = _SESSION_TMP
tempfile.tempdir = None  # recomputed from TMPDIR


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_SESSION_TMP, ignore_errors=True)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "corpus: needs the shared corpus; skipped with a reason when it is absent")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if HAVE_CORPUS:
        return
    skip = pytest.mark.skip(reason=NO_CORPUS)
    for item in items:
        if item.get_closest_marker("corpus") or "corpus" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)


pytest_plugins = ["registry_fixtures"]  # real-registry fixtures (tests/registry_fixtures.py)

"""Whole-image analyses shared by the report and end-to-end tests: each image and
engine is analyzed once per test session, and the ground truth is loaded once."""

from __future__ import annotations

import gzip
import json
from functools import cache

from conftest import IMAGES
from layerscan.analysis import Analysis
from layerscan.config import Config
from layerscan.pipeline import analyze

ENGINES = ("native", "reference")
ENGINE = ENGINES[0]


def analysis(name: str, engine: str = ENGINE) -> Analysis:
    return _analysis(name, engine)


@cache
def _analysis(name: str, engine: str) -> Analysis:
    return analyze(f"oci-dir:{IMAGES / name}", Config(), engine=engine, progress=False)


@cache
def ground_truth(name: str) -> dict[str, dict]:
    """path -> record of `<name>.files.json.gz`."""
    with gzip.open(IMAGES / f"{name}.files.json.gz", "rt") as f:
        return {r["path"]: r for r in json.load(f)["files"]}

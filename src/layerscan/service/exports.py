"""What the service reads from an Anchore image export (`analyze --format anchore`): the image's
identity and the summary counts. The worker and POST /imageimport both go through here, so an
imported image and an analyzed one have the same summary."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any

from ..errors import ExitCode, LayerscanError
from ..refs import SHA256_DIGEST

# Anchore's content types that hold packages, and the package_list element each comes from.
PACKAGE_ELEMENTS = {
    "os": "pkgs.allinfo",
    "npm": "pkgs.npms",
    "gem": "pkgs.gems",
    "python": "pkgs.python",
    "java": "pkgs.java",
    "go": "pkgs.go",
    "binary": "pkgs.binary",
    "nuget": "pkgs.nuget",
}
SUMMARY_KEYS = (*PACKAGE_ELEMENTS, "files", "secrets", "layers")
_IMAGE_ID = re.compile(r"[0-9a-f]{64}")


class ExportError(LayerscanError):
    """An Anchore export that is not one: wrong shape, or no image identity in it."""

    exit_code = ExitCode.USAGE


@dataclasses.dataclass(frozen=True)
class ExportInfo:
    image_digest: str  # from docker_data.RepoDigests[0], as Anchore's loader takes it
    image_id: str
    fulltags: tuple[str, ...]
    summary: dict[str, int]


def read_export(data: bytes) -> ExportInfo:
    """The identity and summary of an export; ExportError names what is wrong."""
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise ExportError(f"the export is not JSON: {e}") from None
    image = _path(doc, (0, "image"))
    image_id = image.get("imageId")
    if not isinstance(image_id, str) or not _IMAGE_ID.fullmatch(image_id):
        raise ExportError("the export's image.imageId is not a 64-hex image id")
    report = _path(image, ("imagedata", "image_report"))
    docker_data = report.get("docker_data") or {}
    repo_digests = docker_data.get("RepoDigests") or []
    digest = repo_digests[0].split("@", 1)[-1] if repo_digests and isinstance(repo_digests[0], str) else ""
    if not SHA256_DIGEST.fullmatch(digest):
        raise ExportError("the export has no manifest digest in image_report.docker_data.RepoDigests[0]")
    tags = tuple(t for t in docker_data.get("RepoTags") or [] if isinstance(t, str) and t)
    analysis = _path(image, ("imagedata", "analysis_report"))
    return ExportInfo(digest, image_id, tags, summarize(analysis, report))


def summarize(analysis_report: Mapping[str, Any], image_report: Mapping[str, Any]) -> dict[str, int]:
    """Package counts by Anchore content type, final files, secret hits and layers."""
    packages = _base(analysis_report, "package_list")
    out = {ctype: len(packages.get(element) or {}) for ctype, element in PACKAGE_ELEMENTS.items()}
    out["files"] = len(_base(analysis_report, "file_list").get("files.all") or {})
    hits = 0
    for value in (_base(analysis_report, "secret_search").get("regexp_matches.all") or {}).values():
        matches = json.loads(value) if isinstance(value, str) else value
        hits += sum(len(lines) for lines in matches.values())
    out["secrets"] = hits
    out["layers"] = len(image_report.get("layers") or [])
    return out


def _base(analysis_report: Mapping[str, Any], analyzer: str) -> dict[str, dict]:
    """{element: base} of one analyzer's output."""
    return {element: (v or {}).get("base") or {} for element, v in (analysis_report.get(analyzer) or {}).items()}


def _path(doc: Any, keys: tuple[int | str, ...]) -> dict:
    node = doc
    for key in keys:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            node = None
        if node is None:
            break
    if not isinstance(node, dict):
        where = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keys)
        raise ExportError(f"not an Anchore image export: no object at {where.lstrip('.')}")
    return node

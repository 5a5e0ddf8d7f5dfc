"""Anchore's content, metadata and artifact responses, built from a stored Anchore image export.

The export is exactly what `layerscan analyze --format anchore` writes (anchore-format.md §2);
these are the shapes Anchore's API gives for it (§5, the engine's `extract_analyzer_content`
then `make_image_content_response`), so anchore-cli prints them as it prints Anchore's.
Every value goes through `_json` first: exports hold some entries as JSON strings (older
ones hold more), and Anchore's readers accept both.
"""

from __future__ import annotations

import base64
import binascii
import json
import stat
from collections.abc import Callable
from typing import Any

from .errors import ApiError

CONTENT_TYPES = ("os", "files", "npm", "gem", "python", "java", "binary", "go", "malware", "nuget")
METADATA_TYPES = ("manifest", "docker_history", "dockerfile")
ARTIFACT_TYPES = ("retrieved_files", "file_content_search", "secret_search")
OS_PACKAGE_TYPES = ("rpm", "dpkg", "apkg", "kb")
_NOT_A_FILE = "DIRECTORY_OR_OTHER"

Row = dict[str, Any]


def image_data(export: Any) -> dict[str, Any]:
    """The `imagedata` of an export (the one-element list, or its element)."""
    element = export[0] if isinstance(export, list) and export else export
    try:
        data = element["image"]["imagedata"]
    except (KeyError, TypeError):
        data = None
    if not isinstance(data, dict):
        raise ApiError(500, "the stored analysis is not an Anchore image export")
    return data


def content(export: Any, ctype: str) -> list[Any]:
    """GET /images/{digest}/content/{ctype}: one row per package (or file, or malware scan)."""
    if ctype not in CONTENT_TYPES:
        raise ApiError(404, f"content type {ctype!r} not available; available: {', '.join(CONTENT_TYPES)}")
    data = image_data(export)
    report = data.get("analysis_report") or {}
    if ctype == "files":
        return _files(report)
    if ctype == "malware":
        scans = _base(report, "malware", "malware")
        return [_json(v) for v in scans.values()]
    element = "pkgs.allinfo" if ctype == "os" else _PACKAGE_ELEMENT.get(ctype, f"pkgs.{ctype}")
    entries = {k: _json(v) for k, v in _base(report, "package_list", element).items()}
    build = _BUILDERS.get(ctype, _generic)
    return [build(key, entry) for key, entry in entries.items() if isinstance(entry, dict)]


def metadata(export: Any, mtype: str, manifest: bytes) -> str:
    """GET /images/{digest}/metadata/{mtype}: base64 text, as Anchore's `encodebytes` gives it."""
    if mtype not in METADATA_TYPES:
        raise ApiError(404, f"metadata type {mtype!r} not available; available: {', '.join(METADATA_TYPES)}")
    report = image_data(export).get("image_report") or {}
    if mtype == "manifest":
        raw = manifest
    elif mtype == "docker_history":
        raw = json.dumps(report.get("docker_history") or []).encode()
    else:
        # Beyond Anchore: it answers "" unless a Dockerfile was submitted ("Actual" mode); the
        # Dockerfile inferred from the history is more use than nothing.
        raw = str(report.get("dockerfile_contents") or "").encode()
    return base64.encodebytes(raw).decode()


def artifacts(export: Any, atype: str) -> list[Row]:
    """GET /images/{digest}/artifacts/{atype}: retrieved files, or the regex matches per file."""
    if atype not in ARTIFACT_TYPES:
        raise ApiError(404, f"artifact type {atype!r} not available; available: {', '.join(ARTIFACT_TYPES)}")
    report = image_data(export).get("analysis_report") or {}
    if atype == "retrieved_files":
        files = _base(report, "retrieve_files", "file_content.all")
        return [{"path": path, "b64_content": b64} for path, b64 in files.items()]
    analyzer = "secret_search" if atype == "secret_search" else "content_search"
    out = []
    for path, value in _base(report, analyzer, "regexp_matches.all").items():
        matches = _json(value)
        if isinstance(matches, dict):
            out.append({"path": path, "matches": [_regex_match(key, lines) for key, lines in matches.items()]})
    return out


def summary_metadata(export: Any) -> dict[str, Any]:
    """AnchoreImage.image_content.metadata: what `anchore-cli image get` prints about an image."""
    data = image_data(export)
    report = data.get("image_report") or {}
    distro = _base(data.get("analysis_report") or {}, "analyzer_meta", "analyzer_meta")
    meta = report.get("meta") or {}
    return {
        "arch": (report.get("docker_data") or {}).get("Architecture") or "N/A",
        "distro": distro.get("DISTRO", "N/A"),
        "distro_version": distro.get("DISTROVERS", "N/A"),
        "dockerfile_mode": report.get("dockerfile_mode", "N/A"),
        "image_size": int(meta.get("sizebytes") or 0),
        "layer_count": len(report.get("layers") or []),
    }


def repo_name(export: Any) -> str | None:
    """The repository an export names its image by ("registry/repo", from RepoDigests[0])."""
    report = image_data(export).get("image_report") or {}
    digests = (report.get("docker_data") or {}).get("RepoDigests") or []
    return digests[0].split("@", 1)[0] if digests and isinstance(digests[0], str) else None


# ---------------------------------------------------------------------------- builders


_PACKAGE_ELEMENT = {"npm": "pkgs.npms", "gem": "pkgs.gems"}


def _os(name: str, info: dict[str, Any]) -> Row:
    row: Row = {"package": name}
    for field in ("license", "origin", "size", "type", "version", "cpes", "sourcepkg"):
        row[field] = info.get(field)
    row["licenses"] = row["license"].split(" ") if row["license"] else []
    version, release = info.get("version"), info.get("release")
    if str(info.get("type", "")).lower() in OS_PACKAGE_TYPES and version and release:
        if version.lower() != "n/a" and release.lower() != "n/a":
            row["version"] = f"{version}-{release}"
    return row


def _listed(kind: str) -> Callable[[str, dict[str, Any]], Row]:
    """npm and gem entries: versions, origins and licenses are lists."""

    def build(location: str, info: dict[str, Any]) -> Row:
        lics = list(info.get("lics") or [])
        return {
            "package": info.get("name"),
            "type": kind,
            "location": location,
            "version": (info.get("versions") or [None])[0],
            "origin": ",".join(info.get("origins") or []) or "Unknown",
            "license": " ".join(lics) or "Unknown",
            "licenses": lics or ["Unknown"],
            "cpes": info.get("cpes", []),
        }

    return build


def _python(location: str, info: dict[str, Any]) -> Row:
    # Anchore sets the location to the entry's key (the module path): the site-packages
    # directory in the entry is shared by many packages.
    license_ = info.get("license") or ""
    return {
        "package": info.get("name"),
        "type": "PYTHON",
        "location": location,
        "version": info.get("version"),
        "origin": info.get("origin") or "Unknown",
        "license": license_ or "Unknown",
        "licenses": license_.split(" ") if license_ else ["Unknown"],
        "cpes": info.get("cpes", []),
    }


def _java(location: str, info: dict[str, Any]) -> Row:
    maven = info.get("maven-version")
    # Anchore falls back to the version in the first CPE; without one it is N/A.
    version = maven if maven and str(maven).lower() not in ("none", "n/a") else _cpe_version(info.get("cpes") or [])
    return {
        "package": info.get("name"),
        "type": str(info.get("type", "java")).upper(),
        "location": info.get("location", location),
        "specification-version": info.get("specification-version"),
        "implementation-version": info.get("implementation-version"),
        "maven-version": maven,
        "origin": info.get("origin") or "Unknown",
        "cpes": info.get("cpes", []),
        "metadata": info.get("metadata", {}),
        "version": version,
    }


def _generic(key: str, info: dict[str, Any]) -> Row:
    """binary, go, nuget and any other pkgs.<type>."""
    license_ = info.get("license") or "Unknown"
    return {
        "package": info.get("name"),
        "type": str(info.get("type", "")).upper(),
        # Beyond Anchore: an entry without a location (nuget) is located by its key, not "Unknown".
        "location": info.get("location") or key,
        "version": info.get("version") or "Unknown",
        "origin": info.get("origin") or "Unknown",
        "license": license_,
        "licenses": license_.split(" "),
        "cpes": info.get("cpes", []),
    }


_BUILDERS: dict[str, Callable[[str, dict[str, Any]], Row]] = {
    "os": _os,
    "npm": _listed("NPM"),
    "gem": _listed("GEM"),
    "python": _python,
    "java": _java,
}


def _files(report: dict[str, Any]) -> list[Row]:
    sums = _base(report, "file_checksums", "files.sha256sums")
    rows = []
    for path, value in _base(report, "file_list", "files.allinfo").items():
        info = _json(value)
        if not isinstance(info, dict):
            continue
        sha256 = sums.get(path)
        mode = info.get("mode")
        rows.append(
            {
                "filename": path,
                "linkdest": info.get("linkdst"),
                "size": info.get("size"),
                "mode": format(stat.S_IMODE(mode), "05o") if isinstance(mode, int) else None,
                "sha256": None if sha256 in (None, _NOT_A_FILE) else sha256,
                "type": info.get("type"),
                "uid": info.get("uid"),
                "gid": info.get("gid"),
            }
        )
    return rows


def _regex_match(key: str, lines: Any) -> Row:
    """A secret/content match key is base64 of the whole "NAME=regex" config string."""
    try:
        spec = base64.b64decode(key).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        spec = key
    name, _, regex = spec.partition("=")
    return {"name": name, "regex": regex, "lines": list(lines) if isinstance(lines, list) else []}


def _cpe_version(cpes: list[Any]) -> str:
    parts = str(cpes[0]).split(":") if cpes else []
    # cpe:2.3:part:vendor:product:version:...
    return parts[5] if len(parts) > 5 and parts[5] not in ("", "*", "-") else "N/A"


def _base(report: dict[str, Any], analyzer: str, element: str) -> dict[str, Any]:
    base = ((report.get(analyzer) or {}).get(element) or {}).get("base")
    return base if isinstance(base, dict) else {}


def _json(value: Any) -> Any:
    """As Anchore's safe_extract_json_value: a JSON string decoded, anything else as it is."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value

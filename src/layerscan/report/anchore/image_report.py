"""The export's `image_report` and the history-derived `layer_info`: what Anchore reads
from the manifest and config, and the size of the squashed tar it would have written."""

from __future__ import annotations

import posixpath
import re
from typing import Any

from ...analysis import Analysis
from ...filetree import ImageFiles
from ...scan.model import TYPE_BYTES
from ..jsonstream import Json

_NOP = re.compile(r"^/bin/sh -c #\(nop\) ")
_DIR, _FILE, _HARDLINK = TYPE_BYTES["dir"], TYPE_BYTES["file"], TYPE_BYTES["hardlink"]
_NOP_DOCKERFILE = re.compile(r"^/bin/sh -c #\(nop\) +(.*)")

HistoryEntry = dict[str, Any]  # Created, CreatedBy (str), Comment, Id (str), Size (int), Tags


def image_id_of(a: Analysis) -> str:
    """Anchore's imageId: the config digest's hex, without 'sha256:'."""
    return a.config_digest.split(":", 1)[-1]


def image_report(a: Analysis) -> dict[str, Json]:
    image_id = image_id_of(a)
    history = docker_history(a.manifest, a.config)
    layers = [str(d.get("digest", "")) for d in a.manifest.get("layers", [])]
    return {
        "meta": {
            "shortparentId": "",
            "sizebytes": squashed_tar_size(a.files),
            "imageId": image_id,
            "usertype": None,
            "shortId": image_id[:12],
            "imagename": image_id,
            "parentId": "",
            "shortname": image_id[:12],
            "humanname": a.repo_tags[0] if a.repo_tags else a.source_name,
        },
        "docker_history": history,
        "dockerfile_mode": "Guessed",
        "dockerfile_contents": inferred_dockerfile(history),
        "layers": layers,
        "familytree": list(layers),
        "docker_data": {
            "Architecture": a.architecture,
            # The policy engine takes the image digest from RepoDigests[0] after '@', so a
            # local image (oci-dir, archive) gets a name made from its source.
            "RepoDigests": list(a.repo_digests) or [f"{_local_repo(a.source_name)}@{a.manifest_digest}"],
            "RepoTags": list(a.repo_tags),
        },
    }


def docker_history(manifest: dict[str, Any], config: dict[str, Any]) -> list[HistoryEntry]:
    """As Anchore's DockerV2ManifestMetadata: one entry per config history entry, the
    non-empty ones paired with manifest layers in order."""
    layers = list(manifest.get("layers", []))
    raw = config.get("history")
    if raw is None:
        raw = [{}] * len(layers)
    out = []
    for entry in raw:
        if entry.get("empty_layer", False) or not layers:
            # Beyond Anchore: more non-empty history entries than layers would crash it.
            lid, size = "<missing>", 0
        else:
            layer = layers.pop(0)
            lid, size = layer.get("digest", ""), int(layer.get("size", 0))
        out.append(
            {
                "Created": entry.get("created", ""),
                "CreatedBy": entry.get("created_by", ""),
                "Comment": "",
                "Id": lid,
                "Size": size,
                "Tags": [],
            }
        )
    return out


def inferred_dockerfile(history: list[HistoryEntry]) -> str:
    lines = ["FROM scratch"]
    for h in history:
        m = _NOP_DOCKERFILE.match(h["CreatedBy"])
        if m:
            lines.append(m.group(1))
        elif h["CreatedBy"]:
            lines.append("RUN " + h["CreatedBy"])
    return "\n".join(lines) + "\n"


def layers_to_dockerfile(history: list[HistoryEntry]) -> list[dict[str, str]]:
    """layer_info's dockerfile_to_layer_map."""
    out = []
    for h in history:
        layer = h["Id"].removeprefix("sha256:")
        out.append(
            {
                "layer": "unknown" if layer == "<missing>" else layer,
                "dockerfile_line": _NOP.sub("", h["CreatedBy"]),
                "layer_sizebytes": str(h["Size"]),
            }
        )
    return out


def squashed_tar_size(files: ImageFiles) -> int:
    """The size of the squashed.tar Anchore would write (its `imageSize`), computed
    from the file table: PAX headers, data blocks, hardlinks to other layers copied
    whole ("deferred hardlinks"), end blocks, padded to tarfile's 10240-byte record."""
    total = 512 * len(files) + 1024
    types, links, sizes = files.types, files.links, files.sizes
    for i, path in enumerate(files.paths):
        kind, link = types[i], links[i] or ""
        name = path.lstrip("/") + ("/" if kind == _DIR else "")
        # Names that fit a ustar header (ASCII, at most 100 bytes) need no PAX record.
        if len(name) > 100 or len(link) > 100 or not name.isascii() or not link.isascii():
            total += _pax_size(name, link)
        if kind == _FILE or (kind == _HARDLINK and _hardlink_copied(files, i)):
            total += -(-sizes[i] // 512) * 512
    return -(-total // 10240) * 10240


def _hardlink_copied(files: ImageFiles, i: int) -> bool:
    target = files.row(files.links[i] or "")
    return target is None or files.layers[target] != files.layers[i]


def _pax_size(name: str, link: str) -> int:
    records = 0
    for key, value in (("path", name), ("linkpath", link)):
        raw = value.encode("utf-8", "surrogateescape")
        if len(raw) > 100 or not value.isascii():
            body = f" {key}={value}\n".encode("utf-8", "surrogateescape")
            n = len(body) + 1
            while len(str(n)) + len(body) != n:
                n = len(str(n)) + len(body)
            records += n
    return 512 + -(-records // 512) * 512 if records else 0


def _local_repo(source: str) -> str:
    """'oci-dir:/images/debian-apps' -> 'localhost/debian-apps'."""
    path = source.split(":", 1)[1] if re.match(r"^[a-z-]+:", source) else source
    base = posixpath.basename(path.rstrip("/")) or "image"
    base = re.sub(r"\.(tar|tgz|tar\.gz)$", "", base)
    return "localhost/" + (re.sub(r"[^a-z0-9._-]+", "-", base.lower()).strip("-._") or "image")

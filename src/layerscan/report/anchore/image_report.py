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
_FILE, _HARDLINK = TYPE_BYTES["file"], TYPE_BYTES["hardlink"]
_NOP_DOCKERFILE = re.compile(r"^/bin/sh -c #\(nop\) +(.*)")

HistoryEntry = dict[str, Any]  # Created, CreatedBy (str), Comment, Id (str), Size (int), Tags


def image_id_of(a: Analysis) -> str:
    """Anchore's imageId: the config digest's hex, without 'sha256:'."""
    return a.config_digest.split(":", 1)[-1]


def image_report_of(a: Analysis) -> dict[str, Json]:
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
    total = 1024
    types, sizes = files.types, files.sizes
    for i, path in enumerate(files.paths):
        kind = types[i]
        total += 512 + _pax_size(files, i, path.lstrip("/"))
        if kind == _FILE or (kind == _HARDLINK and _hardlink_copied(files, i)):
            total += -(-sizes[i] // 512) * 512
    return -(-total // 10240) * 10240


def _hardlink_copied(files: ImageFiles, i: int) -> bool:
    target = files.row(files.links[i] or "")
    return target is None or files.layers[target] != files.layers[i]


def _pax_size(files: ImageFiles, i: int, name: str) -> int:
    """The PAX extended header tarfile writes before row i. Anchore's squash sets
    `pax_headers["path"]` on every member, so every entry has one (tarfile's own rules
    add the other keys: strings too long or not ASCII, numbers beyond the ustar fields).
    Written out key by key: it runs once per file."""
    size = _pax_record_size("path", name)
    link = files.links[i]
    if link:
        if files.types[i] == _HARDLINK:
            link = link.lstrip("/")
        if len(link) > 100 or not link.isascii():
            size += _pax_record_size("linkpath", link)
    uname, gname = files.unames[i], files.gnames[i]
    if len(uname) > 32 or not uname.isascii():
        size += _pax_record_size("uname", uname)
    if len(gname) > 32 or not gname.isascii():
        size += _pax_record_size("gname", gname)
    uid, gid, file_size = files.uids[i], files.gids[i], files.sizes[i]
    if not 0 <= uid < _USTAR_ID_LIMIT:
        size += _pax_record_size("uid", str(uid))
    if not 0 <= gid < _USTAR_ID_LIMIT:
        size += _pax_record_size("gid", str(gid))
    if not 0 <= file_size < _USTAR_SIZE_LIMIT:
        size += _pax_record_size("size", str(file_size))
    return 512 + -(-size // 512) * 512


# The largest numbers the ustar fields hold: 8 and 12 bytes of octal digits with their NUL.
_USTAR_ID_LIMIT = 8**7
_USTAR_SIZE_LIMIT = 8**11


def _pax_record_size(key: str, value: str) -> int:
    """len(b"%d %s=%s\n"), where %d counts the record's own length."""
    body = len(key) + (len(value) if value.isascii() else len(value.encode("utf-8", "surrogateescape"))) + 3
    # tarfile finds the length by iterating to its least fixed point n = body + len(str(n)):
    # that is body + the digits of body, or one more when that sum has a digit more.
    digits = len(str(body))
    n = body + digits
    return n if len(str(n)) == digits else n + 1


def _local_repo(source: str) -> str:
    """'oci-dir:/images/debian-apps' -> 'localhost/debian-apps'."""
    path = source.split(":", 1)[1] if re.match(r"^[a-z-]+:", source) else source
    base = posixpath.basename(path.rstrip("/")) or "image"
    base = re.sub(r"\.(tar|tgz|tar\.gz)$", "", base)
    return "localhost/" + (re.sub(r"[^a-z0-9._-]+", "-", base.lower()).strip("-._") or "image")

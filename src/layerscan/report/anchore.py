"""The Anchore Engine image export (`anchore-format.md` §2), streamed to its file.

It loads wherever an Anchore Engine analysis loads (the policy engine's ImageLoader,
the API content formatters, `anchore-cli image import`). Where Anchore has a quirk
that consumers see, it is kept and marked "Anchore quirk"; where we do better, the
difference is marked "beyond Anchore".
"""

from __future__ import annotations

import base64
import json
import posixpath
import re
import stat
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from ..analysis import Analysis
from ..catalog import anchore as catalog_anchore
from ..filetree import FinalFile, ImageFiles
from ..findings import SecretFinding
from ..scan.rules import Rule
from .anchore_packages import package_list
from .jsonstream import Arr, Obj, dump

NOT_A_FILE = "DIRECTORY_OR_OTHER"
_NOP = re.compile(r"^/bin/sh -c #\(nop\) ")
_NOP_DOCKERFILE = re.compile(r"^/bin/sh -c #\(nop\) +(.*)")

# S_IFMT bits as Anchore ORs them onto the tar mode; hardlinks count as regular files.
_MODE_MASK = {
    "file": stat.S_IFREG,
    "hardlink": stat.S_IFREG,
    "dir": stat.S_IFDIR,
    "symlink": stat.S_IFLNK,
    "char": stat.S_IFCHR,
    "block": stat.S_IFBLK,
    "fifo": stat.S_IFIFO,
}
# tarfile.isdev() is true for char, block and fifo entries alike.
_ALLINFO_TYPE = {
    "file": "file",
    "hardlink": "file",
    "dir": "dir",
    "symlink": "slink",
    "char": "dev",
    "block": "dev",
    "fifo": "dev",
}


def write(analysis: Analysis, out: TextIO) -> None:
    dump(document(analysis), out)
    out.write("\n")


def document(a: Analysis) -> Arr:
    image_id = image_id_of(a)
    imagedata = Obj(
        [
            ("analyzer_manifest", {}),
            ("analysis_report", Obj(_analysis_report(a))),
            ("image_report", image_report(a)),
        ]
    )
    return Arr([Obj([("image", Obj([("imageId", image_id), ("imagedata", imagedata)]))])])


def image_id_of(a: Analysis) -> str:
    """Anchore's imageId: the config digest's hex, without 'sha256:'."""
    return a.config_digest.split(":", 1)[-1]


# ----------------------------------------------------------------------------- image_report


def image_report(a: Analysis) -> dict[str, Any]:
    image_id = image_id_of(a)
    history = docker_history(a.manifest, a.config)
    layers = [d.get("digest", "") for d in a.manifest.get("layers", [])]
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


def docker_history(manifest: dict, config: dict) -> list[dict[str, Any]]:
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


def inferred_dockerfile(history: list[dict[str, Any]]) -> str:
    lines = ["FROM scratch"]
    for h in history:
        m = _NOP_DOCKERFILE.match(h["CreatedBy"])
        if m:
            lines.append(m.group(1))
        elif h["CreatedBy"]:
            lines.append("RUN " + h["CreatedBy"])
    return "\n".join(lines) + "\n"


def squashed_tar_size(files: ImageFiles) -> int:
    """The size of the squashed.tar Anchore would write (its `imageSize`), computed
    from the file table: PAX headers, data blocks, hardlinks to other layers copied
    whole ("deferred hardlinks"), end blocks, padded to tarfile's 10240-byte record."""
    total = 0
    table = files.files
    for path, entry in table.items():
        r = entry.record
        name = path.lstrip("/") + ("/" if r.type == "dir" else "")
        total += 512 + _pax_size(name, r.link or "")
        copied = r.type == "file" or (r.type == "hardlink" and _hardlink_copied(table, entry))
        if copied:
            total += -(-r.size // 512) * 512
    total += 1024
    return -(-total // 10240) * 10240


def _hardlink_copied(table: dict[str, FinalFile], entry: FinalFile) -> bool:
    target = table.get(entry.record.link or "")
    return target is None or target.layer != entry.layer


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


# ----------------------------------------------------------------------------- analysis_report


def _analysis_report(a: Analysis) -> Iterator[tuple[str, Any]]:
    files = a.files.files
    paths = sorted(files)
    yield "analyzer_meta", _element("analyzer_meta", analyzer_meta(a).items())
    history = docker_history(a.manifest, a.config)
    yield (
        "layer_info",
        _element("layers_to_dockerfile", [("dockerfile_to_layer_map", json.dumps(layers_to_dockerfile(history)))]),
    )
    yield (
        "file_list",
        Obj(
            [
                ("files.all", _base((p, oct(files[p].record.mode & 0o7777)) for p in paths)),
                ("files.allinfo", _base((p, json.dumps(allinfo(files[p]))) for p in paths)),
            ]
        ),
    )
    # Beyond Anchore: sha1sums for every distro, not only Alpine.
    yield (
        "file_checksums",
        Obj([(f"files.{algo}sums", _base(_checksums(files, paths, algo))) for algo in ("sha256", "md5", "sha1")]),
    )
    pkgfilemeta = catalog_anchore.pkgfilemeta(a.packages)
    if pkgfilemeta:
        yield "file_package_verify", _element("distro.pkgfilemeta", sorted(pkgfilemeta.items()))
    suids = [(p, oct(files[p].record.mode & 0o7777)) for p in paths if files[p].record.mode & stat.S_ISUID]
    if suids:  # Anchore leaves out an element with no entries
        yield "file_suids", _element("files.suids", suids)
    if a.retrieved_files:
        yield (
            "retrieve_files",
            _element(
                "file_content.all",
                [(path, base64.b64encode(content).decode("ascii")) for path, content in a.retrieved_files.items()],
            ),
        )
    for analyzer, kind in (("secret_search", "secret"), ("content_search", "content")):
        matches = regexp_matches(a.secrets, a.rules, kind)
        if matches:
            yield analyzer, _element("regexp_matches.all", matches.items())
    yield "package_list", package_list(a.packages, a.distro)


def _base(items: Iterable[tuple[str, Any]]) -> Obj:
    return Obj([("base", Obj(items))])


def _element(name: str, items: Iterable[tuple[str, Any]]) -> Obj:
    return Obj([(name, _base(items))])


def analyzer_meta(a: Analysis) -> dict[str, str]:
    # Anchore writes Unknown / 0 / =DISTRO when nothing identifies the distro.
    if a.distro is None or not a.distro.id:
        return {"DISTRO": "Unknown", "DISTROVERS": "0", "LIKEDISTRO": "Unknown"}
    return {
        "DISTRO": a.distro.id,
        "DISTROVERS": a.distro.version_id or "0",
        "LIKEDISTRO": a.distro.id_like or a.distro.id,
    }


def layers_to_dockerfile(history: list[dict[str, Any]]) -> list[dict[str, str]]:
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


def allinfo(entry: FinalFile) -> dict[str, Any]:
    """One `files.allinfo` value, with Anchore's quirks (get_files_from_squashtar)."""
    r = entry.record
    linkdst = linkdst_fullpath = None
    size = r.size
    if r.type == "symlink":
        linkdst = r.link or ""
        size = len(linkdst)
        # Anchore quirk: a relative target is joined *before* the absolute link path, so
        # normpath gives the link's own path. The policy engine stores it as is.
        linkdst_fullpath = linkdst if linkdst.startswith("/") else posixpath.normpath(posixpath.join(linkdst, r.path))
    othernames: dict[str, bool] = {}
    for name in (r.path, linkdst_fullpath, linkdst, r.path):
        if name:
            othernames[name] = True
    return {
        "name": r.path,
        "fullpath": r.path,
        "size": size,
        "mode": _MODE_MASK.get(r.type, 0) | (r.mode & 0o7777),
        "uid": r.uid,
        "gid": r.gid,
        "linkdst": linkdst,
        "linkdst_fullpath": linkdst_fullpath,
        "type": _ALLINFO_TYPE.get(r.type, "UNKNOWN"),
        "othernames": othernames,
    }


def _checksums(files: dict[str, FinalFile], paths: list[str], algo: str) -> Iterator[tuple[str, str]]:
    for path in paths:
        r = files[path].record
        # Hardlinks carry their target's digests, as Anchore reads the target's content.
        value = getattr(r, algo)
        yield path, value if value and r.type in ("file", "hardlink") else NOT_A_FILE


def rule_key(rule: Rule) -> str:
    """Anchore's key for a rule: base64.encodebytes of the whole "NAME=regex" string,
    a newline every 76 characters and one at the end (13_secret_content_search.py)."""
    return base64.encodebytes(f"{rule.id}={rule.pattern}".encode()).decode("ascii")


def regexp_matches(findings: Iterable[SecretFinding], rules: Iterable[Rule], kind: str) -> dict[str, str]:
    """path -> JSON string {rule key: [0-based line, ...]} for findings in the final image."""
    keys = {r.id: rule_key(r) for r in rules if r.kind == kind}
    by_path: dict[str, dict[str, list[int]]] = {}
    for f in sorted(findings, key=lambda f: (f.path, f.line)):
        if f.kind != kind or not f.in_final_image:
            continue  # Anchore reports the final image only; the JSON report has the rest
        key = keys.get(f.rule) or base64.encodebytes(f.rule.encode()).decode("ascii")
        lines = by_path.setdefault(f.path, {}).setdefault(key, [])
        if f.line - 1 not in lines:
            lines.append(f.line - 1)
    return {path: json.dumps(m) for path, m in by_path.items()}

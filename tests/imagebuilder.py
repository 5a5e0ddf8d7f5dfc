"""Container images written from Python data, for the source and squash tests and the demo image.

    img = Image([Layer([d("etc"), f("etc/motd", b"hi")]), Layer([whiteout("etc/motd")], "zstd")])
    files = oci_layout([img])                 # {"oci-layout": ..., "index.json": ..., "blobs/sha256/<hex>": ...}
    write_dir(files, tmp / "layout")          # oci-dir
    write_tar(files, tmp / "img.tar", dot_prefix=True)   # oci-archive, "./" names as some tools write
    write_tar(docker_archive(img), tmp / "docker.tar")  # docker save, classic form (or form="oci")

A layout is a plain dict of name -> bytes (or Link), so a test can break it on purpose
(drop a blob, swap bytes, add a "../" name) before writing it. Layer tars come from
tarbuilder, compressed per layer (gzip, zstd or none). Everything is deterministic.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import itertools
import json
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import pyzstd

from tarbuilder import Compression, Entry, build, opaque, whiteout  # noqa: F401 - re-exported for the tests

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_TYPES = {
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "none": "application/vnd.oci.image.layer.v1.tar",
}
MTIME = 1_700_000_000
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"


def d(path: str, mode: int = 0o755, **kw: object) -> Entry:
    return Entry(path, "dir", mode=mode, mtime=MTIME, **kw)  # type: ignore[arg-type]


def f(path: str, data: bytes = b"", mode: int = 0o644, **kw: object) -> Entry:
    return Entry(path, "file", data=data, mode=mode, mtime=MTIME, **kw)  # type: ignore[arg-type]


def l(path: str, target: str, **kw: object) -> Entry:  # noqa: E741, E743 - reads like the tar type letter
    return Entry(path, "symlink", link=target, mode=0o777, mtime=MTIME, **kw)  # type: ignore[arg-type]


def h(path: str, target: str, **kw: object) -> Entry:
    return Entry(path, "hardlink", link=target, mtime=MTIME, **kw)  # type: ignore[arg-type]


@dataclasses.dataclass(frozen=True)
class Layer:
    entries: Sequence[Entry]
    compression: Compression = "gzip"
    media_type: str | None = None  # instead of the one the compression implies (foreign, unknown...)
    present: bool = True  # False: the manifest names the blob but the layout leaves it out

    def tar(self) -> bytes:
        return build(self.entries)

    def blob(self) -> bytes:
        tar = self.tar()
        if self.compression == "gzip":
            return gzip.compress(tar, mtime=0)
        if self.compression == "zstd":
            return pyzstd.compress(tar)
        return tar


@dataclasses.dataclass(frozen=True)
class Image:
    layers: Sequence[Layer]
    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""
    config: Mapping[str, object] = dataclasses.field(default_factory=dict)  # the image config's "config"

    @property
    def platform(self) -> dict:
        p = {"architecture": self.architecture, "os": self.os}
        return {**p, "variant": self.variant} if self.variant else p

    def config_json(self) -> dict:
        return {
            **self.platform,
            "created": "2023-11-14T22:13:20Z",
            "config": dict(self.config),
            "rootfs": {"type": "layers", "diff_ids": [digest_of(layer.tar()) for layer in self.layers]},
            "history": [
                {"created": "2023-11-14T22:13:20Z", "created_by": f"layer {i}"} for i in range(len(self.layers))
            ],
        }


class Link(NamedTuple):
    """An archive member that is a link: a symlink (relative to the member's directory) or a hardlink."""

    target: str
    hard: bool = False


Files = dict[str, "bytes | Link"]


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob_name(digest: str) -> str:
    return "blobs/" + digest.replace(":", "/", 1)


def canonical(doc: object) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def put_blob(files: Files, data: bytes, media_type: str) -> dict:
    """Store `data` as a blob; its descriptor."""
    digest = digest_of(data)
    files[blob_name(digest)] = data
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def put_json(files: Files, doc: object, media_type: str) -> dict:
    return put_blob(files, canonical(doc), media_type)


def put_image(files: Files, image: Image) -> dict:
    """Layers, config and manifest of one image as blobs; the manifest's descriptor (with platform)."""
    layers = []
    for layer in image.layers:
        data = layer.blob()
        desc = put_blob(files, data, layer.media_type or LAYER_TYPES[layer.compression])
        if not layer.present:
            del files[blob_name(desc["digest"])]
        layers.append(desc)
    config = put_json(files, image.config_json(), OCI_CONFIG)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers}
    return {**put_json(files, manifest, OCI_MANIFEST), "platform": image.platform}


def oci_layout(
    images: Sequence[Image], *, tag: str = "latest", nested: bool = False, refs: Sequence[str | None] | None = None
) -> Files:
    """An OCI image layout. One image: index.json names its manifest, with ref.name `tag`.
    Several (one per platform): index.json lists them all, or (`nested`) names one index blob
    that does. `refs`: several images side by side instead, each with its own ref.name (None: none)."""
    files: Files = {"oci-layout": canonical({"imageLayoutVersion": "1.0.0"})}
    manifests = [put_image(files, image) for image in images]
    if refs is not None:
        manifests = [
            {**m, "annotations": {REF_NAME: r}} if r is not None else m for m, r in zip(manifests, refs, strict=True)
        ]
    elif nested:
        inner = put_json(files, {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}, OCI_INDEX)
        manifests = [{**inner, "annotations": {REF_NAME: tag}}]
    elif len(manifests) == 1:
        manifests = [{**manifests[0], "annotations": {REF_NAME: tag}}]
    files["index.json"] = canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
    return files


def docker_archive(image: Image, *, tags: Sequence[str] = ("example.com/app:latest",), form: str = "classic") -> Files:
    return docker_save([(image, tags)], form=form)


def docker_save(images: Sequence[tuple[Image, Sequence[str]]], *, form: str = "classic") -> Files:
    """`docker save` output of several images, each with its RepoTags (none: untagged).
    classic: manifest.json, <config hex>.json and <n>/layer.tar (uncompressed; a repeated layer
    is a symlink to its first copy, as Docker writes it). oci: Docker 25's OCI layout with
    uncompressed layers, one index.json entry per tag (io.containerd.image.name, and the tag
    alone as ref.name, as Docker writes them; an untagged image gets one unnamed entry), plus
    manifest.json."""
    if form == "oci":
        return _docker_oci(images)
    files: Files = {}
    first: dict[str, str] = {}
    numbers = itertools.count()
    items = []
    for image, tags in images:
        config = canonical(image.config_json())
        config_name = digest_of(config).split(":", 1)[1] + ".json"
        files[config_name] = config
        names = []
        for layer in image.layers:
            tar = layer.tar()
            name = f"{next(numbers):064x}/layer.tar"
            if digest_of(tar) in first:
                files[name] = Link(f"../{first[digest_of(tar)]}")
            elif layer.present:
                files[name] = tar
                first[digest_of(tar)] = name
            names.append(name)
        items.append({"Config": config_name, "RepoTags": list(tags), "Layers": names})
    files["manifest.json"] = canonical(items)
    return files


def _docker_oci(images: Sequence[tuple[Image, Sequence[str]]]) -> Files:
    files: Files = {"oci-layout": canonical({"imageLayoutVersion": "1.0.0"})}
    entries, items = [], []
    for image, tags in images:
        plain = dataclasses.replace(
            image, layers=[dataclasses.replace(layer, compression="none") for layer in image.layers]
        )
        desc = {k: v for k, v in put_image(files, plain).items() if k != "platform"}
        manifest = json.loads(files[blob_name(desc["digest"])])
        for t in tags:
            entries.append({**desc, "annotations": {CONTAINERD_NAME: _full_name(t), REF_NAME: t.rsplit(":", 1)[1]}})
        if not tags:
            entries.append(desc)
        items.append(
            {
                "Config": blob_name(manifest["config"]["digest"]),
                "RepoTags": list(tags),
                "Layers": [blob_name(x["digest"]) for x in manifest["layers"]],
            }
        )
    files["index.json"] = canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    files["manifest.json"] = canonical(items)
    return files


def _full_name(tag: str) -> str:
    """A RepoTag as Docker writes it in io.containerd.image.name: with its registry and, on Docker Hub, library/."""
    first, _, rest = tag.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return tag
    return f"docker.io/{tag}" if rest else f"docker.io/library/{tag}"


def write_dir(files: Files, root: Path) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, Link):
            path.symlink_to(data.target)
        else:
            path.write_bytes(data)
    return root


def write_tar(files: Files, path: Path, *, dot_prefix: bool = False) -> Path:
    """An uncompressed tar of `files`, with directory entries, in name order.
    Names are written as given (a test may pass "../x"); `dot_prefix` writes "./name"."""
    prefix = "./" if dot_prefix else ""
    dirs = sorted({name.rsplit("/", i)[0] for name in files for i in range(1, name.count("/") + 1)} - {"", ".."})
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        if dot_prefix:
            tf.addfile(_info("./", tarfile.DIRTYPE))
        for name in dirs:
            tf.addfile(_info(prefix + name + "/", tarfile.DIRTYPE))
        for name, data in sorted(files.items()):
            if isinstance(data, Link):
                tf.addfile(_info(prefix + name, tarfile.LNKTYPE if data.hard else tarfile.SYMTYPE, data.target))
            else:
                ti = _info(prefix + name, tarfile.REGTYPE)
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
    return path


def _info(name: str, kind: bytes, link: str = "") -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mtime = kind, link, MTIME
    ti.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return ti

"""Local images: an OCI layout directory, an OCI archive, or a `docker save` tar.

Nothing is extracted. A directory's blobs are mmap'd; an archive is one mmap and
each blob is a memoryview slice of it (a tar member is a byte range). Manifests and
configs are digest-checked as they are read; layer digests are checked by the
scanner in its single pass over the layer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import os
import posixpath
import tarfile
from pathlib import Path
from typing import Iterator, Protocol

from ..errors import DigestMismatch, SourceError
from ..image import Descriptor, LayerBlob, Platform
from .index import INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, PlatformNotFound, select_manifest

DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")
LAYER_MEDIA_TYPES = (
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
)
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"


class _Store(Protocol):
    """Named files of a layout: a directory or a tar archive."""

    def read(self, name: str) -> bytes | None: ...

    def view(self, name: str) -> memoryview | mmap.mmap | None: ...

    def close(self) -> None: ...


def _safe_name(name: str) -> str:
    """A layout-relative name; '..' escaping the layout is refused, never followed."""
    parts: list[str] = []
    for part in name.split("/"):
        if part == "..":
            if not parts:
                raise SourceError(f"refusing the path {name!r}: it escapes the image")
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


class _DirStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._maps: list[mmap.mmap] = []

    def _path(self, name: str) -> Path | None:
        p = self.root / _safe_name(name)
        # A blob that is a symlink out of the layout is not part of the image.
        if not p.is_file() or not p.resolve().is_relative_to(self.root.resolve()):
            return None
        return p

    def read(self, name: str) -> bytes | None:
        p = self._path(name)
        return p.read_bytes() if p is not None else None

    def view(self, name: str) -> mmap.mmap | bytes | None:
        p = self._path(name)
        if p is None:
            return None
        with open(p, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                return b""  # mmap refuses empty files
            m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self._maps.append(m)
        return m

    def close(self) -> None:
        for m in self._maps:
            with contextlib.suppress(BufferError):
                m.close()


class _TarStore:
    """A tar archive read in place: a map of member name -> byte range of one mmap."""

    MAX_LINK_HOPS = 16

    def __init__(self, path: Path) -> None:
        self._file = open(path, "rb")
        try:
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
            self._members: dict[str, tarfile.TarInfo] = {}
            with tarfile.open(fileobj=self._file, mode="r:") as tf:
                for ti in tf:
                    if ti.isfile() or ti.issym() or ti.islnk():
                        self._members[posixpath.normpath(ti.name.lstrip("/"))] = ti
        except (tarfile.TarError, OSError, ValueError) as e:
            self._file.close()
            raise SourceError(f"{path}: not a readable tar archive ({e})") from None

    def _member(self, name: str) -> tarfile.TarInfo | None:
        name = _safe_name(name)
        for _ in range(self.MAX_LINK_HOPS):
            ti = self._members.get(name)
            if ti is None or ti.isfile():
                return ti
            # docker save links a layer used twice to its first copy
            base = "" if ti.islnk() else posixpath.dirname(name)
            name = _safe_name(posixpath.join(base, ti.linkname))
        return None

    def read(self, name: str) -> bytes | None:
        v = self.view(name)
        return bytes(v) if v is not None else None

    def view(self, name: str) -> memoryview | None:
        ti = self._member(name)
        if ti is None:
            return None
        return memoryview(self._map)[ti.offset_data : ti.offset_data + ti.size]

    def has(self, name: str) -> bool:
        return self._member(name) is not None

    def close(self) -> None:
        with contextlib.suppress(BufferError):
            self._map.close()
        self._file.close()


def _json(data: bytes | None, what: str) -> dict:
    if data is None:
        raise SourceError(f"{what} is missing")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise SourceError(f"{what} is not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise SourceError(f"{what} is not a JSON object")
    return doc


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _blob_name(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
        raise SourceError(f"unsupported or malformed digest {digest!r}")
    return f"blobs/sha256/{hexpart}"


class LayoutSource:
    """An image in an OCI layout (directory or archive) or a docker-save archive."""

    def __init__(self, name: str, store: _Store, platform: Platform | None) -> None:
        self.name = name
        self._store = store
        self.repo_tags: tuple[str, ...] = ()
        self.repo_digests: tuple[str, ...] = ()
        self._digest_is_diff_id = False
        try:
            if store.read("index.json") is not None:
                self._open_oci(platform)
            elif store.read("manifest.json") is not None:
                self._open_docker()
            else:
                raise SourceError(f"{name}: neither an OCI layout (index.json) nor a docker archive (manifest.json)")
        except BaseException:
            store.close()
            raise

    def _blob(self, desc: Descriptor, what: str) -> bytes:
        data = self._store.read(_blob_name(desc.digest))
        if data is None:
            raise SourceError(f"{what} blob {desc.digest} is missing from {self.name}")
        actual = _sha256(data)
        if actual != desc.digest:
            raise DigestMismatch(f"{what} {desc.digest}", desc.digest, actual)
        return data

    def _open_oci(self, platform: Platform | None) -> None:
        index = _json(self._store.read("index.json"), f"{self.name}: index.json")
        desc = _choose(index, platform, self.name)
        for _ in range(8):  # an index may point at another index
            raw = self._blob(desc, "manifest")
            doc = _json(raw, f"manifest {desc.digest}")
            media = doc.get("mediaType") or desc.media_type
            if media in INDEX_MEDIA_TYPES or (not media and "manifests" in doc):
                desc = _choose(doc, platform, self.name)
                continue
            break
        else:
            raise SourceError(f"{self.name}: indexes nested too deeply")
        _check_manifest(doc, media, desc.digest)
        self.manifest, self.manifest_digest = doc, desc.digest
        cfg = Descriptor.from_json(doc["config"])
        self.config = _json(self._blob(cfg, "config"), f"config {cfg.digest}")
        self.config_digest = cfg.digest
        self.layers = [_layer(d) for d in doc.get("layers") or []]
        # Docker 25+ writes an OCI layout plus manifest.json with the tags.
        extra = self._store.read("manifest.json")
        if extra is not None:
            with contextlib.suppress(SourceError, ValueError, TypeError, AttributeError):
                self.repo_tags = tuple(t for e in json.loads(extra) for t in e.get("RepoTags") or ())

    def _open_docker(self) -> None:
        """The classic `docker save` form: manifest.json names a config and layer tars."""
        try:
            entries = json.loads(self._store.read("manifest.json") or b"null")
        except ValueError as e:
            raise SourceError(f"{self.name}: manifest.json is not valid JSON ({e})") from None
        if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
            raise SourceError(f"{self.name}: manifest.json is not a list of images")
        entry = entries[0]
        cfg_name = str(entry.get("Config", ""))
        raw_cfg = self._store.read(cfg_name)
        self.config = _json(raw_cfg, f"{self.name}: config {cfg_name}")
        assert raw_cfg is not None
        self.config_digest = _sha256(raw_cfg)
        stem = posixpath.basename(cfg_name).removesuffix(".json")
        if len(stem) == 64 and "sha256:" + stem != self.config_digest:
            raise DigestMismatch(f"config {cfg_name}", "sha256:" + stem, self.config_digest)
        diff_ids = list((self.config.get("rootfs") or {}).get("diff_ids") or [])
        names = [str(n) for n in entry.get("Layers") or []]
        if len(names) != len(diff_ids):
            raise SourceError(f"{self.name}: {len(names)} layers but {len(diff_ids)} diff_ids in the config")
        self._layer_names = {}
        self.layers = []
        for name, diff_id in zip(names, diff_ids):
            view = self._store.view(name)
            if view is None:
                raise SourceError(f"{self.name}: layer {name} is missing")
            # An uncompressed layer tar is addressed by its diff_id; a compressed one
            # (some tools write them) by the hash of its bytes.
            digest = diff_id if bytes(view[:2]) != b"\x1f\x8b" and bytes(view[:4]) != b"\x28\xb5\x2f\xfd" \
                else _sha256(bytes(view))
            self.layers.append(Descriptor(DOCKER_LAYER, digest, len(view)))
            self._layer_names[digest] = name
        self.manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "digest": self.config_digest, "size": len(raw_cfg)},
            "layers": [{"mediaType": d.media_type, "digest": d.digest, "size": d.size} for d in self.layers],
        }
        # No manifest travels in this form; this is the digest of the one skopeo would write.
        self.manifest_digest = _sha256(json.dumps(self.manifest, indent=3).encode())
        self.repo_tags = tuple(entry.get("RepoTags") or ())
        self._digest_is_diff_id = True

    @contextlib.contextmanager
    def open_layer(self, desc: Descriptor) -> Iterator[LayerBlob | None]:
        name = self._layer_names[desc.digest] if self._digest_is_diff_id else _blob_name(desc.digest)
        view = self._store.view(name)
        if view is None:
            if "foreign" in desc.media_type or "nondistributable" in desc.media_type:
                yield None
                return
            raise SourceError(f"layer blob {desc.digest} is missing from {self.name}")
        if len(view) != desc.size:
            raise DigestMismatch(f"layer {desc.digest} size", f"{desc.size} bytes", f"{len(view)} bytes")
        yield LayerBlob(view, verified=False)

    def close(self) -> None:
        self._store.close()


def _choose(index: dict, platform: Platform | None, name: str) -> Descriptor:
    manifests = index.get("manifests")
    if not isinstance(manifests, list) or not manifests:
        raise SourceError(f"{name}: the index lists no manifests")
    try:
        descs = [Descriptor.from_json(m) for m in manifests]
    except (KeyError, TypeError, ValueError) as e:
        raise SourceError(f"{name}: malformed index entry ({e})") from None
    if len(descs) == 1 and platform is None:
        return descs[0]
    if platform is not None:
        return select_manifest(index, platform)
    for candidate in (Platform.host(), Platform("linux", "amd64")):
        with contextlib.suppress(PlatformNotFound):
            return select_manifest(index, candidate)
    return select_manifest(index, Platform.host())  # raises, listing what is there


def _check_manifest(doc: dict, media: str, digest: str) -> None:
    if doc.get("schemaVersion") == 1 or media in DOCKER_SCHEMA1:
        raise SourceError(f"manifest {digest} is Docker schema 1, which is not supported; re-push the image")
    if media and media not in MANIFEST_MEDIA_TYPES:
        raise SourceError(f"manifest {digest} has the unknown media type {media!r}")
    if not isinstance(doc.get("config"), dict) or not isinstance(doc.get("layers", []), list):
        raise SourceError(f"manifest {digest} has no config or layers")


def _layer(d: dict) -> Descriptor:
    try:
        desc = Descriptor.from_json(d)
    except (KeyError, TypeError, ValueError) as e:
        raise SourceError(f"malformed layer descriptor ({e})") from None
    if desc.media_type not in LAYER_MEDIA_TYPES:
        raise SourceError(f"layer {desc.digest} has the unknown media type {desc.media_type!r}")
    return desc


def open_layout(path: str, platform: Platform | None, kind: str) -> LayoutSource:
    """kind: "oci-dir", "oci-archive" or "docker-archive"; the archive kinds read the tar in place."""
    p = Path(path)
    if kind == "oci-dir":
        if not p.is_dir():
            raise SourceError(f"{path}: not a directory")
        return LayoutSource(f"oci-dir:{path}", _DirStore(p), platform)
    if not p.is_file():
        raise SourceError(f"{path}: no such file")
    return LayoutSource(f"{kind}:{path}", _TarStore(p), platform)

"""Local image sources: an OCI image layout directory, a tar of one, and `docker save` output.

Nothing is extracted. A layout directory's blobs are mmapped one at a time; an archive
is mmapped once and each blob is a memoryview of its byte range, since an uncompressed
tar stores a member's bytes contiguously. Manifests, indexes and configs are digest
checked as they are read; layers go to the scanner unverified (`LayerBlob.verified`
False) so that it checks their digest in its one pass over them.

Names are never trusted as paths: a blob is only addressed as `blobs/<alg>/<hex>` from a
validated digest, and any other name (docker-archive's manifest.json, archive links)
must be relative and stay inside the image root. (A layout directory may itself have
symlinked blobs, as Anchore's layer cache makes them; the digest check vouches for them.)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import mmap
import os
import posixpath
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple, Protocol

from ..errors import SourceError
from ..image import Buffer, Descriptor, LayerBlob, Platform
from .index import (
    DOCKER_MANIFEST,
    INDEX_MEDIA_TYPES,
    check_digest,
    descriptor,
    manifest_parts,
    parse_json,
    parse_manifest,
    select_manifest,
    verify_digest,
)

log = logging.getLogger(__name__)

DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
# What skopeo calls a docker-archive layer, compressed or not (the scanner sniffs compression).
DOCKER_ARCHIVE_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
CONTAINERD_NAME = "io.containerd.image.name"
MAX_INDEX_DEPTH = 4  # index → index → manifest is the deepest seen in practice
MAX_LINK_HOPS = 8  # docker save links a repeated layer.tar to its first copy: one hop


class _Files(Protocol):
    """The files of an image root, by safe relative name."""

    def read(self, name: str) -> bytes | None: ...
    def view(self, name: str) -> contextlib.AbstractContextManager[Buffer | None]: ...
    def close(self) -> None: ...


def safe_name(name: str, what: str) -> str:
    """`name` relative to the image root, normalized; SourceError if it is absolute or leaves the root."""
    if not isinstance(name, str) or not name or "\0" in name:
        raise SourceError(f"{what}: invalid name {name!r}")
    norm = posixpath.normpath(name)
    if norm.startswith("/") or norm == ".." or norm.startswith("../") or norm == ".":
        raise SourceError(f"{what}: name {name!r} points outside the image")
    return norm


def blob_name(digest: str, what: str) -> str:
    alg, hexpart = check_digest(digest, what)
    return f"blobs/{alg}/{hexpart}"


class _DirFiles:
    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise SourceError(f"{root}: {'not a directory' if root.exists() else 'no such directory'}")
        self.root = root

    def read(self, name: str) -> bytes | None:
        try:
            return (self.root / name).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            raise SourceError(f"{self.root / name}: cannot read ({e.strerror})") from None

    @contextlib.contextmanager
    def view(self, name: str) -> Iterator[Buffer | None]:
        try:
            f = open(self.root / name, "rb")
        except (FileNotFoundError, NotADirectoryError):
            yield None
            return
        except OSError as e:
            raise SourceError(f"{self.root / name}: cannot read ({e.strerror})") from None
        with f:
            if os.fstat(f.fileno()).st_size == 0:  # mmap refuses empty files
                yield b""
                return
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            try:
                yield mm
            finally:
                _unmap(mm)

    def close(self) -> None:
        pass


class _Member(NamedTuple):
    offset: int
    size: int
    link: str | None  # normalized target name of a symlink or hardlink member


class _TarFiles:
    """An uncompressed tar, mmapped once; members by normalized name ("./" prefixes dropped)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._file = open(path, "rb")
        except OSError as e:
            raise SourceError(f"{path}: cannot open ({e.strerror})") from None
        try:
            self.members = self._index()
            size = os.fstat(self._file.fileno()).st_size
            self._mm = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) if size else None
        except BaseException:
            self._file.close()
            raise

    def _index(self) -> dict[str, _Member]:
        members: dict[str, _Member] = {}
        try:
            with tarfile.open(fileobj=self._file, mode="r:") as tf:
                for m in tf:
                    name = posixpath.normpath(m.name.lstrip("/"))
                    if name == ".." or name.startswith("../"):
                        continue  # never addressable: every lookup goes through safe_name()
                    link = None
                    if m.issym():
                        link = posixpath.normpath(posixpath.join(posixpath.dirname(name), m.linkname))
                    elif m.islnk():
                        link = posixpath.normpath(m.linkname.lstrip("/"))
                    elif not m.isreg():
                        continue
                    members[name] = _Member(m.offset_data, m.size, link)
        except (tarfile.TarError, EOFError) as e:
            raise SourceError(f"{self.path}: not an uncompressed tar archive ({e})") from None
        return members

    def _find(self, name: str) -> _Member | None:
        for _ in range(MAX_LINK_HOPS):
            m = self.members.get(name)
            if m is None or m.link is None:
                return m
            name = safe_name(m.link, f"{self.path}: link {name}")
        raise SourceError(f"{self.path}: {name}: too many links")

    def _range(self, name: str) -> memoryview | None:
        m = self._find(name)
        if m is None:
            return None
        if self._mm is None or m.offset + m.size > len(self._mm):
            raise SourceError(f"{self.path}: {name} is truncated")
        return memoryview(self._mm)[m.offset : m.offset + m.size]

    def read(self, name: str) -> bytes | None:
        view = self._range(name)
        if view is None:
            return None
        with view:
            return bytes(view)

    @contextlib.contextmanager
    def view(self, name: str) -> Iterator[Buffer | None]:
        view = self._range(name)
        try:
            yield view
        finally:
            if view is not None:
                with contextlib.suppress(BufferError):  # still exported: freed with its last user
                    view.release()

    def names(self) -> set[str]:
        return set(self.members)

    def close(self) -> None:
        if self._mm is not None:
            _unmap(self._mm)
        self._file.close()


def _unmap(mm: mmap.mmap) -> None:
    """Close a mapping unless a view of it is still alive (a scan's buffer, or one held by the
    traceback of the error being raised, which must not be masked): then it goes with that view."""
    try:
        mm.close()
    except BufferError:
        log.debug("mapping still in use; unmapped when its last view is released")


class LayoutSource:
    """An ImageSource over a layout directory or an archive; use with `with` or call close()."""

    def __init__(self, files: _Files, name: str) -> None:
        self.name = name
        self.repo_tags: tuple[str, ...] = ()
        self.repo_digests: tuple[str, ...] = ()
        self.manifest_digest = ""
        self.manifest: dict = {}
        self.config_digest = ""
        self.config: dict = {}
        self.layers: list[Descriptor] = []
        self._files = files
        self._layer_names: dict[str, str] = {}  # digest -> member name, where it is not blobs/<alg>/<hex>

    def __enter__(self) -> LayoutSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._files.close()

    def _read(self, name: str, what: str) -> bytes:
        data = self._files.read(name)
        if data is None:
            raise SourceError(f"{self.name}: {what} is missing ({name})")
        return data

    def _blob(self, desc: Descriptor, what: str) -> bytes:
        data = self._read(blob_name(desc.digest, what), f"{what} {desc.digest}")
        verify_digest(data, desc.digest, f"{self.name}: {what}")
        if len(data) != desc.size:
            raise SourceError(
                f"{self.name}: {what} {desc.digest} is {len(data)} bytes, its descriptor says {desc.size}"
            )
        return data

    def load_oci(self, platform: Platform | None) -> None:
        """Resolve index.json to one image manifest, then read its config."""
        kind, index = parse_manifest(self._read("index.json", "index.json"), f"{self.name}: index.json")
        if kind not in INDEX_MEDIA_TYPES:
            raise SourceError(f"{self.name}: index.json is a {kind}, not an image index")
        desc = _choose(index, platform, self.name)
        for _ in range(MAX_INDEX_DEPTH):
            kind, doc = parse_manifest(
                self._blob(desc, "manifest"), f"{self.name}: manifest {desc.digest}", desc.media_type
            )
            if kind not in INDEX_MEDIA_TYPES:
                break
            desc = _choose(doc, platform, self.name)
        else:
            raise SourceError(f"{self.name}: indexes nested deeper than {MAX_INDEX_DEPTH}")
        self.manifest, self.manifest_digest = doc, desc.digest
        config, self.layers = manifest_parts(doc, f"{self.name}: manifest {desc.digest}")
        self.config = parse_json(self._blob(config, "config"), f"{self.name}: config {config.digest}")
        self.config_digest = config.digest
        top = (index.get("manifests") or [{}])[0].get("annotations") or {}
        self.repo_tags = tuple(t for t in (top.get(CONTAINERD_NAME),) if t)

    def load_docker(self, manifest_json: bytes) -> None:
        """The classic `docker save` form: manifest.json, <config>.json, <id>/layer.tar.

        It has no distribution manifest: the layers are tars addressed by their diff_id,
        and the image gets the Docker v2 manifest skopeo makes up for it, byte for byte,
        so that its digest is the one `skopeo inspect docker-archive:FILE` reports (and
        Anchore, which reads docker archives through skopeo, starts from).
        """
        what = f"{self.name}: manifest.json"
        try:
            entries = json.loads(manifest_json)
        except ValueError as e:
            raise SourceError(f"{what} is not valid JSON ({e})") from None
        if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
            raise SourceError(f"{what} is not a list of images")
        if len(entries) > 1:
            tags = "; ".join(", ".join(e.get("RepoTags") or ["<untagged>"]) for e in entries)
            raise SourceError(f"{what} holds {len(entries)} images ({tags}); save one image per archive")
        entry = entries[0]
        config_name = safe_name(entry.get("Config", ""), f"{what}: Config")
        raw_config = self._read(config_name, "config")
        self.config_digest = "sha256:" + hashlib.sha256(raw_config).hexdigest()
        named = posixpath.basename(config_name).removesuffix(".json")
        if len(named) == 64 and all(c in "0123456789abcdef" for c in named):
            verify_digest(raw_config, "sha256:" + named, f"{self.name}: config {config_name}")
        self.config = parse_json(raw_config, f"{self.name}: config {config_name}")
        names = entry.get("Layers")
        diff_ids = (self.config.get("rootfs") or {}).get("diff_ids")
        if not isinstance(names, list) or not isinstance(diff_ids, list) or len(names) != len(diff_ids):
            raise SourceError(f"{what}: Layers and the config's rootfs.diff_ids do not match")
        foreign = {k: v for k, v in (entry.get("LayerSources") or {}).items() if isinstance(v, dict)}
        for i, (layer_name, diff_id) in enumerate(zip(names, diff_ids, strict=False)):
            member = safe_name(layer_name, f"{what}: layer {i}")
            check_digest(diff_id, f"{self.name}: config diff_id {i}")
            self._layer_names[diff_id] = member
            size = self._size(member)
            if size is None and diff_id in foreign:
                self.layers.append(descriptor(foreign[diff_id], f"{what}: LayerSources {diff_id}"))
            else:
                self.layers.append(Descriptor(DOCKER_ARCHIVE_LAYER, diff_id, size if size is not None else 0))
        self.manifest = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "size": len(raw_config), "digest": self.config_digest},
            "layers": [{"mediaType": d.media_type, "size": d.size, "digest": d.digest} for d in self.layers],
        }
        self.manifest_digest = (
            "sha256:" + hashlib.sha256(json.dumps(self.manifest, separators=(",", ":")).encode()).hexdigest()
        )
        self.repo_tags = tuple(t for t in entry.get("RepoTags") or () if isinstance(t, str))

    def _size(self, name: str) -> int | None:
        with self._files.view(name) as view:
            return None if view is None else len(view)

    @contextlib.contextmanager
    def open_layer(self, desc: Descriptor) -> Iterator[LayerBlob | None]:
        name = self._layer_names.get(desc.digest) or blob_name(desc.digest, f"{self.name}: layer")
        with self._files.view(name) as view:
            if view is None:
                if "foreign" in desc.media_type or "nondistributable" in desc.media_type:
                    yield None  # the caller warns and reports the layer as missing
                    return
                raise SourceError(f"{self.name}: layer {desc.digest} is missing ({name})")
            if len(view) != desc.size:
                raise SourceError(
                    f"{self.name}: layer {desc.digest} is {len(view)} bytes, the manifest says {desc.size}"
                )
            yield LayerBlob(view, verified=False)


def _choose(index: dict, platform: Platform | None, name: str) -> Descriptor:
    """The one entry of an index that has one (unless it names another platform than asked), else by platform."""
    entries = index.get("manifests") or []
    if not entries:
        raise SourceError(f"{name}: the index lists no image")
    if len(entries) == 1:
        only = descriptor(entries[0], f"{name}: index entry 0")
        if platform is None or only.platform is None:
            return only
    return select_manifest(index, platform)


def open_layout(path: str | Path, platform: Platform | None, kind: str) -> LayoutSource:
    """kind: "oci-dir", "oci-archive" or "docker-archive" (which also reads Docker's OCI form)."""
    p = Path(path)
    name = f"{kind}:{path}"
    if kind == "oci-dir":
        source = LayoutSource(_DirFiles(p), name)
        with _closed_on_error(source):
            source.load_oci(platform)
        return source
    if not p.is_file():
        raise SourceError(f"{name}: no such file")
    files = _TarFiles(p)
    source = LayoutSource(files, name)
    names = files.names()
    with _closed_on_error(source):
        if "index.json" in names:
            source.load_oci(platform)
            if "manifest.json" in names:  # Docker's OCI form: the tags are in its manifest.json
                source.repo_tags = (*_docker_tags(source), *source.repo_tags)
        elif kind == "docker-archive" and "manifest.json" in names:
            source.load_docker(source._read("manifest.json", "manifest.json"))
        else:
            found = (
                "manifest.json (use docker-archive:)"
                if "manifest.json" in names
                else "neither index.json nor manifest.json"
            )
            raise SourceError(f"{name}: not an image archive of that kind: it has {found}")
    return source


def _docker_tags(source: LayoutSource) -> tuple[str, ...]:
    try:
        entries = json.loads(source._read("manifest.json", "manifest.json"))
        return tuple(t for e in entries for t in e.get("RepoTags") or () if isinstance(t, str))
    except (ValueError, TypeError, AttributeError):
        log.warning("%s: manifest.json is not readable; no tags taken from it", source.name)
        return ()


@contextlib.contextmanager
def _closed_on_error(source: LayoutSource) -> Iterator[None]:
    try:
        yield
    except BaseException:
        source.close()
        raise

"""The layerscan JSON report (schema "layerscan/v1"), streamed to its file.

Top-level keys are exactly: schema, image, distro, files, packages, secrets, stats.
Things without a field of their own (warnings, catalog errors, timings) live in `stats`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import TextIO

from ..analysis import Analysis, LayerInfo
from ..catalog.metadata import JSON_KEY, OPTIONAL
from ..catalog.model import Package
from ..filetree import KIND_OF
from .jsonstream import Arr, EncodedArr, Json, Obj, dump, string

SCHEMA = "layerscan/v1"
_TYPE_TEXT = tuple(string(kind) for kind in KIND_OF)  # type byte -> the type as JSON text


def write(analysis: Analysis, out: TextIO) -> None:
    dump(document(analysis), out)
    out.write("\n")


def document(a: Analysis) -> Obj:
    distro = None
    if a.distro is not None:
        distro = {"id": a.distro.id, "version_id": a.distro.version_id, "id_like": a.distro.id_like}
    return Obj(
        [
            ("schema", SCHEMA),
            ("image", _image(a)),
            ("distro", distro),
            ("files", EncodedArr(_files(a))),
            ("packages", Arr(package_json(p) for p in a.packages)),
            ("secrets", Arr(value_json(s) for s in a.secrets)),
            ("stats", _stats(a)),
        ]
    )


def _image(a: Analysis) -> dict[str, Json]:
    return {
        "source": a.source_name,
        "manifest_digest": a.manifest_digest,
        "config_digest": a.config_digest,
        "architecture": a.architecture,
        "os": a.os,
        "repo_tags": list(a.repo_tags),
        "repo_digests": list(a.repo_digests),
        "layers": [layer_json(layer) for layer in a.layers],
    }


def layer_json(layer: LayerInfo) -> dict[str, Json]:
    d = layer.descriptor
    return {
        "index": layer.index,
        "digest": d.digest,
        "diff_id": layer.diff_id,
        "media_type": d.media_type,
        "size": d.size,
        "entries": layer.entries,
        "missing": layer.missing,
    }


def _files(a: Analysis) -> Iterator[str]:
    """Each file as JSON text: path, type, mode, uid, gid, size, mtime, link, layer, md5, sha1, sha256."""
    f = a.files
    for i, path in enumerate(f.paths):
        link = f.links[i]
        if f.hashed[i]:
            md5, sha1, sha256 = f.hexdigests(i)
            sums = f'"md5": "{md5}", "sha1": "{sha1}", "sha256": "{sha256}"'
        else:
            sums = '"md5": null, "sha1": null, "sha256": null'
        yield (
            f'{{"path": {string(path)}, "type": {_TYPE_TEXT[f.types[i]]}, "mode": "{f.modes[i]:04o}", '
            f'"uid": {f.uids[i]}, "gid": {f.gids[i]}, "size": {f.sizes[i]}, "mtime": {f.mtimes[i]}, '
            f'"link": {"null" if link is None else string(link)}, "layer": {f.layers[i]}, {sums}}}'
        )


def package_json(p: Package) -> Json:
    """Every field of the package, its metadata as an object of the ecosystem's fields."""
    return value_json(p)


def value_json(value: object) -> Json:
    """A catalog value as JSON: a dataclass as an object of its fields in order (a field
    marked OPTIONAL is left out while None; JSON_KEY renames one), tuples as arrays."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):  # a package's file list is long: its paths are kept as they are
        return [v if isinstance(v, str) else value_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): value_json(v) for k, v in value.items()}
    cls = type(value)
    fields = _FIELDS.get(cls)
    if fields is None and dataclasses.is_dataclass(cls):
        fields = _FIELDS[cls] = tuple(
            (f.name, f.metadata.get(JSON_KEY, f.name), bool(f.metadata.get(OPTIONAL))) for f in dataclasses.fields(cls)
        )
    if fields is None:
        raise TypeError(f"{cls.__name__} is not a catalog value")
    out: dict[str, Json] = {}
    for name, key, optional in fields:
        item = getattr(value, name)
        if item is None and optional:
            continue
        out[key] = value_json(item)
    return out


# A dataclass's fields as (attribute, JSON key, OPTIONAL), read once per class:
# value_json runs for every file record of every package.
_FIELDS: dict[type, tuple[tuple[str, str, bool], ...]] = {}


def _stats(a: Analysis) -> dict[str, Json]:
    return {
        "files": len(a.files),
        "layers": len(a.layers),
        "missing_layers": [layer.descriptor.digest for layer in a.layers if layer.missing],
        "bytes_in": a.bytes_in,
        "bytes_out": a.bytes_out,
        "seconds": round(a.seconds, 3),
        "packages": len(a.packages),
        "secrets": len(a.secrets),
        "secrets_suppressed": dict(a.secrets_suppressed),
        "warnings": list(a.warnings),
        "catalog_errors": [dataclasses.asdict(e) for e in a.catalog_errors],
    }

"""`docker save` in its classic form: manifest.json, <config hex>.json, <id>/layer.tar.

It has no distribution manifest: each image is a manifest.json item naming its config
and its layer tars, and its layers are addressed by their diff_id. The image gets the
Docker v2 manifest skopeo makes up for it, byte for byte, so that its digest is the one
`skopeo inspect docker-archive:FILE` reports (and Anchore, which reads docker archives
through skopeo, starts from).
"""

from __future__ import annotations

import json
import logging
import posixpath
from typing import Any

from ..errors import SourceError
from ..image import Descriptor, Platform
from ..refs import ImageRef, RefError
from .files import Files, safe_name
from .media import (
    DOCKER_CONFIG,
    DOCKER_MANIFEST,
    check_digest,
    config_platform,
    descriptor,
    parse_json,
    sha256_digest,
)
from .resolve import Entry, Listing

log = logging.getLogger(__name__)

# What skopeo calls a docker-archive layer, compressed or not (the scanner sniffs compression).
LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
_HEX = frozenset("0123456789abcdef")


def read_items(files: Files, name: str) -> list[dict[str, Any]]:
    """The items of manifest.json, one per image."""
    what = f"{name}: manifest.json"
    raw = files.read("manifest.json")
    try:
        items = json.loads(raw or b"")
    except ValueError as e:
        raise SourceError(f"{what} is not valid JSON ({e})") from None
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise SourceError(f"{what} is not a list of images")
    return items


def repo_tags(item: dict[str, Any]) -> tuple[str, ...]:
    return tuple(t for t in item.get("RepoTags") or () if isinstance(t, str))


def listing(files: Files, items: list[dict[str, Any]]) -> Listing:
    entries = tuple(Entry(i, repo_tags(item), _platform(files, item), None) for i, item in enumerate(items))
    return Listing("manifest.json", entries, same_tag, "tag")


def same_tag(chosen: str, entry: Entry) -> bool:
    """Docker's normalisation on both sides: `app:1.0` names `docker.io/library/app:1.0`."""
    want = ImageRef.parse(chosen)
    return any(_parsed(tag) == want for tag in entry.names)


def _parsed(tag: str) -> ImageRef | None:
    try:
        return ImageRef.parse(tag)
    except RefError:
        return None


def _platform(files: Files, item: dict[str, Any]) -> Platform | None:
    """The platform the image's config states; None if it cannot be read (the chosen image's config is checked later)."""
    try:
        return config_platform(files.read(safe_name(item.get("Config"), "Config")))
    except SourceError:
        return None


def made_up_manifest(files: Files, item: dict[str, Any], name: str) -> tuple[bytes, dict[str, str]]:
    """skopeo's manifest for one item, and where each of its blobs is (digest -> member name).

    The config's digest is the one its name claims (`<hex>.json`), so that resolve()'s
    check catches a config that was changed; a config named otherwise gets its own.
    """
    what = f"{name}: manifest.json"
    config_name = safe_name(item.get("Config", ""), f"{what}: Config")
    raw_config = files.read(config_name)
    if raw_config is None:
        raise SourceError(f"{name}: config is missing ({config_name})")
    claimed = posixpath.basename(config_name).removesuffix(".json")
    config_digest = f"sha256:{claimed}" if len(claimed) == 64 and set(claimed) <= _HEX else sha256_digest(raw_config)
    config = parse_json(raw_config, f"{name}: config {config_name}")
    members = {config_digest: config_name}
    layer_names = item.get("Layers")
    diff_ids = (config.get("rootfs") or {}).get("diff_ids")
    if not isinstance(layer_names, list) or not isinstance(diff_ids, list) or len(layer_names) != len(diff_ids):
        raise SourceError(f"{what}: Layers and the config's rootfs.diff_ids do not match")
    foreign = {k: v for k, v in (item.get("LayerSources") or {}).items() if isinstance(v, dict)}
    layers: list[Descriptor] = []
    for i, (layer_name, diff_id) in enumerate(zip(layer_names, diff_ids, strict=True)):
        member = safe_name(layer_name, f"{what}: layer {i}")
        check_digest(diff_id, f"{name}: config diff_id {i}")
        members[diff_id] = member
        with files.view(member) as view:
            size = None if view is None else len(view)
        if size is None and diff_id in foreign:
            layers.append(descriptor(foreign[diff_id], f"{what}: LayerSources {diff_id}"))
        else:
            layers.append(Descriptor(LAYER, diff_id, size if size is not None else 0))
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "size": len(raw_config), "digest": config_digest},
        "layers": [{"mediaType": d.media_type, "size": d.size, "digest": d.digest} for d in layers],
    }
    return json.dumps(manifest, separators=(",", ":")).encode(), members


def config_tags(items: list[dict[str, Any]], config_digest: str) -> tuple[str, ...]:
    """The RepoTags of the items whose config is `config_digest` (Docker's OCI form names it blobs/sha256/<hex>)."""
    alg, _, hexpart = config_digest.partition(":")
    return tuple(t for item in items if item.get("Config") == f"blobs/{alg}/{hexpart}" for t in repo_tags(item))

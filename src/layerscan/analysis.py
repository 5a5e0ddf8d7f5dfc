"""What one image's analysis found: the value the report writers render."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from .catalog.model import CatalogError, Distro, Package
from .filetree import ImageFiles
from .findings import SecretFinding
from .image import Descriptor
from .scan.model import LayerResult, ScanStats
from .scan.rules import Rule


@dataclasses.dataclass(frozen=True)
class LayerInfo:
    index: int
    descriptor: Descriptor
    diff_id: str  # from the image config's rootfs.diff_ids
    stats: ScanStats | None  # None when the layer is missing (foreign, not present)
    entries: int
    created_by: str = ""

    @property
    def missing(self) -> bool:
        return self.stats is None


@dataclasses.dataclass
class Analysis:
    source_name: str
    manifest_digest: str
    config_digest: str
    # The image's own JSON documents as its source gave them (digest-checked, not
    # otherwise validated): readers check the type of each field they use.
    config: dict[str, Any]
    manifest: dict[str, Any]
    repo_tags: tuple[str, ...]
    repo_digests: tuple[str, ...]
    layers: list[LayerInfo]
    files: ImageFiles
    distro: Distro | None
    packages: list[Package]
    secrets: list[SecretFinding]
    retrieved_files: dict[str, bytes]  # Anchore retrieve_files: path -> content
    catalog_errors: list[CatalogError]
    warnings: list[str]
    seconds: float
    bytes_in: int  # compressed layer bytes read
    bytes_out: int  # uncompressed layer bytes scanned
    rules: tuple[Rule, ...] = ()  # the secret and content rules searched with (Anchore keys name them)
    # findings the allow rules (scan/allow.py) suppressed, by allow rule id; empty with secrets_all
    secrets_suppressed: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def architecture(self) -> str:
        return str(self.config.get("architecture", ""))

    @property
    def os(self) -> str:
        return str(self.config.get("os", ""))


def layer_infos(
    layers: Sequence[Descriptor], config: dict[str, Any], results: Sequence[LayerResult | None]
) -> list[LayerInfo]:
    """Each manifest layer with its diff_id and history line from the image config, and its scan's stats."""
    diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
    created = [h.get("created_by", "") for h in config.get("history") or [] if not h.get("empty_layer", False)]
    out = []
    for i, (desc, r) in enumerate(zip(layers, results, strict=False)):
        out.append(
            LayerInfo(
                index=i,
                descriptor=desc,
                diff_id=diff_ids[i] if i < len(diff_ids) else "",
                stats=r.stats if r is not None else None,
                entries=r.stats.entries if r is not None else 0,
                created_by=created[i] if i < len(created) else "",
            )
        )
    return out

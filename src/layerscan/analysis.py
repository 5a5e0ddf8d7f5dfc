"""What one image's analysis found: the value the report writers render."""

from __future__ import annotations

import dataclasses
from typing import Any

from .catalog.model import CatalogError, Distro, Package
from .filetree import ImageFiles
from .findings import SecretFinding
from .image import Descriptor
from .scan.model import ScanStats
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

    @property
    def architecture(self) -> str:
        return str(self.config.get("architecture", ""))

    @property
    def os(self) -> str:
        return str(self.config.get("os", ""))

"""config.yaml (Anchore's keys and ours) -> a frozen Config.

Defaults here are the whole truth of what layerscan does when no file is given.
"""

from __future__ import annotations

import dataclasses
import tempfile

from .scan.model import Limits
from .scan.rules import Rule, default_rules


@dataclasses.dataclass(frozen=True)
class RetrieveFiles:
    file_list: tuple[str, ...] = ("/etc/passwd",)
    max_file_size_kb: int = 1000


@dataclasses.dataclass(frozen=True)
class Registry:
    """Per-registry settings, keyed by host[:port]."""

    insecure: bool = False  # plain HTTP, or HTTPS without verification
    ca_cert: str | None = None
    username: str | None = None
    password: str | None = None


@dataclasses.dataclass(frozen=True)
class Config:
    tmp_dir: str = dataclasses.field(default_factory=tempfile.gettempdir)
    # services.analyzer (Anchore's names)
    max_threads: int = 4
    layer_cache_enable: bool = False
    layer_cache_max_gigabytes: int = 4
    keep_image_analysis_tmpfiles: bool = False
    enable_owned_package_filtering: bool = True
    # secret_search / content_search / retrieve_files (Anchore's analyzer_config.yaml)
    secret_rules: tuple[Rule, ...] = dataclasses.field(default_factory=lambda: tuple(default_rules()))
    secret_max_file_size: int = 10_000_000
    secret_skip_binary: bool = True
    content_rules: tuple[Rule, ...] = ()
    retrieve_files: RetrieveFiles = RetrieveFiles()
    # layerscan's own
    limits: Limits = Limits()
    capture_max_bytes: int = 64 << 20
    registries: dict[str, Registry] = dataclasses.field(default_factory=dict)
    ca_cert: str | None = None
    insecure_registries: tuple[str, ...] = ()
    platform: str | None = None

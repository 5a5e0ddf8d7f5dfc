"""One image end to end: source -> scan -> squash -> catalog, findings -> Analysis.

Wiring only: the one module that knows every stage, holding none of their logic.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from . import catalog, retrieve
from .analysis import Analysis, layer_infos
from .config import Config
from .findings import apply_allow_rules, secret_findings
from .image import Platform
from .image_scan import scan_image
from .scan import prepare
from .scan.model import ScanOptions
from .scan.rules import Rule, check_unique
from .sources import open_source
from .squash import squash
from .store.results import ResultCache

log = logging.getLogger(__name__)

T = TypeVar("T")


class StageRunner(Protocol):
    """Runs one named stage ("scan", "squash", "catalog", "secrets", "retrieve") and returns
    what it returns: the hook through which benchmarks/stages.py times each stage."""

    def __call__(self, name: str, run: Callable[[], T], /) -> T: ...


def run_stage(name: str, run: Callable[[], T], /) -> T:
    """The default StageRunner: just run it."""
    return run()


def analyze(
    spec: str,
    config: Config,
    *,
    engine: str = "native",
    platform: Platform | str | None = None,
    progress: bool | None = None,
    stage: StageRunner = run_stage,
) -> Analysis:
    """Analyze the image at `spec` ("oci-dir:PATH", "docker-archive:FILE", a reference...).

    `progress`: None shows a bar on stderr when it is a terminal; True/False force it.
    `stage` runs each stage after the image is opened (see StageRunner).
    """
    t0 = time.perf_counter()
    rules = (*config.secret_rules, *config.content_rules)
    check_unique(rules)
    plat = Platform.parse(platform) if isinstance(platform, str) else platform
    if plat is None and config.platform:
        plat = Platform.parse(config.platform)

    source = open_source(spec, platform=plat, config=config)
    try:
        options = scan_options(config, rules)
        cache = ResultCache.open(config, options, engine)
        known = cache.get_image(source)
        if known is not None:  # analyzed before with this configuration: no layer is opened
            for w in known.warnings:
                log.warning("%s", w)
            known.seconds = time.perf_counter() - t0
            return known
        # The compiled rules are kept with the result cache: --no-result-cache runs cold, storing nothing.
        prepare(options, engine, config.tmp_dir if config.result_cache_enable else None)
        results = stage(
            "scan",
            lambda: scan_image(
                source, options, engine, config.max_threads, _progress_enabled(progress), cache, config.scan_threads
            ),
        )
    finally:
        source.close()
    _return_freed_memory()

    warnings: list[str] = []
    for i, (desc, result) in enumerate(zip(source.layers, results, strict=True)):
        if result is None:
            warnings.append(
                f"layer {i} ({desc.digest}, {desc.media_type}) is not present "
                "(foreign or non-distributable): its files are not in this analysis"
            )
        else:  # names outside the root, analyzed inside it
            warnings += (f"layer {i} ({desc.digest}): {w}" for w in result.warnings)
    for w in warnings:
        log.warning("%s", w)

    files = stage("squash", lambda: squash(results))
    cat = stage(
        "catalog", lambda: catalog.catalog_image(files, owned_package_filtering=config.enable_owned_package_filtering)
    )
    unique = {d.digest: r for d, r in zip(source.layers, results, strict=False) if r is not None}
    secrets, suppressed = stage(
        "secrets", lambda: apply_allow_rules(secret_findings(results, files, rules), enabled=not config.secrets_all)
    )
    analysis = Analysis(
        source_name=source.name,
        manifest_digest=source.manifest_digest,
        config_digest=source.config_digest,
        config=source.config,
        manifest=source.manifest,
        repo_tags=source.repo_tags,
        repo_digests=source.repo_digests,
        layers=layer_infos(source.layers, source.config, results),
        files=files,
        distro=cat.distro,
        packages=cat.packages,
        secrets=secrets,
        retrieved_files=stage("retrieve", lambda: retrieve.retrieve_files(files, config.retrieve_files)),
        catalog_errors=cat.errors,
        warnings=warnings,
        seconds=time.perf_counter() - t0,
        bytes_in=sum(r.stats.bytes_in for r in unique.values()),
        bytes_out=sum(r.stats.bytes_out for r in unique.values()),
        rules=rules,
        secrets_suppressed=suppressed,
    )
    cache.put_image(analysis)
    return analysis


def scan_options(config: Config, rules: Sequence[Rule]) -> ScanOptions:
    globs = (*catalog.capture_globs(), *retrieve.capture_globs(config.retrieve_files))
    return ScanOptions(
        rules=tuple(rules),
        secret_max_file_size=config.secret_max_file_size,
        secret_skip_binary=config.secret_skip_binary,
        capture_globs=tuple(dict.fromkeys(globs)),
        capture_max_bytes=config.capture_max_bytes,
        capture_limits=(*catalog.capture_limits(), *retrieve.capture_limits(config.retrieve_files)),
        markers=catalog.capture_markers(),
        limits=config.limits,
    )


def _return_freed_memory() -> None:
    """Hand the pages the scan freed back to the system (glibc only; elsewhere a no-op).

    The scan's threads free their buffers into glibc's per-thread arenas, which keep the
    pages: ~100 MB on a 1.25 GB image. The stages after the scan allocate on this thread,
    from another arena, so without this the process holds both."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    return getattr(ctypes.CDLL(None), "malloc_trim", None)


def _progress_enabled(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else progress

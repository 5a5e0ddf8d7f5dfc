"""One image end to end: source -> scan -> squash -> catalog -> Analysis.

This is the only module that knows every stage. Each unique layer is scanned once,
on up to `config.max_threads` threads (the native scanner releases the GIL).
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import posixpath
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait

from . import catalog
from .analysis import Analysis, LayerInfo, SecretFinding
from .config import Config
from .errors import DigestMismatch, LayerError, LayerscanError
from .image import Descriptor, FinalFile, ImageFiles, ImageSource, Platform, SymlinkLoop
from .scan import native_available, scan_layer
from .scan.model import LayerResult, ScanOptions
from .scan.rules import Rule, check_unique
from .sources import open_source
from .squash import squash

log = logging.getLogger(__name__)

Advance = Callable[[int], None]


def analyze(
    spec: str,
    config: Config,
    *,
    engine: str = "native",
    platform: Platform | str | None = None,
    progress: bool | None = None,
) -> Analysis:
    """Analyze the image at `spec` ("oci-dir:PATH", "docker-archive:FILE", a reference...).

    `progress`: None shows a bar on stderr when it is a terminal; True/False force it.
    """
    if engine == "native" and not native_available():
        raise LayerscanError("the native engine is not built (run 'make build'), or use the reference engine")
    t0 = time.perf_counter()
    rules = (*config.secret_rules, *config.content_rules)
    check_unique(rules)
    plat = Platform.parse(platform) if isinstance(platform, str) else platform
    if plat is None and config.platform:
        plat = Platform.parse(config.platform)

    source = open_source(spec, platform=plat, config=config)
    try:
        options = scan_options(config, rules)
        results = scan_layers(source, options, engine, config.max_threads, _progress_enabled(progress))
    finally:
        source.close()

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

    files = squash(results)
    cat = catalog.catalog_image(files, owned_package_filtering=config.enable_owned_package_filtering)
    unique = {d.digest: r for d, r in zip(source.layers, results, strict=False) if r is not None}
    return Analysis(
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
        secrets=secret_findings(results, files, rules),
        retrieved_files=retrieve_files(files, config),
        catalog_errors=cat.errors,
        warnings=warnings,
        seconds=time.perf_counter() - t0,
        bytes_in=sum(r.stats.bytes_in for r in unique.values()),
        bytes_out=sum(r.stats.bytes_out for r in unique.values()),
        rules=rules,
    )


def scan_options(config: Config, rules: Sequence[Rule]) -> ScanOptions:
    retrieve = config.retrieve_files
    globs = (*catalog.capture_globs(), *(_escape_glob(p) for p in retrieve.file_list))
    return ScanOptions(
        rules=tuple(rules),
        secret_max_file_size=config.secret_max_file_size,
        secret_skip_binary=config.secret_skip_binary,
        capture_globs=tuple(dict.fromkeys(globs)),
        capture_max_bytes=max(config.capture_max_bytes, catalog.capture_max_bytes(), retrieve.max_file_size_kb * 1024),
        limits=config.limits,
    )


def scan_layers(
    source: ImageSource, options: ScanOptions, engine: str, max_threads: int, progress: bool
) -> list[LayerResult | None]:
    """One result per manifest layer (None: missing); a layer listed twice is scanned once."""
    unique: dict[str, Descriptor] = {}
    for desc in source.layers:
        unique.setdefault(desc.digest, desc)
    bar = _bar(source.name, sum(d.size for d in unique.values())) if progress else None
    advance: Advance = bar.update if bar is not None else (lambda n: None)
    pool = ThreadPoolExecutor(max_workers=max(1, min(max_threads, len(unique))), thread_name_prefix="scan")
    try:
        futures: dict[str, Future[LayerResult | None]] = {
            digest: pool.submit(scan_one, source, desc, options, engine, advance) for digest, desc in unique.items()
        }
        done, _ = wait(futures.values(), return_when=FIRST_EXCEPTION)
        for fut in done:
            fut.result()  # re-raises the first failure; the rest are cancelled below
        by_digest = {digest: fut.result() for digest, fut in futures.items()}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.close()
    return [by_digest[d.digest] for d in source.layers]


def scan_one(
    source: ImageSource, desc: Descriptor, options: ScanOptions, engine: str, advance: Advance
) -> LayerResult | None:
    with source.open_layer(desc) as blob:
        if blob is None:
            advance(desc.size)
            return None
        data = blob.data
        streamed = not isinstance(data, (bytes, bytearray, memoryview, mmap.mmap))
        if streamed:
            data = _counted(data, advance)  # type: ignore[arg-type]
        try:
            result = scan_layer(
                data,
                options,
                engine=engine,
                name=desc.digest,
                expected_digest=None if blob.verified else desc.digest,
            )
        except LayerError:
            # A blob corrupted at rest or in transit is the DigestMismatch it is, not the
            # malformed layer it looks like: finish the digest check before reporting.
            if streamed and blob.verified:
                _drain(data)  # type: ignore[arg-type]
            elif not streamed and not blob.verified:
                actual = "sha256:" + hashlib.sha256(data).hexdigest()
                if actual != desc.digest:
                    raise DigestMismatch(f"layer {desc.digest}", desc.digest, actual) from None
            raise
        if not streamed:
            advance(desc.size)
        return result


def layer_infos(layers: Sequence[Descriptor], config: dict, results: Sequence[LayerResult | None]) -> list[LayerInfo]:
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


def secret_findings(
    results: Sequence[LayerResult | None], files: ImageFiles, rules: Sequence[Rule]
) -> list[SecretFinding]:
    """Every hit of every layer, marked in_final_image when the final file at that path
    was written by that layer; plus, as Anchore does, the hits of the content a final
    symlink or hardlink leads to, again under the link's path."""
    kind = {r.id: r.kind for r in rules}
    table = files.files
    # A layer used twice is reported at its last position, the only one where its files can be final.
    last: dict[int, int] = {id(r): i for i, r in enumerate(results) if r is not None}
    found: dict[tuple[str, str, int, int], SecretFinding] = {}
    for i, result in enumerate(results):
        if result is None or last[id(result)] != i:
            continue
        for hit in result.secrets:
            final = table.get(hit.path)
            in_final = final is not None and final.layer == i and final.record.type == "file"
            found[(hit.path, hit.rule, hit.line, i)] = SecretFinding(
                hit.rule, hit.path, hit.line, i, in_final, hit.masked, kind.get(hit.rule, "secret")
            )
    by_content: dict[tuple[str, int], list[SecretFinding]] = {}
    for f in found.values():
        by_content.setdefault((f.path, f.layer), []).append(f)
    if by_content:
        for path, entry in table.items():
            for f in by_content.get(_link_content(files, entry) or ("", -1), ()):
                found[(path, f.rule, f.line, f.layer)] = SecretFinding(
                    f.rule, path, f.line, f.layer, True, f.masked, f.kind
                )
    return sorted(found.values(), key=lambda f: (f.path, f.line, f.rule, f.layer))


def _link_content(files: ImageFiles, entry: FinalFile) -> tuple[str, int] | None:
    """(path, layer) of the file content a link leads to; None for non-links and dead ends."""
    r = entry.record
    if r.type == "hardlink":
        # The link's content is its target as of the link's layer: the final target when no
        # later layer replaced it, else (deleted or replaced later; Anchore's squash then
        # copies the content under the link's name) the target in the link's own layer,
        # where tar hardlinks point.
        target = files.files.get(r.link or "")
        layer = target.layer if target is not None and target.layer <= entry.layer else entry.layer
        return (r.link or "", layer)
    if r.type != "symlink":
        return None
    try:
        real = files.resolve(r.path)
    except SymlinkLoop:
        return None
    target = files.files.get(real) if real else None
    if real is None or target is None or target.record.type != "file":
        return None
    return real, target.layer


def retrieve_files(files: ImageFiles, config: Config) -> dict[str, bytes]:
    """Anchore's retrieve_files: regular files only (links are not followed), at most
    max_file_size_kb KiB, keyed by the path exactly as configured."""
    limit = config.retrieve_files.max_file_size_kb * 1024
    out: dict[str, bytes] = {}
    for path in config.retrieve_files.file_list:
        norm = posixpath.normpath("/" + path.lstrip("/"))
        entry = files.get(norm)
        if entry is None or entry.record.type != "file":
            continue
        if entry.record.size > limit:
            log.warning(
                "retrieve_files: %s is %d bytes, more than max_file_size_kb=%d; skipped",
                path,
                entry.record.size,
                config.retrieve_files.max_file_size_kb,
            )
            continue
        content = files.captured.get(norm)
        if content is not None:
            out[path] = content
    return out


def _escape_glob(path: str) -> str:
    """A literal path as a capture glob. A glob character becomes `?`: capturing a
    sibling too is harmless, as retrieve_files looks the exact path up."""
    return "".join("?" if c in "*?[" else c for c in "/" + path.lstrip("/"))


def _drain(chunks: Iterable[bytes]) -> None:
    """Read the rest of a stream whose source checks its digest at the end: a blob corrupted
    in transit then fails as the DigestMismatch it is, not as the malformed layer it looks like."""
    for _ in chunks:
        pass


def _counted(chunks: Iterable[bytes], advance: Advance) -> Iterator[bytes]:
    for chunk in chunks:
        advance(len(chunk))
        yield chunk


def _progress_enabled(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else progress


def _bar(name: str, total: int):  # -> tqdm
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=name,
        file=sys.stderr,
        leave=False,
        dynamic_ncols=True,
    )

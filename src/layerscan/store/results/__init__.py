"""The per-layer result cache, and the image-level entry on top of it.

A layer's scan depends on its bytes and the scan's configuration only, so its LayerResult
is kept under a key made of the layer digest, the scanner's version and everything that
changes a result (ScanOptions: rules with their patterns, limits, capture globs and size,
secret settings; and the engine). A layer found here is never opened: an image all of
whose layers are known is analyzed from its manifest and config alone.

On top of it, the image-level entry: the manifest digest with the same options, the
version of the whole pipeline and the options read after the scan give the stored Analysis
of an image already analyzed that way, so neither the scanner nor a cataloger runs.

    cache = ResultCache.open(config, options, engine)   # a disabled one when the config says so
    cache.layer(digest, scan)                           # stored, or scanned by one analysis at a time
    cache.get_image(source) / cache.put_image(analysis)
    open_store(config) -> Store                         # what `layerscan cache` looks after

Stores: a local directory, `<tmp_dir>/layerscan_resultcache`, or Redis (`result_cache_url`).
Trouble here costs a miss, never an analysis: a value that does not decode is logged at
debug and replaced; a store that fails is logged once and the analysis carries on without it.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import importlib.util
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import xxhash

from ... import __version__
from ...analysis import Analysis
from ...config import Config
from ...image import ImageSource
from ...scan.model import LayerResult, ScanOptions
from ..layers import GB
from . import codec
from .localstore import LocalStore
from .model import Store, StoreError

log = logging.getLogger(__name__)

DIRNAME = "layerscan_resultcache"
_PACKAGE = Path(__file__).resolve().parent.parent.parent


def open_store(config: Config) -> Store:
    """The store the config names: Redis when result_cache_url is set, else the local directory."""
    max_bytes = int(config.result_cache_max_gigabytes * GB)
    if config.result_cache_url:
        from .redisstore import RedisStore  # redis-py loads only for those who use it

        return RedisStore(config.result_cache_url, max_bytes, config.result_cache_ttl_days * 86_400)
    return LocalStore(Path(config.tmp_dir) / DIRNAME, max_bytes)


class _Counts:
    """Process-wide lookups by kind ("layer", "image"), for the service's /metrics."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.hits: collections.Counter[str] = collections.Counter()
        self.misses: collections.Counter[str] = collections.Counter()

    def add(self, hit: bool, kind: str) -> None:
        with self._lock:
            (self.hits if hit else self.misses)[kind] += 1


COUNTS = _Counts()


class ResultCache:
    """The result cache as one analysis sees it: one engine, one set of options."""

    def __init__(self, store: Store | None, options: ScanOptions, engine: str, config: Config) -> None:
        self.store = store
        self._lock = threading.Lock()
        common = {"format": codec.FORMAT, "scanner": scanner_version(), "engine": engine, "options": canonical(options)}
        self._layer_material = {"kind": codec.LAYER, **common}
        self._image_material = {
            "kind": codec.IMAGE,
            **common,
            "pipeline": pipeline_version(),
            "after_scan": canonical(after_scan_options(config)),
        }

    @classmethod
    def open(cls, config: Config, options: ScanOptions, engine: str) -> ResultCache:
        """The cache the config asks for; a disabled one (every lookup a miss) when it is off or cannot be opened."""
        store = None
        if config.result_cache_enable:
            try:
                store = open_store(config)
            except StoreError as e:
                log.warning("result cache: %s; analyzing without it", e)
        return cls(store, options, engine, config)

    # ------------------------------------------------------------------ keys

    def layer_key(self, digest: str) -> str:
        return _key({**self._layer_material, "digest": digest})

    def image_key(self, manifest_digest: str) -> str:
        return _key({**self._image_material, "manifest": manifest_digest})

    # ------------------------------------------------------------------ the pipeline's calls

    def layer(self, digest: str, scan: Callable[[], LayerResult | None]) -> LayerResult | None:
        """The layer's stored result, or `scan()`'s, stored. One analysis at a time scans a given
        layer, across the processes and hosts sharing the store: another that needs it meanwhile
        waits for that result instead of scanning it too, so a layer is scanned once, not once per
        worker that met it first. A miss is counted only when `scan` runs."""
        key = self.layer_key(digest)
        found: LayerResult | None = self._get(codec.LAYER, key, digest, count=False)
        store = self.store
        if found is None and store is not None:
            with store.exclusive(key):
                # Again: a holder may have stored it meanwhile (we waited for it, or it finished
                # between our first look and our lock).
                found = self._get(codec.LAYER, key, digest, count=False)
                if found is None:
                    self._count(False, codec.LAYER)
                    result = scan()
                    if result is not None and not result.spilled():
                        self._put(codec.LAYER, key, digest, result)
                    elif result is not None:
                        log.debug("result cache: %s has spilled captures; not stored (they are too big)", digest)
                    return result
        if found is None:  # no store
            self._count(False, codec.LAYER)
            return scan()
        self._count(True, codec.LAYER)
        return found

    def get_image(self, source: ImageSource) -> Analysis | None:
        """The stored analysis of this image, as seen through `source` (its name and tags are this
        run's). Its `files.captured` and `files.marks` are empty: they are the catalogers' input, which
        no report reads, and they would make the entry tens of MB."""
        stored: Analysis | None = self._get(codec.IMAGE, self.image_key(source.manifest_digest), source.manifest_digest)
        if stored is None:
            return None
        return dataclasses.replace(
            stored,
            source_name=source.name,
            repo_tags=source.repo_tags,
            repo_digests=source.repo_digests,
            manifest=source.manifest,
            config=source.config,
        )

    def put_image(self, analysis: Analysis) -> None:
        if any(layer.missing for layer in analysis.layers):
            log.debug(
                "result cache: %s has a missing layer; not stored (it may be there next time)", analysis.source_name
            )
            return
        stored = dataclasses.replace(analysis, files=dataclasses.replace(analysis.files, captured={}, marks={}))
        self._put(codec.IMAGE, self.image_key(analysis.manifest_digest), analysis.manifest_digest, stored)

    # ------------------------------------------------------------------ plumbing

    def _get(self, kind: str, key: str, subject: str, count: bool = True) -> Any:
        store = self.store
        if store is None:
            return None
        try:
            data = store.get(key)
        except StoreError as e:
            self._fail(e)
            return None
        value = None
        if data is not None:
            try:
                value = codec.decode(kind, data)
            except codec.CodecError as e:
                log.debug("result cache: %s entry %s for %s is unreadable (%s); a miss", kind, key, subject, e)
        if count:
            self._count(value is not None, kind)
        log.debug("result cache: %s %s for %s", kind, "hit" if value is not None else "miss", subject)
        return value

    def _count(self, hit: bool, kind: str) -> None:
        COUNTS.add(hit, kind)

    def _put(self, kind: str, key: str, subject: str, value: LayerResult | Analysis) -> None:
        store = self.store
        if store is None:
            return
        try:
            data = codec.encode(kind, subject, value)
        except (TypeError, ValueError, OverflowError) as e:  # a value the codec has no form for: a bug, not a failure
            log.warning("result cache: cannot store the %s entry for %s: %s", kind, subject, e)
            return
        try:
            store.put(key, data, kind, subject)
        except StoreError as e:
            self._fail(e)

    def _fail(self, e: StoreError) -> None:
        with self._lock:
            if self.store is None:
                return
            log.warning("result cache %s: %s; analyzing without it", self.store.where(), e)
            self.store = None


# ---------------------------------------------------------------------------- what a key is made of


# The config keys the pipeline reads after the scan: they change an analysis, not a layer's result.
AFTER_SCAN_KEYS = ("enable_owned_package_filtering", "fetch_foreign_layers", "retrieve_files", "secrets_all")


def after_scan_options(config: Config) -> dict[str, Any]:
    """Those keys (AFTER_SCAN_KEYS) and their values in `config`."""
    return {key: getattr(config, key) for key in AFTER_SCAN_KEYS}


def canonical(value: Any) -> Any:
    """JSON-ready data that is equal for equal values, whatever the process or the hash seed."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [type(value).__name__, {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}]
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return [type(value).__name__, {k: canonical(v) for k, v in zip(value._fields, value, strict=True)}]
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(canonical(v) for v in value)
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, bytes):  # scan markers
        return ["bytes", value.hex()]
    raise TypeError(f"no canonical form for {type(value).__name__}")


def _key(material: dict[str, Any]) -> str:
    return xxhash.xxh3_128_hexdigest(json.dumps(material, sort_keys=True, separators=(",", ":")).encode())


@functools.cache
def scanner_version() -> str:
    """layerscan's version and a fingerprint of the code a LayerResult comes from (the scan
    package, the native extension, the codec): a rebuilt or edited scanner never reads results
    another build made, whether or not somebody bumped a version."""
    files = [*sorted((_PACKAGE / "scan").glob("*.py")), _PACKAGE / "store" / "results" / "codec.py"]
    return f"{__version__}+{_fingerprint(files)}"


@functools.cache
def pipeline_version() -> str:
    """The same for an image entry, which every stage after the scan shapes (squash, every
    cataloger, findings): all of layerscan's code and the catalog's data files (the CPE tables).
    Catalogers need no version numbers of their own."""
    files = [*sorted(_PACKAGE.rglob("*.py")), *sorted((_PACKAGE / "catalog").glob("*.json"))]
    return f"{__version__}+{_fingerprint(files)}"


def _fingerprint(files: list[Path]) -> str:
    h = xxhash.xxh3_64()
    native = importlib.util.find_spec(f"{_PACKAGE.name}._scan")
    if native is not None and native.origin:
        files = [*files, Path(native.origin)]
    for path in files:
        h.update(str(path.relative_to(_PACKAGE) if path.is_relative_to(_PACKAGE) else path.name).encode() + b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()

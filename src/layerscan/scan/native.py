"""The native engine: the C scanner in layerscan._scan driven from Python.

_scan scans (without the GIL) and hands back columns; this module gives it its
Hyperscan databases (compiled once per set of patterns) and its capture-glob matcher,
names its errors with the types of layerscan.errors, and makes its columns into a
LayerResult, confirming secret candidates with rules.confirm() exactly as the
reference engine does.
"""

from __future__ import annotations

import logging
import mmap
import os
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from .. import _scan
from ..closable import Closable
from ..errors import CompressionError, DigestMismatch, LayerError, LimitExceeded, TarFormatError
from ..image import Buffer
from . import rulecache
from .globs import native_program
from .model import (
    Captured,
    EntryTable,
    LayerResult,
    Mark,
    Marker,
    ScanOptions,
    ScanStats,
    SecretHit,
    Spill,
    SpillFile,
    Whiteout,
    outside_root_warnings,
)
from .rules import Rule, confirm

log = logging.getLogger("layerscan.scan")


def glob_filter(globs: tuple[str, ...], paths: Iterable[str]) -> list[str]:
    """The paths, in their order, that match any of the globs: GlobSet.matches run by ext/glob.c,
    for the catalogers' look over every path of an image (a Python NFA step per character of
    tens of thousands of paths cost seconds)."""
    match = _scan.GlobMatcher(native_program(globs)).matches
    return [p for p in paths if match(p.encode("utf-8", "surrogateescape"))]


_ERRORS: dict[int, type[LayerError]] = {
    _scan.ERR_COMPRESSION: CompressionError,
    _scan.ERR_TAR: TarFormatError,
    _scan.ERR_LIMIT: LimitExceeded,
}
# A multiple of every page size; large enough that the per-window GIL hand-off is noise.
MMAP_WINDOW = 16 << 20

_rule_dbs: dict[tuple[str, ...], _scan.Database] = {}
_mark_dbs: dict[tuple[Marker, ...], _scan.Marks] = {}
_lock = threading.Lock()


def _rules_database(patterns: tuple[str, ...], saved: Path | None = None) -> _scan.Database:
    """The rules' database, compiled once per process; with `saved` (a rulecache directory),
    loaded from there when a process compiled it before, else compiled and saved there."""
    with _lock:
        db = _rule_dbs.get(patterns)
        if db is None:
            db = rulecache.load(saved, patterns) if saved is not None else None
            if db is None:
                db = _scan.compile_rules(patterns)
                if saved is not None:
                    rulecache.save(saved, patterns, db)
            _rule_dbs[patterns] = db
            for i in db.always:
                log.warning(
                    "rule pattern %r is beyond Hyperscan even as a prefilter; "
                    "every eligible file goes to Python re for it",
                    patterns[i],
                )
        return db


def prepare(options: ScanOptions, saved: Path | None) -> None:
    """Have the rules' database ready before the first layer, from `saved` where it can be."""
    if options.rules:
        _rules_database(_patterns(options.rules), saved)


def _patterns(rules: Sequence[Rule]) -> tuple[str, ...]:
    return tuple(r.pattern for r in rules)


def _marks(markers: tuple[Marker, ...]) -> _scan.Marks:
    with _lock:
        marks = _mark_dbs.get(markers)
        if marks is None:
            marks = _mark_dbs[markers] = _scan.Marks(tuple((m.literal, m.window, m.probe) for m in markers))
        return marks


def _marks_by_path(paths: list[str], found: list[tuple[int, int, int, bytes]]) -> dict[str, tuple[Mark, ...]]:
    """The scanner's marks per path, for the last entry of each path only (as captures go)."""
    if not found:
        return {}
    last = {p: i for i, p in enumerate(paths)}
    by_entry: dict[int, list[Mark]] = {}
    for entry, marker, offset, window in found:
        by_entry.setdefault(entry, []).append(Mark(marker, offset, window))
    return {paths[e]: tuple(sorted(ms)) for e, ms in by_entry.items() if last[paths[e]] == e}


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, which containers and taskset narrow)."""
    return len(os.sched_getaffinity(0))


class Scanner(Closable):
    """feed() compressed chunks of any size, then finish() for the LayerResult, once; close()
    frees the native scanner at once (finish() does not), which a `with` block does.

    `threads`: how many threads may work on this layer at once, the caller's included (the
    others hash file data, from a pool every scan of the process shares); None: every core
    this process may use; 1: all on the caller's thread. The result is the same whatever it is.
    """

    def __init__(
        self,
        options: ScanOptions,
        *,
        compression: str = "auto",
        name: str = "",
        expected_digest: str | None = None,
        threads: int | None = None,
    ) -> None:
        if compression not in _scan.COMPRESSIONS:
            raise ValueError(f"unknown compression {compression!r}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1, not {threads}")
        self._t0 = time.perf_counter()
        self._options, self._name, self._expected_digest = options, name, expected_digest
        self._rules: list[Rule] = list(options.rules)
        limits = options.limits
        self._scanner = _scan.Scanner(
            compression=_scan.COMPRESSIONS[compression],
            max_total_bytes=limits.max_total_bytes,
            max_entries=limits.max_entries,
            max_path_bytes=limits.max_path_bytes,
            max_ext_header_bytes=limits.max_ext_header_bytes,
            secret_max_file_size=options.secret_max_file_size,
            secret_skip_binary=options.secret_skip_binary,
            hash_input=expected_digest is not None,
            diff_id=options.compute_diff_id,
            rules=_rules_database(_patterns(self._rules)) if self._rules else None,
            n_rules=len(self._rules),
            capture=[(_scan.GlobMatcher(native_program(globs)), limit) for globs, limit in options.capture_groups()],
            capture_spill_bytes=options.capture_spill_bytes,
            spill_dir=tempfile.gettempdir(),
            marks=_marks(options.markers) if options.markers else None,
            threads=usable_cores() if threads is None else threads,
        )

    def close(self) -> None:
        """Free the native scanner now (and its share of the hashing threads, which end with the last one)."""
        self._scanner.close()

    def feed(self, chunk: Buffer) -> None:
        """Push the next compressed bytes; the GIL is released while they are scanned. A mapped
        blob (mmap) goes in window by window."""
        if isinstance(chunk, mmap.mmap):
            self._feed_mapped(chunk)
            return
        try:
            self._scanner.feed(chunk)
        except _scan.ScanError as e:
            raise self._error(e) from None

    def _feed_mapped(self, data: mmap.mmap) -> None:
        # Pages of a file mapping count in the process's RSS for as long as they stay mapped: a
        # 1 GB cached layer would show 1 GB resident. MADV_DONTNEED on a read-only file mapping
        # only unmaps them (the kernel's page cache keeps them), so RSS stays bounded.
        size = len(data)
        with memoryview(data) as view:
            for start in range(0, size, MMAP_WINDOW):
                end = min(start + MMAP_WINDOW, size)
                self.feed(view[start:end])
                data.madvise(mmap.MADV_DONTNEED, start, end - start)

    def finish(self) -> LayerResult:
        try:
            raw = self._scanner.finish()
        except _scan.ScanError as e:
            raise self._error(e) from None
        return self._result(raw)

    def _error(self, e: _scan.ScanError) -> Exception:
        if e.code == _scan.ERR_INTERNAL:  # a library failed, not the layer
            return RuntimeError(f"layer {self._name}: {e.reason}")
        return _ERRORS[e.code](e.reason, self._name, e.offset)

    def _result(self, raw: _scan.Result) -> LayerResult:
        spill = SpillFile(raw.spill_fd) if raw.spill_fd >= 0 else None  # owned from here on
        paths = raw.paths
        table = EntryTable(
            paths=paths,
            types=raw.types,
            modes=raw.modes,
            uids=raw.uids,
            gids=raw.gids,
            sizes=raw.sizes,
            mtimes=raw.mtimes,
            unames=raw.unames,
            gnames=raw.gnames,
            links=raw.links,
            digests=raw.digests,
            xattrs=raw.xattrs,
            sparse=raw.sparse,
        )
        captured: dict[str, Captured] = {}
        too_big: list[str] = []
        for entry, flags, content, offset in raw.captures:
            path = paths[entry]
            if flags & _scan.CAPTURE_TOO_BIG:
                too_big.append(path)
            elif flags & _scan.CAPTURE_SPILLED:
                assert spill is not None
                captured[path] = Spill(spill, offset, table.sizes[entry])
            else:
                assert content is not None
                captured[path] = content
        secrets: list[SecretHit] = []
        for entry, mask, content in raw.candidates:
            matched = [rule for j, rule in enumerate(self._rules) if mask >> j & 1]
            secrets.extend(confirm(paths[entry], content, matched))

        digest = None
        if self._expected_digest is not None:
            digest = "sha256:" + raw.input_sha256.hex()
            if digest != self._expected_digest:
                raise DigestMismatch(f"layer {self._name}", self._expected_digest, digest)
        diff_id = "sha256:" + raw.diff_sha256.hex() if self._options.compute_diff_id else None
        warnings = outside_root_warnings(
            (flags, name, path, paths[entry] if entry >= 0 else None) for flags, name, path, entry in raw.outside
        )
        stats = ScanStats(raw.bytes_in, raw.bytes_out, raw.entries, time.perf_counter() - self._t0, raw.sparse_count)
        whiteouts = [Whiteout(path, opaque) for path, opaque in raw.whiteouts]
        marks = _marks_by_path(paths, raw.marks)
        return LayerResult(table, whiteouts, secrets, captured, too_big, stats, diff_id, digest, warnings, marks)

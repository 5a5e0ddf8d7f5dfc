# cython: language_level=3, boundscheck=False, wraparound=False
"""The native layer scanner: Python's view of the C state machine in tar.c.

Python work happens twice per layer, never per byte: compiling (and caching) the
Hyperscan databases when a Scanner is made, and turning the C columns into an
EntryTable when it finishes. Secret candidates are confirmed with
`rules.confirm()`, exactly as the reference engine does.
"""

from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memset
from cpython cimport array as carray
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DecodeUTF8

cimport hs
cimport tar
from crypto cimport OpenSSL_version, OPENSSL_VERSION
from zlib cimport zlibVersion
from zstd cimport ZSTD_versionString

import array
import logging
import threading
import time

from layerscan.errors import CompressionError, DigestMismatch, LimitExceeded, TarFormatError
from layerscan.scan.globs import GlobSet, glob_to_regex
from layerscan.scan.model import EntryTable, LayerResult, ScanStats, Whiteout, outside_root_warnings
from layerscan.scan.rules import confirm

log = logging.getLogger("layerscan.scan")

_COMPRESSION = {"auto": tar.LS_AUTO, "gzip": tar.LS_GZIP, "zstd": tar.LS_ZSTD, "none": tar.LS_NONE}
_ERRORS = {tar.LS_ERR_COMPRESSION: CompressionError, tar.LS_ERR_TAR: TarFormatError, tar.LS_ERR_LIMIT: LimitExceeded}
assert array.array("l").itemsize == 8, "EntryTable.modes is array('l'): 64-bit longs expected"


def library_versions() -> dict:
    """The native libraries this build uses, for benchmark and bug reports."""
    return {
        "hyperscan": hs.hs_version().decode(),
        "openssl": OpenSSL_version(OPENSSL_VERSION).decode(),
        "zstd": ZSTD_versionString().decode(),
        "zlib": zlibVersion().decode(),
        "gzip": tar.LS_GZIP_ENGINE.decode(),
    }


# ------------------------------------------------------------ Hyperscan

cdef class _Database:
    """One compiled database, shared by every scanner with the same patterns."""
    cdef hs.hs_database_t *db
    cdef public tuple always  # indices of patterns Hyperscan could not take at all

    def __dealloc__(self):
        if self.db is not NULL:
            hs.hs_free_database(self.db)


cdef bint _compiles(bytes pattern, unsigned flags, unsigned mode):
    cdef hs.hs_database_t *db = NULL
    cdef hs.hs_compile_error_t *err = NULL
    if hs.hs_compile(pattern, flags, mode, NULL, &db, &err) != hs.HS_SUCCESS:
        hs.hs_free_compile_error(err)
        return False
    hs.hs_free_database(db)
    return True


cdef _Database _build(tuple patterns, unsigned flags, unsigned mode, bint prefilter):
    """Each pattern exactly when Hyperscan can, else (with `prefilter`) as a
    prefilter, else it is left out and listed in `always`."""
    cdef _Database d = _Database()
    chosen: list = []
    always: list = []
    for i, p in enumerate(patterns):
        raw = p.encode("utf-8", "surrogateescape")
        if b"\0" not in raw and _compiles(raw, flags, mode):
            chosen.append((i, raw, flags))
        elif prefilter and b"\0" not in raw and _compiles(raw, flags | hs.HS_FLAG_PREFILTER, mode):
            chosen.append((i, raw, flags | hs.HS_FLAG_PREFILTER))
        else:
            always.append(i)
    d.always = tuple(always)
    if not chosen:
        return d
    cdef unsigned n = len(chosen)
    cdef carray.array exprs_keep = array.array("Q", [0] * n)
    cdef unsigned[::1] ids = array.array("I", [c[0] for c in chosen])
    cdef unsigned[::1] fl = array.array("I", [c[2] for c in chosen])
    cdef const char **exprs = <const char **><void *>exprs_keep.data.as_voidptr
    raws = [c[1] for c in chosen]
    for i in range(n):
        exprs[i] = <const char *>raws[i]
    cdef hs.hs_compile_error_t *err = NULL
    if hs.hs_compile_multi(exprs, &fl[0], &ids[0], n, mode, NULL, &d.db, &err) != hs.HS_SUCCESS:
        msg = err.message.decode(errors="replace") if err is not NULL else "unknown error"
        hs.hs_free_compile_error(err)
        raise RuntimeError(f"hyperscan could not combine patterns that compile alone: {msg}")
    return d


_rule_dbs: dict = {}
_capture_dbs: dict = {}
_lock = threading.Lock()


def _rules_database(tuple patterns) -> _Database:
    with _lock:
        d = _rule_dbs.get(patterns)
        if d is None:
            # MULTILINE: rules are matched per line, so '^' and '$' must work at every line.
            d = _build(patterns, hs.HS_FLAG_SINGLEMATCH | hs.HS_FLAG_MULTILINE, hs.HS_MODE_STREAM, True)
            _rule_dbs[patterns] = d
            missing: tuple = d.always
            for i in missing:
                log.warning("rule pattern %r is beyond Hyperscan even as a prefilter; "
                            "every eligible file goes to Python re for it", patterns[i])
        return d


def _capture_database(tuple globs) -> _Database:
    with _lock:
        d = _capture_dbs.get(globs)
        if d is None:
            # glob_to_regex ends in '$', which also matches before a final newline;
            # GlobSet uses fullmatch, so anchor at the very end instead.
            patterns = tuple(glob_to_regex(g)[:-1] + r"\z" for g in globs)
            d = _build(patterns, hs.HS_FLAG_DOTALL | hs.HS_FLAG_SINGLEMATCH | hs.HS_FLAG_UTF8, hs.HS_MODE_BLOCK, False)
            if d.always:
                # Rare (a glob whose class Hyperscan rejects): Python judges every path.
                d = _Database()
                d.always = (0,)
            _capture_dbs[globs] = d
        return d


# ------------------------------------------------------------ results

cdef inline str _decode(const unsigned char *p, size_t n):
    return PyUnicode_DecodeUTF8(<const char *>p, n, "surrogateescape")


cdef list _strings(tar.ls_strings *s, size_t n, dict intern=None):
    """The n strings of a C string column; `intern` shares equal ones (user names)."""
    cdef const size_t *ends = <const size_t *>s.ends.p
    cdef size_t start = 0, i
    out = [None] * n
    for i in range(n):
        if intern is None:
            out[i] = _decode(s.bytes.p + start, ends[i] - start)
        else:
            raw = PyBytes_FromStringAndSize(<const char *>s.bytes.p + start, ends[i] - start)
            v = intern.get(raw)
            if v is None:
                v = intern[raw] = raw.decode("utf-8", "surrogateescape")
            out[i] = v
        start = ends[i]
    return out


cdef carray.array _int64s(tar.ls_buf *b, size_t n):
    a = array.array("q")
    a.frombytes(PyBytes_FromStringAndSize(<const char *>b.p, n * 8))
    return a


cdef bytes _blob(tar.ls_result *r, size_t i):
    cdef tar.ls_buf *b = (<tar.ls_buf *>r.blobs.p) + i
    return PyBytes_FromStringAndSize(<const char *>b.p, b.len) if b.len else b""


# ------------------------------------------------------------ the scanner

cdef class Scanner:
    """feed() compressed chunks of any size, then finish() for the LayerResult."""
    cdef tar.ls_scanner *s
    cdef object options, rules, name, expected_digest, t0
    cdef _Database rules_db, capture_db
    cdef carray.array always_mask
    cdef bint done, busy  # busy: a feed() without the GIL is under way

    def __cinit__(self, options, *, compression: str = "auto", name: str = "", expected_digest: str | None = None):
        if compression not in _COMPRESSION:
            raise ValueError(f"unknown compression {compression!r}")
        self.t0 = time.perf_counter()
        self.options, self.name, self.expected_digest = options, name, expected_digest
        self.rules = list(options.rules)
        limits = options.limits
        cdef tar.ls_options o
        memset(&o, 0, sizeof(o))
        o.compression = _COMPRESSION[compression]
        o.max_total_bytes = limits.max_total_bytes
        o.max_entries = limits.max_entries
        o.max_path_bytes = limits.max_path_bytes
        o.max_ext_header_bytes = limits.max_ext_header_bytes
        o.secret_max_file_size = options.secret_max_file_size
        o.capture_max_bytes = options.capture_max_bytes
        o.secret_skip_binary = bool(options.secret_skip_binary)
        o.hash_input = expected_digest is not None
        o.diff_id = bool(options.compute_diff_id)
        if self.rules:
            self.rules_db = _rules_database(tuple(r.pattern for r in self.rules))
            o.rules_db = self.rules_db.db
            o.n_rules = len(self.rules)
            o.have_rules = 1
            if self.rules_db.always:
                words = [0] * ((len(self.rules) + 63) // 64)
                for i in self.rules_db.always:
                    words[i // 64] |= 1 << (i % 64)
                self.always_mask = array.array("Q", words)
                o.always_mask = <const uint64_t *>self.always_mask.data.as_voidptr
                o.rules_always = 1
        if options.capture_globs:
            self.capture_db = _capture_database(tuple(options.capture_globs))
            o.capture_db = self.capture_db.db
            o.have_capture = 1
        self.s = tar.ls_new(&o)
        if self.s is NULL:
            raise MemoryError("cannot allocate a layer scanner")

    def __dealloc__(self):
        tar.ls_free(self.s)

    cdef _raise(self):
        cdef tar.ls_result *r = tar.ls_result_of(self.s)
        reason = r.message.decode("utf-8", "replace")
        if r.error == tar.LS_ERR_NOMEM:
            raise MemoryError(reason)
        raise _ERRORS[r.error](reason, self.name, r.error_offset)

    def feed(self, chunk) -> None:
        """Push the next compressed bytes (any buffer); the GIL is released while they are scanned."""
        if self.done or self.busy:
            raise ValueError("feed() after finish(), or from two threads at once")
        cdef const unsigned char[::1] view = memoryview(chunk).cast("B")
        cdef size_t n = view.shape[0]
        cdef int rc
        if n == 0:
            return
        self.busy = True
        try:
            with nogil:
                rc = tar.ls_feed(self.s, &view[0], n)
        finally:
            self.busy = False
        if rc:
            self._raise()

    def finish(self) -> LayerResult:
        if self.done or self.busy:
            raise ValueError("finish() called twice, or during a feed()")
        self.done = True
        cdef int rc
        with nogil:
            rc = tar.ls_finish(self.s)
        if rc:
            self._raise()
        return self._result()

    cdef _result(self):
        cdef tar.ls_result *r = tar.ls_result_of(self.s)
        cdef size_t n = r.n, i, j, x0 = 0
        names: dict = {}
        paths = _strings(&r.paths, n)
        types = bytearray(PyBytes_FromStringAndSize(<const char *>r.types.p, n))
        links = _strings(&r.links, n)
        for i in range(n):
            if r.types.p[i] != b'l' and r.types.p[i] != b'h':
                links[i] = None
        xnames = _strings(&r.xattrs, r.xattrs.ends.len // sizeof(size_t))
        cdef const size_t *xends = <const size_t *>r.xattr_ends.p
        xattrs = [()] * n
        for i in range(n):
            if xends[i] != x0:
                xattrs[i] = tuple(sorted(xnames[x0:xends[i]]))
                x0 = xends[i]
        table = EntryTable(
            paths=paths, types=types,
            modes=_longs(&r.modes, n),
            uids=_int64s(&r.uids, n), gids=_int64s(&r.gids, n),
            sizes=_int64s(&r.sizes, n), mtimes=_int64s(&r.mtimes, n),
            unames=_strings(&r.unames, n, names), gnames=_strings(&r.gnames, n, names), links=links,
            digests=bytearray(PyBytes_FromStringAndSize(<const char *>r.digests.p, n * 68)),
            xattrs=xattrs,
            sparse=bytearray(PyBytes_FromStringAndSize(<const char *>r.sparse.p, n)),
        )
        wpaths = _strings(&r.whiteouts, r.opaque.len)
        whiteouts = [Whiteout(wpaths[i], r.opaque.p[i] != 0) for i in range(r.opaque.len)]

        blobs: dict = {}
        captured: dict = {}
        too_big: list = []
        cdef tar.ls_capture *cap = <tar.ls_capture *>r.captures.p
        globset = None
        for i in range(r.captures.len // sizeof(tar.ls_capture)):
            path = paths[cap[i].entry]
            if cap[i].flags & tar.LS_CAP_UNDECIDED:
                if globset is None:
                    globset = GlobSet(self.options.capture_globs)
                if not globset.matches(path):
                    continue
            if cap[i].flags & tar.LS_CAP_TOO_BIG:
                too_big.append(path)
            else:
                content = blobs[cap[i].blob] = _blob(r, cap[i].blob)
                captured[path] = content

        secrets: list = []
        cdef tar.ls_candidate *cand = <tar.ls_candidate *>r.candidates.p
        cdef const uint64_t *mask
        for i in range(r.candidates.len // sizeof(tar.ls_candidate)):
            mask = (<const uint64_t *>r.masks.p) + cand[i].mask
            matched = [self.rules[j] for j in range(len(self.rules)) if mask[j // 64] >> (j % 64) & 1]
            content = blobs.get(cand[i].blob)
            if content is None:
                content = _blob(r, cand[i].blob)
            secrets.extend(confirm(paths[cand[i].entry], content, matched))

        digest = None
        if self.expected_digest is not None:
            digest = "sha256:" + bytes(r.input_sha256[:32]).hex()
            if digest != self.expected_digest:
                raise DigestMismatch(f"layer {self.name}", str(self.expected_digest), digest)
        diff_id = "sha256:" + bytes(r.diff_sha256[:32]).hex() if self.options.compute_diff_id else None
        cdef size_t n_outside = r.outside_flags.len
        cdef const size_t *outside_entries = <const size_t *>r.outside_entries.p
        outside_names = _strings(&r.outside_names, n_outside)
        outside_paths = _strings(&r.outside_paths, n_outside)
        outside: list = []
        for i in range(n_outside):
            link_of = paths[outside_entries[i]] if outside_entries[i] != <size_t>-1 else None
            outside.append((r.outside_flags.p[i], outside_names[i], outside_paths[i], link_of))
        warnings = outside_root_warnings(outside)
        stats = ScanStats(r.bytes_in, r.bytes_out, r.entries, time.perf_counter() - self.t0, r.sparse_count)
        return LayerResult(table, whiteouts, secrets, captured, too_big, stats, diff_id, digest, warnings)


cdef carray.array _longs(tar.ls_buf *b, size_t n):
    a = array.array("l")
    a.frombytes(PyBytes_FromStringAndSize(<const char *>b.p, n * 8))
    return a


def scan_buffer(data, options, *, compression: str = "auto", name: str = "",
                expected_digest: str | None = None) -> LayerResult:
    """Scan one whole layer held in memory (bytes, memoryview, mmap) without the GIL."""
    scanner = Scanner(options, compression=compression, name=name, expected_digest=expected_digest)
    scanner.feed(data)
    return scanner.finish()

# cython: language_level=3, boundscheck=False, wraparound=False
"""The C layer scanner (tar.h) as a Python module: it compiles Hyperscan databases,
loads capture-glob programs (glob.h), scans with the GIL released, and hands the
result back as columns of Python objects, once per layer, never per byte.

It imports nothing from layerscan and never calls back into Python: scan/native.py
turns a Result into a LayerResult and a ScanError into the typed error. The scan's
constants (digest sizes, entry kinds, whiteout markers, flags) are defined once, in
tar.h, and exported from here.
"""

from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport free
from libc.string cimport memset
from cpython cimport array as carray
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DecodeUTF8

cimport glob
cimport hs
cimport tar
from crypto cimport OpenSSL_version, OPENSSL_VERSION
from zlib cimport zlibVersion
from zstd cimport ZSTD_versionString

import array

assert array.array("l").itemsize == 8, "the modes column is array('l'): 64-bit longs expected"

# ------------------------------------------------------------ tar.h, for Python

MD5_LEN = tar.LS_MD5_LEN
SHA1_LEN = tar.LS_SHA1_LEN
SHA256_LEN = tar.LS_SHA256_LEN
DIGEST_LEN = tar.LS_DIGEST_LEN
ENTRY_KINDS = {chr(tar.ls_kinds[i].code): tar.ls_kinds[i].name.decode() for i in range(tar.LS_N_KINDS)}
WHITEOUT_PREFIX = tar.LS_WHITEOUT_PREFIX.decode()
WHITEOUT_META_PREFIX = tar.LS_WHITEOUT_META_PREFIX.decode()
OPAQUE_MARKER = tar.LS_OPAQUE_MARKER.decode()
OUTSIDE_ESCAPES = tar.LS_OUTSIDE_ESCAPES
OUTSIDE_ABSOLUTE = tar.LS_OUTSIDE_ABSOLUTE
OUTSIDE_LINK = tar.LS_OUTSIDE_LINK
CAPTURE_TOO_BIG = tar.LS_CAP_TOO_BIG
CAPTURE_SPILLED = tar.LS_CAP_SPILLED
MARK_MAX_HITS = tar.LS_MARK_MAX_HITS
MARK_HEAD = tar.LS_MARK_HEAD
MARK_PROBE = tar.LS_MARK_PROBE
_MAX_PROBE = 64  # marks.c probe_window()'s output buffer
COMPRESSIONS = {"auto": tar.LS_AUTO, "gzip": tar.LS_GZIP, "zstd": tar.LS_ZSTD, "none": tar.LS_NONE}
ERR_COMPRESSION = tar.LS_ERR_COMPRESSION
ERR_TAR = tar.LS_ERR_TAR
ERR_LIMIT = tar.LS_ERR_LIMIT
ERR_NOMEM = tar.LS_ERR_NOMEM
ERR_INTERNAL = tar.LS_ERR_INTERNAL


class ScanError(Exception):
    """The scanner's one error: an ERR_* code, a one-line reason, and the offset in the
    uncompressed tar stream where it was found."""

    def __init__(self, code: int, reason: str, offset: int) -> None:
        super().__init__(reason)
        self.code, self.reason, self.offset = code, reason, offset


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

cdef class Database:
    """Patterns compiled together; `always`: the indices of those Hyperscan could not take."""
    cdef hs.hs_database_t *db
    cdef readonly tuple always

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


cdef Database _build(tuple patterns, unsigned flags, unsigned mode):
    """Each pattern exactly when Hyperscan can, else as a prefilter, else it is left
    out and listed in `always`."""
    cdef Database d = Database()
    chosen: list = []
    always: list = []
    for i, p in enumerate(patterns):
        raw = p.encode("utf-8", "surrogateescape")
        if b"\0" not in raw and _compiles(raw, flags, mode):
            chosen.append((i, raw, flags))
        elif b"\0" not in raw and _compiles(raw, flags | hs.HS_FLAG_PREFILTER, mode):
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


def compile_rules(tuple patterns) -> Database:
    """The secret prefilter: one id per rule, matched per line over streamed file content."""
    # MULTILINE: rules are matched per line, so '^' and '$' must work at every line.
    return _build(patterns, hs.HS_FLAG_SINGLEMATCH | hs.HS_FLAG_MULTILINE, hs.HS_MODE_STREAM)


def serialize_database(Database d) -> bytes:
    """The compiled database as Hyperscan writes it (its version, platform and a CRC inside);
    b"" for a database of no pattern."""
    cdef char *out = NULL
    cdef size_t n = 0
    if d.db is NULL:
        return b""
    if hs.hs_serialize_database(d.db, &out, &n) != hs.HS_SUCCESS:
        raise MemoryError("Hyperscan could not serialize a database")
    try:
        return out[:n]
    finally:
        free(out)


def deserialize_database(bytes data, tuple always) -> Database:
    """A database serialize_database wrote, with the indices of the patterns it left out;
    ValueError when this Hyperscan will not load it (another version or CPU, or damaged)."""
    cdef Database d = Database()
    cdef hs.hs_database_t *db = NULL
    if data and hs.hs_deserialize_database(data, len(data), &db) != hs.HS_SUCCESS:
        raise ValueError("Hyperscan refuses this serialized database")
    d.db = db
    d.always = always
    return d


cdef class Marks:
    """Markers for the marks scan (tar.h): a stream database of the literals, and the
    literals, window sizes and probes the scanner copies from."""
    cdef Database db
    cdef bytes literals, probes
    cdef carray.array ends, windows, probe_ends
    cdef readonly unsigned n

    def __cinit__(self, tuple markers):
        # Each literal as a pattern of \\xHH escapes: Hyperscan then takes its bytes as they are.
        self.db = _build(tuple("".join(f"\\x{b:02x}" for b in lit) for lit, _, _ in markers), 0, hs.HS_MODE_STREAM)
        if self.db.always or not markers:
            raise ValueError("markers must be non-empty literals")
        self.n = len(markers)
        self.literals = b"".join(lit for lit, _, _ in markers)
        self.probes = b"".join(probe for _, _, probe in markers)
        ends, probe_ends, at, probe_at = [], [], 0, 0
        for lit, window, probe in markers:
            if window < len(lit):
                raise ValueError("a marker's window must hold the marker")
            if probe and (len(probe) > _MAX_PROBE or len(lit) != 1):
                raise ValueError("a probe is at most 64 bytes, and its marker a zlib stream's first byte")
            at += len(lit)
            probe_at += len(probe)
            ends.append(at)
            probe_ends.append(probe_at)
        self.ends = array.array("Q", ends)
        self.windows = array.array("Q", [window for _, window, _ in markers])
        self.probe_ends = array.array("Q", probe_ends)


# ------------------------------------------------------------ capture globs

cdef class GlobMatcher:
    """Capture globs in C (glob.c): the program layerscan.scan.globs.native_program()
    compiles, run as its GlobSet runs it. It holds working memory: one per Scanner."""
    cdef glob.ls_globs *g

    def __cinit__(self, bytes program):
        cdef int rc = glob.ls_globs_new(<const char *>program, len(program), &self.g)
        if rc == glob.LS_GLOBS_NOMEM:
            raise MemoryError("cannot allocate a glob matcher")
        if rc != glob.LS_GLOBS_OK:
            raise ValueError("malformed glob program")

    def __dealloc__(self):
        glob.ls_globs_free(self.g)

    def matches(self, bytes path) -> bool:
        """Whether the path (its bytes as the tar holds them) matches one of the globs."""
        return glob.ls_globs_match(self.g, <const unsigned char *><const char *>path, len(path)) != 0


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


cdef carray.array _int64s(tar.ls_buf *b, size_t n, str typecode):
    a = array.array(typecode)
    a.frombytes(PyBytes_FromStringAndSize(<const char *>b.p, n * 8))
    return a


cdef bytes _blob(tar.ls_result *r, size_t i):
    cdef tar.ls_buf *b = (<tar.ls_buf *>r.blobs.p) + i
    return PyBytes_FromStringAndSize(<const char *>b.p, b.len) if b.len else b""


cdef class Result:
    """One layer's columns, in tar order. Entries: paths .. sparse (as EntryTable holds
    them). whiteouts: (path, opaque). captures: (entry, CAPTURE_* flags, content or None, offset
    of a CAPTURE_SPILLED one in spill_fd). spill_fd: the layer's spill file, or -1; the caller
    owns it (closes it).
    candidates: (entry, bit mask of the rules the prefilter names, content). marks:
    (entry, marker, offset, window). outside:
    (OUTSIDE_* flags, name as stored, path read, the hardlink's entry or -1)."""
    cdef readonly list paths, unames, gnames, links, xattrs, whiteouts, captures, candidates, marks, outside
    cdef readonly bytearray types, digests, sparse
    cdef readonly object modes, uids, gids, sizes, mtimes
    cdef readonly long long bytes_in, bytes_out, entries, sparse_count
    cdef readonly bytes input_sha256, diff_sha256
    cdef readonly int spill_fd


cdef Result _result(tar.ls_result *r, unsigned n_rules):
    cdef Result out = Result()
    cdef size_t n = r.n, i, x0 = 0
    names: dict = {}
    out.paths = _strings(&r.paths, n)
    out.types = bytearray(PyBytes_FromStringAndSize(<const char *>r.types.p, n))
    out.links = _strings(&r.links, n)
    for i in range(n):
        if r.types.p[i] != tar.LS_SYMLINK and r.types.p[i] != tar.LS_HARDLINK:
            out.links[i] = None
    xnames = _strings(&r.xattrs, r.xattrs.ends.len // sizeof(size_t))
    cdef const size_t *xends = <const size_t *>r.xattr_ends.p
    out.xattrs = [()] * n
    for i in range(n):
        if xends[i] != x0:
            out.xattrs[i] = tuple(sorted(xnames[x0:xends[i]]))
            x0 = xends[i]
    out.modes = _int64s(&r.modes, n, "l")
    out.uids = _int64s(&r.uids, n, "q")
    out.gids = _int64s(&r.gids, n, "q")
    out.sizes = _int64s(&r.sizes, n, "q")
    out.mtimes = _int64s(&r.mtimes, n, "q")
    out.unames = _strings(&r.unames, n, names)
    out.gnames = _strings(&r.gnames, n, names)
    out.digests = bytearray(PyBytes_FromStringAndSize(<const char *>r.digests.p, n * tar.LS_DIGEST_LEN))
    out.sparse = bytearray(PyBytes_FromStringAndSize(<const char *>r.sparse.p, n))

    wpaths = _strings(&r.whiteouts, r.opaque.len)
    out.whiteouts = [(wpaths[i], r.opaque.p[i] != 0) for i in range(r.opaque.len)]

    blobs: dict = {}  # blob index -> bytes, shared by a capture and a candidate of one file
    out.captures = []
    cdef tar.ls_capture *cap = <tar.ls_capture *>r.captures.p
    for i in range(r.captures.len // sizeof(tar.ls_capture)):
        content = None
        if cap[i].blob != <size_t>-1:
            content = blobs[cap[i].blob] = _blob(r, cap[i].blob)
        out.captures.append((cap[i].entry, cap[i].flags, content, cap[i].offset))
    out.spill_fd, r.spill_fd = r.spill_fd, -1  # handed over: ls_free no longer closes it
    out.candidates = []
    cdef tar.ls_candidate *cand = <tar.ls_candidate *>r.candidates.p
    cdef size_t words = (n_rules + 63) // 64, k
    cdef const uint64_t *mask
    for i in range(r.candidates.len // sizeof(tar.ls_candidate)):
        mask = (<const uint64_t *>r.masks.p) + cand[i].mask
        bits = 0
        for k in range(words):
            bits |= (<object>mask[k]) << (64 * k)  # a Python int: no C shift past 64 bits
        content = blobs.get(cand[i].blob)
        if content is None:
            content = _blob(r, cand[i].blob)
        out.candidates.append((cand[i].entry, bits, content))

    out.marks = []
    cdef tar.ls_mark *mark = <tar.ls_mark *>r.marks.p
    for i in range(r.marks.len // sizeof(tar.ls_mark)):
        out.marks.append((mark[i].entry, mark[i].marker, mark[i].offset, _blob(r, mark[i].blob)))

    cdef size_t n_outside = r.outside_flags.len
    cdef const size_t *outside_entries = <const size_t *>r.outside_entries.p
    onames = _strings(&r.outside_names, n_outside)
    opaths = _strings(&r.outside_paths, n_outside)
    out.outside = []
    for i in range(n_outside):
        entry = -1 if outside_entries[i] == <size_t>-1 else <long long>outside_entries[i]
        out.outside.append((r.outside_flags.p[i], onames[i], opaths[i], entry))

    out.bytes_in, out.bytes_out, out.entries, out.sparse_count = r.bytes_in, r.bytes_out, r.entries, r.sparse_count
    out.input_sha256 = bytes(r.input_sha256[:32])
    out.diff_sha256 = bytes(r.diff_sha256[:32])
    return out


# ------------------------------------------------------------ the scanner

cdef class Scanner:
    """feed() compressed chunks of any size, then finish() for the Result, once.
    Both raise ScanError (MemoryError when memory runs out). `threads` > 1 hashes file
    data on that many threads at most, this one included (the process's hashing pool,
    tar.h). close() frees the scanner at once (its part of the pool with it)."""
    cdef tar.ls_scanner *s
    cdef Database rules
    cdef list capture  # the GlobMatchers o.capture points into
    cdef carray.array capture_ptrs, capture_limits
    cdef bytes spill_dir
    cdef Marks marks
    cdef unsigned n_rules
    cdef carray.array always_mask
    cdef bint done, busy  # busy: a feed() without the GIL is under way

    def __cinit__(self, *, int compression, long long max_total_bytes, long long max_entries,
                  long long max_path_bytes, long long max_ext_header_bytes, long long secret_max_file_size,
                  bint secret_skip_binary, bint hash_input, bint diff_id,
                  Database rules=None, unsigned n_rules=0, list capture=None, long long capture_spill_bytes=0,
                  str spill_dir="", Marks marks=None, int threads=1):
        cdef tar.ls_options o
        memset(&o, 0, sizeof(o))
        o.compression = compression
        o.max_total_bytes, o.max_entries = max_total_bytes, max_entries
        o.max_path_bytes, o.max_ext_header_bytes = max_path_bytes, max_ext_header_bytes
        o.secret_max_file_size, o.secret_skip_binary = secret_max_file_size, secret_skip_binary
        o.hash_input, o.diff_id = hash_input, diff_id
        o.threads = threads
        self.rules, self.n_rules = rules, n_rules
        if n_rules:
            o.have_rules = 1
            o.n_rules = n_rules
            o.rules_db = rules.db
            if rules.always:
                words = [0] * ((n_rules + 63) // 64)
                for i in rules.always:
                    words[i // 64] |= 1 << (i % 64)
                self.always_mask = array.array("Q", words)
                o.always_mask = <const uint64_t *>self.always_mask.data.as_voidptr
                o.rules_always = 1
        # capture: (GlobMatcher, size limit) per group of globs
        self.capture = [m for m, _ in capture or ()]
        for m in self.capture:
            if not isinstance(m, GlobMatcher):
                raise TypeError("capture takes (GlobMatcher, limit) pairs")
        self.capture_ptrs = array.array("Q", [<size_t>(<GlobMatcher>m).g for m in self.capture])
        self.capture_limits = array.array("q", [limit for _, limit in capture or ()])
        if self.capture:
            o.capture = <glob.ls_globs *const *>self.capture_ptrs.data.as_voidptr
            o.capture_limits = <const int64_t *>self.capture_limits.data.as_voidptr
            o.n_capture = len(self.capture)
        o.capture_spill_bytes = capture_spill_bytes
        self.spill_dir = spill_dir.encode()
        if spill_dir:
            o.spill_dir = self.spill_dir
        self.marks = marks
        if marks is not None:
            o.marks_db = marks.db.db
            o.n_marks = marks.n
            o.mark_bytes = <const unsigned char *><const char *>marks.literals
            o.mark_ends = <const size_t *>marks.ends.data.as_voidptr
            o.mark_windows = <const size_t *>marks.windows.data.as_voidptr
            o.mark_probes = <const unsigned char *><const char *>marks.probes
            o.mark_probe_ends = <const size_t *>marks.probe_ends.data.as_voidptr
        self.s = tar.ls_new(&o)
        if self.s is NULL:
            raise MemoryError("cannot allocate a layer scanner")

    def __dealloc__(self):
        tar.ls_free(self.s)

    def close(self) -> None:
        """Free the scanner now rather than when it is collected; feed() and finish() then refuse."""
        if self.busy:
            raise ValueError("close() during a feed()")
        self.done = True
        cdef tar.ls_scanner *s = self.s
        self.s = NULL
        with nogil:
            tar.ls_free(s)  # may join the hashing pool's threads

    cdef _raise(self):
        cdef tar.ls_result *r = tar.ls_result_of(self.s)
        reason = r.message.decode("utf-8", "replace")
        if r.error == tar.LS_ERR_NOMEM:
            raise MemoryError(reason)
        raise ScanError(r.error, reason, r.error_offset)

    def feed(self, chunk) -> None:
        """Push the next compressed bytes (any buffer); the GIL is released while they are scanned."""
        if self.done or self.busy:
            raise ValueError("feed() after finish() or close(), or from two threads at once")
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

    def finish(self) -> Result:
        if self.done or self.busy:
            raise ValueError("finish() called twice, after close(), or during a feed()")
        self.done = True
        cdef int rc
        self.busy = True
        try:
            with nogil:
                rc = tar.ls_finish(self.s)
        finally:
            self.busy = False
        if rc:
            self._raise()
        return _result(tar.ls_result_of(self.s), self.n_rules)

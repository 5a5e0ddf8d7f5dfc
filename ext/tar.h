/* The streaming layer scanner: inflate -> tar state machine -> digests, secret
 * prefilter and capture, with results in growable columnar buffers.
 *
 * Nothing here touches Python: _scan.pyx calls ls_feed()/ls_finish() with the
 * GIL released and turns the columns into Python objects once per layer. The
 * semantics follow Python's tarfile in stream mode (see reference.py), quirks
 * included, because the reference engine is the oracle.
 *
 * Sources, by concern: scanner.c (this API: lifecycle, errors), inflate.c
 * (gzip/zstd detection and inflating), tar.c (headers, members, sparse maps,
 * paths, the entry columns), pax.c (PAX records and what they change),
 * content.c (digests, the secret prefilter, capture), marks.c (windows of
 * executables at markers), buf.c (buffers, UTF-8).
 * scanner.h holds what they share; only this header is public.
 *
 * Ownership
 *   ls_new() copies the options; the Hyperscan databases, always_mask and the
 *   capture glob matcher they point to are the caller's and must outlive the scanner. Everything in the
 *   ls_result that ls_result_of() returns (every buffer, every retained file
 *   content in `blobs`) belongs to the scanner and is freed by ls_free(). Read
 *   the result only after ls_finish() returned LS_OK.
 *
 * Errors
 *   The first error is sticky: it sets ls_result.error (an LS_ERR_* code),
 *   error_offset (in the uncompressed tar stream) and message; from then on
 *   ls_feed() and ls_finish() return it at once and do nothing. There is no
 *   recovery: free the scanner. The same input gives the same error, class and
 *   offset, however it is cut into ls_feed() calls.
 *
 * Threads
 *   A scanner is used by one thread at a time; scanners share nothing but the
 *   read-only databases (each has its own capture glob matcher). With
 *   ls_options.threads > 1 the digests of its files are computed by up to
 *   threads - 1 threads of a pool the process's scanners share, and by its own
 *   thread while it waits for them (hashpool.c); the result is the same, byte for
 *   byte. The pool's threads end when the last scanner using them is freed.
 */
#ifndef LAYERSCAN_TAR_H
#define LAYERSCAN_TAR_H

#include <hs/hs.h>
#include <stddef.h>
#include <stdint.h>

#include "glob.h"

typedef struct {
    unsigned char *p;
    size_t len, cap;
} ls_buf;

/* Strings back to back in `bytes`, with each one's end offset (size_t) in `ends`. */
typedef struct {
    ls_buf bytes, ends;
} ls_strings;

/* Which inflater gzip layers go through. */
#ifdef LAYERSCAN_HAVE_ISAL
#define LS_GZIP_ENGINE "isa-l"
#else
#define LS_GZIP_ENGINE "zlib"
#endif

enum { LS_AUTO, LS_GZIP, LS_ZSTD, LS_NONE };

/* LS_ERR_INTERNAL: a library (OpenSSL, Hyperscan) failed; not the input's fault. */
enum { LS_OK, LS_ERR_COMPRESSION, LS_ERR_TAR, LS_ERR_LIMIT, LS_ERR_NOMEM, LS_ERR_INTERNAL };

/* The digests of one regular file, back to back in ls_result.digests (all zero
 * for every other entry). */
enum { LS_MD5_LEN = 16, LS_SHA1_LEN = 20, LS_SHA256_LEN = 32, LS_DIGEST_LEN = 68 };

/* What an entry is, one byte per entry in ls_result.types: its code, the tar
 * typeflag it comes from, and its name. Typeflags '0'..'6' in order; every other
 * data-carrying typeflag reads as a regular file (POSIX). */
enum { LS_FILE = 'f', LS_HARDLINK = 'h', LS_SYMLINK = 'l', LS_CHAR = 'c', LS_BLOCK = 'b', LS_DIR = 'd', LS_FIFO = 'p' };

typedef struct {
    unsigned char code, typeflag;
    const char *name;
} ls_kind;

enum { LS_N_KINDS = 7 };
extern const ls_kind ls_kinds[LS_N_KINDS];

/* Whiteouts (OCI image spec): ".wh.NAME" deletes NAME, ".wh..wh..opq" hides the
 * lower contents of its directory; other ".wh..wh." names are aufs metadata. */
#define LS_WHITEOUT_PREFIX ".wh."
#define LS_WHITEOUT_META_PREFIX ".wh..wh."
#define LS_OPAQUE_MARKER ".wh..wh..opq"

/* Capture decisions, in ls_capture.flags. */
enum { LS_CAP_TOO_BIG = 1, LS_CAP_SPILLED = 2 };

/* Marks (marks.c): in a regular file whose first 4 bytes are an executable's magic
 * (ELF, Mach-O, PE), each of the first LS_MARK_MAX_HITS occurrences of each marker
 * gives a window: the file's bytes from the occurrence on, marker included, up to the
 * marker's window size (fewer at the end of the file). Big executables are thus read
 * for their embedded build data without keeping them. */
enum { LS_MARK_MAX_HITS = 4, LS_MARK_HEAD = 4 };

/* A marker with a probe (a non-empty prefix) is the first byte of a zlib stream, as the
 * compressed data cargo-auditable embeds in Rust binaries: an occurrence gives a window
 * only when the first LS_MARK_PROBE bytes from it (marker included, fewer when the window
 * or the file is shorter) inflate to text starting with the prefix, and only such
 * occurrences count towards LS_MARK_MAX_HITS. Deciding takes those bytes at most, so the
 * windows being probed at once hold LS_MARK_PROBE bytes each, one per byte and marker at most. */
enum { LS_MARK_PROBE = 1024 };

/* How an entry name or hardlink target was outside the root (it is read inside
 * it, as containerd does), in ls_result.outside_flags. */
enum { LS_OUTSIDE_ESCAPES = 1, LS_OUTSIDE_ABSOLUTE = 2, LS_OUTSIDE_LINK = 4 };

typedef struct {
    int compression;
    int64_t max_total_bytes, max_entries, max_path_bytes, max_ext_header_bytes;
    int64_t secret_max_file_size;
    int secret_skip_binary;
    int hash_input; /* sha256 of the input, for expected_digest */
    int diff_id;    /* sha256 of the tar stream */
    /* Secret prefilter: a stream-mode database with one id per rule (NULL when no
     * rule compiled), and whether some rule is a candidate for every eligible file. */
    const hs_database_t *rules_db;
    unsigned n_rules;
    int rules_always, have_rules;
    const uint64_t *always_mask; /* words of rules that are always candidates */
    /* Capture: n_capture groups of globs, each with the size limit of the files it
     * captures (a file matching several gets the largest); the matchers are the
     * scanner's own (glob.h). A capture bigger than capture_spill_bytes that the secret
     * prefilter does not also need goes to one unlinked temp file per layer, made in
     * spill_dir, instead of memory. */
    ls_globs *const *capture;
    const int64_t *capture_limits;
    size_t n_capture;
    int64_t capture_spill_bytes;
    const char *spill_dir;
    /* Marks: a stream-mode database with one id per marker (NULL: none), the markers
     * back to back in mark_bytes with each one's end offset, each one's window, and
     * each one's probe (empty: none). */
    const hs_database_t *marks_db;
    unsigned n_marks;
    const unsigned char *mark_bytes;
    const size_t *mark_ends, *mark_windows;
    const unsigned char *mark_probes; /* the probes back to back (see LS_MARK_PROBE) */
    const size_t *mark_probe_ends;    /* each one's end offset in mark_probes */
    int threads;                      /* that may work on this scan at once, its own included; 0 or 1: it alone */
} ls_options;

typedef struct {
    size_t entry;   /* index into the entry columns */
    size_t blob;    /* index into ls_result.blobs, or (size_t)-1 */
    int64_t offset; /* LS_CAP_SPILLED: where the content starts in ls_result.spill_fd */
    int flags;
} ls_capture;

typedef struct {
    size_t entry, blob;
    size_t mask; /* offset, in uint64 words, into ls_result.masks */
} ls_candidate;

typedef struct {
    size_t entry, blob; /* the window's bytes are blobs[blob] */
    int64_t offset;     /* of the marker in the file */
    unsigned marker;
} ls_mark;

typedef struct {
    size_t n; /* entries */
    ls_strings paths, unames, gnames, links, xattrs;
    ls_buf xattr_ends;                       /* size_t per entry: end index into xattrs */
    ls_buf types, sparse;                    /* one byte per entry */
    ls_buf modes, uids, gids, sizes, mtimes; /* int64_t per entry */
    ls_buf digests;                          /* LS_DIGEST_LEN bytes per entry: md5|sha1|sha256 */
    ls_strings whiteouts;
    ls_buf opaque;     /* one byte per whiteout */
    ls_buf captures;   /* ls_capture */
    ls_buf candidates; /* ls_candidate */
    ls_buf masks;      /* uint64_t words, n_rules bits per candidate */
    ls_buf blobs;      /* ls_buf per retained file content */
    int spill_fd;      /* the layer's spill file, or -1; closed by ls_free unless the caller takes it (sets -1) */
    ls_buf marks;      /* ls_mark, in file order then offset order */
    /* names outside the root: LS_OUTSIDE_* byte, the name as stored, the path it
     * is read as, and for a hardlink target its entry (else (size_t)-1) */
    ls_buf outside_flags, outside_entries;
    ls_strings outside_names, outside_paths;
    int64_t bytes_in, bytes_out, entries, sparse_count;
    unsigned char input_sha256[32], diff_sha256[32];
    int error;
    int64_t error_offset;
    char message[200];
} ls_result;

typedef struct ls_scanner ls_scanner;

/* NULL when out of memory or when Hyperscan or OpenSSL cannot set up. */
ls_scanner *ls_new(const ls_options *opt);
/* Both return LS_OK or the (sticky) error code, also in ls_result_of(s)->error. */
int ls_feed(ls_scanner *s, const unsigned char *data, size_t len);
int ls_finish(ls_scanner *s);
ls_result *ls_result_of(ls_scanner *s);
void ls_free(ls_scanner *s);

#endif

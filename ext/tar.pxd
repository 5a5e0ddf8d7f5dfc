# The scanner's C API (tar.h).
from libc.stdint cimport int64_t, uint64_t

from glob cimport ls_globs
from hs cimport hs_database_t

cdef extern from "tar.h" nogil:
    ctypedef struct ls_buf:
        unsigned char *p
        size_t len

    ctypedef struct ls_strings:
        ls_buf bytes
        ls_buf ends

    const char *LS_GZIP_ENGINE
    const char *LS_WHITEOUT_PREFIX
    const char *LS_WHITEOUT_META_PREFIX
    const char *LS_OPAQUE_MARKER
    enum:
        LS_AUTO
        LS_GZIP
        LS_ZSTD
        LS_NONE
        LS_OK
        LS_ERR_COMPRESSION
        LS_ERR_TAR
        LS_ERR_LIMIT
        LS_ERR_NOMEM
        LS_ERR_INTERNAL
        LS_MD5_LEN
        LS_SHA1_LEN
        LS_SHA256_LEN
        LS_DIGEST_LEN
        LS_SYMLINK
        LS_HARDLINK
        LS_N_KINDS
        LS_CAP_TOO_BIG
        LS_CAP_SPILLED
        LS_OUTSIDE_ESCAPES
        LS_OUTSIDE_ABSOLUTE
        LS_OUTSIDE_LINK
        LS_MARK_MAX_HITS
        LS_MARK_HEAD
        LS_MARK_PROBE

    ctypedef struct ls_kind:
        unsigned char code, typeflag
        const char *name

    const ls_kind ls_kinds[]

    ctypedef struct ls_options:
        int compression
        int64_t max_total_bytes, max_entries, max_path_bytes, max_ext_header_bytes
        int64_t secret_max_file_size
        int secret_skip_binary
        int hash_input
        int diff_id
        const hs_database_t *rules_db
        unsigned n_rules
        int rules_always, have_rules
        const uint64_t *always_mask
        ls_globs *const *capture
        const int64_t *capture_limits
        size_t n_capture
        int64_t capture_spill_bytes
        const char *spill_dir
        const hs_database_t *marks_db
        unsigned n_marks
        const unsigned char *mark_bytes
        const size_t *mark_ends
        const size_t *mark_windows
        const unsigned char *mark_probes
        const size_t *mark_probe_ends
        int threads

    ctypedef struct ls_mark:
        size_t entry, blob
        int64_t offset
        unsigned marker

    ctypedef struct ls_capture:
        size_t entry, blob
        int64_t offset
        int flags

    ctypedef struct ls_candidate:
        size_t entry, blob, mask

    ctypedef struct ls_result:
        size_t n
        ls_strings paths, unames, gnames, links, xattrs
        ls_buf xattr_ends
        ls_buf types, sparse
        ls_buf modes, uids, gids, sizes, mtimes
        ls_buf digests
        ls_strings whiteouts
        ls_buf opaque
        ls_buf captures, candidates, masks, blobs, marks
        int spill_fd
        ls_buf outside_flags, outside_entries
        ls_strings outside_names, outside_paths
        int64_t bytes_in, bytes_out, entries, sparse_count
        unsigned char input_sha256[32]
        unsigned char diff_sha256[32]
        int error
        int64_t error_offset
        char message[200]

    ctypedef struct ls_scanner:
        pass

    ls_scanner *ls_new(const ls_options *opt)
    int ls_feed(ls_scanner *s, const unsigned char *data, size_t len)
    int ls_finish(ls_scanner *s)
    ls_result *ls_result_of(ls_scanner *s)
    void ls_free(ls_scanner *s)

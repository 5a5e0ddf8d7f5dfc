/* libFuzzer target for the native layer scanner (ext/), through its public C API.
 *
 * Each input is a layer blob (gzip, zstd or plain tar; compression is detected).
 * It is scanned twice: as one buffer, and in chunks whose sizes come from a PRNG
 * seeded by a hash of the input, so split points are data-derived and every
 * crash reproduces from the input file alone. The chunked scan feeds everything
 * before a drawn offset (half the time 0) at once, then at most MAX_FEEDS chunks of 1..2^k bytes
 * (k drawn from 0..16), then the rest: byte-by-byte feeding lands anywhere in
 * the input, and no input costs more than MAX_FEEDS calls. The chunked scan hashes on three
 * threads (tar.h's ls_options.threads), the whole one on its own (without the whole scan, half the
 * chunked scans hash on their own thread). Both scans must end the same way:
 * the same error class at the same offset, or equal results. A difference is a
 * finding (abort), as is any sanitizer report, leak or timeout. Building with
 * -DLS_FUZZ_NO_SAME_CHECK (make FUZZ_SAME_CHECK=0) leaves the whole scan and the
 * comparison out, to fuzz for memory errors alone (twice as fast) while a known
 * difference is being fixed.
 *
 * The secret prefilter uses the project's real rules: fuzz/patterns.py writes
 * them to rules.txt beside this binary, and the catalogers' capture globs, as the
 * program ext/glob.c runs, to globs.bin.
 */
#define _GNU_SOURCE /* getline, strdup */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tar.h"

/* Small limits, so that every limit check is reachable from small inputs and
 * no input can make one execution slow (a zstd bomb stops at 16 MiB). */
#define MAX_TOTAL_BYTES (16 << 20)
#define MAX_ENTRIES 2000
#define MAX_PATH_BYTES 1024
#define MAX_EXT_HEADER_BYTES (64 << 10)
#define SECRET_MAX_FILE_SIZE (1 << 20)
#define CAPTURE_MAX_BYTES (64 << 10)
#define CAPTURE_SPILL_BYTES (16 << 10)

static ls_options options;
static ls_globs *capture; /* one group, CAPTURE_MAX_BYTES each */
static const int64_t capture_limit = CAPTURE_MAX_BYTES;
static hs_database_t *rules_db;
static uint64_t always_mask[4]; /* up to 256 rules */

static int compiles(const char *pattern, unsigned flags) {
    hs_database_t *db = NULL;
    hs_compile_error_t *err = NULL;
    if (hs_compile(pattern, flags, HS_MODE_STREAM, NULL, &db, &err) != HS_SUCCESS) {
        hs_free_compile_error(err);
        return 0;
    }
    hs_free_database(db);
    return 1;
}

/* The rules database as _scan.pyx builds it: each pattern exactly when Hyperscan
 * can, else as a prefilter, else it is "always" a candidate. */
static void load_globs(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        abort();
    }
    static unsigned char program[1 << 20];
    size_t len = fread(program, 1, sizeof program, f);
    fclose(f);
    if (ls_globs_new(program, len, &capture) != LS_GLOBS_OK) {
        fprintf(stderr, "fuzz_scan: %s is not a glob program\n", path);
        abort();
    }
}

static void load_rules(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "fuzz_scan: %s missing (run fuzz/patterns.py): fuzzing without secret rules\n", path);
        return;
    }
    enum { MAX_RULES = 64 * (sizeof always_mask / sizeof *always_mask) };
    static char *exprs[MAX_RULES];
    static unsigned flags[MAX_RULES], ids[MAX_RULES];
    unsigned n = 0, chosen = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n') line[len - 1] = 0;
        if (n == MAX_RULES) {
            fprintf(stderr, "fuzz_scan: more than %d rules in %s\n", MAX_RULES, path);
            abort();
        }
        unsigned fl = HS_FLAG_SINGLEMATCH | HS_FLAG_MULTILINE;
        if (!compiles(line, fl)) fl |= HS_FLAG_PREFILTER;
        if (compiles(line, fl)) {
            exprs[chosen] = strdup(line);
            flags[chosen] = fl;
            ids[chosen++] = n;
        } else {
            always_mask[n / 64] |= (uint64_t)1 << (n % 64);
            options.rules_always = 1;
        }
        n++;
    }
    free(line);
    fclose(f);
    hs_compile_error_t *err = NULL;
    if (chosen && hs_compile_multi((const char *const *)exprs, flags, ids, chosen, HS_MODE_STREAM, NULL, &rules_db,
                                   &err) != HS_SUCCESS) {
        fprintf(stderr, "fuzz_scan: rules do not compile together: %s\n", err ? err->message : "?");
        abort();
    }
    for (unsigned i = 0; i < chosen; i++) free(exprs[i]);
    options.rules_db = rules_db;
    options.n_rules = n;
    options.have_rules = n > 0;
    options.always_mask = options.rules_always ? always_mask : NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    options.compression = LS_AUTO;
    options.max_total_bytes = MAX_TOTAL_BYTES;
    options.max_entries = MAX_ENTRIES;
    options.max_path_bytes = MAX_PATH_BYTES;
    options.max_ext_header_bytes = MAX_EXT_HEADER_BYTES;
    options.secret_max_file_size = SECRET_MAX_FILE_SIZE;
    options.capture = &capture;
    options.capture_limits = &capture_limit;
    options.n_capture = 1;
    options.capture_spill_bytes = CAPTURE_SPILL_BYTES; /* bigger captures go to a temp file */
    options.secret_skip_binary = 1;
    options.hash_input = 1;
    options.diff_id = 1;
    /* rules.txt and globs.bin sit beside the binary, so a crash file reproduces with the binary alone */
    const char *exe = (*argv)[0], *slash = strrchr(exe, '/');
    char path[4096];
    snprintf(path, sizeof path, "%.*srules.txt", slash ? (int)(slash - exe + 1) : 0, exe);
    load_rules(path);
    snprintf(path, sizeof path, "%.*sglobs.bin", slash ? (int)(slash - exe + 1) : 0, exe);
    load_globs(path);
    return 0;
}

/* splitmix64 */
static uint64_t next(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t fnv1a(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3u;
    return h;
}

#define MAX_FEEDS 1024

/* Scan `data` whole (rng NULL) or in chunks drawn from `rng` as the comment at the top says. */
static ls_scanner *scan(const uint8_t *data, size_t size, uint64_t *rng) {
    ls_options o = options;
#ifdef LS_FUZZ_NO_SAME_CHECK
    o.threads = next(rng) % 2 ? 3 : 1; /* alone, the chunked scan takes both paths */
#else
    o.threads = rng ? 3 : 1;
#endif
    ls_scanner *s = ls_new(&o);
    if (!s) abort(); /* out of memory: libFuzzer's malloc limit reports it */
    size_t at = 0, start = size, max_chunk = 0;
    if (rng) { /* half the time from the first byte, where the first header is */
        start = next(rng) % 2 ? 0 : next(rng) % (size + 1);
        max_chunk = (size_t)1 << (next(rng) % 17);
    }
    for (int feeds = 0; at < size; feeds++) {
        size_t n = at < start ? start : feeds <= MAX_FEEDS ? 1 + next(rng) % max_chunk : size - at;
        if (n > size - at) n = size - at;
        if (ls_feed(s, data + at, n)) return s;
        at += n;
    }
    ls_finish(s);
    return s;
}

#ifndef LS_FUZZ_NO_SAME_CHECK
#define SAME_BUF(a, b, f) same(&(a)->f, &(b)->f, #f)
#define SAME_STR(a, b, f) (same(&(a)->f.bytes, &(b)->f.bytes, #f) && same(&(a)->f.ends, &(b)->f.ends, #f))

static int same(const ls_buf *a, const ls_buf *b, const char *what) {
    if (a->len == b->len && (!a->len || !memcmp(a->p, b->p, a->len))) return 1;
    fprintf(stderr, "fuzz_scan: whole and chunked scans differ in %s\n", what);
    return 0;
}

static void check_same(const ls_result *a, const ls_result *b) {
    if (a->error != b->error || (a->error && a->error_offset != b->error_offset)) {
        fprintf(stderr, "fuzz_scan: whole scan: error %d at %lld (%s); chunked: error %d at %lld (%s)\n", a->error,
                (long long)a->error_offset, a->message, b->error, (long long)b->error_offset, b->message);
        abort();
    }
    if (a->error) return;
    int ok = a->n == b->n && a->bytes_out == b->bytes_out && a->entries == b->entries &&
             a->sparse_count == b->sparse_count && !memcmp(a->input_sha256, b->input_sha256, 32) &&
             !memcmp(a->diff_sha256, b->diff_sha256, 32);
    if (!ok) fprintf(stderr, "fuzz_scan: whole and chunked scans differ in counts or layer digests\n");
    ok = ok && SAME_STR(a, b, paths) && SAME_STR(a, b, unames) && SAME_STR(a, b, gnames) && SAME_STR(a, b, links) &&
         SAME_STR(a, b, xattrs) && SAME_BUF(a, b, xattr_ends) && SAME_BUF(a, b, types) && SAME_BUF(a, b, sparse) &&
         SAME_BUF(a, b, modes) && SAME_BUF(a, b, uids) && SAME_BUF(a, b, gids) && SAME_BUF(a, b, sizes) &&
         SAME_BUF(a, b, mtimes) && SAME_BUF(a, b, digests) && SAME_STR(a, b, whiteouts) && SAME_BUF(a, b, opaque) &&
         SAME_BUF(a, b, candidates) && SAME_BUF(a, b, masks) && SAME_BUF(a, b, outside_flags) &&
         SAME_BUF(a, b, outside_entries) && SAME_STR(a, b, outside_names) && SAME_STR(a, b, outside_paths);
    /* field by field: ls_capture has padding, and blobs hold pointers */
    ok = ok && a->captures.len == b->captures.len && a->blobs.len == b->blobs.len;
    for (size_t i = 0; ok && i < a->captures.len / sizeof(ls_capture); i++) {
        const ls_capture *x = (const ls_capture *)a->captures.p + i, *y = (const ls_capture *)b->captures.p + i;
        ok = x->entry == y->entry && x->blob == y->blob && x->offset == y->offset && x->flags == y->flags;
    }
    for (size_t i = 0; ok && i < a->blobs.len / sizeof(ls_buf); i++)
        ok = same((const ls_buf *)a->blobs.p + i, (const ls_buf *)b->blobs.p + i, "retained content");
    if (!ok) {
        fprintf(stderr, "fuzz_scan: whole and chunked scans differ\n");
        abort();
    }
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint64_t rng = fnv1a(data, size);
    ls_scanner *chunked = scan(data, size, &rng);
#ifndef LS_FUZZ_NO_SAME_CHECK
    ls_scanner *whole = scan(data, size, NULL);
    check_same(ls_result_of(whole), ls_result_of(chunked));
    ls_free(whole);
#endif
    ls_free(chunked);
    return 0;
}

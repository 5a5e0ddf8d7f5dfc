/* What the scanner does with bytes besides parsing them: the digests (of the
 * input, of the tar stream, of each regular file), the secret prefilter over
 * each file's content, and capturing whole files whose path matches a glob. */
#define _POSIX_C_SOURCE 200809L /* mkstemp, ssize_t write */
#include "scanner.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BINARY_HEAD 8000 /* rules.is_binary looks for NUL in this many bytes */

static const EVP_MD *MD5, *SHA1, *SHA256;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void fetch_mds(void) {
    /* Explicit fetches, once per process: EVP_md5() and friends would re-fetch
     * on every EVP_DigestInit_ex2. */
    MD5 = EVP_MD_fetch(NULL, "MD5", NULL);
    SHA1 = EVP_MD_fetch(NULL, "SHA1", NULL);
    SHA256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static int openssl_failed(ls_scanner *s, const char *call) {
    return scanner_fail(s, LS_ERR_INTERNAL, s->pos, "OpenSSL %s failed", call);
}

/* A context ready for sha256, or NULL. */
static EVP_MD_CTX *sha256_ctx(void) {
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c && !EVP_DigestInit_ex2(c, SHA256, NULL)) {
        EVP_MD_CTX_free(c);
        return NULL;
    }
    return c;
}

int content_init(ls_scanner *s) {
    pthread_once(&md_once, fetch_mds);
    const ls_options *o = &s->o;
    s->r.spill_fd = -1;
    if (!MD5 || !SHA1 || !SHA256) return -1;
    s->mask_words = (o->n_rules + 63) / 64;
    s->mask = calloc(s->mask_words ? s->mask_words : 1, sizeof(uint64_t));
    s->md5 = EVP_MD_CTX_new();
    s->sha1 = EVP_MD_CTX_new();
    s->sha256 = EVP_MD_CTX_new();
    if (!s->mask || !s->md5 || !s->sha1 || !s->sha256) return -1;
    if (o->hash_input && !(s->in_sha = sha256_ctx())) return -1;
    if (o->diff_id && !(s->out_sha = sha256_ctx())) return -1;
    /* one stream reused for every file */
    if (o->rules_db && (hs_alloc_scratch(o->rules_db, &s->scratch) != HS_SUCCESS ||
                        hs_open_stream(o->rules_db, 0, &s->stream) != HS_SUCCESS))
        return -1;
    return marks_init(s);
}

void content_free(ls_scanner *s) {
    EVP_MD_CTX *ctxs[] = {s->md5, s->sha1, s->sha256, s->in_sha, s->out_sha};
    for (size_t i = 0; i < sizeof ctxs / sizeof *ctxs; i++) EVP_MD_CTX_free(ctxs[i]);
    if (s->stream) hs_close_stream(s->stream, s->scratch, NULL, NULL);
    hs_free_scratch(s->scratch);
    buf_free(&s->content);
    free(s->mask);
    if (s->r.spill_fd >= 0) close(s->r.spill_fd);
    marks_free(s);
}

/* ------------------------------------------------------------- digests */

int digest_input(ls_scanner *s, const unsigned char *p, size_t n) {
    if (s->in_sha && n && !EVP_DigestUpdate(s->in_sha, p, n)) return openssl_failed(s, "EVP_DigestUpdate");
    return 0;
}

int digest_stream(ls_scanner *s, const unsigned char *p, size_t n) {
    if (s->out_sha && n && !EVP_DigestUpdate(s->out_sha, p, n)) return openssl_failed(s, "EVP_DigestUpdate");
    return 0;
}

int digest_finish(ls_scanner *s) {
    if ((s->in_sha && !EVP_DigestFinal_ex(s->in_sha, s->r.input_sha256, NULL)) ||
        (s->out_sha && !EVP_DigestFinal_ex(s->out_sha, s->r.diff_sha256, NULL)))
        return openssl_failed(s, "EVP_DigestFinal_ex");
    return 0;
}

/* -------------------------------------------------------- one file */

static int on_rule(unsigned id, unsigned long long from, unsigned long long to, unsigned flags, void *ctx) {
    (void)from, (void)to, (void)flags;
    ls_scanner *s = ctx;
    s->mask[id / 64] |= (uint64_t)1 << (id % 64);
    return 0;
}

/* The largest limit of the capture groups whose globs match the path; -1 when none does. */
static int64_t capture_limit(ls_scanner *s, const ls_buf *path) {
    int64_t limit = -1;
    for (size_t i = 0; i < s->o.n_capture; i++)
        if (s->o.capture_limits[i] > limit && ls_globs_match(s->o.capture[i], path->p, path->len))
            limit = s->o.capture_limits[i];
    return limit;
}

/* The layer's spill file, made on its first use: unlinked at once, so it is gone with its descriptor. */
static int spill_open(ls_scanner *s) {
    if (s->r.spill_fd >= 0) return 0;
    char name[4096];
    const char *dir = s->o.spill_dir ? s->o.spill_dir : "/tmp";
    if (snprintf(name, sizeof name, "%s/layerscan-spill-XXXXXX", dir) >= (int)sizeof name)
        return scanner_fail(s, LS_ERR_INTERNAL, s->pos, "spill directory name too long");
    int fd = mkstemp(name);
    if (fd < 0)
        return scanner_fail(s, LS_ERR_INTERNAL, s->pos, "cannot create a spill file in %s: %s", dir, strerror(errno));
    unlink(name);
    s->r.spill_fd = fd;
    s->spill_end = 0;
    return 0;
}

static int spill_write(ls_scanner *s, const unsigned char *p, size_t n) {
    while (n) {
        ssize_t k = write(s->r.spill_fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return scanner_fail(s, LS_ERR_INTERNAL, s->pos, "cannot write the spill file: %s", strerror(errno));
        p += k, n -= (size_t)k;
    }
    return 0;
}

int file_begin(ls_scanner *s, int64_t size) {
    const ls_options *o = &s->o;
    s->fpos = 0;
    s->fsize = size;
    s->capture_limit = capture_limit(s, &s->norm);
    s->capture = s->capture_limit >= 0;
    s->capture_whole = s->capture && size <= s->capture_limit;
    s->secrets = o->have_rules && size <= o->secret_max_file_size;
    /* Only a capture nothing else needs in memory spills; the prefilter's content stays bounded by its own limit. */
    s->spill = s->capture_whole && !s->secrets && size > o->capture_spill_bytes;
    s->keep = (s->capture_whole && !s->spill) || s->secrets;
    s->content.len = 0;
    if (s->spill && spill_open(s)) return s->r.error;
    if (s->keep && buf_reserve(&s->content, (size_t)size < (1u << 20) ? (size_t)size : (1u << 20))) return NOMEM(s);
    if (!EVP_DigestInit_ex2(s->md5, MD5, NULL) || !EVP_DigestInit_ex2(s->sha1, SHA1, NULL) ||
        !EVP_DigestInit_ex2(s->sha256, SHA256, NULL))
        return openssl_failed(s, "EVP_DigestInit_ex2");
    marks_begin(s);
    return 0;
}

int file_data(ls_scanner *s, const unsigned char *p, size_t n) {
    if (!EVP_DigestUpdate(s->md5, p, n) || !EVP_DigestUpdate(s->sha1, p, n) || !EVP_DigestUpdate(s->sha256, p, n))
        return openssl_failed(s, "EVP_DigestUpdate");
    if (s->secrets && s->o.secret_skip_binary && s->fpos < BINARY_HEAD) {
        size_t k = BINARY_HEAD - (size_t)s->fpos;
        if (memchr(p, 0, k < n ? k : n)) { /* binary: no secrets, keep only what capture needs */
            s->secrets = 0;
            s->keep = s->capture_whole;
            if (!s->keep) s->content.len = 0;
        }
    }
    if (s->keep && buf_put(&s->content, p, n)) return NOMEM(s);
    if (s->spill && spill_write(s, p, n)) return s->r.error;
    if (s->secrets && s->stream) {
        s->hs_dirty = 1;
        if (hs_scan_stream(s->stream, (const char *)p, (unsigned)n, 0, s->scratch, on_rule, s) != HS_SUCCESS)
            return scanner_fail(s, LS_ERR_INTERNAL, s->pos, "Hyperscan stream scan failed");
    }
    s->fpos += n;
    return marks_data(s, p, n);
}

/* Hand the content buffer over to the result; the scanner starts a new one. */
static size_t detach_content(ls_scanner *s) {
    ls_result *r = &s->r;
    if (buf_put(&r->blobs, &s->content, sizeof s->content)) return NO_BLOB;
    memset(&s->content, 0, sizeof s->content);
    return r->blobs.len / sizeof(ls_buf) - 1;
}

int file_end(ls_scanner *s) {
    ls_result *r = &s->r;
    unsigned char *d = r->digests.p + s->entry * LS_DIGEST_LEN;
    if (!EVP_DigestFinal_ex(s->md5, d, NULL) || !EVP_DigestFinal_ex(s->sha1, d + LS_MD5_LEN, NULL) ||
        !EVP_DigestFinal_ex(s->sha256, d + LS_MD5_LEN + LS_SHA1_LEN, NULL))
        return openssl_failed(s, "EVP_DigestFinal_ex");
    if (s->hs_dirty) { /* flush end-anchored matches and make the stream ready for the next file */
        s->hs_dirty = 0;
        if (hs_reset_stream(s->stream, 0, s->scratch, s->secrets ? on_rule : NULL, s) != HS_SUCCESS)
            return scanner_fail(s, LS_ERR_INTERNAL, s->pos, "Hyperscan stream reset failed");
    }
    int candidate = 0;
    if (s->secrets) {
        for (size_t i = 0; i < s->mask_words; i++) {
            if (s->o.always_mask) s->mask[i] |= s->o.always_mask[i];
            candidate |= s->mask[i] != 0;
        }
    }
    int in_memory = s->capture_whole && !s->spill;
    size_t blob = NO_BLOB;
    if (candidate || in_memory) {
        if ((blob = detach_content(s)) == NO_BLOB) return NOMEM(s);
    }
    if (s->capture) {
        ls_capture c = {s->entry, in_memory ? blob : NO_BLOB, s->spill ? s->spill_end : 0,
                        s->spill    ? LS_CAP_SPILLED
                        : in_memory ? 0
                                    : LS_CAP_TOO_BIG};
        if (buf_put(&r->captures, &c, sizeof c)) return NOMEM(s);
        if (s->spill) s->spill_end += s->fpos;
    }
    if (candidate) {
        ls_candidate c = {s->entry, blob, r->masks.len / sizeof(uint64_t)};
        if (buf_put(&r->candidates, &c, sizeof c) || buf_put(&r->masks, s->mask, s->mask_words * sizeof(uint64_t)))
            return NOMEM(s);
    }
    if (s->mask_words) memset(s->mask, 0, s->mask_words * sizeof(uint64_t));
    s->content.len = 0;
    return marks_end(s);
}

/* The streaming layer scanner; see tar.h. Tar semantics mirror CPython's
 * tarfile (stream mode) because reference.py, built on it, defines truth. */
#define _GNU_SOURCE /* qsort_r */
#include "tar.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <zstd.h>
#ifdef LAYERSCAN_HAVE_ISAL
#include <isa-l/igzip_lib.h>
#else
#include <zlib.h>
#endif

#define BLOCK 512
#define WINDOW (256 << 10) /* inflate output: small enough to stay in L2 while hashed */
/* The inflaters get their input in blocks of this size, however it was fed: what
 * they have decoded when they find an error depends on the blocks they were given. */
#define IN_BLOCK (64 << 10)
#define MAX_CHAIN 16       /* extended headers (x, g, L, K) before one member */
#define BINARY_HEAD 8000   /* rules.is_binary looks for NUL in this many bytes */
#define NO_BLOB ((size_t)-1)
#define INT64_OK(v) ((v) >= INT64_MIN && (v) <= INT64_MAX)

typedef __int128 i128;

/* ---------------------------------------------------------------- buffers */

static int buf_reserve(ls_buf *b, size_t extra) {
    if (b->cap - b->len >= extra) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < extra) {
        if (cap > SIZE_MAX / 2) return -1;
        cap *= 2;
    }
    unsigned char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int buf_put(ls_buf *b, const void *p, size_t n) {
    if (buf_reserve(b, n)) return -1;
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

static int buf_set(ls_buf *b, const void *p, size_t n) {
    b->len = 0;
    return buf_put(b, p, n);
}

static int strings_put(ls_strings *s, const void *p, size_t n) {
    if (buf_put(&s->bytes, p, n)) return -1;
    return buf_put(&s->ends, &s->bytes.len, sizeof(size_t));
}

static void buf_free(ls_buf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ------------------------------------------------- PAX dictionaries */

/* Python dict semantics for PAX records: a key keeps the position of its first
 * insertion and the value of its last. Records are appended, then
 * dict_finalize() deduplicates in O(n log n), so a 1 MiB header of tiny records
 * costs no quadratic time. */
typedef struct {
    size_t k, kl, v, vl, seq;
} kv;

typedef struct {
    ls_buf arena, items; /* bytes; kv */
} dict;

#define DICT_N(d) ((d)->items.len / sizeof(kv))
#define DICT_AT(d, i) (((kv *)(d)->items.p) + (i))

static int dict_add(dict *d, const unsigned char *k, size_t kl, const unsigned char *v, size_t vl) {
    kv item = {d->arena.len, kl, d->arena.len + kl, vl, DICT_N(d)};
    if (buf_put(&d->arena, k, kl) || buf_put(&d->arena, v, vl)) return -1;
    return buf_put(&d->items, &item, sizeof item);
}

static int kv_by_key(const void *a, const void *b, void *arena) {
    const kv *x = a, *y = b;
    const unsigned char *base = arena;
    size_t n = x->kl < y->kl ? x->kl : y->kl;
    int c = memcmp(base + x->k, base + y->k, n);
    if (c) return c;
    if (x->kl != y->kl) return x->kl < y->kl ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int kv_by_seq(const void *a, const void *b) {
    const kv *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void dict_finalize(dict *d) {
    size_t n = DICT_N(d), out = 0;
    if (n < 2) return;
    kv *it = DICT_AT(d, 0);
    for (size_t i = 0; i < n; i++) it[i].seq = i;
    qsort_r(it, n, sizeof(kv), kv_by_key, d->arena.p);
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && it[j].kl == it[i].kl && !memcmp(d->arena.p + it[j].k, d->arena.p + it[i].k, it[i].kl)) j++;
        kv first = it[i];
        first.v = it[j - 1].v;
        first.vl = it[j - 1].vl;
        it[out++] = first;
        i = j;
    }
    qsort(it, out, sizeof(kv), kv_by_seq);
    d->items.len = out * sizeof(kv);
}

static int dict_copy(dict *dst, const dict *src) {
    dst->arena.len = dst->items.len = 0;
    return buf_put(&dst->arena, src->arena.p, src->arena.len) || buf_put(&dst->items, src->items.p, src->items.len);
}

static const kv *dict_get(const dict *d, const char *key) {
    size_t kl = strlen(key);
    for (size_t i = 0; i < DICT_N(d); i++) {
        const kv *e = DICT_AT(d, i);
        if (e->kl == kl && !memcmp(d->arena.p + e->k, key, kl)) return e;
    }
    return NULL;
}

static int kv_is(const dict *d, const kv *e, const char *key) {
    size_t kl = strlen(key);
    return e->kl == kl && !memcmp(d->arena.p + e->k, key, kl);
}

/* ----------------------------------------------------- the scanner */

enum { ST_HEADER, ST_EXT, ST_SPARSE_EXT, ST_SPARSE_MAP, ST_DATA, ST_SKIP, ST_END };

typedef struct {
    unsigned char type;
    int64_t offset;
    size_t size; /* of the records; data holds the padding after them too */
    ls_buf data; /* L/K: the name; x/g: the records */
    dict pax;    /* x: global headers at the time, plus its own records */
} ext_header;

/* One member as tarfile's TarInfo would hold it. */
typedef struct {
    unsigned char type;
    ls_buf name, link, uname, gname;
    i128 mode, uid, gid, size, mtime;
    double mtime_f;
    int mtime_is_float, sparse;
    i128 data;           /* bytes of data that follow the header(s) */
    const dict *pax;     /* TarInfo.pax_headers */
    int sparse_ext;      /* old GNU sparse: extension blocks still to read */
    int sparse_format;   /* SPARSE_*: the one sparse map this member has */
    int64_t offset;      /* TarInfo.offset: the first header of x/L/K ... member */
} member;

struct ls_scanner {
    ls_options o;
    ls_result r;
    int comp;
    unsigned char *stage; /* input not yet a whole IN_BLOCK */
    size_t stage_len;
    unsigned char *win;
    int member_open; /* inside a gzip member or zstd frame */
#ifdef LAYERSCAN_HAVE_ISAL
    struct inflate_state gz;
#else
    z_stream gz;
    int gz_ready;
#endif
    ZSTD_DStream *zs;
    EVP_MD_CTX *in_sha, *out_sha, *md5, *sha1, *sha256;

    /* tar */
    int st;
    int64_t pos;          /* uncompressed offset */
    int64_t header_pos;   /* offset of the header being read */
    unsigned char hdr[BLOCK];
    size_t hdr_fill;
    ext_header chain[MAX_CHAIN];
    int chain_n;
    dict global, empty;
    member m;
    ls_buf norm, norm_link, tmp;
    int64_t need, skip;   /* ST_EXT/ST_DATA bytes to go; padding after */

    /* the sparse map: int64 offset, numbytes pairs; for PAX 1.0 also its text,
     * read from the start of the data area, and how much of it is parsed */
    ls_buf smap, smap_text;
    size_t smap_pos;
    i128 smap_want;       /* numbers the 1.0 map holds, -1 before its first line */
    int64_t smap_bytes;   /* of the data area the 1.0 map took */

    /* the regular file being read */
    size_t entry;
    int64_t fpos, fsize;
    int keep, capture, secrets, hs_dirty;
    ls_buf content;
    uint64_t *mask;
    size_t mask_words;
    hs_scratch_t *scratch;
    hs_stream_t *stream;
};

static const EVP_MD *MD5, *SHA1, *SHA256;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void fetch_mds(void) {
    /* Explicit fetches, once per process: EVP_md5() and friends would re-fetch
     * on every EVP_DigestInit_ex2. */
    MD5 = EVP_MD_fetch(NULL, "MD5", NULL);
    SHA1 = EVP_MD_fetch(NULL, "SHA1", NULL);
    SHA256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static int fail(ls_scanner *s, int code, int64_t offset, const char *fmt, ...) {
    if (s->r.error) return s->r.error;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->r.message, sizeof s->r.message, fmt, ap);
    va_end(ap);
    s->r.error = code;
    s->r.error_offset = offset;
    return code;
}

#define NOMEM(s) fail((s), LS_ERR_NOMEM, (s)->pos, "out of memory")

/* ------------------------------------------------- tar field parsing */

/* tarfile.nts(): up to the first NUL. */
static size_t nts_len(const unsigned char *p, size_t n) {
    if (!n) return 0;
    const unsigned char *z = memchr(p, 0, n);
    return z ? (size_t)(z - p) : n;
}

static int py_space(unsigned char c) { /* str.isspace() for ASCII */
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* Python's int(text, 8) on ASCII text: surrounding whitespace, a sign, an
 * optional 0o prefix, digits with single underscores between them. Values are
 * clamped far outside int64 (callers reject those). */
static int py_octal(const unsigned char *p, size_t n, i128 *out) {
    while (n && py_space(*p)) p++, n--;
    while (n && py_space(p[n - 1])) n--;
    int neg = 0;
    if (n && (*p == '+' || *p == '-')) neg = *p == '-', p++, n--;
    int under_ok = 0;
    if (n >= 2 && p[0] == '0' && (p[1] == 'o' || p[1] == 'O')) p += 2, n -= 2, under_ok = 1;
    if (!n) return -1;
    i128 v = 0, cap = (i128)1 << 100;
    int digits = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c == '_') {
            if (!under_ok || i + 1 == n) return -1;
            under_ok = 0;
            continue;
        }
        if (c < '0' || c > '7') return -1;
        if (++digits > 4300) return -1; /* sys.get_int_max_str_digits() */
        v = v < cap ? v * 8 + (c - '0') : cap;
        under_ok = 1;
    }
    *out = neg ? -v : v;
    return 0;
}

/* tarfile.nti(): base-256 with a 0x80/0xff lead byte, else NUL-terminated octal. */
static int nti(const unsigned char *p, size_t n, i128 *out) {
    if (p[0] == 0x80 || p[0] == 0xff) {
        i128 v = 0;
        for (size_t i = 1; i < n; i++) v = (v << 8) | p[i];
        if (p[0] == 0xff) v -= (i128)1 << (8 * (n - 1));
        *out = v;
        return 0;
    }
    n = nts_len(p, n);
    for (size_t i = 0; i < n; i++)
        if (p[i] >= 0x80) return -1; /* ascii, strict */
    size_t k = 0;
    while (k < n && py_space(p[k])) k++;
    if (k == n) { /* int(s.strip() or "0", 8) */
        *out = 0;
        return 0;
    }
    return py_octal(p, n, out);
}

/* PAX numbers are decimal ASCII (POSIX): digits only, no sign, space or
 * underscore. Values are clamped far outside int64 (callers reject those). */
static int pax_digits(const unsigned char *p, size_t n, i128 *out) {
    if (!n) return -1;
    i128 v = 0, cap = (i128)1 << 100;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        v = v < cap ? v * 10 + (p[i] - '0') : cap;
    }
    *out = v;
    return 0;
}

/* PAX times: an optional '-', digits, optionally '.' and more digits. */
static int pax_time_ok(const unsigned char *p, size_t n) {
    size_t i = n && p[0] == '-', int_digits = 0, frac_digits = 0;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) int_digits++;
    if (i < n && p[i] == '.')
        for (i++; i < n && p[i] >= '0' && p[i] <= '9'; i++) frac_digits++;
    return i == n && int_digits && (frac_digits || p[n - 1] != '.');
}

/* Length of the valid UTF-8 sequence at p (strict, as Python decodes), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t n) {
    unsigned char b = p[0];
    if (b < 0x80) return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) len = 2;
    else if (b >= 0xe0 && b <= 0xef) len = 3, lo = b == 0xe0 ? 0xa0 : 0x80, hi = b == 0xed ? 0x9f : 0xbf;
    else if (b >= 0xf0 && b <= 0xf4) len = 4, lo = b == 0xf0 ? 0x90 : 0x80, hi = b == 0xf4 ? 0x8f : 0xbf;
    else return 0;
    if (n < len || p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xbf) return 0;
    return len;
}

/* len() of the str that decoding with surrogateescape gives; *valid says whether
 * no byte needed escaping. */
static size_t py_len(const unsigned char *p, size_t n, int *valid) {
    size_t chars = 0;
    if (valid) *valid = 1;
    for (size_t i = 0; i < n; chars++) {
        size_t k = utf8_seq(p + i, n - i);
        if (!k) {
            k = 1;
            if (valid) *valid = 0;
        }
        i += k;
    }
    return chars;
}

/* PAX records, strictly as reference.check_pax_records() wants them: each
 * "<len> <key>=<value>\n" with a length (no leading zero) that covers exactly the
 * record, keys without '=' or '\n', then nothing but NUL padding. */
static int parse_pax(ls_scanner *s, const unsigned char *b, size_t n, size_t padded, dict *d) {
    if (!padded) return 0; /* a header of size 0: no block, b may be NULL */
    /* First, as tarfile does: re.search(rb"\d+ hdrcharset=([^\n]+)\n") anywhere in the
     * block, its value decoded as strict UTF-8 and stored ahead of the records. */
    static const char HC[] = " hdrcharset=";
    for (const unsigned char *at = b; (at = memmem(at, padded - (size_t)(at - b), HC, sizeof HC - 1)); at++) {
        const unsigned char *v = at + sizeof HC - 1, *end = b + padded;
        const unsigned char *nl = memchr(v, '\n', (size_t)(end - v));
        if (at == b || at[-1] < '0' || at[-1] > '9' || !nl || nl == v) continue;
        int valid;
        py_len(v, (size_t)(nl - v), &valid);
        if (!valid) goto bad;
        if (dict_add(d, (const unsigned char *)HC + 1, sizeof HC - 3, v, (size_t)(nl - v))) return NOMEM(s);
        break;
    }
    size_t pos = 0;
    while (pos < n && b[pos]) {
        size_t i = pos, length = 0;
        if (b[i] < '1' || b[i] > '9') goto bad;
        for (; i < n && b[i] >= '0' && b[i] <= '9'; i++) length = length > n ? length : length * 10 + (b[i] - '0');
        if (i >= n || b[i] != ' ') goto bad;
        size_t k = i + 1, j = k;
        while (j < n && b[j] != '=' && b[j] != '\n') j++;
        if (j == k || j >= n || b[j] != '=') goto bad;
        if (length > n - pos || length < j + 2 - pos || b[pos + length - 1] != '\n') goto bad;
        if (dict_add(d, b + k, j - k, b + j + 1, pos + length - 1 - (j + 1))) return NOMEM(s);
        pos += length;
    }
    for (size_t i = pos; i < n; i++)
        if (b[i]) goto bad;
    /* tarfile itself parses the whole padded block, leniently: re.match(rb"(\d+)
     * ([^=]+)=") at each record, the value sliced with Python's clamping. */
    while (pos == n && pos < padded) {
        size_t i = pos, length = 0;
        for (; i < padded && b[i] >= '0' && b[i] <= '9'; i++)
            length = length > padded ? length : length * 10 + (b[i] - '0');
        if (i == pos || i >= padded || b[i] != ' ') break;
        size_t k = i + 1, j = k;
        while (j < padded && b[j] != '=') j++;
        if (j == k || j >= padded) break;
        if (!length) goto bad;
        size_t ve = length > padded - pos ? padded : pos + length - 1;
        if (dict_add(d, b + k, j - k, b + j + 1, ve > j + 1 ? ve - (j + 1) : 0)) return NOMEM(s);
        if (length > padded - pos) break;
        n = pos += length;
    }
    dict_finalize(d);
    return 0;
bad:
    return fail(s, LS_ERR_TAR, s->header_pos, "malformed PAX record");
}

/* --------------------------------------------------------- output */

static int append_entry(ls_scanner *s, unsigned char kind, i128 size) {
    ls_result *r = &s->r;
    member *m = &s->m;
    int64_t mode = (int64_t)(m->mode & 07777), uid = (int64_t)m->uid, gid = (int64_t)m->gid;
    int64_t sz = (int64_t)size, mtime = m->mtime_is_float ? (int64_t)m->mtime_f : (int64_t)m->mtime;
    unsigned char sparse = kind == 'f' && m->sparse, zeros[68] = {0};
    const ls_buf *link = kind == 'h' ? &s->norm_link : &m->link;
    size_t nx = r->xattrs.ends.len / sizeof(size_t);
    if (m->pax) {
        static const char X[] = "SCHILY.xattr.";
        for (size_t i = 0; i < DICT_N(m->pax); i++) {
            const kv *e = DICT_AT(m->pax, i);
            if (e->kl >= sizeof X - 1 && !memcmp(m->pax->arena.p + e->k, X, sizeof X - 1)) {
                if (strings_put(&r->xattrs, m->pax->arena.p + e->k + sizeof X - 1, e->kl - (sizeof X - 1))) return NOMEM(s);
                nx++;
            }
        }
    }
    if (strings_put(&r->paths, s->norm.p, s->norm.len) || buf_put(&r->types, &kind, 1) ||
        buf_put(&r->sparse, &sparse, 1) || buf_put(&r->modes, &mode, 8) || buf_put(&r->uids, &uid, 8) ||
        buf_put(&r->gids, &gid, 8) || buf_put(&r->sizes, &sz, 8) || buf_put(&r->mtimes, &mtime, 8) ||
        strings_put(&r->unames, m->uname.p, m->uname.len) || strings_put(&r->gnames, m->gname.p, m->gname.len) ||
        strings_put(&r->links, link->p, (kind == 'l' || kind == 'h') ? link->len : 0) ||
        buf_put(&r->digests, zeros, sizeof zeros) || buf_put(&r->xattr_ends, &nx, sizeof nx))
        return NOMEM(s);
    s->entry = r->n++;
    return 0;
}

/* normalize_path(): '/' + the components, '.' and empty ones dropped, '..'
 * popping one. As containerd does, a '..' with nothing to pop stays at the root:
 * returns LS_OUTSIDE_* flags saying how the name was outside it, or -1 when out
 * of memory. */
static int normalize(const unsigned char *p, size_t n, ls_buf *out) {
    int flags = n && p[0] == '/' ? LS_OUTSIDE_ABSOLUTE : 0;
    out->len = 0;
    if (buf_reserve(out, n + 2)) return -1;
    out->p[out->len++] = '/';
    for (size_t i = 0; i <= n;) {
        size_t j = i;
        while (j < n && p[j] != '/') j++;
        size_t cl = j - i;
        if (cl == 2 && p[i] == '.' && p[i + 1] == '.') {
            if (out->len == 1) flags |= LS_OUTSIDE_ESCAPES;
            while (out->p[out->len - 1] != '/') out->len--;
            if (out->len > 1) out->len--;
        } else if (cl && !(cl == 1 && p[i] == '.')) {
            if (out->len > 1) out->p[out->len++] = '/';
            memcpy(out->p + out->len, p + i, cl);
            out->len += cl;
        }
        i = j + 1;
    }
    return flags;
}

/* A name (or hardlink target) that was outside the root, and the path it is read as. */
static int outside_root(ls_scanner *s, int flags, const ls_buf *name, const ls_buf *path, size_t entry) {
    ls_result *r = &s->r;
    unsigned char k = (unsigned char)flags;
    if (buf_put(&r->outside_flags, &k, 1) || strings_put(&r->outside_names, name->p, name->len) ||
        strings_put(&r->outside_paths, path->p, path->len) || buf_put(&r->outside_entries, &entry, sizeof entry))
        return NOMEM(s);
    return 0;
}

/* ---------------------------------------------------- file content */

static int on_rule(unsigned id, unsigned long long from, unsigned long long to, unsigned flags, void *ctx) {
    (void)from, (void)to, (void)flags;
    ls_scanner *s = ctx;
    s->mask[id / 64] |= (uint64_t)1 << (id % 64);
    return 0;
}

static int on_path(unsigned id, unsigned long long from, unsigned long long to, unsigned flags, void *ctx) {
    (void)id, (void)from, (void)to, (void)flags;
    *(int *)ctx = 1;
    return 1; /* one glob is enough */
}

/* 1: captured, 0: not, 2: undecided (Python's GlobSet will judge it). */
static int capture_of(ls_scanner *s, const ls_buf *path) {
    if (!s->o.have_capture) return 0;
    int valid;
    py_len(path->p, path->len, &valid);
    if (!s->o.capture_db || !valid) return 2;
    int hit = 0;
    hs_error_t e = hs_scan(s->o.capture_db, (const char *)path->p, (unsigned)path->len, 0, s->scratch, on_path, &hit);
    if (e != HS_SUCCESS && e != HS_SCAN_TERMINATED) return 2;
    return hit;
}

static int file_begin(ls_scanner *s, int64_t size) {
    const ls_options *o = &s->o;
    s->fpos = 0;
    s->fsize = size;
    s->capture = capture_of(s, &s->norm);
    s->secrets = o->have_rules && size <= o->secret_max_file_size;
    s->keep = (s->capture && size <= o->capture_max_bytes) || s->secrets;
    s->content.len = 0;
    if (s->keep && buf_reserve(&s->content, (size_t)size < (1u << 20) ? (size_t)size : (1u << 20))) return NOMEM(s);
    if (!EVP_DigestInit_ex2(s->md5, MD5, NULL) || !EVP_DigestInit_ex2(s->sha1, SHA1, NULL) ||
        !EVP_DigestInit_ex2(s->sha256, SHA256, NULL))
        return NOMEM(s);
    return 0;
}

static int file_data(ls_scanner *s, const unsigned char *p, size_t n) {
    EVP_DigestUpdate(s->md5, p, n);
    EVP_DigestUpdate(s->sha1, p, n);
    EVP_DigestUpdate(s->sha256, p, n);
    if (s->secrets && s->o.secret_skip_binary && s->fpos < BINARY_HEAD) {
        size_t k = BINARY_HEAD - (size_t)s->fpos;
        if (memchr(p, 0, k < n ? k : n)) { /* binary: no secrets, keep only what capture needs */
            s->secrets = 0;
            s->keep = s->capture && s->fsize <= s->o.capture_max_bytes;
            if (!s->keep) s->content.len = 0;
        }
    }
    if (s->keep && buf_put(&s->content, p, n)) return NOMEM(s);
    if (s->secrets && s->stream) {
        s->hs_dirty = 1;
        if (hs_scan_stream(s->stream, (const char *)p, (unsigned)n, 0, s->scratch, on_rule, s) != HS_SUCCESS)
            return fail(s, LS_ERR_NOMEM, s->pos, "hyperscan stream scan failed");
    }
    s->fpos += n;
    return 0;
}

/* Hand the content buffer over to the result; the scanner starts a new one. */
static size_t detach_content(ls_scanner *s) {
    ls_result *r = &s->r;
    if (buf_put(&r->blobs, &s->content, sizeof s->content)) return NO_BLOB;
    memset(&s->content, 0, sizeof s->content);
    return r->blobs.len / sizeof(ls_buf) - 1;
}

static int file_end(ls_scanner *s) {
    ls_result *r = &s->r;
    unsigned char *d = r->digests.p + s->entry * 68;
    EVP_DigestFinal_ex(s->md5, d, NULL);
    EVP_DigestFinal_ex(s->sha1, d + 16, NULL);
    EVP_DigestFinal_ex(s->sha256, d + 36, NULL);
    if (s->hs_dirty) { /* flush end-anchored matches and make the stream ready for the next file */
        s->hs_dirty = 0;
        if (hs_reset_stream(s->stream, 0, s->scratch, s->secrets ? on_rule : NULL, s) != HS_SUCCESS)
            return fail(s, LS_ERR_NOMEM, s->pos, "hyperscan stream reset failed");
    }
    int candidate = 0;
    if (s->secrets) {
        for (size_t i = 0; i < s->mask_words; i++) {
            if (s->o.always_mask) s->mask[i] |= s->o.always_mask[i];
            candidate |= s->mask[i] != 0;
        }
    }
    int capture_whole = s->capture && s->fsize <= s->o.capture_max_bytes;
    size_t blob = NO_BLOB;
    if (candidate || capture_whole) {
        if ((blob = detach_content(s)) == NO_BLOB) return NOMEM(s);
    }
    if (s->capture) {
        ls_capture c = {s->entry, capture_whole ? blob : NO_BLOB,
                        (capture_whole ? 0 : LS_CAP_TOO_BIG) | (s->capture == 2 ? LS_CAP_UNDECIDED : 0)};
        if (buf_put(&r->captures, &c, sizeof c)) return NOMEM(s);
    }
    if (candidate) {
        ls_candidate c = {s->entry, blob, r->masks.len / 8};
        if (buf_put(&r->candidates, &c, sizeof c) || buf_put(&r->masks, s->mask, s->mask_words * 8)) return NOMEM(s);
    }
    if (s->mask_words) memset(s->mask, 0, s->mask_words * 8);
    s->content.len = 0;
    return 0;
}

/* ------------------------------------------------------ tar headers */

static int64_t round_block(int64_t n) { return (n + BLOCK - 1) / BLOCK * BLOCK; }

/* The data area of the member: its size rounded up to whole blocks. */
static i128 data_area(const member *m) { return (m->data + BLOCK - 1) / BLOCK * BLOCK; }

static void go_skip(ls_scanner *s, int64_t n) {
    s->skip = n;
    s->st = n ? ST_SKIP : ST_HEADER;
}

static int is_data_type(unsigned char t) { /* tarfile: isreg() or not in SUPPORTED_TYPES */
    return !(t >= '1' && t <= '6') && t != 'L' && t != 'K';
}

static int header_checksum_ok(const unsigned char *h) {
    i128 want;
    if (nti(h + 148, 8, &want)) return 0;
    long u = 256, sg = 256;
    for (int i = 0; i < BLOCK; i++) {
        if (i >= 148 && i < 156) continue;
        u += h[i];
        sg += (signed char)h[i];
    }
    return want == u || want == sg;
}

/* The PAX keys whose values are numbers, and which of them are times. */
static const struct {
    const char *key;
    int time;
} PAX_NUMBERS[] = {
    {"size", 0},
    {"uid", 0},
    {"gid", 0},
    {"mtime", 1},
    {"atime", 1},
    {"ctime", 1},
    {"GNU.sparse.size", 0},
    {"GNU.sparse.realsize", 0},
    {"GNU.sparse.numblocks", 0},
    {"GNU.sparse.offset", 0},
    {"GNU.sparse.numbytes", 0},
    {"GNU.sparse.major", 0},
    {"GNU.sparse.minor", 0},
};

/* _apply_pax_info(): every number checked first, then every known key in the
 * dict's order. */
static int apply_pax(ls_scanner *s, const dict *d) {
    member *m = &s->m;
    for (size_t i = 0; i < DICT_N(d); i++) {
        const kv *e = DICT_AT(d, i);
        const unsigned char *v = d->arena.p + e->v;
        i128 n;
        for (size_t k = 0; k < sizeof PAX_NUMBERS / sizeof *PAX_NUMBERS; k++)
            if (kv_is(d, e, PAX_NUMBERS[k].key) && (PAX_NUMBERS[k].time ? !pax_time_ok(v, e->vl) : pax_digits(v, e->vl, &n)))
                return fail(s, LS_ERR_TAR, m->offset, "malformed PAX number in %s", PAX_NUMBERS[k].key);
    }
    for (size_t i = 0; i < DICT_N(d); i++) {
        const kv *e = DICT_AT(d, i);
        const unsigned char *v = d->arena.p + e->v;
        size_t vl = e->vl;
        i128 n;
        int rc = 0;
        if (kv_is(d, e, "path")) {
            while (vl && v[vl - 1] == '/') vl--;
            rc = buf_set(&m->name, v, vl);
        } else if (kv_is(d, e, "GNU.sparse.name")) {
            rc = buf_set(&m->name, v, vl);
        } else if (kv_is(d, e, "linkpath")) {
            rc = buf_set(&m->link, v, vl);
        } else if (kv_is(d, e, "uname")) {
            rc = buf_set(&m->uname, v, vl);
        } else if (kv_is(d, e, "gname")) {
            rc = buf_set(&m->gname, v, vl);
        } else if (kv_is(d, e, "size") || kv_is(d, e, "GNU.sparse.size") || kv_is(d, e, "GNU.sparse.realsize")) {
            pax_digits(v, vl, &n);
            m->size = n;
        } else if (kv_is(d, e, "uid")) {
            pax_digits(v, vl, &n);
            m->uid = n;
        } else if (kv_is(d, e, "gid")) {
            pax_digits(v, vl, &n);
            m->gid = n;
        } else if (kv_is(d, e, "mtime")) {
            /* float(): strtod rounds correctly, as Python does */
            if (buf_set(&s->tmp, v, vl) || buf_put(&s->tmp, "", 1)) return NOMEM(s);
            m->mtime_is_float = 1;
            m->mtime_f = strtod((const char *)s->tmp.p, NULL);
        }
        if (rc) return NOMEM(s);
    }
    m->pax = d;
    return 0;
}

/* Which GNU sparse format a PAX header describes, in tarfile's precedence. */
enum { SPARSE_NONE, SPARSE_OLD_GNU, SPARSE_PAX_00, SPARSE_PAX_01, SPARSE_PAX_10 };

static int pax_sparse_format(const dict *d) {
    const kv *major = dict_get(d, "GNU.sparse.major"), *minor = dict_get(d, "GNU.sparse.minor");
    if (dict_get(d, "GNU.sparse.map")) return SPARSE_PAX_01;
    if (dict_get(d, "GNU.sparse.size")) return SPARSE_PAX_00;
    if (major && minor && major->vl == 1 && d->arena.p[major->v] == '1' && minor->vl == 1 &&
        d->arena.p[minor->v] == '0')
        return SPARSE_PAX_10;
    return SPARSE_NONE;
}

static int has_sparse_keys(const dict *d) {
    static const char G[] = "GNU.sparse.";
    for (size_t i = 0; i < DICT_N(d); i++) {
        const kv *e = DICT_AT(d, i);
        if (e->kl >= sizeof G - 1 && !memcmp(d->arena.p + e->k, G, sizeof G - 1)) return 1;
    }
    return 0;
}

/* The member is complete (all its headers and its sparse map read): the checks
 * of reference.py in its order, then the entry, then what to do with its data. */
static int member_ready(ls_scanner *s) {
    member *m = &s->m;
    ls_result *r = &s->r;
    const ls_options *o = &s->o;
    int64_t at = m->offset;
    s->chain_n = 0;
    if (++r->entries > o->max_entries)
        return fail(s, LS_ERR_LIMIT, at, "more than %lld entries", (long long)o->max_entries);
    if (m->data > 0 && s->pos - s->smap_bytes + data_area(m) > o->max_total_bytes)
        return fail(s, LS_ERR_LIMIT, at, "entry data runs past %lld bytes", (long long)o->max_total_bytes);
    size_t ext = 0;
    for (size_t i = 0; i < DICT_N(m->pax); i++) {
        const kv *e = DICT_AT(m->pax, i);
        ext += py_len(m->pax->arena.p + e->k, e->kl, NULL) + py_len(m->pax->arena.p + e->v, e->vl, NULL);
    }
    int64_t lim = o->max_ext_header_bytes;
    if ((int64_t)ext > lim || (int64_t)py_len(m->name.p, m->name.len, NULL) > lim ||
        (int64_t)py_len(m->link.p, m->link.len, NULL) > lim)
        return fail(s, LS_ERR_LIMIT, at, "extended header larger than %lld bytes", (long long)lim);
    if ((int64_t)m->name.len > o->max_path_bytes)
        return fail(s, LS_ERR_LIMIT, at, "path longer than %lld bytes", (long long)o->max_path_bytes);
    int is_file = !(m->type >= '1' && m->type <= '6');
    if (!INT64_OK(m->uid) || !INT64_OK(m->gid) || (is_file && (!INT64_OK(m->size) || m->size < 0)) ||
        !INT64_OK(m->mtime) ||
        (m->mtime_is_float && !(m->mtime_f >= -0x1p63 && m->mtime_f < 0x1p63)))
        return fail(s, LS_ERR_TAR, at, "number field out of range");
    int rc = normalize(m->name.p, m->name.len, &s->norm);
    if (rc < 0) return NOMEM(s);
    if (rc && outside_root(s, rc, &m->name, &s->norm, NO_BLOB)) return s->r.error;
    if (m->data < 0 || m->data > INT64_MAX / 2) return fail(s, LS_ERR_TAR, at, "member size out of range");
    int64_t area = round_block((int64_t)m->data) - s->smap_bytes; /* what is left of the data area */

    /* whiteouts: not entries, but counted in stats.entries */
    const unsigned char *path = s->norm.p;
    size_t slash = s->norm.len - 1;
    while (path[slash] != '/') slash--;
    const unsigned char *base = path + slash + 1;
    size_t bl = s->norm.len - slash - 1, pl = slash ? slash : 1;
    if (bl >= 4 && !memcmp(base, ".wh.", 4)) {
        int opaque = bl == 12 && !memcmp(base, ".wh..wh..opq", 12);
        if (opaque || !(bl >= 8 && !memcmp(base, ".wh..wh.", 8))) {
            s->tmp.len = 0;
            unsigned char o1 = (unsigned char)opaque;
            if (buf_put(&s->tmp, path, pl)) return NOMEM(s);
            if (!opaque && (s->tmp.p[s->tmp.len - 1] != '/' && buf_put(&s->tmp, "/", 1))) return NOMEM(s);
            if (!opaque && buf_put(&s->tmp, base + 4, bl - 4)) return NOMEM(s);
            if (strings_put(&r->whiteouts, s->tmp.p, s->tmp.len) || buf_put(&r->opaque, &o1, 1)) return NOMEM(s);
        }
        go_skip(s, area);
        return 0;
    }
    static const char KINDS[] = "fhlcbdp"; /* typeflags '0'..'6' */
    unsigned char t = m->type;
    unsigned char kind = (t >= '1' && t <= '6') ? (unsigned char)KINDS[t - '0'] : 'f';
    if (kind == 'h') {
        rc = normalize(m->link.p, m->link.len, &s->norm_link);
        if (rc < 0) return NOMEM(s);
        if (rc && outside_root(s, rc | LS_OUTSIDE_LINK, &m->link, &s->norm_link, r->n)) return s->r.error;
    }
    if ((rc = append_entry(s, kind, kind == 'f' ? m->size : 0))) return rc;
    if (kind != 'f' || m->sparse) {
        r->sparse_count += kind == 'f';
        go_skip(s, area);
        return 0;
    }
    /* extractfile() reads `size` bytes; tarfile then seeks to the end of the data
     * area, and seeking backwards in a stream is an error. */
    if ((int64_t)m->size > area) return fail(s, LS_ERR_TAR, at, "member size runs past its data");
    if ((rc = file_begin(s, (int64_t)m->size))) return rc;
    s->need = (int64_t)m->size;
    s->skip = area - s->need;
    s->st = ST_DATA;
    if (!s->need) {
        if ((rc = file_end(s))) return rc;
        go_skip(s, s->skip);
    }
    return 0;
}

/* ------------------------------------------------------ sparse maps */

/* A number of a PAX sparse map: decimal digits, at most INT64_MAX. */
static int map_number(const unsigned char *p, size_t n, int64_t *out) {
    i128 v;
    if (pax_digits(p, n, &v) || v > INT64_MAX) return -1;
    *out = (int64_t)v;
    return 0;
}

/* One old GNU (offset, numbytes) slot: -1 when out of range, -2 out of memory. */
static int old_gnu_slot(ls_scanner *s, const unsigned char *p) {
    i128 off, num;
    if (nti(p, 12, &off) || nti(p + 12, 12, &num) || off < 0 || num < 0 || off > INT64_MAX || num > INT64_MAX)
        return -1;
    if (!off && !num) return 0; /* an unused slot */
    int64_t pair[2] = {(int64_t)off, (int64_t)num};
    return buf_put(&s->smap, pair, sizeof pair) ? -2 : 0;
}

/* GNU.sparse.map (format 0.1): "offset,numbytes,..." and, if given, as many
 * pairs as GNU.sparse.numblocks says. */
static int parse_map_01(ls_scanner *s, const dict *d, int64_t at) {
    const kv *e = dict_get(d, "GNU.sparse.map"), *nb = dict_get(d, "GNU.sparse.numblocks");
    const unsigned char *p = d->arena.p + e->v;
    size_t n = e->vl;
    for (size_t i = 0;;) {
        size_t j = i;
        while (j < n && p[j] != ',') j++;
        int64_t v;
        if (map_number(p + i, j - i, &v)) goto bad;
        if (buf_put(&s->smap, &v, sizeof v)) return NOMEM(s);
        if (j == n) break;
        i = j + 1;
    }
    size_t numbers = s->smap.len / sizeof(int64_t);
    i128 blocks;
    if (numbers % 2 || (nb && (pax_digits(d->arena.p + nb->v, nb->vl, &blocks) || blocks != (i128)(numbers / 2))))
        goto bad;
    return 0;
bad:
    return fail(s, LS_ERR_TAR, at, "malformed GNU sparse map");
}

/* Every map: chunks in order, inside the file's real size, and no more data
 * than the member stores (after the 1.0 map itself). */
static int check_map(ls_scanner *s) {
    member *m = &s->m;
    const int64_t *v = (const int64_t *)s->smap.p;
    size_t n = s->smap.len / sizeof(int64_t);
    i128 end = 0, total = 0;
    for (size_t i = 0; i < n; i += 2) {
        if (v[i] < end || (i128)v[i] + v[i + 1] > m->size)
            return fail(s, LS_ERR_TAR, m->offset, "GNU sparse map out of order or past the end of the file");
        end = (i128)v[i] + v[i + 1];
        total += v[i + 1];
    }
    if (total > data_area(m) - s->smap_bytes)
        return fail(s, LS_ERR_TAR, m->offset, "GNU sparse map describes more data than the member holds");
    return 0;
}

/* Before each block of a PAX 1.0 map: it must fit the data area and the limit. */
static int map_10_next(ls_scanner *s) {
    int64_t upto = s->smap_bytes + BLOCK;
    if (upto > data_area(&s->m)) return fail(s, LS_ERR_TAR, s->m.offset, "GNU sparse map runs past the member's data");
    if (upto > round_block(s->o.max_ext_header_bytes))
        return fail(s, LS_ERR_LIMIT, s->m.offset, "GNU sparse map larger than %lld bytes",
                    (long long)s->o.max_ext_header_bytes);
    s->st = ST_SPARSE_MAP;
    return 0;
}

/* One more block of a PAX 1.0 map (in s->hdr): a line with the count of pairs,
 * then a line per number, from the start of the data area. */
static int on_map_10(ls_scanner *s) {
    s->smap_bytes += BLOCK;
    if (buf_put(&s->smap_text, s->hdr, BLOCK)) return NOMEM(s);
    while (s->smap_want < 0 || (i128)(s->smap.len / sizeof(int64_t)) < s->smap_want) {
        const unsigned char *line = s->smap_text.p + s->smap_pos;
        const unsigned char *nl = memchr(line, '\n', s->smap_text.len - s->smap_pos);
        if (!nl) return map_10_next(s);
        int64_t v;
        if (map_number(line, (size_t)(nl - line), &v))
            return fail(s, LS_ERR_TAR, s->m.offset, "malformed GNU sparse map");
        s->smap_pos += (size_t)(nl - line) + 1;
        if (s->smap_want < 0) s->smap_want = 2 * (i128)v;
        else if (buf_put(&s->smap, &v, sizeof v)) return NOMEM(s);
    }
    s->st = ST_HEADER;
    return check_map(s) ? s->r.error : member_ready(s);
}

/* Every header of the member is read: the extended headers before it from the
 * innermost out, as tarfile's recursion does, then its sparse map. */
static int headers_done(ls_scanner *s) {
    member *m = &s->m;
    for (int i = s->chain_n - 1; i >= 0; i--) {
        ext_header *e = &s->chain[i];
        if (e->type == 'x' || e->type == 'X') {
            int format = pax_sparse_format(&e->pax);
            if (format) {
                if (m->sparse_format)
                    return fail(s, LS_ERR_TAR, e->offset, "more than one GNU sparse map for one member");
                m->sparse_format = format;
                m->sparse = 1;
                if (format == SPARSE_PAX_01 && parse_map_01(s, &e->pax, e->offset)) return s->r.error;
            }
            if (apply_pax(s, &e->pax)) return s->r.error;
            if (dict_get(&e->pax, "size")) m->data = is_data_type(m->type) ? m->size : 0;
        } else if (e->type == 'g') {
            /* sparse maps describe one file; tarfile would apply these to the next member */
            if (has_sparse_keys(&s->global))
                return fail(s, LS_ERR_TAR, e->offset, "GNU sparse keys in a global header");
        } else if (e->type == 'L') {
            if (buf_set(&m->name, e->data.p, nts_len(e->data.p, e->data.len))) return NOMEM(s);
            if (m->type == '5' && m->name.len && m->name.p[m->name.len - 1] == '/') m->name.len--;
        } else if (buf_set(&m->link, e->data.p, nts_len(e->data.p, e->data.len))) {
            return NOMEM(s);
        }
        if (e->type != 'g') m->offset = e->offset; /* TarInfo.offset: set once the level is applied */
    }
    if (m->sparse_format == SPARSE_PAX_10) {
        s->smap_text.len = s->smap_pos = 0;
        s->smap_want = -1;
        return map_10_next(s);
    }
    if ((m->sparse_format == SPARSE_OLD_GNU || m->sparse_format == SPARSE_PAX_01) && check_map(s)) return s->r.error;
    return member_ready(s);
}

/* Member headers: frombuf(), then _proc_builtin() or _proc_sparse(). */
static int on_member(ls_scanner *s, const unsigned char *h, i128 mode, i128 uid, i128 gid, i128 size, i128 mtime) {
    member *m = &s->m;
    m->type = h[156];
    m->mode = mode, m->uid = uid, m->gid = gid, m->size = size, m->mtime = mtime;
    m->mtime_is_float = 0;
    m->sparse = 0;
    m->sparse_ext = 0;
    m->sparse_format = SPARSE_NONE;
    m->pax = &s->empty;
    m->offset = s->header_pos;
    s->smap.len = 0;
    s->smap_bytes = 0;
    size_t nl = nts_len(h, 100), pl = nts_len(h + 345, 155);
    if (buf_set(&m->name, h, nl) || buf_set(&m->link, h + 157, nts_len(h + 157, 100)) ||
        buf_set(&m->uname, h + 265, nts_len(h + 265, 32)) || buf_set(&m->gname, h + 297, nts_len(h + 297, 32)))
        return NOMEM(s);
    if (m->type == 0 && nl && h[nl - 1] == '/') m->type = '5'; /* old V7 directory */
    if (m->type == 'S') {
        i128 real;
        for (int i = 0; i < 4; i++) {
            int rc = old_gnu_slot(s, h + 386 + 24 * i);
            if (rc == -2) return NOMEM(s);
            if (rc) return fail(s, LS_ERR_TAR, s->header_pos, "malformed tar header");
        }
        if (nti(h + 483, 12, &real)) return fail(s, LS_ERR_TAR, s->header_pos, "malformed tar header");
        m->size = real;
        m->sparse = 1;
        m->sparse_format = SPARSE_OLD_GNU;
        m->sparse_ext = h[482] != 0;
        m->data = size;
    }
    if (m->type == '5')
        while (m->name.len && m->name.p[m->name.len - 1] == '/') m->name.len--;
    if (pl && m->type != 'S') { /* ustar prefix */
        s->tmp.len = 0;
        if (buf_put(&s->tmp, h + 345, pl) || buf_put(&s->tmp, "/", 1) || buf_put(&s->tmp, m->name.p, m->name.len) ||
            buf_set(&m->name, s->tmp.p, s->tmp.len))
            return NOMEM(s);
    }
    if (m->type != 'S') {
        m->data = is_data_type(m->type) ? size : 0;
        if (apply_pax(s, &s->global)) return s->r.error;
        if (m->type == '5')
            while (m->name.len && m->name.p[m->name.len - 1] == '/') m->name.len--;
    }
    if (m->sparse_ext) {
        s->st = ST_SPARSE_EXT;
        return 0;
    }
    return headers_done(s);
}

static int on_ext_done(ls_scanner *s);

static int on_header(ls_scanner *s) {
    const unsigned char *h = s->hdr;
    int zero = 1;
    for (int i = 0; i < BLOCK && zero; i++) zero = !h[i];
    if (zero) {
        if (s->chain_n) return fail(s, LS_ERR_TAR, s->header_pos, "end of archive right after an extended header");
        s->st = ST_END;
        return 0;
    }
    i128 mode, uid, gid, size, mtime, dev;
    if (!header_checksum_ok(h) || nti(h + 100, 8, &mode) || nti(h + 108, 8, &uid) || nti(h + 116, 8, &gid) ||
        nti(h + 124, 12, &size) || nti(h + 136, 12, &mtime) || nti(h + 329, 8, &dev) || nti(h + 337, 8, &dev))
        return fail(s, LS_ERR_TAR, s->header_pos, "malformed tar header");
    if (size < 0) return fail(s, LS_ERR_TAR, s->header_pos, "negative size in tar header");
    unsigned char t = h[156];
    if (t != 'L' && t != 'K' && t != 'x' && t != 'X' && t != 'g') return on_member(s, h, mode, uid, gid, size, mtime);
    /* Bounded memory: refuse early what cannot fit the limit even as 4-byte UTF-8
     * characters; the exact check (in characters, as reference.py counts) comes at the member. */
    if (size > 4 * s->o.max_ext_header_bytes + BLOCK)
        return fail(s, LS_ERR_LIMIT, s->header_pos, "extended header larger than %lld bytes",
                    (long long)s->o.max_ext_header_bytes);
    if (s->chain_n == MAX_CHAIN) return fail(s, LS_ERR_TAR, s->header_pos, "too many extended headers in a row");
    ext_header *e = &s->chain[s->chain_n++];
    e->type = t;
    e->offset = s->header_pos;
    e->size = (size_t)size;
    e->data.len = 0;
    s->need = round_block((int64_t)size); /* with the padding, which tarfile reads too */
    if (buf_reserve(&e->data, (size_t)s->need)) return NOMEM(s);
    s->st = ST_EXT;
    return s->need ? 0 : on_ext_done(s);
}

static int on_ext_done(ls_scanner *s) {
    ext_header *e = &s->chain[s->chain_n - 1];
    if (e->type == 'g') {
        if (parse_pax(s, e->data.p, e->size, e->data.len, &s->global)) return s->r.error;
    } else if (e->type == 'x' || e->type == 'X') {
        if (dict_copy(&e->pax, &s->global)) return NOMEM(s);
        if (parse_pax(s, e->data.p, e->size, e->data.len, &e->pax)) return s->r.error;
    }
    s->st = ST_HEADER;
    return 0;
}

/* Old GNU sparse extension block: 21 (offset, numbytes) pairs and a flag. */
static int on_sparse_ext(ls_scanner *s) {
    for (int i = 0; i < 21; i++) {
        int rc = old_gnu_slot(s, s->hdr + 24 * i);
        if (rc == -2) return NOMEM(s);
        if (rc) return fail(s, LS_ERR_TAR, s->header_pos, "malformed sparse header");
    }
    if (s->hdr[504]) return 0;
    s->st = ST_HEADER;
    return headers_done(s);
}

/* The tar stream, in whatever slices the inflater produces. */
static int tar_feed(ls_scanner *s, const unsigned char *p, size_t n) {
    while (n && !s->r.error) {
        size_t take = n;
        switch (s->st) {
        case ST_HEADER:
        case ST_SPARSE_EXT:
        case ST_SPARSE_MAP:
            if (!s->hdr_fill) s->header_pos = s->pos;
            take = BLOCK - s->hdr_fill < n ? BLOCK - s->hdr_fill : n;
            memcpy(s->hdr + s->hdr_fill, p, take);
            s->hdr_fill += take;
            s->pos += take;
            if (s->hdr_fill == BLOCK) {
                s->hdr_fill = 0;
                if (s->st == ST_HEADER) on_header(s);
                else if (s->st == ST_SPARSE_EXT) on_sparse_ext(s);
                else on_map_10(s);
            }
            break;
        case ST_EXT:
            if ((int64_t)take > s->need) take = (size_t)s->need;
            buf_put(&s->chain[s->chain_n - 1].data, p, take); /* reserved in on_header */
            s->need -= take;
            s->pos += take;
            if (!s->need) on_ext_done(s);
            break;
        case ST_DATA:
            if ((int64_t)take > s->need) take = (size_t)s->need;
            file_data(s, p, take);
            s->need -= take;
            s->pos += take;
            if (!s->need && !file_end(s)) go_skip(s, s->skip);
            break;
        case ST_SKIP:
            if ((int64_t)take > s->skip) take = (size_t)s->skip;
            s->skip -= take;
            s->pos += take;
            if (!s->skip) s->st = ST_HEADER;
            break;
        case ST_END:
            s->pos += take;
            break;
        }
        p += take;
        n -= take;
    }
    return s->r.error;
}

/* ------------------------------------------------------ decompression */

/* Every uncompressed byte goes through here: counted, bounded, hashed for the
 * diff_id. Bytes up to the limit are parsed before the limit is reported, and it
 * is reported at the limit itself, so the error does not depend on how the input
 * was cut into chunks. */
static int emit(ls_scanner *s, const unsigned char *p, size_t n) {
    int64_t room = s->o.max_total_bytes - s->r.bytes_out;
    size_t take = (int64_t)n > room ? (size_t)room : n;
    s->r.bytes_out += (int64_t)take;
    if (s->out_sha && take) EVP_DigestUpdate(s->out_sha, p, take);
    if (tar_feed(s, p, take)) return s->r.error;
    if (take < n)
        return fail(s, LS_ERR_LIMIT, s->o.max_total_bytes, "layer expands past %lld bytes",
                    (long long)s->o.max_total_bytes);
    return 0;
}

#ifdef LAYERSCAN_HAVE_ISAL
static int gzip_feed(ls_scanner *s, const unsigned char *p, size_t n) {
    struct inflate_state *g = &s->gz;
    for (;;) {
        if (!s->member_open) {
            while (n && !*p) p++, n--; /* zero padding between and after members, as gzip.py allows */
            if (!n) return 0;
            isal_inflate_reset(g);
            g->crc_flag = ISAL_GZIP;
            s->member_open = 1;
        }
        g->next_in = (uint8_t *)p;
        g->avail_in = (uint32_t)(n > UINT32_MAX ? UINT32_MAX : n);
        uint32_t given = g->avail_in;
        g->next_out = s->win;
        g->avail_out = WINDOW;
        int ret = isal_inflate(g);
        size_t used = given - g->avail_in, made = WINDOW - g->avail_out;
        p += used, n -= used;
        /* what was inflated before an error is parsed first, however the input was cut */
        if (made && emit(s, s->win, made)) return s->r.error;
        if (ret < 0) return fail(s, LS_ERR_COMPRESSION, s->r.bytes_out, "corrupt gzip stream (igzip error %d)", ret);
        if (g->block_state == ISAL_BLOCK_FINISH) s->member_open = 0;
        else if (!made && !n) return 0;
        else if (!made && !used) return fail(s, LS_ERR_COMPRESSION, s->r.bytes_out, "gzip inflate made no progress");
    }
}
#else
static int gzip_feed(ls_scanner *s, const unsigned char *p, size_t n) {
    z_stream *z = &s->gz;
    for (;;) {
        if (!s->member_open) {
            while (n && !*p) p++, n--; /* zero padding between and after members, as gzip.py allows */
            if (!n) return 0;
            /* 16+15: gzip only; gzip.py rejects zlib and raw streams too */
            if (!s->gz_ready ? inflateInit2(z, 16 + 15) : inflateReset(z)) return NOMEM(s);
            s->gz_ready = 1;
            s->member_open = 1;
        }
        z->next_in = (Bytef *)p;
        z->avail_in = (uInt)(n > UINT32_MAX ? UINT32_MAX : n);
        uInt given = z->avail_in;
        z->next_out = s->win;
        z->avail_out = WINDOW;
        int ret = inflate(z, Z_NO_FLUSH);
        size_t used = given - z->avail_in, made = WINDOW - z->avail_out;
        p += used, n -= used;
        /* what was inflated before an error is parsed first, however the input was cut */
        if (made && emit(s, s->win, made)) return s->r.error;
        if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR)
            return fail(s, LS_ERR_COMPRESSION, s->r.bytes_out, "corrupt gzip stream (zlib error %d)", ret);
        if (ret == Z_STREAM_END) s->member_open = 0;
        else if (!made && !n) return 0;
        else if (!made && !used) return fail(s, LS_ERR_COMPRESSION, s->r.bytes_out, "gzip inflate made no progress");
    }
}
#endif

static int zstd_feed(ls_scanner *s, const unsigned char *p, size_t n) {
    ZSTD_inBuffer in = {p, n, 0};
    for (;;) {
        ZSTD_outBuffer out = {s->win, WINDOW, 0};
        size_t ret = ZSTD_decompressStream(s->zs, &out, &in);
        if (out.pos && emit(s, s->win, out.pos)) return s->r.error;
        if (ZSTD_isError(ret))
            return fail(s, LS_ERR_COMPRESSION, s->r.bytes_out, "corrupt zstd stream: %s", ZSTD_getErrorName(ret));
        s->member_open = ret != 0;
        if (in.pos == in.size && out.pos < out.size) return 0;
    }
}

static int push(ls_scanner *s, const unsigned char *p, size_t n) {
    if (!n) return 0;
    if (s->comp == LS_AUTO) { /* the magic bytes: every block but the last is larger than them */
        if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b) s->comp = LS_GZIP;
        else if (n >= 4 && !memcmp(p, "\x28\xb5\x2f\xfd", 4)) s->comp = LS_ZSTD;
        else s->comp = LS_NONE;
    }
    switch (s->comp) {
    case LS_GZIP: return gzip_feed(s, p, n);
    case LS_ZSTD: return zstd_feed(s, p, n);
    default: return emit(s, p, n);
    }
}

/* ------------------------------------------------------------- API */

ls_scanner *ls_new(const ls_options *opt) {
    pthread_once(&md_once, fetch_mds);
    ls_scanner *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->o = *opt;
    s->comp = opt->compression;
    s->mask_words = (opt->n_rules + 63) / 64;
    s->win = malloc(WINDOW);
    s->stage = malloc(IN_BLOCK);
    s->md5 = EVP_MD_CTX_new();
    s->sha1 = EVP_MD_CTX_new();
    s->sha256 = EVP_MD_CTX_new();
    s->mask = calloc(s->mask_words ? s->mask_words : 1, 8);
    int ok = s->win && s->stage && s->md5 && s->sha1 && s->sha256 && s->mask && MD5 && SHA1 && SHA256;
    if (ok && opt->hash_input) ok = (s->in_sha = EVP_MD_CTX_new()) && EVP_DigestInit_ex2(s->in_sha, SHA256, NULL);
    if (ok && opt->diff_id) ok = (s->out_sha = EVP_MD_CTX_new()) && EVP_DigestInit_ex2(s->out_sha, SHA256, NULL);
    if (ok && (s->comp == LS_AUTO || s->comp == LS_ZSTD)) ok = (s->zs = ZSTD_createDStream()) != NULL;
#ifdef LAYERSCAN_HAVE_ISAL
    isal_inflate_init(&s->gz);
#endif
    /* one scratch sized for both databases; one stream reused for every file */
    if (ok && opt->rules_db) ok = hs_alloc_scratch(opt->rules_db, &s->scratch) == HS_SUCCESS &&
                                  hs_open_stream(opt->rules_db, 0, &s->stream) == HS_SUCCESS;
    if (ok && opt->capture_db) ok = hs_alloc_scratch(opt->capture_db, &s->scratch) == HS_SUCCESS;
    if (!ok) {
        ls_free(s);
        return NULL;
    }
    return s;
}

int ls_feed(ls_scanner *s, const unsigned char *p, size_t n) {
    if (s->r.error) return s->r.error;
    s->r.bytes_in += n;
    if (s->in_sha) EVP_DigestUpdate(s->in_sha, p, n);
    if (s->stage_len) {
        size_t k = IN_BLOCK - s->stage_len < n ? IN_BLOCK - s->stage_len : n;
        memcpy(s->stage + s->stage_len, p, k);
        s->stage_len += k;
        p += k, n -= k;
        if (s->stage_len < IN_BLOCK) return 0;
        s->stage_len = 0;
        if (push(s, s->stage, IN_BLOCK)) return s->r.error;
    }
    for (; n >= IN_BLOCK; p += IN_BLOCK, n -= IN_BLOCK)
        if (push(s, p, IN_BLOCK)) return s->r.error;
    memcpy(s->stage, p, n);
    s->stage_len = n;
    return 0;
}

int ls_finish(ls_scanner *s) {
    if (s->r.error) return s->r.error;
    if (push(s, s->stage, s->stage_len)) return s->r.error;
    if (s->member_open)
        return fail(s, LS_ERR_COMPRESSION, s->r.bytes_out, "compressed stream ended before its end marker");
    int64_t at = s->pos;
    if (!s->pos) return fail(s, LS_ERR_TAR, 0, "empty tar stream");
    switch (s->st) {
    case ST_END: break;
    case ST_HEADER:
        if (s->chain_n) return fail(s, LS_ERR_TAR, at, "tar stream ends right after an extended header");
        if (s->hdr_fill) return fail(s, LS_ERR_TAR, s->header_pos, "truncated tar header");
        break;
    default: return fail(s, LS_ERR_TAR, at, "tar stream truncated inside a member");
    }
    if (s->in_sha) EVP_DigestFinal_ex(s->in_sha, s->r.input_sha256, NULL);
    if (s->out_sha) EVP_DigestFinal_ex(s->out_sha, s->r.diff_sha256, NULL);
    return 0;
}

ls_result *ls_result_of(ls_scanner *s) { return &s->r; }

static void strings_free(ls_strings *x) {
    buf_free(&x->bytes);
    buf_free(&x->ends);
}

static void dict_free(dict *d) {
    buf_free(&d->arena);
    buf_free(&d->items);
}

void ls_free(ls_scanner *s) {
    if (!s) return;
    ls_result *r = &s->r;
    for (size_t i = 0; i < r->blobs.len / sizeof(ls_buf); i++) buf_free(((ls_buf *)r->blobs.p) + i);
    ls_strings *strs[] = {&r->paths,    &r->unames,        &r->gnames,       &r->links,
                          &r->xattrs,   &r->whiteouts,     &r->outside_names, &r->outside_paths};
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++) strings_free(strs[i]);
    ls_buf *bufs[] = {&r->xattr_ends, &r->types, &r->sparse, &r->modes, &r->uids, &r->gids, &r->sizes,
                      &r->mtimes, &r->digests, &r->opaque, &r->captures, &r->candidates, &r->masks, &r->blobs,
                      &s->m.name, &s->m.link, &s->m.uname, &s->m.gname, &s->norm, &s->norm_link, &s->tmp,
                      &s->content, &s->smap, &s->smap_text, &r->outside_flags, &r->outside_entries};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) buf_free(bufs[i]);
    for (int i = 0; i < MAX_CHAIN; i++) {
        buf_free(&s->chain[i].data);
        dict_free(&s->chain[i].pax);
    }
    dict_free(&s->global);
    EVP_MD_CTX *ctxs[] = {s->md5, s->sha1, s->sha256, s->in_sha, s->out_sha};
    for (size_t i = 0; i < 5; i++) EVP_MD_CTX_free(ctxs[i]);
#ifndef LAYERSCAN_HAVE_ISAL
    if (s->gz_ready) inflateEnd(&s->gz);
#endif
    ZSTD_freeDStream(s->zs);
    if (s->stream) hs_close_stream(s->stream, s->scratch, NULL, NULL);
    hs_free_scratch(s->scratch);
    free(s->win);
    free(s->stage);
    free(s->mask);
    free(s);
}

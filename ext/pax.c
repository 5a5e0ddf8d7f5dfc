/* PAX extended headers: their records (as tarfile parses them, checked as
 * reference.py checks them), their numbers, and what they change in a member. */
#define _GNU_SOURCE /* qsort_r, memmem */
#include "scanner.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------- dictionaries */

/* Records are appended, then dict_finalize() deduplicates in O(n log n), so a
 * 1 MiB header of tiny records costs no quadratic time. */
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

int dict_copy(dict *dst, const dict *src) {
    dst->arena.len = dst->items.len = 0;
    return buf_put(&dst->arena, src->arena.p, src->arena.len) || buf_put(&dst->items, src->items.p, src->items.len);
}

const kv *dict_get(const dict *d, const char *key) {
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

void dict_free(dict *d) {
    buf_free(&d->arena);
    buf_free(&d->items);
}

/* ------------------------------------------------------------ records */

/* PAX records, strictly as reference.check_pax_records() wants them: each
 * "<len> <key>=<value>\n" with a length (no leading zero) that covers exactly the
 * record, keys without '=' or '\n', then nothing but NUL padding. */
int pax_parse(ls_scanner *s, const unsigned char *b, size_t n, size_t padded, dict *d) {
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
    return scanner_fail(s, LS_ERR_TAR, s->header_pos, "malformed PAX record");
}

/* ------------------------------------------------------------ numbers */

/* PAX numbers are decimal ASCII (POSIX): digits only, no sign, space or underscore. */
int pax_digits(const unsigned char *p, size_t n, i128 *out) {
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
int pax_apply(ls_scanner *s, const dict *d) {
    member *m = &s->m;
    for (size_t i = 0; i < DICT_N(d); i++) {
        const kv *e = DICT_AT(d, i);
        const unsigned char *v = d->arena.p + e->v;
        i128 n;
        for (size_t k = 0; k < sizeof PAX_NUMBERS / sizeof *PAX_NUMBERS; k++)
            if (kv_is(d, e, PAX_NUMBERS[k].key) &&
                (PAX_NUMBERS[k].time ? !pax_time_ok(v, e->vl) : pax_digits(v, e->vl, &n)))
                return scanner_fail(s, LS_ERR_TAR, m->offset, "malformed PAX number in %s", PAX_NUMBERS[k].key);
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

/* ---------------------------------------------------------- sparse */

/* Which GNU sparse format a PAX header describes, in tarfile's precedence. */
int pax_sparse_format(const dict *d) {
    const kv *major = dict_get(d, "GNU.sparse.major"), *minor = dict_get(d, "GNU.sparse.minor");
    if (dict_get(d, "GNU.sparse.map")) return SPARSE_PAX_01;
    if (dict_get(d, "GNU.sparse.size")) return SPARSE_PAX_00;
    if (major && minor && major->vl == 1 && d->arena.p[major->v] == '1' && minor->vl == 1 &&
        d->arena.p[minor->v] == '0')
        return SPARSE_PAX_10;
    return SPARSE_NONE;
}

int pax_has_sparse_keys(const dict *d) {
    static const char G[] = "GNU.sparse.";
    for (size_t i = 0; i < DICT_N(d); i++) {
        const kv *e = DICT_AT(d, i);
        if (e->kl >= sizeof G - 1 && !memcmp(d->arena.p + e->k, G, sizeof G - 1)) return 1;
    }
    return 0;
}

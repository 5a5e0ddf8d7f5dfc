/* The tar stream: headers, members (as tarfile's TarInfo holds them), their
 * sparse maps, their paths, and the entry columns of the result. Semantics mirror
 * CPython's tarfile in stream mode, because reference.py, built on it, defines truth. */
#include "scanner.h"

#include <string.h>

#define INT64_OK(v) ((v) >= INT64_MIN && (v) <= INT64_MAX)

const ls_kind ls_kinds[LS_N_KINDS] = {
    {LS_FILE, '0', "file"},   {LS_HARDLINK, '1', "hardlink"}, {LS_SYMLINK, '2', "symlink"}, {LS_CHAR, '3', "char"},
    {LS_BLOCK, '4', "block"}, {LS_DIR, '5', "dir"},           {LS_FIFO, '6', "fifo"},
};

/* The header block, field by field: ustar (POSIX.1-1988), then the old GNU
 * sparse fields that overlay the ustar prefix. */
enum {
    F_NAME,
    F_MODE,
    F_UID,
    F_GID,
    F_SIZE,
    F_MTIME,
    F_CHKSUM,
    F_TYPEFLAG,
    F_LINKNAME,
    F_MAGIC,
    F_VERSION,
    F_UNAME,
    F_GNAME,
    F_DEVMAJOR,
    F_DEVMINOR,
    F_PREFIX,
    F_SPARSE,
    F_ISEXTENDED,
    F_REALSIZE,
    N_FIELDS
};
static const struct {
    unsigned short off, len;
} FIELDS[N_FIELDS] = {
    [F_NAME] = {0, 100},       [F_MODE] = {100, 8},       [F_UID] = {108, 8},       [F_GID] = {116, 8},
    [F_SIZE] = {124, 12},      [F_MTIME] = {136, 12},     [F_CHKSUM] = {148, 8},    [F_TYPEFLAG] = {156, 1},
    [F_LINKNAME] = {157, 100}, [F_MAGIC] = {257, 6},      [F_VERSION] = {263, 2},   [F_UNAME] = {265, 32},
    [F_GNAME] = {297, 32},     [F_DEVMAJOR] = {329, 8},   [F_DEVMINOR] = {337, 8},  [F_PREFIX] = {345, 155},
    [F_SPARSE] = {386, 96},    [F_ISEXTENDED] = {482, 1}, [F_REALSIZE] = {483, 12},
};
#define FIELD(h, f) ((h) + FIELDS[f].off)
/* An old GNU sparse slot is an offset and a size, 12 bytes each: 4 in the
 * header (F_SPARSE), 21 in each extension block, which ends with its own isextended. */
#define SLOT 24
#define EXT_SLOTS 21
#define EXT_ISEXTENDED 504

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

static int has_prefix(const unsigned char *p, size_t n, const char *prefix) {
    size_t k = strlen(prefix);
    return n >= k && !memcmp(p, prefix, k);
}

/* tarfile.nts() of a header field: its length up to the first NUL. */
static size_t field_len(const unsigned char *h, int f) { return nts_len(FIELD(h, f), FIELDS[f].len); }

static int field_number(const unsigned char *h, int f, i128 *out) { return nti(FIELD(h, f), FIELDS[f].len, out); }

/* --------------------------------------------------------- output */

static int append_entry(ls_scanner *s, unsigned char kind, i128 size) {
    ls_result *r = &s->r;
    member *m = &s->m;
    int64_t mode = (int64_t)(m->mode & 07777), uid = (int64_t)m->uid, gid = (int64_t)m->gid;
    int64_t sz = (int64_t)size, mtime = m->mtime_is_float ? (int64_t)m->mtime_f : (int64_t)m->mtime;
    unsigned char sparse = kind == LS_FILE && m->sparse, zeros[LS_DIGEST_LEN] = {0};
    const ls_buf *link = kind == LS_HARDLINK ? &s->norm_link : &m->link;
    size_t nx = r->xattrs.ends.len / sizeof(size_t);
    if (m->pax) {
        static const char X[] = "SCHILY.xattr.";
        for (size_t i = 0; i < DICT_N(m->pax); i++) {
            const kv *e = DICT_AT(m->pax, i);
            if (e->kl >= sizeof X - 1 && !memcmp(m->pax->arena.p + e->k, X, sizeof X - 1)) {
                if (strings_put(&r->xattrs, m->pax->arena.p + e->k + sizeof X - 1, e->kl - (sizeof X - 1)))
                    return NOMEM(s);
                nx++;
            }
        }
    }
    if (strings_put(&r->paths, s->norm.p, s->norm.len) || buf_put(&r->types, &kind, 1) ||
        buf_put(&r->sparse, &sparse, 1) || buf_put(&r->modes, &mode, 8) || buf_put(&r->uids, &uid, 8) ||
        buf_put(&r->gids, &gid, 8) || buf_put(&r->sizes, &sz, 8) || buf_put(&r->mtimes, &mtime, 8) ||
        strings_put(&r->unames, m->uname.p, m->uname.len) || strings_put(&r->gnames, m->gname.p, m->gname.len) ||
        strings_put(&r->links, link->p, (kind == LS_SYMLINK || kind == LS_HARDLINK) ? link->len : 0) ||
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
    if (field_number(h, F_CHKSUM, &want)) return 0;
    long u = 256, sg = 256; /* the checksum field itself counts as spaces */
    for (int i = 0; i < BLOCK; i++) {
        if (i >= FIELDS[F_CHKSUM].off && i < FIELDS[F_CHKSUM].off + FIELDS[F_CHKSUM].len) continue;
        u += h[i];
        sg += (signed char)h[i];
    }
    return want == u || want == sg;
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
        return scanner_fail(s, LS_ERR_LIMIT, at, "more than %lld entries", (long long)o->max_entries);
    if (m->data > 0 && s->pos - s->smap_bytes + data_area(m) > o->max_total_bytes)
        return scanner_fail(s, LS_ERR_LIMIT, at, "entry data runs past %lld bytes", (long long)o->max_total_bytes);
    size_t ext = 0;
    for (size_t i = 0; i < DICT_N(m->pax); i++) {
        const kv *e = DICT_AT(m->pax, i);
        ext += py_len(m->pax->arena.p + e->k, e->kl, NULL) + py_len(m->pax->arena.p + e->v, e->vl, NULL);
    }
    int64_t lim = o->max_ext_header_bytes;
    if ((int64_t)ext > lim || (int64_t)py_len(m->name.p, m->name.len, NULL) > lim ||
        (int64_t)py_len(m->link.p, m->link.len, NULL) > lim)
        return scanner_fail(s, LS_ERR_LIMIT, at, "extended header larger than %lld bytes", (long long)lim);
    if ((int64_t)m->name.len > o->max_path_bytes)
        return scanner_fail(s, LS_ERR_LIMIT, at, "path longer than %lld bytes", (long long)o->max_path_bytes);
    int is_file = !(m->type >= '1' && m->type <= '6');
    if (!INT64_OK(m->uid) || !INT64_OK(m->gid) || (is_file && (!INT64_OK(m->size) || m->size < 0)) ||
        !INT64_OK(m->mtime) || (m->mtime_is_float && !(m->mtime_f >= -0x1p63 && m->mtime_f < 0x1p63)))
        return scanner_fail(s, LS_ERR_TAR, at, "number field out of range");
    int rc = normalize(m->name.p, m->name.len, &s->norm);
    if (rc < 0) return NOMEM(s);
    if (rc && outside_root(s, rc, &m->name, &s->norm, NO_BLOB)) return s->r.error;
    if (m->data < 0 || m->data > INT64_MAX / 2) return scanner_fail(s, LS_ERR_TAR, at, "member size out of range");
    int64_t area = round_block((int64_t)m->data) - s->smap_bytes; /* what is left of the data area */

    /* whiteouts: not entries, but counted in stats.entries */
    const unsigned char *path = s->norm.p;
    size_t slash = s->norm.len - 1;
    while (path[slash] != '/') slash--;
    const unsigned char *base = path + slash + 1;
    size_t bl = s->norm.len - slash - 1, pl = slash ? slash : 1;
    if (has_prefix(base, bl, LS_WHITEOUT_PREFIX)) {
        int opaque = bl == sizeof LS_OPAQUE_MARKER - 1 && has_prefix(base, bl, LS_OPAQUE_MARKER);
        if (opaque || !has_prefix(base, bl, LS_WHITEOUT_META_PREFIX)) {
            s->tmp.len = 0;
            unsigned char o1 = (unsigned char)opaque;
            if (buf_put(&s->tmp, path, pl)) return NOMEM(s);
            if (!opaque && (s->tmp.p[s->tmp.len - 1] != '/' && buf_put(&s->tmp, "/", 1))) return NOMEM(s);
            size_t wl = sizeof LS_WHITEOUT_PREFIX - 1;
            if (!opaque && buf_put(&s->tmp, base + wl, bl - wl)) return NOMEM(s);
            if (strings_put(&r->whiteouts, s->tmp.p, s->tmp.len) || buf_put(&r->opaque, &o1, 1)) return NOMEM(s);
        }
        go_skip(s, area);
        return 0;
    }
    unsigned char t = m->type;
    unsigned char kind = (t >= '1' && t <= '6') ? ls_kinds[t - '0'].code : ls_kinds[0].code;
    if (kind == LS_HARDLINK) {
        rc = normalize(m->link.p, m->link.len, &s->norm_link);
        if (rc < 0) return NOMEM(s);
        if (rc && outside_root(s, rc | LS_OUTSIDE_LINK, &m->link, &s->norm_link, r->n)) return s->r.error;
    }
    if ((rc = append_entry(s, kind, kind == LS_FILE ? m->size : 0))) return rc;
    if (kind != LS_FILE || m->sparse) {
        r->sparse_count += kind == LS_FILE;
        go_skip(s, area);
        return 0;
    }
    /* extractfile() reads `size` bytes; tarfile then seeks to the end of the data
     * area, and seeking backwards in a stream is an error. */
    if ((int64_t)m->size > area) return scanner_fail(s, LS_ERR_TAR, at, "member size runs past its data");
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
    if (nti(p, SLOT / 2, &off) || nti(p + SLOT / 2, SLOT / 2, &num) || off < 0 || num < 0 || off > INT64_MAX ||
        num > INT64_MAX)
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
    return scanner_fail(s, LS_ERR_TAR, at, "malformed GNU sparse map");
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
            return scanner_fail(s, LS_ERR_TAR, m->offset, "GNU sparse map out of order or past the end of the file");
        end = (i128)v[i] + v[i + 1];
        total += v[i + 1];
    }
    if (total > data_area(m) - s->smap_bytes)
        return scanner_fail(s, LS_ERR_TAR, m->offset, "GNU sparse map describes more data than the member holds");
    return 0;
}

/* Before each block of a PAX 1.0 map: it must fit the data area and the limit. */
static int map_10_next(ls_scanner *s) {
    int64_t upto = s->smap_bytes + BLOCK;
    if (upto > data_area(&s->m))
        return scanner_fail(s, LS_ERR_TAR, s->m.offset, "GNU sparse map runs past the member's data");
    if (upto > round_block(s->o.max_ext_header_bytes))
        return scanner_fail(s, LS_ERR_LIMIT, s->m.offset, "GNU sparse map larger than %lld bytes",
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
            return scanner_fail(s, LS_ERR_TAR, s->m.offset, "malformed GNU sparse map");
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
                    return scanner_fail(s, LS_ERR_TAR, e->offset, "more than one GNU sparse map for one member");
                m->sparse_format = format;
                m->sparse = 1;
                if (format == SPARSE_PAX_01 && parse_map_01(s, &e->pax, e->offset)) return s->r.error;
            }
            if (pax_apply(s, &e->pax)) return s->r.error;
            if (dict_get(&e->pax, "size")) m->data = is_data_type(m->type) ? m->size : 0;
        } else if (e->type == 'g') {
            /* sparse maps describe one file; tarfile would apply these to the next member */
            if (pax_has_sparse_keys(&s->global))
                return scanner_fail(s, LS_ERR_TAR, e->offset, "GNU sparse keys in a global header");
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
    m->type = *FIELD(h, F_TYPEFLAG);
    m->mode = mode, m->uid = uid, m->gid = gid, m->size = size, m->mtime = mtime;
    m->mtime_is_float = 0;
    m->sparse = 0;
    m->sparse_ext = 0;
    m->sparse_format = SPARSE_NONE;
    m->pax = &s->empty;
    m->offset = s->header_pos;
    s->smap.len = 0;
    s->smap_bytes = 0;
    size_t nl = field_len(h, F_NAME), pl = field_len(h, F_PREFIX);
    if (buf_set(&m->name, FIELD(h, F_NAME), nl) || buf_set(&m->link, FIELD(h, F_LINKNAME), field_len(h, F_LINKNAME)) ||
        buf_set(&m->uname, FIELD(h, F_UNAME), field_len(h, F_UNAME)) ||
        buf_set(&m->gname, FIELD(h, F_GNAME), field_len(h, F_GNAME)))
        return NOMEM(s);
    if (m->type == 0 && nl && h[nl - 1] == '/') m->type = '5'; /* old V7 directory */
    if (m->type == 'S') {
        i128 real;
        for (int i = 0; i < FIELDS[F_SPARSE].len / SLOT; i++) {
            int rc = old_gnu_slot(s, FIELD(h, F_SPARSE) + SLOT * i);
            if (rc == -2) return NOMEM(s);
            if (rc) return scanner_fail(s, LS_ERR_TAR, s->header_pos, "malformed tar header");
        }
        if (field_number(h, F_REALSIZE, &real))
            return scanner_fail(s, LS_ERR_TAR, s->header_pos, "malformed tar header");
        m->size = real;
        m->sparse = 1;
        m->sparse_format = SPARSE_OLD_GNU;
        m->sparse_ext = *FIELD(h, F_ISEXTENDED) != 0;
        m->data = size;
    }
    if (m->type == '5')
        while (m->name.len && m->name.p[m->name.len - 1] == '/') m->name.len--;
    if (pl && m->type != 'S') { /* ustar prefix */
        s->tmp.len = 0;
        if (buf_put(&s->tmp, FIELD(h, F_PREFIX), pl) || buf_put(&s->tmp, "/", 1) ||
            buf_put(&s->tmp, m->name.p, m->name.len) || buf_set(&m->name, s->tmp.p, s->tmp.len))
            return NOMEM(s);
    }
    if (m->type != 'S') {
        m->data = is_data_type(m->type) ? size : 0;
        if (pax_apply(s, &s->global)) return s->r.error;
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
        if (s->chain_n)
            return scanner_fail(s, LS_ERR_TAR, s->header_pos, "end of archive right after an extended header");
        s->st = ST_END;
        return 0;
    }
    i128 mode, uid, gid, size, mtime, dev;
    if (!header_checksum_ok(h) || field_number(h, F_MODE, &mode) || field_number(h, F_UID, &uid) ||
        field_number(h, F_GID, &gid) || field_number(h, F_SIZE, &size) || field_number(h, F_MTIME, &mtime) ||
        field_number(h, F_DEVMAJOR, &dev) || field_number(h, F_DEVMINOR, &dev))
        return scanner_fail(s, LS_ERR_TAR, s->header_pos, "malformed tar header");
    if (size < 0) return scanner_fail(s, LS_ERR_TAR, s->header_pos, "negative size in tar header");
    unsigned char t = *FIELD(h, F_TYPEFLAG);
    if (t != 'L' && t != 'K' && t != 'x' && t != 'X' && t != 'g') return on_member(s, h, mode, uid, gid, size, mtime);
    /* Bounded memory: refuse early what cannot fit the limit even as 4-byte UTF-8
     * characters; the exact check (in characters, as reference.py counts) comes at the member. */
    if (size > 4 * s->o.max_ext_header_bytes + BLOCK)
        return scanner_fail(s, LS_ERR_LIMIT, s->header_pos, "extended header larger than %lld bytes",
                            (long long)s->o.max_ext_header_bytes);
    if (s->chain_n == MAX_CHAIN)
        return scanner_fail(s, LS_ERR_TAR, s->header_pos, "too many extended headers in a row");
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
        if (pax_parse(s, e->data.p, e->size, e->data.len, &s->global)) return s->r.error;
    } else if (e->type == 'x' || e->type == 'X') {
        if (dict_copy(&e->pax, &s->global)) return NOMEM(s);
        if (pax_parse(s, e->data.p, e->size, e->data.len, &e->pax)) return s->r.error;
    }
    s->st = ST_HEADER;
    return 0;
}

/* Old GNU sparse extension block: 21 (offset, numbytes) pairs and a flag. */
static int on_sparse_ext(ls_scanner *s) {
    for (int i = 0; i < EXT_SLOTS; i++) {
        int rc = old_gnu_slot(s, s->hdr + SLOT * i);
        if (rc == -2) return NOMEM(s);
        if (rc) return scanner_fail(s, LS_ERR_TAR, s->header_pos, "malformed sparse header");
    }
    if (s->hdr[EXT_ISEXTENDED]) return 0;
    s->st = ST_HEADER;
    return headers_done(s);
}

/* The tar stream, in whatever slices the inflater produces. */
int tar_feed(ls_scanner *s, const unsigned char *p, size_t n) {
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
            case ST_END: s->pos += take; break;
        }
        p += take;
        n -= take;
    }
    return s->r.error;
}

int tar_finish(ls_scanner *s) {
    int64_t at = s->pos;
    if (!s->pos) return scanner_fail(s, LS_ERR_TAR, 0, "empty tar stream");
    switch (s->st) {
        case ST_END: return 0;
        case ST_HEADER:
            if (s->chain_n) return scanner_fail(s, LS_ERR_TAR, at, "tar stream ends right after an extended header");
            if (s->hdr_fill) return scanner_fail(s, LS_ERR_TAR, s->header_pos, "truncated tar header");
            return 0;
        default: return scanner_fail(s, LS_ERR_TAR, at, "tar stream truncated inside a member");
    }
}

void tar_free(ls_scanner *s) {
    ls_buf *bufs[] = {&s->m.name,    &s->m.link, &s->m.uname, &s->m.gname,  &s->norm,
                      &s->norm_link, &s->tmp,    &s->smap,    &s->smap_text};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) buf_free(bufs[i]);
    for (int i = 0; i < MAX_CHAIN; i++) {
        buf_free(&s->chain[i].data);
        dict_free(&s->chain[i].pax);
    }
    dict_free(&s->global);
}

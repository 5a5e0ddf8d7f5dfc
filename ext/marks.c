/* Marks (see tar.h): windows of executable files, found by literal markers with a
 * Hyperscan stream over the file's bytes as they go by, so that the build data a Go
 * or Rust binary embeds is read without keeping the binary. Memory per file is
 * bounded by LS_MARK_MAX_HITS windows per marker. */
#include "scanner.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum { UNDECIDED, SCANNING, OFF };

typedef struct {
    unsigned marker;
    int64_t offset;
    size_t want; /* bytes still to add */
    int probing; /* its marker's probe has not decided yet */
    int dropped; /* by decide(), until it compacts the open windows */
    ls_buf bytes;
} window;

struct marks {
    hs_scratch_t *scratch;
    hs_stream_t *stream;
    int state;
    unsigned char head[LS_MARK_HEAD];
    size_t head_len;
    int64_t pos;    /* file bytes scanned so far */
    unsigned *hits; /* per marker, in this file: windows kept (probes that accepted) */
    ls_buf open;    /* window: the kept ones, and those being probed */
    size_t n_open;
    z_stream z; /* the probes' inflater, reset for each (its 32 KiB window is allocated once) */
    int z_ready;
    const unsigned char *piece; /* the bytes being scanned, for on_mark */
    size_t piece_len;
    ls_scanner *s;
};

int marks_init(ls_scanner *s) {
    const ls_options *o = &s->o;
    if (!o->marks_db || !o->n_marks) return 0;
    struct marks *m = s->marks = calloc(1, sizeof *m);
    if (!m) return -1;
    m->s = s;
    m->hits = calloc(o->n_marks, sizeof *m->hits);
    if (!m->hits || hs_alloc_scratch(o->marks_db, &m->scratch) != HS_SUCCESS ||
        hs_open_stream(o->marks_db, 0, &m->stream) != HS_SUCCESS)
        return -1;
    return 0;
}

void marks_free(ls_scanner *s) {
    ls_result *r = &s->r;
    buf_free(&r->marks);
    struct marks *m = s->marks;
    if (!m) return;
    window *open = (window *)m->open.p;
    for (size_t i = 0; i < m->n_open; i++) buf_free(&open[i].bytes);
    if (m->stream) hs_close_stream(m->stream, m->scratch, NULL, NULL);
    if (m->z_ready) inflateEnd(&m->z);
    hs_free_scratch(m->scratch);
    free(m->hits);
    buf_free(&m->open);
    free(m);
    s->marks = NULL;
}

void marks_begin(ls_scanner *s) {
    struct marks *m = s->marks;
    if (!m) return;
    m->state = UNDECIDED;
    m->head_len = 0;
    m->pos = 0;
    m->n_open = 0;
    m->open.len = 0;
    memset(m->hits, 0, s->o.n_marks * sizeof *m->hits);
}

/* ELF; Mach-O 32/64-bit in either byte order, and universal; PE (an MZ stub). */
static int executable(const unsigned char *h) {
    static const unsigned char magics[][LS_MARK_HEAD] = {
        {0x7f, 'E', 'L', 'F'},    {0xfe, 0xed, 0xfa, 0xce}, {0xce, 0xfa, 0xed, 0xfe},
        {0xfe, 0xed, 0xfa, 0xcf}, {0xcf, 0xfa, 0xed, 0xfe}, {0xca, 0xfe, 0xba, 0xbe},
    };
    for (size_t i = 0; i < sizeof magics / sizeof *magics; i++)
        if (!memcmp(h, magics[i], LS_MARK_HEAD)) return 1;
    return h[0] == 'M' && h[1] == 'Z';
}

/* Add up to `want` bytes of p[0..n) to window w; while it is probed, up to LS_MARK_PROBE in all. */
static int extend(window *w, const unsigned char *p, size_t n) {
    size_t k = n < w->want ? n : w->want;
    size_t room = w->bytes.len < LS_MARK_PROBE ? LS_MARK_PROBE - w->bytes.len : 0;
    if (w->probing && k > room) k = room;
    if (k && buf_put(&w->bytes, p, k)) return -1;
    w->want -= k;
    return 0;
}

static size_t probe_len(const ls_options *o, unsigned id, const unsigned char **probe) {
    size_t start = id ? o->mark_probe_ends[id - 1] : 0;
    *probe = o->mark_probes + start;
    return o->mark_probe_ends[id] - start;
}

/* Whether a zlib stream may start with these two bytes (RFC 1950: deflate, a header check,
 * no preset dictionary); inflate rejects any other at once. */
static int zlib_head(unsigned char cmf, unsigned char flg) {
    return (cmf & 0x0f) == 8 && (cmf >> 4) <= 7 && ((unsigned)cmf << 8 | flg) % 31 == 0 && !(flg & 0x20);
}

static int on_mark(unsigned id, unsigned long long from, unsigned long long to, unsigned flags, void *ctx) {
    (void)from, (void)flags;
    struct marks *m = ctx;
    const ls_options *o = &m->s->o;
    /* A probe that accepts later may come before windows kept already: see decide(). */
    if (m->hits[id] >= LS_MARK_MAX_HITS) return 0;
    const unsigned char *probe;
    int probing = probe_len(o, id, &probe) > 0;
    size_t start = id ? o->mark_ends[id - 1] : 0, len = o->mark_ends[id] - start;
    size_t at = (size_t)((int64_t)to - m->pos);
    /* A probed marker is a stream's first byte: when the second is here, most go at once,
     * as inflating would decide, without a window. */
    if (probing && at < m->piece_len && !zlib_head(o->mark_bytes[start], m->piece[at])) return 0;
    if (!probing) m->hits[id]++;
    if (buf_reserve(&m->open, sizeof(window))) return 1;
    window *w = (window *)m->open.p + m->n_open++;
    m->open.len += sizeof(window);
    w->marker = id;
    w->offset = (int64_t)to - (int64_t)len;
    w->want = o->mark_windows[id] - len;
    w->probing = probing;
    w->dropped = 0;
    memset(&w->bytes, 0, sizeof w->bytes);
    /* The marker may have begun in an earlier piece: its bytes are the marker's own. */
    if (buf_put(&w->bytes, o->mark_bytes + start, len) || extend(w, m->piece + at, m->piece_len - at)) return 1;
    return 0;
}

enum { REJECT, ACCEPT, UNDECIDED_YET };

/* Whether w's bytes (its first LS_MARK_PROBE) inflate to text starting with its marker's
 * probe. Inflating is incremental: what more bytes would decide agrees with what fewer
 * decided, so the answer is the same however the file came in pieces. `ended`: no more
 * bytes will come. */
static int probe_window(struct marks *m, const window *w, int ended) {
    const unsigned char *want;
    size_t want_len = probe_len(&m->s->o, w->marker, &want);
    size_t have = w->bytes.len < LS_MARK_PROBE ? w->bytes.len : LS_MARK_PROBE;
    int complete = ended || have == LS_MARK_PROBE || !w->want;
    unsigned char out[64];
    if (want_len > sizeof out) return REJECT; /* _scan.pyx refuses longer probes */
    if (!m->z_ready) {
        memset(&m->z, 0, sizeof m->z);
        if (inflateInit(&m->z) != Z_OK) return -1;
        m->z_ready = 1;
    } else if (inflateReset(&m->z) != Z_OK) {
        return -1;
    }
    m->z.next_in = w->bytes.p;
    m->z.avail_in = (uInt)have;
    m->z.next_out = out;
    m->z.avail_out = (uInt)want_len;
    int rc = inflate(&m->z, Z_SYNC_FLUSH);
    size_t got = want_len - m->z.avail_out;
    if (rc == Z_MEM_ERROR) return -1;
    if (memcmp(out, want, got)) return REJECT;
    if (got == want_len) return ACCEPT;
    if (rc != Z_OK && rc != Z_BUF_ERROR) return REJECT; /* the stream ended, or is not one */
    return complete ? REJECT : UNDECIDED_YET;
}

/* Decide the windows being probed that can be: a rejected one is dropped; an accepted one
 * is kept, and if that makes one too many for its marker, the kept one furthest into the
 * file goes (the first LS_MARK_MAX_HITS that accept are kept, whatever order they were
 * decided in: once that many are kept, no new occurrence is probed, and every occurrence
 * before them was). */
static int decide(ls_scanner *s, int ended) {
    struct marks *m = s->marks;
    window *open = (window *)m->open.p;
    int dropped = 0;
    for (size_t i = 0; i < m->n_open; i++) {
        window *w = &open[i];
        if (!w->probing || w->dropped) continue;
        int verdict = probe_window(m, w, ended);
        if (verdict < 0) return NOMEM(s);
        if (verdict == UNDECIDED_YET) continue;
        w->probing = 0;
        window *drop = w;
        if (verdict == ACCEPT) {
            /* kept: it takes the rest of the piece that it was held back from while probed */
            int64_t at = w->offset + (int64_t)w->bytes.len - m->pos;
            if (at >= 0 && (size_t)at < m->piece_len && extend(w, m->piece + at, m->piece_len - (size_t)at))
                return NOMEM(s);
            if (++m->hits[w->marker] <= LS_MARK_MAX_HITS) continue;
            m->hits[w->marker]--;
            for (size_t j = 0; j < m->n_open; j++)
                if (open[j].marker == w->marker && !open[j].probing && !open[j].dropped &&
                    open[j].offset > drop->offset)
                    drop = &open[j];
        }
        drop->dropped = dropped = 1;
        buf_free(&drop->bytes);
    }
    if (!dropped) return 0;
    size_t kept = 0;
    for (size_t i = 0; i < m->n_open; i++)
        if (!open[i].dropped) open[kept++] = open[i];
    m->n_open = kept;
    m->open.len = kept * sizeof(window);
    return 0;
}

/* In steps of LS_MARK_PROBE bytes, each followed by the probes it can decide: the windows
 * being probed are then those that began in the last two steps. */
static int scan(ls_scanner *s, const unsigned char *p, size_t n) {
    struct marks *m = s->marks;
    while (n) {
        size_t step = n < LS_MARK_PROBE ? n : LS_MARK_PROBE;
        for (size_t i = 0; i < m->n_open; i++)
            if (extend((window *)m->open.p + i, p, step)) return NOMEM(s);
        m->piece = p;
        m->piece_len = step;
        hs_error_t rc = hs_scan_stream(m->stream, (const char *)p, (unsigned)step, 0, m->scratch, on_mark, m);
        if (rc == HS_SCAN_TERMINATED) return NOMEM(s);
        if (rc != HS_SUCCESS) return scanner_fail(s, LS_ERR_INTERNAL, s->pos, "Hyperscan stream scan failed");
        int decided = decide(s, 0);
        if (decided) return decided;
        m->pos += (int64_t)step;
        p += step;
        n -= step;
    }
    return 0;
}

int marks_data(ls_scanner *s, const unsigned char *p, size_t n) {
    struct marks *m = s->marks;
    if (!m || m->state == OFF) return 0;
    if (m->state == SCANNING) return scan(s, p, n);
    size_t k = LS_MARK_HEAD - m->head_len;
    if (k > n) k = n;
    memcpy(m->head + m->head_len, p, k);
    m->head_len += k;
    if (m->head_len < LS_MARK_HEAD) return 0;
    if (!executable(m->head)) {
        m->state = OFF;
        return 0;
    }
    m->state = SCANNING;
    int rc = scan(s, m->head, LS_MARK_HEAD);
    return rc ? rc : scan(s, p + k, n - k);
}

int marks_end(ls_scanner *s) {
    struct marks *m = s->marks;
    if (!m || m->state != SCANNING) return 0;
    ls_result *r = &s->r;
    /* Literals are reported as they end: nothing is left for the end of the stream. */
    if (hs_reset_stream(m->stream, 0, m->scratch, NULL, NULL) != HS_SUCCESS)
        return scanner_fail(s, LS_ERR_INTERNAL, s->pos, "Hyperscan stream reset failed");
    m->piece_len = 0;
    int rc = decide(s, 1);
    if (rc) return rc;
    int failed = 0;
    for (size_t i = 0; i < m->n_open; i++) {
        window *w = (window *)m->open.p + i;
        ls_mark mark = {s->entry, r->blobs.len / sizeof(ls_buf), w->offset, w->marker};
        if (!failed && !buf_put(&r->blobs, &w->bytes, sizeof w->bytes)) {
            memset(&w->bytes, 0, sizeof w->bytes); /* the result owns it now */
            failed = buf_put(&r->marks, &mark, sizeof mark);
        } else {
            failed = 1;
            buf_free(&w->bytes);
        }
    }
    m->n_open = 0;
    m->open.len = 0;
    m->state = OFF;
    return failed ? NOMEM(s) : 0;
}

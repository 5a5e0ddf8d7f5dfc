/* Marks (see tar.h): windows of executable files, found by literal markers with a
 * Hyperscan stream over the file's bytes as they go by, so that the build data a Go
 * or Rust binary embeds is read without keeping the binary. Memory per file is
 * bounded by LS_MARK_MAX_HITS windows per marker. */
#include "scanner.h"

#include <stdlib.h>
#include <string.h>

enum { UNDECIDED, SCANNING, OFF };

typedef struct {
    unsigned marker;
    int64_t offset;
    size_t want; /* bytes still to add */
    ls_buf bytes;
} window;

struct marks {
    hs_scratch_t *scratch;
    hs_stream_t *stream;
    int state;
    unsigned char head[LS_MARK_HEAD];
    size_t head_len;
    int64_t pos;    /* file bytes scanned so far */
    unsigned *hits; /* per marker, in this file */
    window *open;   /* n_marks * LS_MARK_MAX_HITS at most */
    size_t n_open;
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
    m->open = calloc((size_t)o->n_marks * LS_MARK_MAX_HITS, sizeof *m->open);
    if (!m->hits || !m->open || hs_alloc_scratch(o->marks_db, &m->scratch) != HS_SUCCESS ||
        hs_open_stream(o->marks_db, 0, &m->stream) != HS_SUCCESS)
        return -1;
    return 0;
}

void marks_free(ls_scanner *s) {
    ls_result *r = &s->r;
    buf_free(&r->marks);
    struct marks *m = s->marks;
    if (!m) return;
    for (size_t i = 0; i < m->n_open; i++) buf_free(&m->open[i].bytes);
    if (m->stream) hs_close_stream(m->stream, m->scratch, NULL, NULL);
    hs_free_scratch(m->scratch);
    free(m->hits);
    free(m->open);
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

/* Add up to `want` bytes of p[0..n) to window w. */
static int extend(window *w, const unsigned char *p, size_t n) {
    size_t k = n < w->want ? n : w->want;
    if (k && buf_put(&w->bytes, p, k)) return -1;
    w->want -= k;
    return 0;
}

static int on_mark(unsigned id, unsigned long long from, unsigned long long to, unsigned flags, void *ctx) {
    (void)from, (void)flags;
    struct marks *m = ctx;
    const ls_options *o = &m->s->o;
    if (m->hits[id] >= LS_MARK_MAX_HITS) return 0;
    m->hits[id]++;
    size_t start = id ? o->mark_ends[id - 1] : 0, len = o->mark_ends[id] - start;
    window *w = &m->open[m->n_open++];
    w->marker = id;
    w->offset = (int64_t)to - (int64_t)len;
    w->want = o->mark_windows[id] - len;
    memset(&w->bytes, 0, sizeof w->bytes);
    /* The marker may have begun in an earlier piece: its bytes are the marker's own. */
    size_t at = (size_t)((int64_t)to - m->pos);
    if (buf_put(&w->bytes, o->mark_bytes + start, len) || extend(w, m->piece + at, m->piece_len - at)) return 1;
    return 0;
}

static int scan(ls_scanner *s, const unsigned char *p, size_t n) {
    struct marks *m = s->marks;
    if (!n) return 0;
    for (size_t i = 0; i < m->n_open; i++)
        if (extend(&m->open[i], p, n)) return NOMEM(s);
    m->piece = p;
    m->piece_len = n;
    hs_error_t rc = hs_scan_stream(m->stream, (const char *)p, (unsigned)n, 0, m->scratch, on_mark, m);
    if (rc == HS_SCAN_TERMINATED) return NOMEM(s);
    if (rc != HS_SUCCESS) return scanner_fail(s, LS_ERR_INTERNAL, s->pos, "Hyperscan stream scan failed");
    m->pos += (int64_t)n;
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
    int failed = 0;
    for (size_t i = 0; i < m->n_open; i++) {
        window *w = &m->open[i];
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
    m->state = OFF;
    return failed ? NOMEM(s) : 0;
}

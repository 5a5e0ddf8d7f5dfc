/* Compressed input in, the tar stream out: gzip (every member, as gzip.py reads
 * them), zstd (every frame) or none, detected from the magic bytes. */
#include "scanner.h"

#include <stdlib.h>
#include <string.h>

/* The inflaters get their input in blocks of this size, however it was fed: what
 * they have decoded when they find an error depends on the blocks they were given. */
#define IN_BLOCK (64 << 10)

int inflate_init(ls_scanner *s) {
    s->comp = s->o.compression;
    s->win = s->ring ? NULL : malloc(WINDOW); /* with a ring, its windows */
    s->stage = malloc(IN_BLOCK);
    if ((!s->ring && !s->win) || !s->stage) return -1;
    if ((s->comp == LS_AUTO || s->comp == LS_ZSTD) && !(s->zs = ZSTD_createDStream())) return -1;
#ifdef LAYERSCAN_HAVE_ISAL
    isal_inflate_init(&s->gz);
#endif
    return 0;
}

void inflate_free(ls_scanner *s) {
#ifndef LAYERSCAN_HAVE_ISAL
    if (s->gz_ready) inflateEnd(&s->gz);
#endif
    ZSTD_freeDStream(s->zs);
    free(s->win);
    free(s->stage);
}

/* Every uncompressed byte goes through here: counted, bounded, hashed for the
 * diff_id. Bytes up to the limit are parsed before the limit is reported, and it
 * is reported at the limit itself, so the error does not depend on how the input
 * was cut into chunks. */
static int emit(ls_scanner *s, const unsigned char *p, size_t n) {
    int64_t room = s->o.max_total_bytes - s->r.bytes_out;
    size_t take = (int64_t)n > room ? (size_t)room : n;
    s->r.bytes_out += (int64_t)take;
    if (digest_stream(s, p, take) || tar_feed(s, p, take)) return s->r.error;
    if (s->ring) ring_publish(s);
    if (take < n)
        return scanner_fail(s, LS_ERR_LIMIT, s->o.max_total_bytes, "layer expands past %lld bytes",
                            (long long)s->o.max_total_bytes);
    return 0;
}

/* The window to inflate into: the scanner's one, or the ring's next free one (NULL on error). */
static unsigned char *out_window(ls_scanner *s) { return s->ring ? ring_window(s) : s->win; }

/* One gzip member after another, through ISA-L or zlib: gz_begin() starts a
 * member; gz_step() inflates into a window, saying how much input it used and
 * output it made, and returns 1 at the member's end, 0 before it, or the
 * library's (negative) error code. */
#ifdef LAYERSCAN_HAVE_ISAL
static int gz_begin(ls_scanner *s) {
    isal_inflate_reset(&s->gz);
    s->gz.crc_flag = ISAL_GZIP;
    return 0;
}

static int gz_step(ls_scanner *s, const unsigned char *p, size_t n, unsigned char *out, size_t *used, size_t *made) {
    struct inflate_state *g = &s->gz;
    g->next_in = (uint8_t *)p;
    g->avail_in = (uint32_t)(n > UINT32_MAX ? UINT32_MAX : n);
    uint32_t given = g->avail_in;
    g->next_out = out;
    g->avail_out = WINDOW;
    int ret = isal_inflate(g);
    *used = given - g->avail_in, *made = WINDOW - g->avail_out;
    return ret < 0 ? ret : g->block_state == ISAL_BLOCK_FINISH;
}
#else
static int gz_begin(ls_scanner *s) {
    /* 16+15: gzip only; gzip.py rejects zlib and raw streams too */
    if (!s->gz_ready ? inflateInit2(&s->gz, 16 + 15) : inflateReset(&s->gz)) return -1;
    s->gz_ready = 1;
    return 0;
}

static int gz_step(ls_scanner *s, const unsigned char *p, size_t n, unsigned char *out, size_t *used, size_t *made) {
    z_stream *z = &s->gz;
    z->next_in = (Bytef *)p;
    z->avail_in = (uInt)(n > UINT32_MAX ? UINT32_MAX : n);
    uInt given = z->avail_in;
    z->next_out = out;
    z->avail_out = WINDOW;
    int ret = inflate(z, Z_NO_FLUSH);
    *used = given - z->avail_in, *made = WINDOW - z->avail_out;
    if (ret == Z_STREAM_END) return 1;
    return ret == Z_OK || ret == Z_BUF_ERROR ? 0 : ret < 0 ? ret : -ret;
}
#endif

static int gzip_feed(ls_scanner *s, const unsigned char *p, size_t n) {
    for (;;) {
        if (!s->member_open) {
            while (n && !*p) p++, n--; /* zero padding between and after members, as gzip.py allows */
            if (!n) return 0;
            if (gz_begin(s)) return NOMEM(s);
            s->member_open = 1;
        }
        size_t used, made;
        unsigned char *out = out_window(s);
        if (!out) return s->r.error;
        int ret = gz_step(s, p, n, out, &used, &made);
        p += used, n -= used;
        /* what was inflated before an error is parsed first, however the input was cut */
        if (made && emit(s, out, made)) return s->r.error;
        if (ret < 0)
            return scanner_fail(s, LS_ERR_COMPRESSION, s->r.bytes_out, "corrupt gzip stream (%s error %d)",
                                LS_GZIP_ENGINE, ret);
        if (ret) s->member_open = 0;
        else if (!made && !n) return 0;
        else if (!made && !used)
            return scanner_fail(s, LS_ERR_COMPRESSION, s->r.bytes_out, "gzip inflate made no progress");
    }
}

static int zstd_feed(ls_scanner *s, const unsigned char *p, size_t n) {
    ZSTD_inBuffer in = {p, n, 0};
    for (;;) {
        ZSTD_outBuffer out = {out_window(s), WINDOW, 0};
        if (!out.dst) return s->r.error;
        size_t ret = ZSTD_decompressStream(s->zs, &out, &in);
        if (out.pos && emit(s, out.dst, out.pos)) return s->r.error;
        if (ZSTD_isError(ret))
            return scanner_fail(s, LS_ERR_COMPRESSION, s->r.bytes_out, "corrupt zstd stream: %s",
                                ZSTD_getErrorName(ret));
        s->member_open = ret != 0;
        if (in.pos == in.size && out.pos < out.size) return 0;
    }
}

/* An uncompressed layer: with a ring, copied into its windows, which outlive the caller's buffer. */
static int plain_feed(ls_scanner *s, const unsigned char *p, size_t n) {
    if (!s->ring) return emit(s, p, n);
    for (size_t k; n; p += k, n -= k) {
        unsigned char *out = ring_window(s);
        if (!out) return s->r.error;
        k = n < WINDOW ? n : WINDOW;
        memcpy(out, p, k);
        if (emit(s, out, k)) return s->r.error;
    }
    return 0;
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
        default: return plain_feed(s, p, n);
    }
}

int inflate_feed(ls_scanner *s, const unsigned char *p, size_t n) {
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

int inflate_finish(ls_scanner *s) {
    if (push(s, s->stage, s->stage_len)) return s->r.error;
    if (s->member_open)
        return scanner_fail(s, LS_ERR_COMPRESSION, s->r.bytes_out, "compressed stream ended before its end marker");
    return 0;
}

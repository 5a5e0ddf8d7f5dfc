/* Growable buffers and string columns, and how Python would measure a byte string. */
#include "scanner.h"

#include <stdlib.h>
#include <string.h>

int buf_reserve(ls_buf *b, size_t extra) {
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

int buf_put(ls_buf *b, const void *p, size_t n) {
    if (buf_reserve(b, n)) return -1;
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

int buf_set(ls_buf *b, const void *p, size_t n) {
    b->len = 0;
    return buf_put(b, p, n);
}

void buf_free(ls_buf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

int strings_put(ls_strings *s, const void *p, size_t n) {
    if (buf_put(&s->bytes, p, n)) return -1;
    return buf_put(&s->ends, &s->bytes.len, sizeof(size_t));
}

void strings_free(ls_strings *s) {
    buf_free(&s->bytes);
    buf_free(&s->ends);
}

uint32_t utf8_char(const unsigned char *p, size_t n, size_t *len) {
    unsigned char b = p[0], lo = 0x80, hi = 0xbf;
    size_t need;
    uint32_t c;
    *len = 1;
    if (b < 0x80) return b;
    if (b >= 0xc2 && b <= 0xdf) need = 2, c = b & 0x1f;
    else if (b >= 0xe0 && b <= 0xef) need = 3, c = b & 0x0f, lo = b == 0xe0 ? 0xa0 : 0x80, hi = b == 0xed ? 0x9f : 0xbf;
    else if (b >= 0xf0 && b <= 0xf4) need = 4, c = b & 0x07, lo = b == 0xf0 ? 0x90 : 0x80, hi = b == 0xf4 ? 0x8f : 0xbf;
    else return UTF8_ESCAPE(b);
    if (n < need || p[1] < lo || p[1] > hi) return UTF8_ESCAPE(b);
    for (size_t i = 1; i < need; i++) {
        if (i > 1 && (p[i] < 0x80 || p[i] > 0xbf)) return UTF8_ESCAPE(b);
        c = c << 6 | (p[i] & 0x3f);
    }
    *len = need;
    return c;
}

size_t py_len(const unsigned char *p, size_t n, int *valid) {
    size_t chars = 0;
    if (valid) *valid = 1;
    for (size_t i = 0, k; i < n; chars++, i += k) {
        uint32_t c = utf8_char(p + i, n - i, &k);
        if (valid && c >= UTF8_ESCAPE(0x80) && c <= UTF8_ESCAPE(0xff)) *valid = 0;
    }
    return chars;
}

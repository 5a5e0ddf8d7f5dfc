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

size_t py_len(const unsigned char *p, size_t n, int *valid) {
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

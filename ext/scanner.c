/* The public API of tar.h: a scanner's lifecycle, and its one (sticky) error. */
#include "scanner.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int scanner_fail(ls_scanner *s, int code, int64_t offset, const char *fmt, ...) {
    if (s->r.error) return s->r.error;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->r.message, sizeof s->r.message, fmt, ap);
    va_end(ap);
    s->r.error = code;
    s->r.error_offset = offset;
    return code;
}

ls_scanner *ls_new(const ls_options *opt) {
    ls_scanner *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->o = *opt;
    if ((s->o.threads > 1 && ring_new(s)) || inflate_init(s) || content_init(s)) {
        ls_free(s);
        return NULL;
    }
    return s;
}

int ls_feed(ls_scanner *s, const unsigned char *p, size_t n) {
    if (s->r.error) return s->r.error;
    s->r.bytes_in += (int64_t)n;
    if (digest_input(s, p, n)) return s->r.error;
    return inflate_feed(s, p, n);
}

int ls_finish(ls_scanner *s) {
    if (s->r.error) return s->r.error;
    if (inflate_finish(s) || tar_finish(s) || (s->ring && ring_drain(s)) || digest_finish(s)) return s->r.error;
    return 0;
}

ls_result *ls_result_of(ls_scanner *s) { return &s->r; }

void ls_free(ls_scanner *s) {
    if (!s) return;
    ring_free(s); /* first: no hashing thread reads the scanner's memory from here on */
    ls_result *r = &s->r;
    for (size_t i = 0; i < r->blobs.len / sizeof(ls_buf); i++) buf_free(((ls_buf *)r->blobs.p) + i);
    ls_strings *strs[] = {&r->paths,  &r->unames,    &r->gnames,        &r->links,
                          &r->xattrs, &r->whiteouts, &r->outside_names, &r->outside_paths};
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++) strings_free(strs[i]);
    ls_buf *bufs[] = {&r->xattr_ends, &r->types,  &r->sparse,        &r->modes,          &r->uids,     &r->gids,
                      &r->sizes,      &r->mtimes, &r->digests,       &r->opaque,         &r->captures, &r->candidates,
                      &r->masks,      &r->blobs,  &r->outside_flags, &r->outside_entries};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) buf_free(bufs[i]);
    tar_free(s);
    content_free(s);
    inflate_free(s);
    free(s);
}

/* Capture-glob programs, run as globs.py's GlobSet runs them; see glob.h. */
#include "glob.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scanner.h" /* utf8_char() */

#define ANYWHERE 256 /* the bucket of globs without a suffix; 0-255: by the suffix's last byte */

typedef struct {
    const uint32_t *ops, *classes;
    const unsigned char *prefix, *suffix;
    uint32_t n_ops, n_class_words, prefix_len, suffix_len;
    /* Necessary conditions, tested before the ops run (most paths fail one): the bytes
     * the path can end with (its bucket; all of them: ANYWHERE), and `need`, ASCII
     * characters every match holds in a row between the prefix and the suffix. */
    uint64_t last[4];
    int anywhere;
    uint32_t need_at, need_len; /* in ls_globs.need */
} glob;

struct ls_globs {
    uint32_t *program; /* a copy: every glob points into it */
    uint32_t n;
    glob *globs;
    uint32_t first[ANYWHERE + 2]; /* bucket b holds order[first[b] .. first[b + 1]) */
    uint32_t *order;              /* a glob is in every bucket of a byte it can end with */
    unsigned char *need;
    uint64_t *states; /* two state sets as wide as the widest glob's */
    size_t set_words;
};

/* k: negated, n_ranges, then lo, hi per range. */
static int in_class(const uint32_t *k, uint32_t c) {
    int in = 0;
    for (uint32_t r = 0; r < k[1] && !in; r++) in = k[2 + 2 * r] <= c && c <= k[3 + 2 * r];
    return c != '/' && in != (int)k[0];
}

static void add(uint64_t *set, size_t i) { set[i / 64] |= (uint64_t)1 << (i % 64); }

/* Adds every op reachable from the set's ops without consuming. Those edges only go
 * forward, so one pass from the lowest op up reaches them all. */
static void close_set(const glob *x, uint64_t *set, size_t words) {
    for (size_t w = 0; w < words; w++) {
        uint64_t todo = set[w];
        while (todo) {
            unsigned b = (unsigned)__builtin_ctzll(todo);
            size_t i = w * 64 + b;
            if (i >= x->n_ops) break; /* the accepting state, the last */
            uint32_t op = x->ops[i], kind = op & 0xff;
            if (kind == LS_OP_STAR || kind == LS_OP_ANYSTAR) {
                add(set, i + 1);
            } else if (kind == LS_OP_OPT) {
                add(set, i + 1);
                add(set, i + 1 + (op >> 8));
            }
            todo = b == 63 ? 0 : set[w] & (~(uint64_t)0 << (b + 1));
        }
    }
}

/* Thompson's simulation of the ops over the characters of p: bit i is set when op i is next. */
static int accepts(ls_globs *g, const glob *x, const unsigned char *p, size_t n) {
    size_t words = x->n_ops / 64 + 1;
    uint64_t *cur = g->states, *next = g->states + g->set_words;
    memset(cur, 0, words * 8);
    cur[0] = 1;
    close_set(x, cur, words);
    while (n) {
        size_t k;
        uint32_t c = utf8_char(p, n, &k);
        p += k, n -= k;
        memset(next, 0, words * 8);
        for (size_t w = 0; w < words; w++) {
            for (uint64_t todo = cur[w]; todo; todo &= todo - 1) {
                size_t i = w * 64 + (size_t)__builtin_ctzll(todo);
                if (i >= x->n_ops) break;
                uint32_t op = x->ops[i], arg = op >> 8;
                switch (op & 0xff) {
                    case LS_OP_LIT:
                        if (c == arg) add(next, i + 1);
                        break;
                    case LS_OP_ANY:
                        if (c != '/') add(next, i + 1);
                        break;
                    case LS_OP_CLASS:
                        if (in_class(x->classes + arg, c)) add(next, i + 1);
                        break;
                    case LS_OP_STAR:
                        if (c != '/') add(next, i);
                        break;
                    case LS_OP_ANYSTAR: add(next, i); break;
                }
            }
        }
        close_set(x, next, words);
        uint64_t alive = 0;
        for (size_t w = 0; w < words; w++) alive |= next[w];
        if (!alive) return 0;
        uint64_t *t = cur;
        cur = next, next = t;
    }
    return (int)(cur[x->n_ops / 64] >> (x->n_ops % 64) & 1);
}

/* Whether the k bytes at w occur in the n at p. */
static int holds(const unsigned char *p, size_t n, const unsigned char *w, size_t k) {
    for (const unsigned char *end = p + n; (size_t)(end - p) >= k; p++) {
        if (!(p = memchr(p, w[0], (size_t)(end - p) - k + 1))) return 0;
        if (!memcmp(p + 1, w + 1, k - 1)) return 1;
    }
    return 0;
}

static int glob_match(ls_globs *g, const glob *x, const unsigned char *p, size_t n) {
    if (n < (size_t)x->prefix_len + x->suffix_len || memcmp(p + n - x->suffix_len, x->suffix, x->suffix_len) ||
        memcmp(p, x->prefix, x->prefix_len))
        return 0;
    p += x->prefix_len, n -= x->prefix_len + x->suffix_len;
    if (x->need_len && !holds(p, n, g->need + x->need_at, x->need_len)) return 0;
    return accepts(g, x, p, n);
}

static int bucket_match(ls_globs *g, size_t b, const unsigned char *p, size_t n) {
    for (uint32_t k = g->first[b]; k < g->first[b + 1]; k++)
        if (glob_match(g, &g->globs[g->order[k]], p, n)) return 1;
    return 0;
}

int ls_globs_match(ls_globs *g, const unsigned char *path, size_t len) {
    return (len && bucket_match(g, path[len - 1], path, len)) || bucket_match(g, ANYWHERE, path, len);
}

/* Every op's argument within its glob: a program is trusted to be well formed only after this. */
static int well_formed(const glob *x) {
    for (uint32_t i = 0; i < x->n_ops; i++) {
        uint32_t kind = x->ops[i] & 0xff, arg = x->ops[i] >> 8;
        if (kind > LS_OP_OPT) return 0;
        if (kind == LS_OP_OPT && arg > x->n_ops - i - 1) return 0;
        if (kind == LS_OP_CLASS && (x->n_class_words < 2 || arg > x->n_class_words - 2 || x->classes[arg] > 1 ||
                                    x->classes[arg + 1] > (x->n_class_words - arg - 2) / 2))
            return 0;
    }
    return 1;
}

/* The glob's filters (see glob); its required characters go to need + *at. `skippable`: n_ops zero bytes. */
static void filters(glob *x, unsigned char *skippable, unsigned char *need, size_t *at) {
    for (uint32_t i = 0; i < x->n_ops; i++)
        if ((x->ops[i] & 0xff) == LS_OP_OPT) memset(skippable + i + 1, 1, x->ops[i] >> 8);
    /* An op no OPT skips consumes a character of every match. A LIT's ASCII character is
     * its one byte in the path, and in no other character's UTF-8 (or escaped byte). */
    uint32_t best = 0;
    for (uint32_t i = 0, run = 0; i < x->n_ops; i++) {
        uint32_t op = x->ops[i];
        run = (op & 0xff) == LS_OP_LIT && op >> 8 < 0x80 && !skippable[i] ? run + 1 : 0;
        if (run > x->need_len) x->need_len = run, best = i + 1 - run;
    }
    x->need_at = (uint32_t)*at;
    for (uint32_t i = 0; i < x->need_len; i++) need[*at + i] = (unsigned char)(x->ops[best + i] >> 8);
    *at += x->need_len;
    /* With no suffix, a match ends with a character of the last op's class if no OPT skips it;
     * a class of ASCII characters only is so many last bytes. */
    x->anywhere = 1;
    if (x->suffix_len) {
        x->anywhere = 0;
        x->last[x->suffix[x->suffix_len - 1] / 64] |= (uint64_t)1 << (x->suffix[x->suffix_len - 1] % 64);
    } else if (x->n_ops && !skippable[x->n_ops - 1]) {
        uint32_t op = x->ops[x->n_ops - 1]; /* a LIT there would be in the suffix */
        if ((op & 0xff) == LS_OP_CLASS && !x->classes[op >> 8]) {
            const uint32_t *k = x->classes + (op >> 8);
            int ascii = 1;
            for (uint32_t r = 0; r < k[1]; r++) ascii &= k[3 + 2 * r] < 0x80 || k[2 + 2 * r] > k[3 + 2 * r];
            if (ascii) {
                x->anywhere = 0;
                for (uint32_t c = 0; c < 0x80; c++)
                    if (in_class(k, c)) x->last[c / 64] |= (uint64_t)1 << (c % 64);
            }
        }
    }
}

static int in_bucket(const glob *x, size_t b) {
    return b == ANYWHERE ? x->anywhere : !x->anywhere && (x->last[b / 64] >> (b % 64) & 1);
}

static int load(ls_globs *g, size_t n_words) {
    const uint32_t *w = g->program + 1, *end = g->program + n_words;
    g->n = g->program[0];
    if (g->n > n_words / 4) return LS_GLOBS_MALFORMED; /* 4 header words per glob */
    if (!(g->globs = calloc(g->n + 1, sizeof *g->globs))) return LS_GLOBS_NOMEM;
    size_t widest = 0;
    for (uint32_t i = 0; i < g->n; i++) {
        glob *x = &g->globs[i];
        if (end - w < 4) return LS_GLOBS_MALFORMED;
        x->n_ops = w[0], x->n_class_words = w[1], x->prefix_len = w[2], x->suffix_len = w[3];
        w += 4;
        size_t text_words = ((size_t)x->prefix_len + x->suffix_len + 3) / 4;
        if ((size_t)(end - w) < (size_t)x->n_ops + x->n_class_words + text_words) return LS_GLOBS_MALFORMED;
        x->ops = w;
        x->classes = w + x->n_ops;
        x->prefix = (const unsigned char *)(x->classes + x->n_class_words);
        x->suffix = x->prefix + x->prefix_len;
        w = x->classes + x->n_class_words + text_words;
        if (!well_formed(x)) return LS_GLOBS_MALFORMED;
        if (x->n_ops / 64 + 1 > widest) widest = x->n_ops / 64 + 1;
    }
    if (w != end) return LS_GLOBS_MALFORMED;
    size_t ops = 0;
    for (uint32_t i = 0; i < g->n; i++) ops += g->globs[i].n_ops;
    unsigned char *skippable = calloc(ops + 1, 1);
    g->need = malloc(ops + 1);
    if (!skippable || !g->need) {
        free(skippable);
        return LS_GLOBS_NOMEM;
    }
    size_t at = 0;
    for (uint32_t i = 0; i < g->n; i++) {
        filters(&g->globs[i], skippable, g->need, &at);
        memset(skippable, 0, g->globs[i].n_ops);
    }
    free(skippable);
    /* buckets: count, then place (first[b + 1] counts bucket b, then becomes its start) */
    size_t places = 0;
    for (uint32_t i = 0; i < g->n; i++) {
        const glob *x = &g->globs[i];
        for (size_t b = 0; b <= ANYWHERE; b++)
            if (in_bucket(x, b)) g->first[b + 1]++, places++;
    }
    if (!(g->order = calloc(places + 1, sizeof *g->order))) return LS_GLOBS_NOMEM;
    for (size_t b = 1; b <= ANYWHERE + 1; b++) g->first[b] += g->first[b - 1];
    uint32_t fill[ANYWHERE + 1];
    memcpy(fill, g->first, sizeof fill);
    for (uint32_t i = 0; i < g->n; i++)
        for (size_t b = 0; b <= ANYWHERE; b++)
            if (in_bucket(&g->globs[i], b)) g->order[fill[b]++] = i;
    g->set_words = widest ? widest : 1;
    return (g->states = calloc(2 * g->set_words, sizeof *g->states)) ? LS_GLOBS_OK : LS_GLOBS_NOMEM;
}

int ls_globs_new(const void *program, size_t len, ls_globs **out) {
    *out = NULL;
    if (len < 4 || len % 4) return LS_GLOBS_MALFORMED;
    ls_globs *g = calloc(1, sizeof *g);
    if (!g || !(g->program = malloc(len))) {
        ls_globs_free(g);
        return LS_GLOBS_NOMEM;
    }
    memcpy(g->program, program, len);
    int rc = load(g, len / 4);
    if (rc != LS_GLOBS_OK) {
        ls_globs_free(g);
        return rc;
    }
    *out = g;
    return LS_GLOBS_OK;
}

void ls_globs_free(ls_globs *g) {
    if (!g) return;
    free(g->program);
    free(g->globs);
    free(g->order);
    free(g->need);
    free(g->states);
    free(g);
}

/* Capture-glob matching in the native scanner.
 *
 * The glob syntax has one reader, src/layerscan/scan/globs.py. It compiles each glob
 * to a program that this file only runs, the same way globs.py's GlobSet runs it, so
 * the two engines capture the same files by construction (no regex engine involved:
 * Vectorscan 5.4.9 missed matches of the regexes globs used to become).
 *
 * A program is uint32 words in native byte order, as globs.native_program() writes it:
 *   n_globs, then per glob:
 *     n_ops, n_class_words, prefix_bytes, suffix_bytes,
 *     ops[n_ops]                  kind | arg << 8, kind one of LS_OP_*
 *     class_words[n_class_words]  per class: negated, n_ranges, then lo, hi per range
 *     the prefix then the suffix (UTF-8), zero-padded to a whole word
 * A path matches a glob when it starts with the prefix, ends with the suffix (the two
 * not overlapping) and the ops, a Thompson NFA, accept the characters in between.
 * Characters are code points as Python decodes UTF-8 with surrogateescape: an
 * undecodable byte b is 0xDC00 + b.
 */
#ifndef LAYERSCAN_GLOB_H
#define LAYERSCAN_GLOB_H

#include <stddef.h>

/* Op kinds; globs.Op has the same numbers. */
enum {
    LS_OP_LIT,     /* arg: the code point */
    LS_OP_ANY,     /* one character but '/' */
    LS_OP_CLASS,   /* arg: offset of the class in the glob's class words */
    LS_OP_STAR,    /* loops on any character but '/' */
    LS_OP_ANYSTAR, /* loops on any character */
    LS_OP_OPT      /* consumes nothing: continues at the next op or arg ops after it */
};

typedef struct ls_globs ls_globs;

enum { LS_GLOBS_OK, LS_GLOBS_NOMEM, LS_GLOBS_MALFORMED };

/* Builds a matcher from a program (copied). Returns LS_GLOBS_OK and sets *out, or an error.
 * A matcher holds its working memory: one per scanner, never used by two threads at once. */
int ls_globs_new(const void *program, size_t len, ls_globs **out);
/* 1 when the path (bytes, any content) matches one of the globs, else 0. */
int ls_globs_match(ls_globs *g, const unsigned char *path, size_t len);
void ls_globs_free(ls_globs *g);

#endif

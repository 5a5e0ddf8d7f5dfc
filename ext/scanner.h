/* What the scanner's sources share (see tar.h for the public API and its rules).
 * Private: only the scanner's own sources include it. */
#ifndef LAYERSCAN_SCANNER_H
#define LAYERSCAN_SCANNER_H

#include "tar.h"

#include <openssl/evp.h>
#include <zstd.h>
#ifdef LAYERSCAN_HAVE_ISAL
#include <isa-l/igzip_lib.h>
#else
#include <zlib.h>
#endif

#pragma GCC visibility push(hidden)

#define BLOCK 512
#define WINDOW (256 << 10) /* inflate output: small enough to stay in L2 while hashed */
#define MAX_CHAIN 16       /* extended headers (x, g, L, K) before one member */
#define NO_BLOB ((size_t)-1)

typedef __int128 i128;

/* ------------------------------------------------------------ buf.c */

int buf_reserve(ls_buf *b, size_t extra);
int buf_put(ls_buf *b, const void *p, size_t n);
int buf_set(ls_buf *b, const void *p, size_t n);
void buf_free(ls_buf *b);
int strings_put(ls_strings *s, const void *p, size_t n);
void strings_free(ls_strings *s);
/* The character at p (n > 0 bytes) as Python decodes UTF-8 (strictly: no overlong
 * forms, no surrogates, nothing past U+10FFFF) with surrogateescape: its code point,
 * and its length in *len; a byte b it cannot decode is one character, UTF8_ESCAPE(b). */
uint32_t utf8_char(const unsigned char *p, size_t n, size_t *len);
#define UTF8_ESCAPE(b) (0xdc00u + (b))
/* len() of the str that decoding with surrogateescape gives; *valid (if not NULL)
 * says whether no byte needed escaping. */
size_t py_len(const unsigned char *p, size_t n, int *valid);

/* ------------------------------------------------------------ pax.c */

/* Python dict semantics for PAX records: a key keeps the position of its first
 * insertion and the value of its last. */
typedef struct {
    size_t k, kl, v, vl, seq;
} kv;

typedef struct {
    ls_buf arena, items; /* bytes; kv */
} dict;

#define DICT_N(d) ((d)->items.len / sizeof(kv))
#define DICT_AT(d, i) (((kv *)(d)->items.p) + (i))

/* Which GNU sparse format a member's map is in. */
enum { SPARSE_NONE, SPARSE_OLD_GNU, SPARSE_PAX_00, SPARSE_PAX_01, SPARSE_PAX_10 };

/* --------------------------------------------------------- scanner */

enum { ST_HEADER, ST_EXT, ST_SPARSE_EXT, ST_SPARSE_MAP, ST_DATA, ST_SKIP, ST_END };

typedef struct {
    unsigned char type;
    int64_t offset;
    size_t size; /* of the records; data holds the padding after them too */
    ls_buf data; /* L/K: the name; x/g: the records */
    dict pax;    /* x: global headers at the time, plus its own records */
} ext_header;

/* One member as tarfile's TarInfo would hold it. */
typedef struct {
    unsigned char type;
    ls_buf name, link, uname, gname;
    i128 mode, uid, gid, size, mtime;
    double mtime_f;
    int mtime_is_float, sparse;
    i128 data;         /* bytes of data that follow the header(s) */
    const dict *pax;   /* TarInfo.pax_headers */
    int sparse_ext;    /* old GNU sparse: extension blocks still to read */
    int sparse_format; /* SPARSE_*: the one sparse map this member has */
    int64_t offset;    /* TarInfo.offset: the first header of x/L/K ... member */
} member;

struct ls_scanner {
    ls_options o;
    ls_result r;

    /* inflate.c */
    int comp;
    unsigned char *stage; /* input not yet a whole IN_BLOCK */
    size_t stage_len;
    unsigned char *win;
    int member_open; /* inside a gzip member or zstd frame */
#ifdef LAYERSCAN_HAVE_ISAL
    struct inflate_state gz;
#else
    z_stream gz;
    int gz_ready;
#endif
    ZSTD_DStream *zs;

    /* tar.c */
    int st;
    int64_t pos;        /* uncompressed offset */
    int64_t header_pos; /* offset of the header being read */
    unsigned char hdr[BLOCK];
    size_t hdr_fill;
    ext_header chain[MAX_CHAIN];
    int chain_n;
    dict global, empty;
    member m;
    ls_buf norm, norm_link, tmp;
    int64_t need, skip; /* ST_EXT/ST_DATA bytes to go; padding after */
    /* the sparse map: int64 offset, numbytes pairs; for PAX 1.0 also its text,
     * read from the start of the data area, and how much of it is parsed */
    ls_buf smap, smap_text;
    size_t smap_pos;
    i128 smap_want;     /* numbers the 1.0 map holds, -1 before its first line */
    int64_t smap_bytes; /* of the data area the 1.0 map took */

    /* content.c: digests, and the regular file being read */
    EVP_MD_CTX *in_sha, *out_sha, *md5, *sha1, *sha256;
    size_t entry;
    int64_t fpos, fsize;
    int keep, capture, capture_whole, spill, secrets, hs_dirty;
    int64_t capture_limit, spill_end;
    ls_buf content;
    uint64_t *mask;
    size_t mask_words;
    hs_scratch_t *scratch;
    hs_stream_t *stream;
    struct marks *marks; /* marks.c's state, NULL without markers */
};

/* ------------------------------------------------------- scanner.c */

/* Records the first error (see "Errors" in tar.h) and returns the sticky code. */
int scanner_fail(ls_scanner *s, int code, int64_t offset, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
#define NOMEM(s) scanner_fail((s), LS_ERR_NOMEM, (s)->pos, "out of memory")

/* ------------------------------------------------------- inflate.c */

/* Each returns 0, or the error code after scanner_fail(). */
int inflate_init(ls_scanner *s);
int inflate_feed(ls_scanner *s, const unsigned char *p, size_t n);
int inflate_finish(ls_scanner *s);
void inflate_free(ls_scanner *s);

/* ----------------------------------------------------------- tar.c */

int tar_feed(ls_scanner *s, const unsigned char *p, size_t n);
int tar_finish(ls_scanner *s);
void tar_free(ls_scanner *s);

/* ----------------------------------------------------------- pax.c */

int pax_parse(ls_scanner *s, const unsigned char *b, size_t n, size_t padded, dict *d);
int pax_apply(ls_scanner *s, const dict *d);
int pax_sparse_format(const dict *d);
int pax_has_sparse_keys(const dict *d);
/* Decimal ASCII digits only; values clamped far outside int64 (callers reject those). */
int pax_digits(const unsigned char *p, size_t n, i128 *out);
const kv *dict_get(const dict *d, const char *key);
int dict_copy(dict *dst, const dict *src);
void dict_free(dict *d);

/* ------------------------------------------------------- content.c */

int content_init(ls_scanner *s);
void content_free(ls_scanner *s);
int digest_input(ls_scanner *s, const unsigned char *p, size_t n);
int digest_stream(ls_scanner *s, const unsigned char *p, size_t n);
int digest_finish(ls_scanner *s);
/* The regular file s->entry (whose path is s->norm): begin, data, end. */
int file_begin(ls_scanner *s, int64_t size);
int file_data(ls_scanner *s, const unsigned char *p, size_t n);
int file_end(ls_scanner *s);

/* --------------------------------------------------------- marks.c */

/* The same calls as content.c's, for marks; each is a no-op without markers. */
int marks_init(ls_scanner *s);
void marks_free(ls_scanner *s);
void marks_begin(ls_scanner *s);
int marks_data(ls_scanner *s, const unsigned char *p, size_t n);
int marks_end(ls_scanner *s);

#pragma GCC visibility pop

#endif

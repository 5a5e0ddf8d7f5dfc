/* ext/md5x8.c against OpenSSL's MD5, driven by tests/test_md5x8.py and benchmarks/md5x8.py.
 *
 *   md5x8_driver random COUNT SEED   COUNT random messages in random batches; exits 1 at the first difference
 *   md5x8_driver digests             framed messages on stdin (u64 length, bytes): one hex digest per line
 *   md5x8_driver bench REPEAT BATCH  framed messages on stdin: CPU seconds of OpenSSL and of md5x8 over them */
#define _POSIX_C_SOURCE 199309L
#include "md5x8.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t rng;

static uint64_t next(void) { /* xorshift64* */
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
    return rng * 2685821657736338717ull;
}

static void openssl_md5(const unsigned char *p, size_t n, unsigned char *out) {
    if (!EVP_Digest(p, n, out, NULL, EVP_md5(), NULL)) abort();
}

/* A length that ends near a block boundary most of the time, anywhere up to ~70k otherwise. */
static size_t random_len(void) {
    static const size_t near[] = {0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 121, 127, 128, 129, 183, 184, 191, 192};
    uint64_t r = next();
    if (r % 32 == 0) return next() % 70000;
    if (r % 32 < 8) return next() % 300;
    return near[next() % (sizeof near / sizeof *near)] + 64 * (next() % 4);
}

static int random_check(long count, uint64_t seed) {
    enum { MAX_BATCH = 40, MAX_LEN = 70000 };
    unsigned char *pool = malloc(MAX_LEN * 2);
    const unsigned char *msg[MAX_BATCH];
    size_t len[MAX_BATCH];
    unsigned char got[MAX_BATCH][16], want[16];
    rng = seed | 1;
    for (size_t i = 0; i < MAX_LEN * 2; i++) pool[i] = (unsigned char)next();
    for (long done = 0; done < count;) {
        size_t n = 1 + next() % MAX_BATCH;
        for (size_t i = 0; i < n; i++) {
            len[i] = random_len();
            msg[i] = pool + next() % MAX_LEN; /* any alignment */
        }
        md5x8_many(n, msg, len, got);
        for (size_t i = 0; i < n; i++, done++) {
            openssl_md5(msg[i], len[i], want);
            if (memcmp(got[i], want, 16)) {
                printf("differs: message %ld, length %zu\n", done, len[i]);
                free(pool);
                return 1;
            }
        }
        pool[next() % (MAX_LEN * 2)] ^= (unsigned char)next(); /* new content now and then */
    }
    printf("%ld messages equal\n", count);
    free(pool);
    return 0;
}

/* All framed messages of stdin, back to back in *data; their offsets and lengths. */
static size_t read_frames(unsigned char **data, const unsigned char ***msg, size_t **len) {
    size_t cap = 1 << 20, used = 0, n = 0, ncap = 1024;
    *data = malloc(cap);
    size_t *off = malloc(ncap * sizeof *off);
    *len = malloc(ncap * sizeof **len);
    uint64_t k;
    while (fread(&k, sizeof k, 1, stdin) == 1) {
        while (used + k > cap) *data = realloc(*data, cap *= 2);
        if (n == ncap) {
            off = realloc(off, (ncap *= 2) * sizeof *off);
            *len = realloc(*len, ncap * sizeof **len);
        }
        if (k && fread(*data + used, 1, k, stdin) != k) abort();
        off[n] = used, (*len)[n++] = k, used += k;
    }
    *msg = malloc((n ? n : 1) * sizeof **msg);
    for (size_t i = 0; i < n; i++) (*msg)[i] = *data + off[i];
    free(off);
    return n;
}

static double cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (!md5x8_supported()) {
        puts("no AVX2");
        return 2;
    }
    if (argc == 4 && !strcmp(argv[1], "random")) return random_check(atol(argv[2]), strtoull(argv[3], NULL, 10));
    unsigned char *data;
    const unsigned char **msg;
    size_t *len;
    size_t n = read_frames(&data, &msg, &len);
    unsigned char(*out)[16] = malloc((n ? n : 1) * 16);
    int rc = 0;
    if (argc == 2 && !strcmp(argv[1], "digests")) {
        md5x8_many(n, msg, len, out);
        for (size_t i = 0; i < n; i++) {
            for (int j = 0; j < 16; j++) printf("%02x", out[i][j]);
            putchar('\n');
        }
    } else if (argc == 4 && !strcmp(argv[1], "bench")) {
        /* OpenSSL as the scanner calls it: one context, init/update/final per message;
         * md5x8 as a scanner would: BATCH messages per call. */
        int repeat = atoi(argv[2]);
        size_t batch = (size_t)atol(argv[3]);
        EVP_MD *md5 = EVP_MD_fetch(NULL, "MD5", NULL);
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        double best_ssl = 1e9, best_x8 = 1e9;
        for (int r = 0; r < repeat; r++) {
            double t0 = cpu();
            for (size_t i = 0; i < n; i++)
                if (!EVP_DigestInit_ex2(c, md5, NULL) || !EVP_DigestUpdate(c, msg[i], len[i]) ||
                    !EVP_DigestFinal_ex(c, out[i], NULL))
                    abort();
            double t1 = cpu();
            for (size_t i = 0; i < n; i += batch) md5x8_many(n - i < batch ? n - i : batch, msg + i, len + i, out + i);
            double t2 = cpu();
            if (t1 - t0 < best_ssl) best_ssl = t1 - t0;
            if (t2 - t1 < best_x8) best_x8 = t2 - t1;
        }
        printf("%zu %.6f %.6f\n", n, best_ssl, best_x8);
        EVP_MD_CTX_free(c);
        EVP_MD_free(md5);
    } else {
        fputs("usage: md5x8_driver random COUNT SEED | digests | bench REPEAT BATCH\n", stderr);
        rc = 2;
    }
    free(out), free(msg), free(len), free(data);
    return rc;
}

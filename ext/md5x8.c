/* MD5 (RFC 1321) of up to eight messages per step, one per 32-bit lane of an
 * AVX2 register; lanes whose message ends take the next one. Compiled for
 * baseline x86-64: only the functions marked AVX2 use it, after the CPU says so. */
#include "md5x8.h"

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define LANES 8
#define AVX2 __attribute__((target("avx2")))

int md5x8_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}

/* The round functions, as RFC 1321 defines them (F and G rewritten with one
 * operation less), on eight lanes. */
#define F(b, c, d) _mm256_xor_si256(d, _mm256_and_si256(b, _mm256_xor_si256(c, d)))
#define G(b, c, d) _mm256_xor_si256(c, _mm256_and_si256(d, _mm256_xor_si256(b, c)))
#define H(b, c, d) _mm256_xor_si256(_mm256_xor_si256(b, c), d)
#define I(b, c, d) _mm256_xor_si256(c, _mm256_or_si256(b, _mm256_xor_si256(d, ones)))
#define ROTL(x, s) _mm256_or_si256(_mm256_slli_epi32(x, s), _mm256_srli_epi32(x, 32 - (s)))
/* a = b + ((a + f(b, c, d) + X[k] + T) <<< s) */
#define STEP(f, a, b, c, d, k, s, t)                                                                                   \
    a = _mm256_add_epi32(b, ROTL(_mm256_add_epi32(_mm256_add_epi32(a, f(b, c, d)),                                     \
                                                  _mm256_add_epi32(x[k], _mm256_set1_epi32((int)(t)))),                \
                                 s))

/* Words w..w+7 of the eight blocks, one word per register, lane l from block l. */
AVX2 static void transpose(const unsigned char *const p[LANES], size_t off, __m256i *x) {
    __m256i r[LANES], t[LANES], u[LANES];
    for (int l = 0; l < LANES; l++) r[l] = _mm256_loadu_si256((const __m256i *)(p[l] + off));
    for (int l = 0; l < LANES; l += 2) {
        t[l] = _mm256_unpacklo_epi32(r[l], r[l + 1]);
        t[l + 1] = _mm256_unpackhi_epi32(r[l], r[l + 1]);
    }
    for (int l = 0; l < LANES; l += 4) {
        u[l] = _mm256_unpacklo_epi64(t[l], t[l + 2]);
        u[l + 1] = _mm256_unpackhi_epi64(t[l], t[l + 2]);
        u[l + 2] = _mm256_unpacklo_epi64(t[l + 1], t[l + 3]);
        u[l + 3] = _mm256_unpackhi_epi64(t[l + 1], t[l + 3]);
    }
    for (int w = 0; w < 4; w++) {
        x[w] = _mm256_permute2x128_si256(u[w], u[w + 4], 0x20);
        x[w + 4] = _mm256_permute2x128_si256(u[w], u[w + 4], 0x31);
    }
}

/* One 64-byte block per lane (p[l]) into the state st[word][lane]. */
AVX2 static void blocks8(uint32_t st[4][LANES], const unsigned char *const p[LANES]) {
    __m256i x[16];
    const __m256i ones = _mm256_set1_epi32(-1);
    transpose(p, 0, x);
    transpose(p, 32, x + 8);
    __m256i a0 = _mm256_loadu_si256((const __m256i *)st[0]), b0 = _mm256_loadu_si256((const __m256i *)st[1]);
    __m256i c0 = _mm256_loadu_si256((const __m256i *)st[2]), d0 = _mm256_loadu_si256((const __m256i *)st[3]);
    __m256i a = a0, b = b0, c = c0, d = d0;
    STEP(F, a, b, c, d, 0, 7, 0xd76aa478);
    STEP(F, d, a, b, c, 1, 12, 0xe8c7b756);
    STEP(F, c, d, a, b, 2, 17, 0x242070db);
    STEP(F, b, c, d, a, 3, 22, 0xc1bdceee);
    STEP(F, a, b, c, d, 4, 7, 0xf57c0faf);
    STEP(F, d, a, b, c, 5, 12, 0x4787c62a);
    STEP(F, c, d, a, b, 6, 17, 0xa8304613);
    STEP(F, b, c, d, a, 7, 22, 0xfd469501);
    STEP(F, a, b, c, d, 8, 7, 0x698098d8);
    STEP(F, d, a, b, c, 9, 12, 0x8b44f7af);
    STEP(F, c, d, a, b, 10, 17, 0xffff5bb1);
    STEP(F, b, c, d, a, 11, 22, 0x895cd7be);
    STEP(F, a, b, c, d, 12, 7, 0x6b901122);
    STEP(F, d, a, b, c, 13, 12, 0xfd987193);
    STEP(F, c, d, a, b, 14, 17, 0xa679438e);
    STEP(F, b, c, d, a, 15, 22, 0x49b40821);
    STEP(G, a, b, c, d, 1, 5, 0xf61e2562);
    STEP(G, d, a, b, c, 6, 9, 0xc040b340);
    STEP(G, c, d, a, b, 11, 14, 0x265e5a51);
    STEP(G, b, c, d, a, 0, 20, 0xe9b6c7aa);
    STEP(G, a, b, c, d, 5, 5, 0xd62f105d);
    STEP(G, d, a, b, c, 10, 9, 0x02441453);
    STEP(G, c, d, a, b, 15, 14, 0xd8a1e681);
    STEP(G, b, c, d, a, 4, 20, 0xe7d3fbc8);
    STEP(G, a, b, c, d, 9, 5, 0x21e1cde6);
    STEP(G, d, a, b, c, 14, 9, 0xc33707d6);
    STEP(G, c, d, a, b, 3, 14, 0xf4d50d87);
    STEP(G, b, c, d, a, 8, 20, 0x455a14ed);
    STEP(G, a, b, c, d, 13, 5, 0xa9e3e905);
    STEP(G, d, a, b, c, 2, 9, 0xfcefa3f8);
    STEP(G, c, d, a, b, 7, 14, 0x676f02d9);
    STEP(G, b, c, d, a, 12, 20, 0x8d2a4c8a);
    STEP(H, a, b, c, d, 5, 4, 0xfffa3942);
    STEP(H, d, a, b, c, 8, 11, 0x8771f681);
    STEP(H, c, d, a, b, 11, 16, 0x6d9d6122);
    STEP(H, b, c, d, a, 14, 23, 0xfde5380c);
    STEP(H, a, b, c, d, 1, 4, 0xa4beea44);
    STEP(H, d, a, b, c, 4, 11, 0x4bdecfa9);
    STEP(H, c, d, a, b, 7, 16, 0xf6bb4b60);
    STEP(H, b, c, d, a, 10, 23, 0xbebfbc70);
    STEP(H, a, b, c, d, 13, 4, 0x289b7ec6);
    STEP(H, d, a, b, c, 0, 11, 0xeaa127fa);
    STEP(H, c, d, a, b, 3, 16, 0xd4ef3085);
    STEP(H, b, c, d, a, 6, 23, 0x04881d05);
    STEP(H, a, b, c, d, 9, 4, 0xd9d4d039);
    STEP(H, d, a, b, c, 12, 11, 0xe6db99e5);
    STEP(H, c, d, a, b, 15, 16, 0x1fa27cf8);
    STEP(H, b, c, d, a, 2, 23, 0xc4ac5665);
    STEP(I, a, b, c, d, 0, 6, 0xf4292244);
    STEP(I, d, a, b, c, 7, 10, 0x432aff97);
    STEP(I, c, d, a, b, 14, 15, 0xab9423a7);
    STEP(I, b, c, d, a, 5, 21, 0xfc93a039);
    STEP(I, a, b, c, d, 12, 6, 0x655b59c3);
    STEP(I, d, a, b, c, 3, 10, 0x8f0ccc92);
    STEP(I, c, d, a, b, 10, 15, 0xffeff47d);
    STEP(I, b, c, d, a, 1, 21, 0x85845dd1);
    STEP(I, a, b, c, d, 8, 6, 0x6fa87e4f);
    STEP(I, d, a, b, c, 15, 10, 0xfe2ce6e0);
    STEP(I, c, d, a, b, 6, 15, 0xa3014314);
    STEP(I, b, c, d, a, 13, 21, 0x4e0811a1);
    STEP(I, a, b, c, d, 4, 6, 0xf7537e82);
    STEP(I, d, a, b, c, 11, 10, 0xbd3af235);
    STEP(I, c, d, a, b, 2, 15, 0x2ad7d2bb);
    STEP(I, b, c, d, a, 9, 21, 0xeb86d391);
    _mm256_storeu_si256((__m256i *)st[0], _mm256_add_epi32(a, a0));
    _mm256_storeu_si256((__m256i *)st[1], _mm256_add_epi32(b, b0));
    _mm256_storeu_si256((__m256i *)st[2], _mm256_add_epi32(c, c0));
    _mm256_storeu_si256((__m256i *)st[3], _mm256_add_epi32(d, d0));
}

/* What one lane is hashing: its message's whole blocks, then the padded tail
 * (the last len % 64 bytes, 0x80, zeros, the length in bits) in one or two blocks. */
typedef struct {
    const unsigned char *msg;
    int busy;
    size_t job, block, whole, total; /* next block; blocks of msg; with the tail */
    unsigned char tail[128];
} lane;

static void lane_start(lane *ln, size_t job, const unsigned char *msg, size_t len) {
    size_t rest = len % 64;
    uint64_t bits = (uint64_t)len * 8;
    ln->msg = msg;
    ln->busy = 1;
    ln->job = job;
    ln->block = 0;
    ln->whole = len / 64;
    ln->total = ln->whole + (rest < 56 ? 1 : 2);
    size_t end = (ln->total - ln->whole) * 64;
    memset(ln->tail, 0, end);
    if (rest) memcpy(ln->tail, msg + ln->whole * 64, rest);
    ln->tail[rest] = 0x80;
    for (int i = 0; i < 8; i++) ln->tail[end - 8 + i] = (unsigned char)(bits >> (8 * i));
}

static const uint32_t IV[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};

void md5x8_many(size_t n, const unsigned char *const *msg, const size_t *len, unsigned char (*out)[16]) {
    static const unsigned char idle[64]; /* what a lane without a message hashes */
    lane ln[LANES];
    uint32_t st[4][LANES];
    const unsigned char *p[LANES];
    size_t next = 0, active = 0;
    for (int l = 0; l < LANES; l++) {
        ln[l].busy = 0;
        if (next < n) {
            lane_start(&ln[l], next, msg[next], len[next]);
            next++;
            active++;
            for (int w = 0; w < 4; w++) st[w][l] = IV[w];
        }
    }
    while (active) {
        for (int l = 0; l < LANES; l++) {
            lane *q = &ln[l];
            p[l] = !q->busy              ? idle
                   : q->block < q->whole ? q->msg + q->block * 64
                                         : q->tail + (q->block - q->whole) * 64;
        }
        blocks8(st, p);
        for (int l = 0; l < LANES; l++) {
            lane *q = &ln[l];
            if (!q->busy || ++q->block < q->total) continue;
            for (int w = 0; w < 4; w++) /* little-endian words: the digest's bytes */
                for (int i = 0; i < 4; i++) out[q->job][4 * w + i] = (unsigned char)(st[w][l] >> (8 * i));
            q->busy = 0;
            active--;
            if (next < n) {
                lane_start(q, next, msg[next], len[next]);
                next++;
                active++;
                for (int w = 0; w < 4; w++) st[w][l] = IV[w];
            }
        }
    }
}

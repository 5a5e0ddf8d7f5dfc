/* MD5 of many messages at once: eight of them in the eight 32-bit lanes of an
 * AVX2 register. One MD5 stream is a chain of dependent steps that no code can
 * shorten; independent messages (a layer's many small files) can share it. */
#ifndef LAYERSCAN_MD5X8_H
#define LAYERSCAN_MD5X8_H

#include <stddef.h>

#pragma GCC visibility push(hidden)

/* Whether this CPU runs md5x8_many (AVX2); callers fall back to OpenSSL if not. */
int md5x8_supported(void);

/* out[i] = MD5(msg[i], len[i]) for i < n, any n; requires md5x8_supported().
 * Messages are read in place, never past msg[i] + len[i]. */
void md5x8_many(size_t n, const unsigned char *const *msg, const size_t *len, unsigned char (*out)[16]);

#pragma GCC visibility pop

#endif

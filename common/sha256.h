/* SHA-256 (OpenSSL) with hex helpers: the digest behind every cache key and every
 * content digest. */
#ifndef CT_SHA256_H
#define CT_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define CT_SHA256_LEN 32
#define CT_SHA256_HEX_LEN 64

typedef struct ct_sha256 ct_sha256; /* opaque streaming context */

/* Streaming: new -> update* -> final (final frees the context). */
int ct_sha256_new(ct_sha256 **out);
int ct_sha256_update(ct_sha256 *ctx, const void *data, size_t len);
int ct_sha256_final(ct_sha256 *ctx, uint8_t digest[CT_SHA256_LEN]);
void ct_sha256_free(ct_sha256 *ctx); /* abandon without finalising; NULL ok */

/* One shot. */
void ct_sha256_buf(const void *data, size_t len, uint8_t digest[CT_SHA256_LEN]);

/* Digest of a whole file (streamed); error names the file. */
int ct_sha256_file(const char *path, uint8_t digest[CT_SHA256_LEN]);

/* Lower-case hex; `hex` holds CT_SHA256_HEX_LEN + 1 bytes. */
void ct_hex_encode(const uint8_t *bytes, size_t n, char *hex);
/* Parses exactly 2*n hex digits; returns CT_EINVAL otherwise. */
int ct_hex_decode(const char *hex, uint8_t *bytes, size_t n);

#endif

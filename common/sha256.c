#include "common/sha256.h"
#include "common/error.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ct_sha256 {
    EVP_MD_CTX *md;
};

int ct_sha256_new(ct_sha256 **out)
{
    ct_sha256 *c = calloc(1, sizeof *c);
    if (!c)
        return ct_error_set(CT_ENOMEM, "out of memory");
    c->md = EVP_MD_CTX_new();
    if (!c->md || EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(c->md);
        free(c);
        return ct_error_set(CT_ENOMEM, "cannot initialise SHA-256");
    }
    *out = c;
    return 0;
}

int ct_sha256_update(ct_sha256 *c, const void *data, size_t len)
{
    if (len && EVP_DigestUpdate(c->md, data, len) != 1)
        return ct_error_set(CT_EIO, "SHA-256 update failed");
    return 0;
}

int ct_sha256_final(ct_sha256 *c, uint8_t digest[CT_SHA256_LEN])
{
    unsigned int n = 0;
    int ok = EVP_DigestFinal_ex(c->md, digest, &n) == 1 && n == CT_SHA256_LEN;
    ct_sha256_free(c);
    return ok ? 0 : ct_error_set(CT_EIO, "SHA-256 finalisation failed");
}

void ct_sha256_free(ct_sha256 *c)
{
    if (!c)
        return;
    EVP_MD_CTX_free(c->md);
    free(c);
}

void ct_sha256_buf(const void *data, size_t len, uint8_t digest[CT_SHA256_LEN])
{
    unsigned int n = 0;
    EVP_Digest(data, len, digest, &n, EVP_sha256(), NULL);
}

int ct_sha256_file(const char *path, uint8_t digest[CT_SHA256_LEN])
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return ct_error_set(CT_EIO, "%s: cannot open: %s", path, strerror(errno));
    ct_sha256 *c;
    int rc = ct_sha256_new(&c);
    if (rc) {
        fclose(f);
        return rc;
    }
    static const size_t bufsize = 1 << 20;
    char *buf = malloc(bufsize);
    size_t n;
    while (buf && (n = fread(buf, 1, bufsize, f)) > 0)
        ct_sha256_update(c, buf, n);
    int failed = !buf || ferror(f);
    free(buf);
    fclose(f);
    if (failed) {
        ct_sha256_free(c);
        return ct_error_set(CT_EIO, "%s: read error", path);
    }
    return ct_sha256_final(c, digest);
}

void ct_hex_encode(const uint8_t *bytes, size_t n, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = digits[bytes[i] >> 4];
        hex[2 * i + 1] = digits[bytes[i] & 15];
    }
    hex[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int ct_hex_decode(const char *hex, uint8_t *bytes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(hex[2 * i]), lo = hi < 0 ? -1 : hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return ct_error_set(CT_EINVAL, "not a %zu-byte hex string: '%.*s'", n, (int)(2 * n), hex);
    }
    if (hex[2 * n] != '\0')
        return ct_error_set(CT_EINVAL, "hex string longer than %zu bytes", n);
    for (size_t i = 0; i < n; i++)
        bytes[i] = (uint8_t)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
    return 0;
}

/* The .npy writer and a strict reader for the float32 arrays it writes. */
#include "models/forward/npy.h"

#include "common/error.h"
#include "common/io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ct_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape)
{
    if (ndim < 1 || ndim > 8)
        return ct_error_set(CT_EINVAL, "%s: %d dimensions (1 to 8 supported)", path, ndim);
    char dict[512];
    int len = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return ct_error_set(CT_EINVAL, "%s: negative dimension", path);
        count *= (size_t)shape[i];
        len += snprintf(dict + len, sizeof dict - len, "%lld,%s", (long long)shape[i],
                        i + 1 < ndim ? " " : "");
    }
    if (ndim > 1)
        len--; /* a 1-tuple keeps its trailing comma, longer ones drop it */
    len += snprintf(dict + len, sizeof dict - len, "), }");
    /* magic(6) + version(2) + header length(2) + dict + padding + '\n', a multiple of 64 */
    int total = 10 + len + 1;
    int pad = (64 - total % 64) % 64;
    char head[600];
    memcpy(head, "\x93NUMPY\x01\x00", 8);
    int hl = len + pad + 1;
    head[8] = (char)(hl & 0xff);
    head[9] = (char)(hl >> 8);
    memcpy(head + 10, dict, (size_t)len);
    memset(head + 10 + len, ' ', (size_t)pad);
    head[10 + len + pad] = '\n';

    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return ct_error_set(CT_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    int ok = fwrite(head, 1, (size_t)(10 + hl), f) == (size_t)(10 + hl) &&
             fwrite(data, sizeof(float), count, f) == count;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return ct_error_set(CT_EIO, "%s: cannot write: %s", path, strerror(e));
    }
    return 0;
}

int ct_npy_read_f32(const char *path, float **data, int *ndim, int64_t shape[8])
{
    *data = NULL;
    char *buf = NULL;
    size_t n = 0;
    int rc = ct_read_file(path, &buf, &n);
    if (rc)
        return rc;
    if (n < 10 || memcmp(buf, "\x93NUMPY", 6) != 0 || buf[6] != 1) {
        free(buf);
        return ct_error_set(CT_EFORMAT, "%s: not a version 1 .npy file", path);
    }
    size_t hl = (unsigned char)buf[8] | ((size_t)(unsigned char)buf[9] << 8);
    if (10 + hl > n) {
        free(buf);
        return ct_error_set(CT_ECORRUPT, "%s: header runs past the end", path);
    }
    char h[70000];
    memcpy(h, buf + 10, hl);
    h[hl] = 0;
    const char *sp = strstr(h, "'shape': (");
    if (!strstr(h, "'descr': '<f4'") || !strstr(h, "'fortran_order': False") || !sp) {
        free(buf);
        return ct_error_set(CT_EFORMAT, "%s: only little-endian float32 C-order arrays", path);
    }
    sp += strlen("'shape': (");
    int nd = 0;
    size_t count = 1;
    while (*sp && *sp != ')') {
        char *end;
        long long v = strtoll(sp, &end, 10);
        if (end == sp || v < 0 || nd == 8) {
            free(buf);
            return ct_error_set(CT_EFORMAT, "%s: bad shape", path);
        }
        shape[nd++] = v;
        count *= (size_t)v;
        sp = end;
        while (*sp == ',' || *sp == ' ')
            sp++;
    }
    if (count > (n - 10 - hl) / sizeof(float) || (n - 10 - hl) != count * sizeof(float)) {
        free(buf);
        return ct_error_set(CT_ECORRUPT, "%s: %zu data bytes for %zu floats", path, n - 10 - hl,
                            count);
    }
    float *d = malloc(count * sizeof(float) + 1);
    if (!d) {
        free(buf);
        return ct_error_set(CT_ENOMEM, "%s: out of memory", path);
    }
    memcpy(d, buf + 10 + hl, count * sizeof(float));
    free(buf);
    *data = d;
    *ndim = nd;
    return 0;
}

/* A checkpoint's content identity. Large LFS files in the hub cache are stored as
 * blobs/<sha256 of content>, so their link target already names their digest and the
 * gigabytes need not be read again; everything else is hashed. */
#include "models/checkpoint/ckpt_internal.h"
#include "common/error.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Lower-case 64-hex digest of a file: its blob name when it links to one. */
static int file_digest(const char *path, char hex[CT_SHA256_HEX_LEN + 1])
{
    char target[PATH_MAX];
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n > 0) {
        target[n] = '\0';
        const char *b = strrchr(target, '/');
        b = b ? b + 1 : target;
        int ok = strlen(b) == CT_SHA256_HEX_LEN;
        for (const char *p = b; ok && *p; p++)
            ok = isdigit((unsigned char)*p) || (*p >= 'a' && *p <= 'f');
        if (ok) {
            struct stat sb;
            if (stat(path, &sb) != 0) /* a dangling link names content we do not have */
                return ct_error_set(CT_ENOTFOUND, "%s: link to a missing blob %s", path, target);
            memcpy(hex, b, CT_SHA256_HEX_LEN + 1);
            return 0;
        }
    }
    uint8_t d[CT_SHA256_LEN];
    int rc = ct_sha256_file(path, d);
    if (rc)
        return rc;
    ct_hex_encode(d, CT_SHA256_LEN, hex);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int add_line(ct_sha256 *h, const char *kind, const char *name, const char *hex)
{
    int bad = ct_sha256_update(h, kind, strlen(kind)) || ct_sha256_update(h, "\t", 1) ||
              ct_sha256_update(h, name, strlen(name)) || ct_sha256_update(h, "\t", 1) ||
              ct_sha256_update(h, hex, strlen(hex)) || ct_sha256_update(h, "\n", 1);
    return bad ? ct_error_set(CT_EIO, "%s: hashing failed", name) : 0;
}

int ct_ckpt_dir_digest(const char *dir, const ct_ckpt_files *f, char hex[CT_SHA256_HEX_LEN + 1])
{
    const char **order = malloc((f->n ? f->n : 1) * sizeof *order);
    if (!order)
        return ct_error_set(CT_ENOMEM, "out of memory");
    for (size_t i = 0; i < f->n; i++)
        order[i] = f->paths[i];
    qsort(order, f->n, sizeof *order, cmp_str); /* same directory: sorts by base name */
    ct_sha256 *h;
    int rc = ct_sha256_new(&h);
    if (rc) {
        free(order);
        return rc;
    }
    static const char tag[] = "crosstime-checkpoint-digest-v1\n";
    rc = ct_sha256_update(h, tag, sizeof tag - 1);
    char fh[CT_SHA256_HEX_LEN + 1], path[PATH_MAX];
    for (size_t i = 0; i < f->n && !rc; i++) {
        const char *base = strrchr(order[i], '/');
        if (!(rc = file_digest(order[i], fh)))
            rc = add_line(h, "weights", base ? base + 1 : order[i], fh);
    }
    static const char *const extra[] = {"config.json", "tokenizer.json"};
    for (size_t i = 0; i < 2 && !rc; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, extra[i]);
        if (access(path, F_OK) != 0 && i == 1) {
            rc = add_line(h, "file", extra[i], "absent");
            continue;
        }
        if (!(rc = file_digest(path, fh)))
            rc = add_line(h, "file", extra[i], fh);
    }
    free(order);
    if (rc) {
        ct_sha256_free(h);
        return rc;
    }
    uint8_t d[CT_SHA256_LEN];
    if ((rc = ct_sha256_final(h, d)))
        return rc;
    ct_hex_encode(d, CT_SHA256_LEN, hex);
    return 0;
}

int ct_ckpt_digest_source(const char *source, const ct_ckpt_open_opts *opts,
                          char hex[CT_SHA256_HEX_LEN + 1])
{
    char *dir;
    int rc = ct_ckpt_resolve(source, &dir);
    if (rc)
        return rc;
    ct_ckpt_files f;
    rc = ct_ckpt_list_weights(dir, opts ? opts->weights : CT_CKPT_WEIGHTS_AUTO, &f);
    if (!rc) {
        rc = ct_ckpt_dir_digest(dir, &f, hex);
        ct_ckpt_files_free(&f);
    }
    free(dir);
    return rc;
}

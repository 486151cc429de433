#include "models/checkpoint/torchbin.h"
#include "models/checkpoint/torch_pickle.h"
#include "common/error.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    char *name;
    ct_dtype dtype;
    int ndim;
    int64_t shape[CT_TENSOR_MAX_DIM];
    size_t numel, nbytes;
    const void *data;
    void *owned; /* gathered copy of a non-contiguous tensor */
} tb_tensor;

struct ct_torchbin {
    char *path;
    tb_tensor *t;
    size_t n;
    unsigned char **storage; /* per ct_pk_storage, NULL until read */
    size_t *storage_len;
    size_t n_storage;
};

void ct_torchbin_close(ct_torchbin *tb)
{
    if (!tb)
        return;
    for (size_t i = 0; i < tb->n; i++) {
        free(tb->t[i].name);
        free(tb->t[i].owned);
    }
    for (size_t i = 0; i < tb->n_storage; i++)
        free(tb->storage[i]);
    free(tb->storage);
    free(tb->storage_len);
    free(tb->t);
    free(tb->path);
    free(tb);
}

size_t ct_torchbin_count(const ct_torchbin *tb)
{
    return tb->n;
}

void ct_torchbin_at(const ct_torchbin *tb, size_t i, ct_tensor_view *out)
{
    const tb_tensor *t = &tb->t[i];
    memset(out, 0, sizeof *out);
    out->name = t->name;
    out->dtype = t->dtype;
    out->ndim = t->ndim;
    memcpy(out->shape, t->shape, sizeof t->shape);
    out->numel = t->numel;
    out->nbytes = t->nbytes;
    out->data = t->data;
}

/* Reads the current member whole. `hint` (the size the zip claims) only presizes the
 * buffer when it is plausible for this file, so a lying header cannot force a huge
 * allocation. */
static int read_member(const char *path, struct archive *a, struct archive_entry *e,
                       size_t file_size, unsigned char **out, size_t *len)
{
    size_t cap = 1 << 16;
    if (archive_entry_size_is_set(e) && archive_entry_size(e) >= 0 &&
        (uint64_t)archive_entry_size(e) <= (uint64_t)file_size * 4 + (1u << 20))
        cap = (size_t)archive_entry_size(e) + 1;
    unsigned char *buf = malloc(cap);
    size_t n = 0;
    for (;;) {
        if (!buf)
            return ct_error_set(CT_ENOMEM, "%s: out of memory reading '%s'", path,
                                archive_entry_pathname(e));
        if (n == cap) {
            unsigned char *b = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
            if (!b)
                free(buf);
            buf = b;
            cap *= 2;
            continue;
        }
        la_ssize_t got = archive_read_data(a, buf + n, cap - n);
        if (got < 0) {
            free(buf);
            return ct_error_set(CT_ECORRUPT, "%s: cannot read member '%s': %s", path,
                                archive_entry_pathname(e), archive_error_string(a));
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    *out = buf;
    *len = n;
    return 0;
}

typedef struct {
    const char *path;
    size_t file_size;
    char prefix[256];
    int have_pkl;
    int skipped_storage; /* a storage member came before data.pkl */
    ct_pk_state_dict sd;
    ct_torchbin *tb;
} scan_ctx;

/* "<prefix>/data.pkl" with a single-component prefix. */
static int is_pkl(const char *name, char *prefix, size_t cap)
{
    const char *slash = strchr(name, '/');
    if (!slash || strcmp(slash, "/data.pkl") != 0 || (size_t)(slash - name) >= cap)
        return 0;
    memcpy(prefix, name, (size_t)(slash - name));
    prefix[slash - name] = '\0';
    return 1;
}

static int on_member(scan_ctx *c, struct archive *a, struct archive_entry *e)
{
    const char *name = archive_entry_pathname(e);
    if (!name)
        return 0;
    char pfx[256];
    int rc;
    if (!c->have_pkl && is_pkl(name, pfx, sizeof pfx)) {
        unsigned char *buf;
        size_t len;
        if ((rc = read_member(c->path, a, e, c->file_size, &buf, &len)))
            return rc;
        char label[4096];
        snprintf(label, sizeof label, "%s:%s", c->path, name);
        rc = ct_pk_parse_state_dict(label, buf, len, &c->sd);
        free(buf);
        if (rc)
            return rc;
        snprintf(c->prefix, sizeof c->prefix, "%s", pfx);
        c->have_pkl = 1;
        ct_torchbin *tb = c->tb;
        tb->n_storage = c->sd.n_storages;
        tb->storage = calloc(tb->n_storage ? tb->n_storage : 1, sizeof *tb->storage);
        tb->storage_len = calloc(tb->n_storage ? tb->n_storage : 1, sizeof *tb->storage_len);
        if (!tb->storage || !tb->storage_len)
            return ct_error_set(CT_ENOMEM, "%s: out of memory", c->path);
        return 0;
    }
    const char *d = strstr(name, "/data/");
    if (!d || strchr(d + 6, '/'))
        return 0;
    if (!c->have_pkl) {
        c->skipped_storage = 1;
        return 0;
    }
    if ((size_t)(d - name) != strlen(c->prefix) || strncmp(name, c->prefix, (size_t)(d - name)))
        return 0;
    for (size_t i = 0; i < c->sd.n_storages; i++) {
        if (strcmp(c->sd.storages[i].key, d + 6) != 0 || c->tb->storage[i])
            continue;
        return read_member(c->path, a, e, c->file_size, &c->tb->storage[i], &c->tb->storage_len[i]);
    }
    return 0;
}

static int check_byteorder(scan_ctx *c, struct archive *a, struct archive_entry *e)
{
    const char *name = archive_entry_pathname(e);
    const char *s = name ? strrchr(name, '/') : NULL;
    if (!s || strcmp(s, "/byteorder") != 0)
        return 0;
    char buf[16] = {0};
    la_ssize_t n = archive_read_data(a, buf, sizeof buf - 1);
    if (n < 0 || strncmp(buf, "little", 6) != 0)
        return ct_error_set(CT_EFORMAT, "%s: byteorder is '%s', only little-endian is supported",
                            c->path, n > 0 ? buf : "?");
    return 0;
}

static int scan(scan_ctx *c)
{
    struct archive *a = archive_read_new();
    if (!a)
        return ct_error_set(CT_ENOMEM, "%s: out of memory", c->path);
    archive_read_support_format_zip_seekable(a);
    int rc = 0;
    if (archive_read_open_filename(a, c->path, 1 << 16) != ARCHIVE_OK) {
        rc = ct_error_set(CT_ECORRUPT, "%s: not a readable zip archive: %s", c->path,
                          archive_error_string(a));
        goto out;
    }
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            rc = ct_error_set(CT_ECORRUPT, "%s: corrupt zip archive: %s", c->path,
                              archive_error_string(a));
            break;
        }
        if ((rc = check_byteorder(c, a, e)) || (rc = on_member(c, a, e)))
            break;
    }
out:
    archive_read_free(a);
    return rc;
}

/* Row-major strides of `shape` (dims of size 1 may carry any stride). */
static int is_contiguous(const ct_pk_tensor *t)
{
    int64_t want = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->size[d] != 1 && t->stride[d] != want)
            return 0;
        want *= t->size[d];
    }
    return 1;
}

static void gather(const ct_pk_tensor *t, const unsigned char *base, size_t es, unsigned char *dst,
                   size_t numel)
{
    int64_t idx[CT_TENSOR_MAX_DIM] = {0};
    for (size_t k = 0; k < numel; k++) {
        int64_t src = 0;
        for (int d = 0; d < t->ndim; d++)
            src += idx[d] * t->stride[d];
        memcpy(dst + k * es, base + (size_t)src * es, es);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->size[d])
                break;
            idx[d] = 0;
        }
    }
}

static int build_tensor(scan_ctx *c, const ct_pk_tensor *pt, tb_tensor *t)
{
    const ct_pk_storage *s = &c->sd.storages[pt->storage];
    const unsigned char *base = c->tb->storage[pt->storage];
    size_t es = ct_dtype_size(s->dtype);
    t->dtype = s->dtype;
    t->ndim = pt->ndim;
    memcpy(t->shape, pt->size, sizeof t->shape);
    if (s->numel > SIZE_MAX / es || c->tb->storage_len[pt->storage] < s->numel * es)
        return ct_error_set(CT_ECORRUPT,
                            "%s: storage member '%s/data/%s' has %zu bytes, fewer than its %zu "
                            "%s elements",
                            c->path, c->prefix, s->key, c->tb->storage_len[pt->storage], s->numel,
                            ct_dtype_name(s->dtype));
    size_t numel = 1;
    uint64_t last = pt->offset; /* highest element index the tensor touches */
    for (int d = 0; d < pt->ndim; d++) {
        uint64_t n = (uint64_t)pt->size[d];
        if (n && numel > SIZE_MAX / n)
            return ct_error_set(CT_ECORRUPT, "%s: tensor '%s' is too large", c->path, pt->name);
        numel *= (size_t)n;
        if (n > 1) {
            uint64_t st = (uint64_t)pt->stride[d];
            if (st && (n - 1) > (UINT64_MAX - last) / st)
                return ct_error_set(CT_ECORRUPT, "%s: tensor '%s' strides overflow", c->path,
                                    pt->name);
            last += (n - 1) * st;
        }
    }
    t->numel = numel;
    t->nbytes = numel * es;
    if (numel == 0) {
        t->data = base;
        return 0;
    }
    if (last >= s->numel)
        return ct_error_set(CT_ECORRUPT,
                            "%s: tensor '%s' reaches element %llu of storage '%s' which has %zu",
                            c->path, pt->name, (unsigned long long)last, s->key, s->numel);
    if (is_contiguous(pt)) {
        t->data = base + pt->offset * es;
        return 0;
    }
    if (!(t->owned = malloc(t->nbytes)))
        return ct_error_set(CT_ENOMEM, "%s: out of memory gathering '%s'", c->path, pt->name);
    gather(pt, base + pt->offset * es, es, t->owned, numel);
    t->data = t->owned;
    return 0;
}

static int check_magic(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return ct_error_set(errno == ENOENT ? CT_ENOTFOUND : CT_EIO, "%s: cannot open: %s", path,
                            strerror(errno));
    unsigned char m[4] = {0};
    size_t got = fread(m, 1, 4, f);
    struct stat sb;
    int ok = fstat(fileno(f), &sb) == 0;
    fclose(f);
    if (!ok)
        return ct_error_set(CT_EIO, "%s: cannot stat", path);
    *size = (size_t)sb.st_size;
    if (got < 4 || memcmp(m, "PK\x03\x04", 4) != 0)
        return ct_error_set(CT_EFORMAT,
                            "%s: not a zip archive (torch.save's legacy pre-1.6 format is not "
                            "supported; re-save it with a newer PyTorch or convert to "
                            "safetensors)",
                            path);
    return 0;
}

int ct_torchbin_open(const char *path, ct_torchbin **out)
{
    *out = NULL;
    scan_ctx c = {.path = path};
    int rc = check_magic(path, &c.file_size);
    if (rc)
        return rc;
    ct_torchbin *tb = calloc(1, sizeof *tb);
    if (!tb || !(tb->path = strdup(path))) {
        free(tb);
        return ct_error_set(CT_ENOMEM, "%s: out of memory", path);
    }
    c.tb = tb;
    rc = scan(&c);
    if (!rc && !c.have_pkl)
        rc = ct_error_set(CT_EFORMAT,
                          "%s: zip archive has no <name>/data.pkl member: not a "
                          "torch.save file",
                          path);
    int missing = 0;
    for (size_t i = 0; !rc && i < c.sd.n_storages; i++)
        missing += !tb->storage[i];
    if (!rc && missing && c.skipped_storage)
        rc = scan(&c); /* storages preceded data.pkl: read them now that we know which */
    for (size_t i = 0; !rc && i < c.sd.n_storages; i++) {
        if (tb->storage[i])
            continue;
        const char *user = "?";
        for (size_t j = 0; j < c.sd.n_tensors; j++)
            if (c.sd.tensors[j].storage == (int)i) {
                user = c.sd.tensors[j].name;
                break;
            }
        rc = ct_error_set(CT_ECORRUPT, "%s: storage member '%s/data/%s' (tensor '%s') is missing",
                          path, c.prefix, c.sd.storages[i].key, user);
    }
    if (!rc) {
        tb->t = calloc(c.sd.n_tensors ? c.sd.n_tensors : 1, sizeof *tb->t);
        if (!tb->t)
            rc = ct_error_set(CT_ENOMEM, "%s: out of memory", path);
    }
    for (size_t i = 0; !rc && i < c.sd.n_tensors; i++) {
        tb_tensor *t = &tb->t[tb->n];
        if (!(t->name = strdup(c.sd.tensors[i].name))) {
            rc = ct_error_set(CT_ENOMEM, "%s: out of memory", path);
            break;
        }
        tb->n++;
        rc = build_tensor(&c, &c.sd.tensors[i], t);
    }
    ct_pk_state_dict_free(&c.sd);
    if (rc) {
        ct_torchbin_close(tb);
        return rc;
    }
    *out = tb;
    return 0;
}

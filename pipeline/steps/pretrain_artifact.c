#include "common/error.h"
#include "common/io.h"
#include "pipeline/steps/pretrain.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

const char *const ct_steps_pretrain_hf_files[3] = {"config.json", "model.safetensors", "tokenizer.json"};

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

int ct_steps_pretrain_write(ct_blob_writer *w, const ct_steps_pretrain_file *files, size_t n)
{
    uint8_t h[16];
    memcpy(h, CT_PRETRAIN_ART_MAGIC, 8);
    put_le(h + 8, CT_PRETRAIN_ART_VERSION, 4);
    put_le(h + 12, n, 4);
    int rc = ct_blob_write(w, h, sizeof h);
    for (size_t i = 0; i < n && !rc; i++) {
        uint8_t fh[12];
        size_t nl = strlen(files[i].name);
        put_le(fh, nl, 4);
        put_le(fh + 4, files[i].len, 8);
        if (!(rc = ct_blob_write(w, fh, sizeof fh)) && !(rc = ct_blob_write(w, files[i].name, nl)))
            rc = ct_blob_write(w, files[i].data, files[i].len);
    }
    return rc;
}

int ct_steps_pretrain_find(const void *buf, size_t len, const char *name, const char *file, const void **data,
                           size_t *size)
{
    const uint8_t *p = buf;
    if (len < 16 || memcmp(p, CT_PRETRAIN_ART_MAGIC, 8) != 0)
        return ct_error_set(CT_ECORRUPT, "%s: not a pretrain artifact (bad magic or truncated)", name);
    if (get_le(p + 8, 4) != CT_PRETRAIN_ART_VERSION)
        return ct_error_set(CT_EFORMAT, "%s: pretrain artifact version %u is not supported (expected %d)", name,
                            (unsigned)get_le(p + 8, 4), CT_PRETRAIN_ART_VERSION);
    uint64_t n = get_le(p + 12, 4), off = 16;
    for (uint64_t i = 0; i < n; i++) {
        if (len - off < 12)
            return ct_error_set(CT_ECORRUPT, "%s: pretrain artifact truncated in file entry %llu", name,
                                (unsigned long long)i);
        uint64_t nl = get_le(p + off, 4), sz = get_le(p + off + 4, 8);
        off += 12;
        if (nl > len - off || sz > len - off - nl)
            return ct_error_set(CT_ECORRUPT, "%s: pretrain artifact entry %llu overruns the artifact", name,
                                (unsigned long long)i);
        if (nl == strlen(file) && memcmp(p + off, file, nl) == 0) {
            *data = p + off + nl;
            *size = (size_t)sz;
            return 0;
        }
        off += nl + sz;
    }
    return ct_error_set(CT_ENOTFOUND, "%s: pretrain artifact has no '%s'", name, file);
}

int ct_steps_pretrain_write_hf(const void *buf, size_t len, const char *name, const char *dir)
{
    int rc = ct_mkdirs(dir, 0755);
    for (int i = 0; i < 3 && !rc; i++) {
        const void *data;
        size_t size;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, ct_steps_pretrain_hf_files[i]);
        if (!(rc = ct_steps_pretrain_find(buf, len, name, ct_steps_pretrain_hf_files[i], &data, &size)))
            rc = ct_write_file_atomic(path, data, size);
    }
    return rc;
}

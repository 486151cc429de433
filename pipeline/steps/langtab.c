/* Reading and writing the language table section of a token shard (langtab.h). */
#include "pipeline/steps/langtab.h"

#include "common/error.h"
#include "pipeline/steps/shard.h"

#include <stdlib.h>
#include <string.h>

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int ct_langtab_write(ct_blob_writer *w, const char *const *names, size_t n_lang, const uint8_t *lang,
                     uint64_t n_seq)
{
    if (n_lang == 0 || n_lang > 255)
        return ct_error_set(CT_EINVAL, "language table: %zu languages (expected 1 to 255)", n_lang);
    uint8_t h[16];
    memcpy(h, CT_LANGTAB_MAGIC, 8);
    put_u32(h + 8, CT_LANGTAB_VERSION);
    put_u32(h + 12, (uint32_t)n_lang);
    int rc = ct_blob_write(w, h, sizeof h);
    for (size_t i = 0; i < n_lang && !rc; i++) {
        size_t len = strlen(names[i]);
        put_u32(h, (uint32_t)len);
        if (!(rc = ct_blob_write(w, h, 4)))
            rc = ct_blob_write(w, names[i], len);
    }
    for (uint64_t i = 0; i < n_seq && !rc; i++)
        if (lang[i] >= n_lang)
            rc = ct_error_set(CT_EINVAL, "language table: sequence %llu has language %u of %zu",
                              (unsigned long long)i, lang[i], n_lang);
    return rc || !n_seq ? rc : ct_blob_write(w, lang, (size_t)n_seq);
}

void ct_langtab_free(ct_langtab *t)
{
    if (!t)
        return;
    for (size_t i = 0; t->names && i < t->n_lang; i++)
        free(t->names[i]);
    free(t->names);
    free(t->lang);
    memset(t, 0, sizeof *t);
}

int ct_langtab_read(ct_blob_reader *r, const char *name, ct_langtab *out)
{
    memset(out, 0, sizeof *out);
    uint32_t T;
    uint64_t n;
    int rc = ct_tokshard_header(r, name, &T, &n);
    if (rc)
        return rc;
    uint64_t size = ct_blob_size(r), off = CT_TOKSHARD_HEADER + n * T * 4 + n * 16;
    if (size == off)
        return ct_error_set(CT_ENOTFOUND, "%s: the token shard has no language table (not a corpus.mix)", name);
    uint8_t h[16];
    if (size - off < 16 + n || (rc = ct_blob_read_at(r, off, h, 16)) != 0 || memcmp(h, CT_LANGTAB_MAGIC, 8) != 0 ||
        get_u32(h + 8) != CT_LANGTAB_VERSION || get_u32(h + 12) == 0 || get_u32(h + 12) > 255)
        return rc ? rc : ct_error_set(CT_ECORRUPT, "%s: the language table after the token shard is invalid", name);
    out->n_lang = get_u32(h + 12);
    out->n_seq = n;
    out->names = calloc(out->n_lang, sizeof *out->names);
    out->lang = malloc(n + 1);
    if (!out->names || !out->lang) {
        ct_langtab_free(out);
        return ct_error_set(CT_ENOMEM, "out of memory");
    }
    off += 16;
    for (size_t i = 0; i < out->n_lang && !rc; i++) {
        uint32_t len = 0;
        if (size - off < 4 + n) {
            rc = ct_error_set(CT_ECORRUPT, "%s: the language table is truncated", name);
            break;
        }
        if ((rc = ct_blob_read_at(r, off, h, 4)))
            break;
        len = get_u32(h);
        off += 4;
        if (len == 0 || len > 256 || size - off < len + n) {
            rc = ct_error_set(CT_ECORRUPT, "%s: language %zu of the language table is malformed", name, i);
            break;
        }
        if (!(out->names[i] = calloc(len + 1, 1)))
            rc = ct_error_set(CT_ENOMEM, "out of memory");
        else
            rc = ct_blob_read_at(r, off, out->names[i], len);
        off += len;
    }
    if (!rc && size - off != n)
        rc = ct_error_set(CT_ECORRUPT, "%s: the language table has %llu language bytes for %llu sequences", name,
                          (unsigned long long)(size - off), (unsigned long long)n);
    if (!rc && n)
        rc = ct_blob_read_at(r, off, out->lang, (size_t)n);
    for (uint64_t i = 0; i < n && !rc; i++)
        if (out->lang[i] >= out->n_lang)
            rc = ct_error_set(CT_ECORRUPT, "%s: sequence %llu has language %u of %zu", name, (unsigned long long)i,
                              out->lang[i], out->n_lang);
    if (rc)
        ct_langtab_free(out);
    return rc;
}

/* A ct_cc_source over cached activation shards: M checkpoints' shards aligned by token
 * (row r of shard k is the same token in each), read zero-copy from the cache,
 * widened to fp32 and multiplied by s_m.
 *
 * Shuffle without rewriting (METHOD §1 allows any seeded shuffle with the effect of
 * the reference's refilled shuffle buffer): each epoch permutes the shard order, walks
 * the shards in groups of ACT_GROUP and visits the rows of a group in the order of a
 * seeded bijection (ct_steps_permute). Only one group's blob readers are open at a time,
 * so the number of LMDB readers stays bounded whatever the corpus size. Given the seed,
 * the row at cursor (epoch, index) is fixed, so seek is exact and resumes are too. */
#include "pipeline/steps/actsource.h"
#include "common/error.h"
#include "pipeline/steps/shard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACT_GROUP 16

typedef struct {
    ct_step_ctx *ctx;
    char names[8][32];  /* input name per checkpoint */
    int M, d;
    uint32_t dtype;
    size_t K;
    uint64_t *rows;     /* [K] */
    uint64_t *data_off; /* [K] */
    uint64_t total;
    float scale[8];
    uint64_t seed;
    int shuffle;
    /* the epoch */
    uint64_t epoch, index;
    int have_epoch;
    size_t *order;      /* [K] shard order of this epoch */
    uint64_t *gstart;   /* [n_groups + 1] first row (within the epoch) of each group */
    size_t n_groups;
    /* the open group */
    long group;         /* -1: none */
    size_t gn;          /* shards in it */
    uint64_t gcum[ACT_GROUP + 1];
    ct_blob_reader *readers[ACT_GROUP * 8];
    /* zero-copy chunk views of each open reader, so that finding a row is arithmetic */
    const uint8_t **chunk[ACT_GROUP * 8];
    uint64_t chunk_size[ACT_GROUP * 8], n_chunks[ACT_GROUP * 8], blob_size[ACT_GROUP * 8];
    const uint8_t **src; /* [n*M] row pointers of the batch being read (NULL: done) */
    size_t src_cap;
    uint16_t *tmp;      /* one row when it spans two chunks */
} actsrc;

static void close_group(actsrc *s)
{
    for (size_t i = 0; i < ACT_GROUP * (size_t)s->M; i++) {
        ct_blob_reader_close(s->readers[i]);
        s->readers[i] = NULL;
        free(s->chunk[i]);
        s->chunk[i] = NULL;
    }
    s->group = -1;
}

static void set_epoch(actsrc *s, uint64_t epoch)
{
    close_group(s);
    s->epoch = epoch;
    for (size_t k = 0; k < s->K; k++)
        s->order[k] = k;
    if (s->shuffle) {
        uint64_t st = ct_steps_mix(s->seed ^ ct_steps_mix(epoch + 0x5348415244ull)); /* "SHARD" */
        for (size_t k = s->K; k > 1; k--) {
            st = ct_steps_mix(st);
            size_t j = (size_t)(st % k);
            size_t t = s->order[k - 1];
            s->order[k - 1] = s->order[j];
            s->order[j] = t;
        }
    }
    s->gstart[0] = 0;
    for (size_t g = 0; g < s->n_groups; g++) {
        uint64_t n = 0;
        for (size_t k = g * ACT_GROUP; k < s->K && k < (g + 1) * ACT_GROUP; k++)
            n += s->rows[s->order[k]];
        s->gstart[g + 1] = s->gstart[g] + n;
    }
    s->have_epoch = 1;
}

/* Views of every chunk of reader ri; all but the last have the same size. */
static int map_chunks(actsrc *s, size_t ri)
{
    ct_blob_reader *r = s->readers[ri];
    uint64_t size = ct_blob_size(r), cs = 0, n = 0, cap = 4;
    const uint8_t **v = malloc(cap * sizeof *v);
    if (!v)
        return ct_error_set(CT_ENOMEM, "out of memory");
    ct_blob_chunk c;
    int more;
    while ((more = ct_blob_next_chunk(r, &c)) > 0) {
        if (n == cap) {
            const uint8_t **t = realloc(v, 2 * cap * sizeof *v);
            if (!t) {
                free(v);
                return ct_error_set(CT_ENOMEM, "out of memory");
            }
            v = t;
            cap *= 2;
        }
        if (n == 0)
            cs = c.len;
        if (c.offset != n * cs || (c.len != cs && c.offset + c.len != size)) {
            free(v);
            return ct_error_set(CT_ECORRUPT, "%s: activation shard chunks are not evenly sized",
                                ct_step_label(s->ctx));
        }
        v[n++] = c.data;
    }
    if (more < 0) {
        free(v);
        return more;
    }
    s->chunk[ri] = v;
    s->chunk_size[ri] = cs ? cs : 1;
    s->n_chunks[ri] = n;
    s->blob_size[ri] = size;
    return 0;
}

/* Pointer to `len` bytes at `off` of reader ri, or NULL when they span two chunks. */
static const uint8_t *row_at(const actsrc *s, size_t ri, uint64_t off, size_t len)
{
    uint64_t i = off / s->chunk_size[ri], within = off % s->chunk_size[ri];
    if (i >= s->n_chunks[ri] || within + len > s->chunk_size[ri])
        return NULL;
    return s->chunk[ri][i] + within;
}

static int open_group(actsrc *s, size_t g)
{
    close_group(s);
    s->gn = 0;
    s->gcum[0] = 0;
    for (size_t k = g * ACT_GROUP; k < s->K && k < (g + 1) * ACT_GROUP; k++, s->gn++) {
        size_t shard = s->order[k];
        s->gcum[s->gn + 1] = s->gcum[s->gn] + s->rows[shard];
        for (int m = 0; m < s->M; m++) {
            size_t ri = s->gn * (size_t)s->M + (size_t)m;
            int rc = ct_step_input(s->ctx, s->names[m], shard, &s->readers[ri]);
            if (!rc)
                rc = map_chunks(s, ri);
            if (rc) {
                close_group(s);
                return rc;
            }
        }
    }
    s->group = (long)g;
    return 0;
}

static void widen(const actsrc *s, const uint8_t *h, float sc, float *x)
{
    /* memcpy per element: rows in the map are only as aligned as the chunk layout */
    for (int e = 0; e < s->d; e++) {
        uint16_t v;
        memcpy(&v, h + 2 * (size_t)e, 2);
        x[e] = (s->dtype == CT_ACT_BF16 ? ct_bf16_to_f32(v) : ct_f16_to_f32(v)) * sc;
    }
}

static int src_next(void *ctx, float *out, size_t n)
{
    actsrc *s = ctx;
    int d = s->d, M = s->M;
    if (n * (size_t)M > s->src_cap) {
        const uint8_t **t = realloc(s->src, n * (size_t)M * sizeof *t);
        if (!t)
            return ct_error_set(CT_ENOMEM, "out of memory");
        s->src = t;
        s->src_cap = n * (size_t)M;
    }
    /* find the rows (serially: groups open and close on the way) ... */
    for (size_t i = 0; i < n; i++) {
        if (s->index >= s->total || !s->have_epoch) {
            if (s->have_epoch) {
                s->index = 0;
                set_epoch(s, s->epoch + 1);
            } else {
                set_epoch(s, s->epoch);
            }
        }
        size_t g = 0;
        while (g + 1 < s->n_groups && s->gstart[g + 1] <= s->index)
            g++;
        if (s->group != (long)g) {
            int rc = open_group(s, g);
            if (rc)
                return rc;
        }
        uint64_t p = s->index - s->gstart[g], gr = s->gstart[g + 1] - s->gstart[g];
        uint64_t q = s->shuffle ? ct_steps_permute(p, gr, ct_steps_mix(s->seed ^ ct_steps_mix(s->epoch) ^
                                                                       ct_steps_mix(g + 0x47524f5550ull)))
                                : p;
        size_t j = 0;
        while (j + 1 < s->gn && s->gcum[j + 1] <= q)
            j++;
        uint64_t r = q - s->gcum[j];
        size_t shard = s->order[g * ACT_GROUP + j];
        for (int m = 0; m < M; m++) {
            size_t ri = j * (size_t)M + (size_t)m;
            uint64_t off = s->data_off[shard] + r * (uint64_t)d * 2;
            const uint8_t *h = row_at(s, ri, off, (size_t)d * 2);
            s->src[i * (size_t)M + (size_t)m] = h;
            if (!h) { /* spans two chunks: copy it now, while its group is open */
                int rc = ct_blob_read_at(s->readers[ri], off, s->tmp, (size_t)d * 2);
                if (rc)
                    return rc;
                widen(s, (const uint8_t *)s->tmp, s->scale[m], out + (i * (size_t)M + (size_t)m) * (size_t)d);
            }
        }
        s->index++;
        /* a group change invalidates the views gathered so far: widen them first */
        if (i + 1 < n && s->index < s->total) {
            size_t g2 = g;
            while (g2 + 1 < s->n_groups && s->gstart[g2 + 1] <= s->index)
                g2++;
            if (g2 != g) {
                for (size_t k = 0; k <= i * (size_t)M + (size_t)M - 1; k++)
                    if (s->src[k]) {
                        widen(s, s->src[k], s->scale[k % (size_t)M], out + k * (size_t)d);
                        s->src[k] = NULL;
                    }
            }
        } else if (i + 1 < n) { /* the epoch ends: the next row may open another group */
            for (size_t k = 0; k <= i * (size_t)M + (size_t)M - 1; k++)
                if (s->src[k]) {
                    widen(s, s->src[k], s->scale[k % (size_t)M], out + k * (size_t)d);
                    s->src[k] = NULL;
                }
        }
    }
    /* ... then widen them (independent rows: parallel when built with OpenMP) */
    long long total = (long long)(n * (size_t)M);
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (long long k = 0; k < total; k++)
        if (s->src[k])
            widen(s, s->src[k], s->scale[k % M], out + (size_t)k * (size_t)d);
    return 0;
}

static int src_tell(void *ctx, ct_cc_cursor *cur)
{
    actsrc *s = ctx;
    cur->epoch = s->epoch;
    cur->index = s->index;
    return 0;
}

static int src_seek(void *ctx, const ct_cc_cursor *cur)
{
    actsrc *s = ctx;
    if (cur->index > s->total)
        return ct_error_set(CT_EINVAL, "%s: cursor %llu is past the %llu rows", ct_step_label(s->ctx),
                            (unsigned long long)cur->index, (unsigned long long)s->total);
    set_epoch(s, cur->epoch);
    s->index = cur->index;
    return 0;
}

static void src_destroy(void *ctx)
{
    actsrc *s = ctx;
    if (!s)
        return;
    close_group(s);
    free(s->rows);
    free(s->data_off);
    free(s->order);
    free(s->gstart);
    free(s->tmp);
    free(s->src);
    free(s);
}

int ct_steps_actsource_open(ct_step_ctx *ctx, const char *prefix, int M, const float *scale, uint64_t seed,
                            int shuffle, ct_cc_source *out)
{
    memset(out, 0, sizeof *out);
    if (M < 1 || M > 8)
        return ct_error_set(CT_EINVAL, "%s: %d checkpoints (1 to 8 supported)", ct_step_label(ctx), M);
    actsrc *s = calloc(1, sizeof *s);
    if (!s)
        return ct_error_set(CT_ENOMEM, "out of memory");
    s->ctx = ctx;
    s->M = M;
    s->seed = seed;
    s->shuffle = shuffle;
    s->group = -1;
    for (int m = 0; m < M; m++) {
        snprintf(s->names[m], sizeof s->names[m], "%s_%d", prefix, m);
        s->scale[m] = scale ? scale[m] : 1.0f;
    }
    s->K = ct_step_input_count(ctx, s->names[0]);
    int rc = 0;
    if (s->K == 0)
        rc = ct_error_set(CT_EINVAL, "%s: no %s activation shards", ct_step_label(ctx), prefix);
    for (int m = 1; m < M && !rc; m++)
        if (ct_step_input_count(ctx, s->names[m]) != s->K)
            rc = ct_error_set(CT_EINVAL, "%s: checkpoints have different numbers of %s shards",
                              ct_step_label(ctx), prefix);
    if (!rc) {
        s->rows = calloc(s->K, 8);
        s->data_off = calloc(s->K, 8);
        s->order = calloc(s->K, sizeof *s->order);
        s->n_groups = (s->K + ACT_GROUP - 1) / ACT_GROUP;
        s->gstart = calloc(s->n_groups + 1, 8);
        if (!s->rows || !s->data_off || !s->order || !s->gstart)
            rc = ct_error_set(CT_ENOMEM, "out of memory");
    }
    /* every checkpoint's shard k must hold the same tokens: same token-shard key */
    for (size_t k = 0; k < s->K && !rc; k++) {
        ct_actshard_info first = {0};
        for (int m = 0; m < M && !rc; m++) {
            ct_blob_reader *r;
            char name[320];
            snprintf(name, sizeof name, "%s: input %s[%zu]", ct_step_label(ctx), s->names[m], k);
            if ((rc = ct_step_input(ctx, s->names[m], k, &r)))
                break;
            ct_actshard_info h;
            rc = ct_actshard_header(r, name, &h);
            ct_blob_reader_close(r);
            if (rc)
                break;
            if (k == 0 && m == 0) {
                s->d = (int)h.d;
                s->dtype = h.dtype;
            }
            if (m == 0)
                first = h;
            if ((int)h.d != s->d || h.dtype != s->dtype)
                rc = ct_error_set(CT_EINVAL, "%s: width %u or dtype differs from the other shards", name, h.d);
            else if (m > 0 && (h.rows != first.rows || strcmp(h.token_key, first.token_key) != 0))
                rc = ct_error_set(CT_EINVAL, "%s: rows come from token shard %.12s, not %.12s as for %s: "
                                  "checkpoints are not aligned by token", name, h.token_key, first.token_key,
                                  s->names[0]);
            s->rows[k] = h.rows;
            s->data_off[k] = h.data_offset;
        }
        s->total += s->rows[k];
    }
    if (!rc && !(s->tmp = malloc((size_t)s->d * 2)))
        rc = ct_error_set(CT_ENOMEM, "out of memory");
    if (rc) {
        src_destroy(s);
        return rc;
    }
    out->M = M;
    out->d = s->d;
    out->ctx = s;
    out->next = src_next;
    out->tell = src_tell;
    out->seek = src_seek;
    out->destroy = src_destroy;
    return 0;
}

void ct_steps_actsource_release(ct_cc_source *src)
{
    if (src && src->ctx)
        close_group(src->ctx);
}

uint64_t ct_steps_actsource_rows(const ct_cc_source *src)
{
    return src && src->ctx ? ((const actsrc *)src->ctx)->total : 0;
}

/* The in-memory row source and the normalisation estimate. */
#include "crosscoder/source.h"

#include "common/error.h"
#include "crosscoder/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct memsrc {
    const float *rows;
    size_t n;
    int M, d;
    float *scale;      /* [M] */
    uint64_t seed;
    int shuffle;
    ct_cc_cursor cur;
    uint64_t perm_epoch; /* epoch whose permutation `perm` holds */
    size_t *perm;       /* [n] or NULL when not shuffling */
} memsrc;

/* Fisher–Yates from a generator seeded by (seed, epoch): the epoch's own stream, so
 * any epoch's order can be rebuilt directly after a seek. */
static void build_perm(memsrc *s, uint64_t epoch)
{
    for (size_t i = 0; i < s->n; i++)
        s->perm[i] = i;
    uint64_t x = s->seed ^ 0x5eed5eed5eed5eedULL;
    uint64_t mix = ct_cc_splitmix64(&x) ^ (epoch * 0x9e3779b97f4a7c15ULL);
    ct_cc_rng r;
    ct_cc_rng_seed(&r, mix);
    for (size_t i = s->n; i > 1; i--) {
        size_t j = (size_t)ct_cc_rng_below(&r, i);
        size_t t = s->perm[i - 1];
        s->perm[i - 1] = s->perm[j];
        s->perm[j] = t;
    }
    s->perm_epoch = epoch;
}

static int mem_next(void *ctx, float *out, size_t count)
{
    memsrc *s = ctx;
    size_t D = (size_t)s->M * s->d;
    for (size_t k = 0; k < count; k++) {
        if (s->cur.index >= s->n) {
            s->cur.epoch++;
            s->cur.index = 0;
        }
        if (s->perm && s->perm_epoch != s->cur.epoch)
            build_perm(s, s->cur.epoch);
        size_t r = s->perm ? s->perm[s->cur.index] : s->cur.index;
        const float *src = s->rows + r * D;
        float *dst = out + k * D;
        for (int m = 0; m < s->M; m++)
            for (int i = 0; i < s->d; i++)
                dst[(size_t)m * s->d + i] = src[(size_t)m * s->d + i] * s->scale[m];
        s->cur.index++;
    }
    return 0;
}

static int mem_tell(void *ctx, ct_cc_cursor *cur)
{
    *cur = ((memsrc *)ctx)->cur;
    return 0;
}

static int mem_seek(void *ctx, const ct_cc_cursor *cur)
{
    memsrc *s = ctx;
    if (cur->index > s->n)
        return ct_error_set(CT_EINVAL, "memory row source: cursor index %llu beyond %zu rows",
                            (unsigned long long)cur->index, s->n);
    s->cur = *cur;
    return 0;
}

static void mem_destroy(void *ctx)
{
    memsrc *s = ctx;
    if (!s)
        return;
    free(s->perm);
    free(s->scale);
    free(s);
}

int ct_cc_memsource_open(const float *rows, size_t n, int M, int d, const float *scale,
                         uint64_t seed, int shuffle, ct_cc_source *out)
{
    memset(out, 0, sizeof *out);
    if (!rows || n == 0 || M < 1 || d < 1)
        return ct_error_set(CT_EINVAL, "memory row source: need rows, n >= 1, M >= 1, d >= 1");
    memsrc *s = calloc(1, sizeof *s);
    if (!s)
        return ct_error_set(CT_ENOMEM, "memory row source: out of memory");
    s->rows = rows;
    s->n = n;
    s->M = M;
    s->d = d;
    s->seed = seed;
    s->shuffle = shuffle;
    s->scale = malloc((size_t)M * sizeof(float));
    if (shuffle)
        s->perm = malloc(n * sizeof(size_t));
    if (!s->scale || (shuffle && !s->perm)) {
        mem_destroy(s);
        return ct_error_set(CT_ENOMEM, "memory row source: out of memory for %zu rows", n);
    }
    for (int m = 0; m < M; m++)
        s->scale[m] = scale ? scale[m] : 1.0f;
    if (shuffle)
        build_perm(s, 0);
    out->M = M;
    out->d = d;
    out->ctx = s;
    out->next = mem_next;
    out->tell = mem_tell;
    out->seek = mem_seek;
    out->destroy = mem_destroy;
    return 0;
}

void ct_cc_source_close(ct_cc_source *s)
{
    if (!s)
        return;
    if (s->destroy)
        s->destroy(s->ctx);
    memset(s, 0, sizeof *s);
}

int ct_cc_estimate_scale(ct_cc_source *src, size_t rows, int batch, float *scale)
{
    if (!src || !src->next || rows == 0 || batch < 1)
        return ct_error_set(CT_EINVAL, "normalisation estimate: need a source, rows >= 1, batch >= 1");
    int M = src->M, d = src->d;
    size_t D = (size_t)M * d;
    float *buf = malloc((size_t)batch * D * sizeof(float));
    double *sum = calloc((size_t)M, sizeof(double));
    if (!buf || !sum) {
        free(buf);
        free(sum);
        return ct_error_set(CT_ENOMEM, "normalisation estimate: out of memory for a batch of %d rows", batch);
    }
    int rc = 0;
    for (size_t done = 0; done < rows && !rc;) {
        size_t nb = rows - done < (size_t)batch ? rows - done : (size_t)batch;
        if ((rc = src->next(src->ctx, buf, nb)))
            break;
        for (size_t b = 0; b < nb; b++)
            for (int m = 0; m < M; m++) {
                const float *x = buf + b * D + (size_t)m * d;
                double s = 0.0;
                for (int i = 0; i < d; i++)
                    s += (double)x[i] * x[i];
                sum[m] += sqrt(s);
            }
        done += nb;
    }
    for (int m = 0; m < M && !rc; m++) {
        double mean = sum[m] / (double)rows;
        if (!(mean > 0.0) || !isfinite(mean))
            rc = ct_error_set(CT_EINVAL, "normalisation estimate: mean norm of checkpoint %d is %g", m, mean);
        else
            scale[m] = (float)(sqrt((double)d) / mean);
    }
    free(buf);
    free(sum);
    return rc;
}

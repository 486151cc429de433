/* Integrated gradients of the metric logit[bad] − logit[good] with respect to the
 * crosscoder's latents, per checkpoint (METHOD §5).
 *
 * Choices where the method leaves room (METHOD asks that they be named):
 *  - Positions: the IE of an example is the mean over ITS real prefix positions; pads
 *    of a right-padded batch are never counted. (The reference averages over every row
 *    of a left-padded batch of 4, pads included.) So results do not depend on `batch`.
 *  - Steps: α = k/steps for k = 0..steps−1 (a left Riemann sum from the clean point).
 *  - The average of the per-step gradients wrt the scaled f is computed as the
 *    per-step gradients wrt the residual, averaged, then mapped through W_dec[:, m]ᵀ
 *    once: the map is linear, so this is the same quantity for one GEMM instead of
 *    `steps`.
 *  - Latents with f = 0 at a position are skipped there: their IE is exactly 0.
 *  - The threshold zeroes |IE| <= threshold per position before any averaging.
 *  - Each example's sums are formed on their own and added in example order, in
 *    double, so the order of the reduction never depends on the batching. */
#include "analysis/attribution.h"
#include "analysis/batch.h"
#include "common/error.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void ct_attr_result_free(ct_attr_result *r)
{
    if (!r)
        return;
    free(r->ie);
    free(r->example_total);
    free(r->example_error);
    free(r->example_delta);
    free(r->example_metric);
    memset(r, 0, sizeof *r);
}

/* Scratch of one IG pass, one allocation. */
typedef struct {
    float *fw;     /* [P*d] f·W_dec[:, m] of the real rows */
    float *res;    /* [P*d] error term x_m − x̂_m */
    float *h;      /* [P*d] the patched residual */
    float *dres;   /* [P*d] gradient at the layer, then the mean over α */
    float *grad;   /* [cap_T*H] mean gradient wrt f of one example */
    double *dsum;  /* [P*d] sum of the gradients over α */
    double *acc;   /* [H] one example's thresholded IE summed over positions */
    void *mem;
} ig_scratch;

static int scratch_init(ig_scratch *s, size_t P, int d, int cap_T, int H)
{
    size_t nf = 4 * P * d + (size_t)cap_T * H;
    size_t nd = P * d + (size_t)H;
    s->mem = malloc(nd * sizeof(double) + nf * sizeof(float));
    if (!s->mem)
        return ct_error_set(CT_ENOMEM, "attribution: out of memory for the IG buffers");
    double *q = s->mem;
    s->dsum = q, q += P * d;
    s->acc = q, q += H;
    float *p = (float *)q;
    s->fw = p, p += P * d;
    s->res = p, p += P * d;
    s->h = p, p += P * d;
    s->dres = p, p += P * d;
    s->grad = p;
    return 0;
}

/* logit[bad] − logit[good] of every sequence from the head rows in b->head */
static void metric_rows(const ct_an_batch *b, double *out)
{
    for (int s = 0; s < b->B; s++) {
        const float *row = b->head + (size_t)s * b->head_stride;
        out[s] = (double)row[b->bad[s]] - (double)row[b->good[s]];
    }
}

/* Decoded features and error term of checkpoint m on the real rows; pad rows get zeros. */
static void split_residual(const ct_an_batch *b, int m, ig_scratch *s)
{
    int d = b->d, T = b->T;
    size_t P = (size_t)b->cap_B * b->cap_T;
    const float *x = b->x + (size_t)m * P * d, *bd = b->cc->p.b_dec + (size_t)m * d;
    memset(s->fw, 0, (size_t)b->B * T * d * sizeof(float));
    memset(s->res, 0, (size_t)b->B * T * d * sizeof(float));
    for (int q = 0; q < b->B; q++) {
        size_t r0 = (size_t)q * T;
        ct_an_decode_m(b, m, b->f + r0 * b->H, b->len[q], s->fw + r0 * d);
        for (size_t r = r0; r < r0 + (size_t)b->len[q]; r++)
            for (int i = 0; i < d; i++) {
                float xhat = s->fw[r * d + i] + bd[i];
                s->res[r * d + i] = x[r * d + i] - xhat;
            }
    }
}

/* h_α = ((1−α)f)·W_dec[:, m] + b_dec[m] + (1−α)·res_m on every row (pads: b_dec). */
static void build_patch(const ct_an_batch *b, int m, float alpha, ig_scratch *s)
{
    int d = b->d;
    const float *bd = b->cc->p.b_dec + (size_t)m * d;
    float keep = 1.0f - alpha;
    size_t N = (size_t)b->B * b->T;
    for (size_t r = 0; r < N; r++)
        for (int i = 0; i < d; i++)
            s->h[r * d + i] = keep * s->fw[r * d + i] + bd[i] + keep * s->res[r * d + i];
}

static int ig_checkpoint(ct_an_batch *b, int m, const ct_attr_options *o, ig_scratch *s, double *ie_acc,
                         size_t e0, ct_attr_result *out)
{
    int d = b->d, H = b->H, T = b->T, M = b->M;
    size_t N = (size_t)b->B * T;
    split_residual(b, m, s);

    /* baseline: f = 0 and res = 0 leave b_dec alone */
    build_patch(b, m, 1.0f, s);
    int rc = ct_an_forward(b, m, 0, s->h, 0, CT_AN_HEAD_LOGITS, NULL);
    if (rc)
        return rc;
    double base[b->B];
    metric_rows(b, base);
    for (int q = 0; q < b->B; q++)
        out->example_delta[(e0 + q) * M + m] = base[q] - out->example_metric[(e0 + q) * M + m];

    memset(s->dsum, 0, N * d * sizeof(double));
    for (int k = 0; k < o->steps; k++) {
        build_patch(b, m, (float)k / (float)o->steps, s);
        rc = ct_an_forward(b, m, 0, s->h, 1, CT_AN_HEAD_NONE, NULL);
        if (!rc)
            rc = ct_model_backward_logit_diff(b->models[m], b->bad, b->good, s->dres);
        if (rc)
            return rc;
        for (size_t i = 0; i < N * d; i++)
            s->dsum[i] += s->dres[i];
    }
    for (size_t i = 0; i < N * d; i++)
        s->dres[i] = (float)(s->dsum[i] / o->steps);

    double thr = o->threshold;
    for (int q = 0; q < b->B; q++) {
        int n = b->len[q];
        size_t r0 = (size_t)q * T;
        const float *f = b->f + r0 * H;
        /* mean gradient wrt f: mean_dres · W_dec[:, m]ᵀ, W_dec[:, m] being [H, d] with row stride M*d */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, H, d, 1.0f, s->dres + r0 * d, d,
                    b->cc->p.W_dec + (size_t)m * d, M * d, 0.0f, s->grad, H);
        memset(s->acc, 0, (size_t)H * sizeof(double));
        double total = 0, err = 0;
        for (int t = 0; t < n; t++) {
            const float *ft = f + (size_t)t * H, *gt = s->grad + (size_t)t * H;
            for (int j = 0; j < H; j++) {
                if (ft[j] == 0.0f)
                    continue;
                double v = (double)gt[j] * (0.0 - (double)ft[j]);
                total += v;
                if (fabs(v) > thr)
                    s->acc[j] += v;
            }
            const float *g = s->dres + (r0 + t) * d, *res = s->res + (r0 + t) * d;
            for (int i = 0; i < d; i++)
                err += (double)g[i] * (0.0 - (double)res[i]);
        }
        double *row = ie_acc + (size_t)m * H;
        for (int j = 0; j < H; j++)
            row[j] += s->acc[j] / n;
        out->example_total[(e0 + q) * M + m] = total;
        out->example_error[(e0 + q) * M + m] = err;
    }
    return 0;
}

int ct_attr_ig(ct_model *const *models, int M, const ct_crosscoder *cc, int layer, const ct_task_example *ex,
               size_t n, const ct_attr_options *opts, ct_attr_result *out)
{
    ct_attr_options o = CT_ATTR_OPTIONS_INIT;
    if (opts)
        o = *opts;
    if (!out)
        return ct_error_set(CT_EINVAL, "attribution: no result");
    memset(out, 0, sizeof *out);
    if (o.steps < 1 || o.batch < 1 || o.batch > 4096 || !(o.threshold >= 0.0f))
        return ct_error_set(CT_EINVAL, "attribution: need steps >= 1, batch in [1, 4096] and threshold >= 0 "
                            "(got %d, %d, %g)", o.steps, o.batch, (double)o.threshold);
    int max_len = 1;
    int rc = ct_an_check("attribution", models, M, cc, layer);
    if (!rc)
        rc = ct_an_check_examples("attribution", models, M, ex, n, &max_len);
    if (rc)
        return rc;
    int H = cc->cfg.H;
    out->M = M;
    out->H = H;
    out->n_examples = n;
    size_t nm = n * (size_t)M;
    out->ie = calloc((size_t)M * H, sizeof(float));
    out->example_total = calloc(nm + 1, sizeof(double));
    out->example_error = calloc(nm + 1, sizeof(double));
    out->example_delta = calloc(nm + 1, sizeof(double));
    out->example_metric = calloc(nm + 1, sizeof(double));
    double *ie_acc = calloc((size_t)M * H, sizeof(double));
    if (!out->ie || !out->example_total || !out->example_error || !out->example_delta || !out->example_metric ||
        !ie_acc) {
        free(ie_acc);
        ct_attr_result_free(out);
        return ct_error_set(CT_ENOMEM, "attribution: out of memory");
    }
    int cap_B = n < (size_t)o.batch ? (int)(n ? n : 1) : o.batch;
    ct_an_batch b;
    ig_scratch s = {0};
    rc = ct_an_batch_init(&b, models, M, cc, layer, cap_B, max_len, 1);
    if (!rc)
        rc = scratch_init(&s, (size_t)cap_B * max_len, cc->cfg.d, max_len, H);
    for (size_t e0 = 0; e0 < n && !rc; e0 += (size_t)cap_B) {
        int B = n - e0 < (size_t)cap_B ? (int)(n - e0) : cap_B;
        ct_an_batch_examples(&b, ex + e0, B);
        for (int m = 0; m < M && !rc; m++) {
            rc = ct_an_forward(&b, m, 1, NULL, 0, CT_AN_HEAD_LOGITS, NULL);
            double metric[B];
            metric_rows(&b, metric);
            for (int q = 0; q < B && !rc; q++)
                out->example_metric[(e0 + q) * M + m] = metric[q];
        }
        if (!rc)
            rc = ct_an_encode(&b);
        for (int m = 0; m < M && !rc; m++)
            rc = ig_checkpoint(&b, m, &o, &s, ie_acc, e0, out);
        if (!rc && o.progress)
            o.progress(o.progress_user, e0 + (size_t)B, n);
    }
    if (!rc && n)
        for (size_t i = 0; i < (size_t)M * H; i++)
            out->ie[i] = (float)(ie_acc[i] / (double)n);
    free(s.mem);
    ct_an_batch_free(&b);
    free(ie_acc);
    if (rc)
        ct_attr_result_free(out);
    return rc;
}

/* Single-latent ablation (METHOD §6): the latent's decoded contribution is taken out
 * of the residual at every position and the error term stays, so a latent that does
 * not fire in a batch leaves the residual bit for bit as it was; such a batch reuses
 * the clean values instead of running the same forward again. */
#include "analysis/attribution.h"
#include "analysis/batch.h"
#include "common/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ct_ablation_result_free(ct_ablation_result *r)
{
    if (!r)
        return;
    free(r->clean_lpd);
    free(r->clean_acc);
    free(r->ablated_lpd);
    free(r->ablated_acc);
    memset(r, 0, sizeof *r);
}

/* logp(good) − logp(bad) of each sequence from the log-prob rows in b->head */
static void lpd_rows(const ct_an_batch *b, double *lpd)
{
    for (int s = 0; s < b->B; s++) {
        const float *row = b->head + (size_t)s * b->head_stride;
        lpd[s] = (double)row[b->good[s]] - (double)row[b->bad[s]];
    }
}

/* Adds a batch's examples, in order, to the sums of one (latent, checkpoint) cell. */
static void add_rows(const double *lpd, int B, double *sum_lpd, double *sum_acc)
{
    for (int s = 0; s < B; s++) {
        *sum_lpd += lpd[s];
        *sum_acc += lpd[s] > 0.0 ? 1.0 : 0.0;
    }
}

/* Does latent j fire at any real position of the batch? */
static int fires(const ct_an_batch *b, int32_t j)
{
    for (int s = 0; s < b->B; s++)
        for (int t = 0; t < b->len[s]; t++)
            if (b->f[((size_t)s * b->T + t) * b->H + j] != 0.0f)
                return 1;
    return 0;
}

/* patch = x_m − f[:, j] ⊗ W_dec[j, m] on the rows where j fires, x_m elsewhere */
static void ablated_residual(const ct_an_batch *b, int m, int32_t j, float *patch)
{
    int d = b->d, H = b->H;
    size_t N = (size_t)b->B * b->T, P = (size_t)b->cap_B * b->cap_T;
    const float *x = b->x + (size_t)m * P * d;
    const float *w = b->cc->p.W_dec + ((size_t)j * b->M + m) * d;
    memcpy(patch, x, N * d * sizeof(float));
    for (size_t r = 0; r < N; r++) {
        float a = b->f[r * H + j];
        if (a == 0.0f)
            continue;
        for (int i = 0; i < d; i++)
            patch[r * d + i] = x[r * d + i] - a * w[i];
    }
}

int ct_attr_ablate(ct_model *const *models, int M, const ct_crosscoder *cc, int layer, const ct_task_example *ex,
                   size_t n, const int32_t *latents, size_t n_latents, const ct_attr_options *opts,
                   ct_ablation_result *out)
{
    ct_attr_options o = CT_ATTR_OPTIONS_INIT;
    if (opts)
        o = *opts;
    if (!out)
        return ct_error_set(CT_EINVAL, "ablation: no result");
    memset(out, 0, sizeof *out);
    if (o.batch < 1 || o.batch > 4096)
        return ct_error_set(CT_EINVAL, "ablation: batch %d outside [1, 4096]", o.batch);
    int max_len = 1;
    int rc = ct_an_check("ablation", models, M, cc, layer);
    if (!rc)
        rc = ct_an_check_examples("ablation", models, M, ex, n, &max_len);
    if (!rc && n_latents && !latents)
        rc = ct_error_set(CT_EINVAL, "ablation: %zu latents but no array", n_latents);
    for (size_t i = 0; i < n_latents && !rc; i++)
        if (latents[i] < 0 || latents[i] >= cc->cfg.H)
            rc = ct_error_set(CT_EINVAL, "ablation: latent %d (entry %zu) outside the crosscoder's %d latents",
                              (int)latents[i], i, cc->cfg.H);
    if (rc)
        return rc;
    size_t cells = n_latents * (size_t)M;
    out->M = M;
    out->n_latents = n_latents;
    out->clean_lpd = calloc((size_t)M, sizeof(double));
    out->clean_acc = calloc((size_t)M, sizeof(double));
    out->ablated_lpd = calloc(cells + 1, sizeof(double));
    out->ablated_acc = calloc(cells + 1, sizeof(double));
    if (!out->clean_lpd || !out->clean_acc || !out->ablated_lpd || !out->ablated_acc) {
        ct_ablation_result_free(out);
        return ct_error_set(CT_ENOMEM, "ablation: out of memory");
    }
    int cap_B = n < (size_t)o.batch ? (int)(n ? n : 1) : o.batch;
    ct_an_batch b;
    rc = ct_an_batch_init(&b, models, M, cc, layer, cap_B, max_len, 1);
    float *patch = rc ? NULL : malloc((size_t)cap_B * max_len * cc->cfg.d * sizeof(float));
    double *clean = rc ? NULL : malloc((size_t)M * cap_B * sizeof(double));
    double *lpd = rc ? NULL : malloc((size_t)cap_B * sizeof(double));
    if (!rc && (!patch || !clean || !lpd))
        rc = ct_error_set(CT_ENOMEM, "ablation: out of memory");
    for (size_t e0 = 0; e0 < n && !rc; e0 += (size_t)cap_B) {
        int B = n - e0 < (size_t)cap_B ? (int)(n - e0) : cap_B;
        ct_an_batch_examples(&b, ex + e0, B);
        for (int m = 0; m < M && !rc; m++) {
            rc = ct_an_forward(&b, m, 1, NULL, 0, CT_AN_HEAD_LOGPROBS, NULL);
            if (!rc) {
                lpd_rows(&b, clean + (size_t)m * cap_B);
                add_rows(clean + (size_t)m * cap_B, B, &out->clean_lpd[m], &out->clean_acc[m]);
            }
        }
        if (!rc)
            rc = ct_an_encode(&b);
        for (size_t i = 0; i < n_latents && !rc; i++) {
            int fired = fires(&b, latents[i]);
            for (int m = 0; m < M && !rc; m++) {
                const double *v = clean + (size_t)m * cap_B;
                if (fired) {
                    ablated_residual(&b, m, latents[i], patch);
                    rc = ct_an_forward(&b, m, 0, patch, 0, CT_AN_HEAD_LOGPROBS, NULL);
                    if (rc)
                        break;
                    lpd_rows(&b, lpd);
                    v = lpd;
                }
                add_rows(v, B, &out->ablated_lpd[i * M + m], &out->ablated_acc[i * M + m]);
            }
        }
        if (!rc && o.progress)
            o.progress(o.progress_user, e0 + (size_t)B, n);
    }
    /* means over examples (NaN when there are none) */
    double inv = n ? 1.0 / (double)n : NAN;
    for (int m = 0; m < M && !rc; m++) {
        out->clean_lpd[m] *= inv;
        out->clean_acc[m] *= inv;
    }
    for (size_t c = 0; c < cells && !rc; c++) {
        out->ablated_lpd[c] *= inv;
        out->ablated_acc[c] *= inv;
    }
    free(patch);
    free(clean);
    free(lpd);
    ct_an_batch_free(&b);
    if (rc)
        ct_ablation_result_free(out);
    return rc;
}

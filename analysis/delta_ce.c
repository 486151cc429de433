/* ΔCE of METHOD §2: next-token cross-entropy with the crosscoder's reconstruction
 * x̂_m (no error term) in place of the residual at layer L, minus the clean one. The
 * mean runs over every position that has a next token (the last of each sequence has
 * none), summed per sequence in order, so batching does not change it. */
#include "analysis/attribution.h"
#include "analysis/batch.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

/* Σ of ce over the positions with a next token, sequence by sequence */
static double ce_sum(const float *ce, int B, int T)
{
    double s = 0.0;
    for (int q = 0; q < B; q++)
        for (int t = 0; t + 1 < T; t++)
            s += ce[(size_t)q * T + t];
    return s;
}

/* patch[m] = x̂_m = f·W_dec[:, m] + b_dec[m] on every row (no pads here), one
 * sequence's code at a time */
static int reconstruction(ct_an_batch *b, float *patch)
{
    int d = b->d, T = b->T;
    size_t P = (size_t)b->cap_B * b->cap_T;
    for (int q = 0; q < b->B; q++) {
        int rc = ct_an_encode_seq(b, q, b->f);
        if (rc)
            return rc;
        for (int m = 0; m < b->M; m++) {
            const float *bd = b->cc->p.b_dec + (size_t)m * d;
            float *out = patch + (size_t)m * P * d + (size_t)q * T * d;
            ct_an_decode_m(b, m, b->f, T, out);
            for (size_t r = 0; r < (size_t)T; r++)
                for (int i = 0; i < d; i++)
                    out[r * d + i] += bd[i];
        }
    }
    return 0;
}

int ct_attr_delta_ce(ct_model *const *models, int M, const ct_crosscoder *cc, int layer, const int32_t *ids,
                     int n_seq, int seq_len, const ct_attr_options *opts, double *ce_clean, double *ce_spliced)
{
    ct_attr_options o = CT_ATTR_OPTIONS_INIT;
    if (opts)
        o = *opts;
    if (!ce_clean || !ce_spliced)
        return ct_error_set(CT_EINVAL, "delta CE: no output arrays");
    if (o.batch < 1 || o.batch > 4096)
        return ct_error_set(CT_EINVAL, "delta CE: batch %d outside [1, 4096]", o.batch);
    if (n_seq < 1 || seq_len < 2 || !ids || (size_t)n_seq * seq_len > ((size_t)1 << 28))
        return ct_error_set(CT_EINVAL, "delta CE: need at least one sequence of at least 2 tokens (got %d x %d)",
                            n_seq, seq_len);
    int rc = ct_an_check("delta CE", models, M, cc, layer);
    for (int m = 0; m < M && !rc; m++) {
        const ct_model_config *c = ct_model_get_config(models[m]);
        if (c->max_positions > 0 && seq_len > c->max_positions)
            rc = ct_error_set(CT_EINVAL, "delta CE: sequences of %d tokens exceed the %d positions of model %d",
                              seq_len, c->max_positions, m);
        for (size_t i = 0; i < (size_t)n_seq * seq_len && !rc; i++)
            if (ids[i] < 0 || ids[i] >= c->vocab)
                rc = ct_error_set(CT_EINVAL, "delta CE: token %d at %zu outside the vocabulary of %d rows of model %d",
                                  (int)ids[i], i, c->vocab, m);
    }
    if (rc)
        return rc;
    int cap_B = n_seq < o.batch ? n_seq : o.batch;
    ct_an_batch b;
    rc = ct_an_batch_init(&b, models, M, cc, layer, cap_B, seq_len, 0);
    size_t P = (size_t)cap_B * seq_len;
    float *patch = rc ? NULL : malloc((size_t)M * P * cc->cfg.d * sizeof(float));
    float *ce = rc ? NULL : malloc(P * sizeof(float));
    double *clean = calloc((size_t)M, sizeof(double)), *spliced = calloc((size_t)M, sizeof(double));
    if (!rc && (!patch || !ce || !clean || !spliced))
        rc = ct_error_set(CT_ENOMEM, "delta CE: out of memory");
    for (int s0 = 0; s0 < n_seq && !rc; s0 += cap_B) {
        int B = n_seq - s0 < cap_B ? n_seq - s0 : cap_B;
        ct_an_batch_sequences(&b, ids + (size_t)s0 * seq_len, B, seq_len);
        for (int m = 0; m < M && !rc; m++) {
            rc = ct_an_forward(&b, m, 1, NULL, 0, CT_AN_HEAD_CE, ce);
            if (!rc)
                clean[m] += ce_sum(ce, B, seq_len);
        }
        if (!rc)
            rc = reconstruction(&b, patch);
        for (int m = 0; m < M && !rc; m++) {
            rc = ct_an_forward(&b, m, 0, patch + (size_t)m * P * cc->cfg.d, 0, CT_AN_HEAD_CE, ce);
            if (!rc)
                spliced[m] += ce_sum(ce, B, seq_len);
        }
        if (!rc && o.progress)
            o.progress(o.progress_user, (size_t)(s0 + B), (size_t)n_seq);
    }
    double count = (double)n_seq * (seq_len - 1);
    for (int m = 0; m < M && !rc; m++) {
        ce_clean[m] = clean[m] / count;
        ce_spliced[m] = spliced[m] / count;
    }
    free(patch);
    free(ce);
    free(clean);
    free(spliced);
    ct_an_batch_free(&b);
    return rc;
}

/* The shared batch of the analysis passes: checks, padding, capture and encoding. */
#include "analysis/batch.h"
#include "common/error.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

int ct_an_check(const char *what, ct_model *const *models, int M, const ct_crosscoder *cc, int layer)
{
    if (!models || !cc)
        return ct_error_set(CT_EINVAL, "%s: no models or no crosscoder", what);
    if (M != cc->cfg.M)
        return ct_error_set(CT_EINVAL, "%s: %d models for a crosscoder over %d checkpoints", what, M, cc->cfg.M);
    if (!cc->folded)
        return ct_error_set(CT_EINVAL, "%s: the crosscoder is not folded (ct_cc_fold): it would read raw "
                            "activations with weights for normalised ones", what);
    for (int m = 0; m < M; m++) {
        if (!models[m])
            return ct_error_set(CT_EINVAL, "%s: model %d is missing", what, m);
        const ct_model_config *c = ct_model_get_config(models[m]);
        if (c->hidden != cc->cfg.d)
            return ct_error_set(CT_EINVAL, "%s: model %d has width %d, the crosscoder reads %d", what, m,
                                c->hidden, cc->cfg.d);
        if (layer < 0 || layer >= c->n_layer)
            return ct_error_set(CT_EINVAL, "%s: layer %d outside the %d blocks of model %d", what, layer,
                                c->n_layer, m);
    }
    return 0;
}

int ct_an_check_examples(const char *what, ct_model *const *models, int M, const ct_task_example *ex,
                         size_t n, int *max_len)
{
    *max_len = 1;
    if (n && !ex)
        return ct_error_set(CT_EINVAL, "%s: %zu examples but no array", what, n);
    for (int m = 0; m < M; m++) {
        const ct_model_config *c = ct_model_get_config(models[m]);
        for (size_t i = 0; i < n; i++) {
            const ct_task_example *x = &ex[i];
            ct_task_fit fit = x->n_prefix < 1 || !x->prefix || x->n_prefix > (1u << 20)
                                  ? CT_TASK_TOO_LONG
                                  : ct_task_example_fit(x, c->vocab, c->max_positions);
            if (fit == CT_TASK_TOO_LONG)
                return ct_error_set(CT_EINVAL, "%s: example %zu has %zu prefix tokens; model %d takes 1 to %d", what,
                                    i, x->n_prefix, m, c->max_positions > 0 ? c->max_positions : 1 << 20);
            if (fit == CT_TASK_OUT_OF_VOCAB)
                return ct_error_set(CT_EINVAL, "%s: example %zu has a token id outside the vocabulary of %d rows of "
                                    "model %d", what, i, c->vocab, m);
            if ((int)x->n_prefix > *max_len)
                *max_len = (int)x->n_prefix;
        }
    }
    return 0;
}

int ct_an_batch_init(ct_an_batch *b, ct_model *const *models, int M, const ct_crosscoder *cc, int layer,
                     int cap_B, int cap_T, int whole_f)
{
    memset(b, 0, sizeof *b);
    b->models = models;
    b->cc = cc;
    b->M = M;
    b->d = cc->cfg.d;
    b->H = cc->cfg.H;
    b->layer = layer;
    b->cap_B = cap_B;
    b->cap_T = cap_T;
    b->vocab = 0;
    for (int m = 0; m < M; m++) {
        int v = ct_model_get_config(models[m])->vocab;
        b->vocab = v > b->vocab ? v : b->vocab;
    }
    size_t P = (size_t)cap_B * cap_T, d = (size_t)b->d;
    /* One allocation, pointers into it (floats first, so every part stays aligned). */
    size_t f_rows = whole_f ? P : (size_t)cap_T;
    size_t nf = (size_t)M * P * d + f_rows * b->H + (size_t)cap_T * M * d + (size_t)cap_B * b->vocab;
    size_t ni = P + 3 * (size_t)cap_B;
    b->mem = calloc(nf * sizeof(float) + ni * sizeof(int32_t) + (size_t)cap_B * sizeof(int), 1);
    if (!b->mem)
        return ct_error_set(CT_ENOMEM, "analysis: out of memory for a batch of %d x %d positions", cap_B, cap_T);
    float *p = b->mem;
    b->x = p, p += (size_t)M * P * d;
    b->f = p, p += f_rows * b->H;
    b->stack = p, p += (size_t)cap_T * M * d;
    b->head = p, p += (size_t)cap_B * b->vocab;
    int32_t *q = (int32_t *)p;
    b->ids = q, q += P;
    b->rows = q, q += cap_B;
    b->good = q, q += cap_B;
    b->bad = q, q += cap_B;
    b->len = (int *)q;
    return 0;
}

void ct_an_batch_free(ct_an_batch *b)
{
    free(b->mem);
    b->mem = NULL;
}

void ct_an_batch_examples(ct_an_batch *b, const ct_task_example *ex, int B)
{
    int T = 1;
    for (int s = 0; s < B; s++)
        T = (int)ex[s].n_prefix > T ? (int)ex[s].n_prefix : T;
    b->B = B;
    b->T = T;
    for (int s = 0; s < B; s++) {
        int n = (int)ex[s].n_prefix;
        int32_t *row = b->ids + (size_t)s * T;
        memcpy(row, ex[s].prefix, (size_t)n * sizeof *row);
        for (int t = n; t < T; t++)
            row[t] = ex[s].prefix[n - 1];
        b->len[s] = n;
        b->rows[s] = s * T + n - 1;
        b->good[s] = ex[s].good;
        b->bad[s] = ex[s].bad;
    }
}

void ct_an_batch_sequences(ct_an_batch *b, const int32_t *ids, int B, int T)
{
    b->B = B;
    b->T = T;
    memcpy(b->ids, ids, (size_t)B * T * sizeof *ids);
    for (int s = 0; s < B; s++) {
        b->len[s] = T;
        b->rows[s] = s * T + T - 1;
    }
}

int ct_an_forward(ct_an_batch *b, int m, int capture, const float *patch, int grad, ct_an_head head, float *ce)
{
    float *cap = b->x + (size_t)m * b->cap_B * b->cap_T * b->d;
    ct_forward_args a = CT_FORWARD_ARGS_INIT;
    a.n_seq = b->B;
    a.seq_len = b->T;
    a.ids = b->ids;
    if (capture) {
        a.n_capture = 1;
        a.capture_layers = &b->layer;
        a.capture = &cap;
    }
    if (patch) {
        a.patch_layer = b->layer;
        a.patch = patch;
    }
    a.grad_layer = grad ? b->layer : -1;
    b->head_stride = ct_model_get_config(b->models[m])->vocab;
    if (head == CT_AN_HEAD_CE) {
        a.ce = ce;
    } else if (head != CT_AN_HEAD_NONE || grad) {
        a.n_rows = b->B;
        a.rows = b->rows;
        if (head == CT_AN_HEAD_LOGITS)
            a.logits = b->head;
        else if (head == CT_AN_HEAD_LOGPROBS)
            a.logprobs = b->head;
    }
    return ct_model_forward(b->models[m], &a);
}

int ct_an_encode_seq(ct_an_batch *b, int s, float *f)
{
    int M = b->M, d = b->d, T = b->T;
    size_t P = (size_t)b->cap_B * b->cap_T;
    for (int t = 0; t < b->len[s]; t++)
        for (int m = 0; m < M; m++)
            memcpy(b->stack + ((size_t)t * M + m) * d, b->x + (size_t)m * P * d + ((size_t)s * T + t) * d,
                   (size_t)d * sizeof(float));
    return ct_cc_encode(b->cc, b->stack, (size_t)b->len[s], f);
}

int ct_an_encode(ct_an_batch *b)
{
    size_t H = (size_t)b->H, T = (size_t)b->T;
    memset(b->f, 0, (size_t)b->B * T * H * sizeof(float));
    for (int s = 0; s < b->B; s++) {
        int rc = ct_an_encode_seq(b, s, b->f + (size_t)s * T * H);
        if (rc)
            return rc;
    }
    return 0;
}

void ct_an_decode_m(const ct_an_batch *b, int m, const float *f, int n, float *out)
{
    int M = b->M, d = b->d, H = b->H;
    /* W_dec[:, m, :] is an [H, d] matrix with row stride M*d */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, H, 1.0f, f, H, b->cc->p.W_dec + (size_t)m * d,
                M * d, 0.0f, out, d);
}

/* The forward pass: embeddings, decoder blocks (GPT-NeoX parallel or sequential
 * residual, BLOOM, OLMo-1), capture, patching and the chunked output head. */
#include "models/forward/model_internal.h"

#include "common/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TRY(x)                                                                               \
    do {                                                                                     \
        int rc_ = (x);                                                                       \
        if (rc_)                                                                             \
            return rc_;                                                                      \
    } while (0)

/* cos/sin [T, rot/2] as transformers builds them in fp32: inv_freq = 1 / base^(2i/rot),
 * angle = t * inv_freq (rounded to fp32 like torch's outer product). */
static int rope_tables(ct_model *m, int T)
{
    int half = m->rot / 2;
    size_t n = (size_t)T * half;
    float *h = malloc(2 * n * sizeof(float));
    if (!h)
        return ct_error_set(CT_ENOMEM, "model: out of memory");
    for (int i = 0; i < half; i++) {
        float e = (float)(2 * i) / (float)m->rot;
        float inv = 1.0f / (float)pow((double)m->cfg.rotary_base, (double)e);
        for (int t = 0; t < T; t++) {
            float a = (float)t * inv;
            h[(size_t)t * half + i] = (float)cos((double)a);
            h[n + (size_t)t * half + i] = (float)sin((double)a);
        }
    }
    int rc = ct_kern_upload(m->k, m->cos, h, n * sizeof(float));
    if (!rc)
        rc = ct_kern_upload(m->k, m->sin, h + n, n * sizeof(float));
    free(h);
    return rc;
}

static int attention_fwd(ct_model *m, const ct_layer_w *w, ct_layer_act *a, const float *x,
                         int B, int T)
{
    ct_kern *k = m->k;
    int N = B * T, C = m->C;
    TRY(ct_kern_layernorm_fwd(k, a->ln1, a->ln1_mean, a->ln1_rstd, x, w->ln1_w, w->ln1_b, N, C,
                              m->eps));
    TRY(ct_kern_matmul_fwd(k, a->qkv, a->ln1, w->qkv_w, w->qkv_b, N, C, 3 * C, 0));
    TRY(ct_kern_qkv_split_fwd(k, a->q, a->k, a->v, a->qkv, B, T, m->nh, m->hd,
                              m->olmo ? m->cfg.clip_qkv : 0.0f));
    if (m->rot) {
        TRY(ct_kern_rope_fwd(k, a->q, m->cos, m->sin, B, m->nh, T, m->hd, m->rot));
        TRY(ct_kern_rope_fwd(k, a->k, m->cos, m->sin, B, m->nh, T, m->hd, m->rot));
    }
    return ct_kern_attention_fwd(k, a->atty, a->probs, a->q, a->k, a->v,
                                 m->bloom ? m->slopes : NULL, B, T, m->nh, m->hd, m->scale);
}

/* out += mlp(ln2(x)) */
static int mlp_fwd(ct_model *m, const ct_layer_w *w, ct_layer_act *a, const float *x, float *out,
                   int N)
{
    ct_kern *k = m->k;
    int C = m->C;
    TRY(ct_kern_layernorm_fwd(k, a->ln2, a->ln2_mean, a->ln2_rstd, x, w->ln2_w, w->ln2_b, N, C,
                              m->eps));
    TRY(ct_kern_matmul_fwd(k, a->fch, a->ln2, w->fc_w, w->fc_b, N, C, m->FI, 0));
    if (m->olmo)
        TRY(ct_kern_swiglu_fwd(k, a->fca, a->fch, N, m->I));
    else
        TRY(ct_kern_gelu_fwd(k, a->fca, a->fch, (size_t)N * m->I, m->gelu));
    return ct_kern_matmul_fwd(k, out, a->fca, w->fcp_w, w->fcp_b, N, m->I, C, 1);
}

static int block_fwd(ct_model *m, int l, const float *x, float *out, int B, int T)
{
    const ct_layer_w *w = &m->lw[l];
    ct_layer_act *a = &m->la[ct_model_act_slot(m, l)];
    size_t bytes = (size_t)B * T * m->C * sizeof(float);
    int N = B * T;
    TRY(attention_fwd(m, w, a, x, B, T));
    if (m->parallel) {
        /* GPT-NeoX parallel residual: x + attn(ln1(x)) + mlp(ln2(x)) */
        TRY(ct_kern_copy(m->k, out, x, bytes));
        TRY(ct_kern_matmul_fwd(m->k, out, a->atty, w->proj_w, w->proj_b, N, m->C, m->C, 1));
        return mlp_fwd(m, w, a, x, out, N);
    }
    TRY(ct_kern_copy(m->k, a->mid, x, bytes));
    TRY(ct_kern_matmul_fwd(m->k, a->mid, a->atty, w->proj_w, w->proj_b, N, m->C, m->C, 1));
    TRY(ct_kern_copy(m->k, out, a->mid, bytes));
    return mlp_fwd(m, w, a, a->mid, out, N);
}

static int check_args(const ct_model *m, const ct_forward_args *a)
{
    if (a->n_seq <= 0 || a->seq_len <= 0 || !a->ids)
        return ct_error_set(CT_EINVAL, "forward: need n_seq > 0, seq_len > 0 and ids (got %d x %d)",
                            a->n_seq, a->seq_len);
    if ((size_t)a->n_seq * a->seq_len > (size_t)1 << 28)
        return ct_error_set(CT_EINVAL, "forward: %d x %d tokens is too many", a->n_seq,
                            a->seq_len);
    size_t N = (size_t)a->n_seq * a->seq_len;
    for (size_t i = 0; i < N; i++)
        if (a->ids[i] < 0 || a->ids[i] >= m->V)
            return ct_error_set(CT_EINVAL, "forward: token id %d at position %zu outside the "
                                "vocabulary [0, %d)", (int)a->ids[i], i, m->V);
    if (a->n_capture < 0 || (a->n_capture > 0 && (!a->capture_layers || !a->capture)))
        return ct_error_set(CT_EINVAL, "forward: %d captures without layers or buffers",
                            a->n_capture);
    for (int i = 0; i < a->n_capture; i++)
        if (a->capture_layers[i] < 0 || a->capture_layers[i] >= m->L || !a->capture[i])
            return ct_error_set(CT_EINVAL, "forward: capture %d: block %d outside [0, %d) or "
                                "no buffer", i, a->capture_layers[i], m->L);
    if (a->patch_layer < -1 || a->patch_layer >= m->L || (a->patch_layer >= 0 && !a->patch))
        return ct_error_set(CT_EINVAL, "forward: patch block %d outside [0, %d) or no patch",
                            a->patch_layer, m->L);
    if (a->grad_layer < -1 || a->grad_layer >= m->L)
        return ct_error_set(CT_EINVAL, "forward: grad block %d outside [0, %d)", a->grad_layer,
                            m->L);
    if (a->grad_layer >= 0 && a->grad_layer < a->patch_layer)
        return ct_error_set(CT_EINVAL, "forward: gradient at block %d below the patch at block "
                            "%d is always zero", a->grad_layer, a->patch_layer);
    if (a->n_rows < 0 || (a->n_rows > 0 && !a->rows))
        return ct_error_set(CT_EINVAL, "forward: %d head rows without a row list", a->n_rows);
    for (int i = 0; i < a->n_rows; i++)
        if (a->rows[i] < 0 || (size_t)a->rows[i] >= N)
            return ct_error_set(CT_EINVAL, "forward: head row %d is %d, outside [0, %zu)", i,
                                (int)a->rows[i], N);
    return 0;
}

/* After block l (or when block l is skipped because of a patch): apply the patch and
 * hand out captures. */
static int after_block(ct_model *m, const ct_forward_args *a, int l, size_t bytes)
{
    float *r = m->res[ct_model_res_slot(m, l)];
    if (l == a->patch_layer)
        TRY(ct_kern_upload(m->k, r, a->patch, bytes));
    for (int i = 0; i < a->n_capture; i++)
        if (a->capture_layers[i] == l)
            TRY(ct_kern_download(m->k, a->capture[i], r, bytes));
    return 0;
}

static int head_fwd(ct_model *m, const ct_forward_args *a, int R)
{
    ct_kern *k = m->k;
    int C = m->C, V = m->V, B = a->n_seq, T = a->seq_len;
    int32_t *tg = malloc((size_t)R * sizeof *tg);
    if (!tg)
        return ct_error_set(CT_ENOMEM, "model: out of memory");
    for (int r = 0; r < R; r++) {
        int row = m->rows_host[r], t = row % T;
        tg[r] = t + 1 < T ? a->ids[row + 1] : -1;
    }
    (void)B;
    int rc = ct_kern_upload(k, m->rows, m->rows_host, (size_t)R * sizeof(int32_t));
    if (!rc)
        rc = ct_kern_upload(k, m->targets, tg, (size_t)R * sizeof(int32_t));
    free(tg);
    TRY(rc);
    TRY(ct_kern_gather_rows(k, m->xr, m->res[ct_model_res_slot(m, m->L - 1)], m->rows, R, C));
    TRY(ct_kern_layernorm_fwd(k, m->lnf, m->lnf_mean, m->lnf_rstd, m->xr, m->lnf_w, m->lnf_b, R,
                              C, m->eps));
    if (!a->logits && !a->logprobs && !a->ce)
        return 0;
    for (int r0 = 0; r0 < R; r0 += m->chunk_rows) {
        int rc_n = R - r0 < m->chunk_rows ? R - r0 : m->chunk_rows;
        size_t cb = (size_t)rc_n * V * sizeof(float);
        TRY(ct_kern_matmul_fwd(k, m->chunk, m->lnf + (size_t)r0 * C, m->head_w, NULL, rc_n, C, V,
                               0));
        if (a->logits)
            TRY(ct_kern_download(k, a->logits + (size_t)r0 * V, m->chunk, cb));
        if (a->ce) {
            TRY(ct_kern_cross_entropy(k, m->ce, m->chunk, m->targets + r0, rc_n, V));
            TRY(ct_kern_download(k, a->ce + r0, m->ce, (size_t)rc_n * sizeof(float)));
        }
        if (a->logprobs) {
            TRY(ct_kern_logsoftmax(k, m->chunk, m->chunk, rc_n, V));
            TRY(ct_kern_download(k, a->logprobs + (size_t)r0 * V, m->chunk, cb));
        }
    }
    return 0;
}

int ct_model_forward(ct_model *m, const ct_forward_args *a)
{
    m->fwd_ok = 0;
    TRY(check_args(m, a));
    int B = a->n_seq, T = a->seq_len, N = B * T;
    int need_head = a->logits || a->logprobs || a->ce || a->grad_layer >= 0;
    int R = need_head ? (a->n_rows > 0 ? a->n_rows : N) : 0;
    int last = need_head ? m->L - 1 : -1, min_cap = m->L;
    for (int i = 0; i < a->n_capture; i++) {
        if (a->capture_layers[i] > last)
            last = a->capture_layers[i];
        if (a->capture_layers[i] < min_cap)
            min_cap = a->capture_layers[i];
    }
    if (last < 0)
        return 0; /* nothing asked for */
    /* With a patch, the blocks up to it cannot change anything above it. */
    int start = (a->patch_layer >= 0 && min_cap >= a->patch_layer) ? a->patch_layer + 1 : 0;

    TRY(ct_model_arena_plan(m, B, T, R, a->grad_layer));
    free(m->rows_host);
    m->rows_host = R ? malloc((size_t)R * sizeof(int32_t)) : NULL;
    if (R && !m->rows_host)
        return ct_error_set(CT_ENOMEM, "model: out of memory");
    for (int r = 0; r < R; r++)
        m->rows_host[r] = a->n_rows > 0 ? a->rows[r] : r;
    if (m->rot)
        TRY(rope_tables(m, T));

    size_t bytes = (size_t)N * m->C * sizeof(float);
    if (start == 0) {
        float *e = m->res[ct_model_res_slot(m, -1)];
        TRY(ct_kern_upload(m->k, m->ids, a->ids, (size_t)N * sizeof(int32_t)));
        if (m->bloom) {
            float *raw = m->la[0].ln1; /* free until block 0 runs */
            TRY(ct_kern_embedding_fwd(m->k, raw, m->ids, m->wte, N, m->C));
            TRY(ct_kern_layernorm_fwd(m->k, e, m->la[0].ln1_mean, m->la[0].ln1_rstd, raw,
                                      m->emb_ln_w, m->emb_ln_b, N, m->C, m->eps));
        } else {
            TRY(ct_kern_embedding_fwd(m->k, e, m->ids, m->wte, N, m->C));
        }
    } else {
        TRY(after_block(m, a, start - 1, bytes));
    }
    for (int l = start; l <= last; l++) {
        TRY(block_fwd(m, l, m->res[ct_model_res_slot(m, l - 1)], m->res[ct_model_res_slot(m, l)],
                      B, T));
        TRY(after_block(m, a, l, bytes));
    }
    if (need_head)
        TRY(head_fwd(m, a, R));
    TRY(ct_kern_sync(m->k));
    m->B = B;
    m->T = T;
    m->R = R;
    m->patch_layer = a->patch_layer;
    m->fwd_ok = a->grad_layer >= 0;
    return 0;
}

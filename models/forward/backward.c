/* The backward pass from d(metric)/d(logits) at the head rows down to the residual at
 * grad_layer. Each op's backward can also produce its parameter gradient (the kernels
 * take dw/db); the model passes NULL until a training task needs them. */
#include "models/forward/model_internal.h"

#include "common/error.h"

#include <stdlib.h>
#include <string.h>

#define TRY(x)                                                                               \
    do {                                                                                     \
        int rc_ = (x);                                                                       \
        if (rc_)                                                                             \
            return rc_;                                                                      \
    } while (0)

/* dx += d/dx of attn(ln1(x)) given d_out, the gradient at the attention's output. */
static int attention_bwd(ct_model *m, const ct_layer_w *w, ct_layer_act *a, const float *x,
                         const float *d_out, float *dx)
{
    ct_kern *k = m->k;
    int B = m->B, T = m->T, N = B * T, C = m->C;
    TRY(ct_kern_matmul_bwd(k, m->datty, NULL, NULL, d_out, a->atty, w->proj_w, N, C, C, 0));
    TRY(ct_kern_attention_bwd(k, m->dq, m->dk, m->dv, m->datty, a->probs, a->q, a->k, a->v, B, T,
                              m->nh, m->hd, m->scale));
    if (m->rot) {
        TRY(ct_kern_rope_bwd(k, m->dq, m->cos, m->sin, B, m->nh, T, m->hd, m->rot));
        TRY(ct_kern_rope_bwd(k, m->dk, m->cos, m->sin, B, m->nh, T, m->hd, m->rot));
    }
    TRY(ct_kern_qkv_split_bwd(k, m->dqkv, m->dq, m->dk, m->dv, a->qkv, B, T, m->nh, m->hd,
                              m->olmo ? m->cfg.clip_qkv : 0.0f));
    TRY(ct_kern_matmul_bwd(k, m->dln, NULL, NULL, m->dqkv, a->ln1, w->qkv_w, N, C, 3 * C, 0));
    return ct_kern_layernorm_bwd(k, dx, NULL, NULL, m->dln, x, w->ln1_w, a->ln1_mean, a->ln1_rstd,
                                 N, C);
}

/* dx += d/dx of mlp(ln2(x)) given d_out. */
static int mlp_bwd(ct_model *m, const ct_layer_w *w, ct_layer_act *a, const float *x,
                   const float *d_out, float *dx)
{
    ct_kern *k = m->k;
    int N = m->B * m->T, C = m->C;
    TRY(ct_kern_matmul_bwd(k, m->dfca, NULL, NULL, d_out, a->fca, w->fcp_w, N, m->I, C, 0));
    if (m->olmo)
        TRY(ct_kern_swiglu_bwd(k, m->dfch, m->dfca, a->fch, N, m->I));
    else
        TRY(ct_kern_gelu_bwd(k, m->dfch, a->fch, m->dfca, (size_t)N * m->I, m->gelu));
    TRY(ct_kern_matmul_bwd(k, m->dln, NULL, NULL, m->dfch, a->ln2, w->fc_w, N, C, m->FI, 0));
    return ct_kern_layernorm_bwd(k, dx, NULL, NULL, m->dln, x, w->ln2_w, a->ln2_mean, a->ln2_rstd,
                                 N, C);
}

static int block_bwd(ct_model *m, int l, const float *dout, float *dx)
{
    const ct_layer_w *w = &m->lw[l];
    ct_layer_act *a = &m->la[ct_model_act_slot(m, l)];
    const float *x = m->res[ct_model_res_slot(m, l - 1)];
    size_t bytes = (size_t)m->B * m->T * m->C * sizeof(float);
    if (m->parallel) {
        TRY(ct_kern_copy(m->k, dx, dout, bytes));
        TRY(mlp_bwd(m, w, a, x, dout, dx));
        return attention_bwd(m, w, a, x, dout, dx);
    }
    TRY(ct_kern_copy(m->k, m->dmid, dout, bytes));
    TRY(mlp_bwd(m, w, a, a->mid, dout, m->dmid));
    TRY(ct_kern_copy(m->k, dx, m->dmid, bytes));
    return attention_bwd(m, w, a, x, m->dmid, dx);
}

int ct_model_backward(ct_model *m, const float *dlogits, float *dresid)
{
    if (!m->fwd_ok)
        return ct_error_set(CT_EINVAL, "backward: the last forward kept no activations "
                            "(set grad_layer) or failed");
    if (!dlogits || !dresid)
        return ct_error_set(CT_EINVAL, "backward: dlogits and dresid are required");
    ct_kern *k = m->k;
    int R = m->R, C = m->C, V = m->V, N = m->B * m->T;
    for (int r0 = 0; r0 < R; r0 += m->chunk_rows) {
        int n = R - r0 < m->chunk_rows ? R - r0 : m->chunk_rows;
        TRY(ct_kern_upload(k, m->chunk, dlogits + (size_t)r0 * V, (size_t)n * V * sizeof(float)));
        TRY(ct_kern_matmul_bwd(k, m->dlnf + (size_t)r0 * C, NULL, NULL, m->chunk,
                               m->lnf + (size_t)r0 * C, m->head_w, n, C, V, 0));
    }
    TRY(ct_kern_zero(k, m->dxr, (size_t)R * C * sizeof(float)));
    TRY(ct_kern_layernorm_bwd(k, m->dxr, NULL, NULL, m->dlnf, m->xr, m->lnf_w, m->lnf_mean,
                              m->lnf_rstd, R, C));
    int cur = 0;
    TRY(ct_kern_zero(k, m->dres[cur], (size_t)N * C * sizeof(float)));
    TRY(ct_kern_scatter_add_rows(k, m->dres[cur], m->dxr, m->rows, R, C));
    for (int l = m->L - 1; l > m->grad_layer; l--) {
        TRY(block_bwd(m, l, m->dres[cur], m->dres[cur ^ 1]));
        cur ^= 1;
    }
    TRY(ct_kern_download(k, dresid, m->dres[cur], (size_t)N * C * sizeof(float)));
    return ct_kern_sync(k);
}

int ct_model_backward_logit_diff(ct_model *m, const int32_t *plus, const int32_t *minus,
                                 float *dresid)
{
    if (!m->fwd_ok)
        return ct_error_set(CT_EINVAL, "backward: the last forward kept no activations "
                            "(set grad_layer) or failed");
    size_t n = (size_t)m->R * m->V;
    for (int r = 0; r < m->R; r++)
        if ((plus && (plus[r] < 0 || plus[r] >= m->V)) ||
            (minus && (minus[r] < 0 || minus[r] >= m->V)))
            return ct_error_set(CT_EINVAL, "backward: token of row %d outside the vocabulary", r);
    float *d = calloc(n, sizeof(float));
    if (!d)
        return ct_error_set(CT_ENOMEM, "backward: out of memory");
    for (int r = 0; r < m->R; r++) {
        if (plus)
            d[(size_t)r * m->V + plus[r]] += 1.0f;
        if (minus)
            d[(size_t)r * m->V + minus[r]] -= 1.0f;
    }
    int rc = ct_model_backward(m, d, dresid);
    free(d);
    return rc;
}

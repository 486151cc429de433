/* The backward pass from d(metric)/d(logits) at the head rows down to the residual at
 * grad_layer, and the training backward from the mean next-token cross-entropy to every
 * parameter. Parameter gradients use one layout with the weights: the gradient of the
 * tensor at params + o lives at grads + o, so a ct_layer_w of gradient pointers is the
 * weights' own pointers shifted. */
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

/* dx += d/dx of attn(ln1(x)) given d_out, the gradient at the attention's output; the
 * weights' gradients are added into g when it is not NULL. */
static int attention_bwd(ct_model *m, const ct_layer_w *w, const ct_layer_w *g, ct_layer_act *a,
                         const float *x, const float *d_out, float *dx)
{
    static const ct_layer_w none;
    if (!g)
        g = &none;
    ct_kern *k = m->k;
    int B = m->B, T = m->T, N = B * T, C = m->C;
    TRY(ct_kern_matmul_bwd(k, m->datty, g->proj_w, g->proj_b, d_out, a->atty, w->proj_w, N, C, C,
                           0));
    TRY(ct_kern_attention_bwd(k, m->dq, m->dk, m->dv, m->datty, a->probs, a->q, a->k, a->v, B, T,
                              m->nh, m->hd, m->scale));
    if (m->rot) {
        TRY(ct_kern_rope_bwd(k, m->dq, m->cos, m->sin, B, m->nh, T, m->hd, m->rot));
        TRY(ct_kern_rope_bwd(k, m->dk, m->cos, m->sin, B, m->nh, T, m->hd, m->rot));
    }
    TRY(ct_kern_qkv_split_bwd(k, m->dqkv, m->dq, m->dk, m->dv, a->qkv, B, T, m->nh, m->hd,
                              m->olmo ? m->cfg.clip_qkv : 0.0f));
    TRY(ct_kern_matmul_bwd(k, m->dln, g->qkv_w, g->qkv_b, m->dqkv, a->ln1, w->qkv_w, N, C, 3 * C,
                           0));
    return ct_kern_layernorm_bwd(k, dx, g->ln1_w, g->ln1_b, m->dln, x, w->ln1_w, a->ln1_mean,
                                 a->ln1_rstd, N, C);
}

/* dx += d/dx of mlp(ln2(x)) given d_out (weights' gradients into g as above). */
static int mlp_bwd(ct_model *m, const ct_layer_w *w, const ct_layer_w *g, ct_layer_act *a,
                   const float *x, const float *d_out, float *dx)
{
    static const ct_layer_w none;
    if (!g)
        g = &none;
    ct_kern *k = m->k;
    int N = m->B * m->T, C = m->C;
    TRY(ct_kern_matmul_bwd(k, m->dfca, g->fcp_w, g->fcp_b, d_out, a->fca, w->fcp_w, N, m->I, C,
                           0));
    if (m->olmo)
        TRY(ct_kern_swiglu_bwd(k, m->dfch, m->dfca, a->fch, N, m->I));
    else
        TRY(ct_kern_gelu_bwd(k, m->dfch, a->fch, m->dfca, (size_t)N * m->I, m->gelu));
    TRY(ct_kern_matmul_bwd(k, m->dln, g->fc_w, g->fc_b, m->dfch, a->ln2, w->fc_w, N, C, m->FI,
                           0));
    return ct_kern_layernorm_bwd(k, dx, g->ln2_w, g->ln2_b, m->dln, x, w->ln2_w, a->ln2_mean,
                                 a->ln2_rstd, N, C);
}

static int block_bwd(ct_model *m, int l, const float *dout, float *dx, const ct_layer_w *g)
{
    const ct_layer_w *w = &m->lw[l];
    ct_layer_act *a = &m->la[ct_model_act_slot(m, l)];
    const float *x = m->res[ct_model_res_slot(m, l - 1)];
    size_t bytes = (size_t)m->B * m->T * m->C * sizeof(float);
    if (m->parallel) {
        TRY(ct_kern_copy(m->k, dx, dout, bytes));
        TRY(mlp_bwd(m, w, g, a, x, dout, dx));
        return attention_bwd(m, w, g, a, x, dout, dx);
    }
    TRY(ct_kern_copy(m->k, m->dmid, dout, bytes));
    TRY(mlp_bwd(m, w, g, a, a->mid, dout, m->dmid));
    TRY(ct_kern_copy(m->k, dx, m->dmid, bytes));
    return attention_bwd(m, w, g, a, x, m->dmid, dx);
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
        TRY(block_bwd(m, l, m->dres[cur], m->dres[cur ^ 1], NULL));
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

static float *grad_of(const ct_model *m, float *grads, const float *p)
{
    return p ? grads + (p - m->params) : NULL;
}

static ct_layer_w layer_grads(const ct_model *m, float *grads, int l)
{
    const ct_layer_w *w = &m->lw[l];
    ct_layer_w g;
    g.ln1_w = grad_of(m, grads, w->ln1_w);
    g.ln1_b = grad_of(m, grads, w->ln1_b);
    g.qkv_w = grad_of(m, grads, w->qkv_w);
    g.qkv_b = grad_of(m, grads, w->qkv_b);
    g.proj_w = grad_of(m, grads, w->proj_w);
    g.proj_b = grad_of(m, grads, w->proj_b);
    g.ln2_w = grad_of(m, grads, w->ln2_w);
    g.ln2_b = grad_of(m, grads, w->ln2_b);
    g.fc_w = grad_of(m, grads, w->fc_w);
    g.fc_b = grad_of(m, grads, w->fc_b);
    g.fcp_w = grad_of(m, grads, w->fcp_w);
    g.fcp_b = grad_of(m, grads, w->fcp_b);
    return g;
}

/* Turns a chunk of logits (host memory) into d(mean CE)/d(logits) in place: softmax
 * minus the one-hot target, times 1/count; rows without a target get zero. Each row's
 * loss goes to loss[r]. The sums run in index order per row. */
static void ce_grad_rows(float *x, const int32_t *targets, double *loss, int n, int V,
                         float inv_count)
{
#pragma omp parallel for schedule(static)
    for (int r = 0; r < n; r++) {
        float *row = x + (size_t)r * V;
        int t = targets[r];
        if (t < 0) {
            memset(row, 0, (size_t)V * sizeof(float));
            loss[r] = 0.0;
            continue;
        }
        float mx = row[0];
        for (int i = 1; i < V; i++)
            mx = row[i] > mx ? row[i] : mx;
        float xt = row[t] - mx;
        double s = 0;
        for (int i = 0; i < V; i++) {
            row[i] = expf(row[i] - mx);
            s += row[i];
        }
        float inv = (float)(1.0 / s);
        for (int i = 0; i < V; i++)
            row[i] = row[i] * inv * inv_count;
        row[t] -= inv_count;
        loss[r] = log(s) - (double)xt;
    }
}

int ct_model_backward_params(ct_model *m, const int32_t *targets, float *grads, double *loss)
{
    if (m->cfg.arch != CT_ARCH_GPT_NEOX)
        return ct_error_set(CT_EUNSUPPORTED, "backward: parameter gradients are implemented "
                            "for GPT-NeoX only");
    int N = m->B * m->T;
    if (!m->fwd_ok || !m->keep_all || m->grad_layer != 0 || m->R != N || m->patch_layer >= 0)
        return ct_error_set(CT_EINVAL, "backward: parameter gradients need a training forward "
                            "(keep_all, grad_layer 0, every row, no patch)");
    if (!targets || !grads || !loss)
        return ct_error_set(CT_EINVAL, "backward: targets, grads and loss are required");
    ct_kern *k = m->k;
    int C = m->C, V = m->V, R = m->R;
    long count = 0;
    for (int r = 0; r < R; r++) {
        if (targets[r] >= V)
            return ct_error_set(CT_EINVAL, "backward: target %d of row %d outside the "
                                "vocabulary [0, %d)", (int)targets[r], r, V);
        count += targets[r] >= 0;
    }
    if (count == 0)
        return ct_error_set(CT_EINVAL, "backward: no row has a target");
    int on_host = ct_kern_device(k) == CT_DEVICE_CPU;
    double *row_loss = malloc((size_t)R * sizeof(double));
    float *host = on_host ? NULL : malloc((size_t)m->chunk_rows * V * sizeof(float));
    if (!row_loss || (!on_host && !host)) {
        free(row_loss);
        free(host);
        return ct_error_set(CT_ENOMEM, "backward: out of memory");
    }
    float inv_count = (float)(1.0 / (double)count);
    float *dhead = grad_of(m, grads, m->head_w);
    int rc = 0;
    /* The forward stopped at the final norm: each chunk's logits are made here once and
     * become their own gradient. */
    for (int r0 = 0; r0 < R && !rc; r0 += m->chunk_rows) {
        int n = R - r0 < m->chunk_rows ? R - r0 : m->chunk_rows;
        size_t cb = (size_t)n * V * sizeof(float);
        const float *xin = m->lnf + (size_t)r0 * C;
        rc = ct_kern_matmul_fwd(k, m->chunk, xin, m->head_w, NULL, n, C, V, 0);
        if (!rc && !on_host)
            rc = ct_kern_download(k, host, m->chunk, cb);
        if (!rc && !on_host)
            rc = ct_kern_sync(k);
        if (rc)
            break;
        ce_grad_rows(on_host ? m->chunk : host, targets + r0, row_loss + r0, n, V, inv_count);
        if (!on_host)
            rc = ct_kern_upload(k, m->chunk, host, cb);
        if (!rc)
            rc = ct_kern_matmul_bwd(k, m->dlnf + (size_t)r0 * C, dhead, NULL, m->chunk, xin,
                                    m->head_w, n, C, V, 0);
    }
    double sum = 0;
    for (int r = 0; r < R; r++)
        sum += row_loss[r];
    free(row_loss);
    free(host);
    TRY(rc);
    *loss = sum / (double)count;

    TRY(ct_kern_zero(k, m->dxr, (size_t)R * C * sizeof(float)));
    TRY(ct_kern_layernorm_bwd(k, m->dxr, grad_of(m, grads, m->lnf_w), grad_of(m, grads, m->lnf_b),
                              m->dlnf, m->xr, m->lnf_w, m->lnf_mean, m->lnf_rstd, R, C));
    int cur = 0;
    TRY(ct_kern_zero(k, m->dres[cur], (size_t)N * C * sizeof(float)));
    TRY(ct_kern_scatter_add_rows(k, m->dres[cur], m->dxr, m->rows, R, C));
    for (int l = m->L - 1; l >= 0; l--) {
        ct_layer_w g = layer_grads(m, grads, l);
        TRY(block_bwd(m, l, m->dres[cur], m->dres[cur ^ 1], &g));
        cur ^= 1;
    }
    /* Rows of the embedding in position order: repeated tokens add up deterministically. */
    TRY(ct_kern_scatter_add_rows(k, grad_of(m, grads, m->wte), m->dres[cur], m->ids, N, C));
    return ct_kern_sync(k);
}

/* Forward and analytic backward of the crosscoder losses (METHOD §2).
 *
 * With D = M·d a batch row is a D-vector, W_enc is [D,H] and W_dec is [H,D]:
 *   pre = X W_enc + b_enc, f = ReLU(pre) (BatchTopK: then keep the top k·B of
 *   f_j·n_j over the whole batch, n_j = Σ_m ‖W_dec[j,m]‖), x̂ = f W_dec + b_dec.
 * Gradients, with G = ∂L2/∂x̂ = 2(x̂ − x)/B:
 *   ∂/∂f      = G W_decᵀ + λ n_j / B                      (λ term: L1 model only)
 *   ∂/∂pre    = ∂/∂f on active entries (ReLU and TopK pass gradient only there;
 *               ReLU'(0) = 0 as in torch)
 *   ∂/∂W_dec  = fᵀ G + λ/B · (Σ_b f_bj) · W_dec[j,m,:] / ‖W_dec[j,m,:]‖  (0 when the norm is 0)
 *   ∂/∂W_enc  = Xᵀ ∂pre,  ∂/∂b_enc = Σ_b ∂pre,  ∂/∂b_dec = Σ_b G.
 * AuxK (BatchTopK): e = x − x̂ (detached), ê = f_aux W_dec (no bias) from the top k_aux
 * dead latents of each row, AuxK = mean_b‖ê − e‖² / mean_b‖e − mean_batch(e)‖²
 * (the denominator is detached too, being a function of e only), and the loss adds
 * aux_coeff · AuxK; its gradient reaches W_dec and, through the selected entries, W_enc
 * and b_enc. This follows the BatchTopK crosscoder reference (dictionary_learning).
 * Reading chosen for the BatchTopK reconstruction term: METHOD §2 defines L2 once, as
 * the squared error summed over M·d and averaged over the batch, and that is what both
 * models train on here (the dictionary_learning trainer differentiates the unsquared
 * norm mean_b ‖e_b‖ instead); AuxK is added with weight aux_coeff as specified.
 *
 * Since only active latents carry gradient, the sparse path never forms the dense
 * ∂/∂f: it evaluates G·W_dec[j] only at active (b,j) and gathers the weight gradients
 * from the active entries. */
#include "common/array.h"
#include "crosscoder/loss.h"
#include "crosscoder/loss_internal.h"

#include "common/error.h"
#include "kernels/crosscoder_kernels.h"
#include "kernels/topk_bin.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

struct ct_cc_workspace {
    int M, d, H, D, max_batch;
    float *F, *Xh, *G;      /* [B,H], [B,D], [B,D] */
    float *dF;              /* [B,H]: dense backward, and a copy of relu(pre) for AuxK */
    float *E, *Xa;          /* [B,D] AuxK residual / gradient and reconstruction */
    float *mu;              /* [D] */
    float *nrm, *nsum, *fsum, *addv; /* [H*M], [H], [H], [H] */
    double *rowacc;         /* [B*(2M+2)] per-row sums combined in row order */
    float *dpre, *auxd;     /* per active entry */
    size_t dpre_cap, auxd_cap;
    uint8_t *dead;          /* [H] */
    uint32_t *hist;         /* [CT_CCK_TOPK_BINS] radix-select histogram */
    size_t *rowcnt;         /* [B+1] */
    ct_cck_csr csr, acsr;
    ct_cck_csc csc, acsc;
};

static int grow(void **p, size_t *cap, size_t n, size_t elem)
{
    if (ct_array_grow(p, cap, n, elem))
        return ct_error_set(CT_ENOMEM, "crosscoder: out of memory for %zu scratch values", n);
    return 0;
}

static int lazy(float **p, size_t n)
{
    if (*p)
        return 0;
    *p = malloc(n * sizeof(float));
    if (!*p)
        return ct_error_set(CT_ENOMEM, "crosscoder: out of memory for %zu floats of scratch", n);
    return 0;
}

int ct_cc_workspace_create(const ct_cc_config *cfg, int max_batch, ct_cc_workspace **out)
{
    *out = NULL;
    if (!cfg || cfg->M < 1 || cfg->d < 1 || cfg->H < 1 || max_batch < 1)
        return ct_error_set(CT_EINVAL, "crosscoder workspace: bad shape or batch size");
    ct_cc_workspace *w = calloc(1, sizeof *w);
    if (!w)
        return ct_error_set(CT_ENOMEM, "crosscoder workspace: out of memory");
    w->M = cfg->M;
    w->d = cfg->d;
    w->H = cfg->H;
    w->D = cfg->M * cfg->d;
    w->max_batch = max_batch;
    size_t BH = (size_t)max_batch * w->H, BD = (size_t)max_batch * w->D;
    w->F = malloc(BH * sizeof(float));
    w->Xh = malloc(BD * sizeof(float));
    w->G = malloc(BD * sizeof(float));
    w->mu = malloc((size_t)w->D * sizeof(float));
    w->nrm = malloc((size_t)w->H * w->M * sizeof(float));
    w->nsum = malloc((size_t)w->H * sizeof(float));
    w->fsum = malloc((size_t)w->H * sizeof(float));
    w->addv = malloc((size_t)w->H * sizeof(float));
    w->rowacc = malloc((size_t)max_batch * (2 * w->M + 2) * sizeof(double));
    w->dead = malloc((size_t)w->H);
    w->hist = malloc(CT_CCK_TOPK_BINS * sizeof(uint32_t));
    w->rowcnt = malloc(((size_t)max_batch + 1) * sizeof(size_t));
    if (!w->F || !w->Xh || !w->G || !w->mu || !w->nrm || !w->nsum || !w->fsum || !w->addv ||
        !w->rowacc || !w->dead || !w->hist || !w->rowcnt) {
        ct_cc_workspace_free(w);
        return ct_error_set(CT_ENOMEM, "crosscoder workspace: out of memory for batch %d", max_batch);
    }
    *out = w;
    return 0;
}

void ct_cc_workspace_free(ct_cc_workspace *w)
{
    if (!w)
        return;
    free(w->F);
    free(w->Xh);
    free(w->G);
    free(w->dF);
    free(w->E);
    free(w->Xa);
    free(w->mu);
    free(w->nrm);
    free(w->nsum);
    free(w->fsum);
    free(w->addv);
    free(w->rowacc);
    free(w->dpre);
    free(w->auxd);
    free(w->dead);
    free(w->hist);
    free(w->rowcnt);
    ct_cck_csr_free(&w->csr);
    ct_cck_csr_free(&w->acsr);
    ct_cck_csc_free(&w->csc);
    ct_cck_csc_free(&w->acsc);
    free(w);
}

const float *ct_cc_workspace_xhat(const ct_cc_workspace *ws) { return ws->Xh; }
const float *ct_cc_workspace_f(const ct_cc_workspace *ws) { return ws->F; }

/* n_j = Σ_m ‖W_dec[j,m,:]‖ (fp32 with the kernels' fixed-order dot). */
static void decoder_norms(const float *W_dec, int H, int M, int d, const float *unfold,
                          float *nrm, float *nsum)
{
#pragma omp parallel for schedule(static)
    for (int j = 0; j < H; j++) {
        float s = 0.0f;
        for (int m = 0; m < M; m++) {
            const float *r = W_dec + ((size_t)j * M + m) * d;
            nrm[(size_t)j * M + m] = sqrtf(ct_cck_dot(r, r, d)) * (unfold ? unfold[m] : 1.0f);
            s += nrm[(size_t)j * M + m];
        }
        nsum[j] = s;
    }
}

/* Per-row terms of the reconstruction loss for row b: G = 2(x̂ − x)/B, and into
 * rowacc [Σ_d (x̂_m − x_m)², Σ_d (x_m − mean_batch x_m)²] per checkpoint, then the total. */
static void row_terms(ct_cc_workspace *w, const float *X, int b, float g2)
{
    int M = w->M, d = w->d, D = w->D;
    const float *x = X + (size_t)b * D;
    const float *xh = w->Xh + (size_t)b * D;
    float *g = w->G + (size_t)b * D;
    double *ra = w->rowacc + (size_t)b * (2 * M + 1);
    double tot = 0.0;
    for (int m = 0; m < M; m++) {
        double res = 0.0, var = 0.0;
        for (int i = m * d; i < (m + 1) * d; i++) {
            float diff = xh[i] - x[i];
            float c = x[i] - w->mu[i];
            g[i] = g2 * diff;
            res += (double)diff * diff;
            var += (double)c * c;
        }
        ra[2 * m] = res;
        ra[2 * m + 1] = var;
        tot += res;
    }
    ra[2 * M] = tot;
}

void ct_cc_losses_finish(const double *rowacc, int B, int M, const float *fsum, const float *nsum, int H,
                         float lambda, ct_cc_losses *out)
{
    double *ev_out = out->ev;
    uint8_t *fired_out = out->fired;
    /* f ≥ 0, so a zero column sum means the latent was never active. */
    if (fired_out)
        for (int j = 0; j < H; j++)
            fired_out[j] = fsum[j] > 0.0f;

    int RA = 2 * M + 1;
    double l2 = 0.0;
    for (int m = 0; m < M && ev_out; m++)
        ev_out[m] = 0.0;
    for (int b = 0; b < B; b++)
        l2 += rowacc[(size_t)b * RA + 2 * M];
    out->l2 = l2 / B;
    if (ev_out) {
        for (int m = 0; m < M; m++) {
            double s = 0.0;
            long cnt = 0;
            for (int b = 0; b < B; b++) {
                const double *ra = rowacc + (size_t)b * RA;
                if (ra[2 * m + 1] > 0.0) {
                    s += 1.0 - ra[2 * m] / ra[2 * m + 1];
                    cnt++;
                }
            }
            ev_out[m] = cnt ? s / cnt : 0.0;
        }
    }
    double l1 = 0.0;
    for (int j = 0; j < H; j++)
        l1 += (double)fsum[j] * nsum[j];
    out->l1 = l1 / B;
    out->loss = out->l2 + (double)lambda * out->l1;
}

int ct_cc_wants_aux(const ct_cc_config *cfg, const ct_cc_lossopt *opt)
{
    return cfg->type == CT_CC_BATCHTOPK && opt->since_fired && !opt->use_threshold && cfg->aux_coeff != 0.0f;
}

int ct_cc_dead_latents(const ct_cc_config *cfg, const float *fsum, const uint64_t *since_fired, int B,
                       uint8_t *dead)
{
    int nd = 0;
    for (int j = 0; j < cfg->H; j++) {
        int d = fsum[j] == 0.0f && since_fired[j] + (uint64_t)B >= (uint64_t)cfg->dead_tokens;
        dead[j] = (uint8_t)d;
        nd += d;
    }
    return nd;
}

float ct_cc_aux_finish(const ct_cc_config *cfg, double num, double den, int B, ct_cc_losses *out)
{
    float scale = 0.0f;
    num /= B;
    den /= B;
    if (den > 0.0 && isfinite(num / den)) {
        out->aux = num / den;
        scale = (float)(cfg->aux_coeff * 2.0 / ((double)B * den));
    }
    out->loss += cfg->aux_coeff * out->aux;
    return scale;
}

int ct_cc_forward_backward(const ct_crosscoder *cc, const float *X, int B,
                           const ct_cc_lossopt *opt, ct_cc_workspace *w,
                           ct_cc_losses *out, float *grad)
{
    const ct_cc_config *cfg = &cc->cfg;
    if (!w || w->M != cfg->M || w->d != cfg->d || w->H != cfg->H)
        return ct_error_set(CT_EINVAL, "crosscoder: workspace shape does not match the model");
    if (B < 1 || B > w->max_batch)
        return ct_error_set(CT_EINVAL, "crosscoder: batch of %d rows outside 1..%d", B, w->max_batch);
    if (cc->folded && grad)
        return ct_error_set(CT_EINVAL, "crosscoder: gradients of a folded crosscoder are not defined here");
    int M = cfg->M, d = cfg->d, H = cfg->H, D = M * d;
    int topk = cfg->type == CT_CC_BATCHTOPK;
    size_t BH = (size_t)B * H, BD = (size_t)B * D;
    const ct_cc_params *P = &cc->p;
    double *ev_out = out->ev;
    uint8_t *fired_out = out->fired;
    uint32_t *fire_count = out->fire_count;
    memset(out, 0, sizeof *out);
    out->ev = ev_out;
    out->fired = fired_out;
    out->fire_count = fire_count;
    int rc = 0;

    ct_cck_fpmode_enter();
    /* A folded crosscoder scores latents with its unfolded decoder norms, so encoding
     * raw rows selects exactly what encoding scaled rows did before folding. */
    decoder_norms(P->W_dec, H, M, d, cc->folded ? cc->scale : NULL, w->nrm, w->nsum);
    ct_cck_encode(X, P->W_enc, P->b_enc, w->F, B, D, H);
    int want_aux = grad && ct_cc_wants_aux(cfg, opt);
    size_t nnz;
    if (!topk) {
        nnz = ct_cck_relu_count(w->F, B, H, w->rowcnt);
    } else {
        ct_cck_relu(w->F, BH);
        if (want_aux) {
            if ((rc = lazy(&w->dF, (size_t)w->max_batch * H)))
                goto done;
            memcpy(w->dF, w->F, BH * sizeof(float));
        }
        if (opt->use_threshold) {
            ct_cck_threshold_mask(w->F, w->nsum, B, H, opt->threshold);
        } else {
            size_t K = (size_t)(opt->k > 0 ? opt->k : 0) * (size_t)B;
            out->min_kept = ct_cck_batch_topk(w->F, w->nsum, B, H, K, w->hist, w->rowcnt);
        }
        nnz = ct_cck_relu_count(w->F, B, H, w->rowcnt); /* F ≥ 0 already: counts only */
    }
    out->l0 = (double)nnz / B;
    out->density = (double)nnz / (double)BH;
    int sparse = opt->path == CT_CC_PATH_SPARSE ||
                 (opt->path == CT_CC_PATH_AUTO && out->density < cfg->sparse_density);
    out->sparse = sparse;
    ct_cck_colsum(X, B, D, w->mu);
    for (int i = 0; i < D; i++)
        w->mu[i] /= (float)B;
    float g2 = 2.0f / (float)B;
    float lambda = topk ? 0.0f : opt->lambda;
    if (!topk)
        for (int j = 0; j < H; j++)
            w->addv[j] = lambda * w->nsum[j] / (float)B;
    if (sparse) {
        if ((rc = ct_cck_csr_fill(w->F, B, H, w->rowcnt, &w->csr)))
            goto done;
        if (grad && (rc = grow((void **)&w->dpre, &w->dpre_cap, w->csr.nnz, sizeof(float))))
            goto done;
        /* Column sums and counts from the CSR, in row order (f > 0 on every entry). */
        memset(w->fsum, 0, (size_t)H * sizeof(float));
        for (size_t e = 0; e < w->csr.nnz; e++)
            w->fsum[w->csr.col[e]] += w->csr.val[e];
        if (fire_count)
            for (size_t e = 0; e < w->csr.nnz; e++)
                fire_count[w->csr.col[e]]++;
        const ct_cck_csr *a = &w->csr;
        const float *add = topk ? NULL : w->addv;
        if (ct_cck_sparse_chunk(H, D) == D) {
            /* W_dec fits the cache: one pass per row — decode, loss terms, and ∂/∂pre at
             * the row's active entries while their decoder rows are still in cache. */
#pragma omp parallel for schedule(dynamic, 8)
            for (int b = 0; b < B; b++) {
                float *y = w->Xh + (size_t)b * D;
                size_t e0 = a->row_ptr[b], ne = a->row_ptr[b + 1] - e0;
                memcpy(y, P->b_dec, (size_t)D * sizeof(float));
                ct_cck_axpy_gather(y, D, P->W_dec, (size_t)D, a->col + e0, a->val + e0, NULL, ne);
                row_terms(w, X, b, g2);
                if (grad) {
                    ct_cck_dot_gather(w->G + (size_t)b * D, D, P->W_dec, (size_t)D, a->col + e0, ne, w->dpre + e0);
                    if (add)
                        for (size_t e = e0; e < e0 + ne; e++)
                            w->dpre[e] += add[a->col[e]];
                }
            }
        } else {
            /* W_dec larger than the cache: the kernels walk it in column slices. */
            ct_cck_decode_sparse(a, P->W_dec, P->b_dec, w->Xh, D);
#pragma omp parallel for schedule(static)
            for (int b = 0; b < B; b++)
                row_terms(w, X, b, g2);
            if (grad)
                ct_cck_sddmm(a, w->G, P->W_dec, D, add, w->dpre);
        }
    } else {
        ct_cck_colsum(w->F, B, H, w->fsum);
        if (fire_count) {
#pragma omp parallel for schedule(static)
            for (int j = 0; j < H; j++) {
                uint32_t c = 0;
                for (int b = 0; b < B; b++)
                    c += w->F[(size_t)b * H + j] > 0.0f;
                fire_count[j] += c;
            }
        }
        ct_cck_decode_dense(w->F, P->W_dec, P->b_dec, w->Xh, B, H, D);
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++)
            row_terms(w, X, b, g2);
    }
    ct_cc_losses_finish(w->rowacc, B, M, w->fsum, w->nsum, H, lambda, out);
    int RA = 2 * M + 1;

    /* AuxK: dead latents, their selection from relu(pre), and the aux reconstruction. */
    float aux_scale = 0.0f;
    if (want_aux) {
        int nd = ct_cc_dead_latents(cfg, w->fsum, opt->since_fired, B, w->dead);
        out->n_dead = nd;
        if (nd > 0) {
            int kk = cfg->k_aux < nd ? cfg->k_aux : nd;
            if ((rc = ct_cck_aux_select(w->dF, w->nsum, w->dead, B, H, kk, w->rowcnt, &w->acsr)))
                goto done;
            if ((rc = lazy(&w->E, (size_t)w->max_batch * D)) || (rc = lazy(&w->Xa, (size_t)w->max_batch * D)))
                goto done;
            ct_cck_decode_sparse(&w->acsr, P->W_dec, NULL, w->Xa, D);
#pragma omp parallel for schedule(static)
            for (size_t e = 0; e < BD; e++)
                w->E[e] = X[e] - w->Xh[e];
            ct_cck_colsum(w->E, B, D, w->mu); /* mu now holds mean_batch(e) */
            for (int i = 0; i < D; i++)
                w->mu[i] /= (float)B;
#pragma omp parallel for schedule(static)
            for (int b = 0; b < B; b++) {
                double num = 0.0, den = 0.0;
                for (int i = 0; i < D; i++) {
                    size_t e = (size_t)b * D + i;
                    double r = (double)w->Xa[e] - w->E[e];
                    double c = (double)w->E[e] - w->mu[i];
                    num += r * r;
                    den += c * c;
                }
                w->rowacc[(size_t)b * RA] = num;
                w->rowacc[(size_t)b * RA + 1] = den;
            }
            double num = 0.0, den = 0.0;
            for (int b = 0; b < B; b++) {
                num += w->rowacc[(size_t)b * RA];
                den += w->rowacc[(size_t)b * RA + 1];
            }
            aux_scale = ct_cc_aux_finish(cfg, num, den, B, out);
        }
    }

    if (!grad)
        goto done;
    ct_cc_params gp;
    ct_cc_params_bind(grad, M, d, H, &gp);
    if (sparse) {
        if ((rc = ct_cck_csc_from_csr(&w->csr, &w->csc)))
            goto done;
        ct_cck_gather_rows(&w->csc, w->csr.val, w->G, D, gp.W_dec, 0);
        ct_cck_gather_cols(&w->csc, w->dpre, X, D, gp.W_enc, gp.b_enc, 0);
    } else {
        if ((rc = lazy(&w->dF, (size_t)w->max_batch * H)))
            goto done;
        ct_cck_grad_f_dense(w->G, P->W_dec, w->dF, B, D, H);
        const float *add = topk ? NULL : w->addv;
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            float *g = w->dF + (size_t)b * H;
            const float *f = w->F + (size_t)b * H;
            /* simd: branch-free, the active pattern is unpredictable */
            if (add) {
#pragma omp simd
                for (int j = 0; j < H; j++)
                    g[j] = f[j] > 0.0f ? g[j] + add[j] : 0.0f;
            } else {
#pragma omp simd
                for (int j = 0; j < H; j++)
                    g[j] = f[j] > 0.0f ? g[j] : 0.0f;
            }
        }
        ct_cck_grad_dec_dense(w->F, w->G, gp.W_dec, B, H, D);
        ct_cck_grad_enc_dense(X, w->dF, gp.W_enc, B, D, H);
        ct_cck_colsum(w->dF, B, H, gp.b_enc);
    }
    ct_cck_colsum(w->G, B, D, gp.b_dec);
    if (!topk && lambda != 0.0f) {
        float c = lambda / (float)B;
#pragma omp parallel for schedule(static)
        for (int j = 0; j < H; j++) {
            if (w->fsum[j] == 0.0f)
                continue;
            for (int m = 0; m < M; m++) {
                float n = w->nrm[(size_t)j * M + m];
                if (n == 0.0f)
                    continue;
                float a = c * w->fsum[j] / n;
                size_t o = ((size_t)j * M + m) * d;
                for (int i = 0; i < d; i++)
                    gp.W_dec[o + i] += a * P->W_dec[o + i];
            }
        }
    }
    if (aux_scale != 0.0f && w->acsr.nnz > 0) {
        /* E becomes the AuxK gradient w.r.t. ê. */
#pragma omp parallel for schedule(static)
        for (size_t e = 0; e < BD; e++)
            w->E[e] = aux_scale * (w->Xa[e] - w->E[e]);
        if ((rc = grow((void **)&w->auxd, &w->auxd_cap, w->acsr.nnz, sizeof(float))))
            goto done;
        ct_cck_sddmm(&w->acsr, w->E, P->W_dec, D, NULL, w->auxd);
        if ((rc = ct_cck_csc_from_csr(&w->acsr, &w->acsc)))
            goto done;
        ct_cck_gather_rows(&w->acsc, w->acsr.val, w->E, D, gp.W_dec, 1);
        ct_cck_gather_cols(&w->acsc, w->auxd, X, D, gp.W_enc, gp.b_enc, 1);
    }
done:
    ct_cck_fpmode_restore();
    return rc;
}

/* The crosscoder's parameter block: configuration checks, allocation, the seeded init
 * of METHOD §2, encode/decode, folding of the normalisation factors, and RelDec. */
#include "crosscoder/crosscoder.h"

#include "common/error.h"
#include "crosscoder/loss.h"
#include "crosscoder/rng.h"
#include "kernels/crosscoder_kernels.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BAD(...) ct_error_set(CT_EINVAL, __VA_ARGS__)

int ct_cc_config_resolve(ct_cc_config *c)
{
    if (!c)
        return BAD("crosscoder config: NULL");
    if (c->type != CT_CC_L1 && c->type != CT_CC_BATCHTOPK)
        return BAD("crosscoder config: type %d is neither l1 (0) nor batchtopk (1)", c->type);
    if (c->M < 2 || c->d < 1 || c->H < 1)
        return BAD("crosscoder config: need M >= 2, d >= 1, H >= 1 (got M=%d d=%d H=%d)", c->M, c->d, c->H);
    if ((long long)c->M * c->d > INT_MAX / 2 || (long long)c->M * c->d * c->H > (1LL << 40))
        return BAD("crosscoder config: M*d*H = %lld is too large", (long long)c->M * c->d * c->H);
    if (c->batch < 1 || (long long)c->batch * c->H > INT32_MAX)
        return BAD("crosscoder config: batch %d out of range for H=%d", c->batch, c->H);
    if (c->tokens < 0)
        return BAD("crosscoder config: tokens %lld is negative", c->tokens);
    if (c->tokens > 0)
        c->steps = (long)(c->tokens / c->batch);
    if (c->steps < 1)
        return BAD("crosscoder config: steps must be >= 1 (got %ld)", c->steps);
    if (!(c->lr > 0.0f) || !(c->eps > 0.0f))
        return BAD("crosscoder config: lr and eps must be > 0");
    if (!(c->beta1 >= 0.0f && c->beta1 < 1.0f) || !(c->beta2 >= 0.0f && c->beta2 < 1.0f))
        return BAD("crosscoder config: betas must lie in [0, 1)");
    if (!(c->l1_coeff >= 0.0f) || !(c->l1_warmup >= 0.0 && c->l1_warmup <= 1.0))
        return BAD("crosscoder config: l1_coeff must be >= 0 and l1_warmup in [0, 1]");
    if (!(c->lr_decay_start >= 0.0 && c->lr_decay_start <= 1.0))
        return BAD("crosscoder config: lr_decay_start must lie in [0, 1]");
    if (!(c->grad_clip == c->grad_clip))
        return BAD("crosscoder config: grad_clip is NaN");
    if (c->dec_init_norm == 0.0f)
        c->dec_init_norm = c->type == CT_CC_BATCHTOPK ? 1.0f : 0.08f;
    if (!(c->dec_init_norm > 0.0f))
        return BAD("crosscoder config: dec_init_norm must be > 0");
    if (c->checkpoint_every < 0 || c->log_every < 0 || c->val_rows < 0)
        return BAD("crosscoder config: checkpoint_every, log_every and val_rows must be >= 0");
    if (c->type == CT_CC_BATCHTOPK) {
        if (c->k_start < 1 || c->k_end < 1 || c->k_anneal_steps < 0)
            return BAD("crosscoder config: BatchTopK needs k_start, k_end >= 1 and k_anneal_steps >= 0");
        if (!(c->threshold_beta >= 0.0f && c->threshold_beta <= 1.0f) || c->threshold_start_step < 0)
            return BAD("crosscoder config: threshold_beta must lie in [0, 1] and threshold_start_step >= 0");
        if (!(c->aux_coeff >= 0.0f) || c->k_aux < 0 || c->dead_tokens < 1)
            return BAD("crosscoder config: aux_coeff >= 0, k_aux >= 0 and dead_tokens >= 1 required");
    }
    if (c->k_aux == 0)
        c->k_aux = c->d / 2 > 0 ? c->d / 2 : 1;
    if (c->path < CT_CC_PATH_AUTO || c->path > CT_CC_PATH_SPARSE)
        return BAD("crosscoder config: path %d is not auto (0), dense (1) or sparse (2)", c->path);
    if (!(c->sparse_density >= 0.0f && c->sparse_density <= 1.0f))
        return BAD("crosscoder config: sparse_density must lie in [0, 1]");
    return 0;
}

size_t ct_cc_param_count(int M, int d, int H)
{
    size_t D = (size_t)M * d;
    return D * H + (size_t)H + (size_t)H * D + D;
}

void ct_cc_params_bind(float *mem, int M, int d, int H, ct_cc_params *p)
{
    size_t D = (size_t)M * d;
    p->W_enc = mem;
    p->b_enc = p->W_enc + D * H;
    p->W_dec = p->b_enc + H;
    p->b_dec = p->W_dec + (size_t)H * D;
}

int ct_cc_create(const ct_cc_config *cfg, ct_crosscoder **out)
{
    *out = NULL;
    ct_cc_config c = *cfg;
    int rc = ct_cc_config_resolve(&c);
    if (rc)
        return rc;
    ct_crosscoder *cc = calloc(1, sizeof *cc);
    if (!cc)
        return ct_error_set(CT_ENOMEM, "crosscoder: out of memory");
    cc->cfg = c;
    cc->n_params = ct_cc_param_count(c.M, c.d, c.H);
    cc->mem = calloc(cc->n_params, sizeof(float));
    cc->scale = malloc((size_t)c.M * sizeof(float));
    if (!cc->mem || !cc->scale) {
        ct_cc_free(cc);
        return ct_error_set(CT_ENOMEM, "crosscoder: out of memory for %zu parameters", (size_t)c.M);
    }
    for (int m = 0; m < c.M; m++)
        cc->scale[m] = 1.0f;
    cc->threshold = -1.0f;
    ct_cc_params_bind(cc->mem, c.M, c.d, c.H, &cc->p);
    *out = cc;
    return 0;
}

void ct_cc_free(ct_crosscoder *cc)
{
    if (!cc)
        return;
    free(cc->mem);
    free(cc->scale);
    free(cc);
}

void ct_cc_init(ct_crosscoder *cc, uint64_t seed)
{
    int M = cc->cfg.M, d = cc->cfg.d, H = cc->cfg.H;
    size_t D = (size_t)M * d;
    ct_cc_rng r;
    ct_cc_rng_seed(&r, seed);
    float *W = cc->p.W_dec;
    size_t n = (size_t)H * D;
    for (size_t i = 0; i < n; i += 2) {
        double a, b;
        ct_cc_rng_normal2(&r, &a, &b);
        W[i] = (float)a;
        if (i + 1 < n)
            W[i + 1] = (float)b;
    }
    for (size_t row = 0; row < (size_t)H * M; row++) {
        float *w = W + row * d;
        double s = 0.0;
        for (int i = 0; i < d; i++)
            s += (double)w[i] * w[i];
        /* A zero row (impossible in practice) stays zero rather than dividing by 0. */
        double f = s > 0.0 ? cc->cfg.dec_init_norm / sqrt(s) : 0.0;
        for (int i = 0; i < d; i++)
            w[i] = (float)(w[i] * f);
    }
    for (int j = 0; j < H; j++)
        for (size_t i = 0; i < D; i++)
            cc->p.W_enc[i * H + j] = W[(size_t)j * D + i];
    memset(cc->p.b_enc, 0, (size_t)H * sizeof(float));
    memset(cc->p.b_dec, 0, D * sizeof(float));
    cc->threshold = -1.0f;
    cc->folded = 0;
}

int ct_cc_encode(const ct_crosscoder *cc, const float *x, size_t B, float *f)
{
    if (B == 0)
        return 0;
    if (B > (size_t)INT32_MAX / (size_t)cc->cfg.H)
        return BAD("crosscoder encode: batch of %zu rows is too large", B);
    ct_cc_workspace *ws;
    int rc = ct_cc_workspace_create(&cc->cfg, (int)B, &ws);
    if (rc)
        return rc;
    ct_cc_lossopt opt = CT_CC_LOSSOPT_INIT;
    opt.path = CT_CC_PATH_DENSE;
    if (cc->cfg.type == CT_CC_BATCHTOPK) {
        opt.use_threshold = cc->threshold >= 0.0f;
        opt.threshold = cc->threshold;
        opt.k = cc->cfg.k_end;
    }
    ct_cc_losses l = {0};
    rc = ct_cc_forward_backward(cc, x, (int)B, &opt, ws, &l, NULL);
    if (!rc)
        memcpy(f, ct_cc_workspace_f(ws), B * (size_t)cc->cfg.H * sizeof(float));
    ct_cc_workspace_free(ws);
    return rc;
}

int ct_cc_decode(const ct_crosscoder *cc, const float *f, size_t B, float *xhat)
{
    if (B == 0)
        return 0;
    if (B > INT32_MAX)
        return BAD("crosscoder decode: batch of %zu rows is too large", B);
    ct_cck_decode_dense(f, cc->p.W_dec, cc->p.b_dec, xhat, (int)B, cc->cfg.H, cc->cfg.M * cc->cfg.d);
    return 0;
}

int ct_cc_fold(ct_crosscoder *cc)
{
    if (cc->folded)
        return BAD("crosscoder fold: the normalisation factors are already folded in");
    int M = cc->cfg.M, d = cc->cfg.d, H = cc->cfg.H;
    for (int m = 0; m < M; m++)
        if (!(cc->scale[m] > 0.0f) || !isfinite(cc->scale[m]))
            return BAD("crosscoder fold: normalisation factor %d is %g, not a positive number", m, cc->scale[m]);
    for (int m = 0; m < M; m++) {
        float s = cc->scale[m];
        for (size_t i = (size_t)m * d; i < (size_t)(m + 1) * d; i++) {
            float *row = cc->p.W_enc + i * H;
            for (int j = 0; j < H; j++)
                row[j] *= s;
            cc->p.b_dec[i] /= s;
        }
        for (int j = 0; j < H; j++) {
            float *w = cc->p.W_dec + ((size_t)j * M + m) * d;
            for (int i = 0; i < d; i++)
                w[i] /= s;
        }
    }
    cc->folded = 1;
    return 0;
}

/* ‖W_dec[j,m]‖ of the unfolded crosscoder. */
static double unfolded_norm(const ct_crosscoder *cc, int j, int m)
{
    int M = cc->cfg.M, d = cc->cfg.d;
    const float *w = cc->p.W_dec + ((size_t)j * M + m) * d;
    double s = 0.0;
    for (int i = 0; i < d; i++)
        s += (double)w[i] * w[i];
    return sqrt(s) * (cc->folded ? cc->scale[m] : 1.0);
}

int ct_cc_reldec(const ct_crosscoder *cc, int a, int b, float *out)
{
    if (a < 0 || b < 0 || a >= cc->cfg.M || b >= cc->cfg.M || a == b)
        return BAD("crosscoder reldec: checkpoints %d and %d are not two of 0..%d", a, b, cc->cfg.M - 1);
    for (int j = 0; j < cc->cfg.H; j++) {
        double na = unfolded_norm(cc, j, a), nb = unfolded_norm(cc, j, b);
        out[j] = na + nb > 0.0 ? (float)(nb / (na + nb)) : 0.5f;
    }
    return 0;
}

int ct_cc_reldec_ova(const ct_crosscoder *cc, float *out)
{
    int M = cc->cfg.M;
    for (int j = 0; j < cc->cfg.H; j++) {
        double n[64], *nv = M <= 64 ? n : malloc((size_t)M * sizeof *nv), s = 0.0;
        if (!nv)
            return ct_error_set(CT_ENOMEM, "crosscoder reldec: out of memory");
        for (int m = 0; m < M; m++)
            s += nv[m] = unfolded_norm(cc, j, m);
        for (int m = 0; m < M; m++)
            out[(size_t)j * M + m] = s > 0.0 ? (float)(nv[m] / s) : 1.0f / M;
        if (nv != n)
            free(nv);
    }
    return 0;
}

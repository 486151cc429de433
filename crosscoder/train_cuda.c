/* The trainer's CUDA side (see train_cuda.h): device buffers, one loss evaluation per
 * step through kernels/cuda/crosscoder_train.cu (L1, or BatchTopK with AuxK: the
 * host decides the dead latents between the forward and the backward, as the CPU path
 * does), clipping and Adam on the device. A build without CUDA compiles the entry points
 * as refusals. */
#include "crosscoder/train_cuda.h"

#include "common/error.h"
#include "crosscoder/loss_internal.h"
#include "kernels/crosscoder_kernels.h"

#include <stdlib.h>
#include <string.h>

#ifdef CT_HAVE_CUDA

struct ct_cc_cuda {
    ct_cc_config cfg;
    int M, d, H, D, batch;
    size_t np;
    float *params, *grad, *m, *v, *X; /* device */
    float *Xpin[2];                   /* page-locked host [batch, D] each */
    ct_cck_cuda_cc *cc;
    double *rowacc;                   /* host [batch*(2M+1)] */
    float *fsum, *nsum;               /* host [H] */
    uint8_t *dead;                    /* host [H] AuxK's dead latents of the batch */
    int host_stale;                   /* the device parameters changed since the last copy */
};

void ct_cc_cuda_close(ct_cc_cuda *d)
{
    if (!d)
        return;
    ct_cck_cuda_free(d->params);
    ct_cck_cuda_free(d->grad);
    ct_cck_cuda_free(d->m);
    ct_cck_cuda_free(d->v);
    ct_cck_cuda_free(d->X);
    ct_cck_cuda_host_free(d->Xpin[0]);
    ct_cck_cuda_host_free(d->Xpin[1]);
    if (d->cc)
        ct_cck_cuda_cc_free(d->cc);
    free(d->rowacc);
    free(d->dead);
    free(d->fsum);
    free(d->nsum);
    free(d);
}

int ct_cc_cuda_open(const ct_cc_config *cfg, ct_cc_cuda **out)
{
    *out = NULL;
    if (ct_cck_cuda_device_count() <= 0)
        return ct_error_set(CT_EUNSUPPORTED, "crosscoder: no CUDA device is available");
    ct_cc_cuda *d = calloc(1, sizeof *d);
    if (!d)
        return ct_error_set(CT_ENOMEM, "crosscoder: out of memory");
    d->cfg = *cfg;
    d->M = cfg->M;
    d->d = cfg->d;
    d->H = cfg->H;
    d->D = cfg->M * cfg->d;
    d->batch = cfg->batch;
    d->np = ct_cc_param_count(cfg->M, cfg->d, cfg->H);
    size_t nb = d->np * sizeof(float);
    int rc;
    if ((rc = ct_cck_cuda_alloc((void **)&d->params, nb)) || (rc = ct_cck_cuda_alloc((void **)&d->grad, nb)) ||
        (rc = ct_cck_cuda_alloc((void **)&d->m, nb)) || (rc = ct_cck_cuda_alloc((void **)&d->v, nb)) ||
        (rc = ct_cck_cuda_alloc((void **)&d->X, (size_t)d->batch * d->D * sizeof(float))) ||
        (rc = ct_cck_cuda_host_alloc((void **)&d->Xpin[0], (size_t)d->batch * d->D * sizeof(float))) ||
        (rc = ct_cck_cuda_host_alloc((void **)&d->Xpin[1], (size_t)d->batch * d->D * sizeof(float))) ||
        (rc = ct_cck_cuda_cc_create(d->M, d->d, d->H, d->batch, &d->cc))) {
        ct_cc_cuda_close(d);
        return ct_error_wrap(rc, "crosscoder: setting up CUDA training (%zu parameters)", d->np);
    }
    d->rowacc = malloc((size_t)d->batch * (2 * d->M + 1) * sizeof(double));
    d->fsum = malloc((size_t)d->H * sizeof(float));
    d->nsum = malloc((size_t)d->H * sizeof(float));
    d->dead = malloc((size_t)d->H);
    if (!d->rowacc || !d->fsum || !d->nsum || !d->dead) {
        ct_cc_cuda_close(d);
        return ct_error_set(CT_ENOMEM, "crosscoder: out of memory for CUDA training");
    }
    *out = d;
    return 0;
}

float *ct_cc_cuda_batch_buffer(ct_cc_cuda *d, int i) { return d->Xpin[i & 1]; }

int ct_cc_cuda_upload(ct_cc_cuda *d, const float *params, const float *moments)
{
    size_t nb = d->np * sizeof(float);
    int rc;
    if ((rc = ct_cck_cuda_copy(d->params, params, nb, 1)) || (rc = ct_cck_cuda_copy(d->m, moments, nb, 1)) ||
        (rc = ct_cck_cuda_copy(d->v, moments + d->np, nb, 1)))
        return rc;
    d->host_stale = 0;
    return 0;
}

int ct_cc_cuda_download(ct_cc_cuda *d, float *params, float *moments)
{
    if (!d->host_stale)
        return 0;
    size_t nb = d->np * sizeof(float);
    int rc;
    if ((rc = ct_cck_cuda_copy(params, d->params, nb, 0)) || (rc = ct_cck_cuda_copy(moments, d->m, nb, 0)) ||
        (rc = ct_cck_cuda_copy(moments + d->np, d->v, nb, 0)))
        return rc;
    d->host_stale = 0;
    return 0;
}

int ct_cc_cuda_forward_backward(ct_cc_cuda *d, const float *X, int B, const ct_cc_lossopt *opt,
                                ct_cc_losses *out)
{
    if (B < 1 || B > d->batch)
        return ct_error_set(CT_EINVAL, "crosscoder: batch of %d rows outside 1..%d", B, d->batch);
    const ct_cc_config *c = &d->cfg;
    double *ev = out->ev;
    uint8_t *fired = out->fired;
    memset(out, 0, sizeof *out);
    out->ev = ev;
    out->fired = fired;
    int topk = c->type == CT_CC_BATCHTOPK;
    int want_aux = ct_cc_wants_aux(c, opt); /* always a gradient pass here */
    float lambda = topk ? 0.0f : opt->lambda;
    ct_cck_cuda_select sel = CT_CCK_CUDA_SELECT_INIT;
    sel.topk = topk;
    sel.use_threshold = opt->use_threshold;
    sel.threshold = opt->threshold;
    sel.K = (size_t)(opt->k > 0 ? opt->k : 0) * (size_t)B;
    sel.keep_relu = want_aux;
    sel.sparse_below = opt->path == CT_CC_PATH_DENSE    ? 0.0f
                       : opt->path == CT_CC_PATH_SPARSE ? 2.0f
                                                        : CT_CC_CUDA_SPARSE_DENSITY;
    ct_cck_cuda_forward_info info = {0};
    size_t nnz = 0;
    float aux_scale = 0.0f;
    int rc = ct_cck_cuda_copy(d->X, X, (size_t)B * d->D * sizeof(float), 1);
    if (!rc)
        rc = ct_cck_cuda_cc_forward(d->cc, d->params, d->X, B, &sel, &info);
    if (!rc && topk) {
        /* AuxK needs the batch's firing pattern before the backward. */
        rc = ct_cck_cuda_cc_results(d->cc, B, d->rowacc, d->fsum, d->nsum, &nnz);
        if (!rc)
            ct_cc_losses_finish(d->rowacc, B, d->M, d->fsum, d->nsum, d->H, lambda, out);
        if (!rc && want_aux && (out->n_dead = ct_cc_dead_latents(c, d->fsum, opt->since_fired, B, d->dead)) > 0) {
            int kk = c->k_aux < out->n_dead ? c->k_aux : out->n_dead;
            double num, den;
            rc = ct_cck_cuda_cc_aux(d->cc, d->params, d->X, B, d->dead, kk, &num, &den);
            if (!rc)
                aux_scale = ct_cc_aux_finish(c, num, den, B, out);
        }
        if (!rc)
            rc = ct_cck_cuda_cc_backward(d->cc, d->params, d->X, B, lambda, aux_scale, d->grad);
    } else if (!rc) {
        /* L1: queue the backward before waiting for the sums. */
        rc = ct_cck_cuda_cc_backward(d->cc, d->params, d->X, B, lambda, 0.0f, d->grad);
        if (!rc)
            rc = ct_cck_cuda_cc_results(d->cc, B, d->rowacc, d->fsum, d->nsum, &nnz);
        if (!rc)
            ct_cc_losses_finish(d->rowacc, B, d->M, d->fsum, d->nsum, d->H, lambda, out);
    }
    if (rc)
        return rc;
    out->min_kept = info.min_kept;
    out->sparse = info.sparse;
    out->l0 = (double)nnz / B;
    out->density = (double)nnz / ((double)B * d->H);
    return 0;
}

int ct_cc_cuda_grad_sumsq(ct_cc_cuda *d, double *out) { return ct_cck_cuda_sumsq(d->grad, d->np, out); }

int ct_cc_cuda_adam(ct_cc_cuda *d, float gscale, double lr, double b1, double b2, double eps, long t)
{
    int rc = ct_cck_cuda_adam(d->params, d->grad, d->m, d->v, d->np, gscale, lr, b1, b2, eps, t);
    if (!rc)
        d->host_stale = 1;
    return rc;
}

#else /* !CT_HAVE_CUDA */

static int no_cuda(void)
{
    return ct_error_set(CT_EUNSUPPORTED, "crosscoder: this build has no CUDA backend");
}

int ct_cc_cuda_open(const ct_cc_config *cfg, ct_cc_cuda **out)
{
    (void)cfg;
    *out = NULL;
    return no_cuda();
}
void ct_cc_cuda_close(ct_cc_cuda *d) { (void)d; }
float *ct_cc_cuda_batch_buffer(ct_cc_cuda *d, int i)
{
    (void)d, (void)i;
    return NULL;
}
int ct_cc_cuda_upload(ct_cc_cuda *d, const float *params, const float *moments)
{
    (void)d, (void)params, (void)moments;
    return no_cuda();
}
int ct_cc_cuda_download(ct_cc_cuda *d, float *params, float *moments)
{
    (void)d, (void)params, (void)moments;
    return no_cuda();
}
int ct_cc_cuda_forward_backward(ct_cc_cuda *d, const float *X, int B, const ct_cc_lossopt *opt,
                                ct_cc_losses *out)
{
    (void)d, (void)X, (void)B, (void)opt, (void)out;
    return no_cuda();
}
int ct_cc_cuda_grad_sumsq(ct_cc_cuda *d, double *out)
{
    (void)d;
    *out = 0.0;
    return no_cuda();
}
int ct_cc_cuda_adam(ct_cc_cuda *d, float gscale, double lr, double b1, double b2, double eps, long t)
{
    (void)d, (void)gscale, (void)lr, (void)b1, (void)b2, (void)eps, (void)t;
    return no_cuda();
}

#endif

/* The trainer's CUDA side (see train_cuda.h): device buffers, one dense L1 loss
 * evaluation per step through kernels/cuda/crosscoder_l1.cu, clipping and Adam on the
 * device. A build without CUDA compiles the entry points as refusals. */
#include "crosscoder/train_cuda.h"

#include "common/error.h"
#include "crosscoder/loss_internal.h"
#include "kernels/crosscoder_kernels.h"

#include <stdlib.h>
#include <string.h>

#ifdef CT_HAVE_CUDA

struct ct_cc_cuda {
    int M, d, H, D, batch;
    size_t np;
    float *params, *grad, *m, *v, *X; /* device */
    float *Xpin;                      /* page-locked host [batch, D] */
    ct_cck_cuda_l1 *l1;
    double *rowacc;                   /* host [batch*(2M+1)] */
    float *fsum, *nsum;               /* host [H] */
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
    ct_cck_cuda_host_free(d->Xpin);
    if (d->l1)
        ct_cck_cuda_l1_free(d->l1);
    free(d->rowacc);
    free(d->fsum);
    free(d->nsum);
    free(d);
}

int ct_cc_cuda_open(const ct_cc_config *cfg, ct_cc_cuda **out)
{
    *out = NULL;
    if (cfg->type != CT_CC_L1)
        return ct_error_set(CT_EUNSUPPORTED, "crosscoder: BatchTopK on CUDA is not supported; train it with "
                            "device cpu");
    if (ct_cck_cuda_device_count() <= 0)
        return ct_error_set(CT_EUNSUPPORTED, "crosscoder: no CUDA device is available");
    ct_cc_cuda *d = calloc(1, sizeof *d);
    if (!d)
        return ct_error_set(CT_ENOMEM, "crosscoder: out of memory");
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
        (rc = ct_cck_cuda_host_alloc((void **)&d->Xpin, (size_t)d->batch * d->D * sizeof(float))) ||
        (rc = ct_cck_cuda_l1_create(d->M, d->d, d->H, d->batch, &d->l1))) {
        ct_cc_cuda_close(d);
        return ct_error_wrap(rc, "crosscoder: setting up CUDA training (%zu parameters)", d->np);
    }
    d->rowacc = malloc((size_t)d->batch * (2 * d->M + 1) * sizeof(double));
    d->fsum = malloc((size_t)d->H * sizeof(float));
    d->nsum = malloc((size_t)d->H * sizeof(float));
    if (!d->rowacc || !d->fsum || !d->nsum) {
        ct_cc_cuda_close(d);
        return ct_error_set(CT_ENOMEM, "crosscoder: out of memory for CUDA training");
    }
    *out = d;
    return 0;
}

float *ct_cc_cuda_batch_buffer(ct_cc_cuda *d) { return d->Xpin; }

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
    double *ev = out->ev;
    uint8_t *fired = out->fired;
    memset(out, 0, sizeof *out);
    out->ev = ev;
    out->fired = fired;
    int rc = ct_cck_cuda_copy(d->X, X, (size_t)B * d->D * sizeof(float), 1);
    size_t nnz = 0;
    if (!rc)
        rc = ct_cck_cuda_l1_fwbw(d->l1, d->params, d->X, B, opt->lambda, d->grad, d->rowacc, d->fsum, d->nsum,
                                 &nnz);
    if (rc)
        return rc;
    out->l0 = (double)nnz / B;
    out->density = (double)nnz / ((double)B * d->H);
    ct_cc_losses_finish(d->rowacc, B, d->M, d->fsum, d->nsum, d->H, opt->lambda, out);
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
float *ct_cc_cuda_batch_buffer(ct_cc_cuda *d)
{
    (void)d;
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

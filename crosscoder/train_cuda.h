/* Internal to crosscoder/: the trainer's device side. On CUDA the parameters, Adam
 * moments, batch, activations and gradients live on the GPU; the host keeps copies of
 * the parameters and moments that are refreshed on demand (saving, evaluating, reading
 * the model), and the per-step figures come back as small per-row and per-latent sums.
 * Both models run on CUDA, with the dense or the active-entry kernels (the path option;
 * AUTO picks by the batch's density). */
#ifndef CT_CROSSCODER_TRAIN_CUDA_H
#define CT_CROSSCODER_TRAIN_CUDA_H

#include "crosscoder/crosscoder.h"
#include "crosscoder/loss.h"

#include <stddef.h>

typedef struct ct_cc_cuda ct_cc_cuda;

/* AUTO on CUDA runs the active-entry kernels when fewer than this fraction of the
 * batch's [B,H] activations are nonzero. `crosstime bench crosscoder --device cuda
 * --path dense|sparse` on an H200 (rows/s, sparse against dense): at d=512, H=4096,
 * 1.34x at a mean density of 0.040, 1.14x at 0.062, 0.92x at 0.108; at the 3-checkpoint
 * Pythia-1B shape (d=2048, H=16384, batch 4096) 1.92x at 0.022 and 1.20x at 0.054. The
 * sparse step's time grows linearly with the density, the dense step's does not: they
 * meet near 0.07 at the large shape and 0.10 at the small one. (The CPU's crossover is
 * ct_cc_config.sparse_density.) */
#define CT_CC_CUDA_SPARSE_DENSITY 0.06f

/* CT_EUNSUPPORTED for a build or machine without CUDA. */
int ct_cc_cuda_open(const ct_cc_config *cfg, ct_cc_cuda **out);
void ct_cc_cuda_close(ct_cc_cuda *d); /* NULL ok */
/* Page-locked host buffer i (0 or 1) for batch_rows rows (owned by d): the trainer
 * reads its batches into them so that uploading runs at full bus speed, into both in
 * turn when it reads ahead. */
float *ct_cc_cuda_batch_buffer(ct_cc_cuda *d, int i);
/* Copies params[np] and Adam moments[2*np] (first then second) to the device. */
int ct_cc_cuda_upload(ct_cc_cuda *d, const float *params, const float *moments);
/* Copies them back when the device has changed them since the last copy. */
int ct_cc_cuda_download(ct_cc_cuda *d, float *params, float *moments);
/* Loss and gradient of the device parameters on host rows X[B,M,d]. */
int ct_cc_cuda_forward_backward(ct_cc_cuda *d, const float *X, int B, const ct_cc_lossopt *opt,
                                ct_cc_losses *out);
/* Σ g² over the gradient of the last forward_backward, in the CPU's block order. */
int ct_cc_cuda_grad_sumsq(ct_cc_cuda *d, double *out);
/* ct_cck_adam on the device parameters with the last gradient. */
int ct_cc_cuda_adam(ct_cc_cuda *d, float gscale, double lr, double b1, double b2, double eps, long t);

#endif

/* Internal to crosscoder/: the host-side end of a loss evaluation, shared by the CPU
 * path (loss.c) and the CUDA path (train_cuda.c) so both report the same figures from
 * the same per-row and per-latent sums. */
#ifndef CT_CROSSCODER_LOSS_INTERNAL_H
#define CT_CROSSCODER_LOSS_INTERNAL_H

#include "crosscoder/loss.h"

/* From rowacc[B*(2M+1)] (per row: squared error and variance per checkpoint, then the
 * total error), fsum[H] = Σ_b f_bj and nsum[H] = Σ_m ‖W_dec[j,m]‖: out->l2, out->l1,
 * out->loss = l2 + lambda·l1, and out->ev / out->fired when the caller gave them. */
void ct_cc_losses_finish(const double *rowacc, int B, int M, const float *fsum, const float *nsum, int H,
                         float lambda, ct_cc_losses *out);

#endif

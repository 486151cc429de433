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

/* Whether a gradient pass adds AuxK: BatchTopK selecting the top k (not the inference
 * threshold), dead-latent counters given, and a nonzero aux_coeff. */
int ct_cc_wants_aux(const ct_cc_config *cfg, const ct_cc_lossopt *opt);
/* AuxK's dead latents for this batch: dead[j] = 1 when latent j did not fire in it
 * (fsum[j] == 0) and since_fired[j] + B >= dead_tokens. Returns how many. */
int ct_cc_dead_latents(const ct_cc_config *cfg, const float *fsum, const uint64_t *since_fired, int B,
                       uint8_t *dead);
/* From num = Σ_b ‖ê − e‖² and den = Σ_b ‖e − mean_batch(e)‖²: out->aux and its share of
 * out->loss. Returns the factor c of AuxK's gradient with respect to ê, c·(ê − e), or 0
 * when the ratio is undefined (then the term is left out). */
float ct_cc_aux_finish(const ct_cc_config *cfg, double num, double den, int B, ct_cc_losses *out);

#endif

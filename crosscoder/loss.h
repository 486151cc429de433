/* One forward (and optionally backward) pass of a crosscoder over a batch: the losses
 * of METHOD §2 and their analytic gradient. The trainer calls this every step; it is
 * public so that tests and tools can check the gradient directly. */
#ifndef CT_CROSSCODER_LOSS_H
#define CT_CROSSCODER_LOSS_H

#include "crosscoder/crosscoder.h"

#include <stddef.h>
#include <stdint.h>

/* Scratch buffers for batches of up to `max_batch` rows (opaque; not thread-safe). */
typedef struct ct_cc_workspace ct_cc_workspace;
int ct_cc_workspace_create(const ct_cc_config *cfg, int max_batch, ct_cc_workspace **out);
void ct_cc_workspace_free(ct_cc_workspace *ws);

typedef struct ct_cc_lossopt {
    float lambda;                 /* L1: current λ(t) */
    int k;                        /* BatchTopK: keep the top k·B scaled activations */
    int use_threshold;            /* BatchTopK: keep scaled activations > θ instead */
    float threshold;              /* θ for use_threshold */
    /* AuxK (BatchTopK, gradient passes only): tokens since each latent last fired
     * before this batch ([H]); a latent is dead when it does not fire in this batch and
     * since_fired + B >= dead_tokens. NULL disables AuxK. */
    const uint64_t *since_fired;
    int path;                     /* ct_cc_path */
} ct_cc_lossopt;

#define CT_CC_LOSSOPT_INIT { .lambda = 0.0f, .k = 0, .use_threshold = 0, .threshold = -1.0f, \
                             .since_fired = NULL, .path = CT_CC_PATH_AUTO }

typedef struct ct_cc_losses {
    double loss;      /* L2 + λ·L1 (L1 model) or L2 + aux_coeff·AuxK (BatchTopK) */
    double l2;        /* mean_b Σ_{m,d} (x̂ − x)² */
    double l1;        /* mean_b Σ_j f_j Σ_m ‖W_dec[j,m]‖ */
    double aux;       /* normalised AuxK loss (0 when no latent is dead) */
    double l0;        /* mean active latents per row */
    double density;   /* l0 / H */
    int sparse;       /* 1 when the sparse kernels ran */
    int n_dead;       /* BatchTopK: latents treated as dead in this batch */
    float min_kept;   /* BatchTopK: smallest kept scaled activation (0 when none) */
    double *ev;       /* caller's [M] or NULL: explained variance per checkpoint, the mean
                       * over rows of 1 − ‖x̂_m − x_m‖² / ‖x_m − mean_batch(x_m)‖²; rows
                       * whose checkpoint has zero variance are left out */
    uint8_t *fired;   /* caller's [H] or NULL: 1 when the latent is active in some row */
    uint32_t *fire_count; /* caller's [H] or NULL: rows in which each latent is active (added to) */
} ct_cc_losses;

/* Runs the crosscoder on X[B,M,d] (B <= the workspace's max_batch). When grad is not
 * NULL it receives the gradient of `loss` in the parameter layout (ct_cc_param_count
 * floats, see ct_cc_params_bind). */
int ct_cc_forward_backward(const ct_crosscoder *cc, const float *X, int B,
                           const ct_cc_lossopt *opt, ct_cc_workspace *ws,
                           ct_cc_losses *out, float *grad);

/* The reconstruction x̂ of the last ct_cc_forward_backward call ([B,M,d], owned by ws). */
const float *ct_cc_workspace_xhat(const ct_cc_workspace *ws);
/* The latent activations f of the last call ([B,H], owned by ws). */
const float *ct_cc_workspace_f(const ct_cc_workspace *ws);

#endif

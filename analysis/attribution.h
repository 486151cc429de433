/* Causal analysis of crosscoder latents inside the models (METHOD.md §2 metrics, §5, §6):
 * integrated-gradient indirect effects, single-latent ablation, and the cross-entropy
 * of the reconstruction spliced in at layer L.
 *
 * All three take the M checkpoint models of a crosscoder's tuple (ct_model, any
 * device; the same architecture family and width d, the same tokenizer), the crosscoder
 * FOLDED (ct_cc_fold: it takes raw activations), the layer L of its site, and run the
 * checkpoints on each example's prefix. Examples are processed in batches of
 * `batch` prefixes, right-padded (causal attention: a pad never reaches a real
 * position) and padded positions never contribute. Everything is deterministic for a
 * given device, and `batch` changes the results only through the float rounding of the
 * model's kernels at another padded length (about 1e-7 relative): each example's
 * crosscoder code and sums are formed on their own and added in example order.
 *
 * Layouts: per-checkpoint-and-latent arrays are [M*H], index m*H + j. */
#ifndef CT_ATTRIBUTION_H
#define CT_ATTRIBUTION_H

#include "crosscoder/crosscoder.h"
#include "models/forward/model.h"
#include "models/tasks/tasks.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int steps;         /* integration steps toward the zero baseline (METHOD §5: 10) */
    float threshold;   /* |IE[p,j]| <= threshold is zeroed per position (0.1); 0 keeps all */
    int batch;         /* examples per forward batch */
    /* Progress: called after each batch with examples done and total (may be NULL). */
    void (*progress)(void *user, size_t done, size_t total);
    void *progress_user;
} ct_attr_options;
#define CT_ATTR_OPTIONS_INIT {10, 0.1f, 4, NULL, NULL}

/* Result of ct_attr_ig. Arrays are malloc'd by ct_attr_ig; free with ct_attr_result_free. */
typedef struct {
    int M, H;
    size_t n_examples;
    float *ie;            /* [M*H]: signed IE per checkpoint and latent, thresholded per
                           * position, averaged over each example's positions, then over
                           * examples (METHOD §5) */
    /* Per example e and checkpoint m ([n_examples*M], index e*M + m), unthresholded
     * and summed over positions, for the completeness check: total + error ≈ delta. */
    double *example_total;  /* Σ_p Σ_j IE_m[p,j] */
    double *example_error;  /* Σ_p IE of the error term res_m */
    double *example_delta;  /* metric(zero baseline: f = 0, res = 0) − metric(clean): IE
                             * is an effect of removing, so this is the side the sum
                             * of IE approximates */
    double *example_metric; /* metric(clean) = logit[bad] − logit[good] at the last position */
} ct_attr_result;

/* Integrated gradients of METHOD §5 for every latent and checkpoint over the examples
 * ex[0..n). The metric of an example on checkpoint m is logit[bad] − logit[good] at
 * its last prefix position. out is filled (caller frees with ct_attr_result_free). */
int ct_attr_ig(ct_model *const *models, int M, const ct_crosscoder *cc, int layer,
               const ct_task_example *ex, size_t n, const ct_attr_options *opts,
               ct_attr_result *out);
void ct_attr_result_free(ct_attr_result *r);

/* Ablation of METHOD §6: for each latent latents[i] and checkpoint m, that latent is
 * zeroed at every position with the error term kept, i.e. the residual at L becomes
 * x_m − f[:, j]·W_dec[j, m] (exactly x_m when the latent never fires), and the rest of
 * checkpoint m runs. Means over examples of LogProbDiff = logp(good) − logp(bad) at
 * the last position and of accuracy [logp(good) > logp(bad)]. */
typedef struct {
    int M;
    size_t n_latents;
    double *clean_lpd, *clean_acc;     /* [M] */
    double *ablated_lpd, *ablated_acc; /* [n_latents*M], index i*M + m */
} ct_ablation_result;

int ct_attr_ablate(ct_model *const *models, int M, const ct_crosscoder *cc, int layer,
                   const ct_task_example *ex, size_t n, const int32_t *latents,
                   size_t n_latents, const ct_attr_options *opts, ct_ablation_result *out);
void ct_ablation_result_free(ct_ablation_result *r);

/* ΔCE of METHOD §2: mean next-token cross-entropy over all positions of n_seq
 * sequences of seq_len tokens (ids [n_seq*seq_len], BOS included where the corpus has
 * it), clean and with x̂_m (the reconstruction, without the error term) spliced in at
 * layer L of checkpoint m. ce_clean and ce_spliced are [M]; ΔCE = spliced − clean. */
int ct_attr_delta_ce(ct_model *const *models, int M, const ct_crosscoder *cc, int layer,
                     const int32_t *ids, int n_seq, int seq_len, const ct_attr_options *opts,
                     double *ce_clean, double *ce_spliced);

#endif

/* Training a crosscoder (METHOD §2): Adam with global-norm clipping, the λ warm-up and
 * lr decay schedules, BatchTopK k annealing, θ tracking and AuxK, metrics as JSON lines,
 * periodic checkpoints of the full training state, and exact resume.
 *
 * Determinism: the same config, rows and thread count give bit-identical weights; a
 * run restored from a state saved after step s continues exactly as the uninterrupted
 * run would have. */
#ifndef CT_CROSSCODER_TRAIN_H
#define CT_CROSSCODER_TRAIN_H

#include "crosscoder/crosscoder.h"
#include "crosscoder/loss.h"
#include "crosscoder/source.h"
#include "kernels/kernels.h"

#include <stddef.h>

typedef struct ct_cc_trainer ct_cc_trainer; /* opaque */

typedef struct ct_cc_callbacks {
    void *ctx;
    /* One JSON object (no trailing newline) per logging interval and split. */
    int (*on_metrics)(void *ctx, const char *json);
    /* The serialised state after `step` steps, every checkpoint_every steps; the
     * buffer is only valid during the call. */
    int (*on_checkpoint)(void *ctx, long step, const void *state, size_t len);
    /* After every step. */
    int (*on_step)(void *ctx, long step, const ct_cc_losses *losses);
} ct_cc_callbacks; /* a nonzero return from any callback stops training with that code */

/* `train` and `val` (val may be NULL) are borrowed and must outlive the trainer; rows
 * they return must already be scaled by `scale` ([M], NULL = 1), which is recorded in
 * the model. The model is initialised from cfg->seed. */
int ct_cc_trainer_create(const ct_cc_config *cfg, ct_cc_source *train, ct_cc_source *val,
                         const float *scale, ct_cc_trainer **out);
void ct_cc_trainer_free(ct_cc_trainer *t);
void ct_cc_trainer_set_callbacks(ct_cc_trainer *t, const ct_cc_callbacks *cb);
/* Where the steps run (default CPU). CUDA keeps the parameters, Adam moments and every
 * per-step buffer on the GPU and runs the dense kernels of either model there (cuBLAS
 * fp32, fixed-order reductions: bit-identical across runs on one GPU, within fp32
 * rounding of the CPU); the model, saves and evaluations see the device state.
 * CT_EUNSUPPORTED without a CUDA build or device. */
int ct_cc_trainer_set_device(ct_cc_trainer *t, ct_device dev);
/* Read each next batch on a background thread while the current step computes
 * (crosscoder/prefetch.h): 1 on, 0 off, -1 (the default) on for CUDA only, where the host
 * is otherwise idle while the GPU trains. Results are the same either way. */
void ct_cc_trainer_set_prefetch(ct_cc_trainer *t, int mode);
/* Show a progress line (common/progress.h) during ct_cc_trainer_run; default off. */
void ct_cc_trainer_set_progress(ct_cc_trainer *t, int on);

/* One optimiser step; `out` (may be NULL) receives the step's losses. */
int ct_cc_trainer_step(ct_cc_trainer *t, ct_cc_losses *out);
/* Steps until cfg.steps are done (emitting metrics and checkpoints on the way). */
int ct_cc_trainer_run(ct_cc_trainer *t);
long ct_cc_trainer_steps_done(const ct_cc_trainer *t);
/* The model being trained (owned by the trainer). */
ct_crosscoder *ct_cc_trainer_model(ct_cc_trainer *t);
/* The resolved config. */
const ct_cc_config *ct_cc_trainer_config(const ct_cc_trainer *t);

/* Full training state: "CTCCSTAT", version, config, step, RNG, data cursor, θ, dead
 * counters, parameters, Adam moments, metric accumulators, SHA-256. *buf is malloc'd.
 * Stops any reading ahead (the next step resumes it), so the caller may then write to
 * the store the training rows come from. */
int ct_cc_trainer_save(ct_cc_trainer *t, void **buf, size_t *len);
/* Restores a state saved by a trainer with the same config (CT_EINVAL otherwise) and
 * seeks the training source to the saved cursor. `name` labels errors. */
int ct_cc_trainer_restore(ct_cc_trainer *t, const void *buf, size_t len, const char *name);
int ct_cc_trainer_save_file(ct_cc_trainer *t, const char *path);
int ct_cc_trainer_restore_file(ct_cc_trainer *t, const char *path);

/* Metrics of the current model over `rows` rows of `src` read from its start (the
 * cursor is reset to (0,0) first), written as one JSON object to *json (malloc'd). */
int ct_cc_trainer_evaluate(ct_cc_trainer *t, ct_cc_source *src, size_t rows, char **json);

/* Schedules at 0-based step `step` (reference formulas):
 * lr:  lr · 1 for step < lr_decay_start·steps, else lr · (1 − (step − s0)/(steps − s0)),
 *      s0 = lr_decay_start·steps.
 * λ:   l1_coeff · step / (l1_warmup·steps) for step < l1_warmup·steps, else l1_coeff.
 * k:   max(1, round(k_start − (k_start − k_end)·step/k_anneal_steps)) while annealing
 *      (halves to even, like Python's round),
 *      then k_end. */
double ct_cc_lr_at(const ct_cc_config *cfg, long step);
double ct_cc_lambda_at(const ct_cc_config *cfg, long step);
int ct_cc_k_at(const ct_cc_config *cfg, long step);

#endif

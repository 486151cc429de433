/* Sparse crosscoders between M checkpoints (METHOD.md §2–§3): configuration, the
 * parameter block, encode/decode, folding of the normalisation factors, RelDec, and
 * the trained artifact's binary format.
 *
 * Layouts follow the reference: W_enc[M,d,H], b_enc[H], W_dec[H,M,d], b_dec[M,d], fp32,
 * all in one allocation (ct_crosscoder.mem) with named pointers into it. A batch of
 * rows is [B,M,d] fp32, row-major. */
#ifndef CT_CROSSCODER_H
#define CT_CROSSCODER_H

#include <stddef.h>
#include <stdint.h>

typedef enum { CT_CC_L1 = 0, CT_CC_BATCHTOPK = 1 } ct_cc_type;
/* Kernel path for the sparse-friendly parts of a step. AUTO picks sparse when the
 * measured fraction of active latents in the batch is below sparse_density. */
typedef enum { CT_CC_PATH_AUTO = 0, CT_CC_PATH_DENSE = 1, CT_CC_PATH_SPARSE = 2 } ct_cc_path;

typedef struct ct_cc_config {
    int type;              /* ct_cc_type */
    int M, d, H;           /* checkpoints, residual width, dictionary size */
    int batch;             /* rows per step */
    long steps;            /* optimiser steps; ignored when tokens > 0 */
    long long tokens;      /* when > 0: steps = tokens / batch */
    float lr, beta1, beta2, eps;
    float grad_clip;       /* global L2 norm; <= 0 disables */
    float l1_coeff;        /* final λ of the L1 model */
    double l1_warmup;      /* fraction of steps over which λ rises from 0 */
    double lr_decay_start; /* fraction of steps after which lr decays linearly to 0 */
    float dec_init_norm;   /* norm of each W_dec[j,m,:] at init; 0 = 0.08 (L1) / 1.0 (BatchTopK) */
    uint64_t seed;
    long checkpoint_every; /* steps between checkpoint callbacks; 0 = never */
    long log_every;        /* steps between metric lines; 0 = only at the end */
    /* BatchTopK */
    int k_start, k_end;         /* k annealed linearly k_start -> k_end ... */
    long k_anneal_steps;        /* ... over this many steps */
    long threshold_start_step;  /* θ is tracked for steps > this */
    float threshold_beta;       /* EMA factor of θ */
    float aux_coeff;            /* AuxK weight */
    int k_aux;                  /* dead latents per row in AuxK; 0 = d/2 */
    long long dead_tokens;      /* a latent is dead after this many tokens without firing */
    /* kernels */
    int path;                   /* ct_cc_path */
    float sparse_density;       /* AUTO threshold on the active fraction; the measured
                                 * dense/sparse crossover (bench crosscoder --path) lay
                                 * between 0.15 and 0.3 at d=512, H=4096 */
    /* metrics */
    int val_rows;               /* held-out rows evaluated per log line (0 = none) */
} ct_cc_config;

/* The paper's defaults (METHOD §2): L1 model, M = 2, H = 16384, batch 4096, 97,656
 * steps, Adam 5e-5 (0.9, 0.999, 1e-8), clip 1.0, λ 2 after 5% warm-up, decay after 80%. */
#define CT_CC_CONFIG_INIT                                                                   \
    {                                                                                       \
        .type = CT_CC_L1, .M = 2, .d = 2048, .H = 16384, .batch = 4096, .steps = 97656,     \
        .tokens = 0, .lr = 5e-5f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,             \
        .grad_clip = 1.0f, .l1_coeff = 2.0f, .l1_warmup = 0.05, .lr_decay_start = 0.8,    \
        .dec_init_norm = 0.0f, .seed = 124, .checkpoint_every = 5000, .log_every = 100,      \
        .k_start = 1000, .k_end = 200, .k_anneal_steps = 5000,                              \
        .threshold_start_step = 1000, .threshold_beta = 0.999f, .aux_coeff = 1.0f / 32.0f,  \
        .k_aux = 0, .dead_tokens = 10000000LL, .path = CT_CC_PATH_AUTO,                    \
        .sparse_density = 0.15f, .val_rows = 0                                               \
    }

/* Checks ranges and fills the derived defaults (dec_init_norm, k_aux, steps from
 * tokens) in place. 0 or CT_EINVAL naming the field. */
int ct_cc_config_resolve(ct_cc_config *cfg);

typedef struct ct_cc_params {
    float *W_enc; /* [M,d,H] */
    float *b_enc; /* [H] */
    float *W_dec; /* [H,M,d] */
    float *b_dec; /* [M,d] */
} ct_cc_params;

typedef struct ct_crosscoder {
    ct_cc_config cfg;
    float *mem;       /* one allocation: W_enc, b_enc, W_dec, b_dec in this order */
    size_t n_params;
    ct_cc_params p;   /* pointers into mem */
    float *scale;     /* [M] normalisation factors s_m (1 when unknown) */
    int folded;       /* 1 after ct_cc_fold: weights take raw activations */
    float threshold;  /* BatchTopK inference threshold θ; < 0 until tracked */
} ct_crosscoder;

/* Allocates a crosscoder for a resolved config, parameters zeroed, scale 1. The
 * caller frees it with ct_cc_free. */
int ct_cc_create(const ct_cc_config *cfg, ct_crosscoder **out);
void ct_cc_free(ct_crosscoder *cc);
size_t ct_cc_param_count(int M, int d, int H);
/* Points p at the four tensors inside a block of ct_cc_param_count floats. */
void ct_cc_params_bind(float *mem, int M, int d, int H, ct_cc_params *p);
/* METHOD §2 init: W_dec ~ N(0,1) from `seed`, each (j,m) row rescaled to
 * cfg.dec_init_norm, W_enc = W_dec^T, biases 0. */
void ct_cc_init(ct_crosscoder *cc, uint64_t seed);

/* f[B,H] for rows x[B,M,d] (raw rows when folded, scaled rows otherwise). L1: ReLU.
 * BatchTopK: keeps relu(pre)_j when relu(pre)_j·Σ_m‖W_dec[j,m]‖ > θ; before θ exists
 * (threshold < 0) it applies BatchTopK with k = k_end over this batch. */
int ct_cc_encode(const ct_crosscoder *cc, const float *x, size_t B, float *f);
/* xhat[B,M,d] = f W_dec + b_dec. */
int ct_cc_decode(const ct_crosscoder *cc, const float *f, size_t B, float *xhat);

/* Folds the factors into the weights (W_enc[m] *= s_m, W_dec[:,m] /= s_m,
 * b_dec[m] /= s_m) so the crosscoder takes raw activations. CT_EINVAL when already
 * folded. */
int ct_cc_fold(ct_crosscoder *cc);

/* RelDec (METHOD §3) from unfolded decoder norms (folded weights are unfolded on the
 * fly): out[j] = ‖W_dec[j,b]‖ / (‖W_dec[j,a]‖ + ‖W_dec[j,b]‖), 0.5 when both are 0. */
int ct_cc_reldec(const ct_crosscoder *cc, int a, int b, float *out /* [H] */);
/* One-vs-all: out[j*M+m] = ‖W_dec[j,m]‖ / Σ_k ‖W_dec[j,k]‖ (1/M when all are 0). */
int ct_cc_reldec_ova(const ct_crosscoder *cc, float *out /* [H*M] */);

/* The trained artifact: magic "CTCCMODL", version, config, scale, threshold, folded
 * flag, parameters, SHA-256 of everything before it. *buf is malloc'd; caller frees. */
int ct_cc_save(const ct_crosscoder *cc, void **buf, size_t *len);
int ct_cc_load(const void *buf, size_t len, const char *name, ct_crosscoder **out);
int ct_cc_save_file(const ct_crosscoder *cc, const char *path);
int ct_cc_load_file(const char *path, ct_crosscoder **out);

#endif

/* Pretraining a GPT-NeoX model from scratch: random initialisation, the mean
 * next-token cross-entropy and its gradient with respect to every parameter, global
 * gradient-norm clipping, AdamW with a warmup + cosine learning-rate schedule, a seeded
 * batch sampler, resumable training state, and a Hugging Face checkpoint writer.
 *
 * Initialisation follows transformers' GPTNeoXPreTrainedModel._init_weights: every
 * Linear and Embedding weight (query_key_value, dense, dense_h_to_4h, dense_4h_to_h,
 * embed_in, embed_out) ~ normal(0, init_std), biases 0, LayerNorm weight 1 and bias 0.
 * Each tensor draws from its own stream seeded by (seed, tensor name), so the values do
 * not depend on the order tensors are built in.
 *
 * Weight decay (decoupled, AdamW) applies to the 2-D weight matrices, embeddings and the
 * output head included, and not to biases or LayerNorm parameters: what GPT-NeoX's
 * training code and nanoGPT do.
 *
 * A step is deterministic: same state, same batch, same binary and device give
 * bit-identical parameters. */
#ifndef CT_PRETRAIN_H
#define CT_PRETRAIN_H

#include "kernels/kernels.h"
#include "models/config.h"
#include "models/forward/model.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ct_pretrain ct_pretrain; /* opaque */

typedef struct {
    int batch_sequences;   /* B: sequences per step */
    int ctx;               /* T: positions per sequence (a batch holds T+1 tokens each) */
    long steps;            /* schedule length: the cosine reaches min_lr here */
    double lr, min_lr;     /* peak and final learning rate */
    long warmup_steps;     /* linear warmup length */
    double weight_decay;   /* decoupled, on 2-D weights only */
    double grad_clip;      /* global L2 norm limit; 0: no clipping */
    double beta1, beta2, eps; /* Adam (Pythia's 0.9, 0.95, 1e-8) */
    double init_std;       /* initializer_range */
    uint64_t seed;         /* initialisation and batch sampling */
    ct_device device;
} ct_pretrain_config;
#define CT_PRETRAIN_CONFIG_INIT                                                              \
    {8, 128, 1000, 1e-3, 1e-4, 100, 0.1, 1.0, 0.9, 0.95, 1e-8, 0.02, 1234, CT_DEVICE_CPU}

/* A GPT-NeoX config as the recipe's pretrain.model block describes it: intermediate 0
 * means 4 x hidden; exact GELU, LayerNorm eps 1e-5, rotary base 10000, untied output
 * head, bos = eos = 0 (callers with another tokenizer set them after). */
void ct_pretrain_neox_config(ct_model_config *out, int vocab, int hidden, int layers, int heads,
                             int intermediate, int ctx, float rotary_pct, int parallel_residual);

/* Learning rate of the step with 0-based index `step`: lr * (step+1) / warmup_steps
 * during the warmup, then min_lr + (lr - min_lr) * (1 + cos(pi * p)) / 2 with
 * p = (step - warmup_steps) / (steps - warmup_steps), and min_lr from `steps` on. */
double ct_pretrain_lr(const ct_pretrain_config *cfg, long step);

/* Builds a randomly initialised GPT-NeoX model (model->arch must be CT_ARCH_GPT_NEOX,
 * ctx <= max_positions). Both configs are copied. */
int ct_pretrain_create(const ct_pretrain_config *cfg, const ct_model_config *model,
                       ct_pretrain **out);
void ct_pretrain_free(ct_pretrain *t); /* NULL ok */

typedef struct {
    double loss;      /* mean next-token cross-entropy before the update */
    double grad_norm; /* global L2 norm before clipping */
    double lr;        /* learning rate used */
    long step;        /* steps done after this one */
} ct_pretrain_stats;

/* One training step on tokens [B, T+1] (row-major, host): the model reads positions
 * 0..T-1 of each row and predicts positions 1..T. stats may be NULL. */
int ct_pretrain_step(ct_pretrain *t, const int32_t *tokens, ct_pretrain_stats *stats);
/* Loss and gradients only (the gradients replace the previous ones; no update). */
int ct_pretrain_grad(ct_pretrain *t, const int32_t *tokens, double *loss);
/* Mean next-token cross-entropy of tokens [n_seq, T+1] without touching gradients. */
int ct_pretrain_eval(ct_pretrain *t, const int32_t *tokens, int n_seq, double *loss);

/* Fills batch [B, T+1] with windows of a token stream at offsets drawn uniformly from
 * [0, n - T - 1] by the trainer's data stream (part of the saved state). */
int ct_pretrain_sample_batch(ct_pretrain *t, const int32_t *stream, size_t n, int32_t *batch);

/* Parameters as one flat array in the model's layout (tensors 64-byte aligned with zero
 * padding between; query_key_value rows ordered [q|k|v][head][dim], not HF's
 * per-head interleave). Gradients share the layout. */
typedef struct {
    const char *name; /* Hugging Face name, e.g. "gpt_neox.layers.0.attention.dense.weight" */
    size_t offset;    /* in floats, into the flat array */
    size_t numel;
    int rows, cols;   /* cols = 0 for a vector */
    int decay;        /* weight decay applies */
} ct_pretrain_tensor;
size_t ct_pretrain_n_params(const ct_pretrain *t); /* floats of the flat array */
size_t ct_pretrain_n_tensors(const ct_pretrain *t);
const ct_pretrain_tensor *ct_pretrain_tensor_at(const ct_pretrain *t, size_t i); /* owned */
int ct_pretrain_get_params(const ct_pretrain *t, float *dst);
int ct_pretrain_set_params(ct_pretrain *t, const float *src); /* Adam state untouched */
int ct_pretrain_get_grads(const ct_pretrain *t, float *dst);
long ct_pretrain_steps_done(const ct_pretrain *t);
const ct_pretrain_config *ct_pretrain_get_config(const ct_pretrain *t); /* owned by t */
/* The model being trained (owned by t; its weights change with every step). */
ct_model *ct_pretrain_model(ct_pretrain *t);

/* Training state (parameters, Adam moments, step count, sampler state, with both
 * configs to check against) in a versioned binary file with a SHA-256 trailer, written
 * atomically. Restoring needs a trainer created with the same configs; the schedule
 * (steps, lr, ...) may differ, the shapes and seed may not. */
int ct_pretrain_save_state(const ct_pretrain *t, const char *path);
int ct_pretrain_restore_state(ct_pretrain *t, const char *path);
/* The same state as an in-memory image (*out malloc'd, caller frees), and restoring
 * from one (`name` labels errors). */
int ct_pretrain_state_image(const ct_pretrain *t, unsigned char **out, size_t *len);
int ct_pretrain_state_load(ct_pretrain *t, const void *data, size_t len, const char *name);

/* A Hugging Face GPTNeoXForCausalLM checkpoint in `dir` (created when missing):
 * config.json as transformers writes it, model.safetensors (fp32, HF names, fused
 * query_key_value in HF's per-head layout) and a copy of tokenizer_json (NULL: none). */
int ct_pretrain_write_hf(ct_pretrain *t, const char *dir, const char *tokenizer_json);

#endif

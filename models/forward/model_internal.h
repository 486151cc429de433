/* The model's private state: weights in one device allocation with pointers into it,
 * and the activation arena of the last forward (internal to models/forward/). */
#ifndef CT_MODEL_INTERNAL_H
#define CT_MODEL_INTERNAL_H

#include "models/forward/model.h"

typedef struct {
    float *ln1_w, *ln1_b;   /* NULL for OLMo's non-parametric norm */
    float *qkv_w, *qkv_b;   /* [3C, C] rows ordered [q|k|v][head][dim]; bias may be NULL */
    float *proj_w, *proj_b; /* [C, C] */
    float *ln2_w, *ln2_b;
    float *fc_w, *fc_b;     /* [FI, C]; OLMo: gate rows then up rows (FI = 2I) */
    float *fcp_w, *fcp_b;   /* [C, I] */
} ct_layer_w;

/* Activations of one block: slot 0 is reused by every block that backward does not
 * need; blocks above grad_layer each own a slot. */
typedef struct {
    float *ln1, *ln1_mean, *ln1_rstd;
    float *qkv, *q, *k, *v;
    float *probs; /* only in kept slots */
    float *atty;  /* attention output, heads merged, before the dense projection */
    float *mid;   /* residual after attention (sequential residual) */
    float *ln2, *ln2_mean, *ln2_rstd;
    float *fch;   /* MLP pre-activation [N, FI] */
    float *fca;   /* MLP activation [N, I] */
} ct_layer_act;

struct ct_model {
    ct_model_config cfg;
    ct_kern *k;
    int C, nh, hd, I, FI, V, L, rot;
    float eps, scale;
    ct_gelu_kind gelu;
    int parallel, bloom, olmo;
    /* Training: block 0 keeps its attention probabilities too, so that a forward with
     * grad_layer 0 holds everything the backward to the embeddings needs. */
    int keep_all;

    float *params; /* device, one allocation */
    size_t n_params;
    float *wte, *emb_ln_w, *emb_ln_b, *lnf_w, *lnf_b, *head_w;
    float *slopes; /* ALiBi [nh] inside params (BLOOM) */
    ct_layer_w *lw; /* [L], host array of device pointers */

    /* activation arena */
    void *arena;
    size_t arena_bytes;
    int rope_T; /* T the rope tables hold (-1: stale) */
    ct_layer_act *la; /* [n_slots] */
    int n_slots;
    float **res;      /* residual slots */
    int n_res;
    int32_t *ids, *rows, *targets;
    float *cos, *sin;
    float *xr, *lnf, *lnf_mean, *lnf_rstd, *chunk, *ce;
    /* backward */
    float *dres[2], *dmid, *dln, *datty, *dq, *dk, *dv, *dqkv, *dfch, *dfca, *dlnf, *dxr;

    /* what the last forward left for the backward */
    int fwd_ok, B, T, R, grad_layer, patch_layer, chunk_rows;
    int32_t *rows_host; /* [R] */
};

/* Index of the residual slot holding the output of block l (l = -1: embeddings). */
int ct_model_res_slot(const ct_model *m, int l);
/* Activation slot of block l. */
int ct_model_act_slot(const ct_model *m, int l);
/* Training backward (GPT-NeoX) after a forward with keep_all set, grad_layer 0 and a
 * head over every position (n_rows 0, no logits asked for): the mean next-token
 * cross-entropy over the rows whose targets[r] (host, [B*T]) is >= 0 goes to *loss and
 * its gradient with respect to every parameter is ADDED into grads (device, n_params
 * floats laid out like params). Reductions run in a fixed order, embedding rows are
 * scatter-added in position order. */
int ct_model_backward_params(ct_model *m, const int32_t *targets, float *grads, double *loss);

/* Lays out the arena for B, T, R rows and grad_layer, growing it when needed. */
int ct_model_arena_plan(ct_model *m, int B, int T, int R, int grad_layer);

#endif

/* Forward and backward of GPT-NeoX (Pythia), BLOOM and OLMo-1 ("-hf") decoders, as
 * Hugging Face transformers computes them, on the CPU or a CUDA device.
 *
 * A model is built from a ct_model_config plus a tensor getter that fills fp32 weights
 * by their canonical Hugging Face name, so the model knows nothing of file formats.
 * Sequences in a batch share one length T and are processed without an attention mask:
 * shorter sequences are right-padded, and since attention is causal a pad never reaches
 * an earlier position (read results at each sequence's own last real position).
 *
 * "Residual at block L" means the hidden state at the OUTPUT of decoder block L
 * (0-indexed): after block L has added its attention and MLP outputs.
 *
 * A model holds its activations: forward, then backward, then the next forward. It is
 * not safe to use one model from two threads at once. */
#ifndef CT_MODEL_H
#define CT_MODEL_H

#include "kernels/kernels.h"
#include "models/config.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ct_model ct_model; /* opaque */

/* Fills dst (n_expected floats) with the tensor named hf_name; returns 0 or a CT_E*
 * code (CT_ENOTFOUND when absent) after recording a message. */
typedef int (*ct_tensor_get_fn)(void *user, const char *hf_name, float *dst, size_t n_expected);

typedef struct {
    ct_device device; /* where weights, activations and kernels live */
} ct_model_options;
#define CT_MODEL_OPTIONS_INIT {CT_DEVICE_CPU}

/* Reads every weight through `get` (called once per tensor, from this thread) and
 * validates the config. The config is copied; `get` and `user` are not kept. */
int ct_model_create(const ct_model_config *cfg, ct_tensor_get_fn get, void *user,
                    const ct_model_options *opts, ct_model **out);
/* Opens a checkpoint directory or hf: source (models/checkpoint) and builds its model. */
int ct_model_load(const char *source, const ct_model_options *opts, ct_model **out);
void ct_model_free(ct_model *m); /* NULL ok */

const ct_model_config *ct_model_get_config(const ct_model *m); /* owned by m */
ct_device ct_model_device(const ct_model *m);
/* Bytes of weights and of the activation arena currently held (device memory). */
size_t ct_model_param_bytes(const ct_model *m);
size_t ct_model_activation_bytes(const ct_model *m);

/* One forward pass. All pointers are host memory owned by the caller. */
typedef struct {
    int n_seq, seq_len;     /* B sequences of T tokens */
    const int32_t *ids;     /* [B*T], row-major; each id < cfg->vocab */

    /* Residuals to return: capture[i] ([B*T*hidden]) receives the residual at block
     * capture_layers[i]. Blocks above the deepest capture are run only when a head
     * output or a backward is asked for. */
    int n_capture;
    const int *capture_layers;
    float *const *capture;

    /* Patching: the residual at block patch_layer is replaced by patch [B*T*hidden]
     * and only the blocks above run (those below cannot influence the result).
     * -1: no patch. */
    int patch_layer;
    const float *patch;

    /* Keep what ct_model_backward needs to return the gradient at the residual of
     * block grad_layer (-1: no backward planned). */
    int grad_layer;

    /* Rows of the head: flat positions b*T+t at which logits are computed; n_rows = 0
     * means every position (R = B*T rows, in order). */
    int n_rows;
    const int32_t *rows;
    float *logits;   /* [R*vocab] or NULL */
    float *logprobs; /* [R*vocab] log-softmax, or NULL */
    float *ce;       /* [R]: -log p(ids[r+1]) of the next token in the same sequence;
                        0 at a sequence's last position. NULL: not computed */
} ct_forward_args;
#define CT_FORWARD_ARGS_INIT {0, 0, NULL, 0, NULL, NULL, -1, NULL, -1, 0, NULL, NULL, NULL, NULL}

int ct_model_forward(ct_model *m, const ct_forward_args *a);

/* Gradient of a scalar function of the logits at the last forward's head rows with
 * respect to the residual at block grad_layer (the forward's). dlogits [R*vocab] is
 * d(metric)/d(logits) at those rows; dresid receives [B*T*hidden]. */
int ct_model_backward(ct_model *m, const float *dlogits, float *dresid);
/* The same for metric = Σ_r (logit[r, plus[r]] − logit[r, minus[r]]), e.g. a logit
 * difference at each sequence's last position (plus or minus may be NULL). */
int ct_model_backward_logit_diff(ct_model *m, const int32_t *plus, const int32_t *minus,
                                 float *dresid);

/* Tensor getter over a ct_checkpoint (models/checkpoint), for ct_model_create. */
int ct_model_get_from_checkpoint(void *checkpoint, const char *hf_name, float *dst,
                                 size_t n_expected);

#endif

/* Hugging Face transformer checkpoints (GPT-NeoX/Pythia, BLOOM, OLMo-1 "-hf"), read
 * without Python: config.json, weights as safetensors (mapped, zero-copy) or PyTorch's
 * zip-pickle pytorch_model.bin (a restricted unpickler that never executes anything),
 * single or sharded, from a local directory or the Hugging Face hub cache.
 *
 * Tensors are looked up by canonical name: the name transformers' own save_pretrained
 * uses for the *ForCausalLM model (e.g. "gpt_neox.layers.0.attention.dense.weight",
 * "transformer.h.3.mlp.dense_h_to_4h.bias", "model.layers.1.self_attn.q_proj.weight"),
 * whatever prefix variant the file carries. Non-parameter buffers of old files
 * (attention.bias, attention.masked_bias, rotary_emb.inv_freq) are skipped. A tied
 * output head ("embed_out.weight" / "lm_head.weight" absent, tie_word_embeddings)
 * resolves to the input embedding. The embedding has cfg->vocab rows, which may exceed
 * the tokenizer's vocabulary: the extra rows are padding. */
#ifndef CT_CHECKPOINT_H
#define CT_CHECKPOINT_H

#include "common/sha256.h"
#include "models/checkpoint/tensor.h"
#include "models/config.h"

#include <stddef.h>

typedef struct ct_checkpoint ct_checkpoint; /* opaque */

typedef enum {
    CT_CKPT_WEIGHTS_AUTO = 0,    /* safetensors when present, else pytorch_model.bin */
    CT_CKPT_WEIGHTS_SAFETENSORS, /* model.safetensors[.index.json] only */
    CT_CKPT_WEIGHTS_PYTORCH,     /* pytorch_model.bin[.index.json] only */
} ct_ckpt_weights;

typedef struct {
    ct_ckpt_weights weights;
} ct_ckpt_open_opts;
#define CT_CKPT_OPEN_OPTS_INIT {CT_CKPT_WEIGHTS_AUTO}

/* `source`: a local directory, or "hf:ORG/NAME[@REVISION]" (REVISION: a branch, tag
 * or commit hash; default "main") resolved in the hub cache: $HF_HUB_CACHE (or the
 * older $HUGGINGFACE_HUB_CACHE), else $HF_HOME/hub, else
 * $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
 * A revision missing from the cache is CT_ENOTFOUND with the download command in the
 * message. Parses config.json, opens every weight file and checks that each tensor the
 * architecture needs is present with the shape the config implies. */
int ct_ckpt_open(const char *source, ct_checkpoint **out);
int ct_ckpt_open_ex(const char *source, const ct_ckpt_open_opts *opts, ct_checkpoint **out);
void ct_ckpt_close(ct_checkpoint *ckpt); /* NULL ok; invalidates every view */

/* Owned by the checkpoint. */
const ct_model_config *ct_ckpt_config(const ct_checkpoint *ckpt);
/* The resolved directory (config.json, tokenizer.json live there); owned. */
const char *ct_ckpt_dir(const ct_checkpoint *ckpt);

/* View of a tensor by canonical name (see above); CT_ENOTFOUND when absent. */
int ct_ckpt_tensor(const ct_checkpoint *ckpt, const char *name, ct_tensor_view *out);
/* The tensor widened to fp32 into `dst`, which holds `n_expected` floats; CT_EINVAL
 * when the tensor's element count differs, CT_EFORMAT when its dtype is not a float. */
int ct_ckpt_tensor_f32(const ct_checkpoint *ckpt, const char *name, float *dst, size_t n_expected);

/* Iteration in canonical-name order (views named canonically). */
size_t ct_ckpt_tensor_count(const ct_checkpoint *ckpt);
void ct_ckpt_tensor_at(const ct_checkpoint *ckpt, size_t i, ct_tensor_view *out);

/* Content identity of the checkpoint, for cache keys: SHA-256 over the sorted weight
 * file names with their content digests (the hub cache's blobs/<sha256> name where the
 * file links to one, else the hash of the content) plus the digests of config.json and
 * tokenizer.json ("absent" when missing). Hashes the files on each call (no memo). */
int ct_ckpt_digest(const ct_checkpoint *ckpt, char hex[CT_SHA256_HEX_LEN + 1]);
/* Same digest from a source string without loading any weights. */
int ct_ckpt_digest_source(const char *source, const ct_ckpt_open_opts *opts,
                          char hex[CT_SHA256_HEX_LEN + 1]);

/* Resolves a source to its directory (see ct_ckpt_open); caller frees *dir. */
int ct_ckpt_resolve(const char *source, char **dir);

/* Parses a config.json alone (errors name the file, the field and its value). */
int ct_ckpt_parse_config(const char *path, ct_model_config *out);

#endif

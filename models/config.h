/* The architecture description of a transformer checkpoint, as read from a Hugging
 * Face config.json (GPTNeoXForCausalLM, BloomForCausalLM, OlmoForCausalLM). Shared by
 * the checkpoint reader (which fills it) and the forward pass (which runs it). */
#ifndef CT_MODEL_CONFIG_H
#define CT_MODEL_CONFIG_H

#include <stddef.h>

typedef enum {
    CT_ARCH_GPT_NEOX = 1, /* Pythia */
    CT_ARCH_BLOOM = 2,
    CT_ARCH_OLMO = 3,     /* OLMo-1 "-hf" (OlmoForCausalLM) */
} ct_arch;

typedef enum {
    CT_ACT_GELU_ERF = 1,  /* "gelu": exact erf form (transformers' GELUActivation) */
    CT_ACT_GELU_TANH = 2, /* "gelu_new", "gelu_fast", "gelu_pytorch_tanh", BLOOM's bloom_gelu */
    CT_ACT_SILU = 3,      /* OLMo's SwiGLU gate */
} ct_activation;

typedef struct {
    ct_arch arch;
    int n_layer;
    int n_head;
    int hidden;            /* d_model */
    int intermediate;      /* MLP width (OLMo: width of each of gate/up) */
    int vocab;             /* rows of the embedding matrix (may include padding) */
    int max_positions;     /* max_position_embeddings (0 when not applicable, BLOOM) */
    ct_activation act;
    float norm_eps;        /* layer_norm_eps / layer_norm_epsilon */
    /* GPT-NeoX and OLMo rotary embeddings */
    float rotary_pct;      /* fraction of each head's dims rotated (OLMo: 1.0) */
    float rotary_base;     /* rope_theta / rotary_emb_base */
    int parallel_residual; /* GPT-NeoX use_parallel_residual */
    int attention_bias;    /* OLMo attention_bias (GPT-NeoX/BLOOM: always biased) */
    float clip_qkv;        /* OLMo clip_qkv; 0 = no clipping */
    int tie_embeddings;    /* tie_word_embeddings: output head shares the input embedding */
    int bos_token_id, eos_token_id, pad_token_id; /* -1 when absent */
} ct_model_config;

#endif

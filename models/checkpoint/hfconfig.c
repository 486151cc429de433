/* config.json -> ct_model_config, with transformers' own defaults for absent keys
 * (configuration_gpt_neox.py, configuration_bloom.py, configuration_olmo.py). Values
 * the forward pass does not implement are refused here, naming the field and value,
 * rather than silently computing something else. */
#include "models/checkpoint/checkpoint.h"
#include "common/error.h"
#include "common/io.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *path;
    json_t *root;
} cfg_ctx;

static json_t *get(const cfg_ctx *c, const char *key)
{
    json_t *v = json_object_get(c->root, key);
    return json_is_null(v) ? NULL : v;
}

static int get_int(const cfg_ctx *c, const char *key, long long dflt, long long lo, long long hi,
                   int *out)
{
    json_t *v = get(c, key);
    long long x = dflt;
    if (v) {
        if (json_is_integer(v))
            x = json_integer_value(v);
        else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
                 fabs(json_real_value(v)) < 1e15)
            x = (long long)json_real_value(v);
        else
            return ct_error_set(CT_EFORMAT, "%s: field \"%s\" must be an integer", c->path, key);
    }
    if (x < lo || x > hi)
        return ct_error_set(CT_EFORMAT, "%s: field \"%s\" = %lld is out of range [%lld, %lld]",
                            c->path, key, x, lo, hi);
    *out = (int)x;
    return 0;
}

/* First of several aliases present (BLOOM's legacy n_embed / num_attention_heads). */
static const char *alias(const cfg_ctx *c, const char *a, const char *b)
{
    return get(c, a) || !get(c, b) ? a : b;
}

static int get_float(const cfg_ctx *c, const char *key, double dflt, double lo, double hi,
                     float *out)
{
    json_t *v = get(c, key);
    double x = v ? (json_is_number(v) ? json_number_value(v) : NAN) : dflt;
    if (v && !json_is_number(v))
        return ct_error_set(CT_EFORMAT, "%s: field \"%s\" must be a number", c->path, key);
    if (!(x >= lo && x <= hi))
        return ct_error_set(CT_EFORMAT, "%s: field \"%s\" = %g is out of range [%g, %g]", c->path,
                            key, x, lo, hi);
    *out = (float)x;
    return 0;
}

static int get_bool(const cfg_ctx *c, const char *key, int dflt, int *out)
{
    json_t *v = get(c, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!json_is_boolean(v))
        return ct_error_set(CT_EFORMAT, "%s: field \"%s\" must be true or false", c->path, key);
    *out = json_is_true(v);
    return 0;
}

/* A token id; a list (several EOS ids) keeps its first entry; null/absent -> dflt. */
static int get_token(const cfg_ctx *c, const char *key, int dflt, int *out)
{
    json_t *v = get(c, key);
    if (json_is_array(v))
        v = json_array_get(v, 0);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 0x7fffffff)
        return ct_error_set(CT_EFORMAT, "%s: field \"%s\" is not a token id", c->path, key);
    *out = (int)json_integer_value(v);
    return 0;
}

static int require_value(const cfg_ctx *c, const char *key, int want, int dflt, const char *why)
{
    int v = dflt;
    int rc = get_bool(c, key, dflt, &v);
    if (rc)
        return rc;
    if (v != want)
        return ct_error_set(CT_EFORMAT, "%s: field \"%s\" = %s is not supported (%s)", c->path, key,
                            v ? "true" : "false", why);
    return 0;
}

static int no_rope_scaling(const cfg_ctx *c)
{
    json_t *v = get(c, "rope_scaling");
    if (!v)
        return 0;
    char *s = json_dumps(v, JSON_COMPACT);
    int rc = ct_error_set(CT_EFORMAT,
                          "%s: field \"rope_scaling\" = %s is not supported (only "
                          "unscaled rotary embeddings)",
                          c->path, s ? s : "?");
    free(s);
    return rc;
}

/* Newer transformers nest rotary settings in "rope_parameters"; only the default kind. */
static int rope_params(const cfg_ctx *c, const char *theta_key, float dflt_theta,
                       const char *pct_key, float dflt_pct, float *theta, float *pct)
{
    int rc;
    json_t *rp = get(c, "rope_parameters");
    if (rp) {
        json_t *type = json_object_get(rp, "rope_type");
        if (!json_is_object(rp) ||
            (type && (!json_is_string(type) || strcmp(json_string_value(type), "default"))))
            return ct_error_set(CT_EFORMAT,
                                "%s: field \"rope_parameters\" is not supported (only "
                                "rope_type \"default\")",
                                c->path);
        cfg_ctx sub = {c->path, rp};
        dflt_theta = (float)(get(&sub, "rope_theta") ? json_number_value(get(&sub, "rope_theta"))
                                                     : dflt_theta);
        if (pct_key && get(&sub, "partial_rotary_factor"))
            dflt_pct = (float)json_number_value(get(&sub, "partial_rotary_factor"));
    }
    if ((rc = get_float(c, theta_key, dflt_theta, 1.0, 1e12, theta)))
        return rc;
    if (!pct_key) {
        *pct = dflt_pct;
        return 0;
    }
    if (get(c, "partial_rotary_factor") && !get(c, pct_key))
        pct_key = "partial_rotary_factor";
    return get_float(c, pct_key, dflt_pct, 0.0, 1.0, pct);
}

static int parse_act(const cfg_ctx *c, const char *dflt, ct_activation *out)
{
    json_t *v = get(c, "hidden_act");
    const char *a = v ? json_string_value(v) : dflt;
    if (!a)
        return ct_error_set(CT_EFORMAT, "%s: field \"hidden_act\" must be a string", c->path);
    if (strcmp(a, "gelu") == 0 || strcmp(a, "gelu_python") == 0)
        *out = CT_ACT_GELU_ERF;
    else if (strcmp(a, "gelu_new") == 0 || strcmp(a, "gelu_fast") == 0 ||
             strcmp(a, "gelu_pytorch_tanh") == 0)
        *out = CT_ACT_GELU_TANH;
    else if (strcmp(a, "silu") == 0 || strcmp(a, "swish") == 0)
        *out = CT_ACT_SILU;
    else
        return ct_error_set(CT_EFORMAT, "%s: field \"hidden_act\" = \"%s\" is not supported",
                            c->path, a);
    return 0;
}

static int parse_neox(const cfg_ctx *c, ct_model_config *m)
{
    int rc;
    if ((rc = get_int(c, "vocab_size", 50432, 1, 1 << 24, &m->vocab)) ||
        (rc = get_int(c, "hidden_size", 6144, 1, 1 << 20, &m->hidden)) ||
        (rc = get_int(c, "num_hidden_layers", 44, 1, 4096, &m->n_layer)) ||
        (rc = get_int(c, "num_attention_heads", 64, 1, 1 << 16, &m->n_head)) ||
        (rc = get_int(c, "intermediate_size", 24576, 1, 1 << 24, &m->intermediate)) ||
        (rc = get_int(c, "max_position_embeddings", 2048, 1, 1 << 24, &m->max_positions)) ||
        (rc = parse_act(c, "gelu", &m->act)) ||
        (rc = get_float(c, "layer_norm_eps", 1e-5, 0.0, 1.0, &m->norm_eps)) ||
        (rc = rope_params(c,
                          get(c, "rope_theta") && !get(c, "rotary_emb_base") ? "rope_theta"
                                                                             : "rotary_emb_base",
                          10000.0f, "rotary_pct", 0.25f, &m->rotary_base, &m->rotary_pct)) ||
        (rc = get_bool(c, "use_parallel_residual", 1, &m->parallel_residual)) ||
        (rc = require_value(c, "attention_bias", 1, 1,
                            "GPT-NeoX attention without biases is not implemented")) ||
        (rc = no_rope_scaling(c)) ||
        (rc = get_bool(c, "tie_word_embeddings", 0, &m->tie_embeddings)) ||
        (rc = get_token(c, "bos_token_id", 0, &m->bos_token_id)) ||
        (rc = get_token(c, "eos_token_id", 2, &m->eos_token_id)) ||
        (rc = get_token(c, "pad_token_id", -1, &m->pad_token_id)))
        return rc;
    /* GPT-NeoX in transformers is rotary-only; the original trainer's other position
     * schemes (alibi, learned) have no HF weights layout we could read. */
    json_t *pe = get(c, "pos_emb");
    if (!pe)
        pe = get(c, "position_embedding_type");
    if (pe && (!json_is_string(pe) || strcmp(json_string_value(pe), "rotary") != 0))
        return ct_error_set(CT_EFORMAT,
                            "%s: field \"%s\" = \"%s\" is not supported (GPT-NeoX uses "
                            "rotary embeddings)",
                            c->path, get(c, "pos_emb") ? "pos_emb" : "position_embedding_type",
                            json_is_string(pe) ? json_string_value(pe) : "?");
    m->attention_bias = 1;
    return 0;
}

static int parse_bloom(const cfg_ctx *c, ct_model_config *m)
{
    int rc;
    if ((rc = get_int(c, "vocab_size", 250880, 1, 1 << 24, &m->vocab)) ||
        (rc = get_int(c, alias(c, "hidden_size", "n_embed"), 64, 1, 1 << 20, &m->hidden)) ||
        (rc = get_int(c, alias(c, "n_layer", "num_hidden_layers"), 2, 1, 4096, &m->n_layer)) ||
        (rc = get_int(c, alias(c, "n_head", "num_attention_heads"), 8, 1, 1 << 16, &m->n_head)) ||
        (rc = get_float(c, "layer_norm_epsilon", 1e-5, 0.0, 1.0, &m->norm_eps)) ||
        (rc = require_value(c, "apply_residual_connection_post_layernorm", 0, 0,
                            "the residual stream is taken before the layer norm")) ||
        (rc = require_value(c, "slow_but_exact", 0, 0,
                            "tensor-parallel slicing emulation is not implemented")) ||
        (rc = get_bool(c, "tie_word_embeddings", 1, &m->tie_embeddings)) ||
        (rc = get_token(c, "bos_token_id", 1, &m->bos_token_id)) ||
        (rc = get_token(c, "eos_token_id", 2, &m->eos_token_id)) ||
        (rc = get_token(c, "pad_token_id", -1, &m->pad_token_id)))
        return rc;
    if (m->hidden > (1 << 20) / 4)
        return ct_error_set(CT_EFORMAT, "%s: hidden size %d too large", c->path, m->hidden);
    m->intermediate = 4 * m->hidden; /* BloomMLP: fixed 4h, n_inner is ignored */
    m->act = CT_ACT_GELU_TANH;       /* bloom_gelu_forward: the tanh approximation */
    m->max_positions = 0;            /* ALiBi: no learned or rotary positions */
    m->attention_bias = 1;
    return 0;
}

static int parse_olmo(const cfg_ctx *c, ct_model_config *m)
{
    int rc, kv;
    if ((rc = get_int(c, "vocab_size", 50304, 1, 1 << 24, &m->vocab)) ||
        (rc = get_int(c, "hidden_size", 4096, 1, 1 << 20, &m->hidden)) ||
        (rc = get_int(c, "intermediate_size", 11008, 1, 1 << 24, &m->intermediate)) ||
        (rc = get_int(c, "num_hidden_layers", 32, 1, 4096, &m->n_layer)) ||
        (rc = get_int(c, "num_attention_heads", 32, 1, 1 << 16, &m->n_head)) ||
        (rc = get_int(c, "num_key_value_heads", m->n_head, 1, 1 << 16, &kv)) ||
        (rc = get_int(c, "max_position_embeddings", 2048, 1, 1 << 24, &m->max_positions)) ||
        (rc = parse_act(c, "silu", &m->act)) ||
        (rc =
             rope_params(c, "rope_theta", 10000.0f, NULL, 1.0f, &m->rotary_base, &m->rotary_pct)) ||
        (rc = no_rope_scaling(c)) || (rc = get_bool(c, "attention_bias", 0, &m->attention_bias)) ||
        (rc = get_float(c, "clip_qkv", 0.0, 0.0, 1e30, &m->clip_qkv)) ||
        (rc = get_bool(c, "tie_word_embeddings", 0, &m->tie_embeddings)) ||
        (rc = get_token(c, "bos_token_id", -1, &m->bos_token_id)) ||
        (rc = get_token(c, "eos_token_id", 50279, &m->eos_token_id)) ||
        (rc = get_token(c, "pad_token_id", 1, &m->pad_token_id)))
        return rc;
    if (kv != m->n_head)
        return ct_error_set(CT_EFORMAT,
                            "%s: field \"num_key_value_heads\" = %d is not supported "
                            "(grouped-query attention; num_attention_heads = %d)",
                            c->path, kv, m->n_head);
    if (m->act != CT_ACT_SILU)
        return ct_error_set(CT_EFORMAT,
                            "%s: field \"hidden_act\" = \"%s\" is not supported (OLMo "
                            "uses SwiGLU)",
                            c->path, json_string_value(get(c, "hidden_act")));
    m->norm_eps = 1e-5f; /* OlmoLayerNorm: fixed eps, no weights */
    m->parallel_residual = 0;
    return 0;
}

static const struct {
    const char *arch, *model_type;
    ct_arch id;
} k_archs[] = {
    {"GPTNeoXForCausalLM", "gpt_neox", CT_ARCH_GPT_NEOX},
    {"BloomForCausalLM", "bloom", CT_ARCH_BLOOM},
    {"OlmoForCausalLM", "olmo", CT_ARCH_OLMO},
};

static int parse_arch(const cfg_ctx *c, ct_arch *out)
{
    json_t *archs = get(c, "architectures");
    json_t *mt = get(c, "model_type");
    const char *a = NULL;
    if (archs) {
        if (!json_is_array(archs) || json_array_size(archs) != 1 ||
            !json_is_string(json_array_get(archs, 0)))
            return ct_error_set(CT_EFORMAT, "%s: field \"architectures\" must list one class name",
                                c->path);
        a = json_string_value(json_array_get(archs, 0));
    }
    for (size_t i = 0; i < sizeof k_archs / sizeof k_archs[0]; i++) {
        if (a ? strcmp(a, k_archs[i].arch) == 0
              : (json_is_string(mt) && strcmp(json_string_value(mt), k_archs[i].model_type) == 0)) {
            if (mt && (!json_is_string(mt) || strcmp(json_string_value(mt), k_archs[i].model_type)))
                return ct_error_set(CT_EFORMAT,
                                    "%s: field \"model_type\" = \"%s\" contradicts "
                                    "architecture %s",
                                    c->path, json_is_string(mt) ? json_string_value(mt) : "?",
                                    k_archs[i].arch);
            *out = k_archs[i].id;
            return 0;
        }
    }
    if (!a && !json_is_string(mt))
        return ct_error_set(CT_EFORMAT, "%s: neither \"architectures\" nor \"model_type\" is set",
                            c->path);
    return ct_error_set(CT_EFORMAT,
                        "%s: unsupported architecture \"%s\" (supported: GPTNeoXForCausalLM, "
                        "BloomForCausalLM, OlmoForCausalLM)%s",
                        c->path, a ? a : json_string_value(mt),
                        a && strcmp(a, "OLMoForCausalLM") == 0
                            ? "; use the \"-hf\" repository of this OLMo model"
                            : "");
}

int ct_ckpt_parse_config(const char *path, ct_model_config *out)
{
    char *text;
    size_t len;
    int rc = ct_read_file(path, &text, &len);
    if (rc)
        return rc;
    json_error_t jerr;
    cfg_ctx c = {path, json_loadb(text, len, 0, &jerr)};
    free(text);
    if (!c.root)
        return ct_error_set(CT_EFORMAT, "%s: invalid JSON at line %d: %s", path, jerr.line,
                            jerr.text);
    ct_model_config m;
    memset(&m, 0, sizeof m);
    m.bos_token_id = m.eos_token_id = m.pad_token_id = -1;
    if (!json_is_object(c.root))
        rc = ct_error_set(CT_EFORMAT, "%s: not a JSON object", path);
    if (!rc)
        rc = parse_arch(&c, &m.arch);
    if (!rc) {
        switch (m.arch) {
        case CT_ARCH_GPT_NEOX: rc = parse_neox(&c, &m); break;
        case CT_ARCH_BLOOM: rc = parse_bloom(&c, &m); break;
        case CT_ARCH_OLMO: rc = parse_olmo(&c, &m); break;
        }
    }
    if (!rc && m.hidden % m.n_head)
        rc = ct_error_set(CT_EFORMAT, "%s: hidden size %d is not a multiple of %d heads", path,
                          m.hidden, m.n_head);
    if (!rc && m.arch != CT_ARCH_BLOOM) {
        int hd = m.hidden / m.n_head, rot = (int)(hd * m.rotary_pct);
        if (rot % 2)
            rc = ct_error_set(CT_EFORMAT,
                              "%s: %d rotary dimensions per head (head size %d x "
                              "rotary fraction %g) is odd",
                              path, rot, hd, (double)m.rotary_pct);
    }
    json_decref(c.root);
    if (!rc)
        *out = m;
    return rc;
}

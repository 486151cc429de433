/* Test-only readers for the forward fixtures: a minimal safetensors reader (F32/I32)
 * and a config.json → ct_model_config mapping, independent of models/checkpoint. */
#ifndef CT_TEST_FORWARD_FIXTURE_H
#define CT_TEST_FORWARD_FIXTURE_H

#include "common/error.h"
#include "common/io.h"
#include "models/config.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *data;
    size_t len;
    json_t *header;
    const char *body;
} fx_st;

static inline int fx_st_open(const char *path, fx_st *st)
{
    memset(st, 0, sizeof *st);
    int rc = ct_read_file(path, &st->data, &st->len);
    if (rc)
        return rc;
    if (st->len < 8)
        return ct_error_set(CT_EFORMAT, "%s: too short", path);
    uint64_t hl;
    memcpy(&hl, st->data, 8);
    if (hl > st->len - 8)
        return ct_error_set(CT_EFORMAT, "%s: bad header length", path);
    json_error_t err;
    st->header = json_loadb(st->data + 8, (size_t)hl, 0, &err);
    if (!st->header)
        return ct_error_set(CT_EFORMAT, "%s: %s", path, err.text);
    st->body = st->data + 8 + hl;
    return 0;
}

static inline void fx_st_close(fx_st *st)
{
    json_decref(st->header);
    free(st->data);
}

/* Pointer to the tensor's data (copied to aligned memory by the caller when needed)
 * and its element count; NULL when absent. */
static inline const void *fx_st_get(const fx_st *st, const char *name, size_t *numel)
{
    json_t *t = json_object_get(st->header, name);
    if (!t)
        return NULL;
    json_t *off = json_object_get(t, "data_offsets");
    size_t a = (size_t)json_integer_value(json_array_get(off, 0));
    size_t b = (size_t)json_integer_value(json_array_get(off, 1));
    *numel = (b - a) / 4;
    return st->body + a;
}

/* Copies a F32 tensor into a fresh malloc'd array; NULL when absent. */
static inline float *fx_st_f32(const fx_st *st, const char *name, size_t *numel)
{
    size_t n = 0;
    const void *p = fx_st_get(st, name, &n);
    if (!p)
        return NULL;
    float *out = malloc(n * sizeof(float) + 1);
    memcpy(out, p, n * sizeof(float));
    if (numel)
        *numel = n;
    return out;
}

static inline int32_t *fx_st_i32(const fx_st *st, const char *name, size_t *numel)
{
    return (int32_t *)fx_st_f32(st, name, numel);
}

/* ct_tensor_get_fn over an fx_st. */
static inline int fx_st_getter(void *user, const char *name, float *dst, size_t n)
{
    size_t got = 0;
    const void *p = fx_st_get(user, name, &got);
    if (!p)
        return ct_error_set(CT_ENOTFOUND, "fixture: no tensor %s", name);
    if (got != n)
        return ct_error_set(CT_EINVAL, "fixture: tensor %s has %zu elements, expected %zu", name,
                            got, n);
    memcpy(dst, p, n * sizeof(float));
    return 0;
}

static inline double fx_num(json_t *o, const char *key, double dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

static inline int fx_config(const char *path, ct_model_config *c)
{
    json_error_t err;
    json_t *o = json_load_file(path, 0, &err);
    if (!o)
        return ct_error_set(CT_EFORMAT, "%s: %s", path, err.text);
    memset(c, 0, sizeof *c);
    const char *mt = json_string_value(json_object_get(o, "model_type"));
    int rc = 0;
    if (mt && strcmp(mt, "gpt_neox") == 0) {
        c->arch = CT_ARCH_GPT_NEOX;
        c->n_head = (int)fx_num(o, "num_attention_heads", 0);
        c->n_layer = (int)fx_num(o, "num_hidden_layers", 0);
        c->intermediate = (int)fx_num(o, "intermediate_size", 0);
        c->norm_eps = (float)fx_num(o, "layer_norm_eps", 1e-5);
        c->rotary_pct = (float)fx_num(o, "rotary_pct", 1);
        c->rotary_base = (float)fx_num(o, "rotary_emb_base", 10000);
        c->parallel_residual = json_is_true(json_object_get(o, "use_parallel_residual"));
        const char *act = json_string_value(json_object_get(o, "hidden_act"));
        c->act = act && strcmp(act, "gelu") == 0 ? CT_ACT_GELU_ERF : CT_ACT_GELU_TANH;
        c->attention_bias = 1;
    } else if (mt && strcmp(mt, "bloom") == 0) {
        c->arch = CT_ARCH_BLOOM;
        c->n_head = (int)fx_num(o, "n_head", 0);
        c->n_layer = (int)fx_num(o, "n_layer", 0);
        c->norm_eps = (float)fx_num(o, "layer_norm_epsilon", 1e-5);
        c->act = CT_ACT_GELU_TANH;
        c->attention_bias = 1;
        c->tie_embeddings = 1;
    } else if (mt && strcmp(mt, "olmo") == 0) {
        c->arch = CT_ARCH_OLMO;
        c->n_head = (int)fx_num(o, "num_attention_heads", 0);
        c->n_layer = (int)fx_num(o, "num_hidden_layers", 0);
        c->intermediate = (int)fx_num(o, "intermediate_size", 0);
        c->norm_eps = 1e-5f;
        c->rotary_pct = 1;
        c->rotary_base = (float)fx_num(o, "rope_theta", 10000);
        c->act = CT_ACT_SILU;
        c->attention_bias = json_is_true(json_object_get(o, "attention_bias"));
        c->clip_qkv = (float)fx_num(o, "clip_qkv", 0);
    } else {
        rc = ct_error_set(CT_EFORMAT, "%s: unknown model_type", path);
    }
    c->hidden = (int)fx_num(o, "hidden_size", 0);
    if (c->arch == CT_ARCH_BLOOM)
        c->intermediate = 4 * c->hidden;
    c->vocab = (int)fx_num(o, "vocab_size", 0);
    c->max_positions = (int)fx_num(o, "max_position_embeddings", 0);
    if (c->arch != CT_ARCH_BLOOM)
        c->tie_embeddings = json_is_true(json_object_get(o, "tie_word_embeddings"));
    c->bos_token_id = c->eos_token_id = c->pad_token_id = -1;
    json_decref(o);
    return rc;
}

#endif

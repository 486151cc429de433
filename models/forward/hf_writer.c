/* Writing a trained GPT-NeoX model as a Hugging Face checkpoint directory: config.json,
 * model.safetensors and tokenizer.json, loadable by transformers'
 * GPTNeoXForCausalLM.from_pretrained and by models/checkpoint. */
#include "models/forward/pretrain.h"

#include "common/error.h"
#include "common/io.h"
#include "models/checkpoint/safetensors.h"
#include "models/forward/model_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A double as Python's repr() writes it (json.dumps uses repr for floats): the shortest
 * digits that read back to the same value (to the same float when `single`), in
 * positional notation for decimal exponents -4..15 (with ".0" when integral), else as
 * "1e-05" / "1.5e+16". */
static void py_float(char *out, size_t cap, double v, int single)
{
    char buf[64];
    int p;
    for (p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, v);
        double back = strtod(buf, NULL);
        if (single ? (float)back == (float)v : back == v)
            break;
    }
    if (v == 0) {
        snprintf(out, cap, "0.0");
        return;
    }
    /* buf: [-]d[.ddd]e±XX */
    char digits[32];
    int nd = 0, neg = buf[0] == '-';
    const char *s = buf + neg;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9')
            digits[nd++] = *s;
    digits[nd] = 0;
    int exp = atoi(s + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        digits[--nd] = 0;
    char *o = out;
    size_t left = cap;
#define EMIT(...)                                                                            \
    do {                                                                                     \
        int w_ = snprintf(o, left, __VA_ARGS__);                                             \
        if (w_ < 0 || (size_t)w_ >= left)                                                    \
            return;                                                                          \
        o += w_;                                                                             \
        left -= (size_t)w_;                                                                  \
    } while (0)
    if (neg)
        EMIT("-");
    if (exp < -4 || exp >= 16) {
        EMIT("%c", digits[0]);
        if (nd > 1)
            EMIT(".%s", digits + 1);
        EMIT("e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    } else if (exp < 0) {
        EMIT("0.");
        for (int i = 0; i < -exp - 1; i++)
            EMIT("0");
        EMIT("%s", digits);
    } else {
        for (int i = 0; i <= exp; i++)
            EMIT("%c", i < nd ? digits[i] : '0');
        EMIT(".");
        EMIT("%s", nd > exp + 1 ? digits + exp + 1 : "0");
    }
#undef EMIT
}

static void token_json(char *out, size_t cap, int id)
{
    if (id < 0)
        snprintf(out, cap, "null");
    else
        snprintf(out, cap, "%d", id);
}

/* config.json as transformers 4.40's GPTNeoXConfig.save_pretrained writes it (the
 * differences from PretrainedConfig's defaults, keys sorted, indent 2). */
static int write_config(const ct_model_config *c, double init_std, const char *path)
{
    char eps[40], pct[40], std[40], base[40], bos[16], eos[16], pad[64] = "";
    py_float(eps, sizeof eps, c->norm_eps, 1);
    py_float(pct, sizeof pct, c->rotary_pct, 1);
    py_float(std, sizeof std, init_std, 0);
    if (c->rotary_base == floorf(c->rotary_base) && c->rotary_base < 1e9f)
        snprintf(base, sizeof base, "%ld", (long)c->rotary_base); /* an int in Python */
    else
        py_float(base, sizeof base, c->rotary_base, 1);
    token_json(bos, sizeof bos, c->bos_token_id);
    token_json(eos, sizeof eos, c->eos_token_id);
    if (c->pad_token_id >= 0)
        snprintf(pad, sizeof pad, "  \"pad_token_id\": %d,\n", c->pad_token_id);
    char *json = NULL;
    int n = asprintf(&json,
                     "{\n"
                     "  \"architectures\": [\n"
                     "    \"GPTNeoXForCausalLM\"\n"
                     "  ],\n"
                     "  \"attention_bias\": true,\n"
                     "  \"attention_dropout\": 0.0,\n"
                     "  \"bos_token_id\": %s,\n"
                     "  \"classifier_dropout\": 0.1,\n"
                     "  \"eos_token_id\": %s,\n"
                     "  \"hidden_act\": \"%s\",\n"
                     "  \"hidden_dropout\": 0.0,\n"
                     "  \"hidden_size\": %d,\n"
                     "  \"initializer_range\": %s,\n"
                     "  \"intermediate_size\": %d,\n"
                     "  \"layer_norm_eps\": %s,\n"
                     "  \"max_position_embeddings\": %d,\n"
                     "  \"model_type\": \"gpt_neox\",\n"
                     "  \"num_attention_heads\": %d,\n"
                     "  \"num_hidden_layers\": %d,\n"
                     "%s"
                     "  \"rope_scaling\": null,\n"
                     "  \"rotary_emb_base\": %s,\n"
                     "  \"rotary_pct\": %s,\n"
                     "  \"tie_word_embeddings\": %s,\n"
                     "  \"torch_dtype\": \"float32\",\n"
                     "  \"transformers_version\": \"4.40.0\",\n"
                     "  \"use_cache\": true,\n"
                     "  \"use_parallel_residual\": %s,\n"
                     "  \"vocab_size\": %d\n"
                     "}\n",
                     bos, eos, c->act == CT_ACT_GELU_TANH ? "gelu_new" : "gelu", c->hidden, std,
                     c->intermediate, eps, c->max_positions, c->n_head, c->n_layer, pad, base,
                     pct, c->tie_embeddings ? "true" : "false",
                     c->parallel_residual ? "true" : "false", c->vocab);
    if (n < 0)
        return ct_error_set(CT_ENOMEM, "%s: out of memory", path);
    int rc = ct_write_file_atomic(path, json, (size_t)n);
    free(json);
    return rc;
}

/* The model keeps fused q/k/v rows as [q|k|v][head][dim]; HF interleaves per head
 * ([head][q|k|v][dim]). The inverse of the loader's deinterleave. */
static void interleave_rows(const float *src, float *dst, int nh, int hd, size_t cols)
{
    for (int s = 0; s < 3; s++)
        for (int h = 0; h < nh; h++)
            for (int d = 0; d < hd; d++) {
                size_t from = ((size_t)s * nh + h) * hd + d, to = ((size_t)h * 3 + s) * hd + d;
                memcpy(dst + to * cols, src + from * cols, cols * sizeof(float));
            }
}

static int copy_file(const char *from, const char *to)
{
    char *data = NULL;
    size_t len = 0;
    int rc = ct_read_file(from, &data, &len);
    if (rc)
        return ct_error_wrap(rc, "%s: reading the tokenizer", from);
    rc = ct_write_file_atomic(to, data, len);
    free(data);
    return rc;
}

int ct_pretrain_write_hf(ct_pretrain *t, const char *dir, const char *tokenizer_json)
{
    ct_model *m = ct_pretrain_model(t);
    const ct_model_config *c = ct_model_get_config(m);
    size_t nt = ct_pretrain_n_tensors(t), np = ct_pretrain_n_params(t);
    char path[4096];
    if (!dir || strlen(dir) > sizeof path - 32)
        return ct_error_set(CT_EINVAL, "pretrain: checkpoint directory name missing or too long");
    int rc = ct_mkdirs(dir, 0755);
    if (rc)
        return rc;
    float *p = malloc(np * sizeof(float));
    ct_st_tensor *st = calloc(nt, sizeof *st);
    int64_t *shapes = calloc(2 * nt, sizeof *shapes);
    if (!p || !st || !shapes) {
        rc = ct_error_set(CT_ENOMEM, "%s: out of memory", dir);
        goto done;
    }
    if ((rc = ct_pretrain_get_params(t, p)))
        goto done;
    /* HF row order for the fused q/k/v, tensor by tensor through a scratch copy. */
    for (size_t i = 0; i < nt; i++) {
        const ct_pretrain_tensor *e = ct_pretrain_tensor_at(t, i);
        if (!strstr(e->name, "query_key_value"))
            continue;
        float *tmp = malloc(e->numel * sizeof(float));
        if (!tmp) {
            rc = ct_error_set(CT_ENOMEM, "%s: out of memory", dir);
            goto done;
        }
        interleave_rows(p + e->offset, tmp, m->nh, m->hd, e->cols ? (size_t)e->cols : 1);
        memcpy(p + e->offset, tmp, e->numel * sizeof(float));
        free(tmp);
    }
    for (size_t i = 0; i < nt; i++) {
        const ct_pretrain_tensor *e = ct_pretrain_tensor_at(t, i);
        shapes[2 * i] = e->rows;
        shapes[2 * i + 1] = e->cols;
        st[i].name = e->name;
        st[i].dtype = CT_DT_F32;
        st[i].ndim = e->cols ? 2 : 1;
        st[i].shape = shapes + 2 * i;
        st[i].data = p + e->offset;
    }
    /* The tokenizer first: a bad path leaves no half-written checkpoint behind. */
    if (tokenizer_json) {
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        if ((rc = copy_file(tokenizer_json, path)))
            goto done;
    }
    static const char *const keys[] = {"format"}, *const vals[] = {"pt"};
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if ((rc = ct_safetensors_write(path, st, nt, keys, vals, 1)))
        goto done;
    snprintf(path, sizeof path, "%s/config.json", dir);
    rc = write_config(c, ct_pretrain_get_config(t)->init_std, path);
done:
    free(p);
    free(st);
    free(shapes);
    return rc;
}

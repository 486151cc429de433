/* Building a model: config checks, the weight layout (one device allocation) and
 * reading each tensor by its Hugging Face name. */
#include "models/forward/model_internal.h"

#include "common/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* OLMo-1's OlmoLayerNorm hard-codes eps = 1e-5 whatever the config says. */
#define OLMO_NORM_EPS 1e-5f

static int check_config(const ct_model_config *c)
{
    if (c->arch != CT_ARCH_GPT_NEOX && c->arch != CT_ARCH_BLOOM && c->arch != CT_ARCH_OLMO)
        return ct_error_set(CT_EFORMAT, "model config: unknown architecture %d", (int)c->arch);
    if (c->n_layer <= 0 || c->n_head <= 0 || c->hidden <= 0 || c->vocab <= 0 ||
        c->intermediate <= 0)
        return ct_error_set(CT_EINVAL,
                            "model config: n_layer %d, n_head %d, hidden %d, intermediate %d, "
                            "vocab %d must all be positive",
                            c->n_layer, c->n_head, c->hidden, c->intermediate, c->vocab);
    if (c->hidden % c->n_head)
        return ct_error_set(CT_EINVAL, "model config: hidden %d is not a multiple of n_head %d",
                            c->hidden, c->n_head);
    if ((size_t)c->hidden * c->vocab > ((size_t)1 << 40) || c->n_layer > 4096)
        return ct_error_set(CT_EINVAL, "model config: implausibly large (hidden %d, vocab %d)",
                            c->hidden, c->vocab);
    if (c->arch != CT_ARCH_OLMO && !(c->norm_eps > 0))
        return ct_error_set(CT_EINVAL, "model config: layer norm eps %g must be positive",
                            (double)c->norm_eps);
    if (c->arch != CT_ARCH_BLOOM) {
        if (!(c->rotary_pct > 0 && c->rotary_pct <= 1))
            return ct_error_set(CT_EINVAL, "model config: rotary_pct %g outside (0, 1]",
                                (double)c->rotary_pct);
        if (!(c->rotary_base > 0))
            return ct_error_set(CT_EINVAL, "model config: rotary base %g must be positive",
                                (double)c->rotary_base);
    }
    if (c->arch == CT_ARCH_GPT_NEOX && c->act != CT_ACT_GELU_ERF && c->act != CT_ACT_GELU_TANH)
        return ct_error_set(CT_EFORMAT, "model config: GPT-NeoX activation %d is not a GELU",
                            (int)c->act);
    if (c->clip_qkv < 0)
        return ct_error_set(CT_EINVAL, "model config: clip_qkv %g is negative",
                            (double)c->clip_qkv);
    return 0;
}

/* BLOOM's ALiBi slopes (transformers' build_alibi_tensor), including the interleaved
 * extra slopes when the head count is not a power of two. */
static void alibi_slopes(int n, float *out)
{
    int cp = 1;
    while (cp * 2 <= n)
        cp *= 2;
    double base = pow(2.0, -pow(2.0, -(log2((double)cp) - 3)));
    for (int i = 0; i < cp; i++)
        out[i] = (float)pow(base, i + 1);
    if (cp != n) {
        double extra = pow(2.0, -pow(2.0, -(log2(2.0 * cp) - 3)));
        int rem = n - cp < cp ? n - cp : cp;
        for (int i = 0; i < rem; i++)
            out[cp + i] = (float)pow(extra, 2 * i + 1);
    }
}

typedef struct {
    float **dst;
    size_t n;
} slot;

/* The weight layout: every tensor's pointer and size, in one order. */
static size_t layout(ct_model *m, slot *s)
{
    size_t k = 0, C = m->C, V = m->V, I = m->I, FI = m->FI;
#define ADD(p, count)                                                                        \
    do {                                                                                     \
        if (s) {                                                                             \
            s[k].dst = &(p);                                                                 \
            s[k].n = (count);                                                                \
        }                                                                                    \
        k++;                                                                                 \
    } while (0)
    int olmo = m->olmo, bias = !olmo || m->cfg.attention_bias;
    ADD(m->wte, V * C);
    if (m->bloom) {
        ADD(m->emb_ln_w, C);
        ADD(m->emb_ln_b, C);
        ADD(m->slopes, (size_t)m->nh);
    }
    for (int l = 0; l < m->L; l++) {
        ct_layer_w *w = &m->lw[l];
        if (!olmo) {
            ADD(w->ln1_w, C);
            ADD(w->ln1_b, C);
            ADD(w->ln2_w, C);
            ADD(w->ln2_b, C);
        }
        ADD(w->qkv_w, 3 * C * C);
        if (bias)
            ADD(w->qkv_b, 3 * C);
        ADD(w->proj_w, C * C);
        if (bias)
            ADD(w->proj_b, C);
        ADD(w->fc_w, FI * C);
        if (!olmo)
            ADD(w->fc_b, FI);
        ADD(w->fcp_w, C * I);
        if (!olmo)
            ADD(w->fcp_b, C);
    }
    if (!olmo) {
        ADD(m->lnf_w, C);
        ADD(m->lnf_b, C);
    }
    if (!m->cfg.tie_embeddings)
        ADD(m->head_w, V * C);
#undef ADD
    return k;
}

static int fetch(ct_tensor_get_fn get, void *user, const char *name, float *dst, size_t n)
{
    int rc = get(user, name, dst, n);
    if (rc)
        return ct_error_wrap(rc, "model: reading tensor %s", name);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(dst[i]))
            return ct_error_set(CT_ECORRUPT, "model: tensor %s has a non-finite value at %zu",
                                name, i);
    return 0;
}

/* Fused q/k/v of GPT-NeoX and BLOOM interleave per head ([head][q|k|v][dim] rows);
 * reorder to [q|k|v][head][dim] so every architecture shares one split kernel. */
static void deinterleave_rows(const float *src, float *dst, int nh, int hd, size_t cols)
{
    for (int h = 0; h < nh; h++)
        for (int s = 0; s < 3; s++)
            for (int d = 0; d < hd; d++) {
                size_t from = ((size_t)h * 3 + s) * hd + d, to = ((size_t)s * nh + h) * hd + d;
                memcpy(dst + to * cols, src + from * cols, cols * sizeof(float));
            }
}

static int read_weights(ct_model *m, float *host, ct_tensor_get_fn get, void *user)
{
    char name[256];
    const char *pre = m->cfg.arch == CT_ARCH_GPT_NEOX ? "gpt_neox"
                      : m->bloom                     ? "transformer"
                                                     : "model";
    size_t C = m->C;
    float *tmp = NULL;
    int rc = 0;
    /* Device pointers alias into `host` at the same offsets until upload. */
#define HOST(p) (host + ((p) - m->params))
#define GET(p, n, ...)                                                                       \
    do {                                                                                     \
        snprintf(name, sizeof name, __VA_ARGS__);                                            \
        if ((rc = fetch(get, user, name, HOST(p), (n))))                                     \
            goto done;                                                                       \
    } while (0)
    if (m->cfg.arch == CT_ARCH_GPT_NEOX)
        GET(m->wte, (size_t)m->V * C, "gpt_neox.embed_in.weight");
    else if (m->bloom)
        GET(m->wte, (size_t)m->V * C, "transformer.word_embeddings.weight");
    else
        GET(m->wte, (size_t)m->V * C, "model.embed_tokens.weight");
    if (m->bloom) {
        GET(m->emb_ln_w, C, "transformer.word_embeddings_layernorm.weight");
        GET(m->emb_ln_b, C, "transformer.word_embeddings_layernorm.bias");
        alibi_slopes(m->nh, HOST(m->slopes));
    }
    tmp = malloc(3 * C * C * sizeof(float));
    if (!tmp) {
        rc = ct_error_set(CT_ENOMEM, "model: out of memory");
        goto done;
    }
    for (int l = 0; l < m->L; l++) {
        ct_layer_w *w = &m->lw[l];
        if (m->cfg.arch == CT_ARCH_GPT_NEOX || m->bloom) {
            const char *blk = m->bloom ? "h" : "layers";
            const char *att = m->bloom ? "self_attention" : "attention";
            GET(w->ln1_w, C, "%s.%s.%d.input_layernorm.weight", pre, blk, l);
            GET(w->ln1_b, C, "%s.%s.%d.input_layernorm.bias", pre, blk, l);
            GET(w->ln2_w, C, "%s.%s.%d.post_attention_layernorm.weight", pre, blk, l);
            GET(w->ln2_b, C, "%s.%s.%d.post_attention_layernorm.bias", pre, blk, l);
            snprintf(name, sizeof name, "%s.%s.%d.%s.query_key_value.weight", pre, blk, l, att);
            if ((rc = fetch(get, user, name, tmp, 3 * C * C)))
                goto done;
            deinterleave_rows(tmp, HOST(w->qkv_w), m->nh, m->hd, C);
            snprintf(name, sizeof name, "%s.%s.%d.%s.query_key_value.bias", pre, blk, l, att);
            if ((rc = fetch(get, user, name, tmp, 3 * C)))
                goto done;
            deinterleave_rows(tmp, HOST(w->qkv_b), m->nh, m->hd, 1);
            GET(w->proj_w, C * C, "%s.%s.%d.%s.dense.weight", pre, blk, l, att);
            GET(w->proj_b, C, "%s.%s.%d.%s.dense.bias", pre, blk, l, att);
            GET(w->fc_w, (size_t)m->FI * C, "%s.%s.%d.mlp.dense_h_to_4h.weight", pre, blk, l);
            GET(w->fc_b, (size_t)m->FI, "%s.%s.%d.mlp.dense_h_to_4h.bias", pre, blk, l);
            GET(w->fcp_w, C * m->I, "%s.%s.%d.mlp.dense_4h_to_h.weight", pre, blk, l);
            GET(w->fcp_b, C, "%s.%s.%d.mlp.dense_4h_to_h.bias", pre, blk, l);
        } else {
            static const char *qkv[3] = {"q", "k", "v"};
            for (int s = 0; s < 3; s++) {
                GET(w->qkv_w + s * C * C, C * C, "model.layers.%d.self_attn.%s_proj.weight", l,
                    qkv[s]);
                if (w->qkv_b)
                    GET(w->qkv_b + s * C, C, "model.layers.%d.self_attn.%s_proj.bias", l, qkv[s]);
            }
            GET(w->proj_w, C * C, "model.layers.%d.self_attn.o_proj.weight", l);
            if (w->proj_b)
                GET(w->proj_b, C, "model.layers.%d.self_attn.o_proj.bias", l);
            GET(w->fc_w, (size_t)m->I * C, "model.layers.%d.mlp.gate_proj.weight", l);
            GET(w->fc_w + (size_t)m->I * C, (size_t)m->I * C, "model.layers.%d.mlp.up_proj.weight",
                l);
            GET(w->fcp_w, C * m->I, "model.layers.%d.mlp.down_proj.weight", l);
        }
    }
    if (m->cfg.arch == CT_ARCH_GPT_NEOX) {
        GET(m->lnf_w, C, "gpt_neox.final_layer_norm.weight");
        GET(m->lnf_b, C, "gpt_neox.final_layer_norm.bias");
        if (!m->cfg.tie_embeddings)
            GET(m->head_w, (size_t)m->V * C, "embed_out.weight");
    } else if (m->bloom) {
        GET(m->lnf_w, C, "transformer.ln_f.weight");
        GET(m->lnf_b, C, "transformer.ln_f.bias");
    } else if (!m->cfg.tie_embeddings) {
        GET(m->head_w, (size_t)m->V * C, "lm_head.weight");
    }
#undef GET
#undef HOST
done:
    free(tmp);
    return rc;
}

int ct_model_create(const ct_model_config *cfg, ct_tensor_get_fn get, void *user,
                    const ct_model_options *opts, ct_model **out)
{
    *out = NULL;
    ct_model_options o = CT_MODEL_OPTIONS_INIT;
    if (opts)
        o = *opts;
    int rc = check_config(cfg);
    if (rc)
        return rc;
    ct_model *m = calloc(1, sizeof *m);
    if (!m)
        return ct_error_set(CT_ENOMEM, "model: out of memory");
    m->cfg = *cfg;
    m->bloom = cfg->arch == CT_ARCH_BLOOM;
    m->olmo = cfg->arch == CT_ARCH_OLMO;
    if (m->bloom)
        m->cfg.tie_embeddings = 1; /* BLOOM's lm_head is always the word embedding */
    m->C = cfg->hidden;
    m->nh = cfg->n_head;
    m->hd = cfg->hidden / cfg->n_head;
    m->I = cfg->intermediate;
    m->FI = m->olmo ? 2 * m->I : m->I;
    m->V = cfg->vocab;
    m->L = cfg->n_layer;
    m->eps = m->olmo ? OLMO_NORM_EPS : cfg->norm_eps;
    m->scale = (float)(1.0 / sqrt((double)m->hd));
    m->parallel = cfg->arch == CT_ARCH_GPT_NEOX && cfg->parallel_residual;
    m->gelu = (m->bloom || cfg->act == CT_ACT_GELU_TANH) ? CT_GELU_TANH : CT_GELU_ERF;
    m->rot = 0;
    if (!m->bloom) {
        /* transformers: rotary_ndims = int(head_size * rotary_pct) */
        m->rot = m->olmo ? m->hd : (int)((float)m->hd * cfg->rotary_pct);
        if (m->rot % 2 || m->rot <= 0) {
            rc = ct_error_set(CT_EINVAL, "model config: %d rotary dims per head (rotary_pct %g "
                              "of head size %d) must be a positive even number",
                              m->rot, (double)cfg->rotary_pct, m->hd);
            ct_model_free(m);
            return rc;
        }
    }
    m->rope_T = -1;
    m->lw = calloc((size_t)m->L, sizeof *m->lw);
    size_t nt = layout(m, NULL);
    slot *s = calloc(nt, sizeof *s);
    float *host = NULL;
    if (!m->lw || !s) {
        rc = ct_error_set(CT_ENOMEM, "model: out of memory");
        goto fail;
    }
    layout(m, s);
    size_t total = 0;
    for (size_t i = 0; i < nt; i++)
        total += (s[i].n + 15) & ~(size_t)15; /* 64-byte aligned tensors */
    m->n_params = total;
    if ((rc = ct_kern_create(o.device, &m->k)))
        goto fail;
    if ((rc = ct_kern_alloc(m->k, total * sizeof(float), (void **)&m->params)))
        goto fail;
    host = calloc(total, sizeof(float));
    if (!host) {
        rc = ct_error_set(CT_ENOMEM, "model: cannot allocate %zu bytes of weights",
                          total * sizeof(float));
        goto fail;
    }
    size_t off = 0;
    for (size_t i = 0; i < nt; i++) {
        *s[i].dst = m->params + off;
        off += (s[i].n + 15) & ~(size_t)15;
    }
    if (m->cfg.tie_embeddings)
        m->head_w = m->wte;
    if ((rc = read_weights(m, host, get, user)))
        goto fail;
    if ((rc = ct_kern_upload(m->k, m->params, host, total * sizeof(float))))
        goto fail;
    free(host);
    free(s);
    *out = m;
    return 0;
fail:
    free(host);
    free(s);
    ct_model_free(m);
    return rc;
}

void ct_model_free(ct_model *m)
{
    if (!m)
        return;
    if (m->k) {
        ct_kern_release(m->k, m->arena);
        ct_kern_release(m->k, m->params);
        ct_kern_free(m->k);
    }
    free(m->la);
    free(m->res);
    free(m->rows_host);
    free(m->lw);
    free(m);
}

const ct_model_config *ct_model_get_config(const ct_model *m)
{
    return &m->cfg;
}

ct_device ct_model_device(const ct_model *m)
{
    return ct_kern_device(m->k);
}

size_t ct_model_param_bytes(const ct_model *m)
{
    return m->n_params * sizeof(float);
}

size_t ct_model_activation_bytes(const ct_model *m)
{
    return m->arena_bytes;
}

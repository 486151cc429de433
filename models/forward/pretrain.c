/* The GPT-NeoX trainer: initialisation, training steps (loss and parameter gradients
 * from the model, global norm clipping, AdamW), the batch sampler and the training
 * state file. */
#include "models/forward/pretrain.h"

#include "common/error.h"
#include "common/io.h"
#include "common/sha256.h"
#include "models/forward/model_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRY(x)                                                                               \
    do {                                                                                     \
        int rc_ = (x);                                                                       \
        if (rc_)                                                                             \
            return rc_;                                                                      \
    } while (0)

/* xoshiro256** seeded through splitmix64: integer-only, so streams are the same on
 * every platform. */
typedef struct {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

static double rng_uniform(rng *r) /* [0, 1) */
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n) without modulo bias. */
static uint64_t rng_below(rng *r, uint64_t n)
{
    uint64_t lim = UINT64_MAX - UINT64_MAX % n, v;
    do
        v = rng_next(r);
    while (v >= lim);
    return v % n;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

#define NAME_LEN 96

struct ct_pretrain {
    ct_pretrain_config cfg;
    ct_model_config mcfg;
    ct_model *m;
    int on_host;          /* CPU device: weights and gradients are host memory */
    size_t n_params;
    float *grads;         /* device, laid out like the weights */
    float *mom, *vel;     /* host Adam moments */
    float *host_p, *host_g; /* host mirrors for a GPU device */
    ct_pretrain_tensor *tensors;
    char (*names)[NAME_LEN];
    size_t n_tensors;
    int32_t *ids, *targets; /* [B*T] */
    long step;
    rng data;
};

void ct_pretrain_neox_config(ct_model_config *out, int vocab, int hidden, int layers, int heads,
                             int intermediate, int ctx, float rotary_pct, int parallel_residual)
{
    memset(out, 0, sizeof *out);
    out->arch = CT_ARCH_GPT_NEOX;
    out->n_layer = layers;
    out->n_head = heads;
    out->hidden = hidden;
    out->intermediate = intermediate > 0 ? intermediate : 4 * hidden;
    out->vocab = vocab;
    out->max_positions = ctx;
    out->act = CT_ACT_GELU_ERF;
    out->norm_eps = 1e-5f;
    out->rotary_pct = rotary_pct;
    out->rotary_base = 10000.0f;
    out->parallel_residual = parallel_residual;
    out->attention_bias = 1;
    out->tie_embeddings = 0;
    out->bos_token_id = 0;
    out->eos_token_id = 0;
    out->pad_token_id = -1;
}

double ct_pretrain_lr(const ct_pretrain_config *c, long step)
{
    if (step < 0)
        step = 0;
    if (step < c->warmup_steps)
        return c->lr * (double)(step + 1) / (double)c->warmup_steps;
    if (step >= c->steps)
        return c->min_lr;
    double p = (double)(step - c->warmup_steps) / (double)(c->steps - c->warmup_steps);
    return c->min_lr + 0.5 * (c->lr - c->min_lr) * (1.0 + cos(M_PI * p));
}

/* --- initialisation ------------------------------------------------------------------ */

typedef struct {
    uint64_t seed;
    double std;
} init_ctx;

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int init_tensor(void *user, const char *name, float *dst, size_t n)
{
    const init_ctx *c = user;
    int norm = strstr(name, "layernorm") || strstr(name, "layer_norm");
    if (ends_with(name, ".bias")) {
        memset(dst, 0, n * sizeof(float));
        return 0;
    }
    if (norm) {
        for (size_t i = 0; i < n; i++)
            dst[i] = 1.0f;
        return 0;
    }
    rng r;
    rng_seed(&r, c->seed ^ fnv1a(name));
    /* Box-Muller, both values of each pair used. */
    for (size_t i = 0; i < n; i += 2) {
        double u1 = rng_uniform(&r), u2 = rng_uniform(&r);
        double rad = sqrt(-2.0 * log(1.0 - u1)), th = 2.0 * M_PI * u2;
        dst[i] = (float)(c->std * rad * cos(th));
        if (i + 1 < n)
            dst[i + 1] = (float)(c->std * rad * sin(th));
    }
    return 0;
}

/* --- the tensor table ------------------------------------------------------------------ */

static void add_tensor(ct_pretrain *t, const float *p, int rows, int cols, int decay,
                       const char *fmt, int l)
{
    ct_pretrain_tensor *e = &t->tensors[t->n_tensors];
    snprintf(t->names[t->n_tensors], NAME_LEN, fmt, l);
    e->name = t->names[t->n_tensors];
    e->offset = (size_t)(p - t->m->params);
    e->rows = rows;
    e->cols = cols;
    e->numel = (size_t)rows * (cols ? cols : 1);
    e->decay = decay;
    t->n_tensors++;
}

static int build_table(ct_pretrain *t)
{
    const ct_model *m = t->m;
    size_t cap = 3 + 12 * (size_t)m->L + 2;
    t->tensors = calloc(cap, sizeof *t->tensors);
    t->names = calloc(cap, sizeof *t->names);
    if (!t->tensors || !t->names)
        return ct_error_set(CT_ENOMEM, "pretrain: out of memory");
    int C = m->C, V = m->V, I = m->I;
    add_tensor(t, m->wte, V, C, 1, "gpt_neox.embed_in.weight", 0);
    for (int l = 0; l < m->L; l++) {
        const ct_layer_w *w = &m->lw[l];
#define P "gpt_neox.layers.%d."
        add_tensor(t, w->ln1_w, C, 0, 0, P "input_layernorm.weight", l);
        add_tensor(t, w->ln1_b, C, 0, 0, P "input_layernorm.bias", l);
        add_tensor(t, w->ln2_w, C, 0, 0, P "post_attention_layernorm.weight", l);
        add_tensor(t, w->ln2_b, C, 0, 0, P "post_attention_layernorm.bias", l);
        add_tensor(t, w->qkv_w, 3 * C, C, 1, P "attention.query_key_value.weight", l);
        add_tensor(t, w->qkv_b, 3 * C, 0, 0, P "attention.query_key_value.bias", l);
        add_tensor(t, w->proj_w, C, C, 1, P "attention.dense.weight", l);
        add_tensor(t, w->proj_b, C, 0, 0, P "attention.dense.bias", l);
        add_tensor(t, w->fc_w, I, C, 1, P "mlp.dense_h_to_4h.weight", l);
        add_tensor(t, w->fc_b, I, 0, 0, P "mlp.dense_h_to_4h.bias", l);
        add_tensor(t, w->fcp_w, C, I, 1, P "mlp.dense_4h_to_h.weight", l);
        add_tensor(t, w->fcp_b, C, 0, 0, P "mlp.dense_4h_to_h.bias", l);
#undef P
    }
    add_tensor(t, m->lnf_w, C, 0, 0, "gpt_neox.final_layer_norm.weight", 0);
    add_tensor(t, m->lnf_b, C, 0, 0, "gpt_neox.final_layer_norm.bias", 0);
    if (!m->cfg.tie_embeddings)
        add_tensor(t, m->head_w, V, C, 1, "embed_out.weight", 0);
    return 0;
}

/* --- create / free --------------------------------------------------------------------- */

static int check_configs(const ct_pretrain_config *c, const ct_model_config *mc)
{
    if (mc->arch != CT_ARCH_GPT_NEOX)
        return ct_error_set(CT_EUNSUPPORTED, "pretrain: only GPT-NeoX models can be trained "
                            "(architecture %d)", (int)mc->arch);
    if (c->batch_sequences <= 0 || c->ctx <= 0)
        return ct_error_set(CT_EINVAL, "pretrain: batch_sequences %d and ctx %d must be "
                            "positive", c->batch_sequences, c->ctx);
    if ((size_t)c->batch_sequences * (size_t)c->ctx > ((size_t)1 << 26))
        return ct_error_set(CT_EINVAL, "pretrain: %d x %d tokens per step is too many",
                            c->batch_sequences, c->ctx);
    if (mc->max_positions > 0 && c->ctx > mc->max_positions)
        return ct_error_set(CT_EINVAL, "pretrain: ctx %d exceeds max_position_embeddings %d",
                            c->ctx, mc->max_positions);
    if (c->steps <= 0 || c->warmup_steps < 0 || c->warmup_steps > c->steps)
        return ct_error_set(CT_EINVAL, "pretrain: need steps > 0 and 0 <= warmup_steps <= "
                            "steps (got %ld, %ld)", c->steps, c->warmup_steps);
    if (!(c->lr >= 0) || !(c->min_lr >= 0) || !(c->weight_decay >= 0) ||
        !(c->grad_clip >= 0) || !(c->eps > 0) || !(c->init_std > 0) || !(c->beta1 >= 0) ||
        !(c->beta1 < 1) || !(c->beta2 >= 0) || !(c->beta2 < 1))
        return ct_error_set(CT_EINVAL, "pretrain: lr %g, min_lr %g, weight_decay %g, "
                            "grad_clip %g must be >= 0, eps %g and init_std %g > 0, betas "
                            "(%g, %g) in [0, 1)", c->lr, c->min_lr, c->weight_decay,
                            c->grad_clip, c->eps, c->init_std, c->beta1, c->beta2);
    return 0;
}

int ct_pretrain_create(const ct_pretrain_config *cfg, const ct_model_config *model,
                       ct_pretrain **out)
{
    *out = NULL;
    TRY(check_configs(cfg, model));
    ct_pretrain *t = calloc(1, sizeof *t);
    if (!t)
        return ct_error_set(CT_ENOMEM, "pretrain: out of memory");
    t->cfg = *cfg;
    t->mcfg = *model;
    init_ctx ic = {cfg->seed, cfg->init_std};
    ct_model_options o = CT_MODEL_OPTIONS_INIT;
    o.device = cfg->device;
    int rc = ct_model_create(model, init_tensor, &ic, &o, &t->m);
    if (rc)
        goto fail;
    t->m->keep_all = 1;
    t->on_host = ct_model_device(t->m) == CT_DEVICE_CPU;
    t->n_params = t->m->n_params;
    size_t N = (size_t)cfg->batch_sequences * cfg->ctx, bytes = t->n_params * sizeof(float);
    if ((rc = ct_kern_alloc(t->m->k, bytes, (void **)&t->grads)))
        goto fail;
    t->mom = calloc(t->n_params, sizeof(float));
    t->vel = calloc(t->n_params, sizeof(float));
    t->ids = malloc(N * sizeof(int32_t));
    t->targets = malloc(N * sizeof(int32_t));
    if (!t->on_host) {
        t->host_p = malloc(bytes);
        t->host_g = malloc(bytes);
    }
    if (!t->mom || !t->vel || !t->ids || !t->targets ||
        (!t->on_host && (!t->host_p || !t->host_g))) {
        rc = ct_error_set(CT_ENOMEM, "pretrain: cannot allocate the optimiser state of %zu "
                          "parameters", t->n_params);
        goto fail;
    }
    if (!t->on_host && (rc = ct_kern_download(t->m->k, t->host_p, t->m->params, bytes)))
        goto fail;
    if ((rc = build_table(t)))
        goto fail;
    /* The data stream is separate from every tensor's initialisation stream. */
    rng_seed(&t->data, cfg->seed ^ 0x64617461ULL /* "data" */);
    *out = t;
    return 0;
fail:
    ct_pretrain_free(t);
    return rc;
}

void ct_pretrain_free(ct_pretrain *t)
{
    if (!t)
        return;
    if (t->m)
        ct_kern_release(t->m->k, t->grads);
    ct_model_free(t->m);
    free(t->mom);
    free(t->vel);
    free(t->host_p);
    free(t->host_g);
    free(t->tensors);
    free(t->names);
    free(t->ids);
    free(t->targets);
    free(t);
}

/* --- steps ----------------------------------------------------------------------------- */

static int check_tokens(const ct_pretrain *t, const int32_t *tokens, size_t n)
{
    if (!tokens)
        return ct_error_set(CT_EINVAL, "pretrain: no tokens");
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= t->mcfg.vocab)
            return ct_error_set(CT_EINVAL, "pretrain: token %d at position %zu outside the "
                                "vocabulary [0, %d)", (int)tokens[i], i, t->mcfg.vocab);
    return 0;
}

int ct_pretrain_grad(ct_pretrain *t, const int32_t *tokens, double *loss)
{
    int B = t->cfg.batch_sequences, T = t->cfg.ctx;
    TRY(check_tokens(t, tokens, (size_t)B * (T + 1)));
    for (int b = 0; b < B; b++) {
        memcpy(t->ids + (size_t)b * T, tokens + (size_t)b * (T + 1), (size_t)T * sizeof(int32_t));
        memcpy(t->targets + (size_t)b * T, tokens + (size_t)b * (T + 1) + 1,
               (size_t)T * sizeof(int32_t));
    }
    TRY(ct_kern_zero(t->m->k, t->grads, t->n_params * sizeof(float)));
    ct_forward_args a = CT_FORWARD_ARGS_INIT;
    a.n_seq = B;
    a.seq_len = T;
    a.ids = t->ids;
    a.grad_layer = 0;
    TRY(ct_model_forward(t->m, &a));
    double l = 0;
    TRY(ct_model_backward_params(t->m, t->targets, t->grads, &l));
    if (!isfinite(l))
        return ct_error_set(CT_EINVAL, "pretrain: the loss is not finite at step %ld", t->step);
    *loss = l;
    return 0;
}

int ct_pretrain_step(ct_pretrain *t, const int32_t *tokens, ct_pretrain_stats *stats)
{
    double loss = 0;
    TRY(ct_pretrain_grad(t, tokens, &loss));
    size_t bytes = t->n_params * sizeof(float);
    float *p = t->on_host ? t->m->params : t->host_p;
    const float *g = t->grads;
    if (!t->on_host) {
        TRY(ct_kern_download(t->m->k, t->host_g, t->grads, bytes));
        g = t->host_g;
    }
    /* Global norm in double, tensor by tensor in a fixed order. */
    double ss = 0;
    for (size_t i = 0; i < t->n_tensors; i++) {
        const float *x = g + t->tensors[i].offset;
        for (size_t j = 0; j < t->tensors[i].numel; j++)
            ss += (double)x[j] * x[j];
    }
    double norm = sqrt(ss);
    if (!isfinite(norm))
        return ct_error_set(CT_EINVAL, "pretrain: the gradient norm is not finite at step %ld",
                            t->step);
    /* torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6), at most 1. */
    float coef = 1.0f;
    if (t->cfg.grad_clip > 0) {
        double c = t->cfg.grad_clip / (norm + 1e-6);
        coef = c < 1.0 ? (float)c : 1.0f;
    }
    double lr = ct_pretrain_lr(&t->cfg, t->step);
    long n = t->step + 1;
    /* torch.optim.AdamW (single-tensor form) in fp32 with these scalars. */
    double b1 = t->cfg.beta1, b2 = t->cfg.beta2;
    float step_size = (float)(lr / (1.0 - pow(b1, (double)n)));
    float bc2_sqrt = (float)sqrt(1.0 - pow(b2, (double)n));
    float decay = (float)(1.0 - lr * t->cfg.weight_decay);
    float fb1 = (float)b1, fb2 = (float)b2, a1 = (float)(1.0 - b1), a2 = (float)(1.0 - b2);
    float eps = (float)t->cfg.eps;
    for (size_t i = 0; i < t->n_tensors; i++) {
        const ct_pretrain_tensor *e = &t->tensors[i];
        float *pp = p + e->offset, *mm = t->mom + e->offset, *vv = t->vel + e->offset;
        const float *gg = g + e->offset;
        int dec = e->decay && t->cfg.weight_decay > 0;
        long ne = (long)e->numel;
#pragma omp parallel for schedule(static)
        for (long j = 0; j < ne; j++) {
            float gj = gg[j] * coef;
            if (dec)
                pp[j] *= decay;
            mm[j] = mm[j] * fb1 + gj * a1;
            vv[j] = vv[j] * fb2 + gj * gj * a2;
            float den = sqrtf(vv[j]) / bc2_sqrt + eps;
            pp[j] -= step_size * (mm[j] / den);
        }
    }
    if (!t->on_host)
        TRY(ct_kern_upload(t->m->k, t->m->params, t->host_p, bytes));
    t->step = n;
    if (stats) {
        stats->loss = loss;
        stats->grad_norm = norm;
        stats->lr = lr;
        stats->step = n;
    }
    return 0;
}

int ct_pretrain_eval(ct_pretrain *t, const int32_t *tokens, int n_seq, double *loss)
{
    int T = t->cfg.ctx;
    if (n_seq <= 0)
        return ct_error_set(CT_EINVAL, "pretrain: evaluation needs sequences (got %d)", n_seq);
    size_t R = (size_t)n_seq * (T + 1);
    TRY(check_tokens(t, tokens, R));
    float *ce = malloc(R * sizeof(float));
    if (!ce)
        return ct_error_set(CT_ENOMEM, "pretrain: out of memory");
    /* The head's own CE covers each position but the last of a row: exactly the T
     * predictions of a [T+1]-token row. */
    ct_forward_args a = CT_FORWARD_ARGS_INIT;
    a.n_seq = n_seq;
    a.seq_len = T + 1;
    a.ids = tokens;
    a.ce = ce;
    int rc = ct_model_forward(t->m, &a);
    if (!rc) {
        double s = 0;
        for (size_t i = 0; i < R; i++)
            s += ce[i];
        *loss = s / ((double)n_seq * T);
    }
    free(ce);
    return rc;
}

int ct_pretrain_sample_batch(ct_pretrain *t, const int32_t *stream, size_t n, int32_t *batch)
{
    size_t w = (size_t)t->cfg.ctx + 1;
    if (!stream || !batch || n < w)
        return ct_error_set(CT_EINVAL, "pretrain: a token stream of %zu tokens is shorter than "
                            "one window of %zu", n, w);
    for (int b = 0; b < t->cfg.batch_sequences; b++) {
        size_t off = (size_t)rng_below(&t->data, (uint64_t)(n - w + 1));
        memcpy(batch + (size_t)b * w, stream + off, w * sizeof(int32_t));
    }
    return 0;
}

/* --- accessors ------------------------------------------------------------------------- */

size_t ct_pretrain_n_params(const ct_pretrain *t)
{
    return t->n_params;
}

size_t ct_pretrain_n_tensors(const ct_pretrain *t)
{
    return t->n_tensors;
}

const ct_pretrain_tensor *ct_pretrain_tensor_at(const ct_pretrain *t, size_t i)
{
    return i < t->n_tensors ? &t->tensors[i] : NULL;
}

int ct_pretrain_get_params(const ct_pretrain *t, float *dst)
{
    return ct_kern_download(t->m->k, dst, t->m->params, t->n_params * sizeof(float));
}

int ct_pretrain_set_params(ct_pretrain *t, const float *src)
{
    size_t bytes = t->n_params * sizeof(float);
    for (size_t i = 0; i < t->n_params; i++)
        if (!isfinite(src[i]))
            return ct_error_set(CT_EINVAL, "pretrain: parameter %zu is not finite", i);
    if (!t->on_host)
        memcpy(t->host_p, src, bytes);
    return ct_kern_upload(t->m->k, t->m->params, src, bytes);
}

int ct_pretrain_get_grads(const ct_pretrain *t, float *dst)
{
    return ct_kern_download(t->m->k, dst, t->grads, t->n_params * sizeof(float));
}

long ct_pretrain_steps_done(const ct_pretrain *t)
{
    return t->step;
}

const ct_pretrain_config *ct_pretrain_get_config(const ct_pretrain *t)
{
    return &t->cfg;
}

ct_model *ct_pretrain_model(ct_pretrain *t)
{
    return t->m;
}

/* --- training state -------------------------------------------------------------------- */

#define STATE_MAGIC "CTPRETR\0"
#define STATE_VERSION 1
/* magic, version, then these 8-byte fields, then params, m, v and the SHA-256. */
enum {
    F_ARCH, F_LAYERS, F_HEADS, F_HIDDEN, F_INTER, F_VOCAB, F_MAXPOS, F_ACT, F_EPS, F_ROTPCT,
    F_ROTBASE, F_PARALLEL, F_TIE, F_BOS, F_EOS, F_PAD, F_BATCH, F_CTX, F_SEED, F_STD,
    F_STEP, F_RNG0, F_RNG1, F_RNG2, F_RNG3, F_NPARAMS, N_FIELDS
};
/* Fields that must match between the file and the trainer restoring it. */
#define N_IDENTITY F_STEP
#define HEADER_BYTES (8 + 8 + 8 * N_FIELDS)

static uint64_t f64bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

static void state_fields(const ct_pretrain *t, uint64_t *f)
{
    const ct_model_config *m = &t->mcfg;
    f[F_ARCH] = (uint64_t)m->arch;
    f[F_LAYERS] = (uint64_t)m->n_layer;
    f[F_HEADS] = (uint64_t)m->n_head;
    f[F_HIDDEN] = (uint64_t)m->hidden;
    f[F_INTER] = (uint64_t)m->intermediate;
    f[F_VOCAB] = (uint64_t)m->vocab;
    f[F_MAXPOS] = (uint64_t)(int64_t)m->max_positions;
    f[F_ACT] = (uint64_t)m->act;
    f[F_EPS] = f64bits(m->norm_eps);
    f[F_ROTPCT] = f64bits(m->rotary_pct);
    f[F_ROTBASE] = f64bits(m->rotary_base);
    f[F_PARALLEL] = (uint64_t)m->parallel_residual;
    f[F_TIE] = (uint64_t)m->tie_embeddings;
    f[F_BOS] = (uint64_t)(int64_t)m->bos_token_id;
    f[F_EOS] = (uint64_t)(int64_t)m->eos_token_id;
    f[F_PAD] = (uint64_t)(int64_t)m->pad_token_id;
    f[F_BATCH] = (uint64_t)t->cfg.batch_sequences;
    f[F_CTX] = (uint64_t)t->cfg.ctx;
    f[F_SEED] = t->cfg.seed;
    f[F_STD] = f64bits(t->cfg.init_std);
    f[F_STEP] = (uint64_t)t->step;
    for (int i = 0; i < 4; i++)
        f[F_RNG0 + i] = t->data.s[i];
    f[F_NPARAMS] = (uint64_t)t->n_params;
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Floats are stored little-endian, as on every host this builds for. */
static void put_f32s(unsigned char *p, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        for (int b = 0; b < 4; b++)
            p[4 * i + (size_t)b] = (unsigned char)(u >> (8 * b));
    }
}

static void get_f32s(float *x, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                     (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
        memcpy(&x[i], &u, 4);
    }
}

int ct_pretrain_state_image(const ct_pretrain *t, unsigned char **out, size_t *out_len)
{
    size_t np = t->n_params, body = HEADER_BYTES + 3 * 4 * np, total = body + 32;
    unsigned char *buf = malloc(total);
    float *p = malloc(np * sizeof(float));
    int rc = 0;
    *out = NULL;
    *out_len = 0;
    if (!buf || !p) {
        rc = ct_error_set(CT_ENOMEM, "cannot allocate %zu bytes of training state", total);
        goto done;
    }
    if ((rc = ct_pretrain_get_params(t, p)))
        goto done;
    memcpy(buf, STATE_MAGIC, 8);
    put_u64(buf + 8, STATE_VERSION);
    uint64_t f[N_FIELDS];
    state_fields(t, f);
    for (int i = 0; i < N_FIELDS; i++)
        put_u64(buf + 16 + 8 * i, f[i]);
    put_f32s(buf + HEADER_BYTES, p, np);
    put_f32s(buf + HEADER_BYTES + 4 * np, t->mom, np);
    put_f32s(buf + HEADER_BYTES + 8 * np, t->vel, np);
    ct_sha256_buf(buf, body, buf + body);
    *out = buf;
    *out_len = total;
    buf = NULL;
done:
    free(buf);
    free(p);
    return rc;
}

int ct_pretrain_save_state(const ct_pretrain *t, const char *path)
{
    unsigned char *buf;
    size_t total;
    int rc = ct_pretrain_state_image(t, &buf, &total);
    if (rc)
        return ct_error_wrap(rc, "%s", path);
    if ((rc = ct_write_file_atomic(path, buf, total)))
        rc = ct_error_wrap(rc, "%s: writing the training state", path);
    free(buf);
    return rc;
}

int ct_pretrain_restore_state(ct_pretrain *t, const char *path)
{
    char *data = NULL;
    size_t len = 0;
    int rc = ct_read_file(path, &data, &len);
    if (rc)
        return ct_error_wrap(rc, "%s: reading the training state", path);
    rc = ct_pretrain_state_load(t, data, len, path);
    free(data);
    return rc;
}

int ct_pretrain_state_load(ct_pretrain *t, const void *data, size_t len, const char *path)
{
    int rc = 0;
    const unsigned char *buf = (const unsigned char *)data;
    size_t np = t->n_params, body = HEADER_BYTES + 3 * 4 * np;
    float *p = NULL;
    uint64_t want[N_FIELDS];
    unsigned char digest[32];
    state_fields(t, want);
    if (len < HEADER_BYTES + 32 || memcmp(buf, STATE_MAGIC, 8) != 0) {
        rc = ct_error_set(CT_EFORMAT, "%s: not a training state file", path);
        goto done;
    }
    if (get_u64(buf + 8) != STATE_VERSION) {
        rc = ct_error_set(CT_EFORMAT, "%s: training state version %llu, expected %d", path,
                          (unsigned long long)get_u64(buf + 8), STATE_VERSION);
        goto done;
    }
    if (get_u64(buf + 16 + 8 * F_NPARAMS) != np || len != body + 32) {
        rc = ct_error_set(CT_EINVAL, "%s: holds %llu parameters (%zu bytes), this trainer "
                          "has %zu", path,
                          (unsigned long long)get_u64(buf + 16 + 8 * F_NPARAMS), len, np);
        goto done;
    }
    ct_sha256_buf(buf, body, digest);
    if (memcmp(digest, buf + body, 32) != 0) {
        rc = ct_error_set(CT_ECORRUPT, "%s: training state fails its SHA-256 check", path);
        goto done;
    }
    for (int i = 0; i < N_IDENTITY; i++)
        if (get_u64(buf + 16 + 8 * i) != want[i]) {
            rc = ct_error_set(CT_EINVAL, "%s: training state of another model or setup (header "
                              "field %d differs)", path, i);
            goto done;
        }
    p = malloc(np * sizeof(float));
    if (!p) {
        rc = ct_error_set(CT_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    get_f32s(p, buf + HEADER_BYTES, np);
    if ((rc = ct_pretrain_set_params(t, p))) {
        rc = ct_error_wrap(rc, "%s", path);
        goto done;
    }
    get_f32s(t->mom, buf + HEADER_BYTES + 4 * np, np);
    get_f32s(t->vel, buf + HEADER_BYTES + 8 * np, np);
    uint64_t step = get_u64(buf + 16 + 8 * F_STEP);
    t->step = (long)step;
    for (int i = 0; i < 4; i++)
        t->data.s[i] = get_u64(buf + 16 + 8 * (F_RNG0 + i));
done:
    free(p);
    return rc;
}

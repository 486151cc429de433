/* GPT-NeoX pretraining: parameter gradients against central differences of an
 * independent double-precision forward, AdamW against a straightforward double
 * implementation, the learning-rate schedule, learning a periodic sequence,
 * determinism, resume from a saved state, and the Hugging Face writer (config.json and
 * tensors against the transformers-format fixture, logits of the reloaded model). */
#include "common/error.h"
#include "common/io.h"
#include "models/checkpoint/checkpoint.h"
#include "models/checkpoint/safetensors.h"
#include "models/forward/pretrain.h"
#include "tests/support/testutil.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>

#define OK(x) ck_assert_msg((x) == 0, "%s", ct_error_message())

/* --- a double-precision GPT-NeoX forward, written from the HF modeling code -------- */

typedef struct {
    const ct_pretrain *t;
    const double *p; /* flat parameters in the trainer's layout */
    int C, nh, hd, I, V, L, rot, parallel;
    double eps, base;
} ref_model;

static const double *ref_get(const ref_model *r, const char *fmt, int l)
{
    char name[128];
    snprintf(name, sizeof name, fmt, l);
    for (size_t i = 0; i < ct_pretrain_n_tensors(r->t); i++) {
        const ct_pretrain_tensor *e = ct_pretrain_tensor_at(r->t, i);
        if (strcmp(e->name, name) == 0)
            return r->p + e->offset;
    }
    ck_abort_msg("no tensor %s", name);
    return NULL;
}

static void ref_ln(const double *x, const double *w, const double *b, double *out, int C,
                   double eps)
{
    double m = 0, v = 0;
    for (int i = 0; i < C; i++)
        m += x[i];
    m /= C;
    for (int i = 0; i < C; i++)
        v += (x[i] - m) * (x[i] - m);
    v /= C;
    for (int i = 0; i < C; i++)
        out[i] = (x[i] - m) / sqrt(v + eps) * w[i] + b[i];
}

/* out[OC] = W[OC, IC] x + b */
static void ref_linear(const double *x, const double *W, const double *b, double *out, int IC,
                       int OC)
{
    for (int o = 0; o < OC; o++) {
        double s = b ? b[o] : 0;
        for (int i = 0; i < IC; i++)
            s += W[(size_t)o * IC + i] * x[i];
        out[o] = s;
    }
}

/* Mean next-token cross-entropy of tokens [B, T+1]. */
static double ref_loss(const ref_model *r, const int32_t *tok, int B, int T)
{
    int C = r->C, hd = r->hd, nh = r->nh, I = r->I, V = r->V;
    size_t TC = (size_t)T * C * sizeof(double);
    double *x = calloc(1, TC), *h = malloc(TC), *qkv = malloc(3 * TC), *y = malloc(TC);
    double *att = malloc(TC), *mlp = malloc(TC);
    double *f = malloc((size_t)I * sizeof(double)), *tmp = malloc((size_t)C * sizeof(double));
    double *logits = malloc((size_t)V * sizeof(double)), *sc = malloc((size_t)T * sizeof(double));
    double total = 0;
    for (int b = 0; b < B; b++) {
        const int32_t *ids = tok + (size_t)b * (T + 1);
        const double *wte = ref_get(r, "gpt_neox.embed_in.weight", 0);
        for (int t = 0; t < T; t++)
            memcpy(x + (size_t)t * C, wte + (size_t)ids[t] * C, C * sizeof(double));
        for (int l = 0; l < r->L; l++) {
#define P "gpt_neox.layers.%d."
            for (int t = 0; t < T; t++) {
                ref_ln(x + (size_t)t * C, ref_get(r, P "input_layernorm.weight", l),
                       ref_get(r, P "input_layernorm.bias", l), h + (size_t)t * C, C, r->eps);
                ref_linear(h + (size_t)t * C, ref_get(r, P "attention.query_key_value.weight", l),
                           ref_get(r, P "attention.query_key_value.bias", l),
                           qkv + (size_t)t * 3 * C, C, 3 * C);
                /* rotary (rotate_half) on the first rot dims of each head's q and k; the
                 * trainer's rows are [q|k|v][head][dim] */
                for (int s = 0; s < 2; s++)
                    for (int hh = 0; hh < nh; hh++) {
                        double *v = qkv + (size_t)t * 3 * C + (size_t)s * C + (size_t)hh * hd;
                        int half = r->rot / 2;
                        for (int i = 0; i < half; i++) {
                            double inv = 1.0 / pow(r->base, (2.0 * i) / r->rot);
                            double a = t * inv, x1 = v[i], x2 = v[i + half];
                            v[i] = x1 * cos(a) - x2 * sin(a);
                            v[i + half] = x2 * cos(a) + x1 * sin(a);
                        }
                    }
            }
            for (int hh = 0; hh < nh; hh++)
                for (int i = 0; i < T; i++) {
                    const double *q = qkv + (size_t)i * 3 * C + (size_t)hh * hd;
                    double mx = -1e300, z = 0;
                    for (int j = 0; j <= i; j++) {
                        const double *k = qkv + (size_t)j * 3 * C + C + (size_t)hh * hd;
                        double d = 0;
                        for (int e = 0; e < hd; e++)
                            d += q[e] * k[e];
                        sc[j] = d / sqrt((double)hd);
                        mx = sc[j] > mx ? sc[j] : mx;
                    }
                    for (int j = 0; j <= i; j++)
                        z += (sc[j] = exp(sc[j] - mx));
                    for (int e = 0; e < hd; e++) {
                        double s = 0;
                        for (int j = 0; j <= i; j++)
                            s += sc[j] / z * qkv[(size_t)j * 3 * C + 2 * C + (size_t)hh * hd + e];
                        y[(size_t)i * C + (size_t)hh * hd + e] = s;
                    }
                }
            for (int t = 0; t < T; t++)
                ref_linear(y + (size_t)t * C, ref_get(r, P "attention.dense.weight", l),
                           ref_get(r, P "attention.dense.bias", l), att + (size_t)t * C, C, C);
            for (int t = 0; t < T; t++) {
                double *xt = x + (size_t)t * C;
                if (!r->parallel)
                    for (int c = 0; c < C; c++)
                        xt[c] += att[(size_t)t * C + c];
                ref_ln(xt, ref_get(r, P "post_attention_layernorm.weight", l),
                       ref_get(r, P "post_attention_layernorm.bias", l), tmp, C, r->eps);
                ref_linear(tmp, ref_get(r, P "mlp.dense_h_to_4h.weight", l),
                           ref_get(r, P "mlp.dense_h_to_4h.bias", l), f, C, I);
                for (int i = 0; i < I; i++)
                    f[i] = 0.5 * f[i] * (1.0 + erf(f[i] / sqrt(2.0)));
                ref_linear(f, ref_get(r, P "mlp.dense_4h_to_h.weight", l),
                           ref_get(r, P "mlp.dense_4h_to_h.bias", l), mlp + (size_t)t * C, I, C);
            }
            for (int t = 0; t < T; t++)
                for (int c = 0; c < C; c++)
                    x[(size_t)t * C + c] += mlp[(size_t)t * C + c] +
                                            (r->parallel ? att[(size_t)t * C + c] : 0);
#undef P
        }
        for (int t = 0; t < T; t++) {
            ref_ln(x + (size_t)t * C, ref_get(r, "gpt_neox.final_layer_norm.weight", 0),
                   ref_get(r, "gpt_neox.final_layer_norm.bias", 0), tmp, C, r->eps);
            ref_linear(tmp, ref_get(r, "embed_out.weight", 0), NULL, logits, C, V);
            double mx = logits[0], z = 0;
            for (int v = 1; v < V; v++)
                mx = logits[v] > mx ? logits[v] : mx;
            for (int v = 0; v < V; v++)
                z += exp(logits[v] - mx);
            total += log(z) + mx - logits[ids[t + 1]];
        }
    }
    free(x), free(h), free(qkv), free(y), free(att), free(mlp), free(f), free(tmp);
    free(logits), free(sc);
    return total / ((double)B * T);
}

/* --- helpers ------------------------------------------------------------------------- */

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

static double gauss(uint64_t *s)
{
    double u1 = ((double)lcg(s) + 0.5) / 2147483648.0, u2 = (double)lcg(s) / 2147483648.0;
    return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

static void random_tokens(int32_t *tok, size_t n, int V, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        tok[i] = (int32_t)(lcg(&seed) % (uint64_t)V);
}

static ct_pretrain *tiny(int parallel, float rot_pct, int B, int T, ct_pretrain_config *cfg_out)
{
    ct_model_config mc;
    ct_pretrain_neox_config(&mc, 50, 16, 2, 2, 0, 32, rot_pct, parallel);
    ct_pretrain_config cfg = CT_PRETRAIN_CONFIG_INIT;
    cfg.batch_sequences = B;
    cfg.ctx = T;
    cfg.steps = 100;
    cfg.warmup_steps = 5;
    cfg.seed = 7;
    if (cfg_out)
        *cfg_out = cfg;
    ct_pretrain *t = NULL;
    OK(ct_pretrain_create(&cfg, &mc, &t));
    return t;
}

static int is_norm(const char *name)
{
    return strstr(name, "layernorm") || strstr(name, "layer_norm");
}

/* --- gradient check ------------------------------------------------------------------ */

static void grad_check(int parallel, float rot_pct)
{
    int B = 2, T = 8;
    ct_pretrain *t = tiny(parallel, rot_pct, B, T, NULL);
    size_t np = ct_pretrain_n_params(t);
    float *p = malloc(np * sizeof(float)), *g = malloc(np * sizeof(float));
    double *pd = malloc(np * sizeof(double));
    OK(ct_pretrain_get_params(t, p));
    /* Larger weights than the 0.02 init (and non-trivial norms and biases) so that every
     * nonlinearity is exercised and the gradients stand well above rounding. */
    uint64_t s = 99;
    for (size_t i = 0; i < ct_pretrain_n_tensors(t); i++) {
        const ct_pretrain_tensor *e = ct_pretrain_tensor_at(t, i);
        int bias = strstr(e->name, ".bias") != NULL, norm = is_norm(e->name);
        for (size_t j = 0; j < e->numel; j++) {
            double z = gauss(&s);
            p[e->offset + j] = (float)(norm && !bias ? 1.0 + 0.2 * z : bias ? 0.1 * z : 0.3 * z);
        }
    }
    OK(ct_pretrain_set_params(t, p));
    int32_t tok[2 * 9];
    random_tokens(tok, sizeof tok / sizeof *tok, 50, 5);
    tok[3] = tok[7] = tok[12]; /* repeated tokens: embedding rows add up */
    double loss = 0;
    OK(ct_pretrain_grad(t, tok, &loss));
    OK(ct_pretrain_get_grads(t, g));
    for (size_t i = 0; i < np; i++)
        pd[i] = p[i];
    ref_model r = {t, pd, 16, 2, 8, 64, 50, 2, (int)(8 * rot_pct), parallel, 1e-5, 10000};
    double ref = ref_loss(&r, tok, B, T);
    printf("parallel %d: loss %.9f, double reference %.9f\n", parallel, loss, ref);
    ck_assert_msg(fabs(loss - ref) < 2e-5, "loss %.9f vs reference %.9f", loss, ref);
    double ev = 0; /* the inference head's cross-entropy agrees */
    OK(ct_pretrain_eval(t, tok, B, &ev));
    ck_assert_msg(fabs(ev - ref) < 2e-5, "eval loss %.9f vs reference %.9f", ev, ref);

    double worst = 0;
    for (size_t i = 0; i < ct_pretrain_n_tensors(t); i++) {
        const ct_pretrain_tensor *e = ct_pretrain_tensor_at(t, i);
        /* first, last and some random entries of every tensor */
        size_t picks[8] = {0, e->numel - 1};
        for (int k = 2; k < 8; k++)
            picks[k] = (size_t)(lcg(&s) % e->numel);
        double gmax = 0;
        for (size_t j = 0; j < e->numel; j++)
            gmax = fmax(gmax, fabs(g[e->offset + j]));
        ck_assert_msg(gmax > 0, "%s: all-zero gradient", e->name);
        for (int k = 0; k < 8; k++) {
            size_t o = e->offset + picks[k];
            double h = 1e-5, save = pd[o];
            pd[o] = save + h;
            double lp = ref_loss(&r, tok, B, T);
            pd[o] = save - h;
            double lm = ref_loss(&r, tok, B, T);
            pd[o] = save;
            double fd = (lp - lm) / (2 * h), an = g[o];
            /* relative to the tensor's scale: float gradients carry float rounding */
            double err = fabs(fd - an) / (fabs(fd) + 1e-2 * gmax + 1e-6);
            worst = fmax(worst, err);
            ck_assert_msg(err < 2e-3, "%s[%zu]: analytic %.8g, finite difference %.8g",
                          e->name, picks[k], an, fd);
        }
    }
    printf("parallel %d: worst relative gradient error %.2e\n", parallel, worst);
    free(p), free(g), free(pd);
    ct_pretrain_free(t);
}

START_TEST(test_grad_parallel)
{
    grad_check(1, 0.5f);
}
END_TEST

START_TEST(test_grad_sequential)
{
    grad_check(0, 0.25f);
}
END_TEST

/* A batch of 3 x 200 positions runs the output head in two chunks of rows; its gradient
 * must be the mean of the three single-sequence gradients. */
START_TEST(test_grad_batch_is_mean_of_sequences)
{
    int T = 200;
    ct_model_config mc;
    ct_pretrain_neox_config(&mc, 50, 16, 2, 2, 0, T, 0.25f, 1);
    ct_pretrain_config cfg = CT_PRETRAIN_CONFIG_INIT;
    cfg.ctx = T;
    cfg.batch_sequences = 3;
    ct_pretrain *all = NULL, *one = NULL;
    OK(ct_pretrain_create(&cfg, &mc, &all));
    cfg.batch_sequences = 1;
    OK(ct_pretrain_create(&cfg, &mc, &one));
    size_t np = ct_pretrain_n_params(all);
    ck_assert_uint_eq(np, ct_pretrain_n_params(one));
    int32_t *tok = malloc(3 * (size_t)(T + 1) * sizeof(int32_t));
    random_tokens(tok, 3 * (size_t)(T + 1), 50, 21);
    float *g = malloc(np * sizeof(float)), *gi = malloc(np * sizeof(float));
    double *mean = calloc(np, sizeof(double)), loss = 0, li = 0, lmean = 0;
    OK(ct_pretrain_grad(all, tok, &loss));
    OK(ct_pretrain_get_grads(all, g));
    for (int b = 0; b < 3; b++) {
        OK(ct_pretrain_grad(one, tok + (size_t)b * (T + 1), &li));
        OK(ct_pretrain_get_grads(one, gi));
        lmean += li / 3;
        for (size_t i = 0; i < np; i++)
            mean[i] += gi[i] / 3.0;
    }
    ck_assert_double_eq_tol(loss, lmean, 1e-6);
    double gmax = 0, dmax = 0;
    for (size_t i = 0; i < np; i++) {
        gmax = fmax(gmax, fabs(mean[i]));
        dmax = fmax(dmax, fabs(mean[i] - g[i]));
    }
    printf("batch of 3 vs mean of sequences: max |diff| %.2e (max |grad| %.2e)\n", dmax, gmax);
    ck_assert_double_gt(gmax, 0);
    ck_assert_msg(dmax <= 1e-4 * gmax, "max |diff| %.3g", dmax);
    free(tok), free(g), free(gi), free(mean);
    ct_pretrain_free(all), ct_pretrain_free(one);
}
END_TEST

/* --- AdamW ----------------------------------------------------------------------------- */

START_TEST(test_adamw_matches_reference)
{
    int B = 2, T = 8;
    ct_model_config mc;
    ct_pretrain_neox_config(&mc, 50, 16, 2, 2, 0, 32, 0.25f, 1);
    ct_pretrain_config cfg = CT_PRETRAIN_CONFIG_INIT;
    cfg.batch_sequences = B;
    cfg.ctx = T;
    cfg.steps = 10;
    cfg.warmup_steps = 2;
    cfg.lr = 3e-2;
    cfg.min_lr = 1e-3;
    cfg.weight_decay = 0.5;
    cfg.beta1 = 0.8;
    cfg.beta2 = 0.9;
    cfg.eps = 1e-6;
    cfg.grad_clip = 2.0; /* clips some of the steps below, not all */
    ct_pretrain *t = NULL;
    OK(ct_pretrain_create(&cfg, &mc, &t));
    size_t np = ct_pretrain_n_params(t);
    float *p0 = malloc(np * sizeof(float)), *p1 = malloc(np * sizeof(float));
    float *g = malloc(np * sizeof(float));
    double *m = calloc(np, sizeof(double)), *v = calloc(np, sizeof(double));
    double *ref = malloc(np * sizeof(double));
    OK(ct_pretrain_get_params(t, p0));
    for (size_t i = 0; i < np; i++)
        ref[i] = p0[i];
    int32_t tok[2 * 9];
    int clipped = 0, unclipped = 0;
    for (int step = 0; step < 6; step++) {
        random_tokens(tok, sizeof tok / sizeof *tok, 50, 100 + (uint64_t)step);
        ct_pretrain_stats st;
        OK(ct_pretrain_step(t, tok, &st));
        OK(ct_pretrain_get_grads(t, g)); /* the unclipped gradients of this step */
        OK(ct_pretrain_get_params(t, p1));
        double ss = 0;
        for (size_t i = 0; i < np; i++)
            ss += (double)g[i] * g[i];
        double norm = sqrt(ss), coef = fmin(1.0, 2.0 / (norm + 1e-6));
        clipped += coef < 1, unclipped += coef >= 1;
        ck_assert_double_eq_tol(st.grad_norm, norm, 1e-9 * norm);
        /* warmup 2: steps 0, 1 at lr * (s+1)/2; then cosine over 8 steps */
        double lr = step < 2 ? 3e-2 * (step + 1) / 2
                             : 1e-3 + 0.5 * (3e-2 - 1e-3) * (1 + cos(M_PI * (step - 2) / 8.0));
        ck_assert_double_eq_tol(st.lr, lr, 1e-15);
        double dmax = 0;
        for (size_t i = 0; i < ct_pretrain_n_tensors(t); i++) {
            const ct_pretrain_tensor *e = ct_pretrain_tensor_at(t, i);
            int decay = strstr(e->name, ".weight") && !is_norm(e->name);
            ck_assert_int_eq(e->decay, decay);
            for (size_t j = 0; j < e->numel; j++) {
                size_t o = e->offset + j;
                double gj = g[o] * coef;
                m[o] = 0.8 * m[o] + 0.2 * gj;
                v[o] = 0.9 * v[o] + 0.1 * gj * gj;
                double mh = m[o] / (1 - pow(0.8, step + 1)), vh = v[o] / (1 - pow(0.9, step + 1));
                ref[o] = ref[o] * (decay ? 1 - lr * 0.5 : 1) - lr * mh / (sqrt(vh) + 1e-6);
                dmax = fmax(dmax, fabs(ref[o] - p1[o]));
                ref[o] = p1[o]; /* follow the trainer so float rounding does not build up */
            }
        }
        printf("adamw step %d: lr %.5f, norm %.4f, coef %.4f, max |param - reference| %.2e\n",
               step, lr, norm, coef, dmax);
        ck_assert_msg(dmax < 2e-6, "step %d: parameters differ from AdamW by %.3g", step, dmax);
    }
    ck_assert_int_gt(clipped, 0);
    ck_assert_int_gt(unclipped, 0);
    ck_assert_int_eq(ct_pretrain_steps_done(t), 6);
    free(p0), free(p1), free(g), free(m), free(v), free(ref);
    ct_pretrain_free(t);
}
END_TEST

/* --- schedule -------------------------------------------------------------------------- */

START_TEST(test_schedule)
{
    ct_pretrain_config c = CT_PRETRAIN_CONFIG_INIT;
    c.lr = 1e-3;
    c.min_lr = 1e-4;
    c.warmup_steps = 10;
    c.steps = 110;
    ck_assert_double_eq_tol(ct_pretrain_lr(&c, 0), 1e-4, 1e-15);
    ck_assert_double_eq_tol(ct_pretrain_lr(&c, 4), 5e-4, 1e-15);
    ck_assert_double_eq_tol(ct_pretrain_lr(&c, 9), 1e-3, 1e-15);
    ck_assert_double_eq_tol(ct_pretrain_lr(&c, 10), 1e-3, 1e-15);
    ck_assert_double_eq_tol(ct_pretrain_lr(&c, 35), 1e-4 + 0.45e-3 * (1 + sqrt(0.5)), 1e-15);
    ck_assert_double_eq_tol(ct_pretrain_lr(&c, 60), 5.5e-4, 1e-15);
    ck_assert_double_eq_tol(ct_pretrain_lr(&c, 110), 1e-4, 1e-15);
    ck_assert_double_eq_tol(ct_pretrain_lr(&c, 500), 1e-4, 1e-15);
    for (long s = 11; s < 110; s++)
        ck_assert(ct_pretrain_lr(&c, s) < ct_pretrain_lr(&c, s - 1));
    c.warmup_steps = 0;
    ck_assert_double_eq_tol(ct_pretrain_lr(&c, 0), 1e-3, 1e-15);
}
END_TEST

/* --- learning -------------------------------------------------------------------------- */

START_TEST(test_learns_periodic_sequence)
{
    static const int32_t period[7] = {3, 17, 5, 42, 8, 21, 33};
    int32_t stream[700];
    for (int i = 0; i < 700; i++)
        stream[i] = period[i % 7];
    ct_model_config mc;
    ct_pretrain_neox_config(&mc, 50, 32, 2, 2, 0, 16, 0.25f, 1);
    ct_pretrain_config cfg = CT_PRETRAIN_CONFIG_INIT;
    cfg.batch_sequences = 8;
    cfg.ctx = 16;
    cfg.steps = 150;
    cfg.warmup_steps = 10;
    cfg.lr = 1e-2;
    cfg.min_lr = 1e-3;
    ct_pretrain *t = NULL;
    OK(ct_pretrain_create(&cfg, &mc, &t));
    int32_t batch[8 * 17];
    ct_pretrain_stats st;
    double first = 0;
    for (int s = 0; s < 150; s++) {
        OK(ct_pretrain_sample_batch(t, stream, 700, batch));
        OK(ct_pretrain_step(t, batch, &st));
        if (s == 0)
            first = st.loss;
    }
    double eval = 0;
    OK(ct_pretrain_eval(t, stream + 3, 2, &eval));
    printf("periodic sequence: loss %.4f -> %.5f (eval %.5f)\n", first, st.loss, eval);
    ck_assert_double_gt(first, 3.0); /* about log(50) at initialisation */
    ck_assert_double_lt(st.loss, 0.05);
    ck_assert_double_lt(eval, 0.05);
    ct_pretrain_free(t);
}
END_TEST

/* --- determinism and resume ------------------------------------------------------------ */

static void run_steps(ct_pretrain *t, const int32_t *stream, size_t n, int steps)
{
    const ct_pretrain_config *c = ct_pretrain_get_config(t);
    int32_t *batch = malloc((size_t)c->batch_sequences * (c->ctx + 1) * sizeof(int32_t));
    for (int s = 0; s < steps; s++) {
        OK(ct_pretrain_sample_batch(t, stream, n, batch));
        OK(ct_pretrain_step(t, batch, NULL));
    }
    free(batch);
}

static float *params_of(const ct_pretrain *t)
{
    float *p = malloc(ct_pretrain_n_params(t) * sizeof(float));
    OK(ct_pretrain_get_params(t, p));
    return p;
}

START_TEST(test_determinism_and_resume)
{
    int32_t stream[500];
    random_tokens(stream, 500, 50, 11);
    ct_pretrain_config cfg;
    ct_pretrain *a = tiny(1, 0.25f, 3, 8, &cfg), *b = tiny(1, 0.25f, 3, 8, NULL);
    size_t np = ct_pretrain_n_params(a), bytes = np * sizeof(float);
    run_steps(a, stream, 500, 6);
    run_steps(b, stream, 500, 3);
    char dir[512], path[600];
    ct_test_tmpdir(dir, sizeof dir, "pretrain-state");
    snprintf(path, sizeof path, "%s/state.bin", dir);
    OK(ct_pretrain_save_state(b, path));
    /* the in-memory image holds the file's bytes */
    unsigned char *img = NULL;
    char *file = NULL;
    size_t img_len = 0, file_len = 0;
    OK(ct_pretrain_state_image(b, &img, &img_len));
    OK(ct_read_file(path, &file, &file_len));
    ck_assert_uint_eq(img_len, file_len);
    ck_assert(memcmp(img, file, img_len) == 0);
    free(file);
    run_steps(b, stream, 500, 3);
    float *pa = params_of(a), *pb = params_of(b);
    ck_assert_msg(memcmp(pa, pb, bytes) == 0, "two identical runs differ");
    /* and on one thread: reductions do not depend on the thread count */
    int threads = omp_get_max_threads();
    omp_set_num_threads(threads > 1 ? 1 : 3);
    ct_pretrain *one = tiny(1, 0.25f, 3, 8, NULL);
    run_steps(one, stream, 500, 6);
    omp_set_num_threads(threads);
    float *p1 = params_of(one);
    ck_assert_msg(memcmp(pa, p1, bytes) == 0, "the thread count changes the result");
    free(p1);
    ct_pretrain_free(one);

    /* a fresh trainer, one step off (weights, moments, step count and sampler all
     * differ from the saved ones until the restore) */
    ct_model_config mc;
    ct_pretrain_neox_config(&mc, 50, 16, 2, 2, 0, 32, 0.25f, 1);
    ct_pretrain *c = NULL;
    OK(ct_pretrain_create(&cfg, &mc, &c));
    run_steps(c, stream, 500, 1);
    OK(ct_pretrain_restore_state(c, path));
    ck_assert_int_eq(ct_pretrain_steps_done(c), 3);
    run_steps(c, stream, 500, 3);
    float *pc = params_of(c);
    ck_assert_msg(memcmp(pa, pc, bytes) == 0, "resumed run differs from the uninterrupted one");
    /* restoring from the image instead of the file: the same continuation; a cut
     * image is refused */
    ct_pretrain *ci = NULL;
    OK(ct_pretrain_create(&cfg, &mc, &ci));
    ck_assert_int_ne(ct_pretrain_state_load(ci, img, img_len - 1, "cut image"), 0);
    ck_assert_int_ne(ct_pretrain_state_load(ci, img, 10, "cut image"), 0);
    OK(ct_pretrain_state_load(ci, img, img_len, "image"));
    ck_assert_int_eq(ct_pretrain_steps_done(ci), 3);
    run_steps(ci, stream, 500, 3);
    float *pi = params_of(ci);
    ck_assert_msg(memcmp(pa, pi, bytes) == 0, "run resumed from the image differs");
    free(pi);
    free(img);
    ct_pretrain_free(ci);
    size_t diff = 0;
    float *p0 = params_of(c);
    ct_pretrain *d = tiny(1, 0.25f, 3, 8, NULL);
    float *pd = params_of(d);
    for (size_t i = 0; i < np; i++)
        diff += pd[i] != pa[i];
    ck_assert_uint_gt(diff, np / 2); /* training moved the weights */

    /* a flipped byte fails the digest; another model's state is refused */
    char *data = NULL;
    size_t len = 0;
    OK(ct_read_file(path, &data, &len));
    data[len / 2] ^= 1;
    char bad[600];
    snprintf(bad, sizeof bad, "%s/bad.bin", dir);
    OK(ct_write_file_atomic(bad, data, len));
    ck_assert_int_eq(ct_pretrain_restore_state(d, bad), CT_ECORRUPT);
    OK(ct_write_file_atomic(bad, data, 40));
    ck_assert_int_eq(ct_pretrain_restore_state(d, bad), CT_EFORMAT);
    ct_model_config other;
    ct_pretrain_neox_config(&other, 50, 16, 2, 4, 0, 32, 0.5f, 1); /* 4 heads: same sizes */
    ct_pretrain *e = NULL;
    OK(ct_pretrain_create(&cfg, &other, &e));
    ck_assert_int_eq(ct_pretrain_restore_state(e, path), CT_EINVAL);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "state.bin"));
    remove(bad);
    remove(path);
    rmdir(dir);
    free(data), free(pa), free(pb), free(pc), free(pd), free(p0);
    ct_pretrain_free(a), ct_pretrain_free(b), ct_pretrain_free(c), ct_pretrain_free(d);
    ct_pretrain_free(e);
}
END_TEST

START_TEST(test_seed_changes_init)
{
    ct_model_config mc;
    ct_pretrain_neox_config(&mc, 50, 16, 2, 2, 0, 32, 0.25f, 1);
    ct_pretrain_config cfg = CT_PRETRAIN_CONFIG_INIT;
    ct_pretrain *a = NULL, *b = NULL;
    cfg.ctx = 8;
    OK(ct_pretrain_create(&cfg, &mc, &a));
    cfg.seed++;
    OK(ct_pretrain_create(&cfg, &mc, &b));
    float *pa = params_of(a), *pb = params_of(b);
    /* init statistics: weights ~ N(0, 0.02), biases 0, norms 1 */
    for (size_t i = 0; i < ct_pretrain_n_tensors(a); i++) {
        const ct_pretrain_tensor *e = ct_pretrain_tensor_at(a, i);
        double s = 0, s2 = 0;
        size_t same = 0;
        for (size_t j = 0; j < e->numel; j++) {
            double x = pa[e->offset + j];
            s += x, s2 += x * x;
            same += pa[e->offset + j] == pb[e->offset + j];
        }
        if (strstr(e->name, ".bias")) {
            ck_assert_double_eq(s2, 0);
        } else if (is_norm(e->name)) {
            ck_assert_double_eq(s, (double)e->numel);
            ck_assert_double_eq(s2, (double)e->numel);
        } else {
            double sd = sqrt(s2 / e->numel);
            ck_assert_msg(sd > 0.017 && sd < 0.023, "%s: std %.4f", e->name, sd);
            ck_assert_msg(same < e->numel / 100, "%s: seed does not change it", e->name);
        }
    }
    /* bad configurations */
    ct_pretrain *x = NULL;
    cfg.ctx = 64; /* > max_positions 32 */
    ck_assert_int_eq(ct_pretrain_create(&cfg, &mc, &x), CT_EINVAL);
    cfg.ctx = 8;
    mc.arch = CT_ARCH_BLOOM;
    ck_assert_int_eq(ct_pretrain_create(&cfg, &mc, &x), CT_EUNSUPPORTED);
    ck_assert_ptr_null(x);
    int32_t tok[8 * 9] = {0};
    tok[5] = 50;
    ck_assert_int_eq(ct_pretrain_step(a, tok, NULL), CT_EINVAL);
    free(pa), free(pb);
    ct_pretrain_free(a), ct_pretrain_free(b);
}
END_TEST

/* --- Hugging Face writer --------------------------------------------------------------- */

/* HF fused q/k/v rows [head][q|k|v][dim] -> the trainer's [q|k|v][head][dim]. */
static void hf_to_model_rows(const float *src, float *dst, int nh, int hd, size_t cols)
{
    for (int h = 0; h < nh; h++)
        for (int s = 0; s < 3; s++)
            for (int d = 0; d < hd; d++)
                memcpy(dst + (((size_t)s * nh + h) * hd + d) * cols,
                       src + (((size_t)h * 3 + s) * hd + d) * cols, cols * sizeof(float));
}

START_TEST(test_hf_writer_round_trip)
{
    char fx[1024], tokpath[1024];
    ct_test_src(fx, sizeof fx, "tests/fixtures/checkpoints/neox");
    ct_test_src(tokpath, sizeof tokpath, "tests/fixtures/tokenizers/gpt2/tokenizer.json.zst");
    ct_checkpoint *ck = NULL;
    OK(ct_ckpt_open(fx, &ck));
    /* the fixture's shape, as a pretrain recipe would give it */
    ct_model_config mc;
    ct_pretrain_neox_config(&mc, 64, 16, 2, 2, 32, 32, 0.25f, 1);
    ct_pretrain_config cfg = CT_PRETRAIN_CONFIG_INIT;
    cfg.batch_sequences = 2;
    cfg.ctx = 8;
    ct_pretrain *t = NULL;
    OK(ct_pretrain_create(&cfg, &mc, &t));
    size_t np = ct_pretrain_n_params(t);
    float *p = calloc(np, sizeof(float));
    for (size_t i = 0; i < ct_pretrain_n_tensors(t); i++) {
        const ct_pretrain_tensor *e = ct_pretrain_tensor_at(t, i);
        float *tmp = malloc(e->numel * sizeof(float));
        OK(ct_ckpt_tensor_f32(ck, e->name, tmp, e->numel));
        if (strstr(e->name, "query_key_value"))
            hf_to_model_rows(tmp, p + e->offset, 2, 8, e->cols ? (size_t)e->cols : 1);
        else
            memcpy(p + e->offset, tmp, e->numel * sizeof(float));
        free(tmp);
    }
    OK(ct_pretrain_set_params(t, p));

    char dir[512], path[700];
    ct_test_tmpdir(dir, sizeof dir, "pretrain-hf");
    snprintf(path, sizeof path, "%s/out/ckpt", dir);
    OK(ct_pretrain_write_hf(t, path, tokpath));

    /* config.json: byte-identical to the transformers 4.40 format of the fixture */
    char f1[800], f2[1100], *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    snprintf(f1, sizeof f1, "%s/config.json", path);
    snprintf(f2, sizeof f2, "%s/config.json", fx);
    OK(ct_read_file(f1, &a, &la));
    OK(ct_read_file(f2, &b, &lb));
    ck_assert_str_eq(a, b);
    free(a), free(b);
    /* tokenizer.json: the decompressed source */
    snprintf(f1, sizeof f1, "%s/tokenizer.json", path);
    OK(ct_read_file(f1, &a, &la));
    OK(ct_read_file(tokpath, &b, &lb));
    ck_assert_uint_eq(la, lb);
    ck_assert(memcmp(a, b, la) == 0);
    free(a), free(b);

    /* every tensor of the fixture, same name, shape and bytes */
    ct_safetensors *st = NULL;
    snprintf(f1, sizeof f1, "%s/model.safetensors", path);
    OK(ct_safetensors_open(f1, &st));
    ck_assert_str_eq(ct_safetensors_meta(st, "format"), "pt");
    ck_assert_uint_eq(ct_safetensors_count(st), ct_ckpt_tensor_count(ck));
    for (size_t i = 0; i < ct_ckpt_tensor_count(ck); i++) {
        ct_tensor_view want, got;
        ct_ckpt_tensor_at(ck, i, &want);
        OK(ct_safetensors_find(st, want.name, &got));
        ck_assert_int_eq(got.ndim, want.ndim);
        for (int d = 0; d < want.ndim; d++)
            ck_assert_int_eq(got.shape[d], want.shape[d]);
        ck_assert_int_eq(got.dtype, CT_DT_F32);
        ck_assert_uint_eq(got.nbytes, want.nbytes);
        ck_assert_msg(memcmp(got.data, want.data, want.nbytes) == 0, "%s differs", want.name);
    }
    ct_safetensors_close(st);

    /* the written checkpoint loads and gives bit-identical logits */
    ct_model *m2 = NULL;
    OK(ct_model_load(path, NULL, &m2));
    int32_t ids[2 * 8];
    random_tokens(ids, 16, 64, 3);
    float *l1 = malloc(16 * 64 * sizeof(float)), *l2 = malloc(16 * 64 * sizeof(float));
    ct_forward_args fa = CT_FORWARD_ARGS_INIT;
    fa.n_seq = 2;
    fa.seq_len = 8;
    fa.ids = ids;
    fa.logits = l1;
    OK(ct_model_forward(ct_pretrain_model(t), &fa));
    fa.logits = l2;
    OK(ct_model_forward(m2, &fa));
    ck_assert(memcmp(l1, l2, 16 * 64 * sizeof(float)) == 0);

    /* after training steps: still the same logits (trained weights, non-k/256 values) */
    int32_t tok[2 * 9];
    random_tokens(tok, 18, 64, 4);
    OK(ct_pretrain_step(t, tok, NULL));
    OK(ct_pretrain_step(t, tok, NULL));
    OK(ct_pretrain_write_hf(t, path, NULL));
    ct_model_free(m2);
    OK(ct_model_load(path, NULL, &m2));
    fa.logits = l1;
    OK(ct_model_forward(ct_pretrain_model(t), &fa));
    fa.logits = l2;
    OK(ct_model_forward(m2, &fa));
    ck_assert(memcmp(l1, l2, 16 * 64 * sizeof(float)) == 0);
    const ct_model_config *c2 = ct_model_get_config(m2);
    ck_assert_int_eq(c2->intermediate, 32);
    ck_assert_int_eq(c2->parallel_residual, 1);
    ck_assert_int_eq(c2->tie_embeddings, 0);

    ct_model_free(m2);
    free(l1), free(l2), free(p);
    ct_pretrain_free(t);
    ct_ckpt_close(ck);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_hf_config_variants)
{
    /* sequential residual, other eps/rotary values, a pad id: parses back field by field */
    ct_model_config mc;
    ct_pretrain_neox_config(&mc, 40, 24, 3, 3, 0, 64, 0.5f, 0);
    mc.norm_eps = 1e-6f;
    mc.bos_token_id = 1;
    mc.eos_token_id = 2;
    mc.pad_token_id = 3;
    ct_pretrain_config cfg = CT_PRETRAIN_CONFIG_INIT;
    cfg.ctx = 8;
    cfg.batch_sequences = 1;
    cfg.init_std = 0.015;
    ct_pretrain *t = NULL;
    OK(ct_pretrain_create(&cfg, &mc, &t));
    char dir[512], path[700];
    ct_test_tmpdir(dir, sizeof dir, "pretrain-hf2");
    OK(ct_pretrain_write_hf(t, dir, NULL));
    snprintf(path, sizeof path, "%s/config.json", dir);
    ct_model_config back;
    OK(ct_ckpt_parse_config(path, &back));
    ck_assert_int_eq(back.arch, CT_ARCH_GPT_NEOX);
    ck_assert_int_eq(back.hidden, 24);
    ck_assert_int_eq(back.n_layer, 3);
    ck_assert_int_eq(back.n_head, 3);
    ck_assert_int_eq(back.intermediate, 96);
    ck_assert_int_eq(back.vocab, 40);
    ck_assert_int_eq(back.max_positions, 64);
    ck_assert_int_eq(back.parallel_residual, 0);
    ck_assert_int_eq(back.bos_token_id, 1);
    ck_assert_int_eq(back.eos_token_id, 2);
    ck_assert_int_eq(back.pad_token_id, 3);
    ck_assert(back.norm_eps == 1e-6f);
    ck_assert(back.rotary_pct == 0.5f);
    char *text = NULL;
    size_t len = 0;
    OK(ct_read_file(path, &text, &len));
    ck_assert_ptr_nonnull(strstr(text, "\"layer_norm_eps\": 1e-06,\n"));
    ck_assert_ptr_nonnull(strstr(text, "\"initializer_range\": 0.015,\n"));
    ck_assert_ptr_nonnull(strstr(text, "\"rotary_pct\": 0.5,\n"));
    ck_assert_ptr_nonnull(strstr(text, "\"use_parallel_residual\": false,\n"));
    free(text);
    /* the whole model loads back with identical logits */
    ct_model *m2 = NULL;
    OK(ct_model_load(dir, NULL, &m2));
    int32_t ids[8];
    random_tokens(ids, 8, 40, 9);
    float l1[8 * 40], l2[8 * 40];
    ct_forward_args fa = CT_FORWARD_ARGS_INIT;
    fa.n_seq = 1;
    fa.seq_len = 8;
    fa.ids = ids;
    fa.logits = l1;
    OK(ct_model_forward(ct_pretrain_model(t), &fa));
    fa.logits = l2;
    OK(ct_model_forward(m2, &fa));
    ck_assert(memcmp(l1, l2, sizeof l1) == 0);
    ct_model_free(m2);
    ct_pretrain_free(t);
    char cmd[800];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pretrain");
    TCase *tc = tcase_create("pretrain");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_grad_parallel);
    tcase_add_test(tc, test_grad_sequential);
    tcase_add_test(tc, test_grad_batch_is_mean_of_sequences);
    tcase_add_test(tc, test_adamw_matches_reference);
    tcase_add_test(tc, test_schedule);
    tcase_add_test(tc, test_learns_periodic_sequence);
    tcase_add_test(tc, test_determinism_and_resume);
    tcase_add_test(tc, test_seed_changes_init);
    tcase_add_test(tc, test_hf_writer_round_trip);
    tcase_add_test(tc, test_hf_config_variants);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

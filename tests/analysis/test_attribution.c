/* Integrated gradients, ablation and ΔCE (analysis/attribution.h) on tiny GPT-NeoX
 * checkpoint pairs with random crosscoders: IG completeness, agreement with a plain
 * one-example-at-a-time implementation written here, latents that never fire,
 * independence of the batch size, and ΔCE of an exact and of a random crosscoder. */
#include "analysis/attribution.h"
#include "tests/analysis/fixture.h"

#define N_EX 7
#define H_RAND 48

typedef struct {
    ct_model *models[2];
    ct_crosscoder *cc;
    ct_task_example ex[N_EX];
    int32_t ids[9 * N_EX];
} world;

static void world_open(world *w, int H)
{
    w->models[0] = ax_model(11, 0.0);
    w->models[1] = ax_model(12, 0.3);
    w->cc = ax_cc_random(2, H, 77);
    ax_examples(w->ex, w->ids, N_EX, 5);
}

static void world_close(world *w)
{
    ct_model_free(w->models[0]);
    ct_model_free(w->models[1]);
    ct_cc_free(w->cc);
}

static ct_attr_result run_ig(world *w, int steps, float threshold, int batch)
{
    ct_attr_options o = CT_ATTR_OPTIONS_INIT;
    o.steps = steps;
    o.threshold = threshold;
    o.batch = batch;
    ct_attr_result r;
    ck_assert_msg(ct_attr_ig(w->models, 2, w->cc, AX_LAYER, w->ex, N_EX, &o, &r) == 0, "%s", ct_error_message());
    ck_assert_int_eq(r.M, 2);
    ck_assert_int_eq(r.H, w->cc->cfg.H);
    ck_assert_uint_eq(r.n_examples, N_EX);
    return r;
}

/* ---- an independent IG, one example at a time, written from METHOD §5 ---- */

/* Forward of one sequence: capture at the layer (cap may be NULL), patch (NULL: none),
 * grad, logits of the last position (NULL: none), ce of every position (NULL: none). */
static void fwd1(ct_model *m, const int32_t *ids, int T, float *cap, const float *patch, int grad, float *logits,
                 float *ce)
{
    int layer = AX_LAYER;
    int32_t row = T - 1;
    ct_forward_args a = CT_FORWARD_ARGS_INIT;
    a.n_seq = 1;
    a.seq_len = T;
    a.ids = ids;
    if (cap) {
        a.n_capture = 1;
        a.capture_layers = &layer;
        a.capture = &cap;
    }
    if (patch) {
        a.patch_layer = AX_LAYER;
        a.patch = patch;
    }
    a.grad_layer = grad ? AX_LAYER : -1;
    if (logits || grad) {
        a.n_rows = 1;
        a.rows = &row;
        a.logits = logits;
    }
    a.ce = ce;
    ck_assert_msg(ct_model_forward(m, &a) == 0, "%s", ct_error_message());
}

/* f [T,H] of the stacked residuals x[m] ([T,d] each) by the folded encoder, in double */
static void encode_ref(const ct_crosscoder *cc, float *const *x, int T, float *f)
{
    int M = cc->cfg.M, d = cc->cfg.d, H = cc->cfg.H;
    for (int t = 0; t < T; t++)
        for (int j = 0; j < H; j++) {
            double s = cc->p.b_enc[j];
            for (int m = 0; m < M; m++)
                for (int i = 0; i < d; i++)
                    s += (double)x[m][t * d + i] * cc->p.W_enc[((size_t)m * d + i) * H + j];
            f[t * H + j] = s > 0 ? (float)s : 0.0f;
        }
}

/* fw [T,d] = f W_dec[:, m] in double (no b_dec) */
static void decode_ref(const ct_crosscoder *cc, int m, const float *f, int T, float *fw)
{
    int M = cc->cfg.M, d = cc->cfg.d, H = cc->cfg.H;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < d; i++) {
            double s = 0;
            for (int j = 0; j < H; j++)
                s += (double)f[t * H + j] * cc->p.W_dec[((size_t)j * M + m) * d + i];
            fw[t * d + i] = (float)s;
        }
}

static double metric_of(const float *logits, const ct_task_example *e)
{
    return (double)logits[e->bad] - (double)logits[e->good];
}

/* logp(good) − logp(bad): the normaliser cancels, so the logits give it */
static double log_softmax_diff(const float *logits, const ct_task_example *e)
{
    return (double)logits[e->good] - (double)logits[e->bad];
}

typedef struct {
    double *ie; /* [M*H] */
    double total[N_EX][2], error[N_EX][2], delta[N_EX][2], metric[N_EX][2];
} ig_ref;

static void reference_ig(world *w, int steps, double thr, ig_ref *out)
{
    ct_crosscoder *cc = w->cc;
    int M = 2, d = AX_D, H = cc->cfg.H;
    out->ie = calloc((size_t)M * H, sizeof(double));
    float *logits = malloc(AX_VOCAB * sizeof(float));
    for (int e = 0; e < N_EX; e++) {
        const ct_task_example *ex = &w->ex[e];
        int T = (int)ex->n_prefix;
        float *x[2], *f = malloc((size_t)T * H * sizeof(float));
        for (int m = 0; m < M; m++) {
            x[m] = malloc((size_t)T * d * sizeof(float));
            fwd1(w->models[m], ex->prefix, T, x[m], NULL, 0, logits, NULL);
            out->metric[e][m] = metric_of(logits, ex);
        }
        encode_ref(cc, x, T, f);
        float *fw = malloc((size_t)T * d * sizeof(float)), *res = malloc((size_t)T * d * sizeof(float));
        float *h = malloc((size_t)T * d * sizeof(float)), *dres = malloc((size_t)T * d * sizeof(float));
        double *g = malloc((size_t)T * H * sizeof(double));
        for (int m = 0; m < M; m++) {
            const float *bd = cc->p.b_dec + m * d;
            decode_ref(cc, m, f, T, fw);
            for (int k = 0; k < T * d; k++)
                res[k] = x[m][k] - (fw[k] + bd[k % d]);
            for (int k = 0; k < T * d; k++)
                h[k] = bd[k % d];
            fwd1(w->models[m], ex->prefix, T, NULL, h, 0, logits, NULL);
            out->delta[e][m] = metric_of(logits, ex) - out->metric[e][m];
            memset(g, 0, (size_t)T * H * sizeof(double));
            double err = 0;
            for (int s = 0; s < steps; s++) {
                float keep = 1.0f - (float)s / (float)steps;
                for (int k = 0; k < T * d; k++)
                    h[k] = keep * fw[k] + bd[k % d] + keep * res[k];
                fwd1(w->models[m], ex->prefix, T, NULL, h, 1, NULL, NULL);
                ck_assert_int_eq(ct_model_backward_logit_diff(w->models[m], &ex->bad, &ex->good, dres), 0);
                for (int t = 0; t < T; t++) {
                    for (int j = 0; j < H; j++) {
                        double s2 = 0;
                        for (int i = 0; i < d; i++)
                            s2 += (double)dres[t * d + i] * cc->p.W_dec[((size_t)j * M + m) * d + i];
                        g[t * H + j] += s2;
                    }
                    for (int i = 0; i < d; i++)
                        err += (double)dres[t * d + i] * -(double)res[t * d + i];
                }
            }
            double total = 0;
            for (int t = 0; t < T; t++)
                for (int j = 0; j < H; j++) {
                    double ie = g[t * H + j] / steps * (0.0 - f[t * H + j]);
                    total += ie;
                    if (fabs(ie) > thr)
                        out->ie[m * H + j] += ie / T / N_EX;
                }
            out->total[e][m] = total;
            out->error[e][m] = err / steps;
        }
        for (int m = 0; m < M; m++)
            free(x[m]);
        free(f), free(fw), free(res), free(h), free(dres), free(g);
    }
    free(logits);
}

static void expect_near(const char *what, int i, double got, double want, double tol)
{
    ck_assert_msg(fabs(got - want) <= tol, "%s[%d]: got %.9g, want %.9g (tolerance %g)", what, i, got, want, tol);
}

START_TEST(test_ig_completeness)
{
    world w;
    world_open(&w, H_RAND);
    ct_attr_result r = run_ig(&w, 300, 0.0f, 3);
    int nonzero = 0;
    for (int i = 0; i < N_EX * 2; i++) {
        double sum = r.example_total[i] + r.example_error[i], delta = r.example_delta[i];
        /* The left Riemann sum's error scales with the integrand, i.e. with the parts,
         * which may nearly cancel in delta. */
        double parts = fabs(r.example_total[i]) + fabs(r.example_error[i]);
        ck_assert_msg(fabs(sum - delta) <= 0.02 * fabs(delta) + 1e-3 * parts,
                      "example %d checkpoint %d: total %.6g + error %.6g = %.6g, delta %.6g", i / 2, i % 2,
                      r.example_total[i], r.example_error[i], sum, delta);
        nonzero += fabs(delta) > 0.1 && fabs(r.example_total[i]) > 0.05;
    }
    /* the check means something: the effects and the feature part are not negligible */
    ck_assert_int_ge(nonzero, N_EX);
    ct_attr_result_free(&r);
    world_close(&w);
}
END_TEST

START_TEST(test_ig_matches_reference)
{
    world w;
    world_open(&w, H_RAND);
    const float thr[2] = {0.0f, 0.02f};
    for (int c = 0; c < 2; c++) {
        ct_attr_result r = run_ig(&w, 10, thr[c], 3);
        ig_ref ref;
        reference_ig(&w, 10, thr[c], &ref);
        int H = H_RAND, differ = 0, zeroed = 0;
        for (int i = 0; i < 2 * H; i++) {
            expect_near("ie", i, r.ie[i], ref.ie[i], 1e-5 + 1e-4 * fabs(ref.ie[i]));
            differ += ref.ie[i] != 0.0;
        }
        ck_assert_int_gt(differ, H);
        for (int e = 0; e < N_EX; e++)
            for (int m = 0; m < 2; m++) {
                int i = e * 2 + m;
                expect_near("metric", i, r.example_metric[i], ref.metric[e][m], 1e-5);
                expect_near("delta", i, r.example_delta[i], ref.delta[e][m], 1e-5);
                expect_near("total", i, r.example_total[i], ref.total[e][m], 1e-5 + 1e-4 * fabs(ref.total[e][m]));
                expect_near("error", i, r.example_error[i], ref.error[e][m], 1e-5 + 1e-4 * fabs(ref.error[e][m]));
            }
        if (c == 1) {
            /* the threshold removed something, so its branch was exercised */
            ig_ref all;
            reference_ig(&w, 10, 0.0, &all);
            for (int i = 0; i < 2 * H; i++)
                zeroed += fabs(all.ie[i] - ref.ie[i]) > 1e-7;
            free(all.ie);
            ck_assert_int_gt(zeroed, 0);
        }
        free(ref.ie);
        ct_attr_result_free(&r);
    }
    world_close(&w);
}
END_TEST

/* Latent 3 never fires (zero encoder column, negative bias); latent 5 fires everywhere
 * but decodes to nothing. */
static void silence_latents(ct_crosscoder *cc)
{
    int M = cc->cfg.M, d = cc->cfg.d, H = cc->cfg.H;
    for (int i = 0; i < M * d; i++)
        cc->p.W_enc[(size_t)i * H + 3] = 0.0f;
    cc->p.b_enc[3] = -1.0f;
    for (int i = 0; i < M * d; i++)
        cc->p.W_enc[(size_t)i * H + 5] = 0.0f;
    cc->p.b_enc[5] = 2.0f;
    memset(cc->p.W_dec + (size_t)5 * M * d, 0, (size_t)M * d * sizeof(float));
}

START_TEST(test_silent_latents)
{
    world w;
    world_open(&w, H_RAND);
    silence_latents(w.cc);
    ct_attr_result r = run_ig(&w, 10, 0.0f, 3);
    for (int m = 0; m < 2; m++) {
        ck_assert_msg(r.ie[m * H_RAND + 3] == 0.0f, "IE of a latent that never fires: %g", r.ie[m * H_RAND + 3]);
        ck_assert_msg(r.ie[m * H_RAND + 5] == 0.0f, "IE of a latent with no decoder: %g", r.ie[m * H_RAND + 5]);
    }
    ct_attr_result_free(&r);

    int32_t lat[3] = {3, 5, 7};
    ct_attr_options o = CT_ATTR_OPTIONS_INIT;
    o.batch = 3;
    ct_ablation_result a;
    ck_assert_msg(ct_attr_ablate(w.models, 2, w.cc, AX_LAYER, w.ex, N_EX, lat, 3, &o, &a) == 0, "%s",
                  ct_error_message());
    ck_assert_uint_eq(a.n_latents, 3);
    for (int m = 0; m < 2; m++) {
        for (int i = 0; i < 2; i++) {
            ck_assert(memcmp(&a.ablated_lpd[i * 2 + m], &a.clean_lpd[m], sizeof(double)) == 0);
            ck_assert(memcmp(&a.ablated_acc[i * 2 + m], &a.clean_acc[m], sizeof(double)) == 0);
        }
        ck_assert_msg(a.ablated_lpd[2 * 2 + m] != a.clean_lpd[m], "ablating a firing latent changed nothing");
        ck_assert(a.clean_acc[m] >= 0 && a.clean_acc[m] <= 1);
    }
    ct_ablation_result_free(&a);
    world_close(&w);
}
END_TEST

/* Ablation against the same computation written out one example at a time. */
START_TEST(test_ablation_matches_reference)
{
    world w;
    world_open(&w, H_RAND);
    int H = H_RAND, d = AX_D;
    int32_t lat[4] = {0, 9, 20, 47};
    ct_attr_options o = CT_ATTR_OPTIONS_INIT;
    o.batch = 4;
    ct_ablation_result a;
    ck_assert_msg(ct_attr_ablate(w.models, 2, w.cc, AX_LAYER, w.ex, N_EX, lat, 4, &o, &a) == 0, "%s",
                  ct_error_message());
    double clean[2] = {0}, clean_acc[2] = {0}, abl[4][2] = {{0}}, abl_acc[4][2] = {{0}};
    float *lp = malloc(AX_VOCAB * sizeof(float));
    for (int e = 0; e < N_EX; e++) {
        const ct_task_example *ex = &w.ex[e];
        int T = (int)ex->n_prefix;
        float *x[2], *f = malloc((size_t)T * H * sizeof(float)), *p = malloc((size_t)T * d * sizeof(float));
        for (int m = 0; m < 2; m++) {
            x[m] = malloc((size_t)T * d * sizeof(float));
            fwd1(w.models[m], ex->prefix, T, x[m], NULL, 0, lp, NULL);
            double v = log_softmax_diff(lp, ex);
            clean[m] += v / N_EX;
            clean_acc[m] += (v > 0) / (double)N_EX;
        }
        encode_ref(w.cc, x, T, f);
        for (int i = 0; i < 4; i++)
            for (int m = 0; m < 2; m++) {
                const float *wd = w.cc->p.W_dec + ((size_t)lat[i] * 2 + m) * d;
                for (int t = 0; t < T; t++)
                    for (int k = 0; k < d; k++)
                        p[t * d + k] = x[m][t * d + k] - f[t * H + lat[i]] * wd[k];
                fwd1(w.models[m], ex->prefix, T, NULL, p, 0, lp, NULL);
                double v = log_softmax_diff(lp, ex);
                abl[i][m] += v / N_EX;
                abl_acc[i][m] += (v > 0) / (double)N_EX;
            }
        free(x[0]), free(x[1]), free(f), free(p);
    }
    int changed = 0;
    for (int m = 0; m < 2; m++) {
        expect_near("clean_lpd", m, a.clean_lpd[m], clean[m], 1e-5);
        expect_near("clean_acc", m, a.clean_acc[m], clean_acc[m], 1e-9);
        for (int i = 0; i < 4; i++) {
            expect_near("ablated_lpd", i * 2 + m, a.ablated_lpd[i * 2 + m], abl[i][m], 1e-5);
            expect_near("ablated_acc", i * 2 + m, a.ablated_acc[i * 2 + m], abl_acc[i][m], 1e-9);
            changed += fabs(abl[i][m] - clean[m]) > 1e-3;
        }
    }
    ck_assert_int_ge(changed, 4);
    free(lp);
    ct_ablation_result_free(&a);
    world_close(&w);
}
END_TEST

START_TEST(test_batch_independence)
{
    world w;
    world_open(&w, H_RAND);
    ct_attr_result r1 = run_ig(&w, 10, 0.02f, 1), r3 = run_ig(&w, 10, 0.02f, 3);
    ct_attr_result r7 = run_ig(&w, 10, 0.02f, 7), again = run_ig(&w, 10, 0.02f, 3);
    for (int i = 0; i < 2 * H_RAND; i++) {
        expect_near("ie(batch 3 vs 1)", i, r3.ie[i], r1.ie[i], 1e-6);
        expect_near("ie(batch 7 vs 1)", i, r7.ie[i], r1.ie[i], 1e-6);
    }
    /* Per-example sums run over every latent and position, large terms of both signs:
     * the model's own float rounding for another padded length shows more there. */
    for (int i = 0; i < 2 * N_EX; i++) {
        expect_near("total", i, r3.example_total[i], r1.example_total[i], 1e-5 * fmax(1, fabs(r1.example_total[i])));
        expect_near("error", i, r3.example_error[i], r1.example_error[i], 1e-5 * fmax(1, fabs(r1.example_error[i])));
        expect_near("delta", i, r3.example_delta[i], r1.example_delta[i], 1e-5 * fmax(1, fabs(r1.example_delta[i])));
    }
    /* same inputs, same batch: bit-identical */
    ck_assert(memcmp(r3.ie, again.ie, 2 * H_RAND * sizeof(float)) == 0);
    ck_assert(memcmp(r3.example_total, again.example_total, 2 * N_EX * sizeof(double)) == 0);
    ct_attr_result_free(&r1), ct_attr_result_free(&r3), ct_attr_result_free(&r7), ct_attr_result_free(&again);

    int32_t lat[2] = {1, 30};
    ct_ablation_result a1, a3;
    ct_attr_options o = CT_ATTR_OPTIONS_INIT;
    o.batch = 1;
    ck_assert_int_eq(ct_attr_ablate(w.models, 2, w.cc, AX_LAYER, w.ex, N_EX, lat, 2, &o, &a1), 0);
    o.batch = 3;
    ck_assert_int_eq(ct_attr_ablate(w.models, 2, w.cc, AX_LAYER, w.ex, N_EX, lat, 2, &o, &a3), 0);
    for (int i = 0; i < 4; i++) {
        expect_near("ablated_lpd", i, a3.ablated_lpd[i], a1.ablated_lpd[i], 1e-6);
        expect_near("ablated_acc", i, a3.ablated_acc[i], a1.ablated_acc[i], 0);
    }
    ct_ablation_result_free(&a1), ct_ablation_result_free(&a3);
    world_close(&w);
}
END_TEST

/* ---- ΔCE ---- */

#define CE_SEQ 5
#define CE_T 10

/* Sequences model A continues greedily from a random first token, so the clean CE is
 * low and a poor reconstruction can only raise it. */
static void greedy_sequences(ct_model *m, int32_t *ids)
{
    float *logits = malloc(AX_VOCAB * sizeof(float));
    for (int s = 0; s < CE_SEQ; s++) {
        int32_t *row = ids + s * CE_T;
        row[0] = (int32_t)(7 * s + 3) % AX_VOCAB;
        for (int t = 1; t < CE_T; t++) {
            fwd1(m, row, t, NULL, NULL, 0, logits, NULL);
            int best = 0;
            for (int v = 1; v < AX_VOCAB; v++)
                best = logits[v] > logits[best] ? v : best;
            row[t] = best;
        }
    }
    free(logits);
}

/* An exact crosscoder: latents [m*2d, m*2d + d) carry relu(x_m), the next d carry
 * relu(−x_m), and decode back to x_m. */
static ct_crosscoder *identity_cc(void)
{
    int M = 2, d = AX_D, H = 2 * M * d;
    ct_crosscoder *cc = ax_cc_empty(M, H);
    for (int m = 0; m < M; m++)
        for (int i = 0; i < d; i++) {
            int jp = m * 2 * d + i, jn = jp + d;
            cc->p.W_enc[((size_t)m * d + i) * H + jp] = 1.0f;
            cc->p.W_enc[((size_t)m * d + i) * H + jn] = -1.0f;
            cc->p.W_dec[((size_t)jp * M + m) * d + i] = 1.0f;
            cc->p.W_dec[((size_t)jn * M + m) * d + i] = -1.0f;
        }
    ck_assert_int_eq(ct_cc_fold(cc), 0);
    return cc;
}

START_TEST(test_delta_ce)
{
    world w;
    world_open(&w, H_RAND);
    int32_t ids[CE_SEQ * CE_T];
    greedy_sequences(w.models[0], ids);
    ct_attr_options o = CT_ATTR_OPTIONS_INIT;
    o.batch = 2;
    double clean[2], spliced[2];
    ct_crosscoder *id = identity_cc();
    ck_assert_msg(ct_attr_delta_ce(w.models, 2, id, AX_LAYER, ids, CE_SEQ, CE_T, &o, clean, spliced) == 0, "%s",
                  ct_error_message());
    for (int m = 0; m < 2; m++)
        ck_assert_msg(fabs(spliced[m] - clean[m]) < 1e-4, "identity ΔCE[%d] = %g", m, spliced[m] - clean[m]);
    ct_cc_free(id);

    ck_assert_int_eq(ct_attr_delta_ce(w.models, 2, w.cc, AX_LAYER, ids, CE_SEQ, CE_T, &o, clean, spliced), 0);
    /* the same numbers written out: per sequence, encode, decode, splice, mean CE */
    double ref_clean[2] = {0}, ref_spliced[2] = {0};
    float ce[CE_T], *x[2], *f = malloc((size_t)CE_T * H_RAND * sizeof(float));
    float *p = malloc((size_t)CE_T * AX_D * sizeof(float));
    x[0] = malloc((size_t)CE_T * AX_D * sizeof(float));
    x[1] = malloc((size_t)CE_T * AX_D * sizeof(float));
    for (int s = 0; s < CE_SEQ; s++) {
        for (int m = 0; m < 2; m++) {
            fwd1(w.models[m], ids + s * CE_T, CE_T, x[m], NULL, 0, NULL, ce);
            for (int t = 0; t < CE_T - 1; t++)
                ref_clean[m] += ce[t] / (CE_SEQ * (CE_T - 1.0));
        }
        encode_ref(w.cc, x, CE_T, f);
        for (int m = 0; m < 2; m++) {
            decode_ref(w.cc, m, f, CE_T, p);
            for (int k = 0; k < CE_T * AX_D; k++)
                p[k] += w.cc->p.b_dec[m * AX_D + k % AX_D];
            fwd1(w.models[m], ids + s * CE_T, CE_T, NULL, p, 0, NULL, ce);
            for (int t = 0; t < CE_T - 1; t++)
                ref_spliced[m] += ce[t] / (CE_SEQ * (CE_T - 1.0));
        }
    }
    for (int m = 0; m < 2; m++) {
        expect_near("ce_clean", m, clean[m], ref_clean[m], 1e-5);
        expect_near("ce_spliced", m, spliced[m], ref_spliced[m], 1e-4);
        ck_assert_msg(spliced[m] - clean[m] > 0.01, "random crosscoder: ΔCE[%d] = %g", m, spliced[m] - clean[m]);
    }
    double c1[2], s1[2];
    o.batch = 1;
    ck_assert_int_eq(ct_attr_delta_ce(w.models, 2, w.cc, AX_LAYER, ids, CE_SEQ, CE_T, &o, c1, s1), 0);
    for (int m = 0; m < 2; m++) {
        expect_near("ce_clean(batch 1)", m, c1[m], clean[m], 1e-6);
        expect_near("ce_spliced(batch 1)", m, s1[m], spliced[m], 1e-6);
    }
    free(x[0]), free(x[1]), free(f), free(p);
    world_close(&w);
}
END_TEST

START_TEST(test_bad_input)
{
    world w;
    world_open(&w, H_RAND);
    ct_attr_result r;
    ct_attr_options o = CT_ATTR_OPTIONS_INIT;
    ck_assert_int_eq(ct_attr_ig(w.models, 2, w.cc, AX_LAYERS, w.ex, N_EX, &o, &r), CT_EINVAL);
    ck_assert_int_eq(ct_attr_ig(w.models, 1, w.cc, AX_LAYER, w.ex, N_EX, &o, &r), CT_EINVAL);
    o.steps = 0;
    ck_assert_int_eq(ct_attr_ig(w.models, 2, w.cc, AX_LAYER, w.ex, N_EX, &o, &r), CT_EINVAL);
    o.steps = 10;
    w.ids[0] = AX_VOCAB;
    ck_assert_int_eq(ct_attr_ig(w.models, 2, w.cc, AX_LAYER, w.ex, N_EX, &o, &r), CT_EINVAL);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "example 0"));
    w.ids[0] = 0;
    int32_t bad_latent = H_RAND;
    ct_ablation_result a;
    ck_assert_int_eq(ct_attr_ablate(w.models, 2, w.cc, AX_LAYER, w.ex, N_EX, &bad_latent, 1, &o, &a), CT_EINVAL);
    ct_crosscoder *raw = ax_cc_empty(2, 8);
    ck_assert_int_eq(ct_attr_ig(w.models, 2, raw, AX_LAYER, w.ex, N_EX, &o, &r), CT_EINVAL);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "not folded"));
    double c[2], s[2];
    int32_t ids[4] = {1, 2, 3, 4};
    ck_assert_int_eq(ct_attr_delta_ce(w.models, 2, raw, AX_LAYER, ids, 2, 2, &o, c, s), CT_EINVAL);
    ck_assert_int_eq(ct_attr_delta_ce(w.models, 2, w.cc, AX_LAYER, ids, 4, 1, &o, c, s), CT_EINVAL);
    ct_cc_free(raw);
    /* no examples: nothing to average, zero IE and NaN ablation means */
    ck_assert_int_eq(ct_attr_ig(w.models, 2, w.cc, AX_LAYER, w.ex, 0, &o, &r), 0);
    ck_assert(r.ie[0] == 0.0f);
    ct_attr_result_free(&r);
    ck_assert_int_eq(ct_attr_ablate(w.models, 2, w.cc, AX_LAYER, w.ex, 0, &bad_latent, 0, &o, &a), 0);
    ck_assert(isnan(a.clean_lpd[0]));
    ct_ablation_result_free(&a);
    world_close(&w);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("attribution");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_ig_completeness);
    tcase_add_test(tc, test_ig_matches_reference);
    tcase_add_test(tc, test_silent_latents);
    tcase_add_test(tc, test_ablation_matches_reference);
    tcase_add_test(tc, test_batch_independence);
    tcase_add_test(tc, test_delta_ce);
    tcase_add_test(tc, test_bad_input);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ct_test_run(suite());
}

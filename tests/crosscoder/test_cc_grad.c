/* Crosscoder losses and gradients: hand-computed values, finite differences against an
 * independent double-precision implementation, schedules, and the optimiser step by
 * step against a straightforward reference (clipping, Adam, λ warm-up, lr decay). */
#include "common/error.h"
#include "crosscoder/crosscoder.h"
#include "crosscoder/loss.h"
#include "crosscoder/rng.h"
#include "crosscoder/train.h"
#include "tests/crosscoder/ref.h"
#include "tests/support/testutil.h"

#include <math.h>

static ct_crosscoder *make_cc(int type, int M, int d, int H)
{
    ct_cc_config c = CT_CC_CONFIG_INIT;
    c.type = type;
    c.M = M;
    c.d = d;
    c.H = H;
    c.batch = 8;
    c.steps = 10;
    ct_crosscoder *cc;
    ck_assert_int_eq(ct_cc_create(&c, &cc), 0);
    return cc;
}

static void close_rel(double got, double want, double tol, const char *what)
{
    double err = fabs(got - want) / fmax(1.0, fabs(want));
    ck_assert_msg(err <= tol, "%s: got %.9g want %.9g", what, got, want);
}

START_TEST(hand_values_l1)
{
    ct_crosscoder *cc = make_cc(CT_CC_L1, 2, 1, 1);
    /* W_enc[D=2,H=1] = [1;2], b_enc = 0.5, W_dec[1,2] = [3,4], b_dec = [0.1,-0.2]. */
    cc->p.W_enc[0] = 1;
    cc->p.W_enc[1] = 2;
    cc->p.b_enc[0] = 0.5f;
    cc->p.W_dec[0] = 3;
    cc->p.W_dec[1] = 4;
    cc->p.b_dec[0] = 0.1f;
    cc->p.b_dec[1] = -0.2f;
    float X[4] = {1, 1, -10, 0};
    ct_cc_workspace *ws;
    ck_assert_int_eq(ct_cc_workspace_create(&cc->cfg, 2, &ws), 0);
    for (int path = CT_CC_PATH_DENSE; path <= CT_CC_PATH_SPARSE; path++) {
        ct_cc_lossopt o = CT_CC_LOSSOPT_INIT;
        o.lambda = 2.0f;
        o.path = path;
        double ev[2];
        ct_cc_losses l = {.ev = ev};
        ck_assert_int_eq(ct_cc_forward_backward(cc, X, 2, &o, ws, &l, NULL), 0);
        /* row 0: pre 3.5, x̂ = (10.6, 13.8), err² 92.16 + 163.84 = 256;
         * row 1: pre −9.5 → f 0, x̂ = b_dec, err² 10.1² + 0.2² = 102.05. */
        close_rel(l.l2, (256.0 + 102.05) / 2, 1e-5, "L2");
        close_rel(l.l1, 3.5 * 7 / 2, 1e-6, "L1");
        close_rel(l.loss, (256.0 + 102.05) / 2 + 2 * 3.5 * 7 / 2, 1e-5, "loss");
        close_rel(l.l0, 0.5, 0, "L0");
        /* EV: mean_batch x_0 = −4.5, x_1 = 0.5. */
        close_rel(ev[0], ((1 - 92.16 / 30.25) + (1 - 102.01 / 30.25)) / 2, 1e-5, "EV A");
        close_rel(ev[1], ((1 - 163.84 / 0.25) + (1 - 0.04 / 0.25)) / 2, 1e-5, "EV B");
    }
    ct_cc_workspace_free(ws);
    ct_cc_free(cc);
}
END_TEST

START_TEST(hand_values_batchtopk_auxk)
{
    ct_crosscoder *cc = make_cc(CT_CC_BATCHTOPK, 2, 1, 3);
    /* latent 0 reads x_0, latent 1 reads x_1, latent 2 reads 0.1(x_0 + x_1). */
    float We[6] = {1, 0, 0.1f, 0, 1, 0.1f};
    float Wd[6] = {1, 0, 0, 2, 0.5f, 0.5f};
    memcpy(cc->p.W_enc, We, sizeof We);
    memcpy(cc->p.W_dec, Wd, sizeof Wd);
    cc->cfg.k_aux = 1;
    cc->cfg.dead_tokens = 100;
    float X[4] = {3, 1, 0.5f, 2};
    uint64_t since[3] = {0, 0, 98}; /* 98 + B(2) >= 100: latent 2 dead if it does not fire */
    ct_cc_workspace *ws;
    ck_assert_int_eq(ct_cc_workspace_create(&cc->cfg, 2, &ws), 0);
    float *grad = calloc(cc->n_params, sizeof(float));
    for (int path = CT_CC_PATH_DENSE; path <= CT_CC_PATH_SPARSE; path++) {
        ct_cc_lossopt o = CT_CC_LOSSOPT_INIT;
        o.k = 1;
        o.path = path;
        o.since_fired = since;
        uint8_t fired[3];
        ct_cc_losses l = {.fired = fired};
        ck_assert_int_eq(ct_cc_forward_backward(cc, X, 2, &o, ws, &l, grad), 0);
        /* scores: row0 (3, 2, 0.4), row1 (0.5, 4, 0.25); top 2: 4 and 3. */
        const float *f = ct_cc_workspace_f(ws);
        ck_assert(f[0] == 3 && f[1] == 0 && f[2] == 0 && f[3] == 0 && f[4] == 2 && f[5] == 0);
        ck_assert(fired[0] && fired[1] && !fired[2]);
        ck_assert_int_eq(l.n_dead, 1);
        ck_assert(l.min_kept == 3.0f);
        close_rel(l.l2, 2.625, 1e-6, "L2");
        close_rel(l.l1, 3.5, 1e-6, "L1");
        close_rel(l.aux, 2.668125 / 2.3125, 1e-5, "AuxK");
        close_rel(l.loss, 2.625 + 2.668125 / 2.3125 / 32, 1e-5, "loss");
        /* The dead latent gets gradient only through AuxK. */
        ck_assert(grad[2] != 0.0f && grad[5] != 0.0f);
    }
    /* Not dead yet (since 97 + 2 < 100): no AuxK, and latent 2 gets no gradient. */
    since[2] = 97;
    ct_cc_lossopt o = CT_CC_LOSSOPT_INIT;
    o.k = 1;
    o.since_fired = since;
    ct_cc_losses l = {0};
    ck_assert_int_eq(ct_cc_forward_backward(cc, X, 2, &o, ws, &l, grad), 0);
    ck_assert_int_eq(l.n_dead, 0);
    ck_assert(l.aux == 0.0);
    ck_assert(grad[2] == 0.0f && grad[5] == 0.0f);
    free(grad);
    ct_cc_workspace_free(ws);
    ct_cc_free(cc);
}
END_TEST

/* Random parameters and rows with every pre-activation away from the ReLU kink. */
static void random_problem(ct_crosscoder *cc, float *X, int B, uint64_t seed)
{
    ct_cc_rng r;
    ct_cc_rng_seed(&r, seed);
    int D = cc->cfg.M * cc->cfg.d, H = cc->cfg.H;
    for (;;) {
        for (size_t i = 0; i < cc->n_params; i++) {
            double a, b;
            ct_cc_rng_normal2(&r, &a, &b);
            cc->mem[i] = (float)(0.5 * a);
        }
        for (int i = 0; i < B * D; i++) {
            double a, b;
            ct_cc_rng_normal2(&r, &a, &b);
            X[i] = (float)a;
        }
        double minabs = 1e9;
        for (int b = 0; b < B; b++)
            for (int j = 0; j < H; j++) {
                double p = cc->p.b_enc[j];
                for (int i = 0; i < D; i++)
                    p += (double)X[b * D + i] * cc->p.W_enc[(size_t)i * H + j];
                minabs = fmin(minabs, fabs(p));
            }
        if (minabs > 1e-3)
            return;
    }
}

/* Checks grad (float, from the library) against central differences of the double
 * reference loss at the same parameters. */
static void check_fd(const ref_cfg *rc, const ct_crosscoder *cc, const float *Xf, int B,
                     const float *grad, const double *e_fix, double den_fix, const char *what)
{
    size_t n = cc->n_params;
    int D = cc->cfg.M * cc->cfg.d;
    double *P = malloc(n * sizeof *P), *X = malloc((size_t)B * D * sizeof *X);
    for (size_t i = 0; i < n; i++)
        P[i] = cc->mem[i];
    for (int i = 0; i < B * D; i++)
        X[i] = Xf[i];
    double *fd = malloc(n * sizeof *fd), gmax = 0;
    for (size_t i = 0; i < n; i++) {
        double h = 1e-6, keep = P[i];
        ref_out a, b;
        P[i] = keep + h;
        ref_forward(rc, P, X, B, e_fix, den_fix, &a, NULL, NULL);
        P[i] = keep - h;
        ref_forward(rc, P, X, B, e_fix, den_fix, &b, NULL, NULL);
        P[i] = keep;
        fd[i] = (a.loss - b.loss) / (2 * h);
        gmax = fmax(gmax, fabs(fd[i]));
    }
    ck_assert(gmax > 0);
    int nonzero = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(fabs(grad[i] - fd[i]) <= 1e-4 * gmax + 1e-3 * fabs(fd[i]),
                      "%s: param %zu analytic %.8g finite-difference %.8g (max %.3g)", what, i, grad[i], fd[i], gmax);
        nonzero += fd[i] != 0;
    }
    ck_assert_int_gt(nonzero, (int)(n / 4));
    free(P);
    free(X);
    free(fd);
}

START_TEST(gradient_l1_matches_finite_differences)
{
    int M = 3, d = 4, H = 6, B = 5; /* M = 3 on purpose: nothing assumes two checkpoints */
    ct_crosscoder *cc = make_cc(CT_CC_L1, M, d, H);
    float *X = malloc(sizeof(float) * B * M * d);
    random_problem(cc, X, B, 11);
    ct_cc_workspace *ws;
    ck_assert_int_eq(ct_cc_workspace_create(&cc->cfg, B, &ws), 0);
    float *g = malloc(cc->n_params * sizeof(float));
    ref_cfg rc = {.M = M, .d = d, .H = H, .lambda = 0.7};
    double *P = malloc(cc->n_params * sizeof *P), *Xd = malloc(sizeof *Xd * B * M * d);
    for (size_t i = 0; i < cc->n_params; i++)
        P[i] = cc->mem[i];
    for (int i = 0; i < B * M * d; i++)
        Xd[i] = X[i];
    ref_out ro;
    ref_forward(&rc, P, Xd, B, NULL, 0, &ro, NULL, NULL);
    for (int path = CT_CC_PATH_DENSE; path <= CT_CC_PATH_SPARSE; path++) {
        ct_cc_lossopt o = CT_CC_LOSSOPT_INIT;
        o.lambda = 0.7f;
        o.path = path;
        double ev[3];
        ct_cc_losses l = {.ev = ev};
        ck_assert_int_eq(ct_cc_forward_backward(cc, X, B, &o, ws, &l, g), 0);
        ck_assert_int_eq(l.sparse, path == CT_CC_PATH_SPARSE);
        close_rel(l.loss, ro.loss, 1e-5, "loss vs reference");
        close_rel(l.l2, ro.l2, 1e-5, "L2 vs reference");
        close_rel(l.l1, ro.l1, 1e-5, "L1 vs reference");
        close_rel(l.l0, ro.l0, 1e-12, "L0 vs reference");
        for (int m = 0; m < M; m++)
            close_rel(ev[m], ro.ev[m], 1e-5, "EV vs reference");
        check_fd(&rc, cc, X, B, g, NULL, 0, path == CT_CC_PATH_DENSE ? "L1 dense" : "L1 sparse");
    }
    /* λ = 0 leaves the pure reconstruction gradient. */
    ct_cc_lossopt o = CT_CC_LOSSOPT_INIT;
    ct_cc_losses l = {0};
    ck_assert_int_eq(ct_cc_forward_backward(cc, X, B, &o, ws, &l, g), 0);
    rc.lambda = 0;
    check_fd(&rc, cc, X, B, g, NULL, 0, "L2 only");
    free(P);
    free(Xd);
    free(g);
    free(X);
    ct_cc_workspace_free(ws);
    ct_cc_free(cc);
}
END_TEST

START_TEST(gradient_batchtopk_auxk_matches_finite_differences)
{
    int M = 2, d = 4, H = 8, B = 6;
    ct_crosscoder *cc = make_cc(CT_CC_BATCHTOPK, M, d, H);
    cc->cfg.k_aux = 2;
    cc->cfg.dead_tokens = 1000;
    cc->cfg.aux_coeff = 0.5f; /* large so the AuxK part of the gradient is visible */
    float *X = malloc(sizeof(float) * B * M * d);
    random_problem(cc, X, B, 5);
    ct_cc_workspace *ws;
    ck_assert_int_eq(ct_cc_workspace_create(&cc->cfg, B, &ws), 0);
    float *g = malloc(cc->n_params * sizeof(float));
    uint64_t since[8];
    for (int j = 0; j < H; j++)
        since[j] = 999; /* every latent that does not fire in this batch is dead */
    for (int path = CT_CC_PATH_DENSE; path <= CT_CC_PATH_SPARSE; path++) {
        ct_cc_lossopt o = CT_CC_LOSSOPT_INIT;
        o.k = 1;
        o.path = path;
        o.since_fired = since;
        uint8_t fired[8];
        ct_cc_losses l = {.fired = fired};
        ck_assert_int_eq(ct_cc_forward_backward(cc, X, B, &o, ws, &l, g), 0);
        uint8_t dead[8];
        int nd = 0;
        for (int j = 0; j < H; j++)
            nd += dead[j] = !fired[j] && since[j] + B >= 1000;
        ck_assert_int_eq(l.n_dead, nd);
        ck_assert_int_gt(nd, 0);
        ref_cfg rc = {.M = M, .d = d, .H = H, .topk = 1, .k = 1, .aux_coeff = 0.5, .k_aux = 2, .dead = dead};
        double *P = malloc(cc->n_params * sizeof *P), *Xd = malloc(sizeof *Xd * B * M * d);
        double *e = malloc(sizeof *e * B * M * d);
        for (size_t i = 0; i < cc->n_params; i++)
            P[i] = cc->mem[i];
        for (int i = 0; i < B * M * d; i++)
            Xd[i] = X[i];
        double den = ref_residual(&rc, P, Xd, B, e);
        ref_out ro;
        ref_forward(&rc, P, Xd, B, e, den, &ro, NULL, NULL);
        ck_assert(ro.aux > 0);
        close_rel(l.l2, ro.l2, 1e-5, "TopK L2 vs reference");
        close_rel(l.aux, ro.aux, 1e-5, "AuxK vs reference");
        close_rel(l.loss, ro.loss, 1e-5, "TopK loss vs reference");
        close_rel(l.l0, 1.0, 0, "TopK L0 = k");
        check_fd(&rc, cc, X, B, g, e, den, path == CT_CC_PATH_DENSE ? "TopK dense" : "TopK sparse");
        free(P);
        free(Xd);
        free(e);
    }
    free(g);
    free(X);
    ct_cc_workspace_free(ws);
    ct_cc_free(cc);
}
END_TEST

/* The reference's schedules, transcribed independently. */
static double ref_lr_factor(long step, long T, double start)
{
    if (step < start * T)
        return 1.0;
    return 1.0 - (step - start * T) / ((1 - start) * T);
}

static double ref_l1(long step, long T, double coeff, double warm)
{
    if (step < warm * T)
        return coeff * step / (warm * T);
    return coeff;
}

START_TEST(schedules_match_reference)
{
    ct_cc_config c = CT_CC_CONFIG_INIT;
    ck_assert_int_eq(ct_cc_config_resolve(&c), 0);
    ck_assert(fabsf(c.dec_init_norm - 0.08f) < 1e-9f);
    for (long t = 0; t < c.steps; t += 7) {
        close_rel(ct_cc_lr_at(&c, t), c.lr * ref_lr_factor(t, c.steps, 0.8), 1e-9, "lr");
        close_rel(ct_cc_lambda_at(&c, t), ref_l1(t, c.steps, 2.0, 0.05), 1e-6, "lambda");
    }
    c.steps = 100;
    close_rel(ct_cc_lambda_at(&c, 0), 0, 0, "lambda(0)");
    close_rel(ct_cc_lambda_at(&c, 2), 0.8, 1e-6, "lambda(2)");
    close_rel(ct_cc_lambda_at(&c, 5), 2, 0, "lambda(5)");
    close_rel(ct_cc_lr_at(&c, 79), 5e-5, 1e-7, "lr(79)");
    close_rel(ct_cc_lr_at(&c, 90) / 5e-5, 0.5, 1e-6, "lr(90)");
    close_rel(ct_cc_lr_at(&c, 99) / 5e-5, 0.05, 1e-6, "lr(99)");
    /* k: 1000 → 200 over 5000 steps, rounded, then 200. */
    ct_cc_config k = CT_CC_CONFIG_INIT;
    k.type = CT_CC_BATCHTOPK;
    ck_assert_int_eq(ct_cc_config_resolve(&k), 0);
    ck_assert(k.dec_init_norm == 1.0f);
    ck_assert_int_eq(k.k_aux, 1024);
    ck_assert_int_eq(ct_cc_k_at(&k, 0), 1000);
    ck_assert_int_eq(ct_cc_k_at(&k, 2500), 600);
    ck_assert_int_eq(ct_cc_k_at(&k, 1), 1000);  /* 999.84 rounds to 1000 */
    ck_assert_int_eq(ct_cc_k_at(&k, 4), 999);   /* 999.36 */
    ck_assert_int_eq(ct_cc_k_at(&k, 4999), 200);
    ck_assert_int_eq(ct_cc_k_at(&k, 5000), 200);
    ck_assert_int_eq(ct_cc_k_at(&k, 90000), 200);
    for (long t = 0; t < 5000; t += 13)
        ck_assert_int_eq(ct_cc_k_at(&k, t), (int)nearbyint(1000 - 800.0 * t / 5000));
    ct_cc_config h = k; /* halves round to even as in Python: 6.5 -> 6, 3.5 -> 4 */
    h.k_start = 8;
    h.k_end = 2;
    h.k_anneal_steps = 4;
    ck_assert_int_eq(ct_cc_k_at(&h, 1), 6);
    ck_assert_int_eq(ct_cc_k_at(&h, 2), 5);
    ck_assert_int_eq(ct_cc_k_at(&h, 3), 4);
    ck_assert_int_eq(ct_cc_k_at(&h, 4), 2);
    /* tokens override steps */
    k.tokens = 400000000LL;
    ck_assert_int_eq(ct_cc_config_resolve(&k), 0);
    ck_assert_int_eq(k.steps, 97656);
    ct_cc_config bad = CT_CC_CONFIG_INIT;
    bad.M = 1;
    ck_assert_int_eq(ct_cc_config_resolve(&bad), CT_EINVAL);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "M >= 2"));
}
END_TEST

/* The trainer's updates, step by step, against clip + Adam written out in double with
 * the library's gradient at the same parameters and the reference schedules. */
START_TEST(optimizer_steps_match_reference)
{
    int M = 2, d = 3, H = 5, B = 4, N = 32;
    ct_cc_config c = CT_CC_CONFIG_INIT;
    c.M = M;
    c.d = d;
    c.H = H;
    c.batch = B;
    c.steps = 12;
    c.lr = 1e-2f;
    c.l1_warmup = 0.25;     /* λ rises over 3 steps */
    c.lr_decay_start = 0.5; /* lr decays over the last 6 */
    c.grad_clip = 0.5f;      /* small: clipping is active at some steps */
    c.checkpoint_every = 0;
    c.log_every = 0;
    c.path = CT_CC_PATH_DENSE;
    float *rows = malloc(sizeof(float) * N * M * d);
    ct_cc_rng r;
    ct_cc_rng_seed(&r, 3);
    for (int i = 0; i < N * M * d; i++) {
        double a, b;
        ct_cc_rng_normal2(&r, &a, &b);
        rows[i] = (float)(2 * a);
    }
    ct_cc_source s1, s2;
    ck_assert_int_eq(ct_cc_memsource_open(rows, N, M, d, NULL, 9, 1, &s1), 0);
    ck_assert_int_eq(ct_cc_memsource_open(rows, N, M, d, NULL, 9, 1, &s2), 0);
    ct_cc_trainer *t;
    ck_assert_int_eq(ct_cc_trainer_create(&c, &s1, NULL, NULL, &t), 0);
    ct_crosscoder *cc = ct_cc_trainer_model(t);
    size_t n = cc->n_params;
    double *m1 = calloc(n, sizeof *m1), *v1 = calloc(n, sizeof *v1), *ref = malloc(n * sizeof *ref);
    float *g = malloc(n * sizeof *g), *X = malloc(sizeof(float) * B * M * d);
    ct_cc_workspace *ws;
    ck_assert_int_eq(ct_cc_workspace_create(&cc->cfg, B, &ws), 0);
    int clipped = 0;
    for (long step = 0; step < c.steps; step++) {
        ck_assert_int_eq(s2.next(s2.ctx, X, (size_t)B), 0);
        ct_cc_lossopt o = CT_CC_LOSSOPT_INIT;
        o.lambda = (float)ref_l1(step, c.steps, 2.0, 0.25);
        o.path = CT_CC_PATH_DENSE;
        ct_cc_losses l = {0};
        ck_assert_int_eq(ct_cc_forward_backward(cc, X, B, &o, ws, &l, g), 0);
        double norm = 0;
        for (size_t i = 0; i < n; i++)
            norm += (double)g[i] * g[i];
        norm = sqrt(norm);
        double coef = 0.5 / (norm + 1e-6);
        if (coef > 1)
            coef = 1;
        else
            clipped++;
        double lr = 1e-2 * ref_lr_factor(step, c.steps, 0.5);
        long tt = step + 1;
        for (size_t i = 0; i < n; i++) {
            double gi = g[i] * coef;
            m1[i] = 0.9 * m1[i] + 0.1 * gi;
            v1[i] = 0.999 * v1[i] + 0.001 * gi * gi;
            double mh = m1[i] / (1 - pow(0.9, tt)), vh = v1[i] / (1 - pow(0.999, tt));
            ref[i] = cc->mem[i] - lr * mh / (sqrt(vh) + 1e-8);
        }
        ct_cc_losses tl;
        ck_assert_int_eq(ct_cc_trainer_step(t, &tl), 0);
        close_rel(tl.loss, l.loss, 0, "trainer loss = loss at the same parameters");
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(fabs(cc->mem[i] - ref[i]) <= 2e-6 * fmax(1, fabs(ref[i])),
                          "step %ld param %zu: trainer %.9g reference %.9g", step, i, cc->mem[i], ref[i]);
    }
    ck_assert_int_gt(clipped, 0);
    ck_assert_int_lt(clipped, (int)c.steps + 1);
    ck_assert_int_eq(ct_cc_trainer_steps_done(t), c.steps);
    free(m1);
    free(v1);
    free(ref);
    free(g);
    free(X);
    ct_cc_workspace_free(ws);
    ct_cc_trainer_free(t);
    ct_cc_source_close(&s1);
    ct_cc_source_close(&s2);
    free(rows);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("crosscoder_grad");
    TCase *tc = tcase_create("grad");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, hand_values_l1);
    tcase_add_test(tc, hand_values_batchtopk_auxk);
    tcase_add_test(tc, gradient_l1_matches_finite_differences);
    tcase_add_test(tc, gradient_batchtopk_auxk_matches_finite_differences);
    tcase_add_test(tc, schedules_match_reference);
    tcase_add_test(tc, optimizer_steps_match_reference);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

/* The forward and backward of every architecture against the PyTorch reference in
 * tests/fixtures/forward (see gen_fixtures.py there), plus patching, finite-difference
 * gradient checks, determinism and argument errors. */
#include "common/error.h"
#include "models/forward/model.h"
#include "tests/forward/fixture.h"
#include "tests/support/testutil.h"

#include <math.h>
#include <omp.h>

static const char *const cases[] = {"neox_parallel", "neox_sequential", "bloom_6head",
                                    "olmo_untied", "olmo_tied_clip"};
#define N_CASES (int)(sizeof cases / sizeof *cases)
#define TOL 1e-4

typedef struct {
    ct_model_config cfg;
    fx_st weights, ref;
    ct_model *m;
    int B, T, C, V, L;
    int32_t *ids, *pos, *plus, *minus, rows[2];
} fx;

static void fx_load(fx *f, int i, ct_device dev)
{
    char rel[256], path[1024];
    snprintf(rel, sizeof rel, "tests/fixtures/forward/%s/config.json", cases[i]);
    ck_assert_msg(fx_config(ct_test_src(path, sizeof path, rel), &f->cfg) == 0, "%s",
                  ct_error_message());
    snprintf(rel, sizeof rel, "tests/fixtures/forward/%s/model.safetensors", cases[i]);
    ck_assert_msg(fx_st_open(ct_test_src(path, sizeof path, rel), &f->weights) == 0, "%s",
                  ct_error_message());
    snprintf(rel, sizeof rel, "tests/fixtures/forward/%s/reference.safetensors", cases[i]);
    ck_assert_msg(fx_st_open(ct_test_src(path, sizeof path, rel), &f->ref) == 0, "%s",
                  ct_error_message());
    ct_model_options o = CT_MODEL_OPTIONS_INIT;
    o.device = dev;
    ck_assert_msg(ct_model_create(&f->cfg, fx_st_getter, &f->weights, &o, &f->m) == 0, "%s: %s",
                  cases[i], ct_error_message());
    size_t n = 0;
    f->ids = fx_st_i32(&f->ref, "ids", &n);
    f->pos = fx_st_i32(&f->ref, "pos", NULL);
    f->plus = fx_st_i32(&f->ref, "plus", NULL);
    f->minus = fx_st_i32(&f->ref, "minus", NULL);
    ck_assert_ptr_nonnull(f->ids);
    f->B = 2;
    f->T = (int)n / 2;
    f->C = f->cfg.hidden;
    f->V = f->cfg.vocab;
    f->L = f->cfg.n_layer;
    for (int b = 0; b < f->B; b++)
        f->rows[b] = b * f->T + f->pos[b];
}

static void fx_free(fx *f)
{
    ct_model_free(f->m);
    fx_st_close(&f->weights);
    fx_st_close(&f->ref);
    free(f->ids);
    free(f->pos);
    free(f->plus);
    free(f->minus);
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m))
            m = d; /* NaN propagates */
    }
    return m;
}

static void expect_close(const fx *f, const char *what, const float *got, size_t n, double tol)
{
    size_t rn = 0;
    float *want = fx_st_f32(&f->ref, what, &rn);
    ck_assert_msg(want != NULL, "reference has no %s", what);
    ck_assert_uint_eq(rn, n);
    double d = max_abs_diff(got, want, n);
    printf("%-16s %-18s max |diff| %.2e\n", f->cfg.arch == CT_ARCH_BLOOM ? "bloom"
           : f->cfg.arch == CT_ARCH_OLMO ? "olmo" : "gpt-neox", what, d);
    ck_assert_msg(d <= tol, "%s: max |diff| %.3g > %.3g", what, d, tol);
    free(want);
}

/* Residuals at every block, logits, log-probs and next-token CE at every position. */
START_TEST(test_forward_matches_reference)
{
    fx f;
    fx_load(&f, _i, CT_DEVICE_CPU);
    size_t NC = (size_t)f.B * f.T * f.C, NV = (size_t)f.B * f.T * f.V;
    float **cap = malloc(sizeof(float *) * f.L);
    int *layers = malloc(sizeof(int) * f.L);
    for (int l = 0; l < f.L; l++) {
        cap[l] = malloc(NC * sizeof(float));
        layers[l] = l;
    }
    float *logits = malloc(NV * sizeof(float)), *lp = malloc(NV * sizeof(float));
    float *ce = malloc((size_t)f.B * f.T * sizeof(float));
    ct_forward_args a = CT_FORWARD_ARGS_INIT;
    a.n_seq = f.B;
    a.seq_len = f.T;
    a.ids = f.ids;
    a.n_capture = f.L;
    a.capture_layers = layers;
    a.capture = cap;
    a.logits = logits;
    a.logprobs = lp;
    a.ce = ce;
    ck_assert_msg(ct_model_forward(f.m, &a) == 0, "%s", ct_error_message());
    for (int l = 0; l < f.L; l++) {
        char name[32];
        snprintf(name, sizeof name, "resid_%d", l);
        expect_close(&f, name, cap[l], NC, TOL);
    }
    expect_close(&f, "logits", logits, NV, TOL);
    expect_close(&f, "logprobs", lp, NV, TOL);
    expect_close(&f, "ce", ce, (size_t)f.B * f.T, TOL);

    /* Same inputs, same binary: bit-identical. */
    float *again = malloc(NV * sizeof(float));
    a.logprobs = NULL;
    a.ce = NULL;
    a.n_capture = 0;
    a.logits = again;
    ck_assert_int_eq(ct_model_forward(f.m, &a), 0);
    ck_assert_msg(memcmp(again, logits, NV * sizeof(float)) == 0, "forward is not deterministic");
    /* ... and does not depend on the thread count */
    int threads = omp_get_max_threads();
    omp_set_num_threads(threads > 1 ? 1 : 2);
    ck_assert_int_eq(ct_model_forward(f.m, &a), 0);
    omp_set_num_threads(threads);
    ck_assert_msg(memcmp(again, logits, NV * sizeof(float)) == 0,
                  "forward depends on the thread count");

    /* Stopping after block 0 gives the same residual and runs no head. */
    float *r0 = malloc(NC * sizeof(float));
    ct_forward_args s = CT_FORWARD_ARGS_INIT;
    s.n_seq = f.B;
    s.seq_len = f.T;
    s.ids = f.ids;
    s.n_capture = 1;
    s.capture_layers = layers;
    s.capture = &r0;
    ck_assert_int_eq(ct_model_forward(f.m, &s), 0);
    ck_assert(memcmp(r0, cap[0], NC * sizeof(float)) == 0);

    /* Head rows subset: the rows of the full result. */
    ct_forward_args h = a;
    h.n_rows = f.B;
    h.rows = f.rows;
    h.logits = again;
    ck_assert_int_eq(ct_model_forward(f.m, &h), 0);
    for (int b = 0; b < f.B; b++)
        ck_assert_msg(max_abs_diff(again + (size_t)b * f.V, logits + (size_t)f.rows[b] * f.V,
                                   f.V) <= 1e-5, "row %d: %g", b,
                      max_abs_diff(again + (size_t)b * f.V, logits + (size_t)f.rows[b] * f.V, f.V));
    free(r0);
    free(again);
    for (int l = 0; l < f.L; l++)
        free(cap[l]);
    free(cap);
    free(layers);
    free(logits);
    free(lp);
    free(ce);
    fx_free(&f);
}
END_TEST

static float metric_of(const fx *f, const float *row_logits)
{
    float s = 0;
    for (int b = 0; b < f->B; b++)
        s += row_logits[(size_t)b * f->V + f->plus[b]] - row_logits[(size_t)b * f->V + f->minus[b]];
    return s;
}

/* metric with the residual at block g replaced by `patch` */
static double metric_patched(fx *f, int g, const float *patch, float *buf)
{
    ct_forward_args a = CT_FORWARD_ARGS_INIT;
    a.n_seq = f->B;
    a.seq_len = f->T;
    a.ids = f->ids;
    a.patch_layer = g;
    a.patch = patch;
    a.n_rows = f->B;
    a.rows = f->rows;
    a.logits = buf;
    ck_assert_msg(ct_model_forward(f->m, &a) == 0, "%s", ct_error_message());
    return metric_of(f, buf);
}

/* Gradient of a logit difference at per-sequence positions w.r.t. the residual at
 * block g: PyTorch autograd, then central finite differences along random directions. */
START_TEST(test_backward_matches_reference)
{
    fx f;
    fx_load(&f, _i, CT_DEVICE_CPU);
    size_t NC = (size_t)f.B * f.T * f.C;
    float *grad = malloc(NC * sizeof(float)), *buf = malloc(sizeof(float) * f.B * f.V);
    float *h = malloc(NC * sizeof(float)), *hp = malloc(NC * sizeof(float));
    /* blocks 0 and 1 have PyTorch gradients; the last block (head only) is checked by
     * finite differences alone */
    for (int g = 0; g < f.L; g++) {
        int layer = g;
        ct_forward_args a = CT_FORWARD_ARGS_INIT;
        a.n_seq = f.B;
        a.seq_len = f.T;
        a.ids = f.ids;
        a.grad_layer = g;
        a.n_rows = f.B;
        a.rows = f.rows;
        a.n_capture = 1;
        a.capture_layers = &layer;
        a.capture = &h;
        a.logits = buf;
        ck_assert_msg(ct_model_forward(f.m, &a) == 0, "%s", ct_error_message());
        ck_assert_msg(ct_model_backward_logit_diff(f.m, f.plus, f.minus, grad) == 0, "%s",
                      ct_error_message());
        char name[32];
        snprintf(name, sizeof name, "grad_%d", g);
        if (g <= 1)
            expect_close(&f, name, grad, NC, TOL);

        /* The dense form gives the same gradient. */
        float *dl = calloc((size_t)f.B * f.V, sizeof(float)), *grad2 = malloc(NC * sizeof(float));
        for (int b = 0; b < f.B; b++) {
            dl[(size_t)b * f.V + f.plus[b]] += 1;
            dl[(size_t)b * f.V + f.minus[b]] -= 1;
        }
        ck_assert_int_eq(ct_model_backward(f.m, dl, grad2), 0);
        ck_assert(memcmp(grad, grad2, NC * sizeof(float)) == 0);
        free(dl);
        free(grad2);

        /* Positions after a sequence's metric row get no gradient (causality). */
        for (int b = 0; b < f.B; b++)
            for (int t = f.pos[b] + 1; t < f.T; t++)
                for (int c = 0; c < f.C; c++)
                    ck_assert(grad[((size_t)b * f.T + t) * f.C + c] == 0.0f);

        unsigned seed = 1234u + (unsigned)g;
        for (int trial = 0; trial < 3; trial++) {
            /* clip_qkv makes the function piecewise: a smaller step crosses fewer kinks. */
            int clip = f.cfg.clip_qkv > 0;
            double dot = 0, eps = clip ? 1e-3 : 1e-2, tol = clip ? 1e-2 : 2e-3;
            float *u = malloc(NC * sizeof(float));
            for (size_t i = 0; i < NC; i++) {
                seed = seed * 1103515245u + 12345u;
                u[i] = ((float)((seed >> 8) & 0xffff) / 65535.0f - 0.5f);
                dot += (double)u[i] * grad[i];
            }
            for (size_t i = 0; i < NC; i++)
                hp[i] = h[i] + (float)eps * u[i];
            double fp = metric_patched(&f, g, hp, buf);
            for (size_t i = 0; i < NC; i++)
                hp[i] = h[i] - (float)eps * u[i];
            double fm = metric_patched(&f, g, hp, buf);
            double fd = (fp - fm) / (2 * eps);
            ck_assert_msg(fabs(fd - dot) <= tol * fmax(1.0, fabs(dot)),
                          "%s block %d: finite difference %.6g vs gradient %.6g", cases[_i], g, fd,
                          dot);
            free(u);
        }
    }
    free(grad);
    free(buf);
    free(h);
    free(hp);
    fx_free(&f);
}
END_TEST

/* Patching a residual with itself changes nothing; a perturbed patch matches the
 * reference forward with the same perturbation. */
START_TEST(test_patching)
{
    fx f;
    fx_load(&f, _i, CT_DEVICE_CPU);
    size_t NC = (size_t)f.B * f.T * f.C, NV = (size_t)f.B * f.T * f.V;
    float *clean = malloc(NV * sizeof(float)), *pl = malloc(NV * sizeof(float));
    float *h = malloc(NC * sizeof(float));
    for (int g = 0; g <= 1; g++) {
        int layer = g;
        ct_forward_args a = CT_FORWARD_ARGS_INIT;
        a.n_seq = f.B;
        a.seq_len = f.T;
        a.ids = f.ids;
        a.n_capture = 1;
        a.capture_layers = &layer;
        a.capture = &h;
        a.logits = clean;
        ck_assert_int_eq(ct_model_forward(f.m, &a), 0);
        ct_forward_args p = CT_FORWARD_ARGS_INIT;
        p.n_seq = f.B;
        p.seq_len = f.T;
        p.ids = f.ids;
        p.patch_layer = g;
        p.patch = h;
        p.logits = pl;
        ck_assert_int_eq(ct_model_forward(f.m, &p), 0);
        ck_assert_msg(memcmp(pl, clean, NV * sizeof(float)) == 0,
                      "%s: patching block %d with itself changed the logits", cases[_i], g);

        char name[32];
        snprintf(name, sizeof name, "resid_%d", g);
        float *r = fx_st_f32(&f.ref, name, NULL);
        snprintf(name, sizeof name, "delta_%d", g);
        float *d = fx_st_f32(&f.ref, name, NULL);
        for (size_t i = 0; i < NC; i++)
            r[i] += d[i];
        p.patch = r;
        ck_assert_int_eq(ct_model_forward(f.m, &p), 0);
        snprintf(name, sizeof name, "logits_patched_%d", g);
        expect_close(&f, name, pl, NV, TOL);
        ck_assert(max_abs_diff(pl, clean, NV) > 1e-3); /* the patch did something */
        free(r);
        free(d);
    }
    free(clean);
    free(pl);
    free(h);
    fx_free(&f);
}
END_TEST

static int missing_getter(void *user, const char *name, float *dst, size_t n)
{
    if (strstr(name, "dense_4h_to_h.weight") || strstr(name, "down_proj"))
        return ct_error_set(CT_ENOTFOUND, "no tensor %s", name);
    return fx_st_getter(user, name, dst, n);
}

START_TEST(test_errors)
{
    fx f;
    fx_load(&f, 0, CT_DEVICE_CPU);
    float buf[4];
    ct_forward_args a = CT_FORWARD_ARGS_INIT;
    a.n_seq = f.B;
    a.seq_len = f.T;
    a.ids = f.ids;
    a.logits = buf;
    int32_t saved = f.ids[3];
    f.ids[3] = f.V;
    ck_assert_int_eq(ct_model_forward(f.m, &a), CT_EINVAL);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "vocabulary"));
    f.ids[3] = saved;
    a.patch_layer = f.L;
    a.patch = buf;
    ck_assert_int_eq(ct_model_forward(f.m, &a), CT_EINVAL);
    a.patch_layer = 1;
    a.grad_layer = 0;
    ck_assert_int_eq(ct_model_forward(f.m, &a), CT_EINVAL);
    int32_t bad_row = f.B * f.T;
    ct_forward_args r = CT_FORWARD_ARGS_INIT;
    r.n_seq = f.B;
    r.seq_len = f.T;
    r.ids = f.ids;
    r.n_rows = 1;
    r.rows = &bad_row;
    r.logits = buf;
    ck_assert_int_eq(ct_model_forward(f.m, &r), CT_EINVAL);
    /* no activations kept: backward refuses */
    float g[4];
    ck_assert_int_eq(ct_model_backward_logit_diff(f.m, f.plus, f.minus, g), CT_EINVAL);

    /* one token: no next token, so its CE is 0; logits match the full run's first row */
    float one[128], ce1 = -1, *full = malloc(sizeof(float) * f.B * f.T * f.V);
    ct_forward_args t1 = CT_FORWARD_ARGS_INIT;
    t1.n_seq = 1;
    t1.seq_len = 1;
    t1.ids = f.ids;
    t1.logits = one;
    t1.ce = &ce1;
    ck_assert_int_le(f.V, 128);
    ck_assert_int_eq(ct_model_forward(f.m, &t1), 0);
    ck_assert(ce1 == 0.0f);
    ct_forward_args fl = CT_FORWARD_ARGS_INIT;
    fl.n_seq = f.B;
    fl.seq_len = f.T;
    fl.ids = f.ids;
    fl.logits = full;
    ck_assert_int_eq(ct_model_forward(f.m, &fl), 0);
    for (int v = 0; v < f.V; v++)
        ck_assert(fabsf(one[v] - full[v]) <= 1e-5f);
    free(full);

    ct_model *m2 = NULL;
    ck_assert_int_eq(ct_model_create(&f.cfg, missing_getter, &f.weights, NULL, &m2), CT_ENOTFOUND);
    ck_assert_ptr_null(m2);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "dense_4h_to_h.weight"));
    ct_model_config bad = f.cfg;
    bad.n_head = 5; /* 64 is not a multiple of 5 */
    ck_assert_int_eq(ct_model_create(&bad, fx_st_getter, &f.weights, NULL, &m2), CT_EINVAL);
    bad = f.cfg;
    bad.rotary_pct = 0.1f; /* int(16 * 0.1) = 1 rotary dim: not a whole pair */
    ck_assert_int_eq(ct_model_create(&bad, fx_st_getter, &f.weights, NULL, &m2), CT_EINVAL);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "rotary"));
    bad = f.cfg;
    bad.hidden = 32; /* the tensors have other sizes */
    ck_assert_int_eq(ct_model_create(&bad, fx_st_getter, &f.weights, NULL, &m2), CT_EINVAL);
    fx_free(&f);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("forward");
    TCase *tc = tcase_create("reference");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_forward_matches_reference, 0, N_CASES);
    tcase_add_loop_test(tc, test_backward_matches_reference, 0, N_CASES);
    tcase_add_loop_test(tc, test_patching, 0, N_CASES);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ct_test_run(suite());
}

/* CPU kernels against naive double-precision references and, for every backward,
 * central finite differences of L = Σ out·R; plus determinism across thread counts. */
#include "common/error.h"
#include "kernels/kernels.h"
#include "tests/kernels/kernel_ops.h"
#include "tests/support/testutil.h"

#include <omp.h>

static ct_kern *K;

static void setup(void)
{
    ck_assert_int_eq(ct_kern_create(CT_DEVICE_CPU, &K), 0);
}

static void teardown(void)
{
    ct_kern_free(K);
}

static double dotp(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* Finite-difference check of d(Σ f(x)·R)/dx at a few coordinates of x. */
typedef void (*probe_fn)(void *ctx, float *out);
static void fd_check(const char *what, float *x, size_t nx, const float *grad, probe_fn f,
                     void *ctx, float *out, const float *R, size_t nout, float eps, double tol)
{
    unsigned s = 99;
    for (int t = 0; t < 12; t++) {
        s = s * 1664525u + 1013904223u;
        size_t i = (s >> 4) % nx;
        float x0 = x[i];
        x[i] = x0 + eps;
        f(ctx, out);
        double lp = dotp(out, R, nout);
        x[i] = x0 - eps;
        f(ctx, out);
        double lm = dotp(out, R, nout);
        x[i] = x0;
        double fd = (lp - lm) / (2.0 * eps);
        ck_assert_msg(fabs(fd - grad[i]) <= tol * fmax(1.0, fabs(fd)),
                      "%s: coordinate %zu: finite difference %.6g vs backward %.6g", what, i, fd,
                      (double)grad[i]);
    }
}

START_TEST(test_matmul)
{
    int N = 7, C = 13, OC = 11;
    unsigned s = 1;
    float *x = kt_rand((size_t)N * C, &s, 1), *w = kt_rand((size_t)OC * C, &s, 1);
    float *b = kt_rand(OC, &s, 1), *out = kt_rand((size_t)N * OC, &s, 1);
    float *prev = malloc(sizeof(float) * N * OC);
    memcpy(prev, out, sizeof(float) * N * OC);
    ck_assert_int_eq(ct_kern_matmul_fwd(K, out, x, w, b, N, C, OC, 1), 0);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double r = prev[n * OC + o] + b[o];
            for (int c = 0; c < C; c++)
                r += (double)x[n * C + c] * w[o * C + c];
            ck_assert(fabs(r - out[n * OC + o]) < 1e-5);
        }
    float *R = kt_rand((size_t)N * OC, &s, 1);
    float *dx = calloc((size_t)N * C, 4), *dw = calloc((size_t)OC * C, 4), *db = calloc(OC, 4);
    ck_assert_int_eq(ct_kern_matmul_bwd(K, dx, dw, db, R, x, w, N, C, OC, 0), 0);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            double r = 0;
            for (int o = 0; o < OC; o++)
                r += (double)R[n * OC + o] * w[o * C + c];
            ck_assert(fabs(r - dx[n * C + c]) < 1e-5);
        }
    for (int o = 0; o < OC; o++) {
        double rb = 0;
        for (int n = 0; n < N; n++)
            rb += R[n * OC + o];
        ck_assert(fabs(rb - db[o]) < 1e-5);
        for (int c = 0; c < C; c++) {
            double r = 0;
            for (int n = 0; n < N; n++)
                r += (double)R[n * OC + o] * x[n * C + c];
            ck_assert(fabs(r - dw[o * C + c]) < 1e-5);
        }
    }
    free(x), free(w), free(b), free(out), free(prev), free(R), free(dx), free(dw), free(db);
}
END_TEST

typedef struct {
    float *x, *w, *b, *mean, *rstd;
    int N, C;
} ln_ctx;

static void ln_probe(void *p, float *out)
{
    ln_ctx *c = p;
    ct_kern_layernorm_fwd(K, out, c->mean, c->rstd, c->x, c->w, c->b, c->N, c->C, 1e-5f);
}

START_TEST(test_layernorm)
{
    int N = 5, C = 37;
    unsigned s = 2;
    for (int param = 0; param < 2; param++) {
        ln_ctx c = {kt_rand((size_t)N * C, &s, 2), param ? kt_rand(C, &s, 1) : NULL,
                    param ? kt_rand(C, &s, 1) : NULL, malloc(4 * N), malloc(4 * N), N, C};
        float *out = malloc(4 * (size_t)N * C), *R = kt_rand((size_t)N * C, &s, 1);
        ln_probe(&c, out);
        for (int n = 0; n < N; n++) {
            double m = 0, v = 0;
            for (int i = 0; i < C; i++)
                m += c.x[n * C + i];
            m /= C;
            for (int i = 0; i < C; i++)
                v += (c.x[n * C + i] - m) * (c.x[n * C + i] - m);
            double r = 1 / sqrt(v / C + 1e-5);
            for (int i = 0; i < C; i++) {
                double y = (c.x[n * C + i] - m) * r;
                if (param)
                    y = y * c.w[i] + c.b[i];
                ck_assert(fabs(y - out[n * C + i]) < 1e-5);
            }
        }
        float *dx = calloc((size_t)N * C, 4), *dw = calloc(C, 4), *db = calloc(C, 4);
        ln_probe(&c, out);
        ct_kern_layernorm_bwd(K, dx, param ? dw : NULL, param ? db : NULL, R, c.x, c.w, c.mean,
                              c.rstd, N, C);
        fd_check("layernorm dx", c.x, (size_t)N * C, dx, ln_probe, &c, out, R, (size_t)N * C,
                 1e-2f, 1e-2);
        if (param) {
            fd_check("layernorm dw", c.w, C, dw, ln_probe, &c, out, R, (size_t)N * C, 1e-2f, 1e-2);
            fd_check("layernorm db", c.b, C, db, ln_probe, &c, out, R, (size_t)N * C, 1e-2f, 1e-2);
        }
        free(c.x), free(c.w), free(c.b), free(c.mean), free(c.rstd), free(out), free(R);
        free(dx), free(dw), free(db);
    }
}
END_TEST

typedef struct {
    float *q, *k, *v, *slopes, *probs;
    int B, T, nh, hd;
    float scale;
} att_ctx;

static void att_probe(void *p, float *out)
{
    att_ctx *c = p;
    ct_kern_attention_fwd(K, out, c->probs, c->q, c->k, c->v, c->slopes, c->B, c->T, c->nh, c->hd,
                          c->scale);
}

START_TEST(test_attention)
{
    int B = 2, T = 37, nh = 3, hd = 8; /* T spans more than one query tile */
    size_t n = (size_t)B * nh * T * hd;
    unsigned s = 3;
    for (int alibi = 0; alibi < 2; alibi++) {
        float sl[3] = {0.5f, 0.25f, 0.125f};
        att_ctx c = {kt_rand(n, &s, 1), kt_rand(n, &s, 1), kt_rand(n, &s, 1), alibi ? sl : NULL,
                     malloc(sizeof(float) * B * nh * T * T), B, T, nh, hd, 0.35f};
        float *out = malloc(4 * n), *R = kt_rand(n, &s, 1);
        att_probe(&c, out);
        /* naive double reference */
        for (int b = 0; b < B; b++)
            for (int h = 0; h < nh; h++)
                for (int i = 0; i < T; i++) {
                    size_t bh = (size_t)b * nh + h;
                    double sc[64], mx = -1e300, sum = 0;
                    for (int j = 0; j <= i; j++) {
                        double d = 0;
                        for (int e = 0; e < hd; e++)
                            d += (double)c.q[(bh * T + i) * hd + e] * c.k[(bh * T + j) * hd + e];
                        sc[j] = d * c.scale + (alibi ? sl[h] * j : 0);
                        mx = sc[j] > mx ? sc[j] : mx;
                    }
                    for (int j = 0; j <= i; j++)
                        sum += (sc[j] = exp(sc[j] - mx));
                    for (int e = 0; e < hd; e++) {
                        double o = 0;
                        for (int j = 0; j <= i; j++)
                            o += sc[j] / sum * c.v[(bh * T + j) * hd + e];
                        ck_assert(fabs(o - out[((size_t)b * T + i) * nh * hd + h * hd + e]) < 1e-5);
                    }
                }
        float *dq = malloc(4 * n), *dk = malloc(4 * n), *dv = malloc(4 * n);
        att_probe(&c, out);
        ck_assert_int_eq(ct_kern_attention_bwd(K, dq, dk, dv, R, c.probs, c.q, c.k, c.v, B, T, nh,
                                               hd, c.scale), 0);
        fd_check("attention dq", c.q, n, dq, att_probe, &c, out, R, n, 1e-2f, 1e-2);
        fd_check("attention dk", c.k, n, dk, att_probe, &c, out, R, n, 1e-2f, 1e-2);
        fd_check("attention dv", c.v, n, dv, att_probe, &c, out, R, n, 1e-2f, 1e-2);
        /* no stored probabilities: same output */
        float *o2 = malloc(4 * n);
        att_probe(&c, out);
        ct_kern_attention_fwd(K, o2, NULL, c.q, c.k, c.v, c.slopes, B, T, nh, hd, c.scale);
        ck_assert(memcmp(o2, out, 4 * n) == 0);
        free(o2);
        free(c.q), free(c.k), free(c.v), free(c.probs), free(out), free(R), free(dq), free(dk),
            free(dv);
    }
}
END_TEST

typedef struct {
    float *x;
    size_t n;
    int kind, N, I;
} act_ctx;

static void gelu_probe(void *p, float *out)
{
    act_ctx *c = p;
    ct_kern_gelu_fwd(K, out, c->x, c->n, (ct_gelu_kind)c->kind);
}

static void swiglu_probe(void *p, float *out)
{
    act_ctx *c = p;
    ct_kern_swiglu_fwd(K, out, c->x, c->N, c->I);
}

START_TEST(test_activations)
{
    unsigned s = 4;
    size_t n = 200;
    for (int kind = 0; kind < 2; kind++) {
        act_ctx c = {kt_rand(n, &s, 4), n, kind, 0, 0};
        float *out = malloc(4 * n), *R = kt_rand(n, &s, 1), *dx = malloc(4 * n);
        gelu_probe(&c, out);
        for (size_t i = 0; i < n; i++) {
            double x = c.x[i];
            double y = kind ? 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)))
                            : 0.5 * x * (1 + erf(x / sqrt(2)));
            ck_assert(fabs(y - out[i]) < 1e-5);
        }
        ct_kern_gelu_bwd(K, dx, c.x, R, n, (ct_gelu_kind)kind);
        fd_check("gelu", c.x, n, dx, gelu_probe, &c, out, R, n, 1e-2f, 1e-2);
        free(c.x), free(out), free(R), free(dx);
    }
    act_ctx c = {kt_rand(2 * n, &s, 4), 2 * n, 0, 4, (int)n / 4};
    float *out = malloc(4 * n), *R = kt_rand(n, &s, 1), *dx = malloc(8 * n);
    swiglu_probe(&c, out);
    for (int r = 0; r < c.N; r++)
        for (int i = 0; i < c.I; i++) {
            double g = c.x[r * 2 * c.I + i], u = c.x[r * 2 * c.I + c.I + i];
            ck_assert(fabs(g / (1 + exp(-g)) * u - out[r * c.I + i]) < 1e-5);
        }
    ct_kern_swiglu_bwd(K, dx, R, c.x, c.N, c.I);
    fd_check("swiglu", c.x, 2 * n, dx, swiglu_probe, &c, out, R, n, 1e-2f, 1e-2);
    free(c.x), free(out), free(R), free(dx);
}
END_TEST

/* The backward of a linear map is its adjoint: <f(x), y> = <x, f'(y)>. */
START_TEST(test_rope_and_split_adjoint)
{
    int B = 2, T = 5, nh = 3, hd = 8, rot = 4;
    size_t n = (size_t)B * nh * T * hd;
    unsigned s = 5;
    float *cs = kt_rand((size_t)T * rot / 2, &s, 1), *sn = kt_rand((size_t)T * rot / 2, &s, 1);
    float *x = kt_rand(n, &s, 1), *y = kt_rand(n, &s, 1), *fx = malloc(4 * n), *fy = malloc(4 * n);
    memcpy(fx, x, 4 * n);
    memcpy(fy, y, 4 * n);
    ct_kern_rope_fwd(K, fx, cs, sn, B, nh, T, hd, rot);
    ct_kern_rope_bwd(K, fy, cs, sn, B, nh, T, hd, rot);
    ck_assert(fabs(dotp(fx, y, n) - dotp(x, fy, n)) < 1e-4);
    for (int t = 0; t < T; t++) /* dims past `rot` pass through */
        ck_assert(fx[(size_t)t * hd + rot] == x[(size_t)t * hd + rot]);

    float *qkv = kt_rand(3 * n, &s, 2), *dqkv = malloc(12 * n);
    float *q = malloc(4 * n), *k = malloc(4 * n), *v = malloc(4 * n);
    float *gq = kt_rand(n, &s, 1), *gk = kt_rand(n, &s, 1), *gv = kt_rand(n, &s, 1);
    for (int clip = 0; clip < 2; clip++) {
        float cl = clip ? 1.0f : 0.0f;
        ct_kern_qkv_split_fwd(K, q, k, v, qkv, B, T, nh, hd, cl);
        ct_kern_qkv_split_bwd(K, dqkv, gq, gk, gv, qkv, B, T, nh, hd, cl);
        /* linear where no clamp is active: <split(x), g> = <x, split'(g)> over unclamped x */
        double lhs = 0, rhs = 0;
        for (size_t i = 0; i < 3 * n; i++)
            if (!clip || fabsf(qkv[i]) <= 1.0f)
                rhs += (double)qkv[i] * dqkv[i];
            else
                ck_assert(dqkv[i] == 0.0f);
        for (size_t i = 0; i < n; i++) {
            float a[3] = {q[i], k[i], v[i]}, g[3] = {gq[i], gk[i], gv[i]};
            for (int j = 0; j < 3; j++)
                if (!clip || fabsf(a[j]) < 1.0f)
                    lhs += (double)a[j] * g[j];
                else
                    ck_assert(fabsf(a[j]) == 1.0f);
        }
        ck_assert_msg(fabs(lhs - rhs) < 1e-4, "split adjoint %g vs %g", lhs, rhs);
    }
    free(cs), free(sn), free(x), free(y), free(fx), free(fy), free(qkv), free(dqkv);
    free(q), free(k), free(v), free(gq), free(gk), free(gv);
}
END_TEST

START_TEST(test_rows_and_softmax)
{
    int N = 4, V = 1000, C = 6;
    unsigned s = 6;
    float *x = kt_rand((size_t)N * V, &s, 20), *lp = malloc(4 * (size_t)N * V), *ce = malloc(4 * N);
    int32_t tg[4] = {3, -1, 999, 0};
    ct_kern_logsoftmax(K, lp, x, N, V);
    ct_kern_cross_entropy(K, ce, x, tg, N, V);
    for (int n = 0; n < N; n++) {
        double mx = -1e300, sum = 0;
        for (int i = 0; i < V; i++)
            mx = x[n * V + i] > mx ? x[n * V + i] : mx;
        for (int i = 0; i < V; i++)
            sum += exp(x[n * V + i] - mx);
        double lse = mx + log(sum);
        for (int i = 0; i < V; i++)
            ck_assert(fabs(x[n * V + i] - lse - lp[n * V + i]) < 1e-5);
        ck_assert(fabs((tg[n] >= 0 ? lse - x[n * V + tg[n]] : 0) - ce[n]) < 1e-5);
    }
    float *src = kt_rand((size_t)3 * C, &s, 1), *dst = calloc((size_t)N * C, 4);
    int32_t rows[3] = {2, 0, 2};
    ct_kern_scatter_add_rows(K, dst, src, rows, 3, C);
    for (int c = 0; c < C; c++) {
        ck_assert(dst[2 * C + c] == src[c] + src[2 * C + c]);
        ck_assert(dst[c] == src[C + c]);
        ck_assert(dst[C + c] == 0.0f);
    }
    float *g = malloc(4 * (size_t)3 * C);
    ct_kern_gather_rows(K, g, dst, rows, 3, C);
    ck_assert(memcmp(g, dst + 2 * C, 4 * C) == 0);
    int32_t ids[2] = {3, 1};
    ct_kern_embedding_fwd(K, g, ids, x, 2, C);
    ck_assert(memcmp(g, x + 3 * C, 4 * C) == 0 && memcmp(g + C, x + C, 4 * C) == 0);
    free(x), free(lp), free(ce), free(src), free(dst), free(g);
}
END_TEST

/* Reductions do not depend on the thread count. */
START_TEST(test_thread_count_independent)
{
    int N = 300, C = 130, T = 70, nh = 2, hd = 16;
    unsigned s = 7;
    float *x = kt_rand((size_t)N * C, &s, 1), *g = kt_rand((size_t)N * C, &s, 1);
    float *m = malloc(4 * N), *r = malloc(4 * N), *o = malloc(4 * (size_t)N * C);
    ct_kern_layernorm_fwd(K, o, m, r, x, NULL, NULL, N, C, 1e-5f);
    size_t na = (size_t)nh * T * hd;
    float *q = kt_rand(na, &s, 1), *k = kt_rand(na, &s, 1), *v = kt_rand(na, &s, 1);
    int M = 100, Kd = 70, O = 333;
    float *wm = kt_rand((size_t)O * Kd, &s, 1), *bm = kt_rand(O, &s, 1);
    float *res[2][6];
    int saved = omp_get_max_threads();
    for (int run = 0; run < 2; run++) {
        omp_set_num_threads(run ? 2 : 1);
        float *dw = calloc(C, 4), *db = calloc(C, 4), *dbias = calloc(C, 4);
        float *ao = malloc(4 * na), *p = malloc(sizeof(float) * nh * T * T);
        float *dq = malloc(4 * na), *dk = malloc(4 * na), *dv = malloc(4 * na);
        ct_kern_layernorm_bwd(K, NULL, dw, db, g, x, NULL, m, r, N, C);
        ct_kern_matmul_bwd(K, NULL, NULL, dbias, g, NULL, NULL, N, 0, C, 0);
        ct_kern_attention_fwd(K, ao, p, q, k, v, NULL, 1, T, nh, hd, 0.25f);
        ct_kern_attention_bwd(K, dq, dk, dv, ao, p, q, k, v, 1, T, nh, hd, 0.25f);
        res[run][0] = dw;
        res[run][1] = dbias;
        res[run][2] = dk;
        res[run][3] = ao;
        res[run][4] = malloc(4 * (size_t)M * O);
        ct_kern_matmul_fwd(K, res[run][4], x, wm, bm, M, Kd, O, 0);
        res[run][5] = malloc(4 * (size_t)O * Kd);
        memset(res[run][5], 0, 4 * (size_t)O * Kd);
        ct_kern_matmul_bwd(K, NULL, res[run][5], NULL, g, x, NULL, M, Kd, O, 0);
        free(db), free(p), free(dq), free(dv);
    }
    omp_set_num_threads(saved);
    ck_assert(memcmp(res[0][0], res[1][0], 4 * C) == 0);
    ck_assert(memcmp(res[0][1], res[1][1], 4 * C) == 0);
    ck_assert(memcmp(res[0][2], res[1][2], 4 * na) == 0);
    ck_assert(memcmp(res[0][3], res[1][3], 4 * na) == 0);
    ck_assert_msg(memcmp(res[0][4], res[1][4], 4 * (size_t)M * O) == 0, "matmul_fwd");
    ck_assert_msg(memcmp(res[0][5], res[1][5], 4 * (size_t)O * Kd) == 0, "matmul_bwd dw");
    free(wm), free(bm);
    for (int run = 0; run < 2; run++)
        for (int i = 0; i < 6; i++)
            free(res[run][i]);
    free(x), free(g), free(m), free(r), free(o), free(q), free(k), free(v);
}
END_TEST

START_TEST(test_device_errors)
{
    ct_device d;
    ck_assert_int_eq(ct_device_parse("cpu", &d), 0);
    ck_assert_int_eq(d, CT_DEVICE_CPU);
    ck_assert_int_eq(ct_device_parse("gpu", &d), CT_EINVAL);
    if (!ct_kern_cuda_available()) {
        ct_kern *c = NULL;
        ck_assert_int_eq(ct_kern_create(CT_DEVICE_CUDA, &c), CT_EUNSUPPORTED);
        ck_assert_ptr_null(c);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("cpu");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_matmul);
    tcase_add_test(tc, test_layernorm);
    tcase_add_test(tc, test_attention);
    tcase_add_test(tc, test_activations);
    tcase_add_test(tc, test_rope_and_split_adjoint);
    tcase_add_test(tc, test_rows_and_softmax);
    tcase_add_test(tc, test_thread_count_independent);
    tcase_add_test(tc, test_device_errors);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

/* CUDA crosscoder kernels against their CPU references. Without the CUDA backend or a
 * device it prints "SKIP: ..." and exits 77, which CTest counts as skipped. */
#include "common/error.h"
#include "crosscoder/crosscoder.h"
#include "crosscoder/loss.h"
#include "crosscoder/source.h"
#include "crosscoder/train.h"
#include "kernels/crosscoder_kernels.h"
#include "tests/crosscoder/ref.h"
#include "tests/support/testutil.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef CT_HAVE_CUDA
static void fill(float *x, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)((double)(seed >> 11) * 0x1.0p-53 * 2.0 - 1.0);
    }
}

START_TEST(cuda_matches_cpu)
{
    size_t n = 300001;
    float *p = malloc(n * 4), *g = malloc(n * 4), *m = calloc(n, 4), *v = calloc(n, 4);
    float *p2 = malloc(n * 4), *m2 = malloc(n * 4), *v2 = malloc(n * 4);
    fill(p, n, 1);
    fill(g, n, 2);
    void *dp, *dg, *dm, *dv;
    ck_assert_int_eq(ct_cck_cuda_alloc(&dp, n * 4), 0);
    ck_assert_int_eq(ct_cck_cuda_alloc(&dg, n * 4), 0);
    ck_assert_int_eq(ct_cck_cuda_alloc(&dm, n * 4), 0);
    ck_assert_int_eq(ct_cck_cuda_alloc(&dv, n * 4), 0);
    ck_assert_int_eq(ct_cck_cuda_copy(dp, p, n * 4, 1), 0);
    ck_assert_int_eq(ct_cck_cuda_copy(dg, g, n * 4, 1), 0);
    ck_assert_int_eq(ct_cck_cuda_copy(dm, m, n * 4, 1), 0);
    ck_assert_int_eq(ct_cck_cuda_copy(dv, v, n * 4, 1), 0);
    for (long t = 1; t <= 3; t++) {
        ct_cck_adam(p, g, m, v, n, 0.7f, 1e-3, 0.9, 0.999, 1e-8, t);
        ck_assert_int_eq(ct_cck_cuda_adam(dp, dg, dm, dv, n, 0.7f, 1e-3, 0.9, 0.999, 1e-8, t), 0);
    }
    ck_assert_int_eq(ct_cck_cuda_copy(p2, dp, n * 4, 0), 0);
    ck_assert_int_eq(ct_cck_cuda_copy(m2, dm, n * 4, 0), 0);
    ck_assert_int_eq(ct_cck_cuda_copy(v2, dv, n * 4, 0), 0);
    ck_assert_int_eq(memcmp(p, p2, n * 4), 0); /* bit for bit */
    ck_assert_int_eq(memcmp(m, m2, n * 4), 0);
    ck_assert_int_eq(memcmp(v, v2, n * 4), 0);
    double sc = ct_cck_sumsq(g, n), sg;
    ck_assert_int_eq(ct_cck_cuda_sumsq(dg, n, &sg), 0);
    ck_assert(fabs(sc - sg) <= 1e-12 * sc);
    int B = 33, H = 1000;
    float *F = malloc(sizeof(float) * B * H), *F2 = malloc(sizeof(float) * B * H);
    fill(F, (size_t)B * H, 3);
    void *dF;
    ck_assert_int_eq(ct_cck_cuda_alloc(&dF, sizeof(float) * B * H), 0);
    ck_assert_int_eq(ct_cck_cuda_copy(dF, F, sizeof(float) * B * H, 1), 0);
    size_t rc[34], rg[34];
    ct_cck_relu_count(F, B, H, rc);
    ck_assert_int_eq(ct_cck_cuda_relu_count(dF, B, H, rg), 0);
    ck_assert_int_eq(ct_cck_cuda_copy(F2, dF, sizeof(float) * B * H, 0), 0);
    ck_assert_int_eq(memcmp(rc, rg, sizeof rc), 0);
    ck_assert_int_eq(memcmp(F, F2, sizeof(float) * B * H), 0);
    ck_assert_uint_gt(rc[B], 0);
    ct_cck_cuda_free(dp);
    ct_cck_cuda_free(dg);
    ct_cck_cuda_free(dm);
    ct_cck_cuda_free(dv);
    ct_cck_cuda_free(dF);
    free(p);
    free(g);
    free(m);
    free(v);
    free(p2);
    free(m2);
    free(v2);
    free(F);
    free(F2);
}
END_TEST

/* max |a − b| over n floats, and max |b|: the relative error of a against b. */
static double rel_err(const float *a, const float *b, size_t n)
{
    double md = 0.0, mb = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        md = e > md ? e : md;
        mb = fabs(b[i]) > mb ? fabs(b[i]) : mb;
    }
    return mb > 0.0 ? md / mb : md;
}

static ct_cc_config train_config(int M, int d, int H, int B, long steps)
{
    ct_cc_config c = CT_CC_CONFIG_INIT;
    c.M = M;
    c.d = d;
    c.H = H;
    c.batch = B;
    c.steps = steps;
    c.lr = 1e-3f; /* large enough that five steps move the parameters measurably */
    c.grad_clip = 0.05f; /* small enough that clipping is active */
    c.l1_warmup = 0.2; /* λ changes during the run */
    c.log_every = 0;
    c.checkpoint_every = 0;
    c.path = CT_CC_PATH_DENSE;
    ck_assert_int_eq(ct_cc_config_resolve(&c), 0);
    return c;
}

/* A crosscoder from the paper's init with b_enc offsets that leave a mix of active and
 * inactive latents, and rows that are N(0,1)-like with a per-checkpoint scale. */
static ct_crosscoder *small_model(int M, int d, int H, int B, float **rows)
{
    ct_cc_config c = train_config(M, d, H, B, 10);
    ct_crosscoder *cc;
    ck_assert_int_eq(ct_cc_create(&c, &cc), 0);
    ct_cc_init(cc, 124);
    fill(cc->p.b_enc, (size_t)H, 77);
    for (int j = 0; j < H; j++)
        cc->p.b_enc[j] *= 0.05f;
    fill(cc->p.b_dec, (size_t)M * d, 78);
    *rows = malloc(sizeof(float) * (size_t)B * M * d);
    fill(*rows, (size_t)B * M * d, 79);
    for (size_t i = 0; i < (size_t)B * M * d; i++)
        (*rows)[i] *= 1.0f + (float)((i / d) % M);
    return cc;
}

/* The dense L1 loss and gradient on the GPU against ct_cc_forward_backward on the CPU
 * (dense path), at shapes that are not multiples of the block sizes. */
static void check_fwbw(int M, int d, int H, int B, float lambda)
{
    float *X;
    ct_crosscoder *cc = small_model(M, d, H, B, &X);
    size_t np = cc->n_params, D = (size_t)M * d;
    ct_cc_workspace *ws;
    ck_assert_int_eq(ct_cc_workspace_create(&cc->cfg, B, &ws), 0);
    float *g_cpu = malloc(np * 4), *g_gpu = malloc(np * 4);
    ct_cc_lossopt opt = CT_CC_LOSSOPT_INIT;
    opt.lambda = lambda;
    opt.path = CT_CC_PATH_DENSE;
    ct_cc_losses l = {0};
    ck_assert_int_eq(ct_cc_forward_backward(cc, X, B, &opt, ws, &l, g_cpu), 0);
    ck_assert(l.density > 0.05 && l.density < 0.95); /* both branches of the ReLU occur */

    void *dp, *dx, *dg;
    ck_assert_int_eq(ct_cck_cuda_alloc(&dp, np * 4), 0);
    ck_assert_int_eq(ct_cck_cuda_alloc(&dx, (size_t)B * D * 4), 0);
    ck_assert_int_eq(ct_cck_cuda_alloc(&dg, np * 4), 0);
    ck_assert_int_eq(ct_cck_cuda_copy(dp, cc->mem, np * 4, 1), 0);
    ck_assert_int_eq(ct_cck_cuda_copy(dx, X, (size_t)B * D * 4, 1), 0);
    ct_cck_cuda_l1 *w = NULL;
    ck_assert_int_eq(ct_cck_cuda_l1_create(M, d, H, B, &w), 0);
    double *rowacc = malloc(sizeof(double) * (size_t)B * (2 * M + 1));
    float *fsum = malloc(4 * (size_t)H), *nsum = malloc(4 * (size_t)H);
    size_t nnz = 0;
    ck_assert_int_eq(ct_cck_cuda_l1_fwbw(w, dp, dx, B, lambda, dg, rowacc, fsum, nsum, &nnz), 0);
    ck_assert_int_eq(ct_cck_cuda_copy(g_gpu, dg, np * 4, 0), 0);

    ck_assert_uint_eq(nnz, (size_t)llround(l.l0 * B)); /* same active set */
    double l2 = 0.0, l1 = 0.0;
    for (int b = 0; b < B; b++)
        l2 += rowacc[(size_t)b * (2 * M + 1) + 2 * M];
    for (int j = 0; j < H; j++)
        l1 += (double)fsum[j] * nsum[j];
    l2 /= B;
    l1 /= B;
    ck_assert_msg(fabs(l2 - l.l2) <= 1e-5 * l.l2, "L2 gpu %.9g cpu %.9g", l2, l.l2);
    ck_assert_msg(fabs(l1 - l.l1) <= 1e-5 * l.l1, "L1 gpu %.9g cpu %.9g", l1, l.l1);
    /* and the independent double-precision reference */
    double *Pd = malloc(sizeof(double) * np), *Xd = malloc(sizeof(double) * (size_t)B * D);
    for (size_t i = 0; i < np; i++)
        Pd[i] = cc->mem[i];
    for (size_t i = 0; i < (size_t)B * D; i++)
        Xd[i] = X[i];
    ref_cfg rcfg = {.M = M, .d = d, .H = H, .lambda = lambda};
    ref_out ro;
    ref_forward(&rcfg, Pd, Xd, B, NULL, 0.0, &ro, NULL, NULL);
    ck_assert_msg(fabs(l2 - ro.l2) <= 1e-4 * ro.l2, "L2 gpu %.9g reference %.9g", l2, ro.l2);
    ck_assert_msg(fabs(l1 - ro.l1) <= 1e-4 * ro.l1, "L1 gpu %.9g reference %.9g", l1, ro.l1);
    free(Pd);
    free(Xd);
    ct_cc_params gc, gg;
    ct_cc_params_bind(g_cpu, M, d, H, &gc);
    ct_cc_params_bind(g_gpu, M, d, H, &gg);
    const char *names[4] = {"W_enc", "b_enc", "W_dec", "b_dec"};
    const float *pc[4] = {gc.W_enc, gc.b_enc, gc.W_dec, gc.b_dec}, *pg[4] = {gg.W_enc, gg.b_enc, gg.W_dec, gg.b_dec};
    size_t n[4] = {D * H, (size_t)H, D * H, D};
    for (int k = 0; k < 4; k++) {
        double e = rel_err(pg[k], pc[k], n[k]);
        fprintf(stderr, "fwbw M=%d d=%d H=%d B=%d: grad %s rel err %.3g\n", M, d, H, B, names[k], e);
        ck_assert_msg(e <= 1e-4, "gradient of %s: relative error %.3g", names[k], e);
    }
    /* a forward-only pass leaves the gradient alone and gives the same sums */
    double *rowacc2 = malloc(sizeof(double) * (size_t)B * (2 * M + 1));
    size_t nnz2 = 0;
    ck_assert_int_eq(ct_cck_cuda_l1_fwbw(w, dp, dx, B, lambda, NULL, rowacc2, fsum, nsum, &nnz2), 0);
    ck_assert_uint_eq(nnz2, nnz);
    ck_assert_int_eq(memcmp(rowacc, rowacc2, sizeof(double) * (size_t)B * (2 * M + 1)), 0);
    ck_assert_int_eq(ct_cck_cuda_l1_fwbw(w, dp, dx, B + 1, lambda, NULL, rowacc2, fsum, nsum, &nnz2), CT_EINVAL);
    ct_cck_cuda_l1_free(w);
    ct_cck_cuda_free(dp);
    ct_cck_cuda_free(dx);
    ct_cck_cuda_free(dg);
    free(rowacc);
    free(rowacc2);
    free(fsum);
    free(nsum);
    free(g_cpu);
    free(g_gpu);
    free(X);
    ct_cc_workspace_free(ws);
    ct_cc_free(cc);
}

START_TEST(l1_fwbw_matches_cpu)
{
    check_fwbw(2, 48, 160, 37, 0.7f);
    check_fwbw(3, 300, 700, 129, 2.0f);
    check_fwbw(2, 64, 96, 5, 0.0f); /* λ = 0: the decoder-norm term is skipped */
}
END_TEST

typedef struct {
    float *rows;
    size_t n;
    ct_cc_source src;
    ct_cc_trainer *t;
} run;

static void run_open(run *r, const ct_cc_config *c, ct_device dev)
{
    r->n = 4 * (size_t)c->batch;
    r->rows = malloc(sizeof(float) * r->n * c->M * c->d);
    fill(r->rows, r->n * c->M * c->d, 5);
    ck_assert_int_eq(ct_cc_memsource_open(r->rows, r->n, c->M, c->d, NULL, 3, 1, &r->src), 0);
    ck_assert_int_eq(ct_cc_trainer_create(c, &r->src, NULL, NULL, &r->t), 0);
    ck_assert_int_eq(ct_cc_trainer_set_device(r->t, dev), 0);
}

static void run_close(run *r)
{
    ct_cc_trainer_free(r->t);
    ct_cc_source_close(&r->src);
    free(r->rows);
}


/* Five training steps on the GPU against the CPU: per-step losses, then the parameters
 * and their change from the init. */
START_TEST(l1_training_matches_cpu)
{
    ct_cc_config c = train_config(2, 64, 512, 96, 5);
    run cpu, gpu;
    run_open(&cpu, &c, CT_DEVICE_CPU);
    run_open(&gpu, &c, CT_DEVICE_CUDA);
    size_t np = ct_cc_trainer_model(cpu.t)->n_params;
    float *init = malloc(np * 4);
    memcpy(init, ct_cc_trainer_model(cpu.t)->mem, np * 4);
    ck_assert_int_eq(memcmp(init, ct_cc_trainer_model(gpu.t)->mem, np * 4), 0);
    for (long s = 0; s < c.steps; s++) {
        ct_cc_losses a, b;
        ck_assert_int_eq(ct_cc_trainer_step(cpu.t, &a), 0);
        ck_assert_int_eq(ct_cc_trainer_step(gpu.t, &b), 0);
        fprintf(stderr, "step %ld: loss cpu %.9g gpu %.9g, L0 cpu %.3f gpu %.3f\n", s, a.loss, b.loss, a.l0, b.l0);
        ck_assert_msg(fabs(a.loss - b.loss) <= 1e-4 * a.loss, "step %ld loss", s);
        ck_assert_msg(fabs(a.l1 - b.l1) <= 1e-4 * a.l1, "step %ld L1", s);
        ck_assert_msg(fabs(a.l0 - b.l0) <= 1e-3 * a.l0, "step %ld L0", s);
    }
    const float *pc = ct_cc_trainer_model(cpu.t)->mem, *pg = ct_cc_trainer_model(gpu.t)->mem;
    double e = rel_err(pg, pc, np), dd = 0.0, dn = 0.0;
    for (size_t i = 0; i < np; i++) {
        double u = (double)pg[i] - init[i], v = (double)pc[i] - init[i];
        dd += (u - v) * (u - v);
        dn += v * v;
    }
    fprintf(stderr, "after %ld steps: parameters rel err %.3g, updates rel err %.3g\n", c.steps, e, sqrt(dd / dn));
    ck_assert(dn > 0.0);
    ck_assert_msg(e <= 1e-4, "parameters differ by %.3g relative", e);
    ck_assert_msg(sqrt(dd / dn) <= 1e-2, "updates differ by %.3g relative", sqrt(dd / dn));
    free(init);
    run_close(&cpu);
    run_close(&gpu);
}
END_TEST

static void train_state(const ct_cc_config *c, long steps, void **buf, size_t *len)
{
    run r;
    run_open(&r, c, CT_DEVICE_CUDA);
    for (long s = 0; s < steps; s++)
        ck_assert_int_eq(ct_cc_trainer_step(r.t, NULL), 0);
    ck_assert_int_eq(ct_cc_trainer_save(r.t, buf, len), 0);
    run_close(&r);
}

/* Two CUDA runs give the same bytes, and a run resumed on the GPU from a saved state
 * continues exactly as the uninterrupted one. */
START_TEST(l1_training_deterministic)
{
    ct_cc_config c = train_config(2, 256, 2048, 512, 4);
    void *a, *b, *mid;
    size_t la, lb, lm;
    train_state(&c, 4, &a, &la);
    train_state(&c, 4, &b, &lb);
    ck_assert_uint_eq(la, lb);
    ck_assert_int_eq(memcmp(a, b, la), 0);
    train_state(&c, 2, &mid, &lm);
    run r;
    run_open(&r, &c, CT_DEVICE_CUDA);
    ck_assert_int_eq(ct_cc_trainer_restore(r.t, mid, lm, "mid"), 0);
    ck_assert_int_eq(ct_cc_trainer_run(r.t), 0);
    ck_assert_int_eq(ct_cc_trainer_steps_done(r.t), 4);
    void *res;
    size_t lr;
    ck_assert_int_eq(ct_cc_trainer_save(r.t, &res, &lr), 0);
    ck_assert_uint_eq(lr, la);
    ck_assert_int_eq(memcmp(res, a, la), 0);
    run_close(&r);
    free(a);
    free(b);
    free(mid);
    free(res);
}
END_TEST

START_TEST(batchtopk_refused)
{
    ct_cc_config c = train_config(2, 16, 64, 8, 2);
    c.type = CT_CC_BATCHTOPK;
    c.k_start = c.k_end = 4;
    ck_assert_int_eq(ct_cc_config_resolve(&c), 0);
    float rows[16 * 2 * 16];
    fill(rows, sizeof rows / sizeof *rows, 9);
    ct_cc_source src;
    ct_cc_trainer *t;
    ck_assert_int_eq(ct_cc_memsource_open(rows, 16, 2, 16, NULL, 0, 0, &src), 0);
    ck_assert_int_eq(ct_cc_trainer_create(&c, &src, NULL, NULL, &t), 0);
    ck_assert_int_eq(ct_cc_trainer_set_device(t, CT_DEVICE_CUDA), CT_EUNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "BatchTopK on CUDA is not supported"));
    ck_assert_int_eq(ct_cc_trainer_step(t, NULL), 0); /* still trains on the CPU */
    ct_cc_trainer_free(t);
    ct_cc_source_close(&src);
}
END_TEST
#endif

int main(void)
{
#ifdef CT_HAVE_CUDA
    if (ct_cck_cuda_device_count() == 0) {
        fprintf(stderr, "SKIP: no CUDA device\n");
        return 77;
    }
#else
    fprintf(stderr, "SKIP: this build has no CUDA backend\n");
    return 77;
#endif
    Suite *s = suite_create("crosscoder_cuda");
    TCase *tc = tcase_create("cuda");
#ifdef CT_HAVE_CUDA
    tcase_add_test(tc, cuda_matches_cpu);
    tcase_add_test(tc, l1_fwbw_matches_cpu);
    tcase_add_test(tc, l1_training_matches_cpu);
    tcase_add_test(tc, l1_training_deterministic);
    tcase_add_test(tc, batchtopk_refused);
#endif
    suite_add_tcase(s, tc);
#ifdef CT_HAVE_CUDA
    tcase_set_timeout(tc, 120);
    return ct_test_run_forking(s, 0); /* main has initialised CUDA */
#else
    return ct_test_run(s);
#endif
}

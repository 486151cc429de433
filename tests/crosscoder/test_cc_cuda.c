/* CUDA crosscoder kernels against their CPU references. Without the CUDA backend or a
 * device it prints "SKIP: ..." and exits 77, which CTest counts as skipped. */
#include "common/error.h"
#include "crosscoder/crosscoder.h"
#include "crosscoder/loss.h"
#include "crosscoder/loss_internal.h"
#include "crosscoder/source.h"
#include "crosscoder/train.h"
#include "kernels/crosscoder_kernels.h"
#include "kernels/topk_bin.h"
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

/* The L1 loss and gradient on the GPU, with the dense or the active-entry kernels,
 * against ct_cc_forward_backward on the CPU (dense path), at shapes that are not
 * multiples of the block sizes. */
static void check_fwbw(int M, int d, int H, int B, float lambda, int sparse)
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
    ct_cck_cuda_cc *w = NULL;
    ck_assert_int_eq(ct_cck_cuda_cc_create(M, d, H, B, &w), 0);
    double *rowacc = malloc(sizeof(double) * (size_t)B * (2 * M + 1));
    float *fsum = malloc(4 * (size_t)H), *nsum = malloc(4 * (size_t)H);
    size_t nnz = 0;
    ct_cck_cuda_select sel = CT_CCK_CUDA_SELECT_INIT;
    sel.sparse_below = sparse ? 2.0f : 0.0f;
    ct_cck_cuda_forward_info info;
    ck_assert_int_eq(ct_cck_cuda_cc_forward(w, dp, dx, B, &sel, &info), 0);
    ck_assert_int_eq(info.sparse, sparse);
    ck_assert_int_eq(ct_cck_cuda_cc_backward(w, dp, dx, B, lambda, 0.0f, dg), 0);
    ck_assert_int_eq(ct_cck_cuda_cc_results(w, B, rowacc, fsum, nsum, &nnz), 0);
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
        fprintf(stderr, "fwbw %s M=%d d=%d H=%d B=%d: grad %s rel err %.3g\n", sparse ? "sparse" : "dense", M, d, H,
                B, names[k], e);
        ck_assert_msg(e <= 1e-4, "gradient of %s: relative error %.3g", names[k], e);
    }
    /* a forward-only pass leaves the gradient alone and gives the same sums */
    double *rowacc2 = malloc(sizeof(double) * (size_t)B * (2 * M + 1));
    size_t nnz2 = 0;
    ck_assert_int_eq(ct_cck_cuda_cc_forward(w, dp, dx, B, &sel, NULL), 0);
    ck_assert_int_eq(ct_cck_cuda_cc_results(w, B, rowacc2, fsum, nsum, &nnz2), 0);
    ck_assert_uint_eq(nnz2, nnz);
    ck_assert_int_eq(memcmp(rowacc, rowacc2, sizeof(double) * (size_t)B * (2 * M + 1)), 0);
    ck_assert_int_eq(ct_cck_cuda_cc_forward(w, dp, dx, B + 1, NULL, NULL), CT_EINVAL);
    ck_assert_int_eq(ct_cck_cuda_cc_backward(w, dp, dx, B, lambda, 1.0f, dg), CT_EINVAL); /* no aux yet */
    ct_cck_cuda_cc_free(w);
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
    for (int sparse = 0; sparse < 2; sparse++) {
        check_fwbw(2, 48, 160, 37, 0.7f, sparse);
        check_fwbw(3, 300, 700, 129, 2.0f, sparse);
        check_fwbw(2, 64, 96, 5, 0.0f, sparse); /* λ = 0: the decoder-norm term is skipped */
    }
    /* the active-entry kernels' other cases: rows wider than one column tile, and a
     * width that is not a multiple of 4 (the scalar dot products) */
    check_fwbw(2, 700, 300, 70, 1.0f, 1);
    check_fwbw(3, 37, 200, 50, 1.0f, 1);
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


/* A CPU and a GPU run of the same config; returns a copy of the (shared) initial
 * parameters. */
static float *open_pair(const ct_cc_config *c, run *cpu, run *gpu, size_t *np)
{
    run_open(cpu, c, CT_DEVICE_CPU);
    run_open(gpu, c, CT_DEVICE_CUDA);
    *np = ct_cc_trainer_model(cpu->t)->n_params;
    float *init = malloc(*np * 4);
    memcpy(init, ct_cc_trainer_model(cpu->t)->mem, *np * 4);
    ck_assert_int_eq(memcmp(init, ct_cc_trainer_model(gpu->t)->mem, *np * 4), 0);
    return init;
}

/* ‖Δ_gpu − Δ_cpu‖ / ‖Δ_cpu‖ for the parameters' change from init. */
static double updates_rel_err(const float *init, const float *pc, const float *pg, size_t np)
{
    double dd = 0.0, dn = 0.0;
    for (size_t i = 0; i < np; i++) {
        double u = (double)pg[i] - init[i], v = (double)pc[i] - init[i];
        dd += (u - v) * (u - v);
        dn += v * v;
    }
    ck_assert(dn > 0.0);
    return sqrt(dd / dn);
}

/* Five training steps on the GPU against the CPU, both on the dense or both on the
 * active-entry path: per-step losses, then the parameters and their change from the
 * init. */
static void check_training(int path)
{
    ct_cc_config c = train_config(2, 64, 512, 96, 5);
    c.path = path;
    run cpu, gpu;
    size_t np;
    float *init = open_pair(&c, &cpu, &gpu, &np);
    for (long s = 0; s < c.steps; s++) {
        ct_cc_losses a, b;
        ck_assert_int_eq(ct_cc_trainer_step(cpu.t, &a), 0);
        ck_assert_int_eq(ct_cc_trainer_step(gpu.t, &b), 0);
        fprintf(stderr, "step %ld: loss cpu %.9g gpu %.9g, L0 cpu %.3f gpu %.3f\n", s, a.loss, b.loss, a.l0, b.l0);
        ck_assert_int_eq(b.sparse, path == CT_CC_PATH_SPARSE);
        ck_assert_msg(fabs(a.loss - b.loss) <= 1e-4 * a.loss, "step %ld loss", s);
        ck_assert_msg(fabs(a.l1 - b.l1) <= 1e-4 * a.l1, "step %ld L1", s);
        ck_assert_msg(fabs(a.l0 - b.l0) <= 1e-3 * a.l0, "step %ld L0", s);
    }
    const float *pc = ct_cc_trainer_model(cpu.t)->mem, *pg = ct_cc_trainer_model(gpu.t)->mem;
    double e = rel_err(pg, pc, np), u = updates_rel_err(init, pc, pg, np);
    fprintf(stderr, "after %ld steps: parameters rel err %.3g, updates rel err %.3g\n", c.steps, e, u);
    ck_assert_msg(e <= 1e-4, "parameters differ by %.3g relative", e);
    ck_assert_msg(u <= 1e-2, "updates differ by %.3g relative", u);
    free(init);
    run_close(&cpu);
    run_close(&gpu);
}

START_TEST(l1_training_matches_cpu)
{
    check_training(CT_CC_PATH_DENSE);
    check_training(CT_CC_PATH_SPARSE);
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

/* Two CUDA runs of c.steps give the same bytes, and a run resumed on the GPU from the
 * state saved halfway continues exactly as the uninterrupted one. */
static void check_deterministic(const ct_cc_config *c)
{
    void *a, *b, *mid;
    size_t la, lb, lm;
    train_state(c, c->steps, &a, &la);
    train_state(c, c->steps, &b, &lb);
    ck_assert_uint_eq(la, lb);
    ck_assert_int_eq(memcmp(a, b, la), 0);
    train_state(c, c->steps / 2, &mid, &lm);
    run r;
    run_open(&r, c, CT_DEVICE_CUDA);
    ck_assert_int_eq(ct_cc_trainer_restore(r.t, mid, lm, "mid"), 0);
    ck_assert_int_eq(ct_cc_trainer_run(r.t), 0);
    ck_assert_int_eq(ct_cc_trainer_steps_done(r.t), c->steps);
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

START_TEST(l1_training_deterministic)
{
    ct_cc_config c = train_config(2, 256, 2048, 512, 4);
    check_deterministic(&c);
    c.path = CT_CC_PATH_SPARSE;
    check_deterministic(&c);
}
END_TEST

/* Values k/8 with |k| <= 8: products and sums of a few hundred of them are exact in
 * fp32, so pre-activations, decoder norms and scores come out bit-identical on both
 * devices whatever the summation order, and the selections can be compared exactly. */
static void fill_dyadic(float *x, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((int)(ct_test_splitmix(&seed) % 17) - 8) / 8.0f;
}

/* Device copy of a host array (freed by the caller with ct_cck_cuda_free). */
static void *to_device(const void *h, size_t bytes)
{
    void *p;
    ck_assert_int_eq(ct_cck_cuda_alloc(&p, bytes), 0);
    ck_assert_int_eq(ct_cck_cuda_copy(p, h, bytes, 1), 0);
    return p;
}

/* The three selections on the device against their CPU references, on levels with many
 * exact ties: the top-K at the boundary of a run of ties, all ties kept, K above the
 * positives; the threshold; AuxK's per-row choice. */
START_TEST(selections_match_cpu)
{
    int B = 70, H = 333; /* H not a multiple of the block: every row ends in a partial chunk */
    size_t n = (size_t)B * H;
    float *F0 = malloc(n * 4), *Fc = malloc(n * 4), *Fg = malloc(n * 4), *ns = malloc((size_t)H * 4);
    uint64_t s = 21;
    for (size_t i = 0; i < n; i++) {
        uint64_t r = ct_test_splitmix(&s);
        F0[i] = (r & 1) ? 0.125f * (float)((r >> 1) % 16) : 0.0f;
    }
    for (int j = 0; j < H; j++)
        ns[j] = (float)(ct_test_splitmix(&s) % 4) * 0.5f;
    uint32_t *hist = malloc(CT_CCK_TOPK_BINS * 4);
    size_t *rowcnt = malloc(((size_t)B + 1) * sizeof *rowcnt);
    ct_cck_cuda_cc *w;
    ck_assert_int_eq(ct_cck_cuda_cc_create(1, 8, H, B, &w), 0);
    float *dF = to_device(F0, n * 4), *dns = to_device(ns, (size_t)H * 4);
    size_t Ks[] = {1, 5, 100, 1000, 3000, n};
    for (size_t t = 0; t < sizeof Ks / sizeof *Ks; t++) {
        memcpy(Fc, F0, n * 4);
        float mc = ct_cck_batch_topk(Fc, ns, B, H, Ks[t], hist, rowcnt), mg = -1.0f;
        ck_assert_int_eq(ct_cck_cuda_copy(dF, F0, n * 4, 1), 0);
        ck_assert_int_eq(ct_cck_cuda_batch_topk(w, dF, dns, B, Ks[t], &mg), 0);
        ck_assert_int_eq(ct_cck_cuda_copy(Fg, dF, n * 4, 0), 0);
        ck_assert_msg(memcmp(Fc, Fg, n * 4) == 0, "top-K differs at K=%zu", Ks[t]);
        ck_assert_float_eq(mc, mg);
    }
    memcpy(Fc, F0, n * 4);
    ct_cck_threshold_mask(Fc, ns, B, H, 0.75f);
    ck_assert_int_eq(ct_cck_cuda_copy(dF, F0, n * 4, 1), 0);
    ck_assert_int_eq(ct_cck_cuda_threshold_mask(dF, dns, B, H, 0.75f), 0);
    ck_assert_int_eq(ct_cck_cuda_copy(Fg, dF, n * 4, 0), 0);
    ck_assert_int_eq(memcmp(Fc, Fg, n * 4), 0);
    /* AuxK */
    uint8_t *dead = malloc((size_t)H);
    for (int j = 0; j < H; j++)
        dead[j] = j % 3 != 1;
    ck_assert_int_eq(ct_cck_cuda_copy(dF, F0, n * 4, 1), 0);
    float *dA;
    ck_assert_int_eq(ct_cck_cuda_alloc((void **)&dA, n * 4), 0);
    int kks[] = {1, 4, 17, H};
    for (size_t t = 0; t < sizeof kks / sizeof *kks; t++) {
        ct_cck_csr a = {0};
        ck_assert_int_eq(ct_cck_aux_select(F0, ns, dead, B, H, kks[t], rowcnt, &a), 0);
        memset(Fc, 0, n * 4);
        for (int b = 0; b < B; b++)
            for (size_t e = a.row_ptr[b]; e < a.row_ptr[b + 1]; e++)
                Fc[(size_t)b * H + a.col[e]] = a.val[e];
        ct_cck_csr_free(&a);
        ck_assert_int_eq(ct_cck_cuda_aux_select(w, dF, dns, dead, B, kks[t], dA), 0);
        ck_assert_int_eq(ct_cck_cuda_copy(Fg, dA, n * 4, 0), 0);
        ck_assert_msg(memcmp(Fc, Fg, n * 4) == 0, "AuxK choice differs at k_aux=%d", kks[t]);
    }
    ct_cck_cuda_free(dA);
    ct_cck_cuda_free(dF);
    ct_cck_cuda_free(dns);
    ct_cck_cuda_cc_free(w);
    free(F0);
    free(Fc);
    free(Fg);
    free(ns);
    free(hist);
    free(rowcnt);
    free(dead);
}
END_TEST

static ct_cc_config topk_config(int M, int d, int H, int B, long steps)
{
    ct_cc_config c = train_config(M, d, H, B, steps);
    c.type = CT_CC_BATCHTOPK;
    c.k_start = 12;
    c.k_end = 3;
    c.k_anneal_steps = steps / 2;
    c.threshold_start_step = 1;
    c.threshold_beta = 0.9f;
    c.k_aux = 5;
    c.dead_tokens = 2 * (long long)B; /* dead latents appear within the run */
    ck_assert_int_eq(ct_cc_config_resolve(&c), 0);
    return c;
}

/* One BatchTopK loss and gradient on dyadic data, on both devices: the same kept
 * entries, dead latents and AuxK choice exactly, losses and gradients to rounding. */
START_TEST(batchtopk_fwbw_matches_cpu)
{
    int M = 2, d = 24, H = 96, B = 64, D = M * d;
    ct_cc_config c = topk_config(M, d, H, B, 10);
    ct_crosscoder *cc;
    ck_assert_int_eq(ct_cc_create(&c, &cc), 0);
    size_t np = cc->n_params, BH = (size_t)B * H;
    fill_dyadic(cc->mem, np, 31);
    float *X = malloc(sizeof(float) * (size_t)B * D);
    fill_dyadic(X, (size_t)B * D, 32);
    uint64_t *since = malloc(sizeof(uint64_t) * H);
    for (int j = 0; j < H; j++)
        since[j] = j % 2 ? 0 : 1000; /* even latents are dead unless they fire here */
    ct_cc_workspace *ws;
    ck_assert_int_eq(ct_cc_workspace_create(&c, B, &ws), 0);
    float *g_cpu = malloc(np * 4), *g_gpu = malloc(np * 4), *f_gpu = malloc(BH * 4);
    float *dp = to_device(cc->mem, np * 4), *dx = to_device(X, (size_t)B * D * 4), *dg;
    ck_assert_int_eq(ct_cck_cuda_alloc((void **)&dg, np * 4), 0);
    ct_cck_cuda_cc *w;
    ck_assert_int_eq(ct_cck_cuda_cc_create(M, d, H, B, &w), 0);
    double *rowacc = malloc(sizeof(double) * (size_t)B * (2 * M + 1));
    float *fsum = malloc(4 * (size_t)H), *nsum = malloc(4 * (size_t)H);
    uint8_t *dead = malloc((size_t)H);
    /* top-K with AuxK, then the inference threshold, each on the dense and on the
     * active-entry kernels */
    for (int r = 0; r < 4; r++) {
        int mode = r / 2, sparse = r % 2;
        ct_cc_lossopt o = CT_CC_LOSSOPT_INIT;
        o.path = CT_CC_PATH_DENSE;
        o.k = 3;
        o.since_fired = mode == 0 ? since : NULL;
        o.use_threshold = mode == 1;
        o.threshold = 1.5f;
        ct_cc_losses l = {0};
        ck_assert_int_eq(ct_cc_forward_backward(cc, X, B, &o, ws, &l, g_cpu), 0);
        ck_assert(l.l0 > 0.0);
        ct_cck_cuda_select sel = CT_CCK_CUDA_SELECT_INIT;
        sel.topk = 1;
        sel.use_threshold = o.use_threshold;
        sel.threshold = o.threshold;
        sel.K = (size_t)o.k * B;
        sel.keep_relu = mode == 0;
        sel.sparse_below = sparse ? 2.0f : 0.0f;
        ct_cck_cuda_forward_info info;
        size_t nnz;
        ck_assert_int_eq(ct_cck_cuda_cc_forward(w, dp, dx, B, &sel, &info), 0);
        ck_assert_int_eq(info.sparse, sparse);
        ck_assert_int_eq(ct_cck_cuda_cc_results(w, B, rowacc, fsum, nsum, &nnz), 0);
        ck_assert_int_eq(ct_cck_cuda_cc_activations(w, B, f_gpu, NULL), 0);
        ck_assert_msg(memcmp(f_gpu, ct_cc_workspace_f(ws), BH * 4) == 0, "mode %d: kept entries differ", mode);
        ck_assert_uint_eq(nnz, (size_t)llround(l.l0 * B));
        ck_assert_float_eq(info.min_kept, l.min_kept);
        ct_cc_losses lg = {0};
        ct_cc_losses_finish(rowacc, B, M, fsum, nsum, H, 0.0f, &lg);
        ck_assert_msg(fabs(lg.l2 - l.l2) <= 1e-6 * l.l2, "mode %d: L2 gpu %.9g cpu %.9g", mode, lg.l2, l.l2);
        float aux_scale = 0.0f;
        if (mode == 0) {
            int nd = ct_cc_dead_latents(&c, fsum, since, B, dead);
            ck_assert_int_eq(nd, l.n_dead);
            ck_assert_int_gt(nd, 0);
            double num, den;
            ck_assert_int_eq(ct_cck_cuda_cc_aux(w, dp, dx, B, dead, nd < c.k_aux ? nd : c.k_aux, &num, &den), 0);
            aux_scale = ct_cc_aux_finish(&c, num, den, B, &lg);
            ck_assert(aux_scale != 0.0f);
            ck_assert_msg(fabs(lg.aux - l.aux) <= 1e-6 * l.aux, "AuxK gpu %.9g cpu %.9g", lg.aux, l.aux);
        }
        ck_assert_int_eq(ct_cck_cuda_cc_backward(w, dp, dx, B, 0.0f, aux_scale, dg), 0);
        ck_assert_int_eq(ct_cck_cuda_copy(g_gpu, dg, np * 4, 0), 0);
        ct_cc_params gc, gg;
        ct_cc_params_bind(g_cpu, M, d, H, &gc);
        ct_cc_params_bind(g_gpu, M, d, H, &gg);
        const float *pc[4] = {gc.W_enc, gc.b_enc, gc.W_dec, gc.b_dec}, *pg[4] = {gg.W_enc, gg.b_enc, gg.W_dec, gg.b_dec};
        size_t nn[4] = {(size_t)D * H, (size_t)H, (size_t)D * H, (size_t)D};
        for (int k = 0; k < 4; k++) {
            double e = rel_err(pg[k], pc[k], nn[k]);
            fprintf(stderr, "batchtopk fwbw mode %d %s: grad %d rel err %.3g\n", mode, sparse ? "sparse" : "dense", k,
                    e);
            ck_assert_msg(e <= 1e-5, "mode %d: gradient %d differs by %.3g", mode, k, e);
        }
    }
    ct_cck_cuda_cc_free(w);
    ct_cck_cuda_free(dp);
    ct_cck_cuda_free(dx);
    ct_cck_cuda_free(dg);
    ct_cc_workspace_free(ws);
    ct_cc_free(cc);
    free(X);
    free(since);
    free(g_cpu);
    free(g_gpu);
    free(f_gpu);
    free(rowacc);
    free(fsum);
    free(nsum);
    free(dead);
}
END_TEST

/* BatchTopK training on both devices through the trainer: k annealing, the θ EMA and
 * AuxK run on the host for both, so per-step figures and the end state agree closely.
 * Not bit for bit: after the first update the parameters differ by rounding, and a
 * score that lands on the other side of the top-K boundary moves one latent's column
 * differently (worth a few percent of the update norm at most, hence the tolerances). */
static void check_topk_training(int path)
{
    ct_cc_config c = topk_config(2, 32, 256, 64, 8);
    c.path = path;
    run cpu, gpu;
    size_t np;
    float *init = open_pair(&c, &cpu, &gpu, &np);
    int dead_steps = 0;
    for (long s = 0; s < c.steps; s++) {
        ct_cc_losses a, b;
        ck_assert_int_eq(ct_cc_trainer_step(cpu.t, &a), 0);
        ck_assert_int_eq(ct_cc_trainer_step(gpu.t, &b), 0);
        fprintf(stderr, "topk step %ld: loss cpu %.9g gpu %.9g, L0 %.3f/%.3f, dead %d/%d, aux %.6g/%.6g\n", s,
                a.loss, b.loss, a.l0, b.l0, a.n_dead, b.n_dead, a.aux, b.aux);
        ck_assert_int_eq(b.sparse, path == CT_CC_PATH_SPARSE);
        ck_assert_msg(fabs(a.loss - b.loss) <= 1e-3 * a.loss, "step %ld loss", s);
        ck_assert(a.l0 == b.l0); /* k·B kept on both */
        ck_assert_int_le(abs(a.n_dead - b.n_dead), 1);
        ck_assert_msg(fabs(a.aux - b.aux) <= 1e-2 * (a.aux > 0 ? a.aux : 1), "step %ld AuxK", s);
        dead_steps += a.n_dead > 0;
    }
    ck_assert_int_gt(dead_steps, 0); /* AuxK took part */
    const ct_crosscoder *mc = ct_cc_trainer_model(cpu.t), *mg = ct_cc_trainer_model(gpu.t);
    ck_assert(mc->threshold > 0.0f);
    ck_assert_msg(fabsf(mc->threshold - mg->threshold) <= 1e-3f * mc->threshold, "θ cpu %g gpu %g",
                  mc->threshold, mg->threshold);
    double u = updates_rel_err(init, mc->mem, mg->mem, np);
    fprintf(stderr, "batchtopk after %ld steps: updates rel err %.3g\n", c.steps, u);
    ck_assert_msg(u <= 5e-2, "updates differ by %.3g relative", u);
    free(init);
    run_close(&cpu);
    run_close(&gpu);
}

START_TEST(batchtopk_training_matches_cpu)
{
    check_topk_training(CT_CC_PATH_DENSE);
    check_topk_training(CT_CC_PATH_SPARSE);
}
END_TEST

/* The same for BatchTopK, through k annealing, θ tracking and AuxK. */
START_TEST(batchtopk_training_deterministic)
{
    ct_cc_config c = topk_config(2, 128, 1024, 256, 6);
    check_deterministic(&c);
    c.path = CT_CC_PATH_SPARSE;
    check_deterministic(&c);
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
    tcase_add_test(tc, selections_match_cpu);
    tcase_add_test(tc, batchtopk_fwbw_matches_cpu);
    tcase_add_test(tc, batchtopk_training_matches_cpu);
    tcase_add_test(tc, batchtopk_training_deterministic);
#endif
    suite_add_tcase(s, tc);
#ifdef CT_HAVE_CUDA
    tcase_set_timeout(tc, 120);
    return ct_test_run_forking(s, 0); /* main has initialised CUDA */
#else
    return ct_test_run(s);
#endif
}

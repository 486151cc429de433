/* Every CUDA kernel against its CPU reference on the same random inputs, and the whole
 * model on CUDA against the PyTorch fixtures. Without a CUDA device (or a build
 * without CUDA) it prints "SKIP: ..." and exits 77, which CTest counts as skipped. */
#include "common/error.h"
#include "kernels/kernels.h"
#include "models/forward/model.h"
#include "tests/forward/fixture.h"
#include "tests/kernels/kernel_ops.h"
#include "tests/support/testutil.h"

static ct_kern *CPU, *GPU;

/* A host array and its device copy. */
typedef struct {
    float *h;
    void *d;
    size_t n;
} buf;

static buf mk(size_t n, unsigned *seed, float scale)
{
    buf b = {kt_rand(n, seed, scale), NULL, n};
    ck_assert_int_eq(ct_kern_alloc(GPU, n * 4 + 4, &b.d), 0);
    ck_assert_int_eq(ct_kern_upload(GPU, b.d, b.h, n * 4), 0);
    return b;
}

static buf mki(const int32_t *v, size_t n)
{
    buf b = {malloc(n * 4 + 4), NULL, n};
    memcpy(b.h, v, n * 4);
    ck_assert_int_eq(ct_kern_alloc(GPU, n * 4 + 4, &b.d), 0);
    ck_assert_int_eq(ct_kern_upload(GPU, b.d, b.h, n * 4), 0);
    return b;
}

static void same(const char *what, buf b, double tol)
{
    float *g = malloc(b.n * 4 + 4);
    ck_assert_int_eq(ct_kern_sync(GPU), 0);
    ck_assert_int_eq(ct_kern_download(GPU, g, b.d, b.n * 4), 0);
    double d = kt_maxdiff(g, b.h, b.n), scale = fmax(1.0, kt_maxabs(b.h, b.n));
    ck_assert_msg(d <= tol * scale, "%s: CUDA differs from CPU by %.3g (scale %.3g)", what, d,
                  scale);
    printf("%-22s max |cuda - cpu| = %.3g\n", what, d);
    free(g);
}

static void drop(buf b)
{
    ct_kern_release(GPU, b.d);
    free(b.h);
}

#define F(b) ((float *)(b).d)
#define I(b) ((int32_t *)(b).d)

START_TEST(test_ops)
{
    unsigned s = 11;
    int B = 2, T = 67, nh = 3, hd = 16, C = nh * hd, N = B * T, OC = 40, V = 1000, I = 24;
    size_t NC = (size_t)N * C;
    /* matmul */
    buf x = mk(NC, &s, 1), w = mk((size_t)OC * C, &s, 1), bias = mk(OC, &s, 1);
    buf out = mk((size_t)N * OC, &s, 1);
    ck_assert_int_eq(ct_kern_matmul_fwd(CPU, out.h, x.h, w.h, bias.h, N, C, OC, 1), 0);
    ck_assert_int_eq(ct_kern_matmul_fwd(GPU, F(out), F(x), F(w), F(bias), N, C, OC, 1), 0);
    same("matmul_fwd", out, 1e-5);
    buf dx = mk(NC, &s, 1), dw = mk((size_t)OC * C, &s, 1), db = mk(OC, &s, 1);
    ct_kern_matmul_bwd(CPU, dx.h, dw.h, db.h, out.h, x.h, w.h, N, C, OC, 1);
    ct_kern_matmul_bwd(GPU, F(dx), F(dw), F(db), F(out), F(x), F(w), N, C, OC, 1);
    same("matmul_bwd dinp", dx, 1e-5);
    same("matmul_bwd dw", dw, 1e-5);
    same("matmul_bwd dbias", db, 1e-5);
    /* layernorm */
    buf lo = mk(NC, &s, 1), m = mk(N, &s, 1), r = mk(N, &s, 1), lw = mk(C, &s, 1), lb = mk(C, &s, 1);
    ct_kern_layernorm_fwd(CPU, lo.h, m.h, r.h, x.h, lw.h, lb.h, N, C, 1e-5f);
    ct_kern_layernorm_fwd(GPU, F(lo), F(m), F(r), F(x), F(lw), F(lb), N, C, 1e-5f);
    same("layernorm_fwd", lo, 1e-5);
    same("layernorm_fwd rstd", r, 1e-5);
    buf ldw = mk(C, &s, 1), ldb = mk(C, &s, 1);
    ct_kern_layernorm_bwd(CPU, dx.h, ldw.h, ldb.h, lo.h, x.h, lw.h, m.h, r.h, N, C);
    ct_kern_layernorm_bwd(GPU, F(dx), F(ldw), F(ldb), F(lo), F(x), F(lw), F(m), F(r), N, C);
    same("layernorm_bwd dinp", dx, 1e-5);
    same("layernorm_bwd dw", ldw, 1e-5);
    same("layernorm_bwd db", ldb, 1e-5);
    /* split, rope, attention */
    buf qkv = mk(3 * NC, &s, 2), q = mk(NC, &s, 1), k = mk(NC, &s, 1), v = mk(NC, &s, 1);
    ct_kern_qkv_split_fwd(CPU, q.h, k.h, v.h, qkv.h, B, T, nh, hd, 1.2f);
    ct_kern_qkv_split_fwd(GPU, F(q), F(k), F(v), F(qkv), B, T, nh, hd, 1.2f);
    same("qkv_split_fwd q", q, 0);
    same("qkv_split_fwd v", v, 0);
    buf cs = mk((size_t)T * 4, &s, 1), sn = mk((size_t)T * 4, &s, 1);
    ct_kern_rope_fwd(CPU, q.h, cs.h, sn.h, B, nh, T, hd, 8);
    ct_kern_rope_fwd(GPU, F(q), F(cs), F(sn), B, nh, T, hd, 8);
    same("rope_fwd", q, 1e-6);
    buf sl = mk(nh, &s, 0.5f), ao = mk(NC, &s, 1), p = mk((size_t)B * nh * T * T, &s, 1);
    for (int alibi = 0; alibi < 2; alibi++) {
        const float *slc = alibi ? sl.h : NULL, *slg = alibi ? F(sl) : NULL;
        ct_kern_attention_fwd(CPU, ao.h, p.h, q.h, k.h, v.h, slc, B, T, nh, hd, 0.25f);
        ct_kern_attention_fwd(GPU, F(ao), F(p), F(q), F(k), F(v), slg, B, T, nh, hd, 0.25f);
        same("attention_fwd", ao, 1e-5);
        same("attention_fwd probs", p, 1e-5);
    }
    buf dq = mk(NC, &s, 1), dk = mk(NC, &s, 1), dv = mk(NC, &s, 1);
    ct_kern_attention_bwd(CPU, dq.h, dk.h, dv.h, x.h, p.h, q.h, k.h, v.h, B, T, nh, hd, 0.25f);
    ct_kern_attention_bwd(GPU, F(dq), F(dk), F(dv), F(x), F(p), F(q), F(k), F(v), B, T, nh, hd,
                          0.25f);
    same("attention_bwd dq", dq, 1e-5);
    same("attention_bwd dk", dk, 1e-5);
    same("attention_bwd dv", dv, 1e-5);
    ct_kern_rope_bwd(CPU, dq.h, cs.h, sn.h, B, nh, T, hd, 8);
    ct_kern_rope_bwd(GPU, F(dq), F(cs), F(sn), B, nh, T, hd, 8);
    same("rope_bwd", dq, 1e-6);
    ct_kern_qkv_split_bwd(CPU, qkv.h, dq.h, dk.h, dv.h, qkv.h, B, T, nh, hd, 1.2f);
    ct_kern_qkv_split_bwd(GPU, F(qkv), F(dq), F(dk), F(dv), F(qkv), B, T, nh, hd, 1.2f);
    same("qkv_split_bwd", qkv, 1e-6);
    /* activations */
    buf a = mk((size_t)N * 2 * I, &s, 3), ag = mk((size_t)N * 2 * I, &s, 1);
    buf ao2 = mk((size_t)N * I, &s, 1);
    for (int kind = 0; kind < 2; kind++) {
        ct_kern_gelu_fwd(CPU, ag.h, a.h, a.n, (ct_gelu_kind)kind);
        ct_kern_gelu_fwd(GPU, F(ag), F(a), a.n, (ct_gelu_kind)kind);
        same("gelu_fwd", ag, 1e-6);
        ct_kern_gelu_bwd(CPU, ag.h, a.h, ag.h, a.n, (ct_gelu_kind)kind);
        ct_kern_gelu_bwd(GPU, F(ag), F(a), F(ag), a.n, (ct_gelu_kind)kind);
        same("gelu_bwd", ag, 1e-5);
    }
    ct_kern_swiglu_fwd(CPU, ao2.h, a.h, N, I);
    ct_kern_swiglu_fwd(GPU, F(ao2), F(a), N, I);
    same("swiglu_fwd", ao2, 1e-6);
    ct_kern_swiglu_bwd(CPU, ag.h, ao2.h, a.h, N, I);
    ct_kern_swiglu_bwd(GPU, F(ag), F(ao2), F(a), N, I);
    same("swiglu_bwd", ag, 1e-5);
    /* rows */
    int32_t ids[5] = {3, 999, 0, 3, 17}, tg[5] = {1, -1, 999, 5, 0}, rows[5] = {4, 0, 4, 2, 1};
    buf bi = mki(ids, 5), bt = mki(tg, 5), br = mki(rows, 5);
    buf wte = mk((size_t)V * C, &s, 1), e = mk((size_t)5 * C, &s, 1);
    ct_kern_embedding_fwd(CPU, e.h, ids, wte.h, 5, C);
    ct_kern_embedding_fwd(GPU, F(e), I(bi), F(wte), 5, C);
    same("embedding_fwd", e, 0);
    ct_kern_scatter_add_rows(CPU, x.h, e.h, rows, 5, C);
    ct_kern_scatter_add_rows(GPU, F(x), F(e), I(br), 5, C);
    same("scatter_add_rows", x, 1e-6);
    ct_kern_gather_rows(CPU, e.h, x.h, rows, 5, C);
    ct_kern_gather_rows(GPU, F(e), F(x), I(br), 5, C);
    same("gather_rows", e, 0);
    buf lg = mk((size_t)5 * V, &s, 10), ce = mk(5, &s, 1);
    ct_kern_cross_entropy(CPU, ce.h, lg.h, tg, 5, V);
    ct_kern_cross_entropy(GPU, F(ce), F(lg), I(bt), 5, V);
    same("cross_entropy", ce, 1e-5);
    ct_kern_logsoftmax(CPU, lg.h, lg.h, 5, V);
    ct_kern_logsoftmax(GPU, F(lg), F(lg), 5, V);
    same("logsoftmax", lg, 1e-5);
    buf all[] = {x, w, bias, out, dx, dw, db, lo, m, r, lw, lb, ldw, ldb, qkv, q, k, v, cs, sn,
                 sl, ao, p, dq, dk, dv, a, ag, ao2, bi, bt, br, wte, e, lg, ce};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        drop(all[i]);
}
END_TEST

/* The model on CUDA against the PyTorch fixtures (forward and backward). */
START_TEST(test_model_cuda)
{
    static const char *cases[] = {"neox_parallel", "neox_sequential", "bloom_6head", "olmo_untied",
                                  "olmo_tied_clip"};
    char rel[256], path[1024];
    ct_model_config cfg;
    fx_st wst, ref;
    snprintf(rel, sizeof rel, "tests/fixtures/forward/%s/config.json", cases[_i]);
    ck_assert_int_eq(fx_config(ct_test_src(path, sizeof path, rel), &cfg), 0);
    snprintf(rel, sizeof rel, "tests/fixtures/forward/%s/model.safetensors", cases[_i]);
    ck_assert_int_eq(fx_st_open(ct_test_src(path, sizeof path, rel), &wst), 0);
    snprintf(rel, sizeof rel, "tests/fixtures/forward/%s/reference.safetensors", cases[_i]);
    ck_assert_int_eq(fx_st_open(ct_test_src(path, sizeof path, rel), &ref), 0);
    ct_model_options o = CT_MODEL_OPTIONS_INIT;
    o.device = CT_DEVICE_CUDA;
    ct_model *mdl;
    ck_assert_msg(ct_model_create(&cfg, fx_st_getter, &wst, &o, &mdl) == 0, "%s",
                  ct_error_message());
    size_t n = 0;
    int32_t *ids = fx_st_i32(&ref, "ids", &n), *pos = fx_st_i32(&ref, "pos", NULL);
    int32_t *plus = fx_st_i32(&ref, "plus", NULL), *minus = fx_st_i32(&ref, "minus", NULL);
    int B = 2, T = (int)n / 2, V = cfg.vocab, C = cfg.hidden;
    float *logits = malloc(sizeof(float) * n * V), *want = fx_st_f32(&ref, "logits", NULL);
    ct_forward_args a = CT_FORWARD_ARGS_INIT;
    a.n_seq = B;
    a.seq_len = T;
    a.ids = ids;
    a.logits = logits;
    ck_assert_msg(ct_model_forward(mdl, &a) == 0, "%s", ct_error_message());
    double d = kt_maxdiff(logits, want, n * V);
    printf("%s: logits max |cuda - reference| = %.3g\n", cases[_i], d);
    ck_assert(d <= 1e-4);
    /* same inputs, same device: bit-identical */
    float *again = malloc(sizeof(float) * n * V);
    a.logits = again;
    ck_assert_int_eq(ct_model_forward(mdl, &a), 0);
    ck_assert_msg(memcmp(again, logits, sizeof(float) * n * V) == 0, "CUDA forward not deterministic");
    a.logits = logits;
    free(again);
    int32_t rows[2] = {pos[0], T + pos[1]};
    float *grad = malloc(sizeof(float) * n * C), *gw = fx_st_f32(&ref, "grad_1", NULL);
    ct_forward_args g = a;
    g.grad_layer = 1;
    g.n_rows = 2;
    g.rows = rows;
    ck_assert_int_eq(ct_model_forward(mdl, &g), 0);
    ck_assert_msg(ct_model_backward_logit_diff(mdl, plus, minus, grad) == 0, "%s",
                  ct_error_message());
    d = kt_maxdiff(grad, gw, n * C);
    printf("%s: grad_1 max |cuda - reference| = %.3g\n", cases[_i], d);
    ck_assert(d <= 1e-4);
    ct_model_free(mdl);
    fx_st_close(&wst);
    fx_st_close(&ref);
    free(ids), free(pos), free(plus), free(minus), free(logits), free(want), free(grad), free(gw);
}
END_TEST

int main(void)
{
    if (!ct_kern_cuda_available()) {
        printf("SKIP: no CUDA device (or a build without the CUDA backend)\n");
        return 77;
    }
    if (ct_kern_create(CT_DEVICE_CPU, &CPU) || ct_kern_create(CT_DEVICE_CUDA, &GPU)) {
        fprintf(stderr, "cannot create kernel contexts: %s\n", ct_error_message());
        return 1;
    }
    Suite *s = suite_create("kernels_cuda");
    TCase *tc = tcase_create("cuda");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_ops);
    tcase_add_loop_test(tc, test_model_cuda, 0, 5);
    suite_add_tcase(s, tc);
    int rc = ct_test_run_forking(s, 0); /* a CUDA context does not survive fork() */
    ct_kern_free(CPU);
    ct_kern_free(GPU);
    return rc;
}

/* Crosscoder kernels: sparse against dense (forward, losses, every gradient), the
 * CSR/CSC gathers against plain loops, fixed-order reductions across thread counts,
 * BatchTopK selection against a sort, and the trainer's k annealing, θ EMA and dead
 * latent bookkeeping. */
#include "common/error.h"
#include "crosscoder/crosscoder.h"
#include "crosscoder/loss.h"
#include "crosscoder/rng.h"
#include "crosscoder/train.h"
#include "kernels/crosscoder_kernels.h"
#include "tests/crosscoder/ref.h"
#include "tests/support/testutil.h"

#include <math.h>
#include <omp.h>

static void fill_normal(float *x, size_t n, double sd, uint64_t seed)
{
    ct_cc_rng r;
    ct_cc_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        double a, b;
        ct_cc_rng_normal2(&r, &a, &b);
        x[i] = (float)(sd * a);
    }
}

/* A model whose b_enc makes about `density` of the latents active. */
static ct_crosscoder *model_with_density(int type, int M, int d, int H, const float *X, int B, double density)
{
    ct_cc_config c = CT_CC_CONFIG_INIT;
    c.type = type;
    c.M = M;
    c.d = d;
    c.H = H;
    c.batch = B;
    ct_crosscoder *cc;
    ck_assert_int_eq(ct_cc_create(&c, &cc), 0);
    ct_cc_init(cc, 77);
    int D = M * d;
    float *col = malloc(sizeof(float) * B);
    for (int j = 0; j < H; j++) {
        for (int b = 0; b < B; b++) {
            double p = 0;
            for (int i = 0; i < D; i++)
                p += (double)X[b * D + i] * cc->p.W_enc[(size_t)i * H + j];
            col[b] = (float)p;
        }
        /* the (1 − density) quantile, negated */
        for (int a = 1; a < B; a++) {
            float v = col[a];
            int u = a - 1;
            while (u >= 0 && col[u] > v) {
                col[u + 1] = col[u];
                u--;
            }
            col[u + 1] = v;
        }
        int q = (int)((1 - density) * B);
        cc->p.b_enc[j] = -col[q < B ? q : B - 1] + 1e-4f;
    }
    free(col);
    fill_normal(cc->p.b_dec, (size_t)D, 0.1, 5);
    return cc;
}

static double maxabs(const float *x, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(x[i]));
    return m;
}

START_TEST(sparse_matches_dense)
{
    /* the second shape's W_dec exceeds the cache budget: the sliced sparse path */
    static const int shapes[2][4] = {{3, 40, 96, 37}, {2, 512, 4200, 24}};
    int M = shapes[_i][0], d = shapes[_i][1], H = shapes[_i][2], B = shapes[_i][3];
    int D = M * d;
    ck_assert_int_eq(ct_cck_sparse_chunk(H, D) < D, _i == 1);
    float *X = malloc(sizeof(float) * B * D);
    fill_normal(X, (size_t)B * D, 1.0, 1);
    for (int type = CT_CC_L1; type <= CT_CC_BATCHTOPK; type++) {
        ct_crosscoder *cc = model_with_density(type, M, d, H, X, B, 0.1);
        ct_cc_workspace *ws;
        ck_assert_int_eq(ct_cc_workspace_create(&cc->cfg, B, &ws), 0);
        size_t n = cc->n_params;
        float *gd = malloc(n * sizeof(float)), *gs = malloc(n * sizeof(float));
        float *xd = malloc(sizeof(float) * B * D);
        uint64_t *since = calloc((size_t)H, sizeof *since);
        for (int j = 0; j < H; j += 3)
            since[j] = 1u << 30; /* some dead latents so AuxK runs too */
        cc->cfg.dead_tokens = 1000;
        cc->cfg.k_aux = 8;
        ct_cc_losses ld = {0}, ls = {0};
        ct_cc_lossopt o = CT_CC_LOSSOPT_INIT;
        o.lambda = 1.3f;
        o.k = 1;
        o.since_fired = type == CT_CC_BATCHTOPK ? since : NULL;
        o.path = CT_CC_PATH_DENSE;
        ck_assert_int_eq(ct_cc_forward_backward(cc, X, B, &o, ws, &ld, gd), 0);
        memcpy(xd, ct_cc_workspace_xhat(ws), sizeof(float) * B * D);
        o.path = CT_CC_PATH_SPARSE;
        ck_assert_int_eq(ct_cc_forward_backward(cc, X, B, &o, ws, &ls, gs), 0);
        ck_assert(!ld.sparse && ls.sparse);
        if (type == CT_CC_L1)
            ck_assert(ld.density > 0.02 && ld.density < 0.3);
        ck_assert(ld.l0 == ls.l0);
        if (type == CT_CC_BATCHTOPK) {
            ck_assert_int_gt(ld.n_dead, 0);
            ck_assert_int_eq(ld.n_dead, ls.n_dead);
            ck_assert(ld.aux > 0);
        }
        /* Tolerance: both paths sum the same products in different orders in fp32, so
         * they agree to a few ulps of the largest term: 1e-5 relative to the max. */
        ck_assert(fabs(ld.loss - ls.loss) <= 1e-5 * fabs(ld.loss));
        ck_assert(fabs(ld.aux - ls.aux) <= 1e-5 * fmax(1, ld.aux));
        const float *xs = ct_cc_workspace_xhat(ws);
        double xm = maxabs(xd, (size_t)B * D), xerr = 0;
        for (int i = 0; i < B * D; i++)
            xerr = fmax(xerr, fabs(xd[i] - xs[i]));
        ck_assert_msg(xerr <= 1e-5 * xm, "x̂ dense vs sparse differ by %g (max %g)", xerr, xm);
        ct_cc_params pd, ps;
        ct_cc_params_bind(gd, M, d, H, &pd);
        ct_cc_params_bind(gs, M, d, H, &ps);
        struct { const char *name; const float *a, *b; size_t n; } parts[] = {
            {"W_enc", pd.W_enc, ps.W_enc, (size_t)D * H}, {"b_enc", pd.b_enc, ps.b_enc, (size_t)H},
            {"W_dec", pd.W_dec, ps.W_dec, (size_t)H * D}, {"b_dec", pd.b_dec, ps.b_dec, (size_t)D}};
        for (int p = 0; p < 4; p++) {
            double m = maxabs(parts[p].a, parts[p].n), err = 0;
            ck_assert_msg(m > 0, "%s gradient is zero", parts[p].name);
            size_t worst = 0;
            for (size_t i = 0; i < parts[p].n; i++)
                if (fabs(parts[p].a[i] - parts[p].b[i]) > err) {
                    err = fabs(parts[p].a[i] - parts[p].b[i]);
                    worst = i;
                }
            ck_assert_msg(err <= 1e-5 * m, "%s[%zu]: dense %.9g sparse %.9g (max %g)", parts[p].name, worst,
                          parts[p].a[worst], parts[p].b[worst], m);
        }
        free(gd);
        free(gs);
        free(xd);
        free(since);
        ct_cc_workspace_free(ws);
        ct_cc_free(cc);
    }
    free(X);
}
END_TEST

START_TEST(gathers_match_loops)
{
    int B = 23, H = 41, D = 19;
    float *F = malloc(sizeof(float) * B * H), *A = malloc(sizeof(float) * B * D);
    fill_normal(F, (size_t)B * H, 1.0, 2);
    fill_normal(A, (size_t)B * D, 1.0, 3);
    for (int e = 0; e < B * H; e++)
        if (F[e] < 0.8f)
            F[e] = 0; /* ~20% active */
    ct_cck_csr a = {0};
    ct_cck_csc c = {0};
    ck_assert_int_eq(ct_cck_csr_from_dense(F, B, H, &a), 0);
    ck_assert_int_eq(ct_cck_csc_from_csr(&a, &c), 0);
    size_t nnz = 0;
    for (int e = 0; e < B * H; e++)
        nnz += F[e] > 0;
    ck_assert_uint_eq(a.nnz, nnz);
    for (int j = 0; j < H; j++)
        for (size_t k = c.col_ptr[j]; k < c.col_ptr[j + 1]; k++) {
            ck_assert_int_eq(a.col[c.pos[k]], j);
            ck_assert(a.val[c.pos[k]] == F[c.row[k] * H + j]);
            if (k > c.col_ptr[j])
                ck_assert_int_lt(c.row[k - 1], c.row[k]);
        }
    float *rows = malloc(sizeof(float) * H * D), *cols = malloc(sizeof(float) * D * H);
    float *cs = malloc(sizeof(float) * H);
    ct_cck_gather_rows(&c, a.val, A, D, rows, 0);
    ct_cck_gather_cols(&c, a.val, A, D, cols, cs, 0);
    for (int j = 0; j < H; j++) {
        double s = 0;
        for (int b = 0; b < B; b++)
            s += F[b * H + j];
        ck_assert(fabs(cs[j] - s) <= 1e-5 * fmax(1, fabs(s)));
        for (int i = 0; i < D; i++) {
            double r = 0;
            for (int b = 0; b < B; b++)
                r += (double)F[b * H + j] * A[b * D + i];
            ck_assert(fabs(rows[j * D + i] - r) <= 1e-5 * fmax(1, fabs(r)));
            ck_assert(rows[j * D + i] == cols[i * H + j]); /* same sums, same order */
        }
    }
    /* accumulate adds */
    float *rows2 = malloc(sizeof(float) * H * D);
    memcpy(rows2, rows, sizeof(float) * H * D);
    ct_cck_gather_rows(&c, a.val, A, D, rows2, 1);
    for (int i = 0; i < H * D; i++)
        ck_assert(fabsf(rows2[i] - 2 * rows[i]) <= 1e-5f * fmaxf(1, fabsf(rows[i])));
    /* sddmm */
    float *W = malloc(sizeof(float) * H * D), *out = malloc(sizeof(float) * a.nnz);
    fill_normal(W, (size_t)H * D, 1.0, 4);
    ct_cck_sddmm(&a, A, W, D, NULL, out);
    for (int b = 0; b < B; b++)
        for (size_t e = a.row_ptr[b]; e < a.row_ptr[b + 1]; e++) {
            double s = 0;
            for (int i = 0; i < D; i++)
                s += (double)A[b * D + i] * W[a.col[e] * D + i];
            ck_assert(fabs(out[e] - s) <= 1e-5 * fmax(1, fabs(s)));
        }
    ct_cck_csr_free(&a);
    ct_cck_csc_free(&c);
    free(F);
    free(A);
    free(rows);
    free(rows2);
    free(cols);
    free(cs);
    free(W);
    free(out);
}
END_TEST


/* Operands larger than the cache budget make the sparse kernels walk columns in slices;
 * check that path against plain loops too. */
START_TEST(sliced_sparse_kernels_match_loops)
{
    int D = 1024, Hbig = 4200, Bsmall = 16;
    ck_assert_int_lt(ct_cck_sparse_chunk(Hbig, D), D); /* really sliced */
    float *W = malloc(sizeof(float) * Hbig * D), *G = malloc(sizeof(float) * Bsmall * D);
    fill_normal(W, (size_t)Hbig * D, 1.0, 21);
    fill_normal(G, (size_t)Bsmall * D, 1.0, 22);
    float *F = calloc((size_t)Bsmall * Hbig, sizeof(float));
    for (int b = 0; b < Bsmall; b++)
        for (int t = 0; t < 3; t++)
            F[(size_t)b * Hbig + (b * 977 + t * 1409) % Hbig] = 0.5f + t;
    ct_cck_csr a = {0};
    ck_assert_int_eq(ct_cck_csr_from_dense(F, Bsmall, Hbig, &a), 0);
    float *bd = malloc(sizeof(float) * D), *Xh = malloc(sizeof(float) * Bsmall * D), *out = malloc(sizeof(float) * a.nnz);
    float *add = malloc(sizeof(float) * Hbig);
    fill_normal(bd, (size_t)D, 1.0, 23);
    fill_normal(add, (size_t)Hbig, 1.0, 24);
    ct_cck_decode_sparse(&a, W, bd, Xh, D);
    ct_cck_sddmm(&a, G, W, D, add, out);
    long bad = 0;
    for (int b = 0; b < Bsmall; b++) {
        for (int i = 0; i < D; i++) {
            double s = bd[i];
            for (size_t e = a.row_ptr[b]; e < a.row_ptr[b + 1]; e++)
                s += (double)a.val[e] * W[(size_t)a.col[e] * D + i];
            bad += !(fabs(Xh[(size_t)b * D + i] - s) <= 1e-4 * fmax(1, fabs(s)));
        }
        for (size_t e = a.row_ptr[b]; e < a.row_ptr[b + 1]; e++) {
            double s = add[a.col[e]];
            for (int i = 0; i < D; i++)
                s += (double)G[(size_t)b * D + i] * W[(size_t)a.col[e] * D + i];
            bad += !(fabs(out[e] - s) <= 1e-4 * fmax(1, fabs(s)));
        }
    }
    ck_assert_int_eq(bad, 0);
    /* gathers: the dense operand A has many rows (Bbig), few latents */
    int Bbig = 4200, Hs = 40;
    float *A = malloc(sizeof(float) * Bbig * D), *F2 = calloc((size_t)Bbig * Hs, sizeof(float));
    fill_normal(A, (size_t)Bbig * D, 1.0, 25);
    for (int b = 0; b < Bbig; b += 7)
        F2[(size_t)b * Hs + (b / 7) % Hs] = 1.0f + 0.001f * b;
    ct_cck_csr a2 = {0};
    ct_cck_csc c2 = {0};
    ck_assert_int_eq(ct_cck_csr_from_dense(F2, Bbig, Hs, &a2), 0);
    ck_assert_int_eq(ct_cck_csc_from_csr(&a2, &c2), 0);
    float *rows = malloc(sizeof(float) * Hs * D), *cols = malloc(sizeof(float) * D * Hs), *cs = malloc(sizeof(float) * Hs);
    ct_cck_gather_rows(&c2, a2.val, A, D, rows, 0);
    ct_cck_gather_cols(&c2, a2.val, A, D, cols, cs, 0);
    for (int j = 0; j < Hs; j++) {
        double csum = 0;
        for (int b = 0; b < Bbig; b++)
            csum += F2[(size_t)b * Hs + j];
        ck_assert(fabs(cs[j] - csum) <= 1e-4 * csum);
        for (int i = 0; i < D; i++) {
            double r = 0;
            for (int b = j * 7; b < Bbig; b += 7 * Hs)
                r += (double)F2[(size_t)b * Hs + j] * A[(size_t)b * D + i];
            bad += !(fabs(rows[(size_t)j * D + i] - r) <= 1e-4 * fmax(1, fabs(r)));
            bad += rows[(size_t)j * D + i] != cols[(size_t)i * Hs + j];
        }
    }
    ck_assert_int_eq(bad, 0);
    ct_cck_csr_free(&a);
    ct_cck_csr_free(&a2);
    ct_cck_csc_free(&c2);
    free(W);
    free(G);
    free(F);
    free(bd);
    free(Xh);
    free(out);
    free(add);
    free(A);
    free(F2);
    free(rows);
    free(cols);
    free(cs);
}
END_TEST

/* The grouped axpy/dot kernels and the sparse kernels built on them must give exactly
 * the bits of ct_cck_axpy / ct_cck_dot called entry after entry: lengths around every
 * vector width, group counts that do not divide the entries, repeated rows. */
START_TEST(grouped_kernels_match_sequential)
{
    int R = 37, ld = 1041;
    float *X = malloc(sizeof(float) * R * ld), *val = malloc(sizeof(float) * 64);
    fill_normal(X, (size_t)R * ld, 1.0, 31);
    fill_normal(val, 64, 2.0, 32);
    int32_t idx[64];
    size_t pos[64];
    for (int t = 0; t < 64; t++) {
        idx[t] = (t * 13 + t / 5) % R; /* repeats rows now and then */
        pos[t] = (size_t)((t * 29 + 7) % 64);
    }
    static const int ns[] = {1, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 100, 127, 129, 1000, 1024, 1031, 1041};
    static const int cnts[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 33, 64};
    float *y0 = malloc(sizeof(float) * (ld + 16)), *yr = malloc(sizeof(float) * (ld + 16));
    float *yg = malloc(sizeof(float) * (ld + 16)), *dr = malloc(sizeof(float) * 64), *dg = malloc(sizeof(float) * 65);
    fill_normal(y0, (size_t)ld + 16, 1.0, 33);
    for (size_t in = 0; in < sizeof ns / sizeof *ns; in++)
        for (size_t ic = 0; ic < sizeof cnts / sizeof *cnts; ic++)
            for (int withpos = 0; withpos < 2; withpos++) {
                int n = ns[in];
                size_t cnt = (size_t)cnts[ic];
                const size_t *ps = withpos ? pos : NULL;
                memcpy(yr, y0, sizeof(float) * (ld + 16));
                memcpy(yg, y0, sizeof(float) * (ld + 16));
                for (size_t t = 0; t < cnt; t++)
                    ct_cck_axpy(yr, val[ps ? ps[t] : t], X + (size_t)idx[t] * ld, n);
                ct_cck_axpy_gather(yg, n, X, (size_t)ld, idx, val, ps, cnt);
                ck_assert_msg(memcmp(yr, yg, sizeof(float) * (ld + 16)) == 0, "axpy n=%d cnt=%zu pos=%d", n, cnt,
                              withpos);
                for (size_t t = 0; t < cnt; t++)
                    dr[t] = ct_cck_dot(y0, X + (size_t)idx[t] * ld, n);
                dg[cnt] = 12345.0f; /* nothing written past cnt */
                ct_cck_dot_gather(y0, n, X, (size_t)ld, idx, cnt, dg);
                ck_assert_msg(cnt == 0 || memcmp(dr, dg, sizeof(float) * cnt) == 0, "dot n=%d cnt=%zu", n, cnt);
                ck_assert(dg[cnt] == 12345.0f);
            }
    /* The sparse kernels that use them, unsliced (ct_cck_sparse_chunk == D). */
    int B = 29, H = 53, D = 75;
    ck_assert_int_eq(ct_cck_sparse_chunk(H, D), D);
    ck_assert_int_eq(ct_cck_sparse_chunk(B, D), D);
    float *F = malloc(sizeof(float) * B * H), *A = malloc(sizeof(float) * B * D), *W = malloc(sizeof(float) * H * D);
    float *bd = malloc(sizeof(float) * D), *add = malloc(sizeof(float) * H);
    fill_normal(F, (size_t)B * H, 1.0, 34);
    fill_normal(A, (size_t)B * D, 1.0, 35);
    fill_normal(W, (size_t)H * D, 1.0, 36);
    fill_normal(bd, (size_t)D, 1.0, 37);
    fill_normal(add, (size_t)H, 1.0, 38);
    for (int e = 0; e < B * H; e++)
        if (F[e] < 0.5f && e % 11)
            F[e] = 0; /* ~35% active, some rows with many entries */
    ct_cck_csr a = {0};
    ct_cck_csc c = {0};
    ck_assert_int_eq(ct_cck_csr_from_dense(F, B, H, &a), 0);
    ck_assert_int_eq(ct_cck_csc_from_csr(&a, &c), 0);
    float *Xh = malloc(sizeof(float) * B * D), *Xr = malloc(sizeof(float) * B * D);
    float *sd = malloc(sizeof(float) * a.nnz), *sr = malloc(sizeof(float) * a.nnz);
    ct_cck_decode_sparse(&a, W, bd, Xh, D);
    ct_cck_sddmm(&a, A, W, D, add, sd);
    for (int b = 0; b < B; b++) {
        memcpy(Xr + (size_t)b * D, bd, sizeof(float) * D);
        for (size_t e = a.row_ptr[b]; e < a.row_ptr[b + 1]; e++) {
            ct_cck_axpy(Xr + (size_t)b * D, a.val[e], W + (size_t)a.col[e] * D, D);
            sr[e] = ct_cck_dot(A + (size_t)b * D, W + (size_t)a.col[e] * D, D) + add[a.col[e]];
        }
    }
    ck_assert(memcmp(Xh, Xr, sizeof(float) * B * D) == 0);
    ck_assert(memcmp(sd, sr, sizeof(float) * a.nnz) == 0);
    float *rows = malloc(sizeof(float) * H * D), *cols = malloc(sizeof(float) * D * H), *cs = malloc(sizeof(float) * H);
    float *ref = calloc((size_t)H * D, sizeof(float)), *refc = malloc(sizeof(float) * D * H);
    float *rcs = calloc((size_t)H, sizeof(float));
    ct_cck_gather_rows(&c, a.val, A, D, rows, 0);
    ct_cck_gather_cols(&c, sd, A, D, cols, cs, 0);
    for (int j = 0; j < H; j++)
        for (size_t k = c.col_ptr[j]; k < c.col_ptr[j + 1]; k++)
            ct_cck_axpy(ref + (size_t)j * D, a.val[c.pos[k]], A + (size_t)c.row[k] * D, D);
    ck_assert(memcmp(rows, ref, sizeof(float) * H * D) == 0);
    memset(ref, 0, sizeof(float) * H * D);
    for (int j = 0; j < H; j++)
        for (size_t k = c.col_ptr[j]; k < c.col_ptr[j + 1]; k++) {
            ct_cck_axpy(ref + (size_t)j * D, sd[c.pos[k]], A + (size_t)c.row[k] * D, D);
            rcs[j] += sd[c.pos[k]];
        }
    for (int j = 0; j < H; j++)
        for (int i = 0; i < D; i++)
            refc[(size_t)i * H + j] = ref[(size_t)j * D + i];
    ck_assert(memcmp(cols, refc, sizeof(float) * D * H) == 0);
    ck_assert(memcmp(cs, rcs, sizeof(float) * H) == 0);
    ct_cck_csr_free(&a);
    ct_cck_csc_free(&c);
    free(X);
    free(val);
    free(y0);
    free(yr);
    free(yg);
    free(dr);
    free(dg);
    free(F);
    free(A);
    free(W);
    free(bd);
    free(add);
    free(Xh);
    free(Xr);
    free(sd);
    free(sr);
    free(rows);
    free(cols);
    free(cs);
    free(ref);
    free(refc);
    free(rcs);
}
END_TEST

/* The vectorised row kernels of the sparse path against the plain loops they replace,
 * with NaN, -0, +0 and subnormal entries, and lengths around the vector widths. */
START_TEST(row_kernels_match_loops)
{
    static const int ns[] = {0, 1, 7, 15, 16, 17, 31, 33, 64, 100, 4101};
    int nmax = 4101;
    float *r = malloc(sizeof(float) * nmax), *a = malloc(sizeof(float) * nmax), *b = malloc(sizeof(float) * nmax);
    float *va = malloc(sizeof(float) * nmax), *vb = malloc(sizeof(float) * nmax);
    int32_t *ca = malloc(sizeof(int32_t) * nmax), *cb = malloc(sizeof(int32_t) * nmax);
    fill_normal(r, (size_t)nmax, 1.0, 41);
    for (int j = 0; j < nmax; j += 13)
        r[j] = j % 3 == 0 ? NAN : j % 3 == 1 ? -0.0f : 1e-40f;
    for (int j = 5; j < nmax; j += 29)
        r[j] = 0.0f;
    for (size_t in = 0; in < sizeof ns / sizeof *ns; in++) {
        int n = ns[in];
        memcpy(a, r, sizeof(float) * nmax);
        memcpy(b, r, sizeof(float) * nmax);
        size_t want = 0;
        for (int j = 0; j < n; j++) {
            a[j] = a[j] > 0.0f ? a[j] : 0.0f;
            want += a[j] > 0.0f;
        }
        ck_assert_uint_eq(ct_cck_relu_count_row(b, n), want);
        ck_assert_msg(memcmp(a, b, sizeof(float) * nmax) == 0, "relu n=%d", n);
        size_t c = 0;
        for (int j = 0; j < n; j++)
            if (r[j] > 0.0f) {
                ca[c] = j;
                va[c++] = r[j];
            }
        memset(cb, 0xff, sizeof(int32_t) * nmax);
        memset(vb, 0xff, sizeof(float) * nmax);
        ck_assert_uint_eq(ct_cck_positive(r, n, cb, vb), c);
        ck_assert_msg(memcmp(ca, cb, sizeof(int32_t) * c) == 0 && memcmp(va, vb, sizeof(float) * c) == 0,
                      "positive n=%d", n);
        ck_assert(c == (size_t)nmax || cb[c] == -1); /* nothing written past the count */
    }
    /* transpose: odd shapes, padded leading dimensions, both modes */
    static const int shapes[][2] = {{1, 1}, {16, 16}, {17, 33}, {64, 75}, {40, 16}, {5, 129}, {64, 1024}};
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        int rows = shapes[k][0], cols = shapes[k][1];
        size_t lds = (size_t)cols + 16, ldo = (size_t)rows + 3;
        float *src = malloc(sizeof(float) * rows * lds), *o1 = malloc(sizeof(float) * cols * ldo);
        float *o2 = malloc(sizeof(float) * cols * ldo);
        fill_normal(src, (size_t)rows * lds, 1.0, 42 + k);
        for (int acc = 0; acc < 2; acc++) {
            fill_normal(o1, (size_t)cols * ldo, 1.0, 50 + k);
            memcpy(o2, o1, sizeof(float) * cols * ldo);
            for (int i = 0; i < cols; i++)
                for (int q = 0; q < rows; q++)
                    o1[(size_t)i * ldo + q] = acc ? o1[(size_t)i * ldo + q] + src[(size_t)q * lds + i]
                                                  : src[(size_t)q * lds + i];
            ct_cck_transpose(o2, ldo, src, lds, rows, cols, acc);
            ck_assert_msg(memcmp(o1, o2, sizeof(float) * cols * ldo) == 0, "transpose %dx%d acc=%d", rows, cols,
                          acc);
        }
        free(src);
        free(o1);
        free(o2);
    }
    free(r);
    free(a);
    free(b);
    free(va);
    free(vb);
    free(ca);
    free(cb);
}
END_TEST

/* The CSC transpose is filled by blocks of rows in parallel above a few thousand
 * entries: the arrays must be those of the one-thread pass. */
START_TEST(csc_does_not_depend_on_threads)
{
    int B = 301, H = 203;
    float *F = malloc(sizeof(float) * B * H);
    fill_normal(F, (size_t)B * H, 1.0, 61);
    for (int e = 0; e < B * H; e++)
        if (F[e] < 0.5f || (e / H) % 17 == 3)
            F[e] = 0; /* ~30% active, some empty rows */
    ct_cck_csr a = {0};
    ct_cck_csc c1 = {0}, c3 = {0};
    ck_assert_int_eq(ct_cck_csr_from_dense(F, B, H, &a), 0);
    ck_assert_uint_gt(a.nnz, 4096);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    ck_assert_int_eq(ct_cck_csc_from_csr(&a, &c1), 0);
    omp_set_num_threads(3);
    ck_assert_int_eq(ct_cck_csc_from_csr(&a, &c3), 0);
    omp_set_num_threads(saved);
    ck_assert_uint_eq(c1.nnz, a.nnz);
    ck_assert_uint_eq(c3.nnz, a.nnz);
    ck_assert(memcmp(c1.col_ptr, c3.col_ptr, sizeof(size_t) * (H + 1)) == 0);
    ck_assert(memcmp(c1.row, c3.row, sizeof(int32_t) * a.nnz) == 0);
    ck_assert(memcmp(c1.pos, c3.pos, sizeof(size_t) * a.nnz) == 0);
    for (int j = 0; j < H; j++)
        for (size_t k = c3.col_ptr[j]; k < c3.col_ptr[j + 1]; k++) {
            ck_assert_int_eq(a.col[c3.pos[k]], j);
            ck_assert(a.val[c3.pos[k]] == F[c3.row[k] * H + j]);
        }
    ct_cck_csr_free(&a);
    ct_cck_csc_free(&c1);
    ct_cck_csc_free(&c3);
    free(F);
}
END_TEST

START_TEST(reductions_do_not_depend_on_threads)
{
    size_t n = 1000003;
    float *x = malloc(n * sizeof(float));
    fill_normal(x, n, 1.0, 8);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    double s1 = ct_cck_sumsq(x, n);
    omp_set_num_threads(3);
    double s3 = ct_cck_sumsq(x, n);
    omp_set_num_threads(saved);
    ck_assert(s1 == s3);
    double ref = 0;
    for (size_t i = 0; i < n; i++)
        ref += (double)x[i] * x[i];
    ck_assert(fabs(s1 - ref) <= 1e-12 * ref);
    free(x);
}
END_TEST

START_TEST(adam_kernel_matches_formula)
{
    size_t n = 1000;
    float *p = malloc(n * 4), *g = malloc(n * 4), *m = calloc(n, 4), *v = calloc(n, 4);
    fill_normal(p, n, 1.0, 1);
    fill_normal(g, n, 1.0, 2);
    double *pd = malloc(n * 8), *md = calloc(n, 8), *vd = calloc(n, 8);
    for (size_t i = 0; i < n; i++)
        pd[i] = p[i];
    for (long t = 1; t <= 5; t++) {
        ct_cck_adam(p, g, m, v, n, 0.5f, 1e-3, 0.9, 0.999, 1e-8, t);
        for (size_t i = 0; i < n; i++) {
            double gi = 0.5 * g[i];
            md[i] = 0.9 * md[i] + 0.1 * gi;
            vd[i] = 0.999 * vd[i] + 0.001 * gi * gi;
            pd[i] -= 1e-3 * (md[i] / (1 - pow(0.9, t))) / (sqrt(vd[i] / (1 - pow(0.999, t))) + 1e-8);
        }
    }
    for (size_t i = 0; i < n; i++)
        ck_assert(fabs(p[i] - pd[i]) <= 1e-6);
    free(p);
    free(g);
    free(m);
    free(v);
    free(pd);
    free(md);
    free(vd);
}
END_TEST

START_TEST(batchtopk_selection_matches_sort)
{
    int M = 2, d = 8, H = 50, B = 20;
    int D = M * d;
    float *X = malloc(sizeof(float) * B * D);
    fill_normal(X, (size_t)B * D, 1.0, 4);
    ct_crosscoder *cc = model_with_density(CT_CC_BATCHTOPK, M, d, H, X, B, 0.5);
    /* Duplicate a latent so exact ties at the boundary occur. */
    for (int i = 0; i < D; i++)
        cc->p.W_enc[(size_t)i * H + 1] = cc->p.W_enc[(size_t)i * H + 0];
    cc->p.b_enc[1] = cc->p.b_enc[0];
    memcpy(cc->p.W_dec + D, cc->p.W_dec, sizeof(float) * D);
    ct_cc_workspace *ws;
    ck_assert_int_eq(ct_cc_workspace_create(&cc->cfg, B, &ws), 0);
    double *P = malloc(sizeof(double) * cc->n_params), *Xd = malloc(sizeof(double) * B * D);
    double *fr = malloc(sizeof(double) * B * H);
    for (size_t i = 0; i < cc->n_params; i++)
        P[i] = cc->mem[i];
    for (int i = 0; i < B * D; i++)
        Xd[i] = X[i];
    for (int k = 1; k <= 30; k += 4) {
        ct_cc_lossopt o = CT_CC_LOSSOPT_INIT;
        o.k = k;
        ct_cc_losses l = {0};
        ck_assert_int_eq(ct_cc_forward_backward(cc, X, B, &o, ws, &l, NULL), 0);
        const float *f = ct_cc_workspace_f(ws);
        ref_cfg rc = {.M = M, .d = d, .H = H, .topk = 1, .k = k};
        ref_out ro;
        ref_forward(&rc, P, Xd, B, NULL, 0, &ro, NULL, fr);
        long kept = 0, agree = 0;
        for (int e = 0; e < B * H; e++) {
            kept += f[e] > 0;
            agree += (f[e] > 0) == (fr[e] > 0);
        }
        long npos = (long)(ro.l0 * B + 0.5);
        ck_assert_int_eq(kept, npos);
        ck_assert_int_le(kept, (long)k * B);
        /* Scores agree to rounding; allow a swap at the boundary between float and
         * double scores only. */
        ck_assert_int_ge(agree, B * H - 2);
        float mn = INFINITY;
        for (int e = 0; e < B * H; e++)
            if (f[e] > 0) {
                float n = 0;
                for (int m = 0; m < M; m++) {
                    double s = 0;
                    for (int i = 0; i < d; i++)
                        s += pow(cc->p.W_dec[(size_t)(e % H) * D + m * d + i], 2);
                    n += (float)sqrt(s);
                }
                mn = fminf(mn, f[e] * n);
            }
        ck_assert(fabsf(l.min_kept - mn) <= 1e-6f * mn);
    }
    /* Inference threshold: keep scaled activations > θ. */
    ct_cc_lossopt o = CT_CC_LOSSOPT_INIT;
    o.use_threshold = 1;
    o.threshold = 0.5f;
    ct_cc_losses l = {0};
    ck_assert_int_eq(ct_cc_forward_backward(cc, X, B, &o, ws, &l, NULL), 0);
    o.threshold = 1e30f;
    ct_cc_losses l2 = {0};
    ck_assert_int_eq(ct_cc_forward_backward(cc, X, B, &o, ws, &l2, NULL), 0);
    ck_assert(l.l0 > 0 && l2.l0 == 0);
    free(P);
    free(Xd);
    free(fr);
    free(X);
    ct_cc_workspace_free(ws);
    ct_cc_free(cc);
}
END_TEST

typedef struct {
    ct_cc_trainer *t;
    int n;
    double l0[32];
    float min_kept[32], theta[32];
    int n_dead[32];
    uint8_t fired[32][24];
} topk_log;

static int on_step(void *ctx, long step, const ct_cc_losses *l)
{
    topk_log *g = ctx;
    g->l0[g->n] = l->l0;
    g->min_kept[g->n] = l->min_kept;
    g->theta[g->n] = ct_cc_trainer_model(g->t)->threshold;
    g->n_dead[g->n] = l->n_dead;
    memcpy(g->fired[g->n], l->fired, 24);
    g->n++;
    return 0;
}

START_TEST(trainer_topk_schedule_threshold_and_dead)
{
    int M = 2, d = 6, H = 24, B = 10, N = 200;
    float *rows = malloc(sizeof(float) * N * M * d);
    fill_normal(rows, (size_t)N * M * d, 1.0, 12);
    ct_cc_config c = CT_CC_CONFIG_INIT;
    c.type = CT_CC_BATCHTOPK;
    c.M = M;
    c.d = d;
    c.H = H;
    c.batch = B;
    c.steps = 12;
    c.lr = 1e-3f;
    c.k_start = 8;
    c.k_end = 2;
    c.k_anneal_steps = 4;
    c.threshold_start_step = 2;
    c.threshold_beta = 0.5f;
    c.dead_tokens = 3 * B;
    c.k_aux = 3;
    c.log_every = 0;
    c.checkpoint_every = 0;
    ct_cc_source s;
    ck_assert_int_eq(ct_cc_memsource_open(rows, N, M, d, NULL, 1, 1, &s), 0);
    ct_cc_trainer *t;
    ck_assert_int_eq(ct_cc_trainer_create(&c, &s, NULL, NULL, &t), 0);
    /* every pre-activation positive, so exactly k·B entries are kept */
    for (int j = 0; j < H; j++)
        ct_cc_trainer_model(t)->p.b_enc[j] = 50.0f;
    topk_log g = {.t = t};
    ct_cc_callbacks cb = {.ctx = &g, .on_step = on_step};
    ct_cc_trainer_set_callbacks(t, &cb);
    ck_assert_int_eq(ct_cc_trainer_run(t), 0);
    ck_assert_int_eq(g.n, 12);
    int want_k[12] = {8, 6, 5, 4, 2, 2, 2, 2, 2, 2, 2, 2}; /* 8, 6.5→6, 5, 3.5→4, then 2 */
    for (int i = 0; i < 12; i++)
        ck_assert_msg(g.l0[i] == want_k[i], "step %d: L0 %g, k %d", i, g.l0[i], want_k[i]);
    /* θ: untouched through step 2, seeded with the first minimum at step 3, then EMA. */
    double theta = -1;
    uint64_t since[24] = {0};
    int saw_dead = 0;
    for (int i = 0; i < 12; i++) {
        if (i > 2)
            theta = theta < 0 ? g.min_kept[i] : 0.5 * theta + 0.5 * g.min_kept[i];
        ck_assert_msg(fabs(g.theta[i] - theta) <= 1e-6 * fmax(1, fabs(theta)), "step %d: θ %g want %g", i,
                      g.theta[i], theta);
        int nd = 0;
        for (int j = 0; j < H; j++)
            nd += !g.fired[i][j] && since[j] + B >= 3 * (uint64_t)B;
        ck_assert_int_eq(g.n_dead[i], nd);
        saw_dead += nd > 0;
        for (int j = 0; j < H; j++)
            since[j] = g.fired[i][j] ? 0 : since[j] + B;
    }
    ck_assert_int_gt(saw_dead, 0);
    ck_assert(g.theta[11] > 0);
    ct_cc_trainer_free(t);
    ct_cc_source_close(&s);
    free(rows);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("crosscoder_kernels");
    TCase *tc = tcase_create("kernels");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, sparse_matches_dense, 0, 2);
    tcase_add_test(tc, gathers_match_loops);
    tcase_add_test(tc, sliced_sparse_kernels_match_loops);
    tcase_add_test(tc, grouped_kernels_match_sequential);
    tcase_add_test(tc, row_kernels_match_loops);
    tcase_add_test(tc, csc_does_not_depend_on_threads);
    tcase_add_test(tc, reductions_do_not_depend_on_threads);
    tcase_add_test(tc, adam_kernel_matches_formula);
    tcase_add_test(tc, batchtopk_selection_matches_sort);
    tcase_add_test(tc, trainer_topk_schedule_threshold_and_dead);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

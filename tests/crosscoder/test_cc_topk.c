/* The BatchTopK selections of kernels/cpu/crosscoder_topk.c against a plain sort, on
 * values drawn from a few levels so that exact ties at the boundary are common: the
 * batch-wide top-k keeps ties in row-major order, AuxK prefers the lower latent. These
 * functions are also the references the CUDA selections are held to. */
#include "kernels/crosscoder_kernels.h"
#include "kernels/topk_bin.h"
#include "tests/support/testutil.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Values from {0, 0.25, ..., 1.75} (half of them zero) and norms from {0, 0.5, 1, 2}:
 * every product is exact, and many are equal. */
static void fill_levels(float *F, float *ns, int B, int H, uint64_t seed)
{
    uint64_t s = seed;
    for (int i = 0; i < B * H; i++) {
        uint64_t r = ct_test_splitmix(&s);
        F[i] = (r & 1) ? 0.25f * (float)((r >> 1) % 8) : 0.0f;
    }
    static const float levels[4] = {0.0f, 0.5f, 1.0f, 2.0f};
    for (int j = 0; j < H; j++)
        ns[j] = levels[ct_test_splitmix(&s) % 4];
}

typedef struct { float s; long idx; } entry;

static int by_score_then_index(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->s != y->s)
        return x->s > y->s ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

START_TEST(topk_bin_scans_from_the_top)
{
    uint32_t h[4] = {3, 0, 2, 5};
    size_t rest;
    ck_assert_int_eq(ct_cck_topk_bin(h, 4, 1, &rest), 3);
    ck_assert_uint_eq(rest, 1);
    ck_assert_int_eq(ct_cck_topk_bin(h, 4, 5, &rest), 3);
    ck_assert_uint_eq(rest, 5);
    ck_assert_int_eq(ct_cck_topk_bin(h, 4, 6, &rest), 2);
    ck_assert_uint_eq(rest, 1);
    ck_assert_int_eq(ct_cck_topk_bin(h, 4, 8, &rest), 0); /* bin 1 is empty */
    ck_assert_uint_eq(rest, 1);
    ck_assert_int_eq(ct_cck_topk_bin(h, 4, 10, &rest), 0);
    ck_assert_uint_eq(rest, 3);
}
END_TEST

START_TEST(batch_topk_matches_sort)
{
    int B = 17, H = 61;
    size_t n = (size_t)B * H;
    float *F0 = malloc(n * sizeof *F0), *F = malloc(n * sizeof *F), *want = malloc(n * sizeof *want);
    float *ns = malloc((size_t)H * sizeof *ns);
    entry *e = malloc(n * sizeof *e);
    uint32_t *hist = malloc(CT_CCK_TOPK_BINS * sizeof *hist);
    size_t *rowcnt = malloc((size_t)B * sizeof *rowcnt);
    fill_levels(F0, ns, B, H, 11);
    size_t npos = 0;
    for (size_t i = 0; i < n; i++) {
        float s = F0[i] * ns[i % H];
        if (s > 0.0f)
            e[npos++] = (entry){s, (long)i};
    }
    qsort(e, npos, sizeof *e, by_score_then_index);
    ck_assert_uint_gt(npos, 100);
    size_t Ks[] = {0, 1, 2, 7, 50, npos / 2, npos - 1, npos, npos + 9};
    int ties_split = 0;
    for (size_t t = 0; t < sizeof Ks / sizeof *Ks; t++) {
        size_t K = Ks[t], keep = K < npos ? K : npos;
        memset(want, 0, n * sizeof *want);
        for (size_t i = 0; i < keep; i++)
            want[e[i].idx] = F0[e[i].idx];
        float want_min = keep ? e[keep - 1].s : 0.0f;
        ties_split += keep > 0 && keep < npos && e[keep].s == e[keep - 1].s;
        memcpy(F, F0, n * sizeof *F);
        float got_min = ct_cck_batch_topk(F, ns, B, H, K, hist, rowcnt);
        ck_assert_msg(memcmp(F, want, n * sizeof *F) == 0, "K=%zu: selection differs from the sort", K);
        ck_assert_float_eq(got_min, want_min);
    }
    ck_assert_int_ge(ties_split, 3); /* the boundary fell inside a run of ties */
    /* The same with other thread counts (partial histograms per thread). */
    for (int threads = 1; threads <= 3; threads += 2) {
        omp_set_num_threads(threads);
        memcpy(F, F0, n * sizeof *F);
        memcpy(want, F0, n * sizeof *F);
        ct_cck_batch_topk(want, ns, B, H, npos / 3, hist, rowcnt);
        omp_set_num_threads(2);
        ct_cck_batch_topk(F, ns, B, H, npos / 3, hist, rowcnt);
        ck_assert_int_eq(memcmp(F, want, n * sizeof *F), 0);
    }
    /* Entries with a positive activation but a zero score are never kept. */
    memcpy(F, F0, n * sizeof *F);
    ct_cck_batch_topk(F, ns, B, H, n, hist, rowcnt);
    for (size_t i = 0; i < n; i++)
        ck_assert(F[i] == (F0[i] * ns[i % H] > 0.0f ? F0[i] : 0.0f));
    free(F0);
    free(F);
    free(want);
    free(ns);
    free(e);
    free(hist);
    free(rowcnt);
}
END_TEST

START_TEST(threshold_mask_keeps_scores_above)
{
    int B = 9, H = 40;
    size_t n = (size_t)B * H;
    float *F0 = malloc(n * sizeof *F0), *F = malloc(n * sizeof *F), *ns = malloc((size_t)H * sizeof *ns);
    fill_levels(F0, ns, B, H, 12);
    memcpy(F, F0, n * sizeof *F);
    ct_cck_threshold_mask(F, ns, B, H, 1.0f);
    long kept = 0;
    for (size_t i = 0; i < n; i++) {
        float s = F0[i] * ns[i % H];
        ck_assert(F[i] == (s > 1.0f ? F0[i] : 0.0f));
        kept += F[i] > 0.0f;
    }
    ck_assert_int_gt(kept, 0);
    free(F0);
    free(F);
    free(ns);
}
END_TEST

START_TEST(aux_select_matches_sort)
{
    int B = 13, H = 57;
    size_t n = (size_t)B * H;
    float *R = malloc(n * sizeof *R), *ns = malloc((size_t)H * sizeof *ns);
    uint8_t *dead = malloc((size_t)H);
    size_t *rowcnt = malloc(((size_t)B + 1) * sizeof *rowcnt);
    entry *e = malloc((size_t)H * sizeof *e);
    int32_t *cols = malloc((size_t)H * sizeof *cols);
    fill_levels(R, ns, B, H, 13);
    uint64_t s = 14;
    for (int j = 0; j < H; j++)
        dead[j] = ct_test_splitmix(&s) % 3 != 0;
    int kks[] = {1, 3, 8, H};
    for (size_t t = 0; t < sizeof kks / sizeof *kks; t++) {
        int kk = kks[t];
        ct_cck_csr a = {0};
        ck_assert_int_eq(ct_cck_aux_select(R, ns, dead, B, H, kk, rowcnt, &a), 0);
        for (int b = 0; b < B; b++) {
            int c = 0;
            for (int j = 0; j < H; j++)
                if (dead[j] && R[(size_t)b * H + j] > 0.0f)
                    e[c++] = (entry){R[(size_t)b * H + j] * ns[j], j};
            qsort(e, (size_t)c, sizeof *e, by_score_then_index);
            int take = c < kk ? c : kk;
            /* The chosen latents, ascending. */
            int nc = 0;
            for (int j = 0; j < H; j++)
                for (int u = 0; u < take; u++)
                    if (e[u].idx == j)
                        cols[nc++] = j;
            ck_assert_uint_eq(a.row_ptr[b + 1] - a.row_ptr[b], (size_t)take);
            for (int u = 0; u < take; u++) {
                ck_assert_int_eq(a.col[a.row_ptr[b] + u], cols[u]);
                ck_assert_float_eq(a.val[a.row_ptr[b] + u], R[(size_t)b * H + cols[u]]);
            }
        }
        ck_assert_uint_gt(a.nnz, 0);
        ct_cck_csr_free(&a);
    }
    free(R);
    free(ns);
    free(dead);
    free(rowcnt);
    free(e);
    free(cols);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cc_topk");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, topk_bin_scans_from_the_top);
    tcase_add_test(tc, batch_topk_matches_sort);
    tcase_add_test(tc, threshold_mask_keeps_scores_above);
    tcase_add_test(tc, aux_select_matches_sort);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

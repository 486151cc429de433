/* CUDA crosscoder kernels against their CPU references. Without the CUDA backend or a
 * device it prints "SKIP: ..." and exits 77, which CTest counts as skipped. */
#include "kernels/crosscoder_kernels.h"
#include "tests/support/testutil.h"

#include <math.h>
#include <stdint.h>

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
#endif
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

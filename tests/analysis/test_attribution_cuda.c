/* IG, ablation and ΔCE with the checkpoints on a CUDA device against the same on the
 * CPU. Without the CUDA backend or a device it prints "SKIP: ..." and exits 77, which
 * CTest counts as skipped. */
#include "analysis/attribution.h"
#include "tests/analysis/fixture.h"

#include <stdio.h>

#define N_EX 6
#define H 48

static void open_pair(ct_model **m, ct_device dev)
{
    m[0] = ax_model_on(11, 0.0, dev);
    m[1] = ax_model_on(12, 0.3, dev);
}

START_TEST(test_cuda_matches_cpu)
{
    ct_model *cpu[2], *gpu[2];
    open_pair(cpu, CT_DEVICE_CPU);
    open_pair(gpu, CT_DEVICE_CUDA);
    ct_crosscoder *cc = ax_cc_random(2, H, 77);
    ct_task_example ex[N_EX];
    int32_t ids[9 * N_EX];
    ax_examples(ex, ids, N_EX, 5);
    ct_attr_options o = CT_ATTR_OPTIONS_INIT;
    o.threshold = 0.02f;
    o.batch = 4;
    ct_attr_result rc, rg;
    ck_assert_msg(ct_attr_ig(cpu, 2, cc, AX_LAYER, ex, N_EX, &o, &rc) == 0, "%s", ct_error_message());
    ck_assert_msg(ct_attr_ig(gpu, 2, cc, AX_LAYER, ex, N_EX, &o, &rg) == 0, "%s", ct_error_message());
    double worst = 0;
    for (int i = 0; i < 2 * H; i++) {
        ck_assert_msg(fabs(rg.ie[i] - rc.ie[i]) <= 1e-4 + 1e-3 * fabs(rc.ie[i]), "ie[%d]: cuda %g cpu %g", i,
                      rg.ie[i], rc.ie[i]);
        worst = fmax(worst, fabs(rg.ie[i] - rc.ie[i]));
    }
    for (int i = 0; i < 2 * N_EX; i++) {
        double tol = 1e-3 * fmax(1, fabs(rc.example_total[i]));
        ck_assert_msg(fabs(rg.example_total[i] - rc.example_total[i]) <= tol, "total[%d]", i);
        ck_assert_msg(fabs(rg.example_delta[i] - rc.example_delta[i]) <= 1e-3 * fmax(1, fabs(rc.example_delta[i])),
                      "delta[%d]", i);
    }
    printf("ie max |cuda - cpu| = %g\n", worst);
    /* the device is deterministic too */
    ct_attr_result again;
    ck_assert_int_eq(ct_attr_ig(gpu, 2, cc, AX_LAYER, ex, N_EX, &o, &again), 0);
    ck_assert(memcmp(again.ie, rg.ie, 2 * H * sizeof(float)) == 0);
    ct_attr_result_free(&rc), ct_attr_result_free(&rg), ct_attr_result_free(&again);

    int32_t lat[3] = {0, 9, 30};
    ct_ablation_result ac, ag;
    ck_assert_int_eq(ct_attr_ablate(cpu, 2, cc, AX_LAYER, ex, N_EX, lat, 3, &o, &ac), 0);
    ck_assert_int_eq(ct_attr_ablate(gpu, 2, cc, AX_LAYER, ex, N_EX, lat, 3, &o, &ag), 0);
    for (int i = 0; i < 6; i++)
        ck_assert_msg(fabs(ag.ablated_lpd[i] - ac.ablated_lpd[i]) <= 1e-4, "ablated_lpd[%d]: %g vs %g", i,
                      ag.ablated_lpd[i], ac.ablated_lpd[i]);
    ct_ablation_result_free(&ac), ct_ablation_result_free(&ag);

    double cc_clean[2], cc_spl[2], cg_clean[2], cg_spl[2];
    int32_t seq[4 * 8];
    for (int i = 0; i < 32; i++)
        seq[i] = (int32_t)((i * 7 + 3) % AX_VOCAB);
    ck_assert_int_eq(ct_attr_delta_ce(cpu, 2, cc, AX_LAYER, seq, 4, 8, &o, cc_clean, cc_spl), 0);
    ck_assert_int_eq(ct_attr_delta_ce(gpu, 2, cc, AX_LAYER, seq, 4, 8, &o, cg_clean, cg_spl), 0);
    for (int m = 0; m < 2; m++) {
        ck_assert_msg(fabs(cg_clean[m] - cc_clean[m]) <= 1e-4, "ce_clean[%d]", m);
        ck_assert_msg(fabs(cg_spl[m] - cc_spl[m]) <= 1e-4, "ce_spliced[%d]", m);
    }
    ct_cc_free(cc);
    for (int m = 0; m < 2; m++) {
        ct_model_free(cpu[m]);
        ct_model_free(gpu[m]);
    }
}
END_TEST

int main(void)
{
    if (!ct_kern_cuda_available()) {
        printf("SKIP: no CUDA device (or a build without the CUDA backend)\n");
        return 77;
    }
    Suite *s = suite_create("attribution_cuda");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cuda_matches_cpu);
    suite_add_tcase(s, tc);
    return ct_test_run_forking(s, 0); /* main has initialised CUDA */
}

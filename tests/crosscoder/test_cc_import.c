/* Import of an exported crosscoder: the reverse of ct_cc_export_safetensors is lossless
 * (identical parameters, factors, threshold, and identical bytes when re-exported), and
 * files that are not such exports are refused with a clear error. */
#include "common/error.h"
#include "common/io.h"
#include "crosscoder/crosscoder.h"
#include "crosscoder/export.h"
#include "models/checkpoint/safetensors.h"
#include "tests/support/testutil.h"

static ct_crosscoder *make(ct_cc_type type, int fold)
{
    ct_cc_config c = CT_CC_CONFIG_INIT;
    c.type = type;
    c.M = 3, c.d = 8, c.H = 16, c.batch = 32, c.tokens = 0, c.steps = 10;
    c.k_start = 8, c.k_end = 4, c.k_anneal_steps = 5;
    ck_assert_int_eq(ct_cc_config_resolve(&c), 0);
    ct_crosscoder *cc;
    ck_assert_int_eq(ct_cc_create(&c, &cc), 0);
    ct_cc_init(cc, 7);
    for (int j = 0; j < c.H; j++)
        cc->p.b_enc[j] = 0.01f * (float)j - 0.05f;
    for (int i = 0; i < c.M * c.d; i++)
        cc->p.b_dec[i] = 0.003f * (float)i;
    cc->scale[0] = 2.2521f, cc->scale[1] = 1.1974f, cc->scale[2] = 0.8227f;
    cc->threshold = type == CT_CC_BATCHTOPK ? 0.4375f : -1.0f;
    if (fold)
        ck_assert_int_eq(ct_cc_fold(cc), 0);
    return cc;
}

static void round_trip(ct_cc_type type, int fold)
{
    char dir[PATH_MAX], a[PATH_MAX + 32], aj[PATH_MAX + 32], b[PATH_MAX + 32], bj[PATH_MAX + 32];
    ct_test_tmpdir(dir, sizeof dir, "ccimport");
    snprintf(a, sizeof a, "%s/a.safetensors", dir);
    snprintf(aj, sizeof aj, "%s/a.json", dir);
    snprintf(b, sizeof b, "%s/b.safetensors", dir);
    snprintf(bj, sizeof bj, "%s/b.json", dir);
    ct_crosscoder *cc = make(type, fold), *back;
    ck_assert_int_eq(ct_cc_export_safetensors(cc, a, aj), 0);
    ck_assert_msg(ct_cc_import_safetensors(a, &back) == 0, "%s", ct_error_message());
    ck_assert_int_eq(back->cfg.type, type);
    ck_assert_int_eq(back->cfg.M, 3);
    ck_assert_int_eq(back->cfg.d, 8);
    ck_assert_int_eq(back->cfg.H, 16);
    ck_assert_uint_eq(back->n_params, cc->n_params);
    ck_assert_mem_eq(back->mem, cc->mem, cc->n_params * sizeof(float));
    ck_assert_mem_eq(back->scale, cc->scale, 3 * sizeof(float));
    ck_assert_int_eq(back->folded, fold);
    ck_assert(back->threshold == cc->threshold);
    ck_assert_int_eq(ct_cc_export_safetensors(back, b, bj), 0);
    char *x, *y;
    size_t nx, ny;
    ck_assert_int_eq(ct_read_file(a, &x, &nx), 0);
    ck_assert_int_eq(ct_read_file(b, &y, &ny), 0);
    ck_assert_uint_eq(nx, ny);
    ck_assert_mem_eq(x, y, nx);
    free(x);
    free(y);
    ck_assert_int_eq(ct_read_file(aj, &x, &nx), 0);
    ck_assert_int_eq(ct_read_file(bj, &y, &ny), 0);
    ck_assert_str_eq(x, y);
    free(x);
    free(y);
    ct_cc_free(back);
    ct_cc_free(cc);
}

START_TEST(export_import_is_lossless)
{
    round_trip(CT_CC_L1, 0);
    round_trip(CT_CC_L1, 1);
    round_trip(CT_CC_BATCHTOPK, 0);
}
END_TEST

START_TEST(foreign_files_are_refused)
{
    char dir[PATH_MAX], p[PATH_MAX + 32];
    ct_test_tmpdir(dir, sizeof dir, "ccimport-bad");
    snprintf(p, sizeof p, "%s/plain.safetensors", dir);
    float w[4] = {1, 2, 3, 4};
    int64_t shape[1] = {4};
    ct_st_tensor t = {.name = "W_enc", .dtype = CT_DT_F32, .ndim = 1, .shape = shape, .data = w};
    ck_assert_int_eq(ct_safetensors_write(p, &t, 1, NULL, NULL, 0), 0);
    ct_crosscoder *cc;
    ck_assert_int_eq(ct_cc_import_safetensors(p, &cc), CT_EFORMAT);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "no crosscoder config"));
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "plain.safetensors"));

    /* a config whose shape disagrees with the tensors */
    const char *key = "config";
    const char *val = "{\"format\":\"crosstime-crosscoder\",\"format_version\":1,\"type\":\"l1\","
                      "\"n_models\":2,\"d_in\":2,\"dict_size\":3,\"batch_size\":4,\"steps\":1,"
                      "\"normalisation_factors\":[1,1]}";
    ck_assert_int_eq(ct_safetensors_write(p, &t, 1, &key, &val, 1), 0);
    ck_assert_int_eq(ct_cc_import_safetensors(p, &cc), CT_EFORMAT);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "W_enc"));

    const char *wrong = "{\"format\":\"something-else\",\"format_version\":1}";
    ck_assert_int_eq(ct_safetensors_write(p, &t, 1, &key, &wrong, 1), 0);
    ck_assert_int_eq(ct_cc_import_safetensors(p, &cc), CT_EFORMAT);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "not a version 1 crosstime crosscoder"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("crosscoder_import");
    TCase *tc = tcase_create("import");
    tcase_add_test(tc, export_import_is_lossless);
    tcase_add_test(tc, foreign_files_are_refused);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

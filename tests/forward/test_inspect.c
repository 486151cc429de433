/* The checkpoint glue (ct_model_load on the fixtures' model.safetensors + config.json),
 * `crosstime inspect forward` and the .npy writer. */
#include "common/error.h"
#include "models/forward/model.h"
#include "models/forward/npy.h"
#include "tests/forward/fixture.h"
#include "tests/support/testutil.h"

#include <math.h>

int ct_cmd_inspect_forward(int argc, char **argv);

static const char *const cases[] = {"neox_parallel", "neox_sequential", "bloom_6head",
                                    "olmo_untied", "olmo_tied_clip"};

/* Every architecture loads through models/checkpoint and reproduces the reference. */
START_TEST(test_load_and_inspect)
{
    char rel[256], dir[1024], path[1024], out[512];
    snprintf(rel, sizeof rel, "tests/fixtures/forward/%s", cases[_i]);
    ct_test_src(dir, sizeof dir, rel);
    snprintf(rel, sizeof rel, "tests/fixtures/forward/%s/reference.safetensors", cases[_i]);
    fx_st ref;
    ck_assert_int_eq(fx_st_open(ct_test_src(path, sizeof path, rel), &ref), 0);
    size_t n = 0;
    int32_t *ids = fx_st_i32(&ref, "ids", &n);
    int T = (int)n / 2; /* first sequence only */
    char idlist[1024] = "";
    for (int t = 0; t < T; t++)
        snprintf(idlist + strlen(idlist), sizeof idlist - strlen(idlist), "%s%d", t ? "," : "",
                 (int)ids[t]);
    ct_test_tmpdir(out, sizeof out, "inspect");
    char *argv[] = {"forward", "--model", dir, "--ids", idlist, "--out", out, "--device", "cpu"};
    ck_assert_int_eq(ct_cmd_inspect_forward(9, argv), 0);

    float *got;
    int nd;
    int64_t shape[8];
    snprintf(path, sizeof path, "%s/logits.npy", out);
    ck_assert_msg(ct_npy_read_f32(path, &got, &nd, shape) == 0, "%s", ct_error_message());
    float *want = fx_st_f32(&ref, "logits", NULL);
    ck_assert_int_eq(nd, 2);
    ck_assert_int_eq(shape[0], T);
    int64_t V = shape[1];
    for (int64_t i = 0; i < T * V; i++)
        ck_assert_msg(fabsf(got[i] - want[i]) <= 1e-4f, "logit %lld", (long long)i);
    free(got);
    free(want);
    snprintf(path, sizeof path, "%s/residual_2.npy", out);
    ck_assert_int_eq(ct_npy_read_f32(path, &got, &nd, shape), 0);
    want = fx_st_f32(&ref, "resid_2", NULL);
    for (int64_t i = 0; i < shape[0] * shape[1]; i++)
        ck_assert(fabsf(got[i] - want[i]) <= 1e-4f);
    ck_assert_int_eq(shape[0], T);
    free(got);
    free(want);
    free(ids);
    fx_st_close(&ref);
}
END_TEST

START_TEST(test_inspect_errors)
{
    char dir[1024], out[512];
    ct_test_src(dir, sizeof dir, "tests/fixtures/forward/neox_parallel");
    ct_test_tmpdir(out, sizeof out, "inspect");
    char *bad_ids[] = {"forward", "--model", dir, "--ids", "1,x,3", "--out", out};
    ck_assert_int_ne(ct_cmd_inspect_forward(7, bad_ids), 0);
    char *big_id[] = {"forward", "--model", dir, "--ids", "1,100000", "--out", out};
    ck_assert_int_ne(ct_cmd_inspect_forward(7, big_id), 0);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "vocabulary"));
    char *no_model[] = {"forward", "--model", "/nonexistent/dir", "--ids", "1", "--out", out};
    ck_assert_int_ne(ct_cmd_inspect_forward(7, no_model), 0);
    char *missing[] = {"forward", "--ids", "1"};
    ck_assert_int_eq(ct_cmd_inspect_forward(3, missing), 2);
}
END_TEST

/* The writer's header as NumPy specifies it (64-byte aligned, shape tuple). */
START_TEST(test_npy_format)
{
    char out[512], path[1024];
    ct_test_tmpdir(out, sizeof out, "npy");
    snprintf(path, sizeof path, "%s/a.npy", out);
    float v[6] = {1, 2, 3, 4, 5, 6.5f};
    ck_assert_int_eq(ct_npy_write_f32(path, v, 1, (int64_t[]){6}), 0);
    char *buf;
    size_t n;
    ck_assert_int_eq(ct_read_file(path, &buf, &n), 0);
    size_t head = n - sizeof v;
    ck_assert_uint_eq(head % 64, 0);
    ck_assert(memcmp(buf, "\x93NUMPY\x01\x00", 8) == 0);
    ck_assert_uint_eq((unsigned char)buf[8] | (unsigned char)buf[9] << 8, head - 10);
    ck_assert_ptr_nonnull(strstr(buf + 10, "'shape': (6,), }"));
    ck_assert_int_eq(buf[head - 1], '\n');
    ck_assert(memcmp(buf + head, v, sizeof v) == 0);
    free(buf);
    ck_assert_int_eq(ct_npy_write_f32(path, v, 2, (int64_t[]){2, 3}), 0);
    float *r;
    int nd;
    int64_t shape[8];
    ck_assert_int_eq(ct_npy_read_f32(path, &r, &nd, shape), 0);
    ck_assert(nd == 2 && shape[0] == 2 && shape[1] == 3 && memcmp(r, v, sizeof v) == 0);
    free(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("inspect");
    TCase *tc = tcase_create("inspect");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_load_and_inspect, 0, 5);
    tcase_add_test(tc, test_inspect_errors);
    tcase_add_test(tc, test_npy_format);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

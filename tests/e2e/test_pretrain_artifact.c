/* The pretrain save-point container (pipeline/steps/pretrain.h): files written are
 * found again byte for byte, a missing file is CT_ENOTFOUND, and every truncation or
 * corrupted length is refused without reading past the buffer (the test runs under
 * ASan in CI). The HF directory writer puts the three checkpoint files in place. */
#include "../support/testutil.h"
#include "cache/cache.h"
#include "common/error.h"
#include "common/io.h"
#include "pipeline/steps/pretrain.h"

static char *build(size_t *len, char tmpdir[])
{
    ct_cache_options o = CT_CACHE_OPTIONS_INIT;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/cache", tmpdir);
    o.dir = dir;
    ct_cache *c;
    ck_assert_msg(ct_cache_open(&o, &c) == 0, "%s", ct_error_message());
    ct_blob_writer *w;
    ck_assert_int_eq(ct_blob_writer_open(c, &w), 0);
    ct_steps_pretrain_file files[] = {
        {"state", "S1234", 5},
        {"config.json", "{\"a\": 1}", 8},
        {"model.safetensors", "WEIGHTS", 7},
        {"tokenizer.json", "{}", 2},
        {"log.jsonl", "", 0},
    };
    ck_assert_int_eq(ct_steps_pretrain_write(w, files, 5), 0);
    uint8_t key[CT_KEY_LEN] = {1, 2, 3};
    ck_assert_int_eq(ct_blob_commit(w, key, NULL), 0);
    char *data;
    ck_assert_int_eq(ct_cache_read_all(c, key, &data, len), 0);
    ct_cache_close(c);
    return data;
}

START_TEST(container_round_trip_and_damage)
{
    char tmp[PATH_MAX];
    ct_test_tmpdir(tmp, sizeof tmp, "pretrain-art");
    size_t len;
    char *data = build(&len, tmp);
    const void *p;
    size_t n;
    ck_assert_int_eq(ct_steps_pretrain_find(data, len, "art", "model.safetensors", &p, &n), 0);
    ck_assert_uint_eq(n, 7);
    ck_assert(memcmp(p, "WEIGHTS", 7) == 0);
    ck_assert_int_eq(ct_steps_pretrain_find(data, len, "art", "log.jsonl", &p, &n), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(ct_steps_pretrain_find(data, len, "art", "missing", &p, &n), CT_ENOTFOUND);
    ck_assert_int_eq(ct_steps_pretrain_find(data, len, "art", "stat", &p, &n), CT_ENOTFOUND);

    /* every cut: refused or (for a file before the cut) still found intact */
    for (size_t cut = 0; cut < len; cut++) {
        char *c = malloc(cut + 1);
        memcpy(c, data, cut);
        int rc = ct_steps_pretrain_find(c, cut, "cut", "log.jsonl", &p, &n);
        ck_assert_msg(rc == CT_ECORRUPT || rc == CT_ENOTFOUND, "cut at %zu: rc %d", cut, rc);
        free(c);
    }
    /* a size field blown up, a bad magic, a future version */
    char *bad = malloc(len);
    memcpy(bad, data, len);
    bad[16 + 4 + 7] = 0x7f; /* top byte of the first file's u64 size */
    ck_assert_int_eq(ct_steps_pretrain_find(bad, len, "bad", "config.json", &p, &n), CT_ECORRUPT);
    memcpy(bad, data, len);
    bad[0] = 'X';
    ck_assert_int_eq(ct_steps_pretrain_find(bad, len, "bad", "state", &p, &n), CT_ECORRUPT);
    memcpy(bad, data, len);
    bad[8] = 9;
    ck_assert_int_eq(ct_steps_pretrain_find(bad, len, "bad", "state", &p, &n), CT_EFORMAT);
    free(bad);

    /* the HF files, and only those, land in the directory */
    char dir[PATH_MAX + 8], path[PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/hf", tmp);
    ck_assert_int_eq(ct_steps_pretrain_write_hf(data, len, "art", dir), 0);
    const char *want[3] = {"{\"a\": 1}", "WEIGHTS", "{}"};
    for (int i = 0; i < 3; i++) {
        char *f;
        size_t fl;
        snprintf(path, sizeof path, "%s/%s", dir, ct_steps_pretrain_hf_files[i]);
        ck_assert_int_eq(ct_read_file(path, &f, &fl), 0);
        ck_assert_uint_eq(fl, strlen(want[i]));
        ck_assert(memcmp(f, want[i], fl) == 0);
        free(f);
    }
    snprintf(path, sizeof path, "%s/state", dir);
    ck_assert_int_ne(access(path, F_OK), 0);
    free(data);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pretrain_artifact");
    TCase *tc = tcase_create("container");
    tcase_add_test(tc, container_round_trip_and_damage);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

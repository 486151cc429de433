#include "common/error.h"
#include "common/io.h"
#include "common/sha256.h"
#include "tests/support/testutil.h"

#include <zstd.h>

START_TEST(sha256_known_vector)
{
    uint8_t d[CT_SHA256_LEN];
    char hex[CT_SHA256_HEX_LEN + 1];
    ct_sha256_buf("abc", 3, d);
    ct_hex_encode(d, sizeof d, hex);
    /* FIPS 180-2 test vector */
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    uint8_t back[CT_SHA256_LEN];
    ck_assert_int_eq(ct_hex_decode(hex, back, sizeof back), 0);
    ck_assert_mem_eq(back, d, sizeof d);
    ck_assert_int_eq(ct_hex_decode("zz", back, 1), CT_EINVAL);
    ck_assert_int_eq(ct_hex_decode("abcd", back, 1), CT_EINVAL);
}
END_TEST

START_TEST(streaming_equals_one_shot)
{
    uint8_t a[CT_SHA256_LEN], b[CT_SHA256_LEN];
    const char *text = "The quick brown fox jumps over the lazy dog";
    ct_sha256_buf(text, strlen(text), a);
    ct_sha256 *c;
    ck_assert_int_eq(ct_sha256_new(&c), 0);
    for (const char *p = text; *p; p++)
        ct_sha256_update(c, p, 1);
    ck_assert_int_eq(ct_sha256_final(c, b), 0);
    ck_assert_mem_eq(a, b, sizeof a);
}
END_TEST

START_TEST(error_message_and_wrap)
{
    ck_assert_int_eq(ct_error_set(CT_EINVAL, "bad %s", "thing"), CT_EINVAL);
    ck_assert_str_eq(ct_error_message(), "bad thing");
    ct_error_wrap(CT_EINVAL, "loading %s", "x.yaml");
    ck_assert_str_eq(ct_error_message(), "loading x.yaml: bad thing");
    ck_assert_int_eq(ct_error_code(), CT_EINVAL);
}
END_TEST

START_TEST(reader_plain_and_zstd_lines)
{
    char dir[PATH_MAX], plain[PATH_MAX + 16], zst[PATH_MAX + 16];
    ct_test_tmpdir(dir, sizeof dir, "io");
    snprintf(plain, sizeof plain, "%s/a.txt", dir);
    snprintf(zst, sizeof zst, "%s/a.txt.zst", dir);
    const char *text = "first line\r\nsecond\n\nlast without newline";
    ck_assert_int_eq(ct_write_file_atomic(plain, text, strlen(text)), 0);
    char comp[256];
    size_t clen = ZSTD_compress(comp, sizeof comp, text, strlen(text), 3);
    ck_assert(!ZSTD_isError(clen));
    ck_assert_int_eq(ct_write_file_atomic(zst, comp, clen), 0);
    const char *paths[] = {plain, zst};
    for (int i = 0; i < 2; i++) {
        ct_reader *r;
        ck_assert_int_eq(ct_reader_open(paths[i], &r), 0);
        const char *line;
        size_t n;
        const char *expect[] = {"first line", "second", "", "last without newline"};
        for (int k = 0; k < 4; k++) {
            ck_assert_int_eq(ct_reader_getline(r, &line, &n), 1);
            ck_assert_str_eq(line, expect[k]);
            ck_assert_uint_eq(n, strlen(expect[k]));
        }
        ck_assert_int_eq(ct_reader_getline(r, &line, &n), 0);
        ct_reader_close(r);
        char *all;
        size_t len;
        ck_assert_int_eq(ct_read_file(paths[i], &all, &len), 0);
        ck_assert_uint_eq(len, strlen(text));
        ck_assert_str_eq(all, text);
        free(all);
    }
    /* an empty file reads as empty, not as an unrecognised archive */
    snprintf(plain, sizeof plain, "%s/empty", dir);
    ck_assert_int_eq(ct_write_file_atomic(plain, "", 0), 0);
    char *all;
    size_t len = 99;
    ck_assert_int_eq(ct_read_file(plain, &all, &len), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_str_eq(all, "");
    free(all);
    ct_reader *r;
    snprintf(plain, sizeof plain, "%s/missing", dir);
    ck_assert_int_eq(ct_reader_open(plain, &r), CT_EIO);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "missing"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("common");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, sha256_known_vector);
    tcase_add_test(tc, streaming_equals_one_shot);
    tcase_add_test(tc, error_message_and_wrap);
    tcase_add_test(tc, reader_plain_and_zstd_lines);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

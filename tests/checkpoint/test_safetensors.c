/* safetensors reader and writer: real files written by Hugging Face transformers, values
 * checked against numbers numpy read from the raw bytes; the writer reproduces the
 * reference library's bytes; malformed headers fail with clear errors. */
#include "ckpt_testutil.h"
#include "models/checkpoint/safetensors.h"

static char g_tmp[512];

static const char *fixture(char *buf, size_t n, const char *rel)
{
    char r[512];
    snprintf(r, sizeof r, "tests/fixtures/checkpoints/%s", rel);
    return ct_test_src(buf, n, r);
}

static void check_real(const char *tag, size_t n_tensors)
{
    char path[4096], rel[128];
    snprintf(rel, sizeof rel, "%s/model.safetensors", tag);
    ct_safetensors *st;
    ck_assert_msg(ct_safetensors_open(fixture(path, sizeof path, rel), &st) == 0, "%s",
                  ct_error_message());
    ck_assert_uint_eq(ct_safetensors_count(st), n_tensors);
    ck_assert_str_eq(ct_safetensors_meta(st, "format"), "pt");
    ck_assert_ptr_null(ct_safetensors_meta(st, "nope"));
    exp_row *rows;
    size_t n = load_expected(tag, &rows);
    ck_assert_uint_eq(n, n_tensors);
    for (size_t i = 0; i < n; i++) {
        ct_tensor_view v;
        ck_assert_msg(ct_safetensors_find(st, rows[i].tensor, &v) == 0, "%s", ct_error_message());
        ck_assert_int_eq(v.dtype, CT_DT_F32);
        ck_assert_str_eq(v.name, rows[i].tensor);
        check_view_against(&v, &rows[i]);
    }
    /* iteration is in name order */
    for (size_t i = 1; i < ct_safetensors_count(st); i++) {
        ct_tensor_view a, b;
        ct_safetensors_at(st, i - 1, &a);
        ct_safetensors_at(st, i, &b);
        ck_assert_int_lt(strcmp(a.name, b.name), 0);
    }
    free(rows);
    ct_safetensors_close(st);
}

START_TEST(real_tiny_gpt2)
{
    check_real("gpt2-tiny", 16); /* GPT2Model: wte, wpe, 1 block (12), ln_f (2) */
    char path[4096];
    ct_safetensors *st;
    ck_assert_int_eq(
        ct_safetensors_open(fixture(path, sizeof path, "gpt2-tiny/model.safetensors"), &st), 0);
    ct_tensor_view v;
    ck_assert_int_eq(ct_safetensors_find(st, "wte.weight", &v), 0);
    ck_assert_int_eq(v.ndim, 2);
    ck_assert_int_eq(v.shape[0], 21); /* vocab 21, n_embd 2 (config.json) */
    ck_assert_int_eq(v.shape[1], 2);
    ck_assert_int_eq(ct_safetensors_find(st, "h.0.attn.c_attn.weight", &v), 0);
    ck_assert_int_eq(v.shape[0], 2);
    ck_assert_int_eq(v.shape[1], 6);
    ck_assert_int_eq(ct_safetensors_find(st, "lm_head.weight", &v), CT_ENOTFOUND);
    ct_safetensors_close(st);
}
END_TEST

START_TEST(real_fake_gpt2_tied)
{
    check_real("gpt2-fake", 16);
    char path[4096];
    ct_safetensors *st;
    ck_assert_int_eq(
        ct_safetensors_open(fixture(path, sizeof path, "gpt2-fake/model.safetensors"), &st), 0);
    ct_tensor_view v;
    ck_assert_int_eq(ct_safetensors_find(st, "transformer.wte.weight", &v), 0);
    ck_assert_int_eq(v.shape[0], 50257);
    ck_assert_uint_eq(v.nbytes, 50257u * 2 * 4);
    /* tied head: transformers does not store it */
    ck_assert_int_eq(ct_safetensors_find(st, "lm_head.weight", &v), CT_ENOTFOUND);
    ct_safetensors_close(st);
}
END_TEST

/* Rewriting every tensor of a file written by the reference library reproduces it
 * byte for byte: same order, offsets, header text and padding. */
START_TEST(writer_matches_reference_bytes)
{
    const char *tags[] = {"gpt2-tiny/model.safetensors", "gpt2-fake/model.safetensors",
                          "bloom/model.safetensors", "olmo-tied/model.safetensors"};
    for (size_t k = 0; k < 4; k++) {
        char path[4096], out[1024];
        fixture(path, sizeof path, tags[k]);
        ct_safetensors *st;
        ck_assert_int_eq(ct_safetensors_open(path, &st), 0);
        size_t n = ct_safetensors_count(st);
        ct_st_tensor *t = calloc(n, sizeof *t);
        ct_tensor_view *v = calloc(n, sizeof *v);
        for (size_t i = 0; i < n; i++) { /* reverse order: the writer must sort */
            ct_safetensors_at(st, n - 1 - i, &v[i]);
            t[i] = (ct_st_tensor){v[i].name, v[i].dtype, v[i].ndim, v[i].shape, v[i].data};
        }
        const char *mk[] = {"format"}, *mv[] = {"pt"};
        snprintf(out, sizeof out, "%s/rewrite%zu.safetensors", g_tmp, k);
        ck_assert_msg(ct_safetensors_write(out, t, n, mk, mv, 1) == 0, "%s", ct_error_message());
        size_t la, lb;
        unsigned char *a = slurp(path, &la), *b = slurp(out, &lb);
        ck_assert_uint_eq(la, lb);
        ck_assert_msg(memcmp(a, b, la) == 0, "%s: rewrite differs", tags[k]);
        free(a);
        free(b);
        free(t);
        free(v);
        ct_safetensors_close(st);
    }
}
END_TEST

START_TEST(writer_roundtrip_and_errors)
{
    uint16_t bf[6] = {0x3f80, 0xbf80, 0x4000, 0x0000, 0x8000, 0x7f80}; /* 1 -1 2 0 -0 inf */
    uint16_t hf[3] = {0x3c00, 0x0001, 0xfbff};                         /* 1, 2^-24, -65504 */
    int64_t i64[1] = {-5};
    float f[2] = {0.5f, -3.25f};
    int64_t s23[2] = {2, 3}, s3[1] = {3}, s2[1] = {2};
    ct_st_tensor t[] = {
        {"z.bf16", CT_DT_BF16, 2, s23, bf},
        {"a\"quoted\\name\n", CT_DT_F16, 1, s3, hf},
        {"scalar", CT_DT_I64, 0, NULL, i64},
        {"m.f32", CT_DT_F32, 1, s2, f},
    };
    const char *mk[] = {"zeta", "alpha"}, *mv[] = {"tab\there", "1"};
    char p1[1024], p2[1024];
    snprintf(p1, sizeof p1, "%s/rt1.safetensors", g_tmp);
    snprintf(p2, sizeof p2, "%s/rt2.safetensors", g_tmp);
    ck_assert_int_eq(ct_safetensors_write(p1, t, 4, mk, mv, 2), 0);
    ck_assert_int_eq(ct_safetensors_write(p2, t, 4, mk, mv, 2), 0);
    size_t l1, l2;
    unsigned char *b1 = slurp(p1, &l1), *b2 = slurp(p2, &l2);
    ck_assert_uint_eq(l1, l2);
    ck_assert_int_eq(memcmp(b1, b2, l1), 0);
    uint64_t hl = 0;
    memcpy(&hl, b1, 8);
    ck_assert_uint_eq(hl % 8, 0);
    /* alignment-descending order: I64 first, then F32, then the 2-byte types by name */
    const char *h = (const char *)b1 + 8;
    ck_assert_ptr_nonnull(
        strstr(h, "{\"__metadata__\":{\"alpha\":\"1\",\"zeta\":\"tab\\there\"},"
                  "\"scalar\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]},"
                  "\"m.f32\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
                  "\"a\\\"quoted\\\\name\\n\":"));
    free(b1);
    free(b2);

    ct_safetensors *st;
    ck_assert_int_eq(ct_safetensors_open(p1, &st), 0);
    ck_assert_str_eq(ct_safetensors_meta(st, "zeta"), "tab\there");
    ct_tensor_view v;
    float x[6];
    ck_assert_int_eq(ct_safetensors_find(st, "z.bf16", &v), 0);
    ck_assert_int_eq(v.shape[1], 3);
    ck_assert_int_eq(ct_dtype_to_f32(v.dtype, v.data, v.numel, x), 0);
    ck_assert(x[0] == 1.0f && x[1] == -1.0f && x[2] == 2.0f && x[3] == 0.0f && signbit(x[4]) &&
              isinf(x[5]));
    ck_assert_int_eq(ct_safetensors_find(st, "a\"quoted\\name\n", &v), 0);
    ck_assert_int_eq(ct_dtype_to_f32(v.dtype, v.data, v.numel, x), 0);
    ck_assert(x[0] == 1.0f && x[1] == ldexpf(1.0f, -24) && x[2] == -65504.0f);
    ck_assert_int_eq(ct_safetensors_find(st, "scalar", &v), 0);
    ck_assert_int_eq(v.ndim, 0);
    ck_assert_uint_eq(v.numel, 1);
    int64_t s;
    memcpy(&s, v.data, 8);
    ck_assert_int_eq(s, -5);
    ck_assert_int_eq(ct_dtype_to_f32(v.dtype, v.data, v.numel, x), CT_EFORMAT);
    ct_safetensors_close(st);

    ct_st_tensor dup[] = {{"x", CT_DT_F32, 1, s2, f}, {"x", CT_DT_F32, 1, s2, f}};
    ck_assert_int_eq(ct_safetensors_write(p1, dup, 2, NULL, NULL, 0), CT_EINVAL);
    assert_msg_has(p1, "'x' appears twice", (const char *)NULL);
    ct_st_tensor bad[] = {{"__metadata__", CT_DT_F32, 1, s2, f}};
    ck_assert_int_eq(ct_safetensors_write(p1, bad, 1, NULL, NULL, 0), CT_EINVAL);
}
END_TEST

/* Writes an 8-byte length + `json` + `data_len` zero bytes. */
static void craft(const char *path, const char *json, size_t data_len)
{
    size_t jl = strlen(json);
    unsigned char *b = calloc(8 + jl + data_len + 1, 1);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)jl >> (8 * i));
    memcpy(b + 8, json, jl);
    spit(path, b, 8 + jl + data_len);
    free(b);
}

static void expect_bad(const char *json, size_t data_len, int code, const char *needle)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/bad.safetensors", g_tmp);
    craft(p, json, data_len);
    ct_safetensors *st = (ct_safetensors *)1;
    int rc = ct_safetensors_open(p, &st);
    ck_assert_msg(rc == code, "%s: rc %d (%s), expected %d", json, rc, ct_error_message(), code);
    ck_assert_ptr_null(st);
    assert_msg_has(p, needle, (const char *)NULL);
}

START_TEST(malformed_headers)
{
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,800]}}", 8, CT_ECORRUPT,
               "'a': data_offsets [0, 800] out of range");
    expect_bad("{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, CT_EFORMAT,
               "unknown dtype \"F33\"");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, CT_ECORRUPT,
               "span 8 bytes but shape and dtype F32 need 12");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
               12, CT_ECORRUPT, "overlaps");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, CT_ECORRUPT,
               "8 unused bytes before tensor 'a'");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12, CT_ECORRUPT,
               "4 trailing bytes");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, CT_ECORRUPT,
               "shape[0] is not a non-negative integer");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
               "\"data_offsets\":[0,8]}}",
               8, CT_ECORRUPT, "overflows");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, CT_ECORRUPT,
               "out of range");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, CT_ECORRUPT, "\"data_offsets\"");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]", 8, CT_ECORRUPT,
               "header JSON");
    expect_bad("[1, 2]   ", 0, CT_ECORRUPT, "JSON object");
    expect_bad("{\"__metadata__\":{\"k\":1}}", 0, CT_ECORRUPT, "\"__metadata__\" value of 'k'");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               8, CT_ECORRUPT, "header JSON");
}
END_TEST

START_TEST(truncated_and_short_files)
{
    char src[4096], p[1024];
    fixture(src, sizeof src, "gpt2-tiny/model.safetensors");
    size_t n;
    unsigned char *b = slurp(src, &n);
    snprintf(p, sizeof p, "%s/trunc.safetensors", g_tmp);
    ct_safetensors *st;

    spit(p, b, n - 100); /* data cut short: the last tensors point past the end */
    ck_assert_int_eq(ct_safetensors_open(p, &st), CT_ECORRUPT);
    assert_msg_has(p, "out of range", (const char *)NULL);

    spit(p, b, 600); /* inside the header */
    ck_assert_int_eq(ct_safetensors_open(p, &st), CT_ECORRUPT);
    assert_msg_has(p, "header length 1200 runs beyond the file (600 bytes)", (const char *)NULL);

    spit(p, b, 5);
    ck_assert_int_eq(ct_safetensors_open(p, &st), CT_ECORRUPT);
    assert_msg_has(p, "too short", (const char *)NULL);

    spit(p, "", 0);
    ck_assert_int_eq(ct_safetensors_open(p, &st), CT_ECORRUPT);

    unsigned char big[16];
    memcpy(big, b, 16);
    big[7] = 0x7f; /* header length ~ 9e18 */
    spit(p, big, 16);
    ck_assert_int_eq(ct_safetensors_open(p, &st), CT_ECORRUPT);
    assert_msg_has(p, "runs beyond the file", (const char *)NULL);

    snprintf(p, sizeof p, "%s/does-not-exist.safetensors", g_tmp);
    ck_assert_int_eq(ct_safetensors_open(p, &st), CT_ENOTFOUND);
    assert_msg_has(p, (const char *)NULL);
    free(b);
}
END_TEST

/* Random byte flips in a real header: every outcome is a clean success or a clean error
 * (the sanitizer build catches any out-of-bounds access). */
START_TEST(fuzz_header_bytes)
{
    char src[4096], p[1024];
    fixture(src, sizeof src, "gpt2-tiny/model.safetensors");
    size_t n;
    unsigned char *b = slurp(src, &n);
    unsigned char *m = malloc(n);
    snprintf(p, sizeof p, "%s/fuzz.safetensors", g_tmp);
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    int ok = 0, bad = 0;
    for (int it = 0; it < 400; it++) {
        memcpy(m, b, n);
        for (int k = 0; k < 1 + it % 4; k++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            size_t pos = (size_t)(rng % 1208); /* length field + header */
            m[pos] = (unsigned char)(rng >> 32);
        }
        size_t len = it % 5 == 4 ? (size_t)(rng >> 20) % n : n;
        spit(p, m, len);
        ct_safetensors *st;
        int rc = ct_safetensors_open(p, &st);
        if (rc == 0) {
            for (size_t i = 0; i < ct_safetensors_count(st); i++) {
                ct_tensor_view v;
                ct_safetensors_at(st, i, &v);
                volatile unsigned char sink = 0;
                for (size_t j = 0; j < v.nbytes; j++) /* every claimed byte is readable */
                    sink ^= ((const unsigned char *)v.data)[j];
                (void)sink;
            }
            ct_safetensors_close(st);
            ok++;
        } else {
            ck_assert_ptr_nonnull(strstr(ct_error_message(), p));
            bad++;
        }
    }
    ck_assert_int_gt(bad, 0);
    free(m);
    free(b);
}
END_TEST

/* Every half and bfloat16 bit pattern widens to the value the IEEE definition gives,
 * computed here with ldexp. */
START_TEST(dtype_widening_exhaustive)
{
    uint16_t *h = malloc(65536 * 2);
    float *f = malloc(65536 * 4);
    for (uint32_t i = 0; i < 65536; i++)
        h[i] = (uint16_t)i;
    ck_assert_int_eq(ct_dtype_to_f32(CT_DT_F16, h, 65536, f), 0);
    for (uint32_t i = 0; i < 65536; i++) {
        int sign = i >> 15, e = (i >> 10) & 31, m = i & 1023;
        double want = e == 0    ? ldexp(m, -24)
                      : e == 31 ? (m ? NAN : INFINITY)
                                : ldexp(1024 + m, e - 25);
        if (sign)
            want = -want;
        if (isnan(want))
            ck_assert_msg(isnan(f[i]), "f16 %04x", i);
        else
            ck_assert_msg(f[i] == (float)want && !!signbit(f[i]) == sign, "f16 %04x: %g vs %g", i,
                          f[i], want);
    }
    ck_assert_int_eq(ct_dtype_to_f32(CT_DT_BF16, h, 65536, f), 0);
    for (uint32_t i = 0; i < 65536; i++) {
        int sign = i >> 15, e = (i >> 7) & 255, m = i & 127;
        double want = e == 0     ? ldexp(m, -133)
                      : e == 255 ? (m ? NAN : INFINITY)
                                 : ldexp(128 + m, e - 134);
        if (sign)
            want = -want;
        if (isnan(want))
            ck_assert_msg(isnan(f[i]), "bf16 %04x", i);
        else
            ck_assert_msg(f[i] == (float)want, "bf16 %04x: %g vs %g", i, f[i], want);
    }
    ck_assert_int_eq(ct_dtype_to_f32(CT_DT_I32, h, 1, f), CT_EFORMAT);
    ck_assert_str_eq(ct_dtype_name(CT_DT_F8_E4M3), "F8_E4M3");
    ck_assert_uint_eq(ct_dtype_size(CT_DT_U64), 8);
    free(h);
    free(f);
}
END_TEST

int main(void)
{
    make_run_tmpdir(g_tmp, sizeof g_tmp, "ckpt-st");
    Suite *s = suite_create("checkpoint_safetensors");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, real_tiny_gpt2);
    tcase_add_test(tc, real_fake_gpt2_tied);
    tcase_add_test(tc, writer_matches_reference_bytes);
    tcase_add_test(tc, writer_roundtrip_and_errors);
    tcase_add_test(tc, malformed_headers);
    tcase_add_test(tc, truncated_and_short_files);
    tcase_add_test(tc, fuzz_header_bytes);
    tcase_add_test(tc, dtype_widening_exhaustive);
    suite_add_tcase(s, tc);
    int rc = ct_test_run(s);
    remove_run_tmpdir(g_tmp);
    return rc;
}

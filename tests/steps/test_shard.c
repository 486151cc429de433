/* The step kinds' formats and helpers: 16-bit float rounding against independent
 * references, the seeded permutation, and the token-shard parser on good and damaged
 * input. */
#include "tests/support/testutil.h"

#include "common/error.h"
#include "pipeline/steps/shard.h"

#include <math.h>
#include <stdint.h>

static float from_bits(uint32_t u)
{
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* Nearest bf16 by comparing the two truncation neighbours in double precision; ties
 * go to the even mantissa. */
static uint16_t bf16_reference(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);
    double dl = fabs((double)x - (double)from_bits((uint32_t)lo << 16));
    double dh = fabs((double)from_bits((uint32_t)hi << 16) - (double)x);
    if (dl < dh)
        return lo;
    if (dh < dl)
        return hi;
    return (lo & 1) ? hi : lo;
}

START_TEST(bf16_rounds_to_nearest_even)
{
    uint64_t s = 1;
    for (int i = 0; i < 200000; i++) {
        uint32_t u = (uint32_t)ct_test_splitmix(&s);
        if (((u >> 23) & 0xff) >= 0xfe) /* keep away from inf/NaN and the top binade */
            continue;
        float x = from_bits(u);
        ck_assert_uint_eq(ct_f32_to_bf16(x), bf16_reference(x));
        ck_assert(ct_bf16_to_f32(ct_f32_to_bf16(x)) == from_bits((uint32_t)bf16_reference(x) << 16));
    }
    /* exact ties */
    ck_assert_uint_eq(ct_f32_to_bf16(from_bits(0x3f808000u)), 0x3f80); /* even below */
    ck_assert_uint_eq(ct_f32_to_bf16(from_bits(0x3f818000u)), 0x3f82); /* odd below: up */
    ck_assert(isnan(ct_bf16_to_f32(ct_f32_to_bf16(NAN))));
    ck_assert(isinf(ct_bf16_to_f32(ct_f32_to_bf16(INFINITY))));
}
END_TEST

START_TEST(fp16_matches_the_compiler)
{
    uint64_t s = 2;
    for (int i = 0; i < 200000; i++) {
        /* magnitudes from 2^-30 to 2^17: subnormals, normals, overflow */
        float x = ldexpf((float)(ct_test_splitmix(&s) >> 40) / (float)(1 << 24), (int)(ct_test_splitmix(&s) % 48) - 30);
        if (ct_test_splitmix(&s) & 1)
            x = -x;
        _Float16 ref = (_Float16)x;
        uint16_t rb;
        memcpy(&rb, &ref, 2);
        ck_assert_msg(ct_f32_to_f16(x) == rb, "%a: %04x vs %04x", (double)x, ct_f32_to_f16(x), rb);
        ck_assert(ct_f16_to_f32(rb) == (float)ref);
    }
    ck_assert(isnan(ct_f16_to_f32(ct_f32_to_f16(NAN))));
}
END_TEST

START_TEST(permutation_is_a_seeded_bijection)
{
    uint64_t sizes[] = {1, 2, 3, 7, 64, 100, 1000, 4097, 65536 + 3};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        uint64_t n = sizes[k];
        unsigned char *seen = calloc(n, 1);
        size_t fixed = 0;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t p = ct_steps_permute(i, n, 42);
            ck_assert_uint_lt(p, n);
            ck_assert_int_eq(seen[p], 0);
            seen[p] = 1;
            fixed += p == i;
            ck_assert_uint_eq(p, ct_steps_permute(i, n, 42)); /* deterministic */
        }
        if (n >= 1000)
            ck_assert_uint_lt(fixed, n / 50); /* it does shuffle */
        free(seen);
    }
    size_t same = 0;
    for (uint64_t i = 0; i < 1000; i++)
        same += ct_steps_permute(i, 1000, 1) == ct_steps_permute(i, 1000, 2);
    ck_assert_uint_lt(same, 20); /* the key matters */
}
END_TEST

START_TEST(token_shard_parse_and_damage)
{
    /* build a shard image by hand, independently of the writer */
    uint32_t T = 5;
    uint64_t n = 3;
    size_t len = 24 + n * T * 4 + n * 16;
    uint8_t *buf = calloc(len, 1);
    memcpy(buf, "CTTOKSHD", 8);
    buf[8] = 1;
    buf[12] = (uint8_t)T;
    buf[16] = (uint8_t)n;
    for (uint64_t i = 0; i < n * T; i++) {
        int32_t v = (int32_t)(i * 7 + 1);
        memcpy(buf + 24 + 4 * i, &v, 4);
    }
    for (uint64_t i = 0; i < n; i++) {
        uint64_t seq = 10 + i, doc = 100 + 2 * i;
        memcpy(buf + 24 + n * T * 4 + 8 * i, &seq, 8);
        memcpy(buf + 24 + n * T * 4 + 8 * (n + i), &doc, 8);
    }
    ct_tokshard s;
    ck_assert_int_eq(ct_tokshard_parse(buf, len, "t", &s), 0);
    ck_assert_uint_eq(s.seq_len, T);
    ck_assert_uint_eq(s.n_seq, n);
    ck_assert_int_eq(s.ids[7], 50);
    ck_assert_uint_eq(s.seq_index[2], 12);
    ck_assert_uint_eq(s.doc_index[1], 102);
    ct_tokshard_free(&s);
    /* every truncation is refused with a message naming the input */
    for (size_t l = 0; l < len; l++) {
        ck_assert_int_ne(ct_tokshard_parse(buf, l, "shard.bin", &s), 0);
        ck_assert_ptr_nonnull(strstr(ct_error_message(), "shard.bin"));
    }
    buf[16] = 0xff; /* a count far beyond the bytes */
    ck_assert_int_eq(ct_tokshard_parse(buf, len, "t", &s), CT_ECORRUPT);
    buf[16] = (uint8_t)n;
    buf[8] = 2;
    ck_assert_int_eq(ct_tokshard_parse(buf, len, "t", &s), CT_EFORMAT);
    free(buf);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("shard");
    TCase *tc = tcase_create("shard");
    tcase_add_test(tc, bf16_rounds_to_nearest_even);
    tcase_add_test(tc, fp16_matches_the_compiler);
    tcase_add_test(tc, permutation_is_a_seeded_bijection);
    tcase_add_test(tc, token_shard_parse_and_damage);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return ct_test_run(suite()); }

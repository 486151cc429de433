/* Canonical key encoding. The golden keys below were computed by an independent
 * implementation of the encoding described in pipeline/key.h (Python: json.dumps of
 * strings, sorted members, repr() of floats with the exponent normalised, SHA-256);
 * a change of the encoding must fail here and bump CT_KEY_ENCODING. */
#include "common/error.h"
#include "pipeline/key.h"
#include "tests/support/testutil.h"

static json_t *parse(const char *text)
{
    json_error_t err;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &err);
    ck_assert_msg(v != NULL, "bad test JSON: %s", err.text);
    return v;
}

static void key_hex_of(const char *material_json, char *hex)
{
    json_t *m = parse(material_json);
    uint8_t key[CT_KEY_LEN];
    ck_assert_int_eq(ct_key_of(m, key), 0);
    ct_key_hex(key, hex);
    json_decref(m);
}

START_TEST(golden_keys)
{
    static const struct {
        const char *material, *canonical, *key;
    } cases[] = {
        {"{\"v\":1,\"kind\":\"train\",\"version\":3,\"params\":{\"lr\":5e-05,\"seeds\":[124,153,6582],"
         "\"type\":\"l1\",\"l1_coeff\":2.0,\"name\":\"pythia \\\"1b\\\"\\n\"},\"inputs\":{\"a\":"
         "\"0000000000000000000000000000000000000000000000000000000000000000\",\"shards\":["
         "\"1111111111111111111111111111111111111111111111111111111111111111\","
         "\"2222222222222222222222222222222222222222222222222222222222222222\"]}}",
         "{\"inputs\":{\"a\":\"0000000000000000000000000000000000000000000000000000000000000000\","
         "\"shards\":[\"1111111111111111111111111111111111111111111111111111111111111111\","
         "\"2222222222222222222222222222222222222222222222222222222222222222\"]},\"kind\":\"train\","
         "\"params\":{\"l1_coeff\":2.0,\"lr\":5e-5,\"name\":\"pythia \\\"1b\\\"\\n\",\"seeds\":[124,153,"
         "6582],\"type\":\"l1\"},\"v\":1,\"version\":3}",
         "aa0701db741c5f4af3cbb6b7fbc12b4105043e279da4cd26b0f727515f889875"},
        {"{\"v\":1,\"kind\":\"toy_transform\",\"version\":1,\"params\":{},\"inputs\":{}}",
         "{\"inputs\":{},\"kind\":\"toy_transform\",\"params\":{},\"v\":1,\"version\":1}",
         "8d5920219a21f1226f3663cfdf61bb9f75c9b3913a24edab8bec52eb29782dca"},
        {"{\"v\":1,\"kind\":\"x\",\"version\":1,\"params\":{\"big\":1e300,\"small\":1.5e-7,"
         "\"neg\":-0.25,\"int\":-7,\"t\":true,\"f\":false,\"n\":null,\"u\":\"\\u00e9\"},\"inputs\":{}}",
         "{\"inputs\":{},\"kind\":\"x\",\"params\":{\"big\":1e300,\"f\":false,\"int\":-7,\"n\":null,"
         "\"neg\":-0.25,\"small\":1.5e-7,\"t\":true,\"u\":\"\xc3\xa9\"},\"v\":1,\"version\":1}",
         "ace79a6a556ca3f670927fa8db2de1bd046c1aba8f162cd23936113236c3ddea"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *m = parse(cases[i].material);
        char *text;
        ck_assert_int_eq(ct_canonical_json(m, &text, NULL), 0);
        ck_assert_str_eq(text, cases[i].canonical);
        free(text);
        json_decref(m);
        char hex[CT_KEY_HEX_LEN + 1];
        key_hex_of(cases[i].material, hex);
        ck_assert_str_eq(hex, cases[i].key);
    }
}
END_TEST

START_TEST(same_meaning_same_key)
{
    char a[CT_KEY_HEX_LEN + 1], b[CT_KEY_HEX_LEN + 1];
    /* member order, whitespace and number spelling do not matter */
    key_hex_of("{\"params\":{\"lr\":0.0001,\"b\":[1,2]},\"kind\":\"k\"}", a);
    key_hex_of("{ \"kind\" : \"k\",\n \"params\" : { \"b\" : [ 1 , 2 ], \"lr\" : 1e-4 } }", b);
    ck_assert_str_eq(a, b);
    key_hex_of("{\"x\":1.0e-04}", a);
    key_hex_of("{\"x\":0.00010}", b);
    ck_assert_str_eq(a, b);
    key_hex_of("{\"x\":0.0}", a);
    key_hex_of("{\"x\":-0.0}", b);
    ck_assert_str_eq(a, b);
}
END_TEST

START_TEST(any_change_changes_key)
{
    const char *variants[] = {
        "{\"kind\":\"k\",\"params\":{\"lr\":0.0001}}",
        "{\"kind\":\"k\",\"params\":{\"lr\":0.00010000000000000002}}", /* next double */
        "{\"kind\":\"k\",\"params\":{\"lr\":1}}",                     /* int vs real */
        "{\"kind\":\"k\",\"params\":{\"lr\":1.0}}",
        "{\"kind\":\"k\",\"params\":{\"lr\":\"1.0\"}}",
        "{\"kind\":\"k2\",\"params\":{\"lr\":0.0001}}",
        "{\"kind\":\"k\",\"params\":{\"Lr\":0.0001}}",
        "{\"kind\":\"k\",\"params\":{\"lr\":[0.0001]}}",
        "{\"kind\":\"k\",\"params\":{\"lr\":0.0001,\"x\":null}}",
    };
    size_t n = sizeof variants / sizeof *variants;
    char hex[16][CT_KEY_HEX_LEN + 1];
    for (size_t i = 0; i < n; i++) {
        key_hex_of(variants[i], hex[i]);
        for (size_t j = 0; j < i; j++)
            ck_assert_msg(strcmp(hex[i], hex[j]) != 0, "'%s' and '%s' share a key", variants[i], variants[j]);
    }
}
END_TEST

START_TEST(material_layout)
{
    json_t *params = parse("{\"a\":1}"), *inputs = parse("{\"x\":\"ab\"}"), *m;
    ck_assert_int_eq(ct_key_material("k", 7, params, inputs, &m), 0);
    char *text;
    ck_assert_int_eq(ct_canonical_json(m, &text, NULL), 0);
    ck_assert_str_eq(text, "{\"inputs\":{\"x\":\"ab\"},\"kind\":\"k\",\"params\":{\"a\":1},\"v\":1,\"version\":7}");
    free(text);
    json_decref(m);
    json_decref(params);
    json_decref(inputs);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("key");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, golden_keys);
    tcase_add_test(tc, same_meaning_same_key);
    tcase_add_test(tc, any_change_changes_key);
    tcase_add_test(tc, material_layout);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

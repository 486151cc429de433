/* RelIE, classes, selection, Spearman and overlap (analysis/relie.h) against values
 * worked out by hand. */
#include "analysis/relie.h"
#include "tests/support/testutil.h"

#include <math.h>

#define NEAR(a, b) ck_assert_msg(fabs((a) - (b)) < 1e-12, "%s = %.15g, want %.15g", #a, (double)(a), (double)(b))

START_TEST(test_relie_values)
{
    NEAR(ct_relie2(0, 0), 0.5);
    NEAR(ct_relie2(1, 3), 0.75);
    NEAR(ct_relie2(-1, 3), 0.75); /* magnitudes */
    NEAR(ct_relie2(2, 0), 0.0);
    double v[3], o[3];
    v[0] = 1, v[1] = 1, v[2] = 2;
    ct_relie_ova(v, 3, o);
    NEAR(o[0], 0.25); NEAR(o[1], 0.25); NEAR(o[2], 0.5);
    v[0] = v[1] = v[2] = 0;
    ct_relie_ova(v, 3, o);
    NEAR(o[0], 1.0 / 3); NEAR(o[2], 1.0 / 3);
    ct_relie_pairwise3(v, o);
    NEAR(o[0], 0.5); NEAR(o[1], 0.5); NEAR(o[2], 0.5);
    v[0] = 1, v[1] = 2, v[2] = 3;
    ct_relie_pairwise3(v, o);
    NEAR(o[0], 2.0 / 3); NEAR(o[1], 3.0 / 5); NEAR(o[2], 3.0 / 4);
    v[0] = 0, v[1] = 0, v[2] = 1;
    ct_relie_pairwise3(v, o);
    NEAR(o[0], 0.5); NEAR(o[1], 1); NEAR(o[2], 1);
}
END_TEST

static void expect_class(const double *a, int M, ct_relie_kind kind, int which, int other, const char *name)
{
    ct_relie_class c = ct_relie_classify(a, M);
    ck_assert_msg(c.kind == kind, "%s: kind %d", name, c.kind);
    if (kind == CT_RELIE_SPECIFIC || kind == CT_RELIE_PAIR)
        ck_assert_int_eq(c.which, which);
    if (kind == CT_RELIE_PAIR)
        ck_assert_int_eq(c.other, other);
    ck_assert_str_eq(ct_relie_class_name(c, M), name);
}

START_TEST(test_classes_two)
{
    expect_class((double[]){1, 0.2}, 2, CT_RELIE_SPECIFIC, 0, -1, "A-specific");
    expect_class((double[]){0.2, 1}, 2, CT_RELIE_SPECIFIC, 1, -1, "B-specific");
    expect_class((double[]){1, 1}, 2, CT_RELIE_SHARED, -1, -1, "shared");
    expect_class((double[]){0, 0}, 2, CT_RELIE_SHARED, -1, -1, "shared");
    /* the boundaries belong to "shared": < 0.3 and > 0.7 are strict */
    expect_class((double[]){7, 3}, 2, CT_RELIE_SHARED, -1, -1, "shared");
    expect_class((double[]){3, 7}, 2, CT_RELIE_SHARED, -1, -1, "shared");
    expect_class((double[]){-3, 0}, 2, CT_RELIE_SPECIFIC, 0, -1, "A-specific");
}
END_TEST

START_TEST(test_classes_three)
{
    expect_class((double[]){8, 1, 1}, 3, CT_RELIE_SPECIFIC, 0, -1, "A-specific");
    expect_class((double[]){1, 8, 1}, 3, CT_RELIE_SPECIFIC, 1, -1, "B-specific");
    expect_class((double[]){1, 1, 8}, 3, CT_RELIE_SPECIFIC, 2, -1, "C-specific");
    expect_class((double[]){1, 1, 1}, 3, CT_RELIE_SHARED, -1, -1, "shared");
    expect_class((double[]){0, 0, 0}, 3, CT_RELIE_SHARED, -1, -1, "shared");
    expect_class((double[]){4, 4, 2}, 3, CT_RELIE_PAIR, 0, 1, "pair:AB");
    expect_class((double[]){4, 2, 4}, 3, CT_RELIE_PAIR, 0, 2, "pair:AC");
    expect_class((double[]){0, 5, 5}, 3, CT_RELIE_PAIR, 1, 2, "pair:BC");
    expect_class((double[]){6, 2, 2}, 3, CT_RELIE_OTHER, -1, -1, "other");
    /* 0.7 is not above 0.7, 0.3 counts as >= 0.3 */
    expect_class((double[]){7, 3, 0}, 3, CT_RELIE_PAIR, 0, 1, "pair:AB");
    expect_class((double[]){3, 3, 4}, 3, CT_RELIE_SHARED, -1, -1, "shared");
}
END_TEST

START_TEST(test_select)
{
    const float ie[12] = {0, -5, 3, 3, 0.5f, 0, /* checkpoint A */
                          1, 0, 0, -2, 0, 4};   /* checkpoint B */
    int32_t out[20];
    size_t n = 99;
    ct_relie_select(ie, 2, 6, 2, out, &n);
    /* A: 1 (|5|), then 2 before 3 (tie, lower index); B: 5, 3 */
    ck_assert_uint_eq(n, 4);
    ck_assert_int_eq(out[0], 1); ck_assert_int_eq(out[1], 2); ck_assert_int_eq(out[2], 3);
    ck_assert_int_eq(out[3], 5);
    ct_relie_select(ie, 2, 6, 3, out, &n);
    ck_assert_uint_eq(n, 5); /* 0, 1, 2, 3, 5 */
    ck_assert_int_eq(out[0], 0); ck_assert_int_eq(out[4], 5);
    ct_relie_select(ie, 2, 6, 10, out, &n);
    ck_assert_uint_eq(n, 6); /* every latent nonzero somewhere */
    ct_relie_select(ie, 1, 6, 10, out, &n);
    ck_assert_uint_eq(n, 4); /* zeros of A are never selected: 1 2 3 4 */
    ck_assert_int_eq(out[0], 1); ck_assert_int_eq(out[3], 4);
    const float none[3] = {0, 0, 0};
    ct_relie_select(none, 1, 3, 2, out, &n);
    ck_assert_uint_eq(n, 0);
    ct_relie_select(ie, 2, 6, 0, out, &n);
    ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(test_spearman)
{
    double x[5] = {1, 2, 3, 4, 5}, y[5] = {5, 6, 7, 8, 7};
    /* ranks of y: 1 2 3.5 5 3.5 -> Σdxdy = 8, Σdx² = 10, Σdy² = 9.5 */
    NEAR(ct_spearman(x, y, 5), 8 / sqrt(95));
    double sq[5] = {1, 4, 9, 16, 25}, rev[5] = {9, 7, 5, 3, 1}, c[5] = {2, 2, 2, 2, 2};
    NEAR(ct_spearman(x, sq, 5), 1);
    NEAR(ct_spearman(x, rev, 5), -1);
    ck_assert(isnan(ct_spearman(x, c, 5)));
    ck_assert(isnan(ct_spearman(c, x, 5)));
    ck_assert(isnan(ct_spearman(x, y, 1)));
    ck_assert(isnan(ct_spearman(x, y, 0)));
    /* pairs with a NaN are left out: (1,3) (2,2) (3,1) remain */
    double xn[4] = {1, NAN, 2, 3}, yn[4] = {3, 1, 2, 1};
    NEAR(ct_spearman(xn, yn, 4), -1);
    double xa[3] = {NAN, 1, 2}, ya[3] = {1, NAN, 2};
    ck_assert(isnan(ct_spearman(xa, ya, 3)));
    /* ties on both sides: x ranks 1.5 1.5 3 4, y ranks 1 2.5 2.5 4 -> Σdxdy = 3.75,
     * Σdx² = Σdy² = 4.5 */
    double xt[4] = {0, 0, 1, 2}, yt[4] = {0, 1, 1, 3};
    NEAR(ct_spearman(xt, yt, 4), 3.75 / 4.5);
}
END_TEST

START_TEST(test_overlap)
{
    int32_t a[4] = {1, 3, 5, 7}, b[4] = {3, 4, 5, 8};
    ck_assert_uint_eq(ct_overlap_count(a, 4, b, 4), 2);
    ck_assert_uint_eq(ct_overlap_count(a, 4, a, 4), 4);
    ck_assert_uint_eq(ct_overlap_count(a, 0, b, 4), 0);
    ck_assert_uint_eq(ct_overlap_count(a, 1, b + 2, 2), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("relie");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_relie_values);
    tcase_add_test(tc, test_classes_two);
    tcase_add_test(tc, test_classes_three);
    tcase_add_test(tc, test_select);
    tcase_add_test(tc, test_spearman);
    tcase_add_test(tc, test_overlap);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ct_test_run(suite());
}

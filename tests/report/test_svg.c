/* The report's SVG helpers: tick positions on log and linear axes, tick labels,
 * placement of points on a log axis, escaping of every text, and byte-identical
 * output for the same data. */
#include "report/html.h"
#include "report/svg.h"
#include "tests/support/testutil.h"

#include <math.h>

/* Renders into a malloc'd string. */
static char *render_lines(const ct_svg_plot *p, const ct_svg_series *s, size_t n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(ct_svg_lines(f, p, s, n, NULL, NULL, 0), 0);
    fclose(f);
    return buf;
}

START_TEST(log_ticks_are_the_powers_of_ten_in_range)
{
    double t[16];
    /* Pythia's step64 (128M tokens) to main (286B) */
    size_t n = ct_svg_ticks(128e6, 286e9, 1, t, 16);
    size_t want = 0;
    for (int k = 0; k < 15; k++) { /* independent count: decades inside the range */
        double v = pow(10.0, k);
        if (v >= 128e6 && v <= 286e9) {
            ck_assert_uint_lt(want, n);
            ck_assert_double_eq_tol(t[want], v, v * 1e-12);
            want++;
        }
    }
    ck_assert_uint_eq(n, want);
    ck_assert_uint_eq(n, 3);
    /* within one decade: 1-2-5 steps */
    n = ct_svg_ticks(1.5e9, 9e9, 1, t, 16);
    ck_assert_uint_eq(n, 2);
    ck_assert_double_eq_tol(t[0], 2e9, 1);
    ck_assert_double_eq_tol(t[1], 5e9, 1);
    /* nothing on a log axis that includes 0 */
    ck_assert_uint_eq(ct_svg_ticks(0, 10, 1, t, 16), 0);
}
END_TEST

START_TEST(linear_ticks_step_by_one_two_five)
{
    double t[32];
    size_t n = ct_svg_ticks(0, 1, 0, t, 32);
    ck_assert_uint_eq(n, 6);
    for (size_t i = 0; i < n; i++)
        ck_assert_double_eq_tol(t[i], 0.2 * (double)i, 1e-12);
    n = ct_svg_ticks(-3, 47, 0, t, 32);
    ck_assert_uint_ge(n, 5);
    for (size_t i = 1; i < n; i++)
        ck_assert_double_eq_tol(t[i] - t[i - 1], 10, 1e-9);
    ck_assert(t[0] >= -3 && t[n - 1] <= 47);
    ck_assert_uint_eq(ct_svg_ticks(1, 0, 0, t, 32), 0);
}
END_TEST

START_TEST(tick_labels_use_si_suffixes)
{
    static const struct {
        double v;
        const char *s;
    } cases[] = {{1e9, "1B"}, {2.5e9, "2.5B"}, {1e4, "10K"}, {286e9, "286B"}, {1e12, "1T"},
                 {128e6, "128M"}, {0.25, "0.25"}, {1000, "1000"}, {0, "0"}, {-0.5, "-0.5"}};
    char buf[32];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ct_svg_tick_label(cases[i].v, buf, sizeof buf);
        ck_assert_str_eq(buf, cases[i].s);
    }
}
END_TEST

/* cx of every <circle in order */
static size_t circles(const char *svg, double *cx, size_t cap)
{
    size_t n = 0;
    for (const char *p = strstr(svg, "<circle cx=\""); p && n < cap; p = strstr(p + 1, "<circle cx=\""))
        cx[n++] = atof(p + 12);
    return n;
}

START_TEST(points_on_a_log_axis_are_evenly_spaced_by_decade)
{
    double x[4] = {1e8, 1e9, 1e10, 1e11}, y[4] = {0.5, 0.6, 0.7, 0.8}, cx[8];
    ct_svg_series s = {"task", x, y, 4};
    ct_svg_plot p = CT_SVG_PLOT_INIT;
    p.xlog = 1;
    p.title = "t";
    char *svg = render_lines(&p, &s, 1);
    ck_assert_uint_eq(circles(svg, cx, 8), 4);
    for (int i = 2; i < 4; i++)
        ck_assert_double_eq_tol(cx[i] - cx[i - 1], cx[1] - cx[0], 0.11);
    ck_assert(cx[1] > cx[0]);
    free(svg);
    /* a non-positive x is left out on a log axis, a NaN y breaks the line */
    double x2[4] = {0, 1e9, 1e10, 1e11}, y2[4] = {0.5, NAN, 0.7, 0.8};
    s = (ct_svg_series){"task", x2, y2, 4};
    svg = render_lines(&p, &s, 1);
    ck_assert_uint_eq(circles(svg, cx, 8), 2);
    ck_assert_ptr_null(strstr(svg, "nan"));
    ck_assert_ptr_null(strstr(svg, "inf"));
    free(svg);
}
END_TEST

START_TEST(all_text_is_escaped)
{
    static const char evil[] = "<script>alert('x')</script> & \"q\"";
    double x[2] = {1, 2}, y[2] = {1, 2};
    ct_svg_series s[2] = {{evil, x, y, 2}, {"b<", x, y, 2}};
    ct_svg_plot p = CT_SVG_PLOT_INIT;
    p.id = "id\"x";
    p.title = evil;
    p.xlabel = evil;
    p.ylabel = "y & z";
    char *svg = render_lines(&p, s, 2);
    ck_assert_ptr_null(strstr(svg, "<script"));
    ck_assert_ptr_null(strstr(svg, "b<"));
    ck_assert_ptr_null(strstr(svg, "id\"x"));
    ck_assert_ptr_nonnull(strstr(svg, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"));
    ck_assert_ptr_nonnull(strstr(svg, "y &amp; z"));
    free(svg);
    /* control characters (forbidden in XML) become U+FFFD, newline a visible arrow */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ct_html_escape(f, "a\x01" "b\nc\x7f", (size_t)-1);
    fclose(f);
    ck_assert_str_eq(buf, "a\xef\xbf\xbd" "b\xe2\x86\xb5" "c\xef\xbf\xbd");
    free(buf);
}
END_TEST

START_TEST(same_data_same_bytes)
{
    double x[3] = {1e9, 2e9, 4e9}, y[3] = {0.1, 0.2, 0.3};
    const char *labels[3] = {"A-specific", "shared", "B-specific"};
    double v[4] = {1, 0.25, 0.25, 1};
    const char *langs[2] = {"en", "fr"};
    ct_svg_band bands[2] = {{"low", 0, 0.3}, {"high", 0.7, 1}};
    char *out[2];
    for (int r = 0; r < 2; r++) {
        size_t len = 0;
        FILE *f = open_memstream(&out[r], &len);
        ct_svg_series s = {"s", x, y, 3};
        ct_svg_plot p = CT_SVG_PLOT_INIT;
        p.xlog = 1;
        ck_assert_int_eq(ct_svg_lines(f, &p, &s, 1, NULL, NULL, 0), 0);
        p.xlog = 0;
        double rx[3] = {0.1, 0.5, 0.9};
        ct_svg_series sc = {"latents", rx, y, 3};
        ck_assert_int_eq(ct_svg_scatter(f, &p, &sc, 1, bands, 2), 0);
        ck_assert_int_eq(ct_svg_bars(f, &p, labels, y, 3), 0);
        ck_assert_int_eq(ct_svg_heatmap(f, &p, langs, 2, langs, 2, v, 0, 1), 0);
        fclose(f);
    }
    ck_assert_str_eq(out[0], out[1]);
    ck_assert_ptr_nonnull(strstr(out[0], "class=\"band\""));
    ck_assert_ptr_nonnull(strstr(out[0], "class=\"bar\""));
    ck_assert_ptr_nonnull(strstr(out[0], "class=\"cell\""));
    free(out[0]);
    free(out[1]);
    /* and different data, different bytes */
    ct_svg_series s1 = {"s", x, y, 3};
    ct_svg_plot p = CT_SVG_PLOT_INIT;
    char *a = render_lines(&p, &s1, 1);
    y[1] = 0.25;
    char *b = render_lines(&p, &s1, 1);
    ck_assert_str_ne(a, b);
    free(a);
    free(b);
}
END_TEST

START_TEST(bad_arguments_fail_cleanly)
{
    ct_svg_plot p = CT_SVG_PLOT_INIT;
    p.width = 10;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_int_lt(ct_svg_lines(f, &p, NULL, 0, NULL, NULL, 0), 0);
    fclose(f);
    ck_assert_uint_eq(len, 0);
    free(buf);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("report_svg");
    TCase *tc = tcase_create("svg");
    tcase_add_test(tc, log_ticks_are_the_powers_of_ten_in_range);
    tcase_add_test(tc, linear_ticks_step_by_one_two_five);
    tcase_add_test(tc, tick_labels_use_si_suffixes);
    tcase_add_test(tc, points_on_a_log_axis_are_evenly_spaced_by_decade);
    tcase_add_test(tc, all_text_is_escaped);
    tcase_add_test(tc, same_data_same_bytes);
    tcase_add_test(tc, bad_arguments_fail_cleanly);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

/* RelIE, its classes, latent selection, Spearman's ρ and top-k overlap (METHOD §5–§7). */
#include "analysis/relie.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Both zero means no evidence either way: METHOD §5 puts such a latent in the middle. */
static double ratio(double num, double other)
{
    double s = num + other;
    return s > 0.0 ? num / s : 0.5;
}

double ct_relie2(double a, double b)
{
    return ratio(fabs(b), fabs(a));
}

void ct_relie_ova(const double *abs_ie, int M, double *out)
{
    double s = 0.0;
    for (int m = 0; m < M; m++)
        s += fabs(abs_ie[m]);
    for (int m = 0; m < M; m++)
        out[m] = s > 0.0 ? fabs(abs_ie[m]) / s : 1.0 / M;
}

void ct_relie_pairwise3(const double *abs_ie, double out[3])
{
    double a = fabs(abs_ie[0]), b = fabs(abs_ie[1]), c = fabs(abs_ie[2]);
    out[0] = ratio(b, a);
    out[1] = ratio(c, b);
    out[2] = ratio(c, a);
}

#define SPECIFIC_ABOVE 0.7
#define SHARED_FROM 0.3
#define CT_RELIE_MAX_NAMED 6 /* checkpoints with a letter in class names */

ct_relie_class ct_relie_classify(const double *abs_ie, int M)
{
    ct_relie_class c = {CT_RELIE_OTHER, -1, -1};
    if (M < 1 || M > 64)
        return c;
    if (M == 2) {
        double r = ct_relie2(abs_ie[0], abs_ie[1]);
        if (r < SHARED_FROM)
            c = (ct_relie_class){CT_RELIE_SPECIFIC, 0, -1};
        else if (r > SPECIFIC_ABOVE)
            c = (ct_relie_class){CT_RELIE_SPECIFIC, 1, -1};
        else
            c = (ct_relie_class){CT_RELIE_SHARED, -1, -1};
        return c;
    }
    /* M >= 3: the one-vs-all rule of METHOD §5, read for any M. "The maximum" uses the
     * first index on a tie; values above 0.7 summing to at most 1 cannot tie anyway. */
    double v[64];
    ct_relie_ova(abs_ie, M, v);
    int top = 0, n_high = 0, first = -1, second = -1;
    for (int m = 0; m < M; m++) {
        if (v[m] > v[top])
            top = m;
        if (v[m] >= SHARED_FROM) {
            n_high++;
            if (first < 0)
                first = m;
            else if (second < 0)
                second = m;
        }
    }
    if (v[top] > SPECIFIC_ABOVE)
        c = (ct_relie_class){CT_RELIE_SPECIFIC, top, -1};
    else if (n_high == M)
        c = (ct_relie_class){CT_RELIE_SHARED, -1, -1};
    else if (n_high == 2) /* "a pair >= 0.3": exactly two of them */
        c = (ct_relie_class){CT_RELIE_PAIR, first, second};
    return c;
}

const char *ct_relie_class_name(ct_relie_class c, int M)
{
    static const char *const specific[CT_RELIE_MAX_NAMED] = {"A-specific", "B-specific", "C-specific",
                                                              "D-specific", "E-specific", "F-specific"};
    static const char *const pair[CT_RELIE_MAX_NAMED][CT_RELIE_MAX_NAMED] = {
        {NULL, "pair:AB", "pair:AC", "pair:AD", "pair:AE", "pair:AF"},
        {NULL, NULL, "pair:BC", "pair:BD", "pair:BE", "pair:BF"},
        {NULL, NULL, NULL, "pair:CD", "pair:CE", "pair:CF"},
        {NULL, NULL, NULL, NULL, "pair:DE", "pair:DF"},
        {NULL, NULL, NULL, NULL, NULL, "pair:EF"},
        {NULL, NULL, NULL, NULL, NULL, NULL},
    };
    switch (c.kind) {
    case CT_RELIE_SPECIFIC:
        if (c.which >= 0 && c.which < M && c.which < CT_RELIE_MAX_NAMED)
            return specific[c.which];
        break;
    case CT_RELIE_SHARED:
        return "shared";
    case CT_RELIE_PAIR:
        if (c.which >= 0 && c.which < c.other && c.other < M && c.other < CT_RELIE_MAX_NAMED)
            return pair[c.which][c.other];
        break;
    case CT_RELIE_OTHER:
        return "other";
    }
    return "other";
}

/* Is latent a ranked before latent b by |IE| (ties: lower index first)? */
static int ranks_before(const float *ie, int32_t a, int32_t b)
{
    float x = fabsf(ie[a]), y = fabsf(ie[b]);
    return x > y || (x == y && a < b);
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

void ct_relie_select(const float *ie, int M, int H, int top_k, int32_t *out, size_t *n_out)
{
    size_t n = 0;
    for (int m = 0; m < M && top_k > 0; m++) {
        const float *row = ie + (size_t)m * H;
        /* A bounded insertion list: top_k is small (10 or 100) next to H. */
        int32_t *best = out + n;
        int kept = 0;
        for (int32_t j = 0; j < H; j++) {
            if (!(row[j] != 0.0f) || isnan(row[j]))
                continue;
            if (kept == top_k && !ranks_before(row, j, best[kept - 1]))
                continue;
            int at = kept < top_k ? kept++ : kept - 1;
            while (at > 0 && ranks_before(row, j, best[at - 1])) {
                best[at] = best[at - 1];
                at--;
            }
            best[at] = j;
        }
        n += (size_t)kept;
    }
    qsort(out, n, sizeof *out, cmp_i32);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || out[i] != out[u - 1])
            out[u++] = out[i];
    *n_out = u;
}

typedef struct {
    double v;
    size_t i;
} ranked;

static int cmp_ranked(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->v != y->v)
        return x->v < y->v ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* Average ranks (1-based) of v[0..n) into r, ties sharing the mean of their ranks. */
static void average_ranks(ranked *tmp, const double *v, size_t n, double *r)
{
    for (size_t i = 0; i < n; i++)
        tmp[i] = (ranked){v[i], i};
    qsort(tmp, n, sizeof *tmp, cmp_ranked);
    for (size_t a = 0; a < n;) {
        size_t b = a + 1;
        while (b < n && tmp[b].v == tmp[a].v)
            b++;
        double avg = 0.5 * (double)(a + 1 + b); /* mean of ranks a+1 .. b */
        for (size_t k = a; k < b; k++)
            r[tmp[k].i] = avg;
        a = b;
    }
}

double ct_spearman(const double *x, const double *y, size_t n)
{
    /* Pairs with a NaN on either side are left out (pandas' pairwise-complete rule), so
     * that one latent whose ablation ratio is 0/0 does not blank the whole correlation. */
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += !isnan(x[i]) && !isnan(y[i]);
    if (m < 2)
        return NAN;
    double *buf = malloc(4 * m * sizeof *buf);
    ranked *tmp = malloc(m * sizeof *tmp);
    if (!buf || !tmp) {
        free(buf);
        free(tmp);
        return NAN;
    }
    double *cx = buf, *cy = buf + m, *rx = buf + 2 * m, *ry = buf + 3 * m;
    for (size_t i = 0, k = 0; i < n; i++)
        if (!isnan(x[i]) && !isnan(y[i])) {
            cx[k] = x[i];
            cy[k++] = y[i];
        }
    average_ranks(tmp, cx, m, rx);
    average_ranks(tmp, cy, m, ry);
    double mean = 0.5 * (double)(m + 1), sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < m; i++) {
        double a = rx[i] - mean, b = ry[i] - mean;
        sxy += a * b;
        sxx += a * a;
        syy += b * b;
    }
    free(buf);
    free(tmp);
    if (sxx == 0.0 || syy == 0.0)
        return NAN;
    return sxy / sqrt(sxx * syy);
}

size_t ct_overlap_count(const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
    size_t i = 0, k = 0, n = 0;
    while (i < na && k < nb) {
        if (a[i] < b[k])
            i++;
        else if (a[i] > b[k])
            k++;
        else {
            n++;
            i++;
            k++;
        }
    }
    return n;
}

/* The report's RelIE, ablation-validation and language-overlap sections. */
#include "report/page.h"
#include "common/error.h"
#include "pipeline/key.h"
#include "pipeline/steps/shard.h"
#include "report/html.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --- RelIE ------------------------------------------------------------------------------ */

/* The rows of the latents table of crosscoder `cc` (and `task` when not NULL) at
 * checkpoint `ck` (NULL: any). Borrowed references in a new array. */
json_t *ct_rp_latent_rows(const report *r, const char *cc, const char *task, const char *ck)
{
    json_t *t = ct_rp_table(r, "latents"), *out = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(t, "rows"), i, row) {
        if (!ct_rp_cc_match(json_object_get(row, "crosscoder"), cc))
            continue;
        const char *rt = json_string_value(json_object_get(row, "task"));
        const char *rc = json_string_value(json_object_get(row, "checkpoint"));
        if ((task && (!rt || strcmp(rt, task))) || (ck && (!rc || strcmp(rc, ck))))
            continue;
        json_array_append(out, row);
    }
    return out;
}

static const char *last_ck(const json_t *cc)
{
    const json_t *names = json_object_get(cc, "checkpoints");
    return json_string_value(json_array_get(names, json_array_size(names) - 1));
}

static const char *class_of(const json_t *row)
{
    const char *c = json_string_value(json_object_get(row, "class"));
    return c ? c : "unclassified";
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Rows per class (new object); *names (calloc'd, *n of them) are the classes in name
 * order, so plots do not depend on row order. *names is NULL when out of memory. */
static json_t *classes_of(const json_t *rows, const char ***names, size_t *n)
{
    json_t *counts = json_object(), *row, *v;
    size_t i, k = 0;
    json_array_foreach(rows, i, row) {
        const char *c = class_of(row);
        json_object_set_new(counts, c, json_integer(json_integer_value(json_object_get(counts, c)) + 1));
    }
    *n = json_object_size(counts);
    *names = calloc(*n + 1, sizeof **names);
    const char *key;
    json_object_foreach(counts, key, v)
        if (*names)
            (*names)[k++] = key;
    if (*names)
        qsort(*names, *n, sizeof **names, cmp_str);
    return counts;
}

static void class_bars(report *r, const char *name, const json_t *rows)
{
    const char **labels;
    size_t n, k;
    json_t *counts = classes_of(rows, &labels, &n);
    double *values = calloc(n + 1, sizeof *values);
    if (labels && values) {
        for (k = 0; k < n; k++)
            values[k] = (double)json_integer_value(json_object_get(counts, labels[k]));
        char id[600], title[600];
        snprintf(id, sizeof id, "plot-classes-%s", name);
        snprintf(title, sizeof title, "%s: latents per class", name);
        ct_svg_plot p = ct_rp_plot_of(id, title, "class", "latents (count, over tasks)", 460, 300);
        ct_svg_bars(r->f, &p, labels, values, n);
    }
    free(labels);
    free(values);
    json_decref(counts);
}

static void relie_scatter(report *r, const json_t *cc, const char *name, const json_t *rows)
{
    /* one series per class, in name order */
    const char **names;
    size_t n, k, i;
    json_t *row, *classes = classes_of(rows, &names, &n);
    ct_rp_vec *xs = calloc(n + 1, sizeof *xs), *ys = calloc(n + 1, sizeof *ys);
    ct_svg_series *s = calloc(n + 1, sizeof *s);
    if (names && xs && ys && s) {
        json_array_foreach(rows, i, row) {
            const char *c = class_of(row);
            for (k = 0; k < n; k++)
                if (strcmp(names[k], c) == 0) {
                    ct_rp_vec_push(&xs[k], ct_rp_num(json_object_get(row, "relie")));
                    ct_rp_vec_push(&ys[k], ct_rp_num(json_object_get(row, "reldec")));
                }
        }
        for (k = 0; k < n; k++)
            s[k] = (ct_svg_series){names[k], xs[k].v, ys[k].v, xs[k].n};
        json_t *relie = json_object_get(r->src->recipe, "relie");
        double lo = ct_rp_num(json_object_get(relie, "low")), hi = ct_rp_num(json_object_get(relie, "high"));
        lo = isfinite(lo) ? lo : 0.3;
        hi = isfinite(hi) ? hi : 0.7;
        const json_t *cks = json_object_get(cc, "checkpoints");
        char b0[300], b2[300];
        snprintf(b0, sizeof b0, "%s-specific", json_string_value(json_array_get(cks, 0)));
        snprintf(b2, sizeof b2, "%s-specific", last_ck(cc));
        ct_svg_band bands[3] = {{b0, 0, lo}, {"shared", lo, hi}, {b2, hi, 1}};
        char id[600], title[600], xl[400];
        snprintf(id, sizeof id, "plot-relie-%s", name);
        snprintf(title, sizeof title, "%s: RelIE vs RelDec", name);
        snprintf(xl, sizeof xl, "RelIE of %s (fraction of |IE|)", last_ck(cc));
        ct_svg_plot p = ct_rp_plot_of(id, title, xl, "RelDec (fraction of decoder norm)", 560, 380);
        p.xmin = 0;
        p.xmax = 1;
        p.ymin = 0;
        p.ymax = 1;
        ct_svg_scatter(r->f, &p, s, n, bands, 3);
    }
    for (k = 0; xs && ys && k < n; k++) {
        free(xs[k].v);
        free(ys[k].v);
    }
    free(names);
    free(xs);
    free(ys);
    free(s);
    json_decref(classes);
}

double ct_rp_abs_ie_max(const report *r, const char *cc, const char *task, long long latent)
{
    char key[1024];
    snprintf(key, sizeof key, "%s\n%s\n%lld", cc, task, latent);
    return ct_rp_num(json_object_get(r->ie_max, key)) > 0 ? ct_rp_num(json_object_get(r->ie_max, key)) : 0;
}

/* IE per checkpoint of latents `ids` (n) for one task: a line per latent. */
void ct_rp_ie_plot(report *r, const json_t *cc, const char *name, const char *task, const long long *ids,
                    size_t n, const char *id, const char *title)
{
    const json_t *cks = json_object_get(cc, "checkpoints");
    size_t M = json_array_size(cks);
    double *x = calloc(M + 1, sizeof *x), *y = calloc(n * M + 1, sizeof *y);
    ct_svg_series *s = calloc(n + 1, sizeof *s);
    char (*names)[32] = calloc(n + 1, sizeof *names);
    const char **tl = calloc(M + 1, sizeof *tl);
    if (x && y && s && names && tl) {
        for (size_t m = 0; m < M; m++) {
            tl[m] = json_string_value(json_array_get(cks, m));
            x[m] = ct_rp_ck_tokens(r, tl[m]);
        }
        json_t *rows = ct_rp_latent_rows(r, name, task, NULL);
        for (size_t k = 0; k < n; k++) {
            for (size_t m = 0; m < M; m++) {
                y[k * M + m] = NAN;
                size_t i;
                json_t *row;
                json_array_foreach(rows, i, row)
                    if (json_integer_value(json_object_get(row, "latent")) == ids[k] &&
                        strcmp(ct_rp_str_or(json_object_get(row, "checkpoint")), tl[m]) == 0)
                        y[k * M + m] = ct_rp_num(json_object_get(row, "ie"));
            }
            snprintf(names[k], sizeof names[k], "latent %lld", ids[k]);
            s[k] = (ct_svg_series){names[k], x, y + k * M, M};
        }
        json_decref(rows);
        ct_svg_plot p = ct_rp_plot_of(id, title, "training tokens (log scale)", "IE (logit difference)", 560, 320);
        p.xlog = 1;
        ct_svg_lines(r->f, &p, s, n, x, tl, M);
    }
    free(x);
    free(y);
    free(s);
    free(names);
    free(tl);
}

static int cmp_desc(const void *a, const void *b)
{
    const double *x = a, *y = b; /* {score, latent} pairs: score down, then latent up */
    if (x[0] != y[0])
        return x[0] < y[0] ? 1 : -1;
    return (x[1] > y[1]) - (x[1] < y[1]);
}

static void trajectories(report *r, const json_t *cc, const char *name)
{
    json_t *tasks = ct_rp_distinct(ct_rp_table(r, "latents"), name, "task");
    size_t t;
    json_t *tv;
    json_array_foreach(tasks, t, tv) {
        const char *task = json_string_value(tv);
        json_t *rows = ct_rp_latent_rows(r, name, task, NULL);
        size_t nr = json_array_size(rows), n = 0, i;
        double *pairs = calloc(2 * nr + 2, sizeof *pairs);
        json_t *row;
        json_array_foreach(rows, i, row) { /* one entry per latent */
            long long j = json_integer_value(json_object_get(row, "latent"));
            size_t k;
            for (k = 0; k < n && pairs[2 * k + 1] != (double)j; k++)
                ;
            if (k == n && pairs) {
                pairs[2 * n] = ct_rp_abs_ie_max(r, name, task, j);
                pairs[2 * n + 1] = (double)j;
                n++;
            }
        }
        if (pairs && n) {
            qsort(pairs, n, 2 * sizeof *pairs, cmp_desc);
            long long ids[MAX_TRAJECTORIES];
            size_t k = n < MAX_TRAJECTORIES ? n : MAX_TRAJECTORIES;
            for (i = 0; i < k; i++)
                ids[i] = (long long)pairs[2 * i + 1];
            char id[700], title[700];
            snprintf(id, sizeof id, "plot-ie-%s-%s", name, task);
            snprintf(title, sizeof title, "%s, %s: IE of the top %zu latents", name, task, k);
            ct_rp_ie_plot(r, cc, name, task, ids, k, id, title);
        }
        free(pairs);
        json_decref(rows);
    }
    json_decref(tasks);
}

/* 1 when every attribute step of crosscoder `cc` (one per task) is in the cache. */
static int attributed(const report *r, const char *cc)
{
    size_t i, n = 0;
    json_t *task;
    json_array_foreach(json_object_get(r->src->recipe, "tasks"), i, task) {
        char label[1024];
        snprintf(label, sizeof label, "attribute/%s/%s", cc, json_string_value(task));
        json_t *rec = r->src->record(r->src->user, label);
        if (!rec) {
            ct_error_clear();
            return 0;
        }
        json_decref(rec);
        n++;
    }
    return n > 0;
}

void ct_rp_section_relie(report *r)
{
    FILE *f = r->f;
    ct_html_section_begin(f, "relie", "RelIE against RelDec, classes and IE trajectories");
    if (!ct_rp_table(r, "latents")) {
        ct_html_missing(f, "Latent attribution (RelIE, RelDec, classes)");
        ct_html_section_end(f);
        return;
    }
    fputs("<p>One point per latent and task with a nonzero IE; RelIE and RelDec are the one-vs-all values of "
          "the latest checkpoint of the crosscoder. Shaded: the class regions.</p>\n",
          f);
    size_t i;
    json_t *cc;
    json_array_foreach(r->ccs, i, cc) {
        const char *name = json_string_value(json_object_get(cc, "name"));
        json_t *rows = ct_rp_latent_rows(r, name, NULL, last_ck(cc));
        fputs("<h3>", f);
        ct_rp_put_text(f, name);
        fputs("</h3>\n", f);
        if (!json_array_size(rows) && attributed(r, name)) {
            fputs("<p>Attribution done: no latent of this crosscoder has an indirect effect above "
                  "<code>relie.threshold</code> on any task (the checkpoints' effects are all below it).</p>\n",
                  f);
        } else if (!json_array_size(rows)) {
            ct_html_missing(f, "Attribution of this crosscoder");
        } else {
            fputs("<div class=\"plots\">\n", f);
            relie_scatter(r, cc, name, rows);
            class_bars(r, name, rows);
            fputs("</div>\n<div class=\"plots\">\n", f);
            trajectories(r, cc, name);
            fputs("</div>\n", f);
        }
        json_decref(rows);
    }
    ct_html_section_end(f);
}

/* --- validation ---------------------------------------------------------------------------- */

/* Scatter behind the Spearman correlations: log10 |delta_B| / |delta_A| against RelIE
 * and against RelDec, per latent (two checkpoints: the first and the last). */
static void validation_scatter(report *r, const json_t *cc, const char *name, const char *task)
{
    const json_t *cks = json_object_get(cc, "checkpoints");
    const char *a = json_string_value(json_array_get(cks, 0)), *b = last_ck(cc);
    json_t *ra = ct_rp_latent_rows(r, name, task, a), *rb = ct_rp_latent_rows(r, name, task, b);
    ct_rp_vec x1 = {0}, y1 = {0}, x2 = {0}, y2 = {0};
    size_t i, j;
    json_t *row, *other;
    json_array_foreach(rb, i, row) {
        double db = ct_rp_num(json_object_get(row, "delta_lpd"));
        json_array_foreach(ra, j, other) {
            if (json_integer_value(json_object_get(other, "latent")) !=
                json_integer_value(json_object_get(row, "latent")))
                continue;
            double da = ct_rp_num(json_object_get(other, "delta_lpd"));
            if (!isfinite(da) || !isfinite(db) || da == 0 || db == 0)
                break;
            double ratio = log10(fabs(db) / fabs(da));
            ct_rp_vec_push(&x1, ct_rp_num(json_object_get(row, "relie")));
            ct_rp_vec_push(&y1, ratio);
            ct_rp_vec_push(&x2, ct_rp_num(json_object_get(row, "reldec")));
            ct_rp_vec_push(&y2, ratio);
            break;
        }
    }
    if (x1.n) {
        ct_svg_series s[2] = {{"RelIE", x1.v, y1.v, x1.n}, {"RelDec", x2.v, y2.v, x2.n}};
        char id[700], title[700], yl[400];
        snprintf(id, sizeof id, "plot-validation-%s-%s", name, task);
        snprintf(title, sizeof title, "%s, %s: ablation effect ratio", name, task);
        snprintf(yl, sizeof yl, "log10 |dLPD %s| / |dLPD %s|", b, a);
        ct_svg_plot p = ct_rp_plot_of(id, title, "score (RelIE or RelDec, fraction)", yl, 560, 340);
        p.xmin = 0;
        p.xmax = 1;
        ct_svg_scatter(r->f, &p, s, 2, NULL, 0);
    }
    free(x1.v);
    free(y1.v);
    free(x2.v);
    free(y2.v);
    json_decref(ra);
    json_decref(rb);
}

void ct_rp_section_validation(report *r)
{
    FILE *f = r->f;
    ct_html_section_begin(f, "validation", "Ablation validation of RelIE");
    json_t *t = ct_rp_table(r, "validation");
    if (!t) {
        ct_html_missing(f, "Ablation validation (Spearman correlations)");
        ct_html_section_end(f);
        return;
    }
    fputs("<p>Spearman correlation, across the selected latents, between the ratio of ablation effects "
          "|dLPD later| / |dLPD earlier| and RelIE, and the same ratio and RelDec. RelIE should track the "
          "ablation effects better.</p>\n",
          f);
    static const char *const heads[] = {"crosscoder", "task", "latents", "rho RelIE", "rho RelDec", "key"};
    ct_rp_open_table(f, heads, 6);
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(t, "rows"), i, row) {
        static const char *const cols[] = {"crosscoder", "task", "n_latents", "rho_relie", "rho_reldec", "key"};
        static const char *const fmts[] = {"%g", "%g", "%g", "%.3f", "%.3f", "key"};
        fputs("<tr>", f);
        for (size_t c = 0; c < 6; c++)
            ct_rp_td(f, json_object_get(row, cols[c]), fmts[c], c < 2);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n<div class=\"plots\">\n", f);
    json_t *cc;
    json_array_foreach(r->ccs, i, cc) {
        const char *name = json_string_value(json_object_get(cc, "name"));
        size_t k;
        json_array_foreach(json_object_get(t, "rows"), k, row)
            if (ct_rp_cc_match(json_object_get(row, "crosscoder"), name) && json_is_string(json_object_get(row, "task")))
                validation_scatter(r, cc, name, json_string_value(json_object_get(row, "task")));
    }
    fputs("</div>\n", f);
    ct_html_section_end(f);
}

/* --- language overlap ------------------------------------------------------------------------ */

void ct_rp_section_overlap(report *r)
{
    FILE *f = r->f;
    ct_html_section_begin(f, "overlap", "Cross-lingual overlap of top latents");
    json_t *t = ct_rp_table(r, "overlap");
    if (!r->multilingual && !t) {
        fputs("<p>Not a multilingual recipe (no <code>languages</code>).</p>\n", f);
        ct_html_section_end(f);
        return;
    }
    if (!t) {
        ct_html_missing(f, "Language overlap");
        ct_html_section_end(f);
        return;
    }
    json_t *langs = json_array(), *seen = json_object();
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(t, "rows"), i, row)
        for (int s = 0; s < 2; s++) {
            const char *l = json_string_value(json_object_get(row, s ? "lang_b" : "lang_a"));
            if (l && !json_object_get(seen, l)) {
                json_object_set_new(seen, l, json_true());
                json_array_append_new(langs, json_string(l));
            }
        }
    size_t nl = json_array_size(langs);
    const char **names = calloc(nl + 1, sizeof *names);
    double *v = calloc(nl * nl + 1, sizeof *v);
    json_t *ccs = ct_rp_distinct(t, NULL, "crosscoder");
    fputs("<div class=\"plots\">\n", f);
    json_t *ccv;
    for (i = 0; names && v && i < json_array_size(ccs); i++) {
        ccv = json_array_get(ccs, i);
        for (size_t a = 0; a < nl; a++) {
            names[a] = json_string_value(json_array_get(langs, a));
            for (size_t b = 0; b < nl; b++)
                v[a * nl + b] = a == b ? 1.0 : NAN;
        }
        long long top_k = 0;
        size_t k;
        json_array_foreach(json_object_get(t, "rows"), k, row) {
            if (!json_equal(json_object_get(row, "crosscoder"), ccv))
                continue;
            size_t a = nl, b = nl;
            for (size_t q = 0; q < nl; q++) {
                if (strcmp(names[q], ct_rp_str_or(json_object_get(row, "lang_a"))) == 0)
                    a = q;
                if (strcmp(names[q], ct_rp_str_or(json_object_get(row, "lang_b"))) == 0)
                    b = q;
            }
            if (a < nl && b < nl) {
                v[a * nl + b] = v[b * nl + a] = ct_rp_num(json_object_get(row, "fraction"));
                top_k = json_integer_value(json_object_get(row, "top_k"));
            }
        }
        char id[600], title[600];
        snprintf(id, sizeof id, "plot-overlap-%s", json_string_value(ccv));
        snprintf(title, sizeof title, "%s: shared top-%lld latents", json_string_value(ccv), top_k);
        ct_svg_plot p = ct_rp_plot_of(id, title, "language", "language", 250 + 70 * (int)nl, 120 + 40 * (int)nl);
        ct_svg_heatmap(f, &p, names, nl, names, nl, v, 0, 1);
    }
    fputs("</div>\n<p>Cell: fraction of the top latents by |IE| the two languages share.</p>\n", f);
    free(names);
    free(v);
    json_decref(ccs);
    json_decref(langs);
    json_decref(seen);
    ct_html_section_end(f);
}

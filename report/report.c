/* The report assembler (report/report.h): sections in page order, each drawn from the
 * step records, artifacts and result tables its source gives, or marked as not
 * computed yet. */
#include "report/report.h"
#include "common/error.h"
#include "pipeline/key.h"
#include "pipeline/steps/shard.h"
#include "report/html.h"
#include "report/svg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Latent sections per crosscoder at most (the rest are counted, not shown). */
#define MAX_LATENT_SECTIONS 100
/* Lines of an IE trajectory plot. */
#define MAX_TRAJECTORIES 8

typedef struct {
    const ct_report_source *src;
    FILE *f;
    json_t *cks;     /* recipe checkpoints [{name, tokens}] */
    json_t *tables;  /* name -> table (absent: not available) */
    json_t *ccs;     /* [{"name": "a-b/seed1", "label": "train/...", "checkpoints": [names]}] */
    int multilingual;
} report;

/* --- small helpers ------------------------------------------------------------------ */

static double num(const json_t *v) { return json_is_number(v) ? json_number_value(v) : NAN; }

static void put_num(FILE *f, const json_t *v, const char *fmt)
{
    if (json_is_integer(v))
        fprintf(f, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v) && isfinite(json_real_value(v)))
        fprintf(f, fmt, json_real_value(v));
    else if (json_is_string(v))
        ct_html_escape(f, json_string_value(v), (size_t)-1);
    else if (json_is_true(v))
        fputs("yes", f);
    else if (json_is_false(v))
        fputs("no", f);
    else
        fputs("&#8212;", f);
}

static const char *str_or(const json_t *v) { return json_is_string(v) ? json_string_value(v) : ""; }

static void put_text(FILE *f, const char *s) { ct_html_escape(f, s ? s : "", (size_t)-1); }

static double ck_tokens(const report *r, const char *name)
{
    size_t i;
    json_t *ck;
    json_array_foreach(r->cks, i, ck)
        if (strcmp(json_string_value(json_object_get(ck, "name")), name) == 0)
            return num(json_object_get(ck, "tokens"));
    return NAN;
}

static json_t *table(const report *r, const char *name)
{
    json_t *t = json_object_get(r->tables, name);
    return json_array_size(json_object_get(t, "rows")) ? t : NULL;
}

/* A table value names crosscoder `cc` as "a-b/seed1" or "train/a-b/seed1". */
static int cc_match(const json_t *v, const char *cc)
{
    const char *s = json_string_value(v);
    if (!s)
        return 0;
    return strcmp(s, cc) == 0 || (strncmp(s, "train/", 6) == 0 && strcmp(s + 6, cc) == 0);
}

static int is_true(const json_t *v) { return json_is_true(v) || (json_is_integer(v) && json_integer_value(v)); }

/* Unique, sorted strings of column `col` of the flat table's rows of crosscoder `cc`. */
static json_t *distinct(const json_t *t, const char *cc, const char *col)
{
    json_t *seen = json_object(), *out = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(t, "rows"), i, row) {
        const char *v = json_string_value(json_object_get(row, col));
        if (v && (!cc || cc_match(json_object_get(row, "crosscoder"), cc)) && !json_object_get(seen, v)) {
            json_object_set_new(seen, v, json_true());
            json_array_append_new(out, json_string(v));
        }
    }
    json_decref(seen);
    return out;
}

/* One table cell; a "key" cell shows the first 12 hex digits of a step key. */
static void td(FILE *f, const json_t *v, const char *fmt, int left)
{
    fputs(left ? "<td class=\"l\">" : "<td>", f);
    if (fmt && strcmp(fmt, "key") == 0)
        fprintf(f, "<code>%.12s</code>", json_is_string(v) ? json_string_value(v) : "");
    else
        put_num(f, v, fmt);
    fputs("</td>", f);
}

/* A plot's frame: id, title, axis labels (with units) and size in pixels. */
static ct_svg_plot plot_of(const char *id, const char *title, const char *xlabel, const char *ylabel, int width,
                           int height)
{
    ct_svg_plot p = CT_SVG_PLOT_INIT;
    p.id = id;
    p.title = title;
    p.xlabel = xlabel;
    p.ylabel = ylabel;
    p.width = width;
    p.height = height;
    return p;
}

static void open_table(FILE *f, const char *const *heads, size_t n)
{
    fputs("<table>\n<tr>", f);
    for (size_t i = 0; i < n; i++) {
        fputs(i == 0 ? "<th class=\"l\">" : "<th>", f);
        put_text(f, heads[i]);
        fputs("</th>", f);
    }
    fputs("</tr>\n", f);
}

/* --- header, navigation --------------------------------------------------------------- */

static const struct {
    const char *id, *title;
} sections[] = {
    {"accuracy", "Task accuracy"},          {"crosscoders", "Crosscoders"},
    {"relie", "RelIE and RelDec"},          {"validation", "Ablation validation"},
    {"overlap", "Language overlap"},        {"latents", "Selected latents"},
    {"provenance", "Recipe and provenance"},
};

static void header(report *r)
{
    FILE *f = r->f;
    const char *name = json_string_value(json_object_get(r->src->recipe, "name"));
    char title[512];
    snprintf(title, sizeof title, "crosstime report: %s", name ? name : "recipe");
    ct_html_begin(f, title);
    fputs("<header><h1>", f);
    put_text(f, title);
    fputs("</h1><p>", f);
    put_text(f, json_string_value(json_object_get(r->src->recipe, "description")));
    fputs("</p></header>\n<nav>", f);
    for (size_t i = 0; i < sizeof sections / sizeof *sections; i++) {
        fputs("<a href=\"#", f);
        put_text(f, sections[i].id);
        fputs("\">", f);
        put_text(f, sections[i].title);
        fputs("</a>", f);
    }
    fputs("</nav>\n<main>\n", f);
}

/* --- task accuracy ---------------------------------------------------------------------- */

static void section_accuracy(report *r)
{
    FILE *f = r->f;
    ct_html_section_begin(f, "accuracy", "Task accuracy per checkpoint");
    json_t *t = table(r, "accuracy");
    if (!t) {
        ct_html_missing(f, json_array_size(json_object_get(r->src->recipe, "tasks")) ? "Task accuracy"
                                                                                         : "Task accuracy (no tasks)");
        ct_html_section_end(f);
        return;
    }
    json_t *cols = json_object_get(t, "columns"), *rows = json_object_get(t, "rows");
    size_t nc = json_array_size(cols), nr = json_array_size(rows), i, j;
    double *x = calloc(nc + 1, sizeof *x), *y = calloc(nr * nc + 1, sizeof *y);
    ct_svg_series *s = calloc(nr + 1, sizeof *s);
    if (x && y && s) {
        json_t *col, *row, *cell;
        json_array_foreach(cols, j, col)
            x[j] = ck_tokens(r, json_string_value(col));
        json_array_foreach(rows, i, row) {
            json_array_foreach(json_object_get(row, "cells"), j, cell)
                if (j < nc)
                    y[i * nc + j] = cell ? num(json_object_get(cell, "accuracy")) : NAN;
            for (j = json_array_size(json_object_get(row, "cells")); j < nc; j++)
                y[i * nc + j] = NAN;
            s[i] = (ct_svg_series){json_string_value(json_object_get(row, "task")), x, y + i * nc, nc};
        }
        ct_svg_plot p = plot_of("plot-accuracy", "Task accuracy by training tokens", "training tokens (log scale)",
                                "accuracy (fraction of pairs)", 900, 360);
        p.xlog = 1;
        p.ymin = 0;
        p.ymax = 1;
        ct_svg_lines(f, &p, s, nr, NULL, NULL, 0);
        /* the table behind the plot */
        fputs("<table>\n<tr><th class=\"l\">task</th>", f);
        json_array_foreach(cols, j, col) {
            fputs("<th>", f);
            put_text(f, json_string_value(col));
            fputs("</th>", f);
        }
        fputs("</tr>\n", f);
        json_array_foreach(rows, i, row) {
            fputs("<tr><td class=\"l\">", f);
            put_text(f, json_string_value(json_object_get(row, "task")));
            fputs("</td>", f);
            json_array_foreach(json_object_get(row, "cells"), j, cell) {
                fputs("<td", f);
                if (json_string_value(json_object_get(cell, "key"))) {
                    fputs(" title=\"key ", f);
                    put_text(f, json_string_value(json_object_get(cell, "key")));
                    fputs("\"", f);
                }
                fputs(">", f);
                put_num(f, json_object_get(cell, "accuracy"), "%.3f");
                fputs("</td>", f);
            }
            fputs("</tr>\n", f);
        }
        fputs("</table>\n", f);
        if (json_integer_value(json_object_get(t, "missing")))
            fprintf(f, "<p class=\"missing\">%lld of %lld cells: not computed yet.</p>\n",
                    (long long)json_integer_value(json_object_get(t, "missing")),
                    (long long)json_integer_value(json_object_get(t, "cells")));
    }
    free(x);
    free(y);
    free(s);
    ct_html_section_end(f);
}

/* --- crosscoders ------------------------------------------------------------------------ */

typedef struct {
    double *v;
    size_t n, cap;
} vec;

static void vec_push(vec *a, double x)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 64;
        double *t = realloc(a->v, cap * sizeof *t);
        if (!t)
            return; /* the plot loses a point; the page is still written */
        a->v = t;
        a->cap = cap;
    }
    a->v[a->n++] = x;
}

/* Metric series of one split: step, loss, l0, and ev per checkpoint. */
typedef struct {
    vec step, loss, l0, ev[8];
} curves;

static void curves_free(curves *c)
{
    free(c->step.v);
    free(c->loss.v);
    free(c->l0.v);
    for (int m = 0; m < 8; m++)
        free(c->ev[m].v);
}

/* Reads the metric lines of a train artifact into train and val curves; *last_train and
 * *last_val receive the last line of each split (new references). */
static void read_curves(const char *text, size_t len, int M, curves *tr, curves *va, json_t **last_train,
                        json_t **last_val)
{
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        json_t *o = json_loadb(p, n, 0, NULL);
        p += n + 1;
        if (!o)
            continue;
        const char *split = json_string_value(json_object_get(o, "split"));
        int is_val = split && strcmp(split, "val") == 0;
        curves *c = is_val ? va : tr;
        vec_push(&c->step, num(json_object_get(o, "step")));
        vec_push(&c->loss, num(json_object_get(o, "loss")));
        vec_push(&c->l0, num(json_object_get(o, "l0")));
        for (int m = 0; m < M && m < 8; m++)
            vec_push(&c->ev[m], num(json_array_get(json_object_get(o, "ev"), (size_t)m)));
        json_t **last = is_val ? last_val : last_train;
        json_decref(*last);
        *last = o;
    }
}

static void plot_curves(report *r, const json_t *cc, const char *name, const curves *tr, const curves *va)
{
    FILE *f = r->f;
    char id[600], title[600];
    const json_t *names = json_object_get(cc, "checkpoints");
    size_t M = json_array_size(names);
    fputs("<div class=\"plots\">\n", f);
    snprintf(id, sizeof id, "plot-loss-%s", name);
    snprintf(title, sizeof title, "%s: training loss", name);
    ct_svg_plot p = plot_of(id, title, "optimiser step", "loss (L2 + lambda L1)", 460, 300);
    ct_svg_series s[9] = {{"train", tr->step.v, tr->loss.v, tr->step.n}};
    ct_svg_lines(f, &p, s, 1, NULL, NULL, 0);
    snprintf(id, sizeof id, "plot-l0-%s", name);
    snprintf(title, sizeof title, "%s: L0", name);
    p.ylabel = "L0 (active latents per token)";
    s[0] = (ct_svg_series){"train", tr->step.v, tr->l0.v, tr->step.n};
    s[1] = (ct_svg_series){"validation", va->step.v, va->l0.v, va->step.n};
    ct_svg_lines(f, &p, s, va->step.n ? 2 : 1, NULL, NULL, 0);
    const curves *ev = va->step.n ? va : tr;
    snprintf(id, sizeof id, "plot-ev-%s", name);
    snprintf(title, sizeof title, "%s: explained variance (%s)", name, va->step.n ? "validation" : "train");
    p.ylabel = "explained variance (fraction)";
    for (size_t m = 0; m < M && m < 8; m++)
        s[m] = (ct_svg_series){json_string_value(json_array_get(names, m)), ev->step.v, ev->ev[m].v,
                               ev->step.n};
    ct_svg_lines(f, &p, s, M < 8 ? M : 8, NULL, NULL, 0);
    fputs("</div>\n", f);
}

/* The final metrics: the crosscoders table's rows of this crosscoder when present,
 * else the last metric lines. */
static void final_metrics(report *r, const char *name, const json_t *last_train, const json_t *last_val)
{
    FILE *f = r->f;
    json_t *t = table(r, "crosscoders");
    size_t i;
    json_t *row;
    int shown = 0;
    if (t) {
        static const char *const cols[] = {"checkpoint", "l2", "l1", "l0", "dead", "explained_variance",
                                           "ce_clean", "ce_spliced", "delta_ce", "key"};
        static const char *const heads[] = {"checkpoint", "L2", "L1", "L0", "dead latents",
                                            "explained variance", "CE clean (nats)", "CE spliced (nats)",
                                            "delta CE (nats)", "key"};
        json_array_foreach(json_object_get(t, "rows"), i, row) {
            if (!cc_match(json_object_get(row, "crosscoder"), name))
                continue;
            if (!shown++)
                open_table(f, heads, sizeof heads / sizeof *heads);
            fputs("<tr>", f);
            for (size_t c = 0; c < sizeof cols / sizeof *cols; c++)
                td(f, json_object_get(row, cols[c]), strcmp(cols[c], "key") == 0 ? "key" : "%.4g", c == 0);
            fputs("</tr>\n", f);
        }
        if (shown)
            fputs("</table>\n", f);
    }
    if (!shown) {
        ct_html_missing(f, "Evaluation (dead latents, delta CE)");
        const json_t *last = last_val ? last_val : last_train;
        if (last) {
            fprintf(f, "<p>Last %s metrics at step ", last_val ? "validation" : "training");
            put_num(f, json_object_get(last, "step"), "%g");
            fputs(": L2 ", f);
            put_num(f, json_object_get(last, "l2"), "%.4g");
            fputs(", L1 ", f);
            put_num(f, json_object_get(last, "l1"), "%.4g");
            fputs(", L0 ", f);
            put_num(f, json_object_get(last, "l0"), "%.4g");
            fputs(".</p>\n", f);
        }
    }
}

static void section_crosscoders(report *r)
{
    FILE *f = r->f;
    ct_html_section_begin(f, "crosscoders", "Crosscoders: training and evaluation");
    if (!json_array_size(r->ccs))
        ct_html_missing(f, "Crosscoders (none planned)");
    size_t i;
    json_t *cc;
    json_array_foreach(r->ccs, i, cc) {
        const char *name = json_string_value(json_object_get(cc, "name"));
        const char *label = json_string_value(json_object_get(cc, "label"));
        fputs("<h3>", f);
        put_text(f, name);
        fputs("</h3>\n", f);
        char *art = NULL;
        size_t len = 0;
        if (r->src->artifact(r->src->user, label, &art, &len) != 0) {
            ct_error_clear();
            ct_html_missing(f, "Training");
            final_metrics(r, name, NULL, NULL);
            continue;
        }
        const void *model;
        const char *metrics;
        size_t mlen, xlen;
        curves tr = {0}, va = {0};
        json_t *last_train = NULL, *last_val = NULL;
        if (ct_steps_train_parse(art, len, label, &model, &mlen, &metrics, &xlen) == 0) {
            read_curves(metrics, xlen, (int)json_array_size(json_object_get(cc, "checkpoints")), &tr, &va,
                        &last_train, &last_val);
            plot_curves(r, cc, name, &tr, &va);
        } else {
            fputs("<p class=\"missing\">", f);
            put_text(f, ct_error_message());
            fputs("</p>\n", f);
            ct_error_clear();
        }
        final_metrics(r, name, last_train, last_val);
        json_decref(last_train);
        json_decref(last_val);
        curves_free(&tr);
        curves_free(&va);
        free(art);
    }
    ct_html_section_end(f);
}

/* --- RelIE ------------------------------------------------------------------------------ */

/* The rows of the latents table of crosscoder `cc` (and `task` when not NULL) at
 * checkpoint `ck` (NULL: any). Borrowed references in a new array. */
static json_t *latent_rows(const report *r, const char *cc, const char *task, const char *ck)
{
    json_t *t = table(r, "latents"), *out = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(t, "rows"), i, row) {
        if (!cc_match(json_object_get(row, "crosscoder"), cc))
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
        ct_svg_plot p = plot_of(id, title, "class", "latents (count, over tasks)", 460, 300);
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
    vec *xs = calloc(n + 1, sizeof *xs), *ys = calloc(n + 1, sizeof *ys);
    ct_svg_series *s = calloc(n + 1, sizeof *s);
    if (names && xs && ys && s) {
        json_array_foreach(rows, i, row) {
            const char *c = class_of(row);
            for (k = 0; k < n; k++)
                if (strcmp(names[k], c) == 0) {
                    vec_push(&xs[k], num(json_object_get(row, "relie")));
                    vec_push(&ys[k], num(json_object_get(row, "reldec")));
                }
        }
        for (k = 0; k < n; k++)
            s[k] = (ct_svg_series){names[k], xs[k].v, ys[k].v, xs[k].n};
        json_t *relie = json_object_get(r->src->recipe, "relie");
        double lo = num(json_object_get(relie, "low")), hi = num(json_object_get(relie, "high"));
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
        ct_svg_plot p = plot_of(id, title, xl, "RelDec (fraction of decoder norm)", 560, 380);
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

static double abs_ie_max(const report *r, const char *cc, const char *task, long long latent)
{
    json_t *rows = latent_rows(r, cc, task, NULL);
    double best = 0;
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
        if (json_integer_value(json_object_get(row, "latent")) == latent) {
            double v = fabs(num(json_object_get(row, "ie")));
            best = v > best ? v : best;
        }
    json_decref(rows);
    return best;
}

/* IE per checkpoint of latents `ids` (n) for one task: a line per latent. */
static void ie_plot(report *r, const json_t *cc, const char *name, const char *task, const long long *ids,
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
            x[m] = ck_tokens(r, tl[m]);
        }
        json_t *rows = latent_rows(r, name, task, NULL);
        for (size_t k = 0; k < n; k++) {
            for (size_t m = 0; m < M; m++) {
                y[k * M + m] = NAN;
                size_t i;
                json_t *row;
                json_array_foreach(rows, i, row)
                    if (json_integer_value(json_object_get(row, "latent")) == ids[k] &&
                        strcmp(str_or(json_object_get(row, "checkpoint")), tl[m]) == 0)
                        y[k * M + m] = num(json_object_get(row, "ie"));
            }
            snprintf(names[k], sizeof names[k], "latent %lld", ids[k]);
            s[k] = (ct_svg_series){names[k], x, y + k * M, M};
        }
        json_decref(rows);
        ct_svg_plot p = plot_of(id, title, "training tokens (log scale)", "IE (logit difference)", 560, 320);
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
    json_t *tasks = distinct(table(r, "latents"), name, "task");
    size_t t;
    json_t *tv;
    json_array_foreach(tasks, t, tv) {
        const char *task = json_string_value(tv);
        json_t *rows = latent_rows(r, name, task, NULL);
        size_t nr = json_array_size(rows), n = 0, i;
        double *pairs = calloc(2 * nr + 2, sizeof *pairs);
        json_t *row;
        json_array_foreach(rows, i, row) { /* one entry per latent */
            long long j = json_integer_value(json_object_get(row, "latent"));
            size_t k;
            for (k = 0; k < n && pairs[2 * k + 1] != (double)j; k++)
                ;
            if (k == n && pairs) {
                pairs[2 * n] = abs_ie_max(r, name, task, j);
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
            ie_plot(r, cc, name, task, ids, k, id, title);
        }
        free(pairs);
        json_decref(rows);
    }
    json_decref(tasks);
}

static void section_relie(report *r)
{
    FILE *f = r->f;
    ct_html_section_begin(f, "relie", "RelIE against RelDec, classes and IE trajectories");
    if (!table(r, "latents")) {
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
        json_t *rows = latent_rows(r, name, NULL, last_ck(cc));
        fputs("<h3>", f);
        put_text(f, name);
        fputs("</h3>\n", f);
        if (!json_array_size(rows)) {
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
    json_t *ra = latent_rows(r, name, task, a), *rb = latent_rows(r, name, task, b);
    vec x1 = {0}, y1 = {0}, x2 = {0}, y2 = {0};
    size_t i, j;
    json_t *row, *other;
    json_array_foreach(rb, i, row) {
        double db = num(json_object_get(row, "delta_lpd"));
        json_array_foreach(ra, j, other) {
            if (json_integer_value(json_object_get(other, "latent")) !=
                json_integer_value(json_object_get(row, "latent")))
                continue;
            double da = num(json_object_get(other, "delta_lpd"));
            if (!isfinite(da) || !isfinite(db) || da == 0 || db == 0)
                break;
            double ratio = log10(fabs(db) / fabs(da));
            vec_push(&x1, num(json_object_get(row, "relie")));
            vec_push(&y1, ratio);
            vec_push(&x2, num(json_object_get(row, "reldec")));
            vec_push(&y2, ratio);
            break;
        }
    }
    if (x1.n) {
        ct_svg_series s[2] = {{"RelIE", x1.v, y1.v, x1.n}, {"RelDec", x2.v, y2.v, x2.n}};
        char id[700], title[700], yl[400];
        snprintf(id, sizeof id, "plot-validation-%s-%s", name, task);
        snprintf(title, sizeof title, "%s, %s: ablation effect ratio", name, task);
        snprintf(yl, sizeof yl, "log10 |dLPD %s| / |dLPD %s|", b, a);
        ct_svg_plot p = plot_of(id, title, "score (RelIE or RelDec, fraction)", yl, 560, 340);
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

static void section_validation(report *r)
{
    FILE *f = r->f;
    ct_html_section_begin(f, "validation", "Ablation validation of RelIE");
    json_t *t = table(r, "validation");
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
    open_table(f, heads, 6);
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(t, "rows"), i, row) {
        static const char *const cols[] = {"crosscoder", "task", "n_latents", "rho_relie", "rho_reldec", "key"};
        static const char *const fmts[] = {"%g", "%g", "%g", "%.3f", "%.3f", "key"};
        fputs("<tr>", f);
        for (size_t c = 0; c < 6; c++)
            td(f, json_object_get(row, cols[c]), fmts[c], c < 2);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n<div class=\"plots\">\n", f);
    json_t *cc;
    json_array_foreach(r->ccs, i, cc) {
        const char *name = json_string_value(json_object_get(cc, "name"));
        size_t k;
        json_array_foreach(json_object_get(t, "rows"), k, row)
            if (cc_match(json_object_get(row, "crosscoder"), name) && json_is_string(json_object_get(row, "task")))
                validation_scatter(r, cc, name, json_string_value(json_object_get(row, "task")));
    }
    fputs("</div>\n", f);
    ct_html_section_end(f);
}

/* --- language overlap ------------------------------------------------------------------------ */

static void section_overlap(report *r)
{
    FILE *f = r->f;
    ct_html_section_begin(f, "overlap", "Cross-lingual overlap of top latents");
    json_t *t = table(r, "overlap");
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
    json_t *ccs = distinct(t, NULL, "crosscoder");
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
                if (strcmp(names[q], str_or(json_object_get(row, "lang_a"))) == 0)
                    a = q;
                if (strcmp(names[q], str_or(json_object_get(row, "lang_b"))) == 0)
                    b = q;
            }
            if (a < nl && b < nl) {
                v[a * nl + b] = v[b * nl + a] = num(json_object_get(row, "fraction"));
                top_k = json_integer_value(json_object_get(row, "top_k"));
            }
        }
        char id[600], title[600];
        snprintf(id, sizeof id, "plot-overlap-%s", json_string_value(ccv));
        snprintf(title, sizeof title, "%s: shared top-%lld latents", json_string_value(ccv), top_k);
        ct_svg_plot p = plot_of(id, title, "language", "language", 250 + 70 * (int)nl, 120 + 40 * (int)nl);
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

/* --- selected latents --------------------------------------------------------------------------- */

static void contexts_table(FILE *f, const json_t *ctxs)
{
    static const char *const heads[] = {"#", "activation", "sequence", "position", "context"};
    open_table(f, heads, 5);
    size_t i;
    json_t *c;
    json_array_foreach(ctxs, i, c) {
        fprintf(f, "<tr><td class=\"l\">%zu</td>", i + 1);
        td(f, json_object_get(c, "act"), "%.3f", 0);
        td(f, json_object_get(c, "seq"), "%g", 0);
        td(f, json_object_get(c, "pos"), "%g", 0);
        fputs("<td class=\"l ctx\">", f);
        long long fire = json_integer_value(json_object_get(c, "fire"));
        size_t k;
        json_t *piece;
        json_array_foreach(json_object_get(c, "pieces"), k, piece) {
            if ((long long)k == fire)
                fputs("<mark>", f);
            put_text(f, json_string_value(piece));
            if ((long long)k == fire)
                fputs("</mark>", f);
        }
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n", f);
}

static void latent_section(report *r, const json_t *cc, const char *name, long long j, const json_t *ann)
{
    FILE *f = r->f;
    const json_t *cks = json_object_get(cc, "checkpoints");
    fprintf(f, "<div class=\"latent\" id=\"latent-");
    put_text(f, name);
    fprintf(f, "-%lld\">\n<h3>", j);
    put_text(f, name);
    fprintf(f, ", latent %lld</h3>\n", j);
    json_t *tasks = distinct(table(r, "latents"), name, "task");
    if (json_array_size(tasks)) {
        static const char *const heads[] = {"task", "checkpoint", "IE", "RelIE", "RelDec", "class",
                                            "dLPD (ablation)", "dAcc (ablation)"};
        open_table(f, heads, 8);
        size_t t;
        json_t *tv;
        json_array_foreach(tasks, t, tv) {
            json_t *rows = latent_rows(r, name, json_string_value(tv), NULL);
            size_t i;
            json_t *row;
            json_array_foreach(rows, i, row) {
                if (json_integer_value(json_object_get(row, "latent")) != j)
                    continue;
                static const char *const cols[] = {"task", "checkpoint", "ie", "relie",
                                                   "reldec", "class", "delta_lpd", "delta_acc"};
                fputs("<tr>", f);
                for (size_t c = 0; c < 8; c++)
                    td(f, json_object_get(row, cols[c]), "%.4g", c < 2);
                fputs("</tr>\n", f);
            }
            json_decref(rows);
        }
        fputs("</table>\n", f);
        json_array_foreach(tasks, t, tv) {
            char id[700], title[700];
            snprintf(id, sizeof id, "plot-latent-%s-%lld-%s", name, j, json_string_value(tv));
            snprintf(title, sizeof title, "latent %lld, %s: IE per checkpoint", j, json_string_value(tv));
            if (abs_ie_max(r, name, json_string_value(tv), j) > 0)
                ie_plot(r, cc, name, json_string_value(tv), &j, 1, id, title);
        }
    } else {
        ct_html_missing(f, "RelIE, RelDec and IE of this latent");
    }
    json_decref(tasks);
    if (!ann) {
        ct_html_missing(f, "Top-activating contexts");
    } else {
        size_t m;
        json_t *ctxs;
        json_array_foreach(json_object_get(ann, "contexts"), m, ctxs) {
            fputs("<p><b>Top contexts on ", f);
            put_text(f, json_string_value(json_array_get(cks, m)));
            fputs("</b> (activation from this checkpoint's residual; highlighted: the token it fires on)</p>\n",
                  f);
            if (json_array_size(ctxs))
                contexts_table(f, ctxs);
            else
                fputs("<p>Does not fire on the annotated sequences.</p>\n", f);
        }
        if (r->multilingual) {
            /* annotate (pipeline/steps/annotate.c): the languages of the top contexts, most
             * first, and the firing rate per language and checkpoint */
            json_t *langs = json_object_get(ann, "languages"), *rates = json_object_get(ann, "fire_rate");
            fputs("<p>Languages it fires on: ", f);
            if (json_array_size(langs)) {
                size_t k;
                json_t *l;
                json_array_foreach(langs, k, l) {
                    fputs(k ? ", " : "", f);
                    put_text(f, json_string_value(l));
                }
                fputs(" (those of its top contexts, most first)", f);
            } else if (json_object_size(rates)) {
                fputs("none", f);
            } else {
                fputs("not recorded (the corpus is not a corpus.mix of 2 or more languages)", f);
            }
            fputs(".</p>\n", f);
            if (json_object_size(rates)) {
                size_t M = json_array_size(cks), m;
                const char **heads = calloc(M + 1, sizeof *heads);
                if (heads) {
                    heads[0] = "language";
                    for (m = 0; m < M; m++)
                        heads[m + 1] = json_string_value(json_array_get(cks, m));
                    fputs("<p>Share of each language's annotated tokens on which it fires, from each "
                          "checkpoint's residual:</p>\n", f);
                    open_table(f, heads, M + 1);
                    const char *code;
                    json_t *row;
                    json_object_foreach(rates, code, row) {
                        json_t *name = json_string(code);
                        fputs("<tr>", f);
                        td(f, name, NULL, 1);
                        for (m = 0; m < M; m++)
                            td(f, json_array_get(row, m), "%.3g", 0);
                        fputs("</tr>\n", f);
                        json_decref(name);
                    }
                    fputs("</table>\n", f);
                    free(heads);
                }
            }
        }
    }
    fputs("</div>\n", f);
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static void section_latents(report *r)
{
    FILE *f = r->f;
    ct_html_section_begin(f, "latents", "Selected latents");
    fputs("<p>The latents the attribution selected (top by |IE| per checkpoint) and those the annotate step "
          "annotated, with their top-activating contexts on held-out text.</p>\n",
          f);
    size_t i;
    json_t *cc;
    json_array_foreach(r->ccs, i, cc) {
        const char *name = json_string_value(json_object_get(cc, "name"));
        char label[600], *art = NULL;
        size_t len = 0;
        snprintf(label, sizeof label, "annotate/%s", name);
        json_t *ann = NULL;
        if (r->src->artifact(r->src->user, label, &art, &len) == 0)
            ann = json_loadb(art, len, 0, NULL);
        ct_error_clear();
        free(art);
        /* the union of the selected and the annotated latents, ascending */
        json_t *rows = latent_rows(r, name, NULL, NULL);
        size_t cap = json_array_size(rows) + json_array_size(json_object_get(ann, "latents")) + 1, n = 0, k;
        long long *ids = calloc(cap, sizeof *ids);
        json_t *row;
        json_array_foreach(rows, k, row)
            if (ids && is_true(json_object_get(row, "selected")))
                ids[n++] = json_integer_value(json_object_get(row, "latent"));
        json_array_foreach(json_object_get(ann, "latents"), k, row)
            if (ids)
                ids[n++] = json_integer_value(json_object_get(row, "latent"));
        json_decref(rows);
        if (ids)
            qsort(ids, n, sizeof *ids, cmp_ll);
        size_t u = 0;
        for (k = 0; k < n; k++)
            if (u == 0 || ids[u - 1] != ids[k])
                ids[u++] = ids[k];
        fputs("<h3>", f);
        put_text(f, name);
        fprintf(f, " (%zu latents)</h3>\n", u);
        if (!u)
            ct_html_missing(f, "Latent selection and annotation");
        for (k = 0; k < u && k < MAX_LATENT_SECTIONS; k++) {
            json_t *a = NULL;
            size_t q;
            json_t *l;
            json_array_foreach(json_object_get(ann, "latents"), q, l)
                if (json_integer_value(json_object_get(l, "latent")) == ids[k])
                    a = l;
            latent_section(r, cc, name, ids[k], a);
        }
        if (u > MAX_LATENT_SECTIONS)
            fprintf(f, "<p>%zu more latents are not shown.</p>\n", u - MAX_LATENT_SECTIONS);
        free(ids);
        json_decref(ann);
    }
    ct_html_section_end(f);
}

/* --- recipe and provenance ------------------------------------------------------------------------ */

static void section_provenance(report *r)
{
    FILE *f = r->f;
    ct_html_section_begin(f, "provenance", "Recipe and provenance");
    fputs("<h3>Recipe (as loaded, with defaults)</h3>\n<pre id=\"recipe\">", f);
    char *text = json_dumps(r->src->recipe, JSON_INDENT(2) | JSON_SORT_KEYS);
    put_text(f, text ? text : "");
    free(text);
    fputs("</pre>\n<h3>Steps</h3>\n<p>Every number above comes from one of these cache entries (key = SHA-256 "
          "of the step's kind, version, parameters and input keys; <code>crosstime why KEY</code> explains "
          "one).</p>\n",
          f);
    static const char *const heads[] = {"step", "kind", "key", "crosstime", "recipe commit"};
    open_table(f, heads, 5);
    size_t i;
    json_t *st;
    json_array_foreach(r->src->steps, i, st) {
        const char *label = json_string_value(json_object_get(st, "label"));
        json_t *rec = r->src->record(r->src->user, label);
        fputs("<tr><td class=\"l\">", f);
        put_text(f, label);
        fputs("</td><td class=\"l\">", f);
        put_text(f, json_string_value(json_object_get(st, "kind")));
        fputs("</td>", f);
        uint8_t key[CT_KEY_LEN];
        char hex[CT_KEY_HEX_LEN + 1];
        if (!rec || ct_key_of(json_object_get(rec, "material"), key) != 0) {
            ct_error_clear();
            fputs("<td class=\"l\" colspan=\"3\">not computed yet</td></tr>\n", f);
            json_decref(rec);
            continue;
        }
        ct_key_hex(key, hex);
        json_t *prov = json_object_get(rec, "provenance"), *git = json_object_get(prov, "recipe_git");
        fprintf(f, "<td class=\"l\"><code title=\"%s\">%.16s</code></td><td class=\"l\">", hex, hex);
        put_num(f, json_object_get(prov, "crosstime"), "%g");
        fputs("</td><td class=\"l\">", f);
        if (json_is_string(json_object_get(git, "commit"))) {
            fprintf(f, "<code>%.12s</code>", json_string_value(json_object_get(git, "commit")));
            if (json_is_true(json_object_get(git, "dirty")))
                fputs(" (dirty)", f);
        } else {
            fputs("not in a repository", f);
        }
        fputs("</td></tr>\n", f);
        json_decref(rec);
    }
    fputs("</table>\n", f);
    ct_html_section_end(f);
}

/* --- assembly ------------------------------------------------------------------------------------- */

/* The planned crosscoders, from the recipe's tuples and seeds (train labels). */
static json_t *crosscoders(const ct_report_source *src)
{
    json_t *out = json_array(), *planned = json_object();
    size_t i, k;
    json_t *st, *tuple, *seed;
    json_array_foreach(src->steps, i, st)
        json_object_set(planned, str_or(json_object_get(st, "label")), json_true());
    json_array_foreach(json_object_get(src->recipe, "tuples"), i, tuple) {
        char names[512] = "";
        json_t *nm;
        json_array_foreach(tuple, k, nm) {
            size_t l = strlen(names);
            snprintf(names + l, sizeof names - l, "%s%s", k ? "-" : "", json_string_value(nm));
        }
        json_array_foreach(json_object_get(json_object_get(src->recipe, "crosscoder"), "seeds"), k, seed) {
            char name[600], label[700];
            snprintf(name, sizeof name, "%s/seed%lld", names, (long long)json_integer_value(seed));
            snprintf(label, sizeof label, "train/%s", name);
            if (json_object_get(planned, label))
                json_array_append_new(out, json_pack("{s:s, s:s, s:O}", "name", name, "label", label,
                                                     "checkpoints", tuple));
        }
    }
    json_decref(planned);
    return out;
}

int ct_report_write(const ct_report_source *src, FILE *out)
{
    static const char *const names[] = {"accuracy", "crosscoders", "latents", "validation", "overlap"};
    report r = {src, out, json_object_get(json_object_get(src->recipe, "model"), "checkpoints"), json_object(),
                crosscoders(src), 0};
    if (!r.tables || !r.ccs) {
        json_decref(r.tables);
        json_decref(r.ccs);
        return ct_error_set(CT_ENOMEM, "out of memory");
    }
    r.multilingual = json_array_size(json_object_get(src->recipe, "languages")) > 0 ||
                     json_object_size(json_object_get(json_object_get(src->recipe, "corpus"), "languages")) > 0 ||
                     json_object_size(json_object_get(json_object_get(src->recipe, "corpus"), "mix")) > 1;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        json_t *t = src->table ? src->table(src->user, names[i]) : NULL;
        if (t)
            json_object_set_new(r.tables, names[i], t);
    }
    header(&r);
    section_accuracy(&r);
    section_crosscoders(&r);
    section_relie(&r);
    section_validation(&r);
    section_overlap(&r);
    section_latents(&r);
    section_provenance(&r);
    fputs("</main>\n", out);
    ct_html_end(out);
    json_decref(r.tables);
    json_decref(r.ccs);
    if (fflush(out) != 0 || ferror(out))
        return ct_error_set(CT_EIO, "cannot write the report");
    return 0;
}

/* The report's task-accuracy and crosscoder sections. */
#include "report/page.h"
#include "common/error.h"
#include "pipeline/key.h"
#include "pipeline/steps/shard.h"
#include "report/html.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --- task accuracy ---------------------------------------------------------------------- */

void ct_rp_section_accuracy(report *r)
{
    FILE *f = r->f;
    ct_html_section_begin(f, "accuracy", "Task accuracy per checkpoint");
    json_t *t = ct_rp_table(r, "accuracy");
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
            x[j] = ct_rp_ck_tokens(r, json_string_value(col));
        json_array_foreach(rows, i, row) {
            json_array_foreach(json_object_get(row, "cells"), j, cell)
                if (j < nc)
                    y[i * nc + j] = cell ? ct_rp_num(json_object_get(cell, "accuracy")) : NAN;
            for (j = json_array_size(json_object_get(row, "cells")); j < nc; j++)
                y[i * nc + j] = NAN;
            s[i] = (ct_svg_series){json_string_value(json_object_get(row, "task")), x, y + i * nc, nc};
        }
        ct_svg_plot p = ct_rp_plot_of("plot-accuracy", "Task accuracy by training tokens", "training tokens (log scale)",
                                "accuracy (fraction of pairs)", 900, 360);
        p.xlog = 1;
        p.ymin = 0;
        p.ymax = 1;
        ct_svg_lines(f, &p, s, nr, NULL, NULL, 0);
        /* the table behind the plot */
        fputs("<table>\n<tr><th class=\"l\">task</th>", f);
        json_array_foreach(cols, j, col) {
            fputs("<th>", f);
            ct_rp_put_text(f, json_string_value(col));
            fputs("</th>", f);
        }
        fputs("</tr>\n", f);
        json_array_foreach(rows, i, row) {
            fputs("<tr><td class=\"l\">", f);
            ct_rp_put_text(f, json_string_value(json_object_get(row, "task")));
            fputs("</td>", f);
            json_array_foreach(json_object_get(row, "cells"), j, cell) {
                fputs("<td", f);
                if (json_string_value(json_object_get(cell, "key"))) {
                    fputs(" title=\"key ", f);
                    ct_rp_put_text(f, json_string_value(json_object_get(cell, "key")));
                    fputs("\"", f);
                }
                fputs(">", f);
                ct_rp_put_num(f, json_object_get(cell, "accuracy"), "%.3f");
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

/* Metric series of one split: step, loss, l0, and ev per checkpoint. */
typedef struct {
    ct_rp_vec step, loss, l0, ev[8];
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
        ct_rp_vec_push(&c->step, ct_rp_num(json_object_get(o, "step")));
        ct_rp_vec_push(&c->loss, ct_rp_num(json_object_get(o, "loss")));
        ct_rp_vec_push(&c->l0, ct_rp_num(json_object_get(o, "l0")));
        for (int m = 0; m < M && m < 8; m++)
            ct_rp_vec_push(&c->ev[m], ct_rp_num(json_array_get(json_object_get(o, "ev"), (size_t)m)));
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
    ct_svg_plot p = ct_rp_plot_of(id, title, "optimiser step", "loss (L2 + lambda L1)", 460, 300);
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
    json_t *t = ct_rp_table(r, "crosscoders");
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
            if (!ct_rp_cc_match(json_object_get(row, "crosscoder"), name))
                continue;
            if (!shown++)
                ct_rp_open_table(f, heads, sizeof heads / sizeof *heads);
            fputs("<tr>", f);
            for (size_t c = 0; c < sizeof cols / sizeof *cols; c++)
                ct_rp_td(f, json_object_get(row, cols[c]), strcmp(cols[c], "key") == 0 ? "key" : "%.4g", c == 0);
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
            ct_rp_put_num(f, json_object_get(last, "step"), "%g");
            fputs(": L2 ", f);
            ct_rp_put_num(f, json_object_get(last, "l2"), "%.4g");
            fputs(", L1 ", f);
            ct_rp_put_num(f, json_object_get(last, "l1"), "%.4g");
            fputs(", L0 ", f);
            ct_rp_put_num(f, json_object_get(last, "l0"), "%.4g");
            fputs(".</p>\n", f);
        }
    }
}

void ct_rp_section_crosscoders(report *r)
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
        ct_rp_put_text(f, name);
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
            ct_rp_put_text(f, ct_error_message());
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

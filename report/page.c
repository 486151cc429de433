/* Helpers shared by the report's sections (report/page.h). */
#include "report/page.h"
#include "common/error.h"
#include "pipeline/key.h"
#include "pipeline/steps/shard.h"
#include "report/html.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --- small helpers ------------------------------------------------------------------ */

double ct_rp_num(const json_t *v) { return json_is_number(v) ? json_number_value(v) : NAN; }

void ct_rp_put_num(FILE *f, const json_t *v, const char *fmt)
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

const char *ct_rp_str_or(const json_t *v) { return json_is_string(v) ? json_string_value(v) : ""; }

void ct_rp_put_text(FILE *f, const char *s) { ct_html_escape(f, s ? s : "", (size_t)-1); }

double ct_rp_ck_tokens(const report *r, const char *name)
{
    size_t i;
    json_t *ck;
    json_array_foreach(r->cks, i, ck)
        if (strcmp(json_string_value(json_object_get(ck, "name")), name) == 0)
            return ct_rp_num(json_object_get(ck, "tokens"));
    return NAN;
}

json_t *ct_rp_table(const report *r, const char *name)
{
    json_t *t = json_object_get(r->tables, name);
    return json_array_size(json_object_get(t, "rows")) ? t : NULL;
}

/* A table value names crosscoder `cc` as "a-b/seed1" or "train/a-b/seed1". */
int ct_rp_cc_match(const json_t *v, const char *cc)
{
    const char *s = json_string_value(v);
    if (!s)
        return 0;
    return strcmp(s, cc) == 0 || (strncmp(s, "train/", 6) == 0 && strcmp(s + 6, cc) == 0);
}

int ct_rp_is_true(const json_t *v) { return json_is_true(v) || (json_is_integer(v) && json_integer_value(v)); }

/* Unique, sorted strings of column `col` of the flat table's rows of crosscoder `cc`. */
json_t *ct_rp_distinct(const json_t *t, const char *cc, const char *col)
{
    json_t *seen = json_object(), *out = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(t, "rows"), i, row) {
        const char *v = json_string_value(json_object_get(row, col));
        if (v && (!cc || ct_rp_cc_match(json_object_get(row, "crosscoder"), cc)) && !json_object_get(seen, v)) {
            json_object_set_new(seen, v, json_true());
            json_array_append_new(out, json_string(v));
        }
    }
    json_decref(seen);
    return out;
}

/* One table cell; a "key" cell shows the first 12 hex digits of a step key. */
void ct_rp_td(FILE *f, const json_t *v, const char *fmt, int left)
{
    fputs(left ? "<td class=\"l\">" : "<td>", f);
    if (fmt && strcmp(fmt, "key") == 0)
        fprintf(f, "<code>%.12s</code>", json_is_string(v) ? json_string_value(v) : "");
    else
        ct_rp_put_num(f, v, fmt);
    fputs("</td>", f);
}

/* A plot's frame: id, title, axis labels (with units) and size in pixels. */
ct_svg_plot ct_rp_plot_of(const char *id, const char *title, const char *xlabel, const char *ylabel, int width,
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

void ct_rp_open_table(FILE *f, const char *const *heads, size_t n)
{
    fputs("<table>\n<tr>", f);
    for (size_t i = 0; i < n; i++) {
        fputs(i == 0 ? "<th class=\"l\">" : "<th>", f);
        ct_rp_put_text(f, heads[i]);
        fputs("</th>", f);
    }
    fputs("</tr>\n", f);
}

void ct_rp_vec_push(ct_rp_vec *a, double x)
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

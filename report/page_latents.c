/* The report's section per selected latent: scores, IE per checkpoint, top contexts. */
#include "report/page.h"
#include "common/error.h"
#include "pipeline/key.h"
#include "pipeline/steps/shard.h"
#include "report/html.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --- selected latents --------------------------------------------------------------------------- */

static void contexts_table(FILE *f, const json_t *ctxs)
{
    static const char *const heads[] = {"#", "activation", "sequence", "position", "context"};
    ct_rp_open_table(f, heads, 5);
    size_t i;
    json_t *c;
    json_array_foreach(ctxs, i, c) {
        fprintf(f, "<tr><td class=\"l\">%zu</td>", i + 1);
        ct_rp_td(f, json_object_get(c, "act"), "%.3f", 0);
        ct_rp_td(f, json_object_get(c, "seq"), "%g", 0);
        ct_rp_td(f, json_object_get(c, "pos"), "%g", 0);
        fputs("<td class=\"l ctx\">", f);
        long long fire = json_integer_value(json_object_get(c, "fire"));
        size_t k;
        json_t *piece;
        json_array_foreach(json_object_get(c, "pieces"), k, piece) {
            if ((long long)k == fire)
                fputs("<mark>", f);
            ct_rp_put_text(f, json_string_value(piece));
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
    ct_rp_put_text(f, name);
    fprintf(f, "-%lld\">\n<h3>", j);
    ct_rp_put_text(f, name);
    fprintf(f, ", latent %lld</h3>\n", j);
    json_t *tasks = ct_rp_distinct(ct_rp_table(r, "latents"), name, "task");
    if (json_array_size(tasks)) {
        static const char *const heads[] = {"task", "checkpoint", "IE", "RelIE", "RelDec", "class",
                                            "dLPD (ablation)", "dAcc (ablation)"};
        ct_rp_open_table(f, heads, 8);
        size_t t;
        json_t *tv;
        json_array_foreach(tasks, t, tv) {
            json_t *rows = ct_rp_latent_rows(r, name, json_string_value(tv), NULL);
            size_t i;
            json_t *row;
            json_array_foreach(rows, i, row) {
                if (json_integer_value(json_object_get(row, "latent")) != j)
                    continue;
                static const char *const cols[] = {"task", "checkpoint", "ie", "relie",
                                                   "reldec", "class", "delta_lpd", "delta_acc"};
                fputs("<tr>", f);
                for (size_t c = 0; c < 8; c++)
                    ct_rp_td(f, json_object_get(row, cols[c]), "%.4g", c < 2);
                fputs("</tr>\n", f);
            }
            json_decref(rows);
        }
        fputs("</table>\n", f);
        json_array_foreach(tasks, t, tv) {
            char id[700], title[700];
            snprintf(id, sizeof id, "plot-latent-%s-%lld-%s", name, j, json_string_value(tv));
            snprintf(title, sizeof title, "latent %lld, %s: IE per checkpoint", j, json_string_value(tv));
            if (ct_rp_abs_ie_max(r, name, json_string_value(tv), j) > 0)
                ct_rp_ie_plot(r, cc, name, json_string_value(tv), &j, 1, id, title);
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
            ct_rp_put_text(f, json_string_value(json_array_get(cks, m)));
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
                    ct_rp_put_text(f, json_string_value(l));
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
                    ct_rp_open_table(f, heads, M + 1);
                    const char *code;
                    json_t *row;
                    json_object_foreach(rates, code, row) {
                        json_t *name = json_string(code);
                        fputs("<tr>", f);
                        ct_rp_td(f, name, NULL, 1);
                        for (m = 0; m < M; m++)
                            ct_rp_td(f, json_array_get(row, m), "%.3g", 0);
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

void ct_rp_section_latents(report *r)
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
        json_t *rows = ct_rp_latent_rows(r, name, NULL, NULL);
        size_t cap = json_array_size(rows) + json_array_size(json_object_get(ann, "latents")) + 1, n = 0, k;
        long long *ids = calloc(cap, sizeof *ids);
        json_t *row;
        json_array_foreach(rows, k, row)
            if (ids && ct_rp_is_true(json_object_get(row, "selected")))
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
        ct_rp_put_text(f, name);
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

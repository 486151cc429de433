/* The report assembler (report/report.h): sections in page order (report/page_*.c),
 * each drawn from the step records, artifacts and result tables its source gives, or
 * marked as not computed yet; the header, the recipe and provenance section here. */
#include "report/page.h"
#include "report/report.h"
#include "common/error.h"
#include "pipeline/key.h"
#include "pipeline/steps/shard.h"
#include "report/html.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
    ct_rp_put_text(f, title);
    fputs("</h1><p>", f);
    ct_rp_put_text(f, json_string_value(json_object_get(r->src->recipe, "description")));
    fputs("</p></header>\n<nav>", f);
    for (size_t i = 0; i < sizeof sections / sizeof *sections; i++) {
        fputs("<a href=\"#", f);
        ct_rp_put_text(f, sections[i].id);
        fputs("\">", f);
        ct_rp_put_text(f, sections[i].title);
        fputs("</a>", f);
    }
    fputs("</nav>\n<main>\n", f);
}

/* --- recipe and provenance ------------------------------------------------------------------------ */

static void section_provenance(report *r)
{
    FILE *f = r->f;
    ct_html_section_begin(f, "provenance", "Recipe and provenance");
    fputs("<h3>Recipe (as loaded, with defaults)</h3>\n<pre id=\"recipe\">", f);
    char *text = json_dumps(r->src->recipe, JSON_INDENT(2) | JSON_SORT_KEYS);
    ct_rp_put_text(f, text ? text : "");
    free(text);
    fputs("</pre>\n<h3>Steps</h3>\n<p>Every number above comes from one of these cache entries (key = SHA-256 "
          "of the step's kind, version, parameters and input keys; <code>crosstime why KEY</code> explains "
          "one).</p>\n",
          f);
    static const char *const heads[] = {"step", "kind", "key", "crosstime", "recipe commit"};
    ct_rp_open_table(f, heads, 5);
    size_t i;
    json_t *st;
    json_array_foreach(r->src->steps, i, st) {
        const char *label = json_string_value(json_object_get(st, "label"));
        json_t *rec = r->src->record(r->src->user, label);
        fputs("<tr><td class=\"l\">", f);
        ct_rp_put_text(f, label);
        fputs("</td><td class=\"l\">", f);
        ct_rp_put_text(f, json_string_value(json_object_get(st, "kind")));
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
        ct_rp_put_num(f, json_object_get(prov, "crosstime"), "%g");
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
        json_object_set(planned, ct_rp_str_or(json_object_get(st, "label")), json_true());
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
                crosscoders(src), 0, json_object()};
    if (!r.tables || !r.ccs || !r.ie_max) {
        json_decref(r.tables);
        json_decref(r.ie_max);
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
    /* max |IE| per (crosscoder, task, latent), so the sections look it up instead of
     * scanning the latents table once per latent */
    size_t k;
    json_t *row;
    json_array_foreach(json_object_get(ct_rp_table(&r, "latents"), "rows"), k, row) {
        const char *cc = ct_rp_str_or(json_object_get(row, "crosscoder"));
        char key[1024];
        snprintf(key, sizeof key, "%s\n%s\n%lld", strncmp(cc, "train/", 6) ? cc : cc + 6,
                 ct_rp_str_or(json_object_get(row, "task")), (long long)json_integer_value(json_object_get(row, "latent")));
        double v = fabs(ct_rp_num(json_object_get(row, "ie")));
        if (isfinite(v) && !(ct_rp_num(json_object_get(r.ie_max, key)) >= v))
            json_object_set_new(r.ie_max, key, json_real(v));
    }
    header(&r);
    ct_rp_section_accuracy(&r);
    ct_rp_section_crosscoders(&r);
    ct_rp_section_relie(&r);
    ct_rp_section_validation(&r);
    ct_rp_section_overlap(&r);
    ct_rp_section_latents(&r);
    section_provenance(&r);
    fputs("</main>\n", out);
    ct_html_end(out);
    json_decref(r.tables);
    json_decref(r.ccs);
    json_decref(r.ie_max);
    if (fflush(out) != 0 || ferror(out))
        return ct_error_set(CT_EIO, "cannot write the report");
    return 0;
}

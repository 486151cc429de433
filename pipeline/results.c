/* Result tables from cached step summaries (pipeline/results.h). */
#include "pipeline/results.h"
#include "analysis/relie.h"
#include "common/error.h"
#include "pipeline/key.h"
#include "pipeline/steps/tuple.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    const char *summary;
    int (*build)(const ct_plan *plan, ct_cache *cache, json_t *table);
} table_kind;

/* The summary of the cached step `label`, or NULL when it is not planned or not
 * computed yet. *key_hex receives its key. New reference. */
static json_t *cached_summary(const ct_plan *plan, ct_cache *cache, const char *label,
                              char key_hex[CT_KEY_HEX_LEN + 1])
{
    size_t idx;
    json_t *record = NULL;
    if (!cache || ct_plan_find(plan, label, &idx) != 0)
        return NULL;
    const ct_plan_step *s = ct_plan_get(plan, idx);
    if (ct_cache_get(cache, s->key, &record) != 0)
        return NULL;
    json_t *summary = json_incref(json_object_get(record, "summary"));
    json_decref(record);
    if (!json_is_object(summary)) {
        json_decref(summary);
        return NULL;
    }
    ct_key_hex(s->key, key_hex);
    return summary;
}

/* accuracy: rows = recipe tasks, columns = checkpoints in training order. */
static int build_accuracy(const ct_plan *plan, ct_cache *cache, json_t *table)
{
    const ct_recipe *r = ct_plan_recipe(plan);
    json_t *tasks = ct_recipe_get(r, "tasks"), *cks = ct_recipe_get(r, "model.checkpoints");
    json_t *columns = json_array(), *rows = json_array();
    size_t i, j, missing = 0;
    json_t *ck, *task;
    json_array_foreach(cks, i, ck)
        json_array_append(columns, json_object_get(ck, "name"));
    json_array_foreach(tasks, i, task) {
        json_t *cells = json_array();
        json_array_foreach(cks, j, ck) {
            char label[1024], hex[CT_KEY_HEX_LEN + 1];
            snprintf(label, sizeof label, "accuracy/%s/%s", json_string_value(task),
                     json_string_value(json_object_get(ck, "name")));
            json_t *s = cached_summary(plan, cache, label, hex);
            if (!s) {
                missing++;
                json_array_append_new(cells, json_null());
                continue;
            }
            static const char *const fields[] = {"accuracy", "mean_logprob_diff", "n"};
            json_t *cell = json_object();
            for (size_t f = 0; f < sizeof fields / sizeof *fields; f++) {
                json_t *v = json_object_get(s, fields[f]);
                json_object_set(cell, fields[f], v ? v : json_null());
            }
            json_object_set_new(cell, "key", json_string(hex));
            json_array_append_new(cells, cell);
            json_decref(s);
        }
        json_array_append_new(rows, json_pack("{s:O, s:o}", "task", task, "cells", cells));
    }
    json_object_set_new(table, "row_header", json_string("task"));
    json_object_set_new(table, "value", json_string("accuracy"));
    json_object_set_new(table, "columns", columns);
    json_object_set_new(table, "rows", rows);
    json_object_set_new(table, "cells", json_integer((json_int_t)(json_array_size(tasks) * json_array_size(cks))));
    json_object_set_new(table, "missing", json_integer((json_int_t)missing));
    return 0;
}

/* --- flat tables ------------------------------------------------------------------ */

/* A flat table being built: rows are objects over `columns`; a column a row does not
 * set is null. */
typedef struct {
    json_t *columns, *rows;
    size_t missing;
} flat;

static void flat_begin(flat *f, const char *const *columns, size_t n)
{
    f->columns = json_array();
    f->rows = json_array();
    f->missing = 0;
    for (size_t i = 0; i < n; i++)
        json_array_append_new(f->columns, json_string(columns[i]));
}

/* Appends `row` (stolen), completed with nulls. */
static void flat_row(flat *f, json_t *row)
{
    size_t i;
    json_t *c;
    json_array_foreach(f->columns, i, c) {
        if (!json_object_get(row, json_string_value(c)))
            json_object_set_new(row, json_string_value(c), json_null());
    }
    json_array_append_new(f->rows, row);
}

/* Moves the table into `table` (also on failure, so that the caller frees it). */
static void flat_end(flat *f, json_t *table)
{
    json_object_set_new(table, "kind", json_string("flat"));
    json_object_set_new(table, "columns", f->columns);
    json_object_set_new(table, "rows", f->rows);
    json_object_set_new(table, "missing", json_integer((json_int_t)f->missing));
}

/* Value `i` of array `a` (a borrowed null when absent), as a new reference. */
static json_t *at(json_t *a, size_t i)
{
    json_t *v = json_array_get(a, i);
    return json_incref(v ? v : json_null());
}

static json_t *real_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

/* Summary of `kind`/<suffix>[/<task>] when that step is planned: *planned tells
 * whether it is, and a planned step that is not cached counts as missing. */
static json_t *step_summary(const ct_plan *plan, ct_cache *cache, flat *f, const char *kind, const char *suffix,
                            const char *task, char hex[CT_KEY_HEX_LEN + 1], int *planned)
{
    char label[1024];
    size_t idx;
    snprintf(label, sizeof label, "%s/%s%s%s", kind, suffix, task ? "/" : "", task ? task : "");
    *planned = ct_plan_find(plan, label, &idx) == 0;
    json_t *s = *planned ? cached_summary(plan, cache, label, hex) : NULL;
    f->missing += *planned && !s;
    return s;
}

/* What the row functions of the flat tables see. */
typedef struct {
    const ct_plan *plan;
    ct_cache *cache;
    flat f;
} flat_ctx;

/* Adds the rows of one crosscoder (task NULL) or of one (crosscoder, task). */
typedef int (*rows_fn)(flat_ctx *x, const ct_steps_crosscoder *cc, json_t *task);

/* A flat table over the planned crosscoders, or over crosscoders × recipe tasks. */
static int build_flat(const ct_plan *plan, ct_cache *cache, json_t *table, const char *const *cols, size_t n,
                      int per_task, rows_fn rows)
{
    flat_ctx x = {plan, cache, {0}};
    flat_begin(&x.f, cols, n);
    ct_steps_crosscoder *cc = NULL;
    size_t ncc = 0, t;
    json_t *task;
    int rc = ct_steps_crosscoders(plan, ct_plan_recipe(plan), &cc, &ncc);
    for (size_t c = 0; c < ncc && !rc; c++) {
        if (!per_task) {
            rc = rows(&x, &cc[c], NULL);
            continue;
        }
        json_array_foreach(ct_recipe_get(ct_plan_recipe(plan), "tasks"), t, task) {
            if ((rc = rows(&x, &cc[c], task)))
                break;
        }
    }
    free(cc);
    flat_end(&x.f, table);
    return rc;
}

/* Copies the fields `names` of `from` into `row`. */
static void copy_fields(json_t *row, json_t *from, const char *const *names, size_t n)
{
    for (size_t k = 0; k < n; k++)
        json_object_set(row, names[k], json_object_get(from, names[k]));
}

/* crosscoders: one row per checkpoint of the tuple, from the evaluate step; a
 * crosscoder not evaluated yet keeps its rows with null values. */
static int crosscoder_rows(flat_ctx *x, const ct_steps_crosscoder *cc, json_t *task)
{
    (void)task;
    char hex[CT_KEY_HEX_LEN + 1];
    int planned;
    json_t *s = step_summary(x->plan, x->cache, &x->f, "evaluate", cc->suffix, NULL, hex, &planned), *name;
    size_t m;
    json_array_foreach(cc->tuple, m, name) {
        json_t *row = json_pack("{s:s, s:O}", "crosscoder", cc->suffix, "checkpoint", name);
        if (s) {
            static const char *const same[] = {"type", "seed", "dict_size", "l2", "l1", "l0", "dead"};
            copy_fields(row, s, same, sizeof same / sizeof *same);
            json_object_set_new(row, "explained_variance", at(json_object_get(s, "explained_variance"), m));
            json_object_set_new(row, "ce_clean", at(json_object_get(s, "ce_clean"), m));
            json_object_set_new(row, "ce_spliced", at(json_object_get(s, "ce_spliced"), m));
            json_object_set_new(row, "delta_ce", at(json_object_get(s, "delta_ce"), m));
            json_object_set_new(row, "key", json_string(hex));
        }
        flat_row(&x->f, row);
    }
    json_decref(s);
    return 0;
}

/* validation: one row per (crosscoder, task) from its validate step. */
static int validation_rows(flat_ctx *x, const ct_steps_crosscoder *cc, json_t *task)
{
    char hex[CT_KEY_HEX_LEN + 1];
    int planned;
    json_t *s = step_summary(x->plan, x->cache, &x->f, "validate", cc->suffix, json_string_value(task), hex,
                             &planned);
    if (!planned)
        return 0;
    json_t *row = json_pack("{s:s, s:O}", "crosscoder", cc->suffix, "task", task);
    if (s) {
        static const char *const same[] = {"n_latents", "rho_relie", "rho_reldec"};
        copy_fields(row, s, same, sizeof same / sizeof *same);
        json_object_set_new(row, "key", json_string(hex));
    }
    flat_row(&x->f, row);
    json_decref(s);
    return 0;
}

/* The artifact of the cached step `label` (NULL when not cached). */
static char *cached_artifact(const ct_plan *plan, ct_cache *cache, const char *label, size_t *len)
{
    size_t idx;
    char *data = NULL;
    if (!cache || ct_plan_find(plan, label, &idx) != 0 || !ct_plan_get(plan, idx)->cached ||
        ct_cache_read_all(cache, ct_plan_get(plan, idx)->key, &data, len) != 0)
        return NULL;
    return data;
}

/* The rows of one (crosscoder, task): every latent with a nonzero IE on some
 * checkpoint, one row per checkpoint. `validated` is the validate summary or NULL. */
static void attr_rows(flat *f, const ct_steps_crosscoder *cc, json_t *task, const ct_steps_attr *a,
                      json_t *validated)
{
    int M = a->M, H = a->H;
    json_t *by_latent = json_object();
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(validated, "latents"), i, v) {
        char k[16];
        snprintf(k, sizeof k, "%lld", (long long)json_integer_value(json_object_get(v, "latent")));
        json_object_set(by_latent, k, v);
    }
    for (int j = 0; j < H; j++) {
        double abs_ie[CT_STEPS_MAX_M], relie[CT_STEPS_MAX_M];
        int any = 0;
        for (int m = 0; m < M; m++) {
            abs_ie[m] = fabs((double)a->ie[(size_t)m * H + j]);
            any |= abs_ie[m] != 0;
        }
        if (!any)
            continue;
        ct_relie_ova(abs_ie, M, relie);
        const char *cls = ct_relie_class_name(ct_relie_classify(abs_ie, M), M);
        char k[16];
        snprintf(k, sizeof k, "%d", j);
        json_t *sel = json_object_get(by_latent, k);
        for (int m = 0; m < M; m++) {
            json_t *row = json_pack("{s:s, s:O, s:i, s:O, s:o, s:o, s:o, s:s}", "crosscoder", cc->suffix, "task",
                                    task, "latent", j, "checkpoint", json_array_get(cc->tuple, (size_t)m), "ie",
                                    real_or_null(a->ie[(size_t)m * H + j]), "relie", real_or_null(relie[m]),
                                    "reldec", real_or_null(a->reldec[(size_t)m * H + j]), "class", cls);
            /* pairwise RelIE (METHOD §5: B/(A+B), C/(B+C), C/(A+C) for three) as this
             * checkpoint against the previous one and against the first of the tuple */
            json_object_set_new(row, "relie_prev", m ? real_or_null(ct_relie2(abs_ie[m - 1], abs_ie[m])) : json_null());
            json_object_set_new(row, "relie_first", m ? real_or_null(ct_relie2(abs_ie[0], abs_ie[m])) : json_null());
            json_object_set_new(row, "selected", validated ? json_boolean(sel != NULL) : json_null());
            if (sel) {
                json_object_set_new(row, "delta_lpd", at(json_object_get(sel, "delta_lpd"), (size_t)m));
                json_object_set_new(row, "delta_acc", at(json_object_get(sel, "delta_acc"), (size_t)m));
            }
            flat_row(f, row);
        }
    }
    json_decref(by_latent);
}

/* latents: from the attribute artifact and the validate summary of (crosscoder, task). */
static int latent_rows(flat_ctx *x, const ct_steps_crosscoder *cc, json_t *task)
{
    char label[1024], hex[CT_KEY_HEX_LEN + 1];
    size_t idx, len;
    snprintf(label, sizeof label, "attribute/%s/%s", cc->suffix, json_string_value(task));
    if (ct_plan_find(x->plan, label, &idx) != 0)
        return 0;
    int planned, rc = 0;
    json_t *validated = step_summary(x->plan, x->cache, &x->f, "validate", cc->suffix, json_string_value(task), hex,
                                     &planned);
    char *data = cached_artifact(x->plan, x->cache, label, &len);
    ct_steps_attr a;
    if (!data) {
        x->f.missing++;
    } else if ((rc = ct_steps_attr_parse(data, len, label, &a)) == 0) {
        attr_rows(&x->f, cc, task, &a, validated);
        ct_steps_attr_free(&a);
    }
    free(data);
    json_decref(validated);
    return rc;
}

/* overlap: one row per pair of languages from the crosscoder's overlap step. */
static int overlap_rows(flat_ctx *x, const ct_steps_crosscoder *cc, json_t *task)
{
    (void)task;
    char hex[CT_KEY_HEX_LEN + 1];
    int planned;
    size_t i;
    json_t *s = step_summary(x->plan, x->cache, &x->f, "overlap", cc->suffix, NULL, hex, &planned), *p;
    json_array_foreach(json_object_get(s, "pairs"), i, p) {
        json_t *row = json_pack("{s:s, s:O}", "crosscoder", cc->suffix, "top_k", json_object_get(s, "top_k"));
        static const char *const same[] = {"lang_a", "lang_b", "count", "fraction"};
        copy_fields(row, p, same, sizeof same / sizeof *same);
        flat_row(&x->f, row);
    }
    json_decref(s);
    return 0;
}

#define FLAT(name, per_task, rows, ...)                                                                      \
    static int name(const ct_plan *plan, ct_cache *cache, json_t *table)                                     \
    {                                                                                                        \
        static const char *const cols[] = {__VA_ARGS__};                                                     \
        return build_flat(plan, cache, table, cols, sizeof cols / sizeof *cols, per_task, rows);             \
    }

FLAT(build_crosscoders, 0, crosscoder_rows, "crosscoder", "checkpoint", "type", "seed", "dict_size", "l2", "l1",
     "l0", "dead", "explained_variance", "ce_clean", "ce_spliced", "delta_ce", "key")
FLAT(build_latents, 1, latent_rows, "crosscoder", "task", "latent", "checkpoint", "ie", "relie", "relie_prev",
     "relie_first", "reldec", "class", "selected", "delta_lpd", "delta_acc")
FLAT(build_validation, 1, validation_rows, "crosscoder", "task", "n_latents", "rho_relie", "rho_reldec", "key")
FLAT(build_overlap, 0, overlap_rows, "crosscoder", "lang_a", "lang_b", "top_k", "count", "fraction")

/* The registry. */
static const table_kind kinds[] = {
    {"accuracy", "task accuracy per checkpoint (rows: tasks, columns: checkpoints)", build_accuracy},
    {"crosscoders", "training metrics and CE increase per crosscoder and checkpoint", build_crosscoders},
    {"latents", "IE, RelIE, RelDec and class per crosscoder, task, latent and checkpoint", build_latents},
    {"validation", "Spearman of ablation effects with RelIE and RelDec per crosscoder and task", build_validation},
    {"overlap", "overlap of the top latents between languages per crosscoder", build_overlap},
};
#define N_KINDS (sizeof kinds / sizeof *kinds)

const char *const *ct_results_tables(size_t *n)
{
    static const char *names[N_KINDS + 1];
    for (size_t i = 0; i < N_KINDS; i++)
        names[i] = kinds[i].name;
    *n = N_KINDS;
    return names;
}

int ct_results_check(const char *name)
{
    for (size_t i = 0; i < N_KINDS; i++)
        if (strcmp(kinds[i].name, name) == 0)
            return 0;
    char known[512] = "";
    for (size_t i = 0; i < N_KINDS; i++)
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "", kinds[i].name);
    return ct_error_set(CT_EINVAL, "unknown table '%s' (known tables: %s)", name, known);
}

int ct_results_build(const ct_plan *plan, ct_cache *cache, const char *name, json_t **out)
{
    *out = NULL;
    for (size_t i = 0; i < N_KINDS; i++) {
        if (strcmp(kinds[i].name, name) != 0)
            continue;
        json_t *t = json_pack("{s:s, s:s}", "table", name, "recipe", ct_recipe_name(ct_plan_recipe(plan)));
        if (!t)
            return ct_error_set(CT_ENOMEM, "out of memory");
        int rc = kinds[i].build(plan, cache, t);
        if (rc) {
            json_decref(t);
            return rc;
        }
        *out = t;
        return 0;
    }
    return ct_results_check(name);
}

/* A value as text: strings as they are, integers, reals with real_fmt, true/false,
 * "" for null or missing. */
static void value_text(const json_t *v, const char *real_fmt, char *out, size_t n)
{
    if (json_is_string(v))
        snprintf(out, n, "%s", json_string_value(v));
    else if (json_is_boolean(v))
        snprintf(out, n, "%s", json_is_true(v) ? "true" : "false");
    else if (json_is_integer(v))
        snprintf(out, n, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(out, n, real_fmt, json_real_value(v));
    else
        out[0] = '\0';
}

/* A cell's shown value as text, "" when missing. */
static void cell_text(const json_t *cell, const char *field, const char *real_fmt, char *out, size_t n)
{
    value_text(json_object_get(cell, field), real_fmt, out, n);
}

static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void write_csv(const json_t *t, FILE *f)
{
    const char *field = json_string_value(json_object_get(t, "value"));
    const char *rh = json_string_value(json_object_get(t, "row_header"));
    size_t i, j;
    json_t *v, *row;
    csv_field(f, rh);
    json_array_foreach(json_object_get(t, "columns"), i, v) {
        fputc(',', f);
        csv_field(f, json_string_value(v));
    }
    fputc('\n', f);
    json_array_foreach(json_object_get(t, "rows"), i, row) {
        csv_field(f, json_string_value(json_object_get(row, rh)));
        json_array_foreach(json_object_get(row, "cells"), j, v) {
            char text[64];
            cell_text(v, field, "%.10g", text, sizeof text);
            fputc(',', f);
            fputs(text, f);
        }
        fputc('\n', f);
    }
}

static int write_text(const json_t *t, FILE *f)
{
    const char *field = json_string_value(json_object_get(t, "value"));
    const char *rh = json_string_value(json_object_get(t, "row_header"));
    json_t *columns = json_object_get(t, "columns"), *rows = json_object_get(t, "rows");
    size_t nc = json_array_size(columns), i, j;
    int *width = calloc(nc + 1, sizeof *width);
    if (!width)
        return ct_error_set(CT_ENOMEM, "out of memory");
    json_t *v, *row;
    width[0] = (int)strlen(rh);
    json_array_foreach(columns, i, v) {
        width[i + 1] = (int)strlen(json_string_value(v));
        if (width[i + 1] < 6)
            width[i + 1] = 6;
    }
    json_array_foreach(rows, i, row) {
        int w = (int)strlen(json_string_value(json_object_get(row, rh)));
        width[0] = w > width[0] ? w : width[0];
    }
    fprintf(f, "%-*s", width[0], rh);
    json_array_foreach(columns, i, v)
        fprintf(f, "  %*s", width[i + 1], json_string_value(v));
    fputc('\n', f);
    json_array_foreach(rows, i, row) {
        fprintf(f, "%-*s", width[0], json_string_value(json_object_get(row, rh)));
        json_array_foreach(json_object_get(row, "cells"), j, v) {
            char text[64];
            cell_text(v, field, "%.4f", text, sizeof text);
            fprintf(f, "  %*s", j < nc ? width[j + 1] : 6, text);
        }
        fputc('\n', f);
    }
    free(width);
    return 0;
}

static void write_flat_csv(const json_t *t, FILE *f)
{
    json_t *columns = json_object_get(t, "columns"), *c, *row;
    size_t i, j;
    json_array_foreach(columns, j, c) {
        if (j)
            fputc(',', f);
        csv_field(f, json_string_value(c));
    }
    fputc('\n', f);
    json_array_foreach(json_object_get(t, "rows"), i, row) {
        json_array_foreach(columns, j, c) {
            char text[1024];
            value_text(json_object_get(row, json_string_value(c)), "%.10g", text, sizeof text);
            if (j)
                fputc(',', f);
            csv_field(f, text);
        }
        fputc('\n', f);
    }
}

/* Aligned text: strings to the left, numbers to the right. */
static int write_flat_text(const json_t *t, FILE *f)
{
    json_t *columns = json_object_get(t, "columns"), *rows = json_object_get(t, "rows"), *c, *row;
    size_t nc = json_array_size(columns), i, j;
    int *width = calloc(nc + 1, sizeof *width);
    if (!width)
        return ct_error_set(CT_ENOMEM, "out of memory");
    json_array_foreach(columns, j, c) width[j] = (int)strlen(json_string_value(c));
    char text[1024];
    json_array_foreach(rows, i, row) {
        json_array_foreach(columns, j, c) {
            value_text(json_object_get(row, json_string_value(c)), "%.4f", text, sizeof text);
            if ((int)strlen(text) > width[j])
                width[j] = (int)strlen(text);
        }
    }
    /* the last column is not padded, so that lines carry no trailing blanks */
    json_array_foreach(columns, j, c)
        fprintf(f, "%s%-*s", j ? "  " : "", j + 1 < nc ? width[j] : 0, json_string_value(c));
    fputc('\n', f);
    json_array_foreach(rows, i, row) {
        json_array_foreach(columns, j, c) {
            json_t *v = json_object_get(row, json_string_value(c));
            value_text(v, "%.4f", text, sizeof text);
            int w = j + 1 < nc || json_is_number(v) ? width[j] : 0;
            fprintf(f, json_is_number(v) ? "%s%*s" : "%s%-*s", j ? "  " : "", w, text);
        }
        fputc('\n', f);
    }
    free(width);
    return 0;
}

int ct_results_write(const json_t *table, const char *format, FILE *f)
{
    const char *kind = json_string_value(json_object_get(table, "kind"));
    int is_flat = kind && strcmp(kind, "flat") == 0;
    if (strcmp(format, "csv") == 0) {
        if (is_flat)
            write_flat_csv(table, f);
        else
            write_csv(table, f);
        return 0;
    }
    if (strcmp(format, "table") == 0)
        return is_flat ? write_flat_text(table, f) : write_text(table, f);
    if (strcmp(format, "json") == 0) {
        if (json_dumpf(table, f, JSON_INDENT(2) | JSON_SORT_KEYS) != 0)
            return ct_error_set(CT_EIO, "cannot write the table");
        fputc('\n', f);
        return 0;
    }
    return ct_error_set(CT_EINVAL, "unknown format '%s' (csv, table or json)", format);
}

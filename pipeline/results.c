/* Result tables from cached step summaries (pipeline/results.h). */
#include "pipeline/results.h"
#include "common/error.h"
#include "pipeline/key.h"

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

/* The registry: later tables (crosscoders, latents, validation, overlap) are one
 * entry each. */
static const table_kind kinds[] = {
    {"accuracy", "task accuracy per checkpoint (rows: tasks, columns: checkpoints)", build_accuracy},
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

/* A cell's shown value as text (reals with real_fmt), "" when missing. */
static void cell_text(const json_t *cell, const char *field, const char *real_fmt, char *out, size_t n)
{
    const json_t *v = json_object_get(cell, field);
    if (json_is_integer(v))
        snprintf(out, n, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(out, n, real_fmt, json_real_value(v));
    else
        out[0] = '\0';
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

int ct_results_write(const json_t *table, const char *format, FILE *f)
{
    if (strcmp(format, "csv") == 0) {
        write_csv(table, f);
        return 0;
    }
    if (strcmp(format, "table") == 0)
        return write_text(table, f);
    if (strcmp(format, "json") == 0) {
        if (json_dumpf(table, f, JSON_INDENT(2) | JSON_SORT_KEYS) != 0)
            return ct_error_set(CT_EIO, "cannot write the table");
        fputc('\n', f);
        return 0;
    }
    return ct_error_set(CT_EINVAL, "unknown format '%s' (csv, table or json)", format);
}

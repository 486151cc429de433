/* Result tables of a recipe, assembled from the cached records of its steps.
 *
 * A table is built from a plan (ct_plan_build with the cache): each table kind reads
 * the summaries of the steps it needs and never computes anything, so a cell whose
 * step is not cached yet is missing (null). Tables are JSON objects:
 *
 *   {"table": "accuracy", "recipe": NAME, "row_header": "task",
 *    "columns": [checkpoint names in training order],
 *    "value": "accuracy",                 the cell field shown in csv and text
 *    "rows": [{"task": T, "cells": [{"accuracy": a, "mean_logprob_diff": d, "n": k,
 *              "key": HEX} | null, ...]}, ...],
 *    "cells": total, "missing": count}
 *
 * Known tables: "accuracy" (rows: tasks, columns: checkpoints, value: task accuracy).
 * A new table is one build function and one entry in pipeline/results.c. */
#ifndef CT_RESULTS_H
#define CT_RESULTS_H

#include "cache/cache.h"
#include "pipeline/plan.h"

#include <jansson.h>
#include <stdio.h>

/* Names of the known tables, in registry order; *n receives the count. Static storage. */
const char *const *ct_results_tables(size_t *n);

/* 0 when `name` is a known table, else CT_EINVAL with a message listing them. */
int ct_results_check(const char *name);

/* Builds table `name` of the plan's recipe from `cache`. An unknown name is CT_EINVAL
 * with a message listing the known tables. *out is a new reference (caller decrefs). */
int ct_results_build(const ct_plan *plan, ct_cache *cache, const char *name, json_t **out);

/* Writes a built table as "csv" (header `<row_header>,<col1>,...`, missing cells
 * empty), "table" (aligned text, missing cells empty) or "json" (the object above).
 * An unknown format is CT_EINVAL. */
int ct_results_write(const json_t *table, const char *format, FILE *f);

#endif

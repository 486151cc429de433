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
 *
 * The other tables are flat (recipes/README.md documents every column):
 *
 *   {"table": NAME, "recipe": NAME, "kind": "flat", "columns": [names...],
 *    "rows": [{column: value | null, ...}, ...], "missing": steps not cached}
 *
 *   "crosscoders": crosscoder, checkpoint, type, seed, dict_size, l2, l1, l0, dead,
 *                  explained_variance, ce_clean, ce_spliced, delta_ce, key
 *                  (one row per crosscoder and checkpoint of its tuple; evaluate steps)
 *   "latents":     crosscoder, task, latent, checkpoint, ie, relie, reldec, class,
 *                  selected, delta_lpd, delta_acc (one row per crosscoder, task, latent
 *                  with a nonzero IE, and checkpoint; attribute artifacts and validate
 *                  summaries)
 *   "validation":  crosscoder, task, n_latents, rho_relie, rho_reldec, key (validate)
 *   "overlap":     crosscoder, lang_a, lang_b, top_k, count, fraction (overlap)
 *
 * A crosscoder is named by its train label without "train/" ("a-b/seed1"). Rows of
 * "crosscoders" and "validation" whose step is not cached are kept with null values;
 * "latents" and "overlap" have no rows for them. Either way "missing" counts them.
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

/* Writes a built table as "csv" (accuracy: header `<row_header>,<col1>,...`; flat:
 * header = columns, one line per row; null and missing values empty), "table"
 * (aligned text, the same values) or "json" (the object above). An unknown format is
 * CT_EINVAL. */
int ct_results_write(const json_t *table, const char *format, FILE *f);

#endif

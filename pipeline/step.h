/* Step kinds: the unit of work of the pipeline.
 *
 * A step kind is a pure function from (parameters, input artifacts) to one output
 * artifact. It is described by a ct_step_kind: a name, an implementation version
 * (bumped whenever its semantics change, so old cache entries stop matching), a plan
 * function that adds the kind's steps for a recipe, and a run function that computes
 * one step. A new step kind is one file in pipeline/steps/ plus a line in
 * pipeline/steps/builtin.c.
 *
 * Run functions see only their ct_step_ctx: parameters, inputs (blobs from the
 * cache, or source files), one output writer, a log, progress and cancellation.
 * They never read the recipe or look up other cache entries. */
#ifndef CT_STEP_H
#define CT_STEP_H

#include "cache/cache.h"
#include "common/progress.h"
#include "pipeline/recipe/recipe.h"

#include <jansson.h>
#include <stddef.h>

typedef struct ct_plan ct_plan;
typedef struct ct_step_ctx ct_step_ctx;

/* What an experiment bundle carries of a step's artifact (the manifest always lists
 * every step with its key material and record). */
typedef enum {
    CT_BUNDLE_NEVER = 0,      /* intermediate, cheap to recompute */
    CT_BUNDLE_RESULT = 1,     /* result tables and the report: always included */
    CT_BUNDLE_ARTIFACT = 2,   /* e.g. crosscoder weights: with --with artifacts */
    CT_BUNDLE_ACTIVATION = 3, /* activation shards: with --with activations */
} ct_bundle_class;

typedef struct {
    const char *name;    /* "toy_transform" */
    int version;         /* implementation version, part of every key */
    const char *summary; /* one line for `crosstime plan` and docs */
    /* Adds this kind's steps for `recipe` to `plan` (NULL: added by other kinds'
     * plan functions only). Called in registration order, so upstream kinds come
     * first. */
    int (*plan)(ct_plan *plan, const ct_recipe *recipe);
    /* Computes one step; returns 0 or a CT_E* code with ct_error_set()/ct_step_log(). */
    int (*run)(ct_step_ctx *ctx);
    int internal;        /* 1: test-only kind, hidden from user-facing listings */
    ct_bundle_class bundle; /* what bundles carry of its artifacts */
} ct_step_kind;

/* The registry. Built-in kinds are registered by ct_steps_register_builtin(); tests
 * may register more. Kinds are borrowed and must outlive the process. */
int ct_step_register(const ct_step_kind *kind);
void ct_steps_register_builtin(void);
const ct_step_kind *ct_step_find(const char *name);
const ct_step_kind *const *ct_step_kinds(size_t *n);

/* --- what a run function sees ----------------------------------------------------- */

json_t *ct_step_params(ct_step_ctx *ctx);           /* borrowed */
/* Options the plan attached (ct_plan_set_options): not part of the key; {} if none. */
json_t *ct_step_options(ct_step_ctx *ctx);          /* borrowed */
const char *ct_step_label(ct_step_ctx *ctx);         /* "toy/item/0" */
const char *ct_step_device(ct_step_ctx *ctx);        /* "cpu" or "cuda" */
const char *ct_step_cache_dir(ct_step_ctx *ctx);     /* the cache's directory */
/* Number of inputs under `name` (1 for a single input, n for a list, 0 if absent). */
size_t ct_step_input_count(ct_step_ctx *ctx, const char *name);
/* Opens input `name`[index] (a cached artifact) for zero-copy reading. */
int ct_step_input(ct_step_ctx *ctx, const char *name, size_t index, ct_blob_reader **out);
/* Record (key material, summary, ...) of input `name`[index]; borrowed until the step ends. */
int ct_step_input_record(ct_step_ctx *ctx, const char *name, size_t index, json_t **record);
/* Path of a source-file input (sources enter keys by content digest). */
const char *ct_step_input_path(ct_step_ctx *ctx, const char *name, size_t index);
/* The writer of this step's single output artifact (opened on first call). */
int ct_step_output(ct_step_ctx *ctx, ct_blob_writer **out);
/* Result table `table` (pipeline/results.h) of the plan being run, from the cache as
 * it is now: steps the planner made inputs of this one are complete. *out is new. */
int ct_step_results(ct_step_ctx *ctx, const char *table, json_t **out);
/* A small JSON summary stored in the record (metrics, counts); stolen. */
void ct_step_set_summary(ct_step_ctx *ctx, json_t *summary);
/* The step's log: kept in memory, printed when the step fails, and echoed to
 * stderr when the run is verbose. */
void ct_step_log(ct_step_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A progress line labelled with the step; finished by the runner if not by the step. */
ct_progress *ct_step_progress(ct_step_ctx *ctx, double total, const char *unit);
/* Non-zero once the user asked to stop (Ctrl-C): long steps poll this, save their
 * resume state, and return CT_EINTR. */
int ct_step_interrupted(ct_step_ctx *ctx);
/* Resume state of a long step (training state, shard cursor): stored in the cache
 * under a key derived from the step's key, replaced by each save, removed when the
 * step's artifact is committed. load: CT_ENOTFOUND when there is none; *data is
 * malloc'd. */
int ct_step_resume_save(ct_step_ctx *ctx, const void *data, size_t len);
int ct_step_resume_load(ct_step_ctx *ctx, void **data, size_t *len);

#endif

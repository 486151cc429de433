/* What the analysis step kinds (attribute, validate, evaluate, overlap) share: the
 * crosscoders of a plan, the tasks of a recipe, the inputs that let a step run the M
 * models of a crosscoder's tuple, loading those models with the folded crosscoder, and
 * the attribute artifact.
 *
 * Attribute artifact ("CTATTRIB", version 1; little-endian), written by attribute:
 *   char magic[8]; u32 version; u32 M; u32 H; u32 reserved (0); u64 n_examples;
 *   f32 ie[M*H]            signed IE per checkpoint and latent (index m*H + j)
 *   f32 reldec[M*H]        one-vs-all RelDec of the crosscoder (index m*H + j)
 *   f64 total[n*M], error[n*M], delta[n*M], metric[n*M]   per example e and
 *                          checkpoint m (index e*M + m): ct_attr_result's arrays
 *   u64 pair[n]            the task pair each example comes from */
#ifndef CT_STEPS_TUPLE_H
#define CT_STEPS_TUPLE_H

#include "crosscoder/crosscoder.h"
#include "models/forward/model.h"
#include "models/tasks/tasks.h"
#include "models/tokenizer/tokenizer.h"
#include "pipeline/plan.h"
#include "pipeline/step.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define CT_STEPS_MAX_M 8

/* --- plan side -------------------------------------------------------------------- */

/* A planned crosscoder: its train step "train/<A-B>/seed<S>". Strings are borrowed
 * from the plan, the tuple from the recipe. */
typedef struct {
    const char *train_label;
    const char *suffix; /* "<A-B>/seed<S>": the part after "train/", names the crosscoder */
    json_t *tuple;      /* checkpoint names, in training order */
} ct_steps_crosscoder;

/* The planned train steps in recipe order (tuples, then seeds); *out is malloc'd
 * (NULL when there are none). */
int ct_steps_crosscoders(const ct_plan *plan, const ct_recipe *r, ct_steps_crosscoder **out, size_t *n);

/* A recipe task: the name as written (labels), its canonical name (keys), the label
 * of its data file as a plan source, and its language (ISO 639-1: blimp is "en",
 * MultiBLiMP's 3-letter codes are mapped). */
typedef struct {
    const char *name;
    char *canonical;
    const char *source;
    char lang[16];
} ct_steps_task;

/* Loads every task of the recipe once and adds its file as a source; a task whose
 * data is not installed is left out (the accuracy steps note it). Free the array with
 * ct_steps_tasks_free. */
int ct_steps_tasks(ct_plan *plan, const ct_recipe *r, ct_steps_task **out, size_t *n);
void ct_steps_tasks_free(ct_steps_task *t, size_t n);

/* Adds to `inputs` what a step needs to run the tuple: "crosscoder" (the train step),
 * "checkpoint_<m>" (the checkpoint sources its extract steps read) and, with
 * `tokenizer`, "tokenizer" (the one the corpus was tokenized with). */
int ct_steps_tuple_inputs(ct_plan *plan, const ct_steps_crosscoder *cc, int tokenizer, json_t *inputs);

/* The planned crosscoders and the recipe's tasks with data, for the plan functions;
 * both empty when either is. Free with ct_steps_analysis_free. */
typedef struct {
    ct_steps_crosscoder *cc;
    size_t ncc;
    ct_steps_task *tasks;
    size_t nt;
} ct_steps_analysis;
int ct_steps_analysis_open(ct_plan *plan, const ct_recipe *r, ct_steps_analysis *a);
void ct_steps_analysis_free(ct_steps_analysis *a);

/* Adds one step of `kind` per (crosscoder, task), labelled "<kind>/<suffix>/<task>",
 * with the tuple's inputs (tokenizer included), the input "task" (the data file) and,
 * with `attribute`, the input "attribute" (the step "attribute/<suffix>/<task>").
 * `params` (stolen) is copied into each step with "task" set to the canonical name. */
int ct_steps_plan_per_task(ct_plan *plan, const ct_recipe *r, const char *kind, json_t *params, int attribute);

/* --- run side --------------------------------------------------------------------- */

/* The models of a tuple, its crosscoder (folded: it takes raw activations) and the
 * train artifact's metric lines. Owns everything; free with ct_steps_tuple_free. */
typedef struct {
    int M;
    ct_model *models[CT_STEPS_MAX_M];
    ct_crosscoder *cc;
    /* RelDec of the unfolded crosscoder (METHOD §3), taken before folding: one-vs-all
     * [M*H] (index m*H + j) and first vs last checkpoint [H] */
    float *reldec, *reldec_pair;
    ct_tokenizer *tok; /* NULL unless asked for */
    char *train;       /* the train artifact */
    const char *metrics;
    size_t metrics_len;
} ct_steps_tuple;

/* Loads the inputs that ct_steps_tuple_inputs added (the tokenizer when `tokenizer`)
 * on the step's device (checkpoints through ct_steps_checkpoint_dir, so pretrain save
 * points work too), and checks that the models and the crosscoder agree (width,
 * count, vocabulary, `layer`). */
int ct_steps_tuple_load(ct_step_ctx *ctx, int layer, int tokenizer, ct_steps_tuple *t);
void ct_steps_tuple_free(ct_steps_tuple *t);

/* Task `name` from input "task" (exactly the file the plan keyed), tokenized with the
 * tuple's tokenizer (at most max_examples; 0: all); every example is checked against
 * each model's vocabulary and positions. */
int ct_steps_tuple_examples(ct_step_ctx *ctx, const ct_steps_tuple *t, const char *name, size_t max_examples,
                            ct_task **task, ct_task_examples **ex);

/* Loads task `name` from exactly `file`, the file the plan keyed (not from the search
 * path, which may differ where the step runs); `label` names errors. */
int ct_steps_task_load(const char *label, const char *name, const char *file, ct_task **out);

/* The indices of the k largest scores among the positive ones, largest first (ties:
 * lower index first); *n receives how many (fewer than k when fewer are positive). */
int ct_steps_top(const double *score, int H, size_t k, int32_t *out, size_t *n);

/* Writes `summary` (stolen) as the step's JSON artifact and stores it as its summary. */
int ct_steps_output_json(ct_step_ctx *ctx, json_t *summary);

/* The attribute artifact, parsed (arrays malloc'd; free with ct_steps_attr_free). */
typedef struct {
    int M, H;
    size_t n;
    float *ie, *reldec;
    double *total, *error, *delta, *metric;
    uint64_t *pair;
} ct_steps_attr;

int ct_steps_attr_parse(const void *buf, size_t len, const char *name, ct_steps_attr *out);
/* Reads input `input`[i] of the step as an attribute artifact. */
int ct_steps_attr_read(ct_step_ctx *ctx, const char *input, size_t i, ct_steps_attr *out);
void ct_steps_attr_free(ct_steps_attr *a);

#endif

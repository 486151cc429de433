/* The planner: a recipe becomes a DAG of keyed steps.
 *
 * Each registered step kind's plan function adds its steps with ct_plan_add(),
 * naming inputs by the labels of steps (or sources) added before. Every step's key
 * is computed when it is added (pipeline/key.h), so the DAG is a Merkle DAG. After
 * building, every step knows whether its artifact is already cached, and why it is
 * not: new step, changed parameter, changed input, or missing from the cache
 * (compared with the manifest stored by the last run of the same recipe). */
#ifndef CT_PLAN_H
#define CT_PLAN_H

#include "cache/cache.h"
#include "pipeline/recipe/recipe.h"
#include "pipeline/step.h"

#include <jansson.h>
#include <stdint.h>

typedef struct {
    size_t index;
    const char *label;         /* unique within the plan */
    const ct_step_kind *kind;  /* NULL for sources */
    const uint8_t *key;        /* CT_KEY_LEN bytes */
    json_t *material;          /* key material (borrowed) */
    const char *source_path;   /* sources only */
    int cached;                /* artifact present in the cache */
    const char *why;           /* why it must run ("" when cached) */
    const size_t *deps;        /* indices of the steps it reads */
    size_t n_deps;
} ct_plan_step;

/* Builds the plan of `recipe`. The cache (may be NULL) is used for the cached flags,
 * the explanations and the memoised digests of source files. */
int ct_plan_build(const ct_recipe *recipe, ct_cache *cache, ct_plan **out);
void ct_plan_free(ct_plan *plan);

size_t ct_plan_size(const ct_plan *plan);
const ct_plan_step *ct_plan_get(const ct_plan *plan, size_t index);
/* Index of the step labelled `label`; CT_ENOTFOUND if none. */
int ct_plan_find(const ct_plan *plan, const char *label, size_t *index);
const ct_recipe *ct_plan_recipe(const ct_plan *plan);

/* --- for plan functions --------------------------------------------------------- */

/* Adds a step. `params` is stolen (NULL: {}). `inputs` is stolen (NULL: {}): an
 * object mapping an input name to the label of an existing step or source, or to an
 * array of labels. Fails with a clear message on a duplicate label or an unknown
 * input label. */
int ct_plan_add(ct_plan *plan, const char *kind, const char *label, json_t *params,
                json_t *inputs);
/* Attaches options to step `label`: recipe values that steer how a step runs but not
 * what it produces (how often a long step saves its resume state), so they stay out of
 * the key and changing them reruns nothing. `options` is stolen. */
int ct_plan_set_options(ct_plan *plan, const char *label, json_t *options);
/* Adds (or reuses) a source file: its content digest is its key, memoised in the
 * cache by (path, device, inode, size, mtime). Sets *label (borrowed) to the source's
 * label "source:<absolute path>". Error names the missing or unreadable file. */
int ct_plan_source_file(ct_plan *plan, const char *path, const char **label);
/* A digest memoised in the cache under an identity string (e.g. paths with their
 * inode, size and mtime): `compute` runs only when the identity was never seen. The
 * memo entries are kept by the recipe's root like its steps. */
int ct_plan_memo_digest(ct_plan *plan, const char *identity,
                        int (*compute)(void *user, uint8_t digest[CT_KEY_LEN]), void *user,
                        uint8_t digest[CT_KEY_LEN]);
/* The identity of a file on disk for ct_plan_memo_digest: path, device, inode, size,
 * mtime and ctime. */
struct stat;
void ct_plan_stat_identity(const char *path, const struct stat *st, char *out, size_t n);
/* Adds a source whose digest the caller computed (checkpoint directories). */
int ct_plan_source_digest(ct_plan *plan, const char *label, const char *path,
                          const uint8_t digest[CT_KEY_LEN]);
/* Records a recipe section the current build cannot plan yet (shown by `plan`). */
void ct_plan_note(ct_plan *plan, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
size_t ct_plan_notes(const ct_plan *plan, const char *const **notes);
/* A note about an input the recipe needs that is not there yet (a checkpoint, the
 * corpus): `plan` lists it and plans the rest; `run` runs the rest and then fails.
 * ct_plan_n_missing counts them. */
void ct_plan_missing(ct_plan *plan, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
size_t ct_plan_n_missing(const ct_plan *plan);

/* --- the manifest of a recipe's last run ------------------------------------------ */

/* Stores {label: key} of this plan and sets the named root "recipe:<name>" to every
 * key the plan reaches, so gc keeps them and the next plan can explain changes. */
int ct_plan_save_manifest(ct_plan *plan, ct_cache *cache);

/* Plan as JSON (for `crosstime plan --format json` and the Snakefile). */
json_t *ct_plan_to_json(const ct_plan *plan);

#endif

/* The recipe report: one self-contained HTML page (inline CSS and SVG, no script, no
 * network) with task accuracy per checkpoint, crosscoder training curves and metrics,
 * RelIE against RelDec with the class regions, IE trajectories, the ablation
 * validation, language-overlap heatmaps, a section per selected latent with its top
 * contexts, and the recipe with the provenance of every number.
 *
 * The report only reads: step records and artifacts by label, and the result tables
 * of pipeline/results.h. Any of them may be missing (not computed yet, or a table this
 * build does not know): that part says so and the rest is still written. The same
 * data gives the same bytes (no times, hosts or addresses are printed). */
#ifndef CT_REPORT_H
#define CT_REPORT_H

#include "cache/cache.h"
#include "pipeline/plan.h"

#include <jansson.h>
#include <stdio.h>

/* Where the report's data comes from. */
typedef struct {
    void *user;
    json_t *recipe; /* the loaded recipe tree (borrowed) */
    json_t *steps;  /* [{"label", "kind"}] of the planned steps the report reads (borrowed) */
    /* Record of a computed step (new reference), NULL when it is not computed. */
    json_t *(*record)(void *user, const char *label);
    /* Artifact of a computed step (malloc'd, NUL-terminated); CT_ENOTFOUND when it is
     * not computed. */
    int (*artifact)(void *user, const char *label, char **data, size_t *len);
    /* Result table `name` (new reference), NULL when it cannot be built. */
    json_t *(*table)(void *user, const char *name);
} ct_report_source;

/* Writes the page. Fails only when `out` cannot be written (CT_EIO) or memory runs out. */
int ct_report_write(const ct_report_source *src, FILE *out);

/* The page of a plan's recipe from a cache (the cached step records, artifacts and
 * result tables). Computes nothing. */
int ct_report_build(const ct_plan *plan, ct_cache *cache, FILE *out);

/* 1 when the report reads the artifacts or records of steps of this kind: every kind
 * but the corpus, activation and pretraining kinds (tokenizer_train, tokenize_index,
 * tokenize, extract, scale, pretrain_tokens, pretrain), the toy kinds and the report
 * itself. */
int ct_report_reads_kind(const char *kind);

/* [{"label", "kind"}] of the plan's steps the report reads, in plan order (new). */
json_t *ct_report_steps(const ct_plan *plan);

#endif

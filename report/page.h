/* Internal to the report module: the page being written and the helpers its sections
 * share (report/page.c); one file per group of sections (page_*.c), assembled in page
 * order by report.c. */
#ifndef CT_REPORT_PAGE_H
#define CT_REPORT_PAGE_H

#include "report/report.h"
#include "report/svg.h"

#include <jansson.h>
#include <stdio.h>

/* Latent sections per crosscoder at most (the rest are counted, not shown). */
#define MAX_LATENT_SECTIONS 100
/* Lines of an IE trajectory plot. */
#define MAX_TRAJECTORIES 8

typedef struct report {
    const ct_report_source *src;
    FILE *f;
    json_t *cks;     /* recipe checkpoints [{name, tokens}] */
    json_t *tables;  /* name -> table (absent: not available) */
    json_t *ccs;     /* [{"name": "a-b/seed1", "label": "train/...", "checkpoints": [names]}] */
    int multilingual;
    json_t *ie_max;  /* "crosscoder\ntask\nlatent" -> max |IE| over checkpoints (latents table) */
} report;

double ct_rp_num(const json_t *v); /* NaN unless a number */
/* A table cell's text: numbers with `fmt`, strings escaped, booleans yes/no, else a dash. */
void ct_rp_put_num(FILE *f, const json_t *v, const char *fmt);
const char *ct_rp_str_or(const json_t *v); /* "" unless a string */
void ct_rp_put_text(FILE *f, const char *s); /* escaped; NULL writes nothing */
double ct_rp_ck_tokens(const report *r, const char *name); /* training tokens of a checkpoint */
json_t *ct_rp_table(const report *r, const char *name);   /* borrowed; NULL when absent or empty */
/* A table value names crosscoder `cc` as "a-b/seed1" or "train/a-b/seed1". */
int ct_rp_cc_match(const json_t *v, const char *cc);
int ct_rp_is_true(const json_t *v);
/* Unique strings of column `col` of the flat table's rows of crosscoder `cc` (NULL: all),
 * in first-seen order. New reference. */
json_t *ct_rp_distinct(const json_t *t, const char *cc, const char *col);
/* One table cell; a "key" cell shows the first 12 hex digits of a step key. */
void ct_rp_td(FILE *f, const json_t *v, const char *fmt, int left);
/* A plot's frame: id, title, axis labels (with units) and size in pixels. */
ct_svg_plot ct_rp_plot_of(const char *id, const char *title, const char *xlabel, const char *ylabel, int width,
                          int height);
void ct_rp_open_table(FILE *f, const char *const *heads, size_t n);

/* A growable series of plot values. */
typedef struct {
    double *v;
    size_t n, cap;
} ct_rp_vec;
void ct_rp_vec_push(ct_rp_vec *a, double x); /* on allocation failure the point is dropped */

/* Shared by the RelIE and latent sections (page_relie.c). The rows of the latents
 * table of crosscoder `cc` (and `task` when not NULL) at checkpoint `ck` (NULL: any):
 * borrowed references in a new array. */
json_t *ct_rp_latent_rows(const report *r, const char *cc, const char *task, const char *ck);
/* The largest |IE| of `latent` over the checkpoints of `cc` for `task` (0 when the
 * latents table has no row of it), from the index report.c builds once. */
double ct_rp_abs_ie_max(const report *r, const char *cc, const char *task, long long latent);
/* IE per checkpoint of latents `ids` (n) for one task: a line per latent. */
void ct_rp_ie_plot(report *r, const json_t *cc, const char *name, const char *task, const long long *ids,
                   size_t n, const char *id, const char *title);

/* The sections, in page order. */
void ct_rp_section_accuracy(report *r);    /* page_training.c */
void ct_rp_section_crosscoders(report *r); /* page_training.c */
void ct_rp_section_relie(report *r);       /* page_relie.c */
void ct_rp_section_validation(report *r);  /* page_relie.c */
void ct_rp_section_overlap(report *r);     /* page_relie.c */
void ct_rp_section_latents(report *r);     /* page_latents.c */

#endif

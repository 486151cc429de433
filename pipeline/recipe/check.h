/* Schema check and conversion of a merged node tree into the typed JSON tree, plus the
 * checks that relate fields to each other. Internal to the recipe module. */
#ifndef CT_RECIPE_CHECK_H
#define CT_RECIPE_CHECK_H

#include "pipeline/recipe/node.h"
#include "pipeline/recipe/schema.h"

#include <jansson.h>

/* Where the value at a dotted path was written. */
typedef struct {
    char *path; /* owned */
    const char *file;
    int line, col;
} ct_rloc;

typedef struct {
    ct_rloc *v;
    size_t n, cap;
} ct_rlocs;

void ct_rlocs_free(ct_rlocs *l);
/* Sorts the table for ct_rlocs_find. */
void ct_rlocs_sort(ct_rlocs *l);
const ct_rloc *ct_rlocs_find(const ct_rlocs *l, const char *path);

/* Records "file:line:col: path: message" (the position part omitted for line 0, the
 * path part for the root). */
int ct_rerror_at(const char *file, int line, int col, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Checks `root` (the merged mapping) against the schema, fills defaults and records
 * every value's location. */
int ct_rcheck_convert(ct_rarena *a, const ct_rnode *root, json_t **out, ct_rlocs *locs);

/* Cross-field checks on a converted tree (sorted `locs`). */
int ct_rcheck_cross(const json_t *root, const ct_rlocs *locs);

/* Replaces every `lang/<code>` entry of `tasks` by the tasks of that language whose
 * data is installed (ct_tasks_for_languages), in place, dropping repeats. */
int ct_rexpand_tasks(json_t *root, const ct_rlocs *locs);

#endif

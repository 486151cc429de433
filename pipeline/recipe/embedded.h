/* Lookup among the recipes compiled into the binary. Internal to the recipe module. */
#ifndef CT_RECIPE_EMBEDDED_H
#define CT_RECIPE_EMBEDDED_H

#include "pipeline/recipe/recipe.h"

/* By path relative to recipes/ ("families/pythia.yaml"), or that path without ".yaml";
 * "./" and "../" segments are resolved. NULL when absent. */
const ct_embedded_file *ct_rembedded_find(const char *path);

/* A recipe named on the command line: a path as above, or a file name without
 * ".yaml" anywhere under recipes/ ("pythia-1b"). CT_ENOTFOUND when there is none,
 * CT_EINVAL (naming the candidates) when several files share the name. */
int ct_rembedded_find_recipe(const char *name, const ct_embedded_file **out);

/* "families, pythia.yaml, ..." — the embedded paths, for messages. */
void ct_rembedded_list(char *buf, size_t cap);

#endif

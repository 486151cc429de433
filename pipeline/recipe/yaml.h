/* YAML text -> located node tree (libyaml's event API). Internal to the recipe module. */
#ifndef CT_RECIPE_YAML_H
#define CT_RECIPE_YAML_H

#include "pipeline/recipe/node.h"

/* Parses one YAML document. `file` (arena-owned) names the text in messages; marks are
 * shifted by `line0` lines, and by `col0` columns on the first line, so that a value cut
 * out of a longer string (a --set override) is located within it. *out is NULL for an
 * empty document. Errors: CT_EINVAL "file:line:col: invalid YAML: ...", duplicate keys,
 * unsupported tags, more than one document, nesting or alias expansion beyond limits. */
int ct_ryaml_parse(ct_rarena *a, const char *file, const char *text, size_t len, int line0,
                   int col0, ct_rnode **out);

#endif

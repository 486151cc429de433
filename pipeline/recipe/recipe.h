/* Recipes: declarative YAML experiment descriptions (see recipes/README.md).
 *
 * Loading a recipe: parse YAML (libyaml), merge `include:`d files (family defaults,
 * resolved relative to the including file, then among the recipes embedded in the
 * binary), apply command-line overrides (`--set a.b.c=value`), check the result
 * against the schema (unknown fields, wrong types, missing required fields are errors
 * of the form `file:line:column: what was expected`), and fill schema defaults.
 * The result is a typed JSON tree (jansson): integers as integers, numbers as reals,
 * so that two spellings of one value ("1e-4", "0.0001") are the same value.
 *
 * Ownership: a ct_recipe owns its tree; json_t pointers returned by the accessors are
 * borrowed and live as long as the recipe. */
#ifndef CT_RECIPE_H
#define CT_RECIPE_H

#include <jansson.h>
#include <stddef.h>

typedef struct ct_recipe ct_recipe;

typedef struct {
    const char *const *sets; /* "a.b.c=value" overrides, applied in order */
    size_t n_sets;
} ct_recipe_options;

#define CT_RECIPE_OPTIONS_INIT {NULL, 0}

/* Loads `path_or_name`: a file path, or the name of an embedded recipe when no such
 * file exists (its path under recipes/ with or without ".yaml", or a unique file name
 * without ".yaml": "tiny-en", "pythia-1b"). On failure *out is NULL and the message is
 * "file:line:column: dotted.path: expected X, got Y" or similar (CT_EINVAL), or names
 * the missing file (CT_ENOTFOUND, CT_EIO). The first error found is reported. */
int ct_recipe_load(const char *path_or_name, const ct_recipe_options *opts, ct_recipe **out);
/* Loads from a string; `name` is used in error messages and to resolve includes
 * (relative to its directory). */
int ct_recipe_load_string(const char *name, const char *yaml, const ct_recipe_options *opts,
                          ct_recipe **out);
void ct_recipe_free(ct_recipe *r);

/* The checked, defaulted tree (borrowed). */
json_t *ct_recipe_root(const ct_recipe *r);
/* Value at a dotted path ("crosscoder.lr", "model.checkpoints.0.name"); NULL if absent. */
json_t *ct_recipe_get(const ct_recipe *r, const char *dotted_path);
/* The recipe's name (its `name:` field). */
const char *ct_recipe_name(const ct_recipe *r);
/* The file it was loaded from ("<embedded>/tiny-en.yaml" for embedded recipes). */
const char *ct_recipe_path(const ct_recipe *r);
/* The exact text of the top-level file, for bundles and reports. */
const char *ct_recipe_text(const ct_recipe *r);
/* Where the value at `dotted_path` was written: file, 1-based line and column. For
 * --set overrides the file is "<command line>", the line the override's 1-based position
 * among them and the column counts within "PATH=VALUE"; schema defaults are at
 * "<default>", line and column 0. CT_ENOTFOUND when there is no such value. The file
 * string lives as long as the recipe. */
int ct_recipe_location(const ct_recipe *r, const char *dotted_path, const char **file,
                       int *line, int *column);

/* The string at `dotted_path` as a filesystem path: a relative path written in a recipe
 * file is relative to that file's directory (an included file's, for values it set);
 * absolute paths, `hf:`/`pretrain:` sources and values from --set or defaults are
 * returned as written. The caller frees *out. */
int ct_recipe_resolve_path(const ct_recipe *r, const char *dotted_path, char **out);

/* Embedded recipes: the files under recipes/ compiled into the binary. */
typedef struct {
    const char *name; /* path relative to recipes/, e.g. "families/pythia.yaml" */
    const char *text; /* NUL-terminated */
} ct_embedded_file;
/* All embedded files, sorted by name (static storage). */
const ct_embedded_file *ct_recipe_embedded(size_t *n);

#endif

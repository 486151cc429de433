/* Reading a recipe file with its includes, and command-line overrides. Internal to the
 * recipe module. */
#ifndef CT_RECIPE_LOAD_H
#define CT_RECIPE_LOAD_H

#include "pipeline/recipe/node.h"

typedef struct {
    const char *display; /* named in messages and locations */
    const char *ident;   /* the same file reached by two spellings has one ident */
    const char *dir;     /* base of relative includes; for embedded files, within recipes/ */
    int embedded;
    const char *text;
    size_t len;
} ct_rsource;

/* A source for a file on disk (plain or compressed) or an embedded file. */
int ct_rsource_file(ct_rarena *a, const char *path, ct_rsource *out);
int ct_rsource_embedded(ct_rarena *a, const char *name, const char *text, ct_rsource *out);

/* Parses `src`, loads its `include:`s (in order, each merged over the previous), merges
 * the file itself over them and returns the resulting mapping (never NULL). Maps merge
 * key by key; anything else, lists included, is replaced; a null value removes the key. */
int ct_rload(ct_rarena *a, const ct_rsource *src, ct_rnode **out);

/* Applies one "a.b.c=value" override, the `index`-th (0-based) on the command line. */
int ct_rset_apply(ct_rarena *a, ct_rnode *root, const char *spec, int index);

#endif

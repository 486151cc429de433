/* Provenance: where every number comes from. Collected once per run and stored in
 * every record the run writes: crosstime's version (git describe of its source tree,
 * baked in at build), the recipe file's repository commit and dirty state (libgit2;
 * absent when the recipe is not in a repository), the versions of the linked
 * libraries, the device and the host. */
#ifndef CT_PROVENANCE_H
#define CT_PROVENANCE_H

#include <jansson.h>

/* New object (caller owns). `recipe_path` may be NULL or an embedded name; `device`
 * is "cpu" or "cuda". Never fails: unknown parts are recorded as null. */
json_t *ct_provenance_collect(const char *recipe_path, const char *device);

/* The recipe's repository state alone: {"commit": hex, "dirty": bool, "path": repo
 * workdir} or null when the file is not inside a git repository. */
json_t *ct_provenance_git(const char *path);

#endif

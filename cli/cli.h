/* Helpers shared by the CLI's subcommands. */
#ifndef CT_CLI_H
#define CT_CLI_H

#include "cache/cache.h"
#include "pipeline/recipe/recipe.h"

#include <stddef.h>

/* Options every cache-using subcommand accepts. */
typedef struct {
    const char *cache_dir;  /* --cache DIR (else $CROSSTIME_CACHE, else ~/.cache/crosstime) */
    int allow_network_fs;   /* --allow-network-fs */
    const char **sets;      /* --set a.b=c (repeatable) */
    size_t n_sets;
} ct_cli_common;

/* Consumes a common option at argv[*i] (advancing *i past its value); returns 1 when
 * it was one, 0 when not, -1 on a missing value (message printed). */
int ct_cli_common_option(ct_cli_common *o, int argc, char **argv, int *i);
void ct_cli_common_free(ct_cli_common *o);

int ct_cli_open_cache(const ct_cli_common *o, int read_only, ct_cache **out);
int ct_cli_load_recipe(const ct_cli_common *o, const char *path_or_name, ct_recipe **out);

/* Prints "crosstime: <message>" for the current error and returns exit status 1. */
int ct_cli_fail(void);
/* Prints usage text to stderr and returns exit status 2. */
int ct_cli_usage(const char *text);

/* The embedded default recipe's name. */
#define CT_DEFAULT_RECIPE "tiny-en"

#endif

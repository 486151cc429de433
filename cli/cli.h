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

void ct_cli_common_free(ct_cli_common *o);

/* One option of a subcommand, written with designated initializers; a table of them
 * ends with an entry without a name. "--name VALUE" (or "--name=VALUE", or the alias
 * such as "-j" followed by VALUE) is stored in *value (the last one given wins), passed
 * to add(ctx, VALUE) for a repeatable option (a nonzero return is a usage error), or,
 * with neither, "--name" is a flag that sets *flag to 1. */
typedef struct ct_cli_opt {
    const char *name, *alias;
    const char **value;
    int (*add)(void *ctx, const char *value);
    void *ctx;
    int *flag;
} ct_cli_opt;

/* Parses argv[1..argc): the common options into *o (zeroed first), the subcommand's
 * options `opts` (may be NULL), and up to npos positional arguments into pos[] (left as
 * they are when absent: set defaults first). 0 on success; -1 for an unknown option, a
 * missing value or a positional argument too many, after freeing *o (the caller then
 * prints its usage). */
int ct_cli_parse(int argc, char **argv, ct_cli_common *o, const ct_cli_opt *opts, const char **pos, int npos);

int ct_cli_open_cache(const ct_cli_common *o, int read_only, ct_cache **out);
int ct_cli_load_recipe(const ct_cli_common *o, const char *path_or_name, ct_recipe **out);

/* Prints "crosstime: <message>" for the current error and returns exit status 1. */
int ct_cli_fail(void);
/* Prints usage text to stderr and returns exit status 2. */
int ct_cli_usage(const char *text);

/* The embedded default recipe's name. */
#define CT_DEFAULT_RECIPE "tiny-en"

#endif

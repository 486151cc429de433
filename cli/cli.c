#include "cli/cli.h"
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Consumes a common option at argv[*i] (advancing *i past its value); returns 1 when
 * it was one, 0 when not, -1 on a missing value (message printed). */
static int common_option(ct_cli_common *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    const char *value = NULL;
    int takes_value = strcmp(a, "--cache") == 0 || strcmp(a, "--set") == 0 ||
                      strncmp(a, "--cache=", 8) == 0 || strncmp(a, "--set=", 6) == 0;
    if (strcmp(a, "--allow-network-fs") == 0) {
        o->allow_network_fs = 1;
        return 1;
    }
    if (!takes_value)
        return 0;
    const char *eq = strchr(a, '=');
    if (eq) {
        value = eq + 1;
    } else {
        if (*i + 1 >= argc) {
            fprintf(stderr, "crosstime: %s needs a value\n", a);
            return -1;
        }
        value = argv[++*i];
    }
    if (strncmp(a, "--cache", 7) == 0) {
        o->cache_dir = value;
    } else {
        const char **sets = realloc(o->sets, (o->n_sets + 1) * sizeof *sets);
        if (!sets)
            return -1;
        sets[o->n_sets++] = value;
        o->sets = sets;
    }
    return 1;
}

void ct_cli_common_free(ct_cli_common *o)
{
    free(o->sets);
    o->sets = NULL;
    o->n_sets = 0;
}

/* The entry of opts that argv[*i] names, consuming its value; 1 matched, 0 not, -1 when
 * the value is missing. */
static int command_option(const ct_cli_opt *opts, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    for (const ct_cli_opt *op = opts; op && op->name; op++) {
        size_t n = strlen(op->name);
        int named = strncmp(a, op->name, n) == 0 && (a[n] == '\0' || a[n] == '=');
        if (!named && !(op->alias && strcmp(a, op->alias) == 0))
            continue;
        if (!op->value && !op->add) { /* a flag */
            if (named && a[n] == '=')
                return -1;
            *op->flag = 1;
            return 1;
        }
        const char *v;
        if (named && a[n] == '=') {
            v = a + n + 1;
        } else if (*i + 1 < argc) {
            v = argv[++*i];
        } else {
            fprintf(stderr, "crosstime: %s needs a value\n", a);
            return -1;
        }
        if (op->value)
            *op->value = v;
        else if (op->add(op->ctx, v))
            return -1;
        return 1;
    }
    return 0;
}

int ct_cli_parse(int argc, char **argv, ct_cli_common *o, const ct_cli_opt *opts, const char **pos, int npos)
{
    memset(o, 0, sizeof *o);
    int used = 0;
    for (int i = 1; i < argc; i++) {
        int c = common_option(o, argc, argv, &i);
        if (c == 0)
            c = command_option(opts, argc, argv, &i);
        if (c == 0 && argv[i][0] != '-' && used < npos) {
            pos[used++] = argv[i];
            c = 1;
        }
        if (c <= 0) {
            ct_cli_common_free(o);
            return -1;
        }
    }
    return 0;
}

int ct_cli_open_cache(const ct_cli_common *o, int read_only, ct_cache **out)
{
    ct_cache_options opts = CT_CACHE_OPTIONS_INIT;
    opts.dir = o->cache_dir;
    opts.allow_network_fs = o->allow_network_fs;
    opts.read_only = read_only;
    return ct_cache_open(&opts, out);
}

int ct_cli_load_recipe(const ct_cli_common *o, const char *path_or_name, ct_recipe **out)
{
    ct_recipe_options opts = CT_RECIPE_OPTIONS_INIT;
    opts.sets = o->sets;
    opts.n_sets = o->n_sets;
    return ct_recipe_load(path_or_name ? path_or_name : CT_DEFAULT_RECIPE, &opts, out);
}

int ct_cli_fail(void)
{
    const char *m = ct_error_message();
    fprintf(stderr, "crosstime: %s\n", m && *m ? m : ct_error_name(ct_error_code()));
    return 1;
}

int ct_cli_usage(const char *text)
{
    fputs(text, stderr);
    return 2;
}

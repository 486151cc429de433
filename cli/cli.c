#include "cli/cli.h"
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ct_cli_common_option(ct_cli_common *o, int argc, char **argv, int *i)
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

void ct_cli_common_free(ct_cli_common *o) { free(o->sets); }

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

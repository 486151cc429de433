/* `crosstime results`: a recipe's result tables from the cache. */
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/error.h"
#include "pipeline/plan.h"
#include "pipeline/results.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: crosstime results [RECIPE] [--table NAME] [--format csv|table|json]\n"
    "                         [--cache DIR] [--set a.b=v]...\n"
    "  Prints a result table of the recipe from the cache; nothing is computed, so\n"
    "  cells whose steps have not run yet are empty (null in json).\n"
    "  --table: accuracy (default), crosscoders, latents, validation or overlap\n"
    "  --format: table (default), csv or json\n";

int ct_cmd_results(int argc, char **argv)
{
    ct_cli_common common;
    const char *recipe_name = NULL, *table_name = "accuracy", *format = "table";
    const ct_cli_opt opts[] = {{.name = "--table", .value = &table_name}, {.name = "--format", .value = &format}, {0}};
    if (ct_cli_parse(argc, argv, &common, opts, &recipe_name, 1))
        return ct_cli_usage(usage);
    if (strcmp(format, "csv") && strcmp(format, "table") && strcmp(format, "json")) {
        ct_cli_common_free(&common);
        fprintf(stderr, "crosstime: unknown format '%s' (csv, table or json)\n", format);
        return 2;
    }
    ct_recipe *recipe = NULL;
    ct_cache *cache = NULL;
    ct_plan *plan = NULL;
    json_t *table = NULL;
    int status = 0;
    /* the table name is checked before the (slower) plan so a typo fails fast */
    if (ct_results_check(table_name) ||
        ct_cli_load_recipe(&common, recipe_name, &recipe) || ct_cli_open_cache(&common, 0, &cache) ||
        ct_plan_build(recipe, cache, &plan) || ct_results_build(plan, cache, table_name, &table) ||
        ct_results_write(table, format, stdout))
        status = ct_cli_fail();
    if (!status) {
        long long missing = json_integer_value(json_object_get(table, "missing"));
        json_t *cells = json_object_get(table, "cells");
        fflush(stdout);
        if (missing && cells)
            fprintf(stderr, "note: %lld of %lld cells missing (not computed yet: `crosstime run %s`)\n",
                    missing, (long long)json_integer_value(cells), recipe_name ? recipe_name : CT_DEFAULT_RECIPE);
        else if (missing)
            fprintf(stderr, "note: %lld steps of this table not computed yet (`crosstime run %s`)\n", missing,
                    recipe_name ? recipe_name : CT_DEFAULT_RECIPE);
    }
    json_decref(table);
    ct_plan_free(plan);
    ct_cache_close(cache);
    ct_recipe_free(recipe);
    ct_cli_common_free(&common);
    return status;
}

/* `crosstime plan` and `crosstime run`. */
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/error.h"
#include "common/progress.h"
#include "pipeline/estimate.h"
#include "pipeline/key.h"
#include "pipeline/plan.h"
#include "pipeline/runner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    ct_cli_common common;
    const char *recipe;
    const char *format; /* plan: text | json */
    const char *device;
    int jobs, verbose, quiet, dry_run;
    double gflops; /* run: throughput assumed by the estimate (0: the device's default) */
    const char **only;
    size_t n_only;
} run_args;

static int add_only(void *ctx, const char *label)
{
    run_args *a = ctx;
    const char **only = realloc(a->only, (a->n_only + 1) * sizeof *only);
    if (!only)
        return -1;
    only[a->n_only++] = label;
    a->only = only;
    return 0;
}

/* Fills *a from the arguments; on failure returns the exit status with nothing held. */
static int parse(int argc, char **argv, run_args *a, const char *usage)
{
    memset(a, 0, sizeof *a);
    const char *jobs = "1", *gflops = "0";
    a->format = "text";
    a->device = "cpu";
    const ct_cli_opt opts[] = {{.name = "--jobs", .alias = "-j", .value = &jobs},
                               {.name = "--device", .value = &a->device},
                               {.name = "--format", .value = &a->format},
                               {.name = "--verbose", .alias = "-v", .flag = &a->verbose},
                               {.name = "--quiet", .alias = "-q", .flag = &a->quiet},
                               {.name = "--dry-run", .flag = &a->dry_run},
                               {.name = "--gflops", .value = &gflops},
                               {.name = "--only", .add = add_only, .ctx = a},
                               {0}};
    int bad = ct_cli_parse(argc, argv, &a->common, opts, &a->recipe, 1) != 0;
    a->jobs = atoi(jobs);
    a->gflops = atof(gflops);
    bad = bad || a->jobs < 1 || a->gflops < 0 || (strcmp(a->device, "cpu") && strcmp(a->device, "cuda")) ||
          (strcmp(a->format, "text") && strcmp(a->format, "json"));
    int status = bad ? ct_cli_usage(usage) : 0;
#ifndef CT_HAVE_CUDA
    if (!status && strcmp(a->device, "cuda") == 0) {
        fprintf(stderr, "crosstime: --device cuda: this build has no CUDA backend "
                        "(rebuild where CMake finds the CUDA toolkit)\n");
        status = 1;
    }
#endif
    if (status) {
        ct_cli_common_free(&a->common);
        free(a->only);
    }
    return status;
}

/* Parses the arguments, loads the recipe, opens the cache, builds the plan, calls
 * `fn` with them and releases everything; returns the exit status. */
static int with_plan(int argc, char **argv, const char *usage,
                     int (*fn)(run_args *a, ct_recipe *recipe, ct_cache *cache, ct_plan *plan))
{
    run_args a;
    int status = parse(argc, argv, &a, usage);
    if (status)
        return status;
    ct_recipe *recipe = NULL;
    ct_cache *cache = NULL;
    ct_plan *plan = NULL;
    if (ct_cli_load_recipe(&a.common, a.recipe, &recipe) || ct_cli_open_cache(&a.common, 0, &cache) ||
        ct_plan_build(recipe, cache, &plan))
        status = ct_cli_fail();
    else
        status = fn(&a, recipe, cache, plan);
    ct_plan_free(plan);
    ct_cache_close(cache);
    ct_recipe_free(recipe);
    ct_cli_common_free(&a.common);
    free(a.only);
    return status;
}

static const char plan_usage[] =
    "usage: crosstime plan [RECIPE] [--format text|json] [--cache DIR] [--set a.b=v]...\n"
    "  Lists every step of the recipe with its key prefix, whether it is cached or\n"
    "  will run, and why (new step, changed parameter or input, missing artifact).\n";

static int show_plan(run_args *a, ct_recipe *recipe, ct_cache *cache, ct_plan *plan)
{
    if (strcmp(a->format, "json") == 0) {
        json_t *j = ct_plan_to_json(plan);
        json_dumpf(j, stdout, JSON_INDENT(1) | JSON_SORT_KEYS);
        putchar('\n');
        json_decref(j);
    } else {
        size_t n = ct_plan_size(plan), cached = 0, steps = 0;
        printf("recipe %s (%s)\n", ct_recipe_name(recipe), ct_recipe_path(recipe));
        for (size_t i = 0; i < n; i++) {
            const ct_plan_step *s = ct_plan_get(plan, i);
            if (s->source_path)
                continue;
            char hex[CT_KEY_HEX_LEN + 1];
            ct_key_hex(s->key, hex);
            steps++;
            cached += s->cached != 0;
            printf("  %-6s %.12s  %-40s %s%s%s\n", s->cached ? "cached" : "run", hex, s->label,
                   s->kind->name, s->cached ? "" : "  -- ", s->why);
        }
        const char *const *notes;
        size_t n_notes = ct_plan_notes(plan, &notes);
        for (size_t i = 0; i < n_notes; i++)
            printf("  note: %s\n", notes[i]);
        printf("%zu steps: %zu cached, %zu to run\n", steps, cached, steps - cached);
    }
    return 0;
}

int ct_cmd_plan(int argc, char **argv) { return with_plan(argc, argv, plan_usage, show_plan); }

static const char run_usage[] =
    "usage: crosstime run [RECIPE] [--jobs N] [--device cpu|cuda] [-v] [-q]\n"
    "                     [--only LABEL]... [--cache DIR] [--set a.b=v]...\n"
    "                     [--dry-run [--format text|json]] [--gflops N]\n"
    "  Runs the recipe's steps in dependency order; cached steps are not recomputed.\n"
    "  RECIPE is a file or the name of an embedded recipe (default: tiny-en).\n"
    "  --only LABEL runs just that step (its inputs must be cached), as a cluster job does.\n"
    "  --dry-run prints the estimate of disk space and compute that run prints before it\n"
    "  starts, and starts nothing (the cache is not opened); --gflops N sets the\n"
    "  throughput its time assumes.\n";

/* The whole recipe's estimate (pipeline/estimate.h) at the device's throughput. */
static int estimate(const run_args *a, const ct_recipe *recipe, ct_estimate *e)
{
    ct_estimate_options o = CT_ESTIMATE_OPTIONS_INIT;
    o.device = a->device;
    o.gflops = a->gflops;
    return ct_estimate_recipe(recipe, &o, e);
}

static int dry_run(int argc, char **argv)
{
    run_args a;
    int status = parse(argc, argv, &a, run_usage);
    if (status)
        return status;
    ct_recipe *recipe = NULL;
    ct_estimate e;
    if (ct_cli_load_recipe(&a.common, a.recipe, &recipe) || estimate(&a, recipe, &e))
        status = ct_cli_fail();
    else if (strcmp(a.format, "json") == 0) {
        json_t *j = ct_estimate_to_json(&e);
        json_object_set_new(j, "recipe", json_string(ct_recipe_name(recipe)));
        json_dumpf(j, stdout, JSON_INDENT(1) | JSON_SORT_KEYS);
        putchar('\n');
        json_decref(j);
    } else {
        printf("estimate for %s (%s); nothing was started\n", ct_recipe_name(recipe), ct_recipe_path(recipe));
        ct_estimate_print(&e, stdout, "  ");
        printf("  (`crosstime plan %s` lists the steps and what is missing)\n", ct_recipe_name(recipe));
    }
    ct_recipe_free(recipe);
    ct_cli_common_free(&a.common);
    free(a.only);
    return status;
}

static int run_plan(run_args *a, ct_recipe *recipe, ct_cache *cache, ct_plan *plan)
{
    ct_run_install_signal_handlers();
    ct_run_options opts = CT_RUN_OPTIONS_INIT;
    opts.jobs = a->jobs;
    opts.device = a->device;
    opts.verbose = a->verbose;
    opts.quiet = a->quiet;
    opts.only = a->only;
    opts.n_only = a->n_only;
    ct_estimate e;
    if (!a->quiet && !a->n_only && estimate(a, recipe, &e) == 0) {
        fprintf(stderr, "estimate for %s (all steps; cached ones are not recomputed):\n", ct_recipe_name(recipe));
        ct_estimate_print(&e, stderr, "  ");
    }
    ct_error_clear(); /* recipes without a model or corpus have no estimate */
    ct_run_stats st;
    int rc = ct_run(plan, cache, &opts, &st);
    const char *const *notes;
    size_t n_notes = ct_plan_notes(plan, &notes);
    for (size_t i = 0; i < n_notes && !a->quiet; i++)
        ct_log("note: %s", notes[i]);
    ct_log("%s: %zu steps, %zu cached, %zu computed, %zu picked up, %zu failed, %zu skipped in %.3fs",
           ct_recipe_name(recipe), st.steps, st.cached, st.computed, st.picked_up, st.failed, st.skipped,
           st.wall_s);
    if (rc == CT_EINTR)
        return 130;
    if (!rc && !a->n_only && ct_plan_n_missing(plan)) { /* --only: that step ran, nothing else was asked */
        fprintf(stderr, "crosstime: %s: %zu inputs are missing (see the notes); the steps that need them did not run\n",
                ct_recipe_name(recipe), ct_plan_n_missing(plan));
        return 1;
    }
    return rc ? ct_cli_fail() : 0;
}

int ct_cmd_run(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--dry-run") == 0)
            return dry_run(argc, argv);
    return with_plan(argc, argv, run_usage, run_plan);
}

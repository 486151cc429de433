/* `crosstime bundle export|import|verify`. */
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/error.h"
#include "common/progress.h"
#include "pipeline/bundle/bundle.h"
#include "pipeline/plan.h"
#include "pipeline/runner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char export_usage[] =
    "usage: crosstime bundle export [RECIPE] -o FILE.tar.zst [--with artifacts|activations]...\n"
    "                               [--keys LABEL]... [--cache DIR] [--set a.b=v]...\n"
    "  Writes a deterministic bundle of the recipe: recipe.yaml, manifest.json (every\n"
    "  step's key, key material and record) and the results. --with artifacts adds\n"
    "  crosscoders and other artifacts, --with activations the activation shards.\n"
    "  --keys LABEL (repeatable, or comma-separated) exports only those steps, each\n"
    "  with its artifact; they must be cached. Only cached steps are exported; the\n"
    "  others are listed as absent.\n";

/* The --keys labels of an export: the copies of the arguments they point into, and the
 * labels. */
typedef struct {
    char **store;
    size_t n_store;
    const char **labels;
    size_t n_labels;
} key_labels;

/* Appends the comma-separated labels of `arg`. */
static int add_labels(void *ctx, const char *arg)
{
    key_labels *k = ctx;
    char *copy = strdup(arg);
    char **s = realloc(k->store, (k->n_store + 1) * sizeof *s);
    if (!copy || !s) {
        free(copy);
        if (s)
            k->store = s;
        return -1;
    }
    k->store = s;
    s[k->n_store++] = copy;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        const char **l = realloc(k->labels, (k->n_labels + 1) * sizeof *l);
        if (!l)
            return -1;
        l[k->n_labels++] = tok;
        k->labels = l;
    }
    return 0;
}

/* --with artifacts|activations. */
static int add_with(void *ctx, const char *what)
{
    ct_bundle_export_options *eo = ctx;
    if (strcmp(what, "artifacts") == 0)
        eo->with_artifacts = 1;
    else if (strcmp(what, "activations") == 0)
        eo->with_activations = 1;
    else
        return -1;
    return 0;
}

int ct_cmd_bundle_export(int argc, char **argv)
{
    ct_cli_common c;
    ct_bundle_export_options eo = CT_BUNDLE_EXPORT_OPTIONS_INIT;
    const char *recipe_arg = NULL, *out = NULL;
    key_labels keys = {0};
    const ct_cli_opt opts[] = {{.name = "--output", .alias = "-o", .value = &out},
                               {.name = "--with", .add = add_with, .ctx = &eo},
                               {.name = "--keys", .add = add_labels, .ctx = &keys},
                               {0}};
    int status = 0;
    if (ct_cli_parse(argc, argv, &c, opts, &recipe_arg, 1))
        status = ct_cli_usage(export_usage);
    if (!status && !out)
        status = ct_cli_usage(export_usage);
    ct_recipe *recipe = NULL;
    ct_cache *cache = NULL;
    ct_plan *plan = NULL;
    if (!status && (ct_cli_load_recipe(&c, recipe_arg, &recipe) || ct_cli_open_cache(&c, 0, &cache) ||
                    ct_plan_build(recipe, cache, &plan)))
        status = ct_cli_fail();
    if (!status) {
        eo.labels = keys.labels;
        eo.n_labels = keys.n_labels;
        eo.sets = c.sets;
        eo.n_sets = c.n_sets;
        ct_bundle_export_stats st;
        if (ct_bundle_export(plan, cache, out, &eo, &st))
            status = ct_cli_fail();
        else
            ct_log("%s: %s: %zu of %zu steps with records, %zu artifacts (%llu bytes), %zu absent", out,
                   ct_recipe_name(recipe), st.records, st.steps, st.artifacts, (unsigned long long)st.bytes,
                   st.absent);
    }
    ct_plan_free(plan);
    ct_cache_close(cache);
    ct_recipe_free(recipe);
    for (size_t i = 0; i < keys.n_store; i++)
        free(keys.store[i]);
    free(keys.store);
    free(keys.labels);
    ct_cli_common_free(&c);
    return status;
}

/* Parses FILE plus the common options and `opts`; the exit status when they are wrong. */
static int parse_file_args(int argc, char **argv, ct_cli_common *c, const char **file, const char *usage,
                           const ct_cli_opt *opts)
{
    *file = NULL;
    if (ct_cli_parse(argc, argv, c, opts, file, 1))
        return ct_cli_usage(usage);
    if (!*file) {
        ct_cli_common_free(c);
        return ct_cli_usage(usage);
    }
    return 0;
}

int ct_cmd_bundle_import(int argc, char **argv)
{
    static const char usage[] =
        "usage: crosstime bundle import FILE [--cache DIR]\n"
        "  Checks every member, key and digest of the bundle, then adds its artifacts to\n"
        "  the cache (existing keys are kept) and merges them into the root\n"
        "  recipe:<name>, which keeps what it held. Nothing is written if any check fails.\n";
    ct_cli_common c;
    const char *file;
    int status = parse_file_args(argc, argv, &c, &file, usage, NULL);
    if (status)
        return status;
    ct_cache *cache = NULL;
    ct_bundle_import_stats st;
    if (ct_cli_open_cache(&c, 0, &cache) || ct_bundle_import(file, cache, &st))
        status = ct_cli_fail();
    else
        ct_log("%s: recipe %s: %zu artifacts, %zu imported, %zu already present; root recipe:%s in %s", file,
               st.recipe, st.entries, st.imported, st.existing, st.recipe, ct_cache_dir(cache));
    ct_cache_close(cache);
    ct_cli_common_free(&c);
    return status;
}

static void print_outcome(const ct_bundle_verify_entry *e, void *user)
{
    static const char *const names[] = {"identical", "DIFFERENT", "not recomputable"};
    (void)user;
    printf("%-16s %.12s  %-40s %s\n", names[e->outcome], e->key_hex, e->label, e->detail);
}

int ct_cmd_bundle_verify(int argc, char **argv)
{
    static const char usage[] =
        "usage: crosstime bundle verify FILE [--cache DIR] [--recipe FILE] [--set a.b=v]...\n"
        "                               [--jobs N] [--device cpu|cuda]\n"
        "  Recomputes the bundle's results in a scratch cache from their inputs (the\n"
        "  bundle's artifacts, else the cache's entries) and compares them entry by entry:\n"
        "  identical, different (with how many lines and bytes differ), or not\n"
        "  recomputable (inputs absent). The recipe is the bundled one with the overrides\n"
        "  it was exported with (--recipe FILE and --set add to that). Exit status 1 when\n"
        "  any result differs.\n";
    ct_cli_common c;
    const char *file, *recipe = NULL, *device = "cpu", *jobs = "1";
    const ct_cli_opt opts[] = {{.name = "--recipe", .value = &recipe},
                               {.name = "--device", .value = &device},
                               {.name = "--jobs", .alias = "-j", .value = &jobs},
                               {0}};
    int status = parse_file_args(argc, argv, &c, &file, usage, opts);
    if (status)
        return status;
    if ((strcmp(device, "cpu") && strcmp(device, "cuda")) || atoi(jobs) < 1) {
        ct_cli_common_free(&c);
        return ct_cli_usage(usage);
    }
    ct_cache *cache = NULL;
    if (ct_cli_open_cache(&c, 1, &cache)) {
        /* No cache yet: the bundle's own artifacts are all there is. */
        ct_log("note: no cache to read inputs from (%s)", ct_error_message());
        cache = NULL;
        ct_error_clear();
    }
    ct_bundle_verify_options vo = CT_BUNDLE_VERIFY_OPTIONS_INIT;
    vo.cache = cache;
    vo.recipe_path = recipe;
    vo.jobs = atoi(jobs);
    vo.device = device;
    vo.sets = c.sets;
    vo.n_sets = c.n_sets;
    ct_bundle_verify_stats st;
    ct_run_install_signal_handlers();
    if (ct_bundle_verify(file, &vo, print_outcome, NULL, &st)) {
        status = ct_cli_fail();
    } else {
        printf("%zu identical, %zu different, %zu not recomputable\n", st.identical, st.different,
               st.not_recomputable);
        status = st.different ? 1 : 0;
    }
    ct_cache_close(cache);
    ct_cli_common_free(&c);
    return status;
}

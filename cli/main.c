/* crosstime: the command-line entry point. Each subcommand lives in its own file. */
#include "cli/cli.h"
#include "cli/commands.h"
#include "ct_version.h"
#include "pipeline/step.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *group; /* NULL for top-level commands */
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {NULL, "run", ct_cmd_run, "run a recipe's steps (default: the embedded tiny-en recipe)"},
    {NULL, "plan", ct_cmd_plan, "show a recipe's steps: cached or to run, and why"},
    {NULL, "results", ct_cmd_results, "print a recipe's result tables from the cache (csv, table, json)"},
    {NULL, "report", ct_cmd_report, "write a recipe's HTML report from the cache"},
    {NULL, "why", ct_cmd_why, "print the key material and provenance of a cache entry"},
    {NULL, "steps", ct_cmd_steps, "list the step kinds this build knows"},
    {"cache", "ls", ct_cmd_cache_ls, "list cache entries"},
    {"cache", "stat", ct_cmd_cache_stat, "cache size and counts"},
    {"cache", "verify", ct_cmd_cache_verify, "re-hash every blob; remove corrupt entries"},
    {"cache", "gc", ct_cmd_cache_gc, "delete what no recipe root reaches"},
    {"cache", "cat", ct_cmd_cache_cat, "write an entry's artifact to stdout"},
    {"cache", "roots", ct_cmd_cache_roots, "list named roots"},
    {"bundle", "export", ct_cmd_bundle_export, "write a recipe's results as a deterministic tar.zst"},
    {"bundle", "import", ct_cmd_bundle_import, "check a bundle and add its entries to the cache"},
    {"bundle", "verify", ct_cmd_bundle_verify, "recompute a bundle's results and compare"},
    {"inspect", "tokenize", ct_cmd_inspect_tokenize, "tokenize JSON strings from stdin"},
    {"inspect", "task", ct_cmd_inspect_task, "a task's pairs, kept/dropped counts and examples; --list"},
    {"inspect", "forward", ct_cmd_inspect_forward, "residuals after every block and logits as .npy"},
    {"tokenizer", "train", ct_cmd_tokenizer_train, "train a byte-level BPE tokenizer.json on a corpus"},
    {"import", "crosscoder", ct_cmd_import_crosscoder, "an exported crosscoder into the cache (prints its key)"},
    {"export", "crosscoder", ct_cmd_export_crosscoder, "a trained crosscoder as safetensors + JSON config"},
    {"export", "checkpoint", ct_cmd_export_checkpoint, "a pretrained checkpoint as a Hugging Face directory"},
    {"bench", "forward", ct_cmd_bench_forward, "forward throughput of a random model of a given shape"},
    {"bench", "crosscoder", ct_cmd_bench_crosscoder, "crosscoder training throughput on random rows"},
};

static int usage(FILE *f)
{
    fprintf(f, "usage: crosstime <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s%s%s", commands[i].group ? commands[i].group : "",
                 commands[i].group ? " " : "", commands[i].name);
        fprintf(f, "  %-18s %s\n", name, commands[i].summary);
    }
    fprintf(f, "\ncommon options: --cache DIR (or CROSSTIME_CACHE), --set a.b.c=value, "
               "--allow-network-fs\n");
    return f == stderr ? 2 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0)
        return usage(stdout);
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("crosstime %s\n", CT_VERSION);
        return 0;
    }
    ct_steps_register_builtin();
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
        const command *c = &commands[i];
        if (!c->group && strcmp(argv[1], c->name) == 0)
            return c->fn(argc - 1, argv + 1);
        if (c->group && strcmp(argv[1], c->group) == 0 && argc >= 3 && strcmp(argv[2], c->name) == 0)
            return c->fn(argc - 2, argv + 2);
    }
    fprintf(stderr, "crosstime: unknown command '%s%s%s'\n", argv[1], argc >= 3 ? " " : "",
            argc >= 3 ? argv[2] : "");
    return usage(stderr);
}

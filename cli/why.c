/* `crosstime why KEY-PREFIX` and `crosstime steps`. */
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/error.h"
#include "pipeline/step.h"

#include <stdio.h>
#include <string.h>

static const char why_usage[] =
    "usage: crosstime why KEY-PREFIX [--cache DIR]\n"
    "  Prints the entry's key material (step kind, version, parameters, input keys),\n"
    "  summary, timings and provenance.\n";

int ct_cmd_why(int argc, char **argv)
{
    ct_cli_common common;
    const char *prefix = NULL;
    if (ct_cli_parse(argc, argv, &common, NULL, &prefix, 1))
        return ct_cli_usage(why_usage);
    if (!prefix) {
        ct_cli_common_free(&common);
        return ct_cli_usage(why_usage);
    }
    ct_cache *cache;
    uint8_t key[CT_KEY_LEN];
    json_t *record;
    int status = 0;
    if (ct_cli_open_cache(&common, 1, &cache)) {
        status = ct_cli_fail();
    } else {
        if (ct_cache_resolve_prefix(cache, prefix, key) || ct_cache_get(cache, key, &record)) {
            status = ct_cli_fail();
        } else {
            json_dumpf(record, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
            putchar('\n');
            json_decref(record);
        }
        ct_cache_close(cache);
    }
    ct_cli_common_free(&common);
    return status;
}

int ct_cmd_steps(int argc, char **argv)
{
    int all = argc > 1 && strcmp(argv[1], "--all") == 0;
    size_t n;
    const ct_step_kind *const *kinds = ct_step_kinds(&n);
    for (size_t i = 0; i < n; i++)
        if (all || !kinds[i]->internal)
            printf("%-16s v%-3d %s\n", kinds[i]->name, kinds[i]->version, kinds[i]->summary);
    return 0;
}

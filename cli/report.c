/* `crosstime report`: a recipe's HTML report from the cache. */
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/error.h"
#include "common/io.h"
#include "pipeline/plan.h"
#include "report/report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: crosstime report [RECIPE] [--out FILE] [--cache DIR] [--set a.b=v]...\n"
    "  Writes the recipe's report, one self-contained HTML page, from the cache: nothing\n"
    "  is computed, so parts whose steps have not run yet say \"not computed yet\".\n"
    "  --out: the HTML file (default: report.html; '-' for stdout)\n";

int ct_cmd_report(int argc, char **argv)
{
    ct_cli_common common;
    const char *recipe_name = NULL, *out = "report.html";
    const ct_cli_opt opts[] = {{.name = "--out", .value = &out}, {0}};
    if (ct_cli_parse(argc, argv, &common, opts, &recipe_name, 1))
        return ct_cli_usage(usage);
    ct_recipe *recipe = NULL;
    ct_cache *cache = NULL;
    ct_plan *plan = NULL;
    char *html = NULL;
    size_t len = 0;
    FILE *mem = NULL;
    int status = 0;
    if (ct_cli_load_recipe(&common, recipe_name, &recipe) || ct_cli_open_cache(&common, 0, &cache) ||
        ct_plan_build(recipe, cache, &plan))
        status = ct_cli_fail();
    if (!status && !(mem = open_memstream(&html, &len))) {
        ct_error_set(CT_ENOMEM, "out of memory");
        status = ct_cli_fail();
    }
    if (!status) {
        /* written whole, so a failed run never leaves half a page */
        int rc = ct_report_build(plan, cache, mem);
        if (fclose(mem) != 0 && !rc)
            rc = ct_error_set(CT_ENOMEM, "out of memory");
        if (!rc && strcmp(out, "-") == 0)
            rc = fwrite(html, 1, len, stdout) == len && fflush(stdout) == 0
                     ? 0
                     : ct_error_set(CT_EIO, "cannot write the report to stdout");
        else if (!rc)
            rc = ct_write_file_atomic(out, html, len);
        if (rc)
            status = ct_cli_fail();
        else if (strcmp(out, "-") != 0)
            fprintf(stderr, "wrote %s (%zu bytes)\n", out, len);
    }
    free(html);
    ct_plan_free(plan);
    ct_cache_close(cache);
    ct_recipe_free(recipe);
    ct_cli_common_free(&common);
    return status;
}

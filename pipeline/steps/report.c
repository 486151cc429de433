/* report: the recipe's HTML report (report/report.h), labelled "report", planned last.
 *
 * Inputs: every planned step the report reads (ct_report_steps: all but the corpus,
 * activation, pretraining and toy kinds), each under its own label as input name, so
 * the report's key changes, and it reruns, when any of them changes. Parameters in the
 * key: the loaded recipe (the page shows it) and the list of those steps.
 *
 * The page is the same as `crosstime report` writes from the cache: the records and
 * artifacts come from the step's inputs, and the result tables from ct_step_results
 * (pipeline/step.h), which builds them from the same inputs. */
#include "common/error.h"
#include "pipeline/plan.h"
#include "pipeline/step.h"
#include "pipeline/steps/shard.h"
#include "report/report.h"

#include <stdio.h>
#include <stdlib.h>

static int plan_report(ct_plan *plan, const ct_recipe *recipe)
{
    if (!ct_recipe_get(recipe, "model"))
        return 0; /* toy recipes of the pipeline's own tests */
    json_t *steps = ct_report_steps(plan), *inputs = json_object(), *st;
    size_t i;
    json_array_foreach(steps, i, st)
        json_object_set(inputs, json_string_value(json_object_get(st, "label")), json_object_get(st, "label"));
    json_t *params = json_pack("{s:O, s:o}", "recipe", ct_recipe_root(recipe), "steps", steps);
    return ct_plan_add(plan, "report", "report", params, inputs);
}

static json_t *ctx_record(void *user, const char *label)
{
    json_t *rec = NULL;
    if (ct_step_input_record(user, label, 0, &rec) != 0) {
        ct_error_clear();
        return NULL;
    }
    return json_incref(rec);
}

static int ctx_artifact(void *user, const char *label, char **data, size_t *len)
{
    if (!ct_step_input_count(user, label))
        return CT_ENOTFOUND;
    return ct_steps_read_input(user, label, 0, data, len);
}

static json_t *ctx_table(void *user, const char *name)
{
    json_t *t = NULL;
    if (ct_step_results(user, name, &t) != 0) {
        ct_error_clear();
        return NULL;
    }
    return t;
}

static int run_report(ct_step_ctx *ctx)
{
    json_t *p = ct_step_params(ctx);
    ct_report_source src = {ctx, json_object_get(p, "recipe"), json_object_get(p, "steps"), ctx_record, ctx_artifact,
                            ctx_table};
    char *html = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&html, &len);
    if (!f)
        return ct_error_set(CT_ENOMEM, "%s: out of memory", ct_step_label(ctx));
    int rc = ct_report_write(&src, f);
    if (fclose(f) != 0 && !rc)
        rc = ct_error_set(CT_ENOMEM, "%s: out of memory", ct_step_label(ctx));
    ct_blob_writer *w;
    if (!rc && !(rc = ct_step_output(ctx, &w)))
        rc = ct_blob_write(w, html, len);
    if (!rc)
        ct_step_set_summary(ctx, json_pack("{s:I, s:I}", "bytes", (json_int_t)len, "steps",
                                           (json_int_t)json_array_size(json_object_get(p, "steps"))));
    free(html);
    return rc;
}

const ct_step_kind ct_step_report = {
    .name = "report",
    .version = 2,
    .summary = "the recipe's self-contained HTML report (plots, tables, top contexts, provenance)",
    .plan = plan_report,
    .run = run_report,
    .internal = 0,
    .bundle = CT_BUNDLE_RESULT,
};

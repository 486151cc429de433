/* The report from a plan and its cache (ct_report_build). */
#include "common/error.h"
#include "pipeline/results.h"
#include "report/report.h"

#include <string.h>

int ct_report_reads_kind(const char *kind)
{
    static const char *const skipped[] = {"tokenizer_train", "tokenize_index", "tokenize", "extract",
                                          "scale", "pretrain_tokens", "pretrain", "toy_transform", "toy_join",
                                          "report"};
    if (!kind)
        return 0;
    for (size_t i = 0; i < sizeof skipped / sizeof *skipped; i++)
        if (strcmp(kind, skipped[i]) == 0)
            return 0;
    return 1;
}

json_t *ct_report_steps(const ct_plan *plan)
{
    json_t *steps = json_array();
    for (size_t i = 0; i < ct_plan_size(plan); i++) {
        const ct_plan_step *s = ct_plan_get(plan, i);
        if (s->kind && ct_report_reads_kind(s->kind->name))
            json_array_append_new(steps, json_pack("{s:s, s:s}", "label", s->label, "kind", s->kind->name));
    }
    return steps;
}

typedef struct {
    const ct_plan *plan;
    ct_cache *cache;
} plan_source;

static int step_key(const plan_source *ps, const char *label, const uint8_t **key)
{
    size_t idx;
    if (ct_plan_find(ps->plan, label, &idx) != 0)
        return CT_ENOTFOUND;
    *key = ct_plan_get(ps->plan, idx)->key;
    return 0;
}

static json_t *plan_record(void *user, const char *label)
{
    plan_source *ps = user;
    const uint8_t *key;
    json_t *record = NULL;
    if (step_key(ps, label, &key) != 0 || ct_cache_get(ps->cache, key, &record) != 0)
        return NULL;
    return record;
}

static int plan_artifact(void *user, const char *label, char **data, size_t *len)
{
    plan_source *ps = user;
    const uint8_t *key;
    if (step_key(ps, label, &key) != 0 || ct_cache_get(ps->cache, key, NULL) != 0)
        return CT_ENOTFOUND;
    return ct_cache_read_all(ps->cache, key, data, len);
}

static json_t *plan_table(void *user, const char *name)
{
    plan_source *ps = user;
    json_t *t = NULL;
    /* a table this build does not know yet is "not computed", not an error */
    if (ct_results_check(name) != 0 || ct_results_build(ps->plan, ps->cache, name, &t) != 0) {
        ct_error_clear();
        return NULL;
    }
    return t;
}

int ct_report_build(const ct_plan *plan, ct_cache *cache, FILE *out)
{
    plan_source ps = {plan, cache};
    json_t *steps = ct_report_steps(plan);
    if (!steps)
        return ct_error_set(CT_ENOMEM, "out of memory");
    ct_report_source src = {&ps, ct_recipe_root(ct_plan_recipe(plan)), steps, plan_record, plan_artifact,
                            plan_table};
    int rc = ct_report_write(&src, out);
    json_decref(steps);
    return rc;
}

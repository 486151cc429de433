/* `crosstime export checkpoint LABEL [RECIPE] --out DIR`: a checkpoint of a recipe's own
 * pretraining run (a `pretrain` step's artifact) as a Hugging Face directory
 * (config.json, model.safetensors, tokenizer.json) that transformers loads with
 * GPTNeoXForCausalLM.from_pretrained(DIR). */
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/error.h"
#include "pipeline/plan.h"
#include "pipeline/steps/pretrain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: crosstime export checkpoint LABEL [RECIPE] --out DIR [--cache DIR] [--set a.b=c]\n"
    "  LABEL: a checkpoint name of the recipe (e.g. step1500), a pretrain step label\n"
    "  (pretrain/1500) or the key prefix of a pretrain entry. RECIPE: a file or an\n"
    "  embedded recipe name (default: " CT_DEFAULT_RECIPE "). The recipe must have been run.\n";

/* The key of LABEL: through the recipe's plan (a checkpoint name or a step label), else
 * as a key prefix. */
static int find_key(const ct_cli_common *o, ct_cache *cache, const char *recipe_name, const char *label,
                    uint8_t key[CT_KEY_LEN])
{
    ct_recipe *r = NULL;
    ct_plan *plan = NULL;
    int rc = ct_cli_load_recipe(o, recipe_name, &r);
    if (!rc)
        rc = ct_plan_build(r, cache, &plan);
    char step[300];
    snprintf(step, sizeof step, "%s", label);
    json_t *c;
    size_t i;
    json_array_foreach(rc ? NULL : ct_recipe_get(r, "model.checkpoints"), i, c) {
        const char *src = json_string_value(json_object_get(c, "source"));
        if (strcmp(json_string_value(json_object_get(c, "name")), label) == 0 && src &&
            strncmp(src, "pretrain:", 9) == 0)
            snprintf(step, sizeof step, "pretrain/%s", src + 9);
    }
    size_t idx;
    if (!rc && ct_plan_find(plan, step, &idx) == 0) {
        const ct_plan_step *s = ct_plan_get(plan, idx);
        if (!s->kind || strcmp(s->kind->name, "pretrain") != 0)
            rc = ct_error_set(CT_EINVAL, "%s is a '%s' step, not a pretrain save point", step,
                              s->kind ? s->kind->name : "source");
        else if (!s->cached)
            rc = ct_error_set(CT_ENOTFOUND, "%s of recipe %s is not in the cache: run `crosstime run %s` first",
                              step, ct_recipe_path(r), recipe_name);
        else
            memcpy(key, s->key, CT_KEY_LEN);
    } else if (!rc) {
        rc = ct_cache_resolve_prefix(cache, label, key);
        if (rc == CT_ENOTFOUND || rc == CT_EINVAL)
            rc = ct_error_wrap(rc, "%s is neither a checkpoint or pretrain step of recipe %s nor a cache key",
                               label, ct_recipe_path(r));
    }
    ct_plan_free(plan);
    ct_recipe_free(r);
    return rc;
}

static int export_checkpoint(const ct_cli_common *o, const char *recipe, const char *label, const char *out)
{
    ct_cache *cache = NULL;
    uint8_t key[CT_KEY_LEN];
    json_t *record = NULL;
    char *data = NULL;
    size_t len = 0;
    int rc = ct_cli_open_cache(o, 0, &cache);
    if (!rc)
        rc = find_key(o, cache, recipe, label, key);
    if (!rc)
        rc = ct_cache_get(cache, key, &record);
    const char *kind = json_string_value(json_object_get(json_object_get(record, "material"), "kind"));
    if (!rc && (!kind || strcmp(kind, "pretrain") != 0))
        rc = ct_error_set(CT_EINVAL, "entry %s is a '%s' artifact, not a pretrain save point", label,
                          kind ? kind : "?");
    if (!rc)
        rc = ct_cache_read_all(cache, key, &data, &len);
    if (!rc)
        rc = ct_steps_pretrain_write_hf(data, len, label, out);
    if (!rc)
        printf("%s (%s)\n", out, json_string_value(json_object_get(record, "label")));
    free(data);
    json_decref(record);
    ct_cache_close(cache);
    return rc;
}

int ct_cmd_export_checkpoint(int argc, char **argv)
{
    ct_cli_common o;
    const char *out = NULL, *pos[2] = {NULL, CT_DEFAULT_RECIPE}; /* LABEL [RECIPE] */
    const ct_cli_opt opts[] = {{.name = "--out", .value = &out}, {0}};
    if (ct_cli_parse(argc, argv, &o, opts, pos, 2))
        return ct_cli_usage(usage_text);
    int status;
    if (!pos[0] || !out)
        status = ct_cli_usage(usage_text);
    else
        status = export_checkpoint(&o, pos[1], pos[0], out) ? ct_cli_fail() : 0;
    ct_cli_common_free(&o);
    return status;
}

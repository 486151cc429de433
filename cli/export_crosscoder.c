/* `crosstime export crosscoder KEY-PREFIX --out FILE.safetensors [--json FILE]`: a
 * trained crosscoder (a `train` step's artifact) as the reference's safetensors
 * (W_enc [M,d,H], b_enc [H], W_dec [H,M,d], b_dec [M,d]) plus its JSON config with the
 * normalisation factors (crosscoder/export.h). */
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/error.h"
#include "crosscoder/crosscoder.h"
#include "crosscoder/export.h"
#include "pipeline/key.h"
#include "pipeline/steps/shard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: crosstime export crosscoder KEY-PREFIX --out FILE.safetensors [--json FILE] [--cache DIR]\n"
    "  KEY-PREFIX names a train step's entry (see `crosstime plan` or `cache ls`) or an\n"
    "  imported one (`crosstime import crosscoder`).\n"
    "  --json FILE  where the config goes (default: FILE.safetensors with .json in place of\n"
    "               .safetensors).\n";

static int export_entry(ct_cache *cache, const char *prefix, const char *st_path, const char *json_path)
{
    uint8_t key[CT_KEY_LEN];
    json_t *record = NULL;
    int rc = ct_cache_resolve_prefix(cache, prefix, key);
    if (!rc)
        rc = ct_cache_get(cache, key, &record);
    const char *kind = json_string_value(json_object_get(json_object_get(record, "material"), "kind"));
    int imported = kind && strcmp(kind, "import_crosscoder") == 0;
    if (!rc && (!kind || (strcmp(kind, "train") != 0 && !imported)))
        rc = ct_error_set(CT_EINVAL, "entry %s is a '%s' artifact, not a trained crosscoder (kind 'train' "
                          "or 'import_crosscoder')", prefix, kind ? kind : "?");
    char *data = NULL;
    size_t len = 0;
    if (!rc)
        rc = ct_cache_read_all(cache, key, &data, &len);
    const void *model;
    const char *metrics;
    size_t mlen, xlen;
    ct_crosscoder *cc = NULL;
    if (!rc && imported) { /* an imported entry is the crosscoder image itself */
        model = data;
        mlen = len;
    } else if (!rc) {
        rc = ct_steps_train_parse(data, len, prefix, &model, &mlen, &metrics, &xlen);
    }
    if (!rc)
        rc = ct_cc_load(model, mlen, prefix, &cc);
    if (!rc)
        rc = ct_cc_export_safetensors(cc, st_path, json_path);
    if (!rc)
        printf("%s (%s)\n%s\n", st_path, json_string_value(json_object_get(record, "label")), json_path);
    ct_cc_free(cc);
    free(data);
    json_decref(record);
    return rc;
}

int ct_cmd_export_crosscoder(int argc, char **argv)
{
    ct_cli_common o;
    const char *prefix = NULL, *st_path = NULL, *json_arg = NULL;
    const ct_cli_opt opts[] = {{.name = "--out", .value = &st_path}, {.name = "--json", .value = &json_arg}, {0}};
    if (ct_cli_parse(argc, argv, &o, opts, &prefix, 1))
        return ct_cli_usage(usage_text);
    if (!prefix || !st_path) {
        ct_cli_common_free(&o);
        return ct_cli_usage(usage_text);
    }
    char *json_path = NULL;
    if (json_arg) {
        json_path = strdup(json_arg);
    } else {
        size_t n = strlen(st_path);
        const char *ext = ".safetensors";
        size_t e = strlen(ext);
        json_path = malloc(n + 8);
        if (json_path) {
            size_t base = n > e && strcmp(st_path + n - e, ext) == 0 ? n - e : n;
            memcpy(json_path, st_path, base);
            strcpy(json_path + base, ".json");
        }
    }
    ct_cache *cache = NULL;
    int status = 0;
    if (!json_path)
        status = (ct_error_set(CT_ENOMEM, "out of memory"), ct_cli_fail());
    else if (ct_cli_open_cache(&o, 1, &cache) || export_entry(cache, prefix, st_path, json_path))
        status = ct_cli_fail();
    if (cache)
        ct_cache_close(cache);
    free(json_path);
    ct_cli_common_free(&o);
    return status;
}

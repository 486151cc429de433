/* `crosstime import crosscoder FILE.safetensors`: a crosscoder exported by crosstime
 * (possibly trained elsewhere) enters the cache as an entry of kind import_crosscoder,
 * keyed by the file's content digest, and is kept by the named root "imports". Its
 * artifact is the crosscoder image (crosscoder/crosscoder.h, ct_cc_save), which
 * `export crosscoder` writes out again byte for byte. */
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/error.h"
#include "common/sha256.h"
#include "crosscoder/crosscoder.h"
#include "crosscoder/export.h"
#include "pipeline/key.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: crosstime import crosscoder FILE.safetensors [--cache DIR]\n"
    "  Checks the file (config in its metadata, tensor shapes) and stores it in the cache;\n"
    "  prints the entry's key.\n";

/* Adds `key` to the named root "imports" so gc keeps imported entries. */
static int keep(ct_cache *cache, const uint8_t key[CT_KEY_LEN])
{
    uint8_t (*keys)[CT_KEY_LEN] = NULL;
    size_t n = 0;
    int rc = ct_cache_root_get(cache, "imports", &keys, &n);
    if (rc && rc != CT_ENOTFOUND)
        return rc;
    for (size_t i = 0; i < n; i++)
        if (memcmp(keys[i], key, CT_KEY_LEN) == 0) {
            free(keys);
            return 0;
        }
    uint8_t (*more)[CT_KEY_LEN] = realloc(keys, (n + 1) * CT_KEY_LEN);
    if (!more) {
        free(keys);
        return ct_error_set(CT_ENOMEM, "out of memory");
    }
    memcpy(more[n], key, CT_KEY_LEN);
    rc = ct_cache_root_set(cache, "imports", (const uint8_t(*)[CT_KEY_LEN])more, n + 1);
    free(more);
    return rc;
}

static int import_file(ct_cache *cache, const char *path)
{
    uint8_t digest[CT_SHA256_LEN], key[CT_KEY_LEN];
    char hex[CT_SHA256_HEX_LEN + 1];
    ct_crosscoder *cc = NULL;
    void *image = NULL;
    size_t len = 0;
    int rc = ct_sha256_file(path, digest);
    if (!rc)
        rc = ct_cc_import_safetensors(path, &cc);
    if (!rc)
        rc = ct_cc_save(cc, &image, &len);
    json_t *material = NULL, *record = NULL;
    if (!rc) {
        ct_hex_encode(digest, sizeof digest, hex);
        json_t *inputs = json_pack("{s:s}", "safetensors", hex);
        ct_key_material("import_crosscoder", 1, NULL, inputs, &material);
        json_decref(inputs);
        rc = ct_key_of(material, key);
    }
    if (!rc) {
        char *copy = strdup(path), label[512];
        snprintf(label, sizeof label, "import/%s", copy ? basename(copy) : "crosscoder");
        free(copy);
        record = json_pack("{s:O, s:s, s:{s:s, s:i, s:i, s:i}}", "material", material, "label", label,
                           "summary", "type", cc->cfg.type == CT_CC_L1 ? "l1" : "batchtopk", "M", cc->cfg.M,
                           "d", cc->cfg.d, "H", cc->cfg.H);
        rc = ct_cache_put(cache, key, record, image, len);
    }
    if (!rc)
        rc = keep(cache, key);
    if (!rc) {
        ct_key_hex(key, hex);
        printf("%s\n", hex);
    }
    json_decref(record);
    json_decref(material);
    free(image);
    ct_cc_free(cc);
    return rc;
}

int ct_cmd_import_crosscoder(int argc, char **argv)
{
    ct_cli_common o;
    const char *path = NULL;
    if (ct_cli_parse(argc, argv, &o, NULL, &path, 1))
        return ct_cli_usage(usage_text);
    if (!path) {
        ct_cli_common_free(&o);
        return ct_cli_usage(usage_text);
    }
    ct_cache *cache = NULL;
    int status = 0;
    if (ct_cli_open_cache(&o, 0, &cache) || import_file(cache, path))
        status = ct_cli_fail();
    if (cache)
        ct_cache_close(cache);
    ct_cli_common_free(&o);
    return status;
}

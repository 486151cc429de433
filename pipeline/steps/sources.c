#include "pipeline/steps/sources.h"
#include "common/error.h"
#include "common/sha256.h"
#include "common/io.h"
#include "models/checkpoint/checkpoint.h"
#include "models/tokenizer/tokenizer.h"
#include "pipeline/steps/pretrain.h"
#include "pipeline/steps/shard.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int checkpoint_digest(void *source, uint8_t digest[CT_KEY_LEN])
{
    char hex[CT_SHA256_HEX_LEN + 1];
    int rc = ct_ckpt_digest_source(source, NULL, hex);
    return rc ? rc : ct_hex_decode(hex, digest, CT_KEY_LEN);
}

/* The stat identity of every regular file in `dir` (following the hub cache's
 * symlinks), in name order. */
static int dir_identity(const char *dir, char **out)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0)
        return ct_error_set(CT_EIO, "%s: cannot list the checkpoint directory", dir);
    size_t cap = 256, len = 0;
    char *text = malloc(cap);
    int rc = text ? 0 : ct_error_set(CT_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX], line[PATH_MAX + 160];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        if (!rc && names[i]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            ct_plan_stat_identity(path, &st, line, sizeof line);
            size_t l = strlen(line);
            if (len + l + 2 > cap) {
                while (len + l + 2 > cap)
                    cap *= 2;
                char *t = realloc(text, cap);
                if (!t)
                    rc = ct_error_set(CT_ENOMEM, "out of memory");
                else
                    text = t;
            }
            if (!rc) {
                memcpy(text + len, line, l);
                len += l;
                text[len++] = '\n';
            }
        }
        free(names[i]);
    }
    free(names);
    if (rc) {
        free(text);
        return rc;
    }
    text[len] = '\0';
    *out = text;
    return 0;
}

int ct_steps_source_checkpoint(ct_plan *plan, const char *source, const char **label)
{
    char lab[PATH_MAX + 16];
    size_t idx;
    if (strncmp(source, "pretrain:", 9) == 0) {
        snprintf(lab, sizeof lab, "pretrain/%s", source + 9);
        if (ct_plan_find(plan, lab, &idx) != 0)
            return ct_error_set(CT_EINVAL, "%s: no such pretrain save point in the plan (the recipe needs a "
                                "pretrain section with this step in save_steps, and a corpus)", source);
        *label = ct_plan_get(plan, idx)->label;
        return 0;
    }
    snprintf(lab, sizeof lab, "checkpoint:%s", source);
    if (ct_plan_find(plan, lab, &idx) == 0) {
        *label = ct_plan_get(plan, idx)->label;
        return 0;
    }
    char *dir = NULL, *identity = NULL;
    int rc = ct_ckpt_resolve(source, &dir);
    if (!rc)
        rc = dir_identity(dir, &identity);
    uint8_t digest[CT_KEY_LEN];
    if (!rc)
        rc = ct_plan_memo_digest(plan, identity, checkpoint_digest, (void *)source, digest);
    if (!rc)
        rc = ct_plan_source_digest(plan, lab, dir, digest);
    if (!rc && (rc = ct_plan_find(plan, lab, &idx)) == 0)
        *label = ct_plan_get(plan, idx)->label;
    free(dir);
    free(identity);
    return rc;
}

/* Materialised checkpoints live beside the cache's database, in checkpoints/<artifact
 * sha256>: on the same local filesystem, owned by the cache's user, and derived data
 * (deleting the folder only costs writing them again). */
static int materialise_root(ct_step_ctx *ctx, char *out, size_t n)
{
    snprintf(out, n, "%s/checkpoints", ct_step_cache_dir(ctx));
    if (mkdir(out, 0700) != 0 && errno != EEXIST)
        return ct_error_set(CT_EIO, "%s: cannot create the directory: %s", out, strerror(errno));
    return 0;
}

static void remove_tree(const char *dir)
{
    for (int i = 0; i < 3; i++) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/%s", dir, ct_steps_pretrain_hf_files[i]);
        unlink(path);
    }
    rmdir(dir);
}

int ct_steps_checkpoint_dir(ct_step_ctx *ctx, const char *name, size_t i, char **dir)
{
    *dir = NULL;
    const char *path = ct_step_input_path(ctx, name, i);
    if (path) {
        *dir = strdup(path);
        return *dir ? 0 : ct_error_set(CT_ENOMEM, "out of memory");
    }
    char *data = NULL, root[PATH_MAX], final[PATH_MAX + 80], tmp[PATH_MAX + 100], label[512];
    size_t len = 0;
    snprintf(label, sizeof label, "%s: input %s", ct_step_label(ctx), name);
    json_t *record;
    int rc = materialise_root(ctx, root, sizeof root);
    if (!rc)
        rc = ct_step_input_record(ctx, name, i, &record);
    /* the cache's digest of the artifact names the directory: no need to read the
     * artifact again when an earlier step put the checkpoint in place */
    const char *hex = rc ? NULL : json_string_value(json_object_get(json_object_get(record, "blob"), "sha256"));
    if (!rc && (!hex || strlen(hex) != CT_SHA256_HEX_LEN || strspn(hex, "0123456789abcdef") != CT_SHA256_HEX_LEN))
        rc = ct_error_set(CT_ECORRUPT, "%s: the record has no blob digest", label);
    if (!rc)
        snprintf(final, sizeof final, "%s/%s", root, hex);
    struct stat st;
    if (!rc && stat(final, &st) != 0) {
        const void *probe;
        size_t probe_len;
        if (!(rc = ct_steps_read_input(ctx, name, i, &data, &len)))
            rc = ct_steps_pretrain_find(data, len, label, "model.safetensors", &probe, &probe_len);
        snprintf(tmp, sizeof tmp, "%s/.%s-XXXXXX", root, hex);
        if (!rc && !mkdtemp(tmp))
            rc = ct_error_set(CT_EIO, "%s: cannot create a temporary directory: %s", tmp, strerror(errno));
        else if (!rc && ((rc = ct_steps_pretrain_write_hf(data, len, label, tmp)) != 0 || rename(tmp, final) != 0))
            remove_tree(tmp); /* an error, or another step put the same checkpoint in place first */
        if (!rc && stat(final, &st) != 0)
            rc = ct_error_set(CT_EIO, "%s: cannot move the checkpoint into place: %s", final, strerror(errno));
    }
    free(data);
    if (!rc && !(*dir = strdup(final)))
        rc = ct_error_set(CT_ENOMEM, "out of memory");
    return rc;
}

int ct_steps_tokenizer_path(ct_step_ctx *ctx, const char *name, size_t i, char **path)
{
    *path = NULL;
    const char *src = ct_step_input_path(ctx, name, i);
    if (src) {
        *path = strdup(src);
        return *path ? 0 : ct_error_set(CT_ENOMEM, "out of memory");
    }
    char *dir;
    int rc = ct_steps_checkpoint_dir(ctx, name, i, &dir);
    if (rc)
        return rc;
    size_t n = strlen(dir) + sizeof "/tokenizer.json";
    if ((*path = malloc(n)) != NULL)
        snprintf(*path, n, "%s/tokenizer.json", dir);
    free(dir);
    return *path ? 0 : ct_error_set(CT_ENOMEM, "out of memory");
}

int ct_steps_load_tokenizer(ct_step_ctx *ctx, const char *name, ct_tokenizer **tok)
{
    const char *path = ct_step_input_path(ctx, name, 0);
    if (path)
        return ct_tok_load(path, tok);
    char *json;
    size_t len;
    int rc = ct_steps_read_input(ctx, name, 0, &json, &len);
    if (!rc)
        rc = ct_tok_load_json(json, len, "tokenizer artifact", tok);
    free(json);
    return rc;
}

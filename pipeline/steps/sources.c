#include "pipeline/steps/sources.h"
#include "common/error.h"
#include "common/sha256.h"
#include "models/checkpoint/checkpoint.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
    snprintf(lab, sizeof lab, "checkpoint:%s", source);
    size_t idx;
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

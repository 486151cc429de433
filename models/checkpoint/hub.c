/* Source resolution: a local directory, or "hf:ORG/NAME[@REVISION]" inside the
 * Hugging Face hub cache layout
 *   <cache>/models--ORG--NAME/refs/<REVISION>   (text: commit hash)
 *   <cache>/models--ORG--NAME/snapshots/<commit>/<files>  (symlinks into ../../blobs/)
 * Nothing is downloaded: a missing revision is an error that prints the command. */
#include "models/checkpoint/ckpt_internal.h"
#include "common/error.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int is_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

static void cache_root(char *buf, size_t n)
{
    const char *v;
    if (((v = getenv("HF_HUB_CACHE")) && *v) || ((v = getenv("HUGGINGFACE_HUB_CACHE")) && *v))
        snprintf(buf, n, "%s", v); /* the second is huggingface_hub's older name */
    else if ((v = getenv("HF_HOME")) && *v)
        snprintf(buf, n, "%s/hub", v);
    else if ((v = getenv("XDG_CACHE_HOME")) && *v)
        snprintf(buf, n, "%s/huggingface/hub", v);
    else
        snprintf(buf, n, "%s/.cache/huggingface/hub", (v = getenv("HOME")) && *v ? v : ".");
}

typedef struct {
    char repo[256]; /* ORG/NAME */
    char rev[256];
} hub_ref;

/* With `report` 0 a malformed source only returns -1, leaving the thread's current
 * error message alone (for building hints inside other errors). */
static int parse_ref(const char *source, hub_ref *r, int report)
{
    const char *s = source + 3, *at = strchr(s, '@');
    size_t rl = at ? (size_t)(at - s) : strlen(s);
    if (rl == 0 || rl >= sizeof r->repo)
        return !report ? -1
                       : ct_error_set(CT_EINVAL, "%s: expected hf:ORG/NAME[@REVISION]", source);
    memcpy(r->repo, s, rl);
    r->repo[rl] = '\0';
    snprintf(r->rev, sizeof r->rev, "%s", at ? at + 1 : "main");
    int slashes = 0;
    for (const char *p = r->repo; *p; p++) {
        if (*p == '/')
            slashes++;
        else if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
            return !report
                       ? -1
                       : ct_error_set(CT_EINVAL, "%s: invalid character '%c' in repository name",
                                      source, *p);
    }
    if (slashes != 1 || r->repo[0] == '/' || r->repo[rl - 1] == '/' || strstr(r->repo, ".."))
        return !report ? -1 : ct_error_set(CT_EINVAL, "%s: repository must be ORG/NAME", source);
    if (!r->rev[0] || strstr(r->rev, "..") || r->rev[0] == '/')
        return !report ? -1 : ct_error_set(CT_EINVAL, "%s: invalid revision '%s'", source, r->rev);
    for (const char *p = r->rev; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._-/+", *p))
            return !report ? -1
                           : ct_error_set(CT_EINVAL, "%s: invalid character '%c' in revision",
                                          source, *p);
    return 0;
}

void ct_ckpt_hub_hint(const char *source, char *buf, size_t n)
{
    hub_ref r;
    if (n)
        buf[0] = '\0';
    if (strncmp(source, "hf:", 3) != 0 || parse_ref(source, &r, 0))
        return;
    snprintf(buf, n,
             "download it with: huggingface-cli download %s --revision %s --include \"*.json\" "
             "\"*.safetensors\"  (revisions without safetensors: --include \"*.json\" \"*.bin\")",
             r.repo, r.rev);
}

static int resolve_hub(const char *source, char **dir)
{
    hub_ref r;
    int rc = parse_ref(source, &r, 1);
    if (rc)
        return rc;
    char root[PATH_MAX], base[PATH_MAX], path[PATH_MAX], hint[1024], why[PATH_MAX + 64];
    cache_root(root, sizeof root);
    char flat[sizeof r.repo];
    snprintf(flat, sizeof flat, "%s", r.repo);
    char *slash = strchr(flat, '/');
    *slash = '\0';
    snprintf(base, sizeof base, "%s/models--%s--%s", root, flat, slash + 1);
    ct_ckpt_hub_hint(source, hint, sizeof hint);

    if (is_hex(r.rev, 40)) {
        snprintf(path, sizeof path, "%s/snapshots/%s", base, r.rev);
        if (is_dir(path))
            goto found;
    }
    snprintf(path, sizeof path, "%s/refs/%s", base, r.rev);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(why, sizeof why, "no %s", path);
        goto missing;
    }
    char commit[128] = {0};
    size_t got = fread(commit, 1, sizeof commit - 1, f);
    fclose(f);
    commit[got] = '\0';
    while (got && isspace((unsigned char)commit[got - 1]))
        commit[--got] = '\0';
    if (!is_hex(commit, got) || got < 7) {
        return ct_error_set(CT_ECORRUPT, "%s: %s does not hold a commit hash", source, path);
    }
    snprintf(path, sizeof path, "%s/snapshots/%s", base, commit);
    if (!is_dir(path)) {
        snprintf(why, sizeof why, "no snapshot directory %s", path);
        goto missing;
    }
found:
    if (!(*dir = strdup(path)))
        return ct_error_set(CT_ENOMEM, "out of memory");
    return 0;
missing:
    return ct_error_set(CT_ENOTFOUND,
                        "%s: revision '%s' of %s is not in the Hugging Face hub cache %s (%s); %s",
                        source, r.rev, r.repo, root, why, hint);
}

int ct_ckpt_resolve(const char *source, char **dir)
{
    *dir = NULL;
    if (!source || !*source)
        return ct_error_set(CT_EINVAL, "empty checkpoint source");
    if (strncmp(source, "hf:", 3) == 0)
        return resolve_hub(source, dir);
    if (!is_dir(source))
        return ct_error_set(CT_ENOTFOUND,
                            "%s: not a directory (expected a checkpoint directory "
                            "or hf:ORG/NAME@REVISION)",
                            source);
    if (!(*dir = strdup(source)))
        return ct_error_set(CT_ENOMEM, "out of memory");
    return 0;
}

#include "pipeline/recipe/load.h"

#include "common/error.h"
#include "common/io.h"
#include "pipeline/recipe/check.h"
#include "pipeline/recipe/embedded.h"
#include "pipeline/recipe/yaml.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_INCLUDE_DEPTH 16

typedef struct {
    ct_rarena *a;
    const ct_rsource *stack[MAX_INCLUDE_DEPTH + 1];
    int depth;
} loader;

static ct_rnode *merge(ct_rarena *a, ct_rnode *base, ct_rnode *over)
{
    if (base->kind != CT_RN_MAP || over->kind != CT_RN_MAP)
        return over;
    ct_rnode *r = ct_rnode_new(a, CT_RN_MAP, over->file, over->line, over->col);
    if (!r)
        return NULL;
    for (size_t i = 0; i < base->n; i++)
        if (ct_rnode_append(a, r, base->keys[i], base->items[i]))
            return NULL;
    for (size_t i = 0; i < over->n; i++) {
        long at = ct_rnode_find(r, over->keys[i]->text);
        ct_rnode *v = over->items[i];
        if (ct_rnode_is_null(v)) {
            if (at >= 0)
                ct_rnode_remove(r, (size_t)at);
        } else if (at >= 0) {
            ct_rnode *m = merge(a, r->items[at], v);
            if (!m)
                return NULL;
            r->items[at] = m;
            r->keys[at] = over->keys[i];
        } else if (ct_rnode_append(a, r, over->keys[i], v)) {
            return NULL;
        }
    }
    return r;
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static char *dir_of(ct_rarena *a, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return ct_rarena_strdup(a, "");
    return ct_rarena_strndup(a, path, slash == path ? 1 : (size_t)(slash - path));
}

static char *join_path(ct_rarena *a, const char *dir, const char *rel)
{
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = ct_rarena_alloc(a, n);
    if (p)
        snprintf(p, n, "%s%s%s", dir, *dir && dir[strlen(dir) - 1] != '/' ? "/" : "", rel);
    return p;
}

int ct_rsource_embedded(ct_rarena *a, const char *name, const char *text, ct_rsource *out)
{
    size_t n = strlen(name) + 12;
    char *display = ct_rarena_alloc(a, n);
    if (!display)
        return ct_error_set(CT_ENOMEM, "out of memory");
    snprintf(display, n, "<embedded>/%s", name);
    *out = (ct_rsource){display, display, dir_of(a, name), 1, text, strlen(text)};
    return out->dir ? 0 : ct_error_set(CT_ENOMEM, "out of memory");
}

int ct_rsource_file(ct_rarena *a, const char *path, ct_rsource *out)
{
    char *data = NULL;
    size_t len = 0;
    struct stat st;
    /* An empty file is an empty recipe (the decompressing reader refuses empty input). */
    int rc = stat(path, &st) == 0 && st.st_size == 0 ? 0 : ct_read_file(path, &data, &len);
    if (rc)
        return rc;
    char real[PATH_MAX];
    const char *ident = realpath(path, real) ? real : path;
    *out = (ct_rsource){ct_rarena_strdup(a, path), ct_rarena_strdup(a, ident), dir_of(a, path), 0,
                        ct_rarena_strndup(a, data ? data : "", len), len};
    free(data);
    if (!out->display || !out->ident || !out->dir || !out->text)
        return ct_error_set(CT_ENOMEM, "out of memory");
    return 0;
}

/* Relative to the including file first, then among the embedded recipes. */
static int resolve(loader *l, const ct_rsource *from, const ct_rnode *inc, ct_rsource *out)
{
    const char *name = inc->text;
    const ct_embedded_file *e = NULL;
    const char *tried = NULL;
    if (from->embedded) {
        char *p = join_path(l->a, from->dir, name);
        if (!p)
            return ct_error_set(CT_ENOMEM, "out of memory");
        e = name[0] != '/' ? ct_rembedded_find(p) : NULL;
        tried = ct_rarena_strdup(l->a, "among the embedded recipes");
    } else {
        char *p = name[0] == '/' ? ct_rarena_strdup(l->a, name) : join_path(l->a, from->dir, name);
        if (!p)
            return ct_error_set(CT_ENOMEM, "out of memory");
        if (is_file(p))
            return ct_rsource_file(l->a, p, out);
        size_t n = strlen(p) + 40;
        char *t = ct_rarena_alloc(l->a, n);
        if (t)
            snprintf(t, n, "%s and among the embedded recipes", p);
        tried = t;
    }
    if (!e && name[0] != '/')
        e = ct_rembedded_find(name);
    if (e)
        return ct_rsource_embedded(l->a, e->name, e->text, out);
    return ct_rerror_at(inc->file, inc->line, inc->col, NULL,
                        "include '%s': no such file (looked for %s)", name, tried ? tried : "it");
}

static int load(loader *l, const ct_rsource *src, ct_rnode **out);

static int include_one(loader *l, const ct_rsource *src, const ct_rnode *inc, ct_rnode **base)
{
    if (inc->kind != CT_RN_SCALAR || inc->stype != CT_RS_STRING || !*inc->text) {
        char got[128];
        ct_rnode_describe(inc, got, sizeof got);
        return ct_rerror_at(inc->file, inc->line, inc->col, "include",
                            "expected a file name or a list of file names, got %s", got);
    }
    ct_rsource *next = ct_rarena_alloc(l->a, sizeof *next);
    if (!next)
        return ct_error_set(CT_ENOMEM, "out of memory");
    int rc = resolve(l, src, inc, next);
    if (rc)
        return rc;
    for (int i = 0; i < l->depth; i++) {
        if (strcmp(l->stack[i]->ident, next->ident) != 0)
            continue;
        char chain[1024];
        size_t k = 0;
        for (int j = i; j < l->depth && k < sizeof chain; j++)
            k += (size_t)snprintf(chain + k, sizeof chain - k, "%s -> ", l->stack[j]->display);
        if (k < sizeof chain)
            snprintf(chain + k, sizeof chain - k, "%s", next->display);
        return ct_rerror_at(inc->file, inc->line, inc->col, NULL, "include cycle: %s", chain);
    }
    if (l->depth == MAX_INCLUDE_DEPTH)
        return ct_rerror_at(inc->file, inc->line, inc->col, NULL,
                            "includes nested more than %d deep", MAX_INCLUDE_DEPTH);
    ct_rnode *r;
    if ((rc = load(l, next, &r)))
        return rc;
    *base = *base ? merge(l->a, *base, r) : r;
    return *base ? 0 : ct_error_set(CT_ENOMEM, "out of memory");
}

static int load(loader *l, const ct_rsource *src, ct_rnode **out)
{
    ct_rnode *root;
    int rc = ct_ryaml_parse(l->a, src->display, src->text, src->len, 0, 0, &root);
    if (rc)
        return rc;
    if (!root && !(root = ct_rnode_new(l->a, CT_RN_MAP, src->display, 1, 1)))
        return ct_error_set(CT_ENOMEM, "out of memory");
    if (root->kind != CT_RN_MAP) {
        char got[128];
        ct_rnode_describe(root, got, sizeof got);
        return ct_rerror_at(root->file, root->line, root->col, NULL,
                            "expected a map of recipe fields, got %s", got);
    }
    long at = ct_rnode_find(root, "include");
    if (at < 0) {
        *out = root;
        return 0;
    }
    ct_rnode *inc = root->items[at];
    ct_rnode_remove(root, (size_t)at);
    l->stack[l->depth++] = src;
    ct_rnode *base = NULL;
    if (inc->kind == CT_RN_SEQ) {
        for (size_t i = 0; i < inc->n && !rc; i++)
            rc = include_one(l, src, inc->items[i], &base);
    } else if (!ct_rnode_is_null(inc)) {
        rc = include_one(l, src, inc, &base);
    }
    l->depth--;
    if (rc)
        return rc;
    *out = base ? merge(l->a, base, root) : root;
    return *out ? 0 : ct_error_set(CT_ENOMEM, "out of memory");
}

int ct_rload(ct_rarena *a, const ct_rsource *src, ct_rnode **out)
{
    loader l = {.a = a};
    return load(&l, src, out);
}

#include "pipeline/recipe/recipe.h"

#include "common/error.h"
#include "pipeline/recipe/check.h"
#include "pipeline/recipe/embedded.h"
#include "pipeline/recipe/load.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct ct_recipe {
    ct_rarena *a; /* owns the file names the locations point to */
    json_t *root;
    ct_rlocs locs;
    char *path;
    char *text;
};

void ct_recipe_free(ct_recipe *r)
{
    if (!r)
        return;
    json_decref(r->root);
    ct_rlocs_free(&r->locs);
    ct_rarena_free(r->a);
    free(r->path);
    free(r->text);
    free(r);
}

/* Takes ownership of `a`. */
static int finish(ct_rarena *a, const ct_rsource *src, const ct_recipe_options *opts, ct_recipe **out)
{
    *out = NULL;
    ct_recipe *r = calloc(1, sizeof *r);
    if (!r) {
        ct_rarena_free(a);
        return ct_error_set(CT_ENOMEM, "out of memory");
    }
    r->a = a;
    ct_rnode *root;
    int rc = ct_rload(a, src, &root);
    for (size_t i = 0; !rc && opts && i < opts->n_sets; i++)
        rc = ct_rset_apply(a, root, opts->sets[i], (int)i);
    if (!rc)
        rc = ct_rcheck_convert(a, root, &r->root, &r->locs);
    if (!rc) {
        ct_rlocs_sort(&r->locs);
        rc = ct_rcheck_cross(r->root, &r->locs);
    }
    if (!rc)
        rc = ct_rexpand_tasks(r->root, &r->locs);
    if (!rc) {
        r->path = strdup(src->display);
        r->text = strndup(src->text, src->len);
        if (!r->path || !r->text)
            rc = ct_error_set(CT_ENOMEM, "out of memory");
    }
    if (rc) {
        ct_recipe_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

int ct_recipe_load(const char *path_or_name, const ct_recipe_options *opts, ct_recipe **out)
{
    *out = NULL;
    if (!path_or_name || !*path_or_name)
        return ct_error_set(CT_EINVAL, "recipe: empty path");
    ct_rarena *a;
    int rc = ct_rarena_new(&a);
    if (rc)
        return rc;
    ct_rsource src;
    struct stat st;
    if (stat(path_or_name, &st) == 0 && S_ISREG(st.st_mode)) {
        rc = ct_rsource_file(a, path_or_name, &src);
    } else {
        const ct_embedded_file *e;
        rc = ct_rembedded_find_recipe(path_or_name, &e);
        if (rc == CT_ENOTFOUND) {
            char names[1024];
            ct_rembedded_list(names, sizeof names);
            rc = ct_error_set(CT_ENOTFOUND,
                              "%s: no such recipe file, and no embedded recipe of that name "
                              "(embedded: %s)", path_or_name, names);
        }
        if (!rc)
            rc = ct_rsource_embedded(a, e->name, e->text, &src);
    }
    if (rc) {
        ct_rarena_free(a);
        return rc;
    }
    return finish(a, &src, opts, out);
}

int ct_recipe_load_string(const char *name, const char *yaml, const ct_recipe_options *opts,
                          ct_recipe **out)
{
    *out = NULL;
    if (!name || !yaml)
        return ct_error_set(CT_EINVAL, "recipe: NULL name or text");
    ct_rarena *a;
    int rc = ct_rarena_new(&a);
    if (rc)
        return rc;
    char real[PATH_MAX];
    const char *slash = strrchr(name, '/');
    ct_rsource src = {
        ct_rarena_strdup(a, name),
        ct_rarena_strdup(a, realpath(name, real) ? real : name),
        slash ? ct_rarena_strndup(a, name, slash == name ? 1 : (size_t)(slash - name)) : ct_rarena_strdup(a, ""),
        0, yaml, strlen(yaml)};
    if (!src.display || !src.ident || !src.dir) {
        ct_rarena_free(a);
        return ct_error_set(CT_ENOMEM, "out of memory");
    }
    return finish(a, &src, opts, out);
}

json_t *ct_recipe_root(const ct_recipe *r) { return r->root; }

json_t *ct_recipe_get(const ct_recipe *r, const char *dotted_path)
{
    json_t *cur = r->root;
    const char *p = dotted_path;
    if (!p || !*p)
        return cur;
    while (cur && *p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (json_is_object(cur)) {
            char key[256];
            if (len >= sizeof key)
                return NULL;
            memcpy(key, p, len);
            key[len] = '\0';
            cur = json_object_get(cur, key);
        } else if (json_is_array(cur)) {
            size_t i = 0;
            if (len == 0 || len > 9)
                return NULL;
            for (size_t k = 0; k < len; k++) {
                if (!isdigit((unsigned char)p[k]))
                    return NULL;
                i = i * 10 + (size_t)(p[k] - '0');
            }
            cur = json_array_get(cur, i);
        } else {
            return NULL;
        }
        if (!dot)
            break;
        p = dot + 1;
        if (!*p)
            return NULL;
    }
    return cur;
}

const char *ct_recipe_name(const ct_recipe *r)
{
    return json_string_value(json_object_get(r->root, "name"));
}

const char *ct_recipe_path(const ct_recipe *r) { return r->path; }
const char *ct_recipe_text(const ct_recipe *r) { return r->text; }

int ct_recipe_location(const ct_recipe *r, const char *dotted_path, const char **file, int *line,
                       int *column)
{
    const ct_rloc *l = ct_rlocs_find(&r->locs, dotted_path ? dotted_path : "");
    if (!l)
        return ct_error_set(CT_ENOTFOUND, "%s: no value at '%s'", r->path, dotted_path ? dotted_path : "");
    *file = l->file;
    *line = l->line;
    *column = l->col;
    return 0;
}

int ct_recipe_resolve_path(const ct_recipe *r, const char *dotted_path, char **out)
{
    *out = NULL;
    const json_t *v = ct_recipe_get(r, dotted_path);
    const ct_rloc *l = ct_rlocs_find(&r->locs, dotted_path);
    if (!v || !l)
        return ct_error_set(CT_ENOTFOUND, "%s: no value at '%s'", r->path, dotted_path);
    if (!json_is_string(v))
        return ct_error_set(CT_EINVAL, "%s: %s: not a string", r->path, dotted_path);
    const char *s = json_string_value(v);
    int relative = s[0] && s[0] != '/' && strncmp(s, "hf:", 3) != 0 && strncmp(s, "pretrain:", 9) != 0;
    /* Values written in an embedded recipe are relative to the project root that holds
     * the shipped data/ ($CROSSTIME_HOME, else the source tree this binary was built
     * from); values written in a file on disk are relative to that file; values given
     * with --set are relative to the working directory. */
    if (relative && strncmp(l->file, "<embedded>", 10) == 0) {
        const char *home = getenv("CROSSTIME_HOME");
        if (!home || !*home)
            home = CT_PROJECT_ROOT;
        size_t n = strlen(home) + strlen(s) + 2;
        if ((*out = malloc(n)))
            snprintf(*out, n, "%s/%s", home, s);
        return *out ? 0 : ct_error_set(CT_ENOMEM, "out of memory");
    }
    const char *slash = strrchr(l->file, '/');
    int relative_to_file = relative && l->file[0] != '<' && slash;
    if (!relative_to_file) {
        *out = strdup(s);
    } else {
        size_t n = (size_t)(slash - l->file) + strlen(s) + 2;
        if ((*out = malloc(n)))
            snprintf(*out, n, "%.*s/%s", (int)(slash - l->file), l->file, s);
    }
    return *out ? 0 : ct_error_set(CT_ENOMEM, "out of memory");
}

/* Where task data is looked for at run time: explicit folders, $CROSSTIME_DATA, the
 * source tree's data/ (CT_DATA_DIR, baked in at build time), then the installed copy
 * (share/crosstime beside the executable's bin/, then the configured prefix). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "models/tasks/tasks_internal.h"

#ifndef CT_DATA_DIR
#define CT_DATA_DIR ""
#endif
#ifndef CT_DATA_INSTALL_DIR
#define CT_DATA_INSTALL_DIR ""
#endif

int ct_task_strv_push(ct_task_strv *s, const char *str)
{
    if (s->n + 1 >= s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        char **v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return ct_error_set(CT_ENOMEM, "out of memory");
        s->v = v;
        s->cap = cap;
    }
    if (!(s->v[s->n] = strdup(str)))
        return ct_error_set(CT_ENOMEM, "out of memory");
    s->v[++s->n] = NULL;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void ct_task_strv_sort_unique(ct_task_strv *s)
{
    if (s->n == 0)
        return;
    qsort(s->v, s->n, sizeof *s->v, cmp_str);
    size_t k = 1;
    for (size_t i = 1; i < s->n; i++) {
        if (strcmp(s->v[i], s->v[k - 1]) == 0)
            free(s->v[i]);
        else
            s->v[k++] = s->v[i];
    }
    s->n = k;
    s->v[k] = NULL;
}

int ct_task_strv_contains(const ct_task_strv *s, const char *str)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], str) == 0)
            return 1;
    return 0;
}

void ct_task_names_free(char **names)
{
    if (!names)
        return;
    for (char **p = names; *p; p++)
        free(*p);
    free(names);
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Adds root's task folder (root/tasks, or root itself when it has no tasks/). */
static int add_root(ct_task_strv *dirs, const char *root, size_t n)
{
    if (n == 0)
        return 0;
    char path[PATH_MAX], real[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%.*s/tasks", (int)n, root) >= sizeof path)
        return 0;
    if (!is_dir(path)) {
        snprintf(path, sizeof path, "%.*s", (int)n, root);
        if (!is_dir(path))
            return 0;
    }
    /* Canonical, so one folder reached two ways is searched once and files are named
     * by plain absolute paths. */
    if (!realpath(path, real))
        return 0;
    return ct_task_strv_contains(dirs, real) ? 0 : ct_task_strv_push(dirs, real);
}

static int add_list(ct_task_strv *dirs, const char *list)
{
    while (list && *list) {
        const char *colon = strchr(list, ':');
        size_t n = colon ? (size_t)(colon - list) : strlen(list);
        int rc = add_root(dirs, list, n);
        if (rc)
            return rc;
        list = colon ? colon + 1 : NULL;
    }
    return 0;
}

int ct_task_dirs(const char *data_path, char ***out, size_t *n)
{
    ct_task_strv dirs = {0};
    int rc = add_list(&dirs, data_path);
    if (!rc)
        rc = add_list(&dirs, getenv("CROSSTIME_DATA"));
    if (!rc)
        rc = add_root(&dirs, CT_DATA_DIR, strlen(CT_DATA_DIR));
    if (!rc) {
        /* A relocated install: <prefix>/bin/crosstime finds <prefix>/share/crosstime. */
        char exe[PATH_MAX];
        ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (k > 0) {
            exe[k] = '\0';
            char *slash = strrchr(exe, '/');
            if (slash) {
                *slash = '\0';
                char share[PATH_MAX];
                if ((size_t)snprintf(share, sizeof share, "%s/../share/crosstime", exe) < sizeof share)
                    rc = add_root(&dirs, share, strlen(share));
            }
        }
    }
    if (!rc)
        rc = add_root(&dirs, CT_DATA_INSTALL_DIR, strlen(CT_DATA_INSTALL_DIR));
    if (rc) {
        ct_task_names_free(dirs.v);
        return rc;
    }
    if (!dirs.v) {
        dirs.v = calloc(1, sizeof *dirs.v);
        if (!dirs.v)
            return ct_error_set(CT_ENOMEM, "out of memory");
    }
    *out = dirs.v;
    *n = dirs.n;
    return 0;
}

int ct_task_find_file(char *const *dirs, const char *rel, char **path)
{
    static const char *const ext[] = {"", ".gz", ".zst"};
    for (size_t d = 0; dirs[d]; d++) {
        for (size_t e = 0; e < sizeof ext / sizeof *ext; e++) {
            size_t n = strlen(dirs[d]) + 1 + strlen(rel) + strlen(ext[e]) + 1;
            char *p = malloc(n);
            if (!p)
                return ct_error_set(CT_ENOMEM, "out of memory");
            snprintf(p, n, "%s/%s%s", dirs[d], rel, ext[e]);
            struct stat st;
            if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
                *path = p;
                return 1;
            }
            free(p);
        }
    }
    return 0;
}

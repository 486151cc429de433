/* Which tasks exist: listing the search path, expanding a language set, and naming
 * the closest existing tasks when a name is unknown. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/error.h"
#include "models/tasks/tasks_internal.h"

/* The paper's CLAMS phenomena (METHOD.md §4: "CLAMS (English, French; 7 phenomena)"):
 * the seven agreement sets every CLAMS language has. The English-only NPI and
 * reflexive sets stay available by name. */
static const char *const clams_paper[] = {"long_vp_coord", "obj_rel_across_anim", "obj_rel_within_anim",
                                          "prep_anim",     "simple_agrmt",        "subj_rel",
                                          "vp_coord"};

static const char *const blimp_sva[] = {
    "blimp/distractor_agreement_relational_noun",
    "blimp/distractor_agreement_relative_clause",
    "blimp/irregular_plural_subject_verb_agreement_1",
    "blimp/regular_plural_subject_verb_agreement_1",
};

const char *const *ct_task_blimp_sva(size_t *n)
{
    if (n)
        *n = sizeof blimp_sva / sizeof *blimp_sva;
    return blimp_sva;
}

/* name without a known data suffix (".jsonl", ".jsonl.gz", ...), or NULL. */
static char *strip_suffix(const char *name, const char *ext)
{
    static const char *const comp[] = {"", ".gz", ".zst"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof comp / sizeof *comp; i++) {
        size_t e = strlen(ext) + strlen(comp[i]);
        if (n > e && strncmp(name + n - e, ext, strlen(ext)) == 0 &&
            strcmp(name + n - strlen(comp[i]), comp[i]) == 0 && name[0] != '.')
            return strndup(name, n - e);
    }
    return NULL;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Adds prefix + base name of each file in `dir` ending in ext (+ compression). */
static int list_files(const char *dir, const char *ext, const char *prefix, ct_task_strv *out)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        char *base = strip_suffix(e->d_name, ext);
        if (base && !strchr(base, '/')) {
            char name[1024];
            snprintf(name, sizeof name, "%s%s", prefix, base);
            rc = ct_task_strv_push(out, name);
        }
        free(base);
    }
    closedir(d);
    return rc;
}

/* Adds the MultiBLiMP language codes found in dir/multiblimp. */
static int list_multiblimp_langs(const char *dir, ct_task_strv *langs)
{
    char mb[4096];
    snprintf(mb, sizeof mb, "%s/multiblimp", dir);
    int rc = list_files(mb, ".tsv", "", langs);
    if (!rc)
        rc = list_files(mb, ".jsonl", "", langs);
    DIR *d = opendir(mb);
    if (!d)
        return rc;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char sub[4096 + 256];
        snprintf(sub, sizeof sub, "%s/%s", mb, e->d_name);
        char *const one[2] = {sub, NULL};
        char *path = NULL;
        if (is_dir(sub) && ct_task_find_file(one, "data.tsv", &path) > 0)
            rc = ct_task_strv_push(langs, e->d_name);
        free(path);
    }
    closedir(d);
    return rc;
}

/* The phenomenon labels of a MultiBLiMP language's file (sorted). */
static int multiblimp_phenomena(char *const *dirs, const char *lang, ct_task_strv *phen)
{
    char *path = NULL;
    int rc = ct_task_find_multiblimp(dirs, lang, &path);
    if (rc <= 0)
        return rc;
    char canonical[512];
    snprintf(canonical, sizeof canonical, "multiblimp/%s", lang);
    ct_task *t;
    rc = ct_task_load_path('m', canonical, path, NULL, &t);
    free(path);
    if (rc)
        return rc;
    for (size_t i = 0; !rc && i < t->n; i++) {
        const char *p = t->pairs[i].phenomenon;
        if (*p && !strchr(p, '/') && !strchr(p, ' ') && !ct_task_strv_contains(phen, p))
            rc = ct_task_strv_push(phen, p);
    }
    ct_task_free(t);
    ct_task_strv_sort_unique(phen);
    return rc;
}

/* 1 when every '/'-separated part of `name` is valid, i.e. ct_task_load accepts it. */
static int loadable(const char *name)
{
    for (;;) {
        size_t n = strcspn(name, "/");
        if (!ct_task_valid_component(name, n))
            return 0;
        if (!name[n])
            return 1;
        name += n + 1;
    }
}

static int list_dirs(char *const *dirs, ct_task_strv *out)
{
    int rc = 0;
    ct_task_strv mb = {0};
    for (size_t i = 0; !rc && dirs[i]; i++) {
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/blimp", dirs[i]);
        rc = list_files(sub, ".jsonl", "blimp/", out);
        snprintf(sub, sizeof sub, "%s/clams", dirs[i]);
        DIR *d = rc ? NULL : opendir(sub);
        struct dirent *e;
        while (d && !rc && (e = readdir(d))) {
            char lang[4096 + 256], prefix[512];
            snprintf(lang, sizeof lang, "%s/%s", sub, e->d_name);
            if (e->d_name[0] == '.' || !is_dir(lang))
                continue;
            snprintf(prefix, sizeof prefix, "clams/%s/", e->d_name);
            rc = list_files(lang, ".txt", prefix, out);
        }
        if (d)
            closedir(d);
        if (!rc)
            rc = list_multiblimp_langs(dirs[i], &mb);
    }
    ct_task_strv_sort_unique(&mb);
    for (size_t i = 0; !rc && i < mb.n; i++) {
        char name[1024];
        snprintf(name, sizeof name, "multiblimp/%s", mb.v[i]);
        rc = ct_task_strv_push(out, name);
        ct_task_strv phen = {0};
        /* A file that does not parse still lists under its language; loading it by
         * name reports what is wrong. */
        if (!rc && multiblimp_phenomena(dirs, mb.v[i], &phen) < 0)
            ct_error_clear();
        for (size_t k = 0; !rc && k < phen.n; k++) {
            snprintf(name, sizeof name, "multiblimp/%s/%s", mb.v[i], phen.v[k]);
            rc = ct_task_strv_push(out, name);
        }
        ct_task_names_free(phen.v);
    }
    ct_task_names_free(mb.v);
    /* Files whose names cannot form a task name are not tasks. */
    size_t k = 0;
    for (size_t i = 0; i < out->n; i++) {
        if (loadable(out->v[i]))
            out->v[k++] = out->v[i];
        else
            free(out->v[i]);
    }
    out->n = k;
    if (out->v)
        out->v[k] = NULL;
    ct_task_strv_sort_unique(out);
    return rc;
}

static int finish(ct_task_strv *s, int rc, char ***names, size_t *n)
{
    if (!rc && !s->v && !(s->v = calloc(1, sizeof *s->v)))
        rc = ct_error_set(CT_ENOMEM, "out of memory");
    if (rc) {
        ct_task_names_free(s->v);
        return rc;
    }
    *names = s->v;
    if (n)
        *n = s->n;
    return 0;
}

int ct_task_list(const char *data_path, char ***names, size_t *n)
{
    char **dirs;
    size_t nd;
    int rc = ct_task_dirs(data_path, &dirs, &nd);
    if (rc)
        return rc;
    ct_task_strv out = {0};
    rc = list_dirs(dirs, &out);
    ct_task_names_free(dirs);
    return finish(&out, rc, names, n);
}

int ct_tasks_for_languages(const char *const *langs, size_t n_langs, const char *data_path, char ***names,
                           size_t *n)
{
    char **dirs;
    size_t nd;
    int rc = ct_task_dirs(data_path, &dirs, &nd);
    if (rc)
        return rc;
    ct_task_strv out = {0};
    for (size_t l = 0; !rc && l < n_langs; l++) {
        if (!langs[l] || strchr(langs[l], '/') || langs[l][0] == '.' || !langs[l][0]) {
            rc = ct_error_set(CT_EINVAL, "language \"%s\" is not a language code",
                              langs[l] ? langs[l] : "(null)");
            break;
        }
        size_t before = out.n;
        const char *l2 = ct_task_lang_clams(langs[l]), *l3 = ct_task_lang_multiblimp(langs[l]);
        for (size_t p = 0; !rc && p < sizeof clams_paper / sizeof *clams_paper; p++) {
            char rel[512], name[512], *path = NULL;
            snprintf(rel, sizeof rel, "clams/%s/%s.txt", l2, clams_paper[p]);
            snprintf(name, sizeof name, "clams/%s/%s", l2, clams_paper[p]);
            rc = ct_task_find_file(dirs, rel, &path);
            free(path);
            if (rc > 0)
                rc = ct_task_strv_contains(&out, name) ? 0 : ct_task_strv_push(&out, name);
        }
        char *path = NULL;
        if (!rc && (rc = ct_task_find_multiblimp(dirs, l3, &path)) > 0) {
            ct_task_strv phen = {0};
            rc = multiblimp_phenomena(dirs, l3, &phen);
            char name[512];
            if (!rc && phen.n == 0) {
                snprintf(name, sizeof name, "multiblimp/%s", l3);
                rc = ct_task_strv_contains(&out, name) ? 0 : ct_task_strv_push(&out, name);
            }
            for (size_t k = 0; !rc && k < phen.n; k++) {
                snprintf(name, sizeof name, "multiblimp/%s/%s", l3, phen.v[k]);
                rc = ct_task_strv_contains(&out, name) ? 0 : ct_task_strv_push(&out, name);
            }
            ct_task_names_free(phen.v);
        }
        free(path);
        if (!rc && out.n == before) {
            ct_task_strv all = {0};
            rc = list_dirs(dirs, &all);
            ct_task_strv have = {0};
            for (size_t i = 0; !rc && i < all.n; i++) {
                char code[256];
                const char *s = all.v[i];
                if (strncmp(s, "clams/", 6) == 0)
                    snprintf(code, sizeof code, "%.*s", (int)strcspn(s + 6, "/"), s + 6);
                else if (strncmp(s, "multiblimp/", 11) == 0)
                    snprintf(code, sizeof code, "%.*s", (int)strcspn(s + 11, "/"), s + 11);
                else
                    continue;
                if (!ct_task_strv_contains(&have, code))
                    rc = ct_task_strv_push(&have, code);
            }
            ct_task_strv_sort_unique(&have);
            char list[2048] = "";
            for (size_t i = 0; i < have.n; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? " " : "", have.v[i]);
            if (!rc)
                rc =
                    ct_error_set(CT_ENOTFOUND,
                                 "no CLAMS or MultiBLiMP data for language \"%s\" (languages with data: %s); "
                                 "MultiBLiMP files of more languages go in <dir>/tasks/multiblimp/ with "
                                 "CROSSTIME_DATA=<dir>",
                                 langs[l], have.n ? list : "none");
            ct_task_names_free(all.v);
            ct_task_names_free(have.v);
        }
    }
    ct_task_names_free(dirs);
    return finish(&out, rc, names, n);
}

/* Edit distance, for suggesting names. */
static size_t distance(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    if (na > 255 || nb > 255)
        return (size_t)-1;
    size_t row[256];
    for (size_t j = 0; j <= nb; j++)
        row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            if (up + 1 < best)
                best = up + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

int ct_task_unknown(const char *name, char *const *dirs)
{
    ct_task_strv all = {0};
    int rc = list_dirs(dirs, &all);
    if (rc) {
        ct_task_names_free(all.v);
        return rc;
    }
    enum { K = 5 };
    size_t best[K], bd[K], nb = 0;
    for (size_t i = 0; i < all.n; i++) {
        size_t d = distance(name, all.v[i]);
        size_t pos = nb;
        while (pos > 0 && bd[pos - 1] > d)
            pos--;
        if (pos >= K)
            continue;
        for (size_t j = (nb < K ? nb : K - 1); j > pos; j--)
            best[j] = best[j - 1], bd[j] = bd[j - 1];
        best[pos] = i;
        bd[pos] = d;
        if (nb < K)
            nb++;
    }
    char list[2048] = "";
    for (size_t i = 0; i < nb; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", all.v[best[i]]);
    char where[2048] = "";
    for (size_t i = 0; dirs[i]; i++)
        snprintf(where + strlen(where), sizeof where - strlen(where), "%s%s", i ? ", " : "", dirs[i]);
    if (!dirs[0])
        rc = ct_error_set(CT_ENOTFOUND,
                          "unknown task \"%s\": no task data folder found (set CROSSTIME_DATA to a folder "
                          "holding tasks/blimp, tasks/clams, tasks/multiblimp)",
                          name);
    else
        rc = ct_error_set(
            CT_ENOTFOUND,
            "unknown task \"%s\"; closest: %s (names: blimp/<paradigm>, clams/<lang>/<phenomenon>, "
            "multiblimp/<lang>[/<phenomenon>]; %zu tasks in %s; `crosstime inspect task --list` "
            "lists them)",
            name, nb ? list : "none", all.n, where);
    ct_task_names_free(all.v);
    return rc;
}

void ct_task_language(const char *name, char *out, size_t n)
{
    const char *slash = strchr(name, '/');
    if (!slash || strncmp(name, "blimp/", 6) == 0) {
        snprintf(out, n, "en");
        return;
    }
    char code[16];
    size_t l = strcspn(slash + 1, "/");
    snprintf(code, sizeof code, "%.*s", (int)(l < sizeof code ? l : sizeof code - 1), slash + 1);
    snprintf(out, n, "%s", ct_task_lang_clams(code));
}

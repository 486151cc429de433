/* Task names → files → loaded tasks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/io.h"
#include "common/sha256.h"
#include "models/tasks/tasks_internal.h"

static const char *const langs[][2] = {
    {"en", "eng"}, {"fr", "fra"}, {"de", "deu"}, {"he", "heb"}, {"ru", "rus"}, {"es", "spa"},
    {"pt", "por"}, {"ar", "arb"}, {"hi", "hin"}, {"it", "ita"}, {"nl", "nld"}, {"bn", "ben"},
};

const char *ct_task_lang_clams(const char *code)
{
    for (size_t i = 0; i < sizeof langs / sizeof *langs; i++)
        if (strcmp(code, langs[i][1]) == 0)
            return langs[i][0];
    return code;
}

const char *ct_task_lang_multiblimp(const char *code)
{
    for (size_t i = 0; i < sizeof langs / sizeof *langs; i++)
        if (strcmp(code, langs[i][0]) == 0)
            return langs[i][1];
    return code;
}

int ct_task_find_multiblimp(char *const *dirs, const char *lang, char **path)
{
    /* Our own files are <lang>.tsv / <lang>.jsonl; the Hugging Face dataset's layout is
     * <lang>/data.tsv, so a downloaded copy can be dropped in as it is. */
    static const char *const forms[] = {"multiblimp/%s.tsv", "multiblimp/%s.jsonl", "multiblimp/%s/data.tsv"};
    for (size_t d = 0; dirs[d]; d++) {
        char *const one[2] = {dirs[d], NULL};
        for (size_t f = 0; f < sizeof forms / sizeof *forms; f++) {
            char rel[512];
            snprintf(rel, sizeof rel, forms[f], lang);
            int rc = ct_task_find_file(one, rel, path);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* A name component: no path syntax, so a name never escapes the data folders. */
int ct_task_valid_component(const char *s, size_t n)
{
    if (n == 0 || n > 200 || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-' || c == '.' || c == '#' || c == '+'))
            return 0;
    }
    return 1;
}

int ct_task_load_path(char kind, const char *canonical, const char *path, const char *phenomenon,
                      ct_task **out)
{
    char *data;
    size_t len;
    int rc = ct_read_file(path, &data, &len);
    if (rc)
        return rc;
    ct_task *t;
    if ((rc = ct_task_new(canonical, path, &t))) {
        free(data);
        return rc;
    }
    uint8_t d[CT_SHA256_LEN];
    ct_sha256_buf(data, len, d);
    ct_hex_encode(d, sizeof d, t->digest);
    if (kind == 'b')
        rc = ct_task_read_blimp(t, path, data, len);
    else if (kind == 'c')
        rc = ct_task_read_clams(t, path, data, len);
    else
        rc = ct_task_read_multiblimp(t, path, data, len);
    free(data);
    if (!rc && phenomenon) {
        size_t k = 0, labelled = 0;
        char have[512] = ""; /* the labels present, for the message */
        for (size_t i = 0; i < t->n; i++) {
            const char *ph = t->pairs[i].phenomenon;
            labelled += ph[0] != '\0';
            if (ph[0] && !strstr(have, ph) && strlen(have) + strlen(ph) + 2 < sizeof have)
                snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", have[0] ? " " : "", ph);
            if (strcmp(ph, phenomenon) == 0)
                t->pairs[k++] = t->pairs[i];
        }
        if (labelled == 0)
            rc =
                ct_error_set(CT_ENOTFOUND, "%s: the file labels no phenomena, so it has no \"%s\" (use %.*s)",
                             path, phenomenon, (int)(strrchr(canonical, '/') - canonical), canonical);
        else if (k == 0)
            rc = ct_error_set(CT_ENOTFOUND, "%s: no pairs of phenomenon \"%s\" (it has: %s)", path,
                              phenomenon, have);
        t->n = k;
    }
    if (!rc && t->n == 0)
        rc = ct_error_set(CT_EFORMAT, "%s: no pairs in the file", path);
    if (rc) {
        ct_task_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int ct_task_load(const char *name, ct_task **out)
{
    return ct_task_load_from(name, NULL, out);
}

int ct_task_load_from(const char *name, const char *data_path, ct_task **out)
{
    if (!name || !out)
        return ct_error_set(CT_EINVAL, "ct_task_load: NULL argument");
    /* Split into at most 3 components. */
    const char *c[4];
    size_t cn[4], k = 0;
    for (const char *p = name;; k++) {
        const char *slash = strchr(p, '/');
        if (k == 3)
            return ct_error_set(CT_EINVAL, "task \"%s\": too many '/'-separated parts", name);
        c[k] = p;
        cn[k] = slash ? (size_t)(slash - p) : strlen(p);
        if (!ct_task_valid_component(c[k], cn[k]))
            return ct_error_set(CT_EINVAL,
                                "task \"%s\": part %zu is empty or has characters other than "
                                "letters, digits and _-.#+",
                                name, k + 1);
        if (!slash) {
            k++;
            break;
        }
        p = slash + 1;
    }
    char kind = 0;
    if (cn[0] == 5 && memcmp(c[0], "blimp", 5) == 0 && k == 2)
        kind = 'b';
    else if (cn[0] == 5 && memcmp(c[0], "clams", 5) == 0 && k == 3)
        kind = 'c';
    else if (cn[0] == 10 && memcmp(c[0], "multiblimp", 10) == 0 && (k == 2 || k == 3))
        kind = 'm';
    char **dirs;
    size_t nd;
    int rc = ct_task_dirs(data_path, &dirs, &nd);
    if (rc)
        return rc;
    if (!kind) {
        rc = ct_task_unknown(name, dirs);
        ct_task_names_free(dirs);
        return rc;
    }
    char part1[256], part2[256], canonical[1024], rel[1024];
    snprintf(part1, sizeof part1, "%.*s", (int)cn[1], c[1]);
    snprintf(part2, sizeof part2, "%.*s", k == 3 ? (int)cn[2] : 0, k == 3 ? c[2] : "");
    char *path = NULL;
    if (kind == 'b') {
        snprintf(canonical, sizeof canonical, "blimp/%s", part1);
        snprintf(rel, sizeof rel, "blimp/%s.jsonl", part1);
        rc = ct_task_find_file(dirs, rel, &path);
    } else if (kind == 'c') {
        const char *lang = ct_task_lang_clams(part1);
        snprintf(canonical, sizeof canonical, "clams/%s/%s", lang, part2);
        snprintf(rel, sizeof rel, "clams/%s/%s.txt", lang, part2);
        rc = ct_task_find_file(dirs, rel, &path);
    } else {
        const char *lang = ct_task_lang_multiblimp(part1);
        snprintf(canonical, sizeof canonical, "multiblimp/%s%s%s", lang, k == 3 ? "/" : "", part2);
        rc = ct_task_find_multiblimp(dirs, lang, &path);
    }
    if (rc == 0)
        rc = ct_task_unknown(name, dirs);
    else if (rc > 0)
        rc = ct_task_load_path(kind, canonical, path, k == 3 && kind == 'm' ? part2 : NULL, out);
    free(path);
    ct_task_names_free(dirs);
    return rc;
}

/* BLiMP paradigm files: JSON lines with sentence_good/bad and, for the paradigms that
 * allow a one-prefix comparison, one_prefix_prefix / one_prefix_word_good / _bad. */
#include <jansson.h>
#include <string.h>

#include "common/error.h"
#include "models/tasks/tasks_internal.h"

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return 0;
    return 1;
}

/* The reference strips the fields (Python str.strip); BLiMP is ASCII. */
static const char *strip(const char *s, size_t *n)
{
    size_t len = strlen(s);
    while (len && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
        s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n' || s[len - 1] == '\r'))
        len--;
    *n = len;
    return s;
}

static int read_line(ct_task *t, const char *path, size_t lineno, const char *line, size_t len)
{
    json_error_t je;
    json_t *o = json_loadb(line, len, 0, &je);
    if (!o)
        return ct_error_set(CT_EFORMAT, "%s:%zu: not a JSON object (%s)", path, lineno, je.text);
    if (!json_is_object(o)) {
        json_decref(o);
        return ct_error_set(CT_EFORMAT, "%s:%zu: expected a JSON object", path, lineno);
    }
    int rc = 0;
    static const char *const keys[5] = {"sentence_good", "sentence_bad", "one_prefix_prefix",
                                        "one_prefix_word_good", "one_prefix_word_bad"};
    const char *v[5] = {0};
    int got[5];
    for (int k = 0; k < 5; k++) {
        got[k] = ct_task_json_string(o, keys[k], &v[k]);
        if (got[k] < 0)
            rc = ct_error_set(CT_EFORMAT, "%s:%zu: field \"%s\" is not a string", path, lineno, keys[k]);
        else if (k < 2 && got[k] == 0)
            rc = ct_error_set(CT_EFORMAT, "%s:%zu: missing string field \"%s\"", path, lineno, keys[k]);
        if (rc) {
            json_decref(o);
            return rc;
        }
    }
    ct_task_pair p = {.line = lineno, .drop = CT_TASK_KEEP};
    p.sentence_good = ct_task_strndup(t, v[0], strlen(v[0]));
    p.sentence_bad = ct_task_strndup(t, v[1], strlen(v[1]));
    p.phenomenon = ct_task_strndup(t, "", 0);
    if (!got[2] || !got[3] || !got[4]) {
        p.drop = CT_TASK_NO_ONE_PREFIX;
    } else {
        size_t np, ng, nb;
        const char *pre = strip(v[2], &np), *g = strip(v[3], &ng), *b = strip(v[4], &nb);
        if (ng == nb && memcmp(g, b, ng) == 0)
            p.drop = CT_TASK_IDENTICAL;
        else if (np == 0)
            p.drop = CT_TASK_EMPTY_PREFIX;
        else {
            p.prefix = ct_task_strndup(t, pre, np);
            p.good = ct_task_strndup(t, g, ng);
            p.bad = ct_task_strndup(t, b, nb);
            if (!p.prefix || !p.good || !p.bad)
                rc = ct_error_set(CT_ENOMEM, "%s: out of memory", path);
        }
    }
    if (!rc && (!p.sentence_good || !p.sentence_bad || !p.phenomenon))
        rc = ct_error_set(CT_ENOMEM, "%s: out of memory", path);
    json_decref(o);
    return rc ? rc : ct_task_push(t, &p);
}

int ct_task_read_blimp(ct_task *t, const char *path, const char *data, size_t len)
{
    size_t lineno = 0, pos = 0;
    while (pos < len) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (data + pos)) : len - pos;
        lineno++;
        if (!is_blank(data + pos, n)) {
            int rc = read_line(t, path, lineno, data + pos, n);
            if (rc)
                return rc;
        }
        pos += n + 1;
    }
    if (t->n == 0)
        return ct_error_set(CT_EFORMAT, "%s: no pairs in the file", path);
    return 0;
}

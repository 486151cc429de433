/* CLAMS evaluation files: `True|False<TAB>sentence`, each grammatical line followed by
 * its ungrammatical twin. */
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "models/tasks/tasks_internal.h"

/* CLAMS sentences are lower case; the reference capitalises them (Python's
 * str.capitalize) before tokenizing, and sentence-initial case changes the tokens.
 * Only the first letter is raised here: the en/fr/he/ru files are identical under both
 * readings, and German nouns keep their capitals instead of being lowered. Covers the
 * scripts CLAMS uses (Latin-1 letters, Cyrillic); others are left as they are. */
static void capitalize_first(unsigned char *s, size_t n)
{
    if (n >= 1 && s[0] >= 'a' && s[0] <= 'z') {
        s[0] -= 0x20;
    } else if (n >= 2 && s[0] == 0xC3 && s[1] >= 0xA0 && s[1] <= 0xBE && s[1] != 0xB7) {
        s[1] -= 0x20; /* U+00E0..U+00FE except U+00F7 */
    } else if (n >= 2 && s[0] == 0xD0 && s[1] >= 0xB0 && s[1] <= 0xBF) {
        s[1] -= 0x20; /* U+0430..U+043F -> U+0410.. */
    } else if (n >= 2 && s[0] == 0xD1 && s[1] >= 0x80 && s[1] <= 0x8F) {
        s[0] = 0xD0, s[1] += 0x20; /* U+0440..U+044F -> U+0420.. */
    } else if (n >= 2 && s[0] == 0xD1 && s[1] >= 0x90 && s[1] <= 0x9F) {
        s[0] = 0xD0, s[1] -= 0x10; /* U+0450..U+045F -> U+0400.. */
    }
}

static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t' || **s == '\r'))
        (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t' || (*s)[*n - 1] == '\r'))
        (*n)--;
}

static int add_pair(ct_task *t, const char *good, size_t ng, const char *bad, size_t nb, size_t line)
{
    char *g = malloc(ng + 1), *b = malloc(nb + 1);
    if (!g || !b) {
        free(g);
        free(b);
        return ct_error_set(CT_ENOMEM, "%s: out of memory", t->file);
    }
    memcpy(g, good, ng);
    memcpy(b, bad, nb);
    capitalize_first((unsigned char *)g, ng);
    capitalize_first((unsigned char *)b, nb);
    int rc = ct_task_add_sentences(t, g, ng, b, nb, NULL, NULL, line);
    free(g);
    free(b);
    return rc;
}

int ct_task_read_clams(ct_task *t, const char *path, const char *data, size_t len)
{
    size_t lineno = 0, pos = 0;
    const char *pending = NULL; /* the True sentence waiting for its twin */
    size_t pending_len = 0, pending_line = 0;
    while (pos < len) {
        const char *line = data + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + 1;
        lineno++;
        const char *s = line;
        size_t sn = n;
        trim(&s, &sn);
        if (sn == 0)
            continue;
        const char *tab = memchr(s, '\t', sn);
        size_t lab = tab ? (size_t)(tab - s) : sn;
        int is_true = lab == 4 && memcmp(s, "True", 4) == 0;
        int is_false = lab == 5 && memcmp(s, "False", 5) == 0;
        if (!tab || (!is_true && !is_false))
            return ct_error_set(CT_EFORMAT, "%s:%zu: expected \"True\" or \"False\", a tab and a sentence",
                                path, lineno);
        const char *sent = tab + 1;
        size_t slen = sn - lab - 1;
        trim(&sent, &slen);
        if (slen == 0)
            return ct_error_set(CT_EFORMAT, "%s:%zu: empty sentence", path, lineno);
        if (!ct_task_utf8_valid(sent, slen))
            return ct_error_set(CT_EFORMAT, "%s:%zu: invalid UTF-8 or a NUL byte", path, lineno);
        if (is_true) {
            if (pending)
                return ct_error_set(CT_EFORMAT,
                                    "%s:%zu: True without its False twin (line %zu is True again)", path,
                                    pending_line, lineno);
            pending = sent;
            pending_len = slen;
            pending_line = lineno;
        } else {
            if (!pending)
                return ct_error_set(CT_EFORMAT, "%s:%zu: False without a preceding True", path, lineno);
            int rc = add_pair(t, pending, pending_len, sent, slen, pending_line);
            if (rc)
                return rc;
            pending = NULL;
        }
    }
    if (pending)
        return ct_error_set(CT_EFORMAT,
                            "%s:%zu: True without its False twin (the file ends; odd number of lines)", path,
                            pending_line);
    if (t->n == 0)
        return ct_error_set(CT_EFORMAT, "%s: no pairs in the file", path);
    return 0;
}

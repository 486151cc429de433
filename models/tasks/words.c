/* Deriving a one-prefix pair (prefix, good word, bad word) from two whole sentences,
 * for CLAMS and MultiBLiMP, whose files give sentences rather than BLiMP's fields. */
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "models/tasks/tasks_internal.h"

typedef struct {
    const char *s;
    size_t n;
} span;

/* Length of the whitespace character at s (0 when none). The set is Python's
 * str.isspace, because the reference splits sentences with str.split(). */
static size_t space_len(const unsigned char *s, size_t left)
{
    unsigned c = s[0];
    if (c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F))
        return 1;
    if (left >= 2 && c == 0xC2 && (s[1] == 0x85 || s[1] == 0xA0))
        return 2;
    if (left >= 3 && c == 0xE1 && s[1] == 0x9A && s[2] == 0x80) /* U+1680 */
        return 3;
    if (left >= 3 && c == 0xE2 && s[1] == 0x80 &&
        (s[2] <= 0x8A || s[2] == 0xA8 || s[2] == 0xA9 || s[2] == 0xAF)) /* U+2000-200A, 2028/9, 202F */
        return 3;
    if (left >= 3 && c == 0xE2 && s[1] == 0x81 && s[2] == 0x9F) /* U+205F */
        return 3;
    if (left >= 3 && c == 0xE3 && s[1] == 0x80 && s[2] == 0x80) /* U+3000 */
        return 3;
    return 0;
}

/* Words of s[0..n); *words is malloc'd. */
static int split_words(const char *s, size_t n, span **words, size_t *nw)
{
    size_t cap = 16, k = 0;
    span *w = malloc(cap * sizeof *w);
    if (!w)
        return ct_error_set(CT_ENOMEM, "out of memory");
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t sp = space_len(p + i, n - i);
        if (sp) {
            i += sp;
            continue;
        }
        size_t start = i;
        while (i < n && !space_len(p + i, n - i))
            i++;
        if (k == cap) {
            span *v = realloc(w, (cap *= 2) * sizeof *w);
            if (!v) {
                free(w);
                return ct_error_set(CT_ENOMEM, "out of memory");
            }
            w = v;
        }
        w[k++] = (span){s + start, i - start};
    }
    *words = w;
    *nw = k;
    return 0;
}

static int span_eq(span a, span b)
{
    return a.n == b.n && memcmp(a.s, b.s, a.n) == 0;
}

/* Words joined by single spaces, as the reference's ' '.join(words) does. */
static size_t join_len(const span *w, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += w[i].n + (i > 0);
    return len;
}

static void join_into(char *dst, const span *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            *dst++ = ' ';
        memcpy(dst, w[i].s, w[i].n);
        dst += w[i].n;
    }
    *dst = '\0';
}

static int is_ascii_punct(unsigned char c)
{
    return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
           (c >= '{' && c <= '~');
}

/* Words taken from running text carry attached punctuation ("subsides." against
 * "subside."); a trailing mark both words share is no part of the agreeing word, so it
 * is cut before the answer tokens are chosen. CLAMS has no punctuation. */
static void strip_shared_punct(span *g, span *b)
{
    while (g->n > 1 && b->n > 1 && g->s[g->n - 1] == b->s[b->n - 1] &&
           is_ascii_punct((unsigned char)g->s[g->n - 1])) {
        g->n--;
        b->n--;
    }
}

int ct_task_add_sentences(ct_task *t, const char *good, size_t good_len, const char *bad, size_t bad_len,
                          const char *expect_prefix, const char *phenomenon, size_t line)
{
    ct_task_pair p = {.line = line, .drop = CT_TASK_KEEP};
    p.sentence_good = ct_task_strndup(t, good, good_len);
    p.sentence_bad = ct_task_strndup(t, bad, bad_len);
    p.phenomenon = ct_task_strndup(t, phenomenon ? phenomenon : "", phenomenon ? strlen(phenomenon) : 0);
    if (!p.sentence_good || !p.sentence_bad || !p.phenomenon)
        return ct_error_set(CT_ENOMEM, "%s: out of memory", t->file);

    span *wg = NULL, *wb = NULL, *we = NULL;
    size_t ng = 0, nb = 0, ne = 0;
    int rc = split_words(good, good_len, &wg, &ng);
    if (!rc)
        rc = split_words(bad, bad_len, &wb, &nb);
    if (rc)
        goto out;

    size_t diff = 0, at = 0;
    if (ng != nb) {
        p.drop = CT_TASK_NOT_ONE_WORD;
    } else {
        for (size_t i = 0; i < ng; i++)
            if (!span_eq(wg[i], wb[i]) && diff++ == 0)
                at = i;
        if (diff == 0)
            p.drop = CT_TASK_IDENTICAL;
        else if (diff > 1)
            p.drop = CT_TASK_NOT_ONE_WORD;
        else if (at == 0)
            p.drop = CT_TASK_EMPTY_PREFIX; /* nothing to predict from: no BOS is added */
    }
    if (p.drop == CT_TASK_KEEP && expect_prefix) {
        rc = split_words(expect_prefix, strlen(expect_prefix), &we, &ne);
        if (rc)
            goto out;
        int same = ne == at;
        for (size_t i = 0; same && i < ne; i++)
            same = span_eq(we[i], wg[i]);
        if (!same)
            p.drop = CT_TASK_PREFIX_MISMATCH;
    }
    if (p.drop == CT_TASK_KEEP) {
        size_t plen = join_len(wg, at);
        char *prefix = malloc(plen + 1);
        if (!prefix) {
            rc = ct_error_set(CT_ENOMEM, "%s: out of memory", t->file);
            goto out;
        }
        join_into(prefix, wg, at);
        span g = wg[at], b = wb[at];
        strip_shared_punct(&g, &b);
        p.prefix = ct_task_strndup(t, prefix, plen);
        p.good = ct_task_strndup(t, g.s, g.n);
        p.bad = ct_task_strndup(t, b.s, b.n);
        free(prefix);
        if (!p.prefix || !p.good || !p.bad) {
            rc = ct_error_set(CT_ENOMEM, "%s: out of memory", t->file);
            goto out;
        }
    }
    rc = ct_task_push(t, &p);
out:
    free(wg);
    free(wb);
    free(we);
    return rc;
}

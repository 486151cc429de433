/* A mixture of per-language document streams, drawn by smooth weighted round-robin.
 *
 * Weights are turned into integers (the largest becomes 2^32, none less than 1) so
 * that the schedule is exact integer arithmetic: the same on every machine and
 * compiler, where accumulating doubles could tie-break differently. Over any prefix of
 * n draws while all languages are active, language i has been drawn within one draw
 * per language of n * w_i / sum(w). */
#include "models/corpus/corpus_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

int ct_corpus_open_mix(const ct_corpus_lang_spec *langs, size_t n, ct_corpus_format fmt, const char *text_field,
                       ct_corpus **out)
{
    *out = NULL;
    if (n == 0 || n > CT_CORPUS_MAX_LANGS)
        return ct_error_set(CT_EINVAL, "corpus mixture: %zu languages (expected 1 to %d)", n, CT_CORPUS_MAX_LANGS);
    double wmax = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = langs[i].name;
        if (!name || !*name)
            return ct_error_set(CT_EINVAL, "corpus mixture: language %zu has no name", i);
        if (!(langs[i].weight > 0) || !isfinite(langs[i].weight))
            return ct_error_set(CT_EINVAL, "corpus mixture: language %s has weight %g (expected a number > 0)",
                                name, langs[i].weight);
        if (langs[i].n_files == 0)
            return ct_error_set(CT_EINVAL, "corpus mixture: language %s has no files", name);
        for (size_t k = 0; k < i; k++)
            if (strcmp(langs[k].name, name) == 0)
                return ct_error_set(CT_EINVAL, "corpus mixture: language %s is given twice", name);
        if (langs[i].weight > wmax)
            wmax = langs[i].weight;
    }
    ct_corpus *c = calloc(1, sizeof *c);
    if (!c || !(c->langs = calloc(n, sizeof *c->langs))) {
        free(c);
        return ct_error_set(CT_ENOMEM, "out of memory");
    }
    c->nlang = n;
    c->cur_lang = -1;
    c->fmt = fmt;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        ct_corpus_lang_state *l = &c->langs[i];
        double units = langs[i].weight / wmax * 4294967296.0; /* exact: a power of two */
        l->weight = units < 1 ? 1 : (int64_t)(units + 0.5);
        l->active = 1;
        if (!(l->name = strdup(langs[i].name)))
            rc = ct_error_set(CT_ENOMEM, "out of memory");
        else if ((rc = ct_corpus_open(langs[i].files, langs[i].n_files, fmt, text_field, &l->c)))
            rc = ct_error_wrap(rc, "corpus mixture: language %s", l->name);
    }
    if (rc) {
        ct_corpus_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* The language of the next draw, or -1 when none is left. */
static long draw(ct_corpus *c)
{
    long best = -1;
    int64_t total = 0;
    for (size_t i = 0; i < c->nlang; i++) {
        ct_corpus_lang_state *l = &c->langs[i];
        if (!l->active)
            continue;
        l->credit += l->weight;
        total += l->weight;
        if (best < 0 || l->credit > c->langs[best].credit)
            best = (long)i;
    }
    if (best >= 0)
        c->langs[best].credit -= total;
    return best;
}

/* Takes back the last draw (it found `drawn` exhausted), so that the others go on as
 * if that language had left before it. */
static void undraw(ct_corpus *c, long drawn)
{
    int64_t total = 0;
    for (size_t i = 0; i < c->nlang; i++) {
        ct_corpus_lang_state *l = &c->langs[i];
        if (l->active) {
            l->credit -= l->weight;
            total += l->weight;
        }
    }
    c->langs[drawn].credit += total;
}

int ct_corpus_mix_next(ct_corpus *c, const char **text, size_t *len)
{
    while (!c->done) {
        long l = draw(c);
        if (l < 0)
            break;
        int got = ct_corpus_next(c->langs[l].c, text, len);
        if (got > 0) {
            c->cur_lang = l;
            return 1;
        }
        if (got < 0) {
            c->cur_lang = l; /* ct_corpus_where names the failing language's file */
            c->done = 1;
            return got;
        }
        undraw(c, l);
        c->langs[l].active = 0;
    }
    c->done = 1;
    c->cur_lang = -1;
    return 0;
}

void ct_corpus_mix_free(ct_corpus *c)
{
    for (size_t i = 0; i < c->nlang; i++) {
        ct_corpus_close(c->langs[i].c);
        free(c->langs[i].name);
    }
    free(c->langs);
    c->langs = NULL;
    c->nlang = 0;
}

size_t ct_corpus_n_langs(const ct_corpus *c) { return c ? c->nlang : 0; }

const char *ct_corpus_lang_name(const ct_corpus *c, size_t i)
{
    return c && i < c->nlang ? c->langs[i].name : NULL;
}

int ct_corpus_lang(const ct_corpus *c) { return c && c->langs ? (int)c->cur_lang : -1; }

#include "models/tokenizer/tok_pretok.h"

#include <stdlib.h>
#include <string.h>

#include "models/tokenizer/tok_bytelevel.h"

const char tok_gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* Hugging Face's NormalizedString::split: the matches and the gaps between them cover
 * the piece; the behavior decides which ranges survive and how delimiters attach. */
static int split_ranges(const tok_spans *m, size_t n, int behavior, int invert, tok_spans *keep,
                        tok_pretok_scratch *sc)
{
    /* (start, end, is_match) covering [0, n), as Pattern::find_matches gives them. */
    tok_spans *cov = &sc->cover;
    cov->n = 0;
    size_t prev = 0;
    if (sc->flags_cap < 2 * m->n + 2) {
        int *f = realloc(sc->flags, (2 * m->n + 2) * sizeof *f);
        if (!f)
            return -1;
        sc->flags = f;
        sc->flags_cap = 2 * m->n + 2;
    }
    for (size_t k = 0; k < m->n; k++) {
        if (prev != m->v[k].start) {
            sc->flags[cov->n] = invert;
            if (tok_spans_push(cov, prev, m->v[k].start))
                return -1;
        }
        sc->flags[cov->n] = !invert;
        if (tok_spans_push(cov, m->v[k].start, m->v[k].end))
            return -1;
        prev = m->v[k].end;
    }
    if (prev != n) {
        sc->flags[cov->n] = invert;
        if (tok_spans_push(cov, prev, n))
            return -1;
    }
    keep->n = 0;
    int pm = 0;
    if (behavior == TOK_SPLIT_MERGED_WITH_NEXT) {
        /* Folded from the right: a match joins the range after it, unless that range
         * is itself a match. Built reversed, then turned around. */
        for (size_t k = cov->n; k-- > 0;) {
            int f = sc->flags[k];
            if (f && !pm && keep->n)
                keep->v[keep->n - 1].start = cov->v[k].start;
            else if (tok_spans_push(keep, cov->v[k].start, cov->v[k].end))
                return -1;
            pm = f;
        }
        for (size_t i = 0, j = keep->n ? keep->n - 1 : 0; i < j; i++, j--) {
            tok_span t = keep->v[i];
            keep->v[i] = keep->v[j];
            keep->v[j] = t;
        }
        return 0;
    }
    for (size_t k = 0; k < cov->n; k++) {
        int f = sc->flags[k];
        size_t a = cov->v[k].start, b = cov->v[k].end;
        switch (behavior) {
        case TOK_SPLIT_REMOVED:
            if (!f && tok_spans_push(keep, a, b))
                return -1;
            break;
        case TOK_SPLIT_ISOLATED:
            if (tok_spans_push(keep, a, b))
                return -1;
            break;
        case TOK_SPLIT_CONTIGUOUS:
            if (f == pm && keep->n)
                keep->v[keep->n - 1].end = b;
            else if (tok_spans_push(keep, a, b))
                return -1;
            break;
        case TOK_SPLIT_MERGED_WITH_PREVIOUS:
            if (f && !pm && keep->n)
                keep->v[keep->n - 1].end = b;
            else if (tok_spans_push(keep, a, b))
                return -1;
            break;
        }
        pm = f;
    }
    return 0;
}

static int run_step(const tok_pretok_step *st, const tok_buf *in, const tok_spans *inp,
                    tok_buf *out, tok_spans *outp, tok_pretok_scratch *sc)
{
    out->n = 0;
    outp->n = 0;
    if (tok_buf_reserve(out, 0))
        return -1;
    out->p[0] = 0;
    for (size_t k = 0; k < inp->n; k++) {
        const char *s = in->p + inp->v[k].start;
        size_t n = inp->v[k].end - inp->v[k].start;
        if (st->kind == TOK_PT_BYTELEVEL) {
            /* The piece, with the prefix space when asked for, split by the GPT-2 regex
             * into isolated pieces, each mapped to the byte alphabet. */
            const char *src = s;
            size_t sn = n;
            char *tmp = NULL;
            if (st->add_prefix_space && (n == 0 || s[0] != ' ')) {
                tmp = malloc(n + 2);
                if (!tmp)
                    return -1;
                tmp[0] = ' ';
                memcpy(tmp + 1, s, n);
                src = tmp;
                sn = n + 1;
            }
            sc->matches.n = 0;
            if (st->use_regex) {
                if (tok_regex_find_all(st->re, src, sn, &sc->matches) ||
                    split_ranges(&sc->matches, sn, TOK_SPLIT_ISOLATED, 0, &sc->keep, sc)) {
                    free(tmp);
                    return -1;
                }
            } else {
                sc->keep.n = 0;
                if (tok_spans_push(&sc->keep, 0, sn)) {
                    free(tmp);
                    return -1;
                }
            }
            for (size_t j = 0; j < sc->keep.n; j++) {
                size_t a = sc->keep.v[j].start, b = sc->keep.v[j].end;
                if (a == b)
                    continue;
                size_t at = out->n;
                if (tok_bytelevel_map(src + a, b - a, out) || tok_spans_push(outp, at, out->n)) {
                    free(tmp);
                    return -1;
                }
            }
            free(tmp);
        } else {
            sc->matches.n = 0;
            if (tok_regex_find_all(st->re, s, n, &sc->matches) ||
                split_ranges(&sc->matches, n, st->behavior, st->invert, &sc->keep, sc))
                return -1;
            for (size_t j = 0; j < sc->keep.n; j++) {
                size_t a = sc->keep.v[j].start, b = sc->keep.v[j].end;
                if (a == b)
                    continue;
                size_t at = out->n;
                if (tok_buf_put(out, s + a, b - a) || tok_spans_push(outp, at, out->n))
                    return -1;
            }
        }
    }
    return 0;
}

int tok_pretok_run(const tok_pretok *pt, const char *s, size_t n, tok_pretok_scratch *sc,
                   const tok_buf **buf, const tok_spans **pieces)
{
    int cur = 0;
    sc->buf[0].n = 0;
    sc->pieces[0].n = 0;
    if (tok_buf_put(&sc->buf[0], s, n))
        return -1;
    if (n && tok_spans_push(&sc->pieces[0], 0, n))
        return -1;
    for (size_t i = 0; i < pt->n; i++) {
        if (run_step(&pt->steps[i], &sc->buf[cur], &sc->pieces[cur], &sc->buf[!cur],
                     &sc->pieces[!cur], sc))
            return -1;
        cur = !cur;
    }
    *buf = &sc->buf[cur];
    *pieces = &sc->pieces[cur];
    return 0;
}

void tok_pretok_scratch_free(tok_pretok_scratch *sc)
{
    for (int i = 0; i < 2; i++) {
        free(sc->buf[i].p);
        free(sc->pieces[i].v);
    }
    free(sc->matches.v);
    free(sc->keep.v);
    free(sc->cover.v);
    free(sc->flags);
    memset(sc, 0, sizeof *sc);
}

void tok_pretok_free(tok_pretok *pt)
{
    for (size_t i = 0; i < pt->n; i++)
        tok_regex_free(pt->steps[i].re);
    free(pt->steps);
    pt->steps = NULL;
    pt->n = 0;
}

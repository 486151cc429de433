/* The answer-token rule of METHOD.md §4, applied to every pair of a task.
 *
 * Choices where the method text leaves room (the reference's Python is the tiebreak):
 * - Text encoded: prefix + " " + word, prefix and word stripped, no special tokens,
 *   as the reference's BLiMP loader does.
 * - "more than 2 tokens" and "different token counts" are about the answers, i.e. what
 *   follows the longest common token prefix, not the word encoded alone.
 * - The reference decodes the answers to strings and encodes them again before counting
 *   and before taking their ids. The ids here are the answer tokens themselves: they are
 *   what the model reads after the prompt, and the metric compares exactly those logits.
 *   The two agree unless a BPE split is not reproduced when a word's tail is encoded
 *   alone (a difference in which pairs are kept, never in how a kept one is scored).
 * - "A shared leading token is appended to the prefix": the longest common prefix
 *   already contains every shared leading token, so the first answer tokens differ.
 * - An empty prompt (the pair differs at the first token) is dropped: without a BOS
 *   there is no position to read the logits from.
 * - A cap on examples spreads the kept examples evenly over the file, so that generated
 *   files (CLAMS lists its templates in order) are sampled across all their templates. */
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "models/tasks/tasks_internal.h"

struct ct_task_examples {
    ct_task_example *ex;
    size_t n;
    int32_t *ids; /* all prompts, back to back */
    size_t pairs, kept;
    size_t dropped[CT_TASK_N_REASONS];
};

typedef struct {
    size_t pair;
    size_t off, n; /* prompt in the scratch id buffer */
    int32_t good, bad;
} kept_ex;

static int encode_pair(const ct_task *t, const ct_tokenizer *tok, const ct_task_pair *p, const char *word,
                       int32_t **ids, size_t *n)
{
    size_t pn = strlen(p->prefix), wn = strlen(word);
    char *text = malloc(pn + 1 + wn + 1);
    if (!text)
        return ct_error_set(CT_ENOMEM, "%s: out of memory", t->name);
    memcpy(text, p->prefix, pn);
    text[pn] = ' ';
    memcpy(text + pn + 1, word, wn + 1);
    int rc = ct_tok_encode(tok, text, pn + 1 + wn, ids, n);
    free(text);
    if (rc)
        return ct_error_wrap(rc, "%s:%zu (task %s)", t->file, p->line, t->name);
    return 0;
}

/* Applies the rule to one pair: CT_TASK_KEEP with the prompt length and ids, or why not. */
static ct_task_drop rule(const int32_t *g, size_t ng, const int32_t *b, size_t nb, size_t *lcp, int32_t *good,
                         int32_t *bad)
{
    size_t l = 0;
    while (l < ng && l < nb && g[l] == b[l])
        l++;
    size_t ag = ng - l, ab = nb - l;
    if (ag == 0 && ab == 0)
        return CT_TASK_IDENTICAL;
    if (ag != ab)
        return CT_TASK_DIFFERENT_TOKEN_COUNTS;
    if (ag > 2)
        return CT_TASK_TOO_MANY_TOKENS;
    if (l == 0)
        return CT_TASK_EMPTY_PREFIX;
    *lcp = l;
    *good = g[l];
    *bad = b[l];
    return CT_TASK_KEEP;
}

/* Which kept example the i-th of `take` is: all of them in order, or evenly spread. */
static size_t spread(size_t i, size_t take, size_t kept)
{
    return take == kept ? i : i * kept / take;
}

int ct_task_tokenize(const ct_task *t, const ct_tokenizer *tok, size_t max_examples, ct_task_examples **out)
{
    if (!t || !tok || !out)
        return ct_error_set(CT_EINVAL, "ct_task_tokenize: NULL argument");
    ct_task_examples *e = calloc(1, sizeof *e);
    kept_ex *kept = NULL;
    int32_t *scratch = NULL;
    size_t kcap = 0, scap = 0, sn = 0;
    int rc = e ? 0 : ct_error_set(CT_ENOMEM, "%s: out of memory", t->name);
    for (size_t i = 0; !rc && i < t->n; i++) {
        const ct_task_pair *p = &t->pairs[i];
        e->pairs++;
        if (p->drop != CT_TASK_KEEP) {
            e->dropped[p->drop]++;
            continue;
        }
        int32_t *g = NULL, *b = NULL;
        size_t ng = 0, nb = 0, l = 0;
        int32_t gid = 0, bid = 0;
        rc = encode_pair(t, tok, p, p->good, &g, &ng);
        if (!rc)
            rc = encode_pair(t, tok, p, p->bad, &b, &nb);
        ct_task_drop why = rc ? CT_TASK_KEEP : rule(g, ng, b, nb, &l, &gid, &bid);
        if (!rc && why != CT_TASK_KEEP) {
            e->dropped[why]++;
        } else if (!rc) {
            if (e->kept == kcap) {
                kcap = kcap ? kcap * 2 : 256;
                kept_ex *v = realloc(kept, kcap * sizeof *v);
                if (!v)
                    rc = ct_error_set(CT_ENOMEM, "%s: out of memory", t->name);
                else
                    kept = v;
            }
            if (!rc && sn + l > scap) {
                scap = (sn + l) * 2 + 1024;
                int32_t *v = realloc(scratch, scap * sizeof *v);
                if (!v)
                    rc = ct_error_set(CT_ENOMEM, "%s: out of memory", t->name);
                else
                    scratch = v;
            }
            if (!rc) {
                memcpy(scratch + sn, g, l * sizeof *g);
                kept[e->kept++] = (kept_ex){.pair = i, .off = sn, .n = l, .good = gid, .bad = bid};
                sn += l;
            }
        }
        free(g);
        free(b);
    }
    /* Select: all, or max_examples spread evenly over the kept ones. */
    size_t take = 0, total = 0;
    if (!rc)
        take = max_examples && max_examples < e->kept ? max_examples : e->kept;
    for (size_t i = 0; !rc && i < take; i++)
        total += kept[spread(i, take, e->kept)].n;
    if (!rc && take) {
        e->ex = malloc(take * sizeof *e->ex);
        e->ids = malloc(total * sizeof *e->ids);
        if (!e->ex || !e->ids)
            rc = ct_error_set(CT_ENOMEM, "%s: out of memory", t->name);
    }
    for (size_t i = 0, off = 0; !rc && i < take; i++) {
        const kept_ex *k = &kept[spread(i, take, e->kept)];
        memcpy(e->ids + off, scratch + k->off, k->n * sizeof *e->ids);
        e->ex[i] = (ct_task_example){
            .prefix = e->ids + off, .n_prefix = k->n, .good = k->good, .bad = k->bad, .pair = k->pair};
        off += k->n;
        e->n++;
    }
    free(kept);
    free(scratch);
    if (rc) {
        ct_task_examples_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

size_t ct_task_examples_size(const ct_task_examples *e)
{
    return e->n;
}

const ct_task_example *ct_task_examples_get(const ct_task_examples *e, size_t i)
{
    return i < e->n ? &e->ex[i] : NULL;
}

size_t ct_task_examples_pairs(const ct_task_examples *e)
{
    return e->pairs;
}

size_t ct_task_examples_kept(const ct_task_examples *e)
{
    return e->kept;
}

size_t ct_task_examples_dropped(const ct_task_examples *e, ct_task_drop why)
{
    return why > CT_TASK_KEEP && why < CT_TASK_N_REASONS ? e->dropped[why] : 0;
}

void ct_task_examples_free(ct_task_examples *e)
{
    if (!e)
        return;
    free(e->ex);
    free(e->ids);
    free(e);
}

ct_task_fit ct_task_example_fit(const ct_task_example *x, int vocab, int max_positions)
{
    if (max_positions > 0 && x->n_prefix > (size_t)max_positions)
        return CT_TASK_TOO_LONG;
    int bad = x->good < 0 || x->good >= vocab || x->bad < 0 || x->bad >= vocab;
    for (size_t t = 0; t < x->n_prefix && !bad; t++)
        bad = x->prefix[t] < 0 || x->prefix[t] >= vocab;
    return bad ? CT_TASK_OUT_OF_VOCAB : CT_TASK_FITS;
}

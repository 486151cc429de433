/* Byte-level BPE training, following Hugging Face's BpeTrainer step by step so that the
 * same word counts give the same merges:
 *
 * - pairs are counted over every adjacent position of every distinct word, times the
 *   word's count (so "aaa" counts (a, a) twice, as the library does);
 * - a max-heap holds (count, pair, words that contained the pair when the entry was
 *   made); an entry whose count is out of date is refreshed and put back instead of
 *   being used, which yields the pair with the highest current count, ties to the
 *   smallest (left id, right id);
 * - merging rewrites the listed words left to right and reports the pairs it removed
 *   and created; their counts change by the word's count, and every created pair gets a
 *   new heap entry listing the words where it appeared;
 * - when the merged string is already a token (two merges can spell the same string)
 *   its id is reused, and a pair merged twice keeps its last rank in the file, exactly
 *   as the library's saved model does.
 * The library visits hash maps in random order; here every order is fixed (words in
 * first-seen order, new pairs in order of first appearance), which only matters for
 * the library's own nondeterministic corner (two heap entries for one pair and count). */
#include "common/array.h"
#include "models/tokenizer/train.h"
#include "models/tokenizer/train_internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/progress.h"
#include "models/tokenizer/tok_bytelevel.h"
#include "models/tokenizer/tok_nfc.h"
#include "models/tokenizer/tok_pretok.h"
#include "models/tokenizer/tok_util.h"

#define NOMEM() ct_error_set(CT_ENOMEM, "BPE training: out of memory")

static const char *const neox_specials[] = {"<|endoftext|>", "<|padding|>"};

/* pair -> dense index, open addressing; keys are (left << 32 | right). */
typedef struct {
    uint64_t *key; /* UINT64_MAX: empty */
    uint32_t *idx;
    size_t cap, n;
} pairmap;

typedef struct {
    uint64_t count; /* as the library compares it: the signed count cast to unsigned */
    uint32_t a, b;
    size_t pos, npos; /* word indices in posbuf[pos .. pos + npos) */
} hentry;


/* ---- small containers ------------------------------------------------------------ */

static inline uint64_t pair_key(uint32_t a, uint32_t b) { return (uint64_t)a << 32 | b; }

static inline size_t pm_slot(uint64_t k, size_t cap)
{
    k ^= k >> 31;
    k *= 0x9E3779B97F4A7C15ULL;
    return (size_t)(k >> 17) & (cap - 1);
}

static int pm_grow(pairmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 1024;
    uint64_t *key = malloc(cap * sizeof *key);
    uint32_t *idx = malloc(cap * sizeof *idx);
    if (!key || !idx) {
        free(key);
        free(idx);
        return -1;
    }
    memset(key, 0xFF, cap * sizeof *key);
    for (size_t i = 0; i < m->cap; i++) {
        if (m->key[i] == UINT64_MAX)
            continue;
        size_t j = pm_slot(m->key[i], cap);
        while (key[j] != UINT64_MAX)
            j = (j + 1) & (cap - 1);
        key[j] = m->key[i];
        idx[j] = m->idx[i];
    }
    free(m->key);
    free(m->idx);
    m->key = key;
    m->idx = idx;
    m->cap = cap;
    return 0;
}

/* Index of pair k; a new pair gets index `next` and *isnew = 1. */
static int pm_get_or_add(pairmap *m, uint64_t k, uint32_t next, uint32_t *idx, int *isnew)
{
    if ((m->n + 1) * 2 > m->cap && pm_grow(m))
        return -1;
    size_t j = pm_slot(k, m->cap);
    while (m->key[j] != UINT64_MAX) {
        if (m->key[j] == k) {
            *idx = m->idx[j];
            *isnew = 0;
            return 0;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->key[j] = k;
    m->idx[j] = next;
    m->n++;
    *idx = next;
    *isnew = 1;
    return 0;
}

static void pm_free(pairmap *m)
{
    free(m->key);
    free(m->idx);
    memset(m, 0, sizeof *m);
}

/* Max-heap in the library's order: higher count first, then the smaller pair. */
static inline int h_above(const hentry *x, const hentry *y)
{
    if (x->count != y->count)
        return x->count > y->count;
    if (x->a != y->a)
        return x->a < y->a;
    return x->b < y->b;
}

typedef struct {
    hentry *v;
    size_t n, cap;
} heap;

static int h_push(heap *h, hentry e)
{
    if (ct_array_grow((void **)&h->v, &h->cap, h->n + 1, sizeof *h->v))
        return -1;
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!h_above(&e, &h->v[p]))
            break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = e;
    return 0;
}

static void h_sift_down(heap *h, size_t i)
{
    hentry e = h->v[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h_above(&h->v[c + 1], &h->v[c]))
            c++;
        if (!h_above(&h->v[c], &e))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    h->v[i] = e;
}

static void h_pop(heap *h)
{
    h->v[0] = h->v[--h->n];
    if (h->n)
        h_sift_down(h, 0);
}

/* ---- setup and counting ---------------------------------------------------------- */

static int vocab_add(ct_tok_trainer *t, const char *s, size_t n, int32_t *id)
{
    int32_t have;
    if (tok_strmap_get(&t->vmap, &t->varena, s, n, &have)) {
        *id = have;
        return 0;
    }
    if (t->vn >= INT32_MAX || ct_array_grow((void **)&t->voff, &t->vcap, t->vn + 1, sizeof *t->voff) ||
        tok_strmap_put(&t->vmap, &t->varena, s, n, (int32_t)t->vn) ||
        !tok_strmap_key_off(&t->vmap, &t->varena, s, n, &t->voff[t->vn]))
        return -1;
    *id = (int32_t)t->vn++;
    return 0;
}


int ct_tok_trainer_new(const ct_tok_train_opts *opts, ct_tok_trainer **out)
{
    *out = NULL;
    ct_tok_train_opts o = CT_TOK_TRAIN_OPTS_INIT;
    if (opts)
        o = *opts;
    const char *const *sp = o.special_tokens ? o.special_tokens : neox_specials;
    size_t nsp = o.special_tokens ? o.n_special : 2;
    for (size_t i = 0; i < nsp; i++)
        if (!sp[i] || !*sp[i])
            return ct_error_set(CT_EINVAL, "BPE training: special token #%zu is empty", i + 1);
    if (o.vocab_size < nsp + 256 || o.vocab_size > (size_t)INT32_MAX)
        return ct_error_set(CT_EINVAL,
                            "BPE training: vocab_size %zu must cover the %zu special tokens and 256 byte "
                            "symbols (at least %zu)",
                            o.vocab_size, nsp, nsp + 256);
    ct_tok_trainer *t = calloc(1, sizeof *t);
    if (!t)
        return NOMEM();
    t->o = o;
    t->o.special_tokens = NULL;
    t->specials = calloc(nsp ? nsp : 1, sizeof *t->specials);
    if (!t->specials) {
        free(t);
        return NOMEM();
    }
    for (size_t i = 0; i < nsp; i++) {
        int dup = 0; /* the library keeps the first of equal special tokens */
        for (size_t j = 0; j < t->nspec && !dup; j++)
            dup = !strcmp(t->specials[j], sp[i]);
        if (dup)
            continue;
        if (!(t->specials[t->nspec] = strdup(sp[i]))) {
            ct_tok_trainer_free(t);
            return NOMEM();
        }
        t->nspec++;
    }
    char err[256];
    tok_pretok_step st = {.kind = TOK_PT_BYTELEVEL, .add_prefix_space = 0, .use_regex = 1};
    if (tok_regex_compile(tok_gpt2_pattern, strlen(tok_gpt2_pattern), 0, &st.re, err, sizeof err)) {
        ct_tok_trainer_free(t);
        return ct_error_set(CT_EINVAL, "BPE training: ByteLevel regex: %s", err);
    }
    t->pt.steps = malloc(sizeof *t->pt.steps);
    if (!t->pt.steps) {
        tok_regex_free(st.re);
        ct_tok_trainer_free(t);
        return NOMEM();
    }
    t->pt.steps[0] = st;
    t->pt.n = 1;
    *out = t;
    return 0;
}

static int count_piece(ct_tok_trainer *t, const char *s, size_t n)
{
    int32_t w;
    if (tok_strmap_get(&t->wmap, &t->warena, s, n, &w)) {
        t->wcnt[w]++;
        return 0;
    }
    if (t->wn >= INT32_MAX)
        return ct_error_set(CT_EINVAL, "BPE training: more than 2^31 distinct pieces");
    size_t cap = t->wcap;
    if (ct_array_grow((void **)&t->wcnt, &cap, t->wn + 1, sizeof *t->wcnt))
        return NOMEM();
    cap = t->wcap;
    if (ct_array_grow((void **)&t->woff, &cap, t->wn + 1, sizeof *t->woff))
        return NOMEM();
    cap = t->wcap;
    if (ct_array_grow((void **)&t->wlen, &cap, t->wn + 1, sizeof *t->wlen))
        return NOMEM();
    t->wcap = cap;
    if (tok_strmap_put(&t->wmap, &t->warena, s, n, (int32_t)t->wn) ||
        !tok_strmap_key_off(&t->wmap, &t->warena, s, n, &t->woff[t->wn]))
        return ct_error_set(CT_ENOMEM, "BPE training: out of memory (or over 4 GiB of distinct pieces)");
    t->wlen[t->wn] = (uint32_t)n;
    t->wcnt[t->wn++] = 1;
    return 0;
}

int ct_tok_trainer_feed(ct_tok_trainer *t, const char *text, size_t len)
{
    if (t->trained)
        return ct_error_set(CT_EINVAL, "BPE training: feed after train");
    size_t bad;
    if (!tok_utf8_valid(text, len, &bad))
        return ct_error_set(CT_EINVAL, "BPE training: invalid UTF-8 at byte %zu of the document", bad);
    const char *s = text;
    size_t n = len;
    if (t->o.nfc) {
        t->nbuf.n = 0;
        if (tok_nfc(text, len, &t->nbuf))
            return NOMEM();
        s = t->nbuf.p;
        n = t->nbuf.n;
    }
    const tok_buf *buf;
    const tok_spans *pieces;
    if (tok_pretok_run(&t->pt, s, n, &t->sc, &buf, &pieces))
        return ct_error_set(CT_EINVAL, "BPE training: pre-tokenizer failed (out of memory or regex limit)");
    for (size_t i = 0; i < pieces->n; i++) {
        int rc = count_piece(t, buf->p + pieces->v[i].start, pieces->v[i].end - pieces->v[i].start);
        if (rc)
            return rc;
    }
    t->pieces += pieces->n;
    return 0;
}

/* ---- training -------------------------------------------------------------------- */

typedef struct {
    uint32_t pair; /* dense pair index */
    int32_t delta;
    uint32_t word;
} change;

typedef struct {
    pairmap pm;
    uint32_t *pa, *pb; /* pair index -> left, right */
    int64_t *pcount;
    size_t np, pcap;
    uint32_t *posbuf;
    size_t nposbuf, posbufcap;
    heap h;
    change *ch;
    size_t nch, chcap;
    uint64_t *upd; /* (pair index << 32 | word) of created pairs */
    size_t nupd, updcap;
    uint32_t *sym;     /* every word's symbols, back to back */
    size_t *symoff;    /* word -> first symbol */
    uint32_t *symlen;  /* word -> current symbol count */
    uint32_t (*rawm)[2]; /* merges as made, duplicates included */
    size_t nrawm, rawmcap;
} work;

static void work_free(work *w)
{
    pm_free(&w->pm);
    free(w->pa);
    free(w->pb);
    free(w->pcount);
    free(w->posbuf);
    free(w->h.v);
    free(w->ch);
    free(w->upd);
    free(w->sym);
    free(w->symoff);
    free(w->symlen);
    free(w->rawm);
}

static int pair_index(work *w, uint32_t a, uint32_t b, uint32_t *idx)
{
    int isnew;
    if (w->np >= UINT32_MAX || pm_get_or_add(&w->pm, pair_key(a, b), (uint32_t)w->np, idx, &isnew))
        return -1;
    if (isnew) {
        size_t cap = w->pcap;
        if (ct_array_grow((void **)&w->pa, &cap, w->np + 1, sizeof *w->pa))
            return -1;
        cap = w->pcap;
        if (ct_array_grow((void **)&w->pb, &cap, w->np + 1, sizeof *w->pb))
            return -1;
        cap = w->pcap;
        if (ct_array_grow((void **)&w->pcount, &cap, w->np + 1, sizeof *w->pcount))
            return -1;
        w->pcap = cap;
        w->pa[w->np] = a;
        w->pb[w->np] = b;
        w->pcount[w->np] = 0;
        w->np++;
    }
    return 0;
}

static int add_change(work *w, uint32_t a, uint32_t b, int32_t delta, uint32_t word)
{
    uint32_t k;
    if (pair_index(w, a, b, &k) || ct_array_grow((void **)&w->ch, &w->chcap, w->nch + 1, sizeof *w->ch))
        return -1;
    w->ch[w->nch++] = (change){k, delta, word};
    return 0;
}

/* The library's Word::merge: every non-overlapping (a, b) from the left becomes r. */
static int merge_word(work *w, uint32_t word, uint32_t a, uint32_t b, uint32_t r)
{
    uint32_t *s = w->sym + w->symoff[word];
    size_t n = w->symlen[word];
    for (size_t i = 0; i < n; i++) {
        if (s[i] != a || i + 1 >= n || s[i + 1] != b)
            continue;
        if (i > 0 && (add_change(w, s[i - 1], a, -1, word) || add_change(w, s[i - 1], r, 1, word)))
            return -1;
        s[i] = r;
        memmove(s + i + 1, s + i + 2, (n - i - 2) * sizeof *s);
        n--;
        if (i + 1 < n && (add_change(w, b, s[i + 1], -1, word) || add_change(w, r, s[i + 1], 1, word)))
            return -1;
    }
    w->symlen[word] = (uint32_t)n;
    return 0;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

/* Heap entries for the pairs listed in w->upd (sorted, deduplicated here). */
static int push_updates(work *w)
{
    if (w->nupd > 1)
        qsort(w->upd, w->nupd, sizeof *w->upd, cmp_u64);
    for (size_t i = 0; i < w->nupd;) {
        uint32_t k = (uint32_t)(w->upd[i] >> 32);
        size_t j = i;
        size_t start = w->nposbuf;
        for (; j < w->nupd && (uint32_t)(w->upd[j] >> 32) == k; j++) {
            if (j > i && w->upd[j] == w->upd[j - 1])
                continue;
            if (w->pcount[k] > 0) {
                if (ct_array_grow((void **)&w->posbuf, &w->posbufcap, w->nposbuf + 1, sizeof *w->posbuf))
                    return -1;
                w->posbuf[w->nposbuf++] = (uint32_t)w->upd[j];
            }
        }
        if (w->pcount[k] > 0 &&
            h_push(&w->h, (hentry){(uint64_t)w->pcount[k], w->pa[k], w->pb[k], start, w->nposbuf - start}))
            return -1;
        i = j;
    }
    w->nupd = 0;
    return 0;
}

static int setup_words(ct_tok_trainer *t, work *w, const int32_t *cp_id)
{
    size_t total = 0;
    for (size_t i = 0; i < t->wn; i++)
        total += t->wlen[i]; /* bytes >= characters */
    w->sym = malloc((total ? total : 1) * sizeof *w->sym);
    w->symoff = malloc((t->wn ? t->wn : 1) * sizeof *w->symoff);
    w->symlen = malloc((t->wn ? t->wn : 1) * sizeof *w->symlen);
    if (!w->sym || !w->symoff || !w->symlen)
        return -1;
    size_t at = 0;
    for (size_t i = 0; i < t->wn; i++) {
        const char *s = tok_arena_str(&t->warena, t->woff[i]);
        size_t n = t->wlen[i], k = 0;
        w->symoff[i] = at;
        while (k < n) {
            int l;
            uint32_t c = tok_utf8_decode(s + k, &l);
            /* The pre-tokenizer's output is in the byte alphabet (< U+0144). */
            w->sym[at++] = (uint32_t)cp_id[c < 324 ? c : 0];
            k += (size_t)(l > 0 ? l : 1);
        }
        w->symlen[i] = (uint32_t)(at - w->symoff[i]);
    }
    return 0;
}

/* Pair counts over all words and one heap entry per pair (CSR lists of words). */
static int count_pairs(ct_tok_trainer *t, work *w)
{
    uint32_t *npos = NULL, *last = NULL;
    size_t cap = 0, cap2 = 0;
    int rc = -1;
    for (uint32_t i = 0; i < t->wn; i++) {
        const uint32_t *s = w->sym + w->symoff[i];
        for (size_t j = 0; j + 1 < w->symlen[i]; j++) {
            uint32_t k;
            if (pair_index(w, s[j], s[j + 1], &k))
                goto out;
            if (k >= cap) {
                size_t old = cap;
                cap2 = cap;
                if (ct_array_grow((void **)&npos, &cap, (size_t)k + 1, sizeof *npos) ||
                    ct_array_grow((void **)&last, &cap2, (size_t)k + 1, sizeof *last))
                    goto out;
                memset(npos + old, 0, (cap - old) * sizeof *npos);
                memset(last + old, 0xFF, (cap - old) * sizeof *last);
            }
            w->pcount[k] += (int64_t)t->wcnt[i];
            if (last[k] != i) {
                last[k] = i;
                npos[k]++;
            }
        }
    }
    size_t total = 0;
    for (size_t k = 0; k < w->np; k++)
        total += npos[k];
    if (ct_array_grow((void **)&w->posbuf, &w->posbufcap, total + 1, sizeof *w->posbuf))
        goto out;
    /* npos[k] becomes the fill cursor of pair k's list */
    size_t *start = malloc((w->np + 1) * sizeof *start);
    if (!start)
        goto out;
    size_t acc = 0;
    for (size_t k = 0; k < w->np; k++) {
        start[k] = acc;
        acc += npos[k];
        npos[k] = 0;
        last[k] = UINT32_MAX;
    }
    for (uint32_t i = 0; i < t->wn; i++) {
        const uint32_t *s = w->sym + w->symoff[i];
        for (size_t j = 0; j + 1 < w->symlen[i]; j++) {
            uint32_t k;
            if (pair_index(w, s[j], s[j + 1], &k)) {
                free(start);
                goto out;
            }
            if (last[k] != i) {
                last[k] = i;
                w->posbuf[start[k] + npos[k]++] = i;
            }
        }
    }
    w->nposbuf = total;
    rc = 0;
    for (size_t k = 0; k < w->np && !rc; k++)
        if (w->pcount[k] > 0)
            rc = h_push(&w->h, (hentry){(uint64_t)w->pcount[k], w->pa[k], w->pb[k], start[k], npos[k]});
    free(start);
out:
    free(npos);
    free(last);
    return rc;
}

/* The library keeps a pair merged twice at its last rank. */
static int finish_merges(ct_tok_trainer *t, work *w)
{
    t->merges = malloc((w->nrawm ? w->nrawm : 1) * sizeof *t->merges);
    if (!t->merges)
        return -1;
    pairmap last = {0};
    uint32_t *rank = NULL;
    size_t rcap = 0;
    for (size_t i = 0; i < w->nrawm; i++) {
        uint32_t k;
        int isnew;
        if (pm_get_or_add(&last, pair_key(w->rawm[i][0], w->rawm[i][1]), (uint32_t)i, &k, &isnew) ||
            ct_array_grow((void **)&rank, &rcap, i + 1, sizeof *rank)) {
            pm_free(&last);
            free(rank);
            return -1;
        }
        rank[k] = (uint32_t)i; /* k is the first rank; remember the latest */
    }
    for (size_t i = 0; i < w->nrawm; i++) {
        uint32_t k;
        int isnew;
        if (pm_get_or_add(&last, pair_key(w->rawm[i][0], w->rawm[i][1]), 0, &k, &isnew)) {
            pm_free(&last);
            free(rank);
            return -1;
        }
        if (rank[k] == i) {
            t->merges[t->nmerges][0] = w->rawm[i][0];
            t->merges[t->nmerges][1] = w->rawm[i][1];
            t->nmerges++;
        }
    }
    pm_free(&last);
    free(rank);
    return 0;
}

int ct_tok_trainer_train(ct_tok_trainer *t)
{
    if (t->trained)
        return ct_error_set(CT_EINVAL, "BPE training: already trained");
    t->trained = 1;
    int32_t id;
    for (size_t i = 0; i < t->nspec; i++)
        if (vocab_add(t, t->specials[i], strlen(t->specials[i]), &id))
            return NOMEM();
    /* The byte alphabet in code point order; cp_id maps a symbol's code point to its id. */
    int32_t cp_id[324];
    memset(cp_id, 0, sizeof cp_id);
    uint32_t cps[256];
    tok_buf one = {0};
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        one.n = 0;
        if (tok_bytelevel_map(&c, 1, &one)) {
            free(one.p);
            return NOMEM();
        }
        int l;
        cps[b] = tok_utf8_decode(one.p, &l);
    }
    for (uint32_t c = 0; c < 324; c++) {
        for (int b = 0; b < 256; b++) {
            if (cps[b] != c)
                continue;
            char u[4];
            int l = tok_utf8_encode(c, u);
            if (vocab_add(t, u, (size_t)l, &id)) {
                free(one.p);
                return NOMEM();
            }
            cp_id[c] = id;
        }
    }
    free(one.p);

    work w = {0};
    ct_progress *pg = NULL;
    tok_buf nt = {0};
    int rc = 0;
    if (setup_words(t, &w, cp_id) || count_pairs(t, &w)) {
        rc = NOMEM();
        goto out;
    }
    if (t->o.progress)
        pg = ct_progress_start("BPE merges", (double)(t->o.vocab_size - t->vn), "merges");
    size_t base = t->vn;
    while (t->vn < t->o.vocab_size && w.h.n) {
        hentry top = w.h.v[0];
        uint32_t k;
        if (pair_index(&w, top.a, top.b, &k)) {
            rc = NOMEM();
            goto out;
        }
        if (top.count != (uint64_t)w.pcount[k]) {
            w.h.v[0].count = (uint64_t)w.pcount[k];
            h_sift_down(&w.h, 0);
            continue;
        }
        if (top.count < 1 || t->o.min_frequency > top.count)
            break;
        h_pop(&w.h);
        const char *sa = tok_train_vocab_str(t, top.a), *sb = tok_train_vocab_str(t, top.b);
        size_t la = strlen(sa), lb = strlen(sb);
        nt.n = 0;
        if (tok_buf_put(&nt, sa, la) || tok_buf_put(&nt, sb, lb) || vocab_add(t, nt.p, la + lb, &id) ||
            ct_array_grow((void **)&w.rawm, &w.rawmcap, w.nrawm + 1, sizeof *w.rawm)) {
            rc = NOMEM();
            goto out;
        }
        w.rawm[w.nrawm][0] = top.a;
        w.rawm[w.nrawm][1] = top.b;
        w.nrawm++;
        w.nch = 0;
        for (size_t i = 0; i < top.npos; i++) {
            if (merge_word(&w, w.posbuf[top.pos + i], top.a, top.b, (uint32_t)id)) {
                rc = NOMEM();
                goto out;
            }
        }
        w.nupd = 0;
        for (size_t i = 0; i < w.nch; i++) {
            const change *c = &w.ch[i];
            w.pcount[c->pair] += (int64_t)c->delta * (int64_t)t->wcnt[c->word];
            if (c->delta > 0) {
                if (ct_array_grow((void **)&w.upd, &w.updcap, w.nupd + 1, sizeof *w.upd)) {
                    rc = NOMEM();
                    goto out;
                }
                w.upd[w.nupd++] = (uint64_t)c->pair << 32 | c->word;
            }
        }
        if (push_updates(&w)) {
            rc = NOMEM();
            goto out;
        }
        ct_progress_update(pg, (double)(t->vn - base));
    }
    if (finish_merges(t, &w))
        rc = NOMEM();
out:
    ct_progress_finish(pg);
    free(nt.p);
    work_free(&w);
    return rc;
}

void ct_tok_trainer_free(ct_tok_trainer *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nspec; i++)
        free(t->specials[i]);
    free(t->specials);
    tok_pretok_free(&t->pt);
    tok_pretok_scratch_free(&t->sc);
    free(t->nbuf.p);
    free(t->warena.b.p);
    tok_strmap_free(&t->wmap);
    free(t->wcnt);
    free(t->woff);
    free(t->wlen);
    free(t->varena.b.p);
    tok_strmap_free(&t->vmap);
    free(t->voff);
    free(t->merges);
    free(t);
}

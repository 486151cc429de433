#define PCRE2_CODE_UNIT_WIDTH 8
#include "models/tokenizer/tok_added.h"

#include <pcre2.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static int token_to_id(const tok_added *av, const tok_bpe *model, const char *s, size_t n,
                       int32_t *id)
{
    return tok_strmap_get(&av->map, &av->arena, s, n, id) || tok_bpe_token_to_id(model, s, n, id);
}

static int same_token(const tok_added *av, const tok_added_tok *a, const char *c, size_t n,
                      const tok_added_tok *f)
{
    return a->len == n && !memcmp(av->arena.b.p + a->off, c, n) && a->special == f->special &&
           a->normalized == f->normalized && a->single_word == f->single_word &&
           a->lstrip == f->lstrip && a->rstrip == f->rstrip;
}

static int push_index(size_t **list, size_t *n, size_t v)
{
    size_t *p = realloc(*list, (*n + 1) * sizeof *p);
    if (!p)
        return -1;
    p[(*n)++] = v;
    *list = p;
    return 0;
}

int tok_added_add(tok_added *av, const tok_bpe *model, const char *content, size_t len,
                  const tok_added_tok *flags)
{
    if (!av->nrecs && !av->map.n)
        av->max_id = -1;
    if (len == 0)
        return 0;
    if (av->nrecs == av->caprecs) {
        size_t c = av->caprecs ? av->caprecs * 2 : 16;
        tok_added_tok *p = realloc(av->recs, c * sizeof *p);
        if (!p)
            return -1;
        av->recs = p;
        av->caprecs = c;
    }
    tok_added_tok rec = *flags;
    if (tok_arena_add(&av->arena, content, len, &rec.off))
        return -1;
    rec.len = (uint32_t)len;
    size_t ri = av->nrecs++;
    av->recs[ri] = rec;
    int32_t dummy;
    int is_special_known = tok_strmap_get(&av->special_set, &av->arena, content, len, &dummy);
    if (flags->special && !is_special_known) {
        if (push_index(&av->special_list, &av->nspecial, ri) ||
            tok_strmap_put(&av->special_set, &av->arena, content, len, 1))
            return -1;
    }
    /* An identical token (all flags equal) already holding an id is ignored. */
    for (size_t i = 0; i < av->by_id.cap; i++) {
        if (av->by_id.k[i] == UINT64_MAX)
            continue;
        if (same_token(av, &av->recs[av->by_id.v[i]], content, len, flags))
            return 0;
    }
    int32_t id;
    if (!token_to_id(av, model, content, len, &id)) {
        /* A new id: after the model's vocabulary, or after the largest added id. */
        int32_t vs = (int32_t)tok_bpe_vocab_len(model);
        if (!av->map.n)
            id = vs;
        else
            id = (av->max_id >= vs || vs == 0) ? av->max_id + 1 : vs;
    }
    if (tok_strmap_put(&av->map, &av->arena, content, len, id) ||
        tok_u64map_put(&av->by_id, (uint64_t)(uint32_t)id, ri))
        return -1;
    if (id > av->max_id)
        av->max_id = id;
    if (!tok_strmap_get(&av->special_set, &av->arena, content, len, &dummy) &&
        push_index(&av->added_list, &av->nadded, ri))
        return -1;
    return 0;
}

static int trie_node(tok_trie *t, unsigned char byte)
{
    if (t->n == t->cap) {
        size_t c = t->cap ? t->cap * 2 : 64;
        tok_trie_node *p = realloc(t->nodes, c * sizeof *p);
        if (!p)
            return -1;
        t->nodes = p;
        t->cap = c;
    }
    t->nodes[t->n] = (tok_trie_node){-1, -1, -1, byte};
    return (int)t->n++;
}

static int trie_add(tok_trie *t, const char *s, size_t n, int32_t id)
{
    if (!t->n && trie_node(t, 0) < 0)
        return -1;
    int32_t *ids = realloc(t->ids, (t->npat + 1) * sizeof *ids);
    if (!ids)
        return -1;
    t->ids = ids;
    int32_t cur = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int32_t ch = t->nodes[cur].child;
        while (ch >= 0 && t->nodes[ch].byte != c)
            ch = t->nodes[ch].sibling;
        if (ch < 0) {
            int nn = trie_node(t, c);
            if (nn < 0)
                return -1;
            ch = nn;
            t->nodes[ch].sibling = t->nodes[cur].child;
            t->nodes[cur].child = ch;
        }
        cur = ch;
    }
    t->first[(unsigned char)s[0]] = 1;
    /* With equal patterns the first one wins, as in Aho-Corasick's pattern order. */
    if (t->nodes[cur].pat < 0)
        t->nodes[cur].pat = (int32_t)t->npat;
    t->ids[t->npat++] = id;
    return 0;
}

int tok_added_refresh(tok_added *av, const tok_bpe *model, tok_normalize_fn norm, const void *ctx)
{
    tok_buf nb = {0};
    for (int pass = 0; pass < 2; pass++) {
        const size_t *list = pass ? av->added_list : av->special_list;
        size_t cnt = pass ? av->nadded : av->nspecial;
        for (size_t i = 0; i < cnt; i++) {
            const tok_added_tok *r = &av->recs[list[i]];
            const char *c = av->arena.b.p + r->off;
            int32_t id;
            if (!token_to_id(av, model, c, r->len, &id))
                continue;
            if (!r->normalized) {
                if (trie_add(&av->plain, c, r->len, id))
                    goto oom;
                continue;
            }
            nb.n = 0;
            if (norm) {
                /* The content is copied out first: normalizing may grow the arena. */
                char *copy = malloc(r->len);
                if (!copy)
                    goto oom;
                memcpy(copy, c, r->len);
                int rc = norm(ctx, copy, r->len, &nb);
                free(copy);
                if (rc)
                    goto oom;
            } else if (tok_buf_put(&nb, c, r->len)) {
                goto oom;
            }
            if (nb.n && trie_add(&av->normalized, nb.p, nb.n, id))
                goto oom;
        }
    }
    free(nb.p);
    return 0;
oom:
    free(nb.p);
    return -1;
}

/* Rust regex's \w (Unicode word characters), for single_word tokens. */
static pcre2_code *word_re;
static pthread_once_t word_once = PTHREAD_ONCE_INIT;
static void word_init(void)
{
    int ec;
    PCRE2_SIZE eo;
    word_re = pcre2_compile((PCRE2_SPTR) "^[\\p{L}\\p{Nl}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]",
                           PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
}

static int is_word_char(const char *s, size_t n)
{
    pthread_once(&word_once, word_init);
    if (!word_re || !n)
        return 0;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md)
        return 0;
    int rc = pcre2_match(word_re, (PCRE2_SPTR)s, n, 0, PCRE2_NO_UTF_CHECK, md, NULL);
    pcre2_match_data_free(md);
    return rc > 0;
}

static size_t prev_char(const char *s, size_t end)
{
    size_t i = end;
    do {
        i--;
    } while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80);
    return i;
}

static int push_piece(tok_pieces *o, size_t a, size_t b, int32_t id)
{
    if (o->n == o->cap) {
        size_t c = o->cap ? o->cap * 2 : 16;
        tok_piece *p = realloc(o->v, c * sizeof *p);
        if (!p)
            return -1;
        o->v = p;
        o->cap = c;
    }
    o->v[o->n++] = (tok_piece){a, b, id};
    return 0;
}

int tok_added_split(const tok_added *av, int normalized_set, const char *s, size_t n, tok_pieces *out)
{
    const tok_trie *t = normalized_set ? &av->normalized : &av->plain;
    out->n = 0;
    size_t start_offset = 0, pos = 0;
    if (t->n) {
        while (pos < n) {
            if (!t->first[(unsigned char)s[pos]]) {
                pos++;
                continue;
            }
            /* Longest pattern starting here. */
            int32_t cur = 0, best = -1;
            size_t best_end = 0;
            for (size_t i = pos; i < n; i++) {
                int32_t ch = t->nodes[cur].child;
                while (ch >= 0 && t->nodes[ch].byte != (unsigned char)s[i])
                    ch = t->nodes[ch].sibling;
                if (ch < 0)
                    break;
                cur = ch;
                if (t->nodes[cur].pat >= 0) {
                    best = t->nodes[cur].pat;
                    best_end = i + 1;
                }
            }
            if (best < 0) {
                pos++;
                continue;
            }
            size_t start = pos, stop = best_end;
            int32_t id = t->ids[best];
            pos = best_end; /* matching resumes after the match, whatever is stripped */
            uint64_t ri;
            const tok_added_tok *tk = tok_u64map_get(&av->by_id, (uint64_t)(uint32_t)id, &ri) ? &av->recs[ri] : NULL;
            if (tk && tk->single_word) {
                int start_space = start == 0 || !is_word_char(s + prev_char(s, start), start - prev_char(s, start));
                int stop_space = stop == n || !is_word_char(s + stop, n - stop);
                if (!start_space || !stop_space)
                    continue;
            }
            if (tk && tk->lstrip) {
                size_t ns = start;
                while (ns > 0) {
                    size_t p = prev_char(s, ns);
                    int l;
                    if (!tok_is_white_space(tok_utf8_decode(s + p, &l)))
                        break;
                    ns = p;
                }
                start = ns > start_offset ? ns : start_offset;
            }
            if (tk && tk->rstrip) {
                while (stop < n) {
                    int l;
                    if (!tok_is_white_space(tok_utf8_decode(s + stop, &l)))
                        break;
                    stop += (size_t)l;
                }
            }
            if (start_offset < start && push_piece(out, start_offset, start, -1))
                return -1;
            if (push_piece(out, start, stop, id))
                return -1;
            start_offset = stop;
        }
    }
    if (start_offset < n && push_piece(out, start_offset, n, -1))
        return -1;
    return 0;
}

int tok_added_id(const tok_added *av, const char *s, size_t n, int32_t *id)
{
    return tok_strmap_get(&av->map, &av->arena, s, n, id);
}

const char *tok_added_content(const tok_added *av, int32_t id)
{
    uint64_t ri;
    if (id < 0 || !tok_u64map_get(&av->by_id, (uint64_t)(uint32_t)id, &ri))
        return NULL;
    return av->arena.b.p + av->recs[ri].off;
}

int tok_added_is_special(const tok_added *av, const char *s, size_t n)
{
    int32_t v;
    return tok_strmap_get(&av->special_set, &av->arena, s, n, &v);
}

static void trie_free(tok_trie *t)
{
    free(t->nodes);
    free(t->ids);
    memset(t, 0, sizeof *t);
}

void tok_added_free(tok_added *av)
{
    free(av->arena.b.p);
    free(av->recs);
    free(av->special_list);
    free(av->added_list);
    tok_strmap_free(&av->map);
    tok_u64map_free(&av->by_id);
    tok_strmap_free(&av->special_set);
    trie_free(&av->plain);
    trie_free(&av->normalized);
    memset(av, 0, sizeof *av);
}

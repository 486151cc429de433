#include "models/tokenizer/tok_bpe.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

/* Word cache: direct-mapped slots in shards, each shard behind its own mutex, so
 * threads encoding at once rarely wait on each other. Only short words whose ids fit
 * a slot are cached; the rest are merged every time (results are identical). */
enum { CACHE_SHARDS = 16, CACHE_SLOTS = 2048, CACHE_KEY = 40, CACHE_IDS = 10 };
typedef struct {
    uint64_t h;
    uint16_t klen, nids;
    char key[CACHE_KEY];
    int32_t ids[CACHE_IDS];
} cache_slot;
typedef struct {
    pthread_mutex_t mu;
    cache_slot *slots;
} cache_shard;

#define SMALL_CP 0x400
#define MAX_ID 0x7FFFFFF /* ids beyond this mean a broken file, not a real vocabulary */

struct tok_bpe {
    tok_arena arena;
    tok_strmap vocab;
    uint32_t *id_off; /* id -> arena offset, UINT32_MAX when unused */
    size_t id_cap;
    int32_t max_id;
    tok_u64map merges; /* (left << 32 | right) -> (rank << 32 | new id) */
    uint32_t n_merges;
    int32_t small[SMALL_CP]; /* id of the one-character token for code points < SMALL_CP */
    char *prefix, *suffix, *unk;
    size_t prefix_len, suffix_len;
    int fuse_unk, byte_fallback, ignore_merges;
    int has_unk, unk_found;
    int32_t unk_id;
    int32_t byte_ids[256]; /* "<0xNN>" tokens for byte_fallback, -1 when absent */
    cache_shard cache[CACHE_SHARDS];
    int cache_ready;
};

static char *dup_opt(const char *s, size_t *len)
{
    if (!s || !*s) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = strlen(s);
    return strdup(s);
}

int tok_bpe_new(const tok_bpe_opts *o, tok_bpe **out, char *err, size_t errlen)
{
    tok_bpe *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return CT_ENOMEM;
    }
    b->max_id = -1;
    b->prefix = dup_opt(o->continuing_subword_prefix, &b->prefix_len);
    b->suffix = dup_opt(o->end_of_word_suffix, &b->suffix_len);
    b->has_unk = o->unk_token != NULL;
    b->unk = o->unk_token ? strdup(o->unk_token) : NULL;
    b->fuse_unk = o->fuse_unk;
    b->byte_fallback = o->byte_fallback;
    b->ignore_merges = o->ignore_merges;
    if ((o->continuing_subword_prefix && *o->continuing_subword_prefix && !b->prefix) ||
        (o->end_of_word_suffix && *o->end_of_word_suffix && !b->suffix) || (b->has_unk && !b->unk)) {
        tok_bpe_free(b);
        snprintf(err, errlen, "out of memory");
        return CT_ENOMEM;
    }
    *out = b;
    return 0;
}

int tok_bpe_add_token(tok_bpe *b, const char *s, size_t n, int32_t id, char *err, size_t errlen)
{
    if (id < 0 || id > MAX_ID) {
        snprintf(err, errlen, "token \"%.*s\" has id %ld outside [0, %d]", (int)(n > 60 ? 60 : n), s,
                 (long)id, MAX_ID);
        return CT_EINVAL;
    }
    if (tok_strmap_put(&b->vocab, &b->arena, s, n, id))
        goto oom;
    if ((size_t)id >= b->id_cap) {
        size_t cap = b->id_cap ? b->id_cap : 1024;
        while (cap <= (size_t)id)
            cap *= 2;
        uint32_t *p = realloc(b->id_off, cap * sizeof *p);
        if (!p)
            goto oom;
        for (size_t i = b->id_cap; i < cap; i++)
            p[i] = UINT32_MAX;
        b->id_off = p;
        b->id_cap = cap;
    }
    uint32_t off;
    tok_strmap_key_off(&b->vocab, &b->arena, s, n, &off);
    b->id_off[id] = off;
    if (id > b->max_id)
        b->max_id = id;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return CT_ENOMEM;
}

int tok_bpe_add_merge(tok_bpe *b, const char *l, size_t ln, const char *r, size_t rn, char *err,
                      size_t errlen)
{
    int32_t a, c, m;
    if (!tok_strmap_get(&b->vocab, &b->arena, l, ln, &a)) {
        snprintf(err, errlen, "merge %u: token \"%.*s\" is not in the vocabulary", b->n_merges,
                 (int)(ln > 60 ? 60 : ln), l);
        return CT_EINVAL;
    }
    if (!tok_strmap_get(&b->vocab, &b->arena, r, rn, &c)) {
        snprintf(err, errlen, "merge %u: token \"%.*s\" is not in the vocabulary", b->n_merges,
                 (int)(rn > 60 ? 60 : rn), r);
        return CT_EINVAL;
    }
    /* The merged token drops the right part's continuing-subword prefix. */
    if (b->prefix_len && (rn < b->prefix_len || memcmp(r, b->prefix, b->prefix_len))) {
        snprintf(err, errlen, "merge %u: right part \"%.*s\" lacks the continuing_subword_prefix",
                 b->n_merges, (int)(rn > 60 ? 60 : rn), r);
        return CT_EINVAL;
    }
    size_t skip = b->prefix_len, mn = ln + rn - skip;
    char stackbuf[256];
    char *buf = mn <= sizeof stackbuf ? stackbuf : malloc(mn);
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        return CT_ENOMEM;
    }
    memcpy(buf, l, ln);
    memcpy(buf + ln, r + skip, rn - skip);
    int found = tok_strmap_get(&b->vocab, &b->arena, buf, mn, &m);
    if (!found)
        snprintf(err, errlen, "merge %u: merged token \"%.*s\" is not in the vocabulary", b->n_merges,
                 (int)(mn > 60 ? 60 : mn), buf);
    if (buf != stackbuf)
        free(buf);
    if (!found)
        return CT_EINVAL;
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)c;
    if (tok_u64map_put(&b->merges, key, ((uint64_t)b->n_merges << 32) | (uint32_t)m)) {
        snprintf(err, errlen, "out of memory");
        return CT_ENOMEM;
    }
    b->n_merges++;
    return 0;
}

int tok_bpe_finish(tok_bpe *b, char *err, size_t errlen)
{
    for (uint32_t cp = 0; cp < SMALL_CP; cp++) {
        char u[4];
        int l = tok_utf8_encode(cp, u);
        int32_t id;
        b->small[cp] = tok_strmap_get(&b->vocab, &b->arena, u, (size_t)l, &id) ? id : -1;
    }
    for (int i = 0; i < 256; i++) {
        char t[8];
        int32_t id;
        snprintf(t, sizeof t, "<0x%02X>", i);
        b->byte_ids[i] = tok_strmap_get(&b->vocab, &b->arena, t, 6, &id) ? id : -1;
    }
    if (b->has_unk)
        b->unk_found = tok_strmap_get(&b->vocab, &b->arena, b->unk, strlen(b->unk), &b->unk_id);
    for (int s = 0; s < CACHE_SHARDS; s++) {
        b->cache[s].slots = calloc(CACHE_SLOTS, sizeof(cache_slot));
        if (!b->cache[s].slots || pthread_mutex_init(&b->cache[s].mu, NULL)) {
            free(b->cache[s].slots);
            b->cache[s].slots = NULL;
            for (int k = 0; k < s; k++) {
                pthread_mutex_destroy(&b->cache[k].mu);
                free(b->cache[k].slots);
                b->cache[k].slots = NULL;
            }
            snprintf(err, errlen, "out of memory");
            return CT_ENOMEM;
        }
    }
    b->cache_ready = 1;
    return 0;
}

typedef struct {
    int32_t id;
    int32_t prev, next;
    int alive;
} sym;

typedef struct {
    uint32_t rank, pos;
    int32_t new_id;
} merge_ent;

static inline int ent_less(const merge_ent *x, const merge_ent *y)
{
    return x->rank != y->rank ? x->rank < y->rank : x->pos < y->pos;
}

static void heap_push(merge_ent *h, size_t *n, merge_ent e)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ent_less(&e, &h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

static merge_ent heap_pop(merge_ent *h, size_t *n)
{
    merge_ent top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && ent_less(&h[c + 1], &h[c]))
            c++;
        if (!ent_less(&h[c], &last))
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n)
        h[i] = last;
    return top;
}

static inline int lookup_merge(const tok_bpe *b, int32_t l, int32_t r, uint32_t *rank, int32_t *nid)
{
    uint64_t v;
    if (!tok_u64map_get(&b->merges, ((uint64_t)(uint32_t)l << 32) | (uint32_t)r, &v))
        return 0;
    *rank = (uint32_t)(v >> 32);
    *nid = (int32_t)(uint32_t)v;
    return 1;
}

static int add_sym(sym **s, size_t *n, size_t *cap, sym *stack, int32_t id)
{
    if (*n == *cap) {
        size_t nc = *cap * 2;
        sym *p;
        if (*s == stack) {
            p = malloc(nc * sizeof *p);
            if (p)
                memcpy(p, *s, *n * sizeof *p);
        } else {
            p = realloc(*s, nc * sizeof *p);
        }
        if (!p)
            return -1;
        *s = p;
        *cap = nc;
    }
    (*s)[*n].id = id;
    (*n)++;
    return 0;
}

/* The symbols of a word before merging: one per character (with the continuing-subword
 * prefix on all but the first and the end-of-word suffix on the last), unknown
 * characters as byte tokens or the unknown token, or dropped. */
static int initial_symbols(const tok_bpe *b, const char *w, size_t n, sym **s, size_t *ns,
                           size_t *cap, sym *stack)
{
    int have_unk = 0;
    char tmp[64];
    for (size_t i = 0; i < n;) {
        int l = tok_utf8_len((unsigned char)w[i]);
        if (!l || i + (size_t)l > n)
            return ct_error_set(CT_EINVAL, "word is not valid UTF-8");
        int first = i == 0, last = i + (size_t)l == n;
        int32_t id = -1;
        int found;
        if ((first || !b->prefix_len) && (!last || !b->suffix_len)) {
            int dl;
            uint32_t cp = tok_utf8_decode(w + i, &dl);
            if (cp < SMALL_CP) {
                id = b->small[cp];
                found = id >= 0;
            } else {
                found = tok_strmap_get(&b->vocab, &b->arena, w + i, (size_t)l, &id);
            }
        } else {
            size_t tl = 0;
            char *t = tmp;
            size_t need = b->prefix_len + (size_t)l + b->suffix_len;
            if (need > sizeof tmp && !(t = malloc(need)))
                return ct_error_set(CT_ENOMEM, "out of memory");
            if (!first) {
                memcpy(t, b->prefix, b->prefix_len);
                tl = b->prefix_len;
            }
            memcpy(t + tl, w + i, (size_t)l);
            tl += (size_t)l;
            if (last) {
                memcpy(t + tl, b->suffix, b->suffix_len);
                tl += b->suffix_len;
            }
            found = tok_strmap_get(&b->vocab, &b->arena, t, tl, &id);
            if (t != tmp)
                free(t);
        }
        if (found) {
            if (have_unk && add_sym(s, ns, cap, stack, b->unk_id))
                return ct_error_set(CT_ENOMEM, "out of memory");
            have_unk = 0;
            if (add_sym(s, ns, cap, stack, id))
                return ct_error_set(CT_ENOMEM, "out of memory");
        } else {
            int done = 0;
            if (b->byte_fallback) {
                int all = 1;
                for (int k = 0; k < l; k++)
                    all &= b->byte_ids[(unsigned char)w[i + (size_t)k]] >= 0;
                if (all) {
                    /* Hugging Face emits these without first flushing a pending unknown. */
                    for (int k = 0; k < l; k++)
                        if (add_sym(s, ns, cap, stack, b->byte_ids[(unsigned char)w[i + (size_t)k]]))
                            return ct_error_set(CT_ENOMEM, "out of memory");
                    done = 1;
                }
            }
            if (!done && b->has_unk) {
                if (!b->unk_found)
                    return ct_error_set(CT_EINVAL, "unk_token \"%s\" is not in the vocabulary", b->unk);
                if (have_unk && !b->fuse_unk && add_sym(s, ns, cap, stack, b->unk_id))
                    return ct_error_set(CT_ENOMEM, "out of memory");
                have_unk = 1;
            }
        }
        i += (size_t)l;
    }
    if (have_unk && add_sym(s, ns, cap, stack, b->unk_id))
        return ct_error_set(CT_ENOMEM, "out of memory");
    return 0;
}

static int merge_word(const tok_bpe *b, const char *w, size_t n, tok_ids *out)
{
    sym stack_syms[64];
    merge_ent stack_heap[128];
    sym *s = stack_syms;
    size_t ns = 0, cap = 64;
    int rc = initial_symbols(b, w, n, &s, &ns, &cap, stack_syms);
    merge_ent *h = stack_heap;
    if (rc)
        goto done;
    for (size_t i = 0; i < ns; i++) {
        s[i].prev = (int32_t)i - 1;
        s[i].next = i + 1 < ns ? (int32_t)i + 1 : -1;
        s[i].alive = 1;
    }
    /* Every merge adds at most two entries and removes a symbol, so 3 * ns bounds
     * the heap. */
    size_t hcap = 3 * ns + 1, hn = 0;
    if (hcap > sizeof stack_heap / sizeof stack_heap[0] && !(h = malloc(hcap * sizeof *h))) {
        rc = ct_error_set(CT_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i + 1 < ns; i++) {
        merge_ent e;
        if (lookup_merge(b, s[i].id, s[i + 1].id, &e.rank, &e.new_id)) {
            e.pos = (uint32_t)i;
            heap_push(h, &hn, e);
        }
    }
    while (hn) {
        merge_ent top = heap_pop(h, &hn);
        sym *cur = &s[top.pos];
        if (!cur->alive || cur->next < 0)
            continue;
        int32_t nx = cur->next;
        uint32_t rank;
        int32_t nid;
        /* A stale entry: the pair at this position changed since it was queued. */
        if (!lookup_merge(b, cur->id, s[nx].id, &rank, &nid) || nid != top.new_id)
            continue;
        cur->id = top.new_id;
        cur->next = s[nx].next;
        s[nx].alive = 0;
        if (cur->next >= 0)
            s[cur->next].prev = (int32_t)top.pos;
        merge_ent e;
        if (cur->prev >= 0 && lookup_merge(b, s[cur->prev].id, cur->id, &e.rank, &e.new_id)) {
            e.pos = (uint32_t)cur->prev;
            heap_push(h, &hn, e);
        }
        if (cur->next >= 0 && lookup_merge(b, cur->id, s[cur->next].id, &e.rank, &e.new_id)) {
            e.pos = top.pos;
            heap_push(h, &hn, e);
        }
    }
    for (size_t i = 0; i < ns; i++)
        if (s[i].alive && tok_ids_push(out, s[i].id)) {
            rc = ct_error_set(CT_ENOMEM, "out of memory");
            break;
        }
done:
    if (s != stack_syms)
        free(s);
    if (h != stack_heap)
        free(h);
    return rc;
}

int tok_bpe_encode_word(const tok_bpe *b, const char *w, size_t n, tok_ids *out)
{
    if (!n)
        return 0;
    if (b->ignore_merges) {
        int32_t id;
        if (tok_strmap_get(&b->vocab, &b->arena, w, n, &id))
            return tok_ids_push(out, id) ? ct_error_set(CT_ENOMEM, "out of memory") : 0;
    }
    uint64_t h = 0;
    cache_shard *sh = NULL;
    cache_slot *slot = NULL;
    if (n <= CACHE_KEY && b->cache_ready) {
        h = tok_hash(w, n);
        sh = (cache_shard *)&b->cache[h % CACHE_SHARDS];
        pthread_mutex_lock(&sh->mu);
        slot = &sh->slots[(h / CACHE_SHARDS) % CACHE_SLOTS];
        if (slot->h == h && slot->klen == n && !memcmp(slot->key, w, n)) {
            int rc = tok_ids_append(out, slot->ids, slot->nids);
            pthread_mutex_unlock(&sh->mu);
            return rc ? ct_error_set(CT_ENOMEM, "out of memory") : 0;
        }
        pthread_mutex_unlock(&sh->mu);
    }
    size_t before = out->n;
    int rc = merge_word(b, w, n, out);
    if (rc || !sh)
        return rc;
    size_t cnt = out->n - before;
    if (cnt <= CACHE_IDS) {
        pthread_mutex_lock(&sh->mu);
        slot->h = h;
        slot->klen = (uint16_t)n;
        slot->nids = (uint16_t)cnt;
        memcpy(slot->key, w, n);
        memcpy(slot->ids, out->v + before, cnt * sizeof *out->v);
        pthread_mutex_unlock(&sh->mu);
    }
    return 0;
}

int tok_bpe_token_to_id(const tok_bpe *b, const char *s, size_t n, int32_t *id)
{
    return tok_strmap_get(&b->vocab, &b->arena, s, n, id);
}

const char *tok_bpe_id_to_token(const tok_bpe *b, int32_t id)
{
    if (id < 0 || (size_t)id >= b->id_cap || b->id_off[id] == UINT32_MAX)
        return NULL;
    return tok_arena_str(&b->arena, b->id_off[id]);
}

size_t tok_bpe_vocab_len(const tok_bpe *b) { return b->vocab.n; }
int32_t tok_bpe_max_id(const tok_bpe *b) { return b->max_id; }

void tok_bpe_free(tok_bpe *b)
{
    if (!b)
        return;
    if (b->cache_ready)
        for (int s = 0; s < CACHE_SHARDS; s++) {
            pthread_mutex_destroy(&b->cache[s].mu);
            free(b->cache[s].slots);
        }
    free(b->arena.b.p);
    tok_strmap_free(&b->vocab);
    tok_u64map_free(&b->merges);
    free(b->id_off);
    free(b->prefix);
    free(b->suffix);
    free(b->unk);
    free(b);
}

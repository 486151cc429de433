#include "common/array.h"
#include "models/tokenizer/tok_util.h"

#include <stdlib.h>
#include <string.h>

int tok_ids_push(tok_ids *a, int32_t x)
{
    if (ct_array_grow((void **)&a->v, &a->cap, a->n + 1, sizeof *a->v))
        return -1;
    a->v[a->n++] = x;
    return 0;
}

int tok_ids_append(tok_ids *a, const int32_t *x, size_t n)
{
    if (!n)
        return 0;
    if (ct_array_grow((void **)&a->v, &a->cap, a->n + n, sizeof *a->v))
        return -1;
    memcpy(a->v + a->n, x, n * sizeof *x);
    a->n += n;
    return 0;
}

int tok_buf_reserve(tok_buf *b, size_t extra)
{
    return ct_array_grow((void **)&b->p, &b->cap, b->n + extra + 1, 1);
}

int tok_buf_put(tok_buf *b, const void *s, size_t n)
{
    if (tok_buf_reserve(b, n))
        return -1;
    if (n)
        memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

int tok_spans_push(tok_spans *a, size_t start, size_t end)
{
    if (ct_array_grow((void **)&a->v, &a->cap, a->n + 1, sizeof *a->v))
        return -1;
    a->v[a->n].start = start;
    a->v[a->n].end = end;
    a->n++;
    return 0;
}

int tok_arena_add(tok_arena *a, const char *s, size_t n, uint32_t *off)
{
    if (a->b.n + n + 1 > UINT32_MAX)
        return -1;
    size_t at = a->b.n;
    if (tok_buf_put(&a->b, s, n))
        return -1;
    a->b.n++; /* keep the NUL */
    *off = (uint32_t)at;
    return 0;
}

uint64_t tok_hash(const void *s, size_t n)
{
    /* Multiply-xorshift over 8-byte words: quick for the short keys (tokens, words)
     * these maps hold. Never 0, which marks an empty slot. */
    const unsigned char *p = s;
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (n * 0xC2B2AE3D27D4EB4FULL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDULL;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ULL;
    h ^= h >> 29;
    h *= 0xFF51AFD7ED558CCDULL;
    h ^= h >> 32;
    return h ? h : 1;
}

static int strmap_grow(tok_strmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    tok_strmap n = {0};
    n.cap = cap;
    n.h = calloc(cap, sizeof *n.h);
    n.off = malloc(cap * sizeof *n.off);
    n.len = malloc(cap * sizeof *n.len);
    n.val = malloc(cap * sizeof *n.val);
    if (!n.h || !n.off || !n.len || !n.val) {
        tok_strmap_free(&n);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->h[i])
            continue;
        size_t j = m->h[i] & (cap - 1);
        while (n.h[j])
            j = (j + 1) & (cap - 1);
        n.h[j] = m->h[i];
        n.off[j] = m->off[i];
        n.len[j] = m->len[i];
        n.val[j] = m->val[i];
    }
    n.n = m->n;
    tok_strmap_free(m);
    *m = n;
    return 0;
}

static size_t strmap_find(const tok_strmap *m, const tok_arena *a, const char *s, size_t n,
                          uint64_t h)
{
    size_t j = h & (m->cap - 1);
    while (m->h[j]) {
        if (m->h[j] == h && m->len[j] == n && !memcmp(a->b.p + m->off[j], s, n))
            return j;
        j = (j + 1) & (m->cap - 1);
    }
    return j;
}

int tok_strmap_put(tok_strmap *m, tok_arena *arena, const char *s, size_t n, int32_t val)
{
    if (n > UINT32_MAX)
        return -1;
    if ((m->n + 1) * 4 > m->cap * 3 && strmap_grow(m))
        return -1;
    uint64_t h = tok_hash(s, n);
    size_t j = strmap_find(m, arena, s, n, h);
    if (m->h[j]) {
        m->val[j] = val;
        return 0;
    }
    uint32_t off;
    if (tok_arena_add(arena, s, n, &off))
        return -1;
    m->h[j] = h;
    m->off[j] = off;
    m->len[j] = (uint32_t)n;
    m->val[j] = val;
    m->n++;
    return 0;
}

int tok_strmap_get(const tok_strmap *m, const tok_arena *arena, const char *s, size_t n, int32_t *val)
{
    if (!m->cap)
        return 0;
    size_t j = strmap_find(m, arena, s, n, tok_hash(s, n));
    if (!m->h[j])
        return 0;
    *val = m->val[j];
    return 1;
}

int tok_strmap_key_off(const tok_strmap *m, const tok_arena *arena, const char *s, size_t n,
                       uint32_t *off)
{
    if (!m->cap)
        return 0;
    size_t j = strmap_find(m, arena, s, n, tok_hash(s, n));
    if (!m->h[j])
        return 0;
    *off = m->off[j];
    return 1;
}

void tok_strmap_free(tok_strmap *m)
{
    free(m->h);
    free(m->off);
    free(m->len);
    free(m->val);
    memset(m, 0, sizeof *m);
}

static inline size_t u64_slot(uint64_t k, size_t cap)
{
    k ^= k >> 33;
    k *= 0xFF51AFD7ED558CCDULL;
    k ^= k >> 33;
    return k & (cap - 1);
}

static int u64map_grow(tok_u64map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    uint64_t *k = malloc(cap * sizeof *k), *v = malloc(cap * sizeof *v);
    if (!k || !v) {
        free(k);
        free(v);
        return -1;
    }
    memset(k, 0xFF, cap * sizeof *k);
    for (size_t i = 0; i < m->cap; i++) {
        if (m->k[i] == UINT64_MAX)
            continue;
        size_t j = u64_slot(m->k[i], cap);
        while (k[j] != UINT64_MAX)
            j = (j + 1) & (cap - 1);
        k[j] = m->k[i];
        v[j] = m->v[i];
    }
    free(m->k);
    free(m->v);
    m->k = k;
    m->v = v;
    m->cap = cap;
    return 0;
}

int tok_u64map_put(tok_u64map *m, uint64_t k, uint64_t v)
{
    if ((m->n + 1) * 2 > m->cap && u64map_grow(m))
        return -1;
    size_t j = u64_slot(k, m->cap);
    while (m->k[j] != UINT64_MAX && m->k[j] != k)
        j = (j + 1) & (m->cap - 1);
    if (m->k[j] == UINT64_MAX) {
        m->k[j] = k;
        m->n++;
    }
    m->v[j] = v;
    return 0;
}

int tok_u64map_get(const tok_u64map *m, uint64_t k, uint64_t *v)
{
    if (!m->cap)
        return 0;
    size_t j = u64_slot(k, m->cap);
    while (m->k[j] != UINT64_MAX) {
        if (m->k[j] == k) {
            *v = m->v[j];
            return 1;
        }
        j = (j + 1) & (m->cap - 1);
    }
    return 0;
}

void tok_u64map_free(tok_u64map *m)
{
    free(m->k);
    free(m->v);
    memset(m, 0, sizeof *m);
}

int tok_utf8_valid(const char *str, size_t n, size_t *bad_at)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        unsigned char lo, hi;
        size_t need = tok_utf8_lead(c, &lo, &hi);
        if (!need)
            goto bad;
        if (i + need >= n)
            goto bad;
        if (s[i + 1] < lo || s[i + 1] > hi)
            goto bad;
        for (size_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                goto bad;
        i += need + 1;
    }
    return 1;
bad:
    if (bad_at)
        *bad_at = i;
    return 0;
}

uint32_t tok_utf8_decode(const char *str, int *len)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned char c = s[0];
    if (c < 0x80) {
        *len = 1;
        return c;
    }
    if (c < 0xE0) {
        *len = 2;
        return ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
    }
    if (c < 0xF0) {
        *len = 3;
        return ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    }
    *len = 4;
    return ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
           ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
}

int tok_utf8_encode(uint32_t cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int tok_is_white_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

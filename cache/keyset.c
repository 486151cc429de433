/* An open-addressing hash set of fixed-width byte strings (keys, blob ids), used
 * by gc to mark what is reachable. */
#include "cache/cache_internal.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

void cache_keyset_init(cache_keyset *s, size_t width)
{
    memset(s, 0, sizeof *s);
    s->width = width;
}

static uint64_t hash(const uint8_t *k, size_t w)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a: keys need not be uniformly random */
    for (size_t i = 0; i < w; i++)
        h = (h ^ k[i]) * 1099511628211ULL;
    return h;
}

static size_t find(const cache_keyset *s, const uint8_t *k)
{
    size_t i = (size_t)hash(k, s->width) & (s->cap - 1);
    while (s->used[i] && memcmp(s->slots + i * s->width, k, s->width) != 0)
        i = (i + 1) & (s->cap - 1);
    return i;
}

static int grow(cache_keyset *s)
{
    cache_keyset n = *s;
    n.cap = s->cap ? s->cap * 2 : 64;
    n.n = 0;
    n.slots = malloc(n.cap * s->width);
    n.used = calloc(n.cap, 1);
    if (!n.slots || !n.used) {
        free(n.slots);
        free(n.used);
        return ct_error_set(CT_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < s->cap; i++)
        if (s->used[i]) {
            size_t j = find(&n, s->slots + i * s->width);
            memcpy(n.slots + j * s->width, s->slots + i * s->width, s->width);
            n.used[j] = 1;
            n.n++;
        }
    free(s->slots);
    free(s->used);
    *s = n;
    return 0;
}

int cache_keyset_add(cache_keyset *s, const uint8_t *k)
{
    if ((s->n + 1) * 2 > s->cap) {
        int rc = grow(s);
        if (rc)
            return rc;
    }
    size_t i = find(s, k);
    if (s->used[i])
        return 0;
    memcpy(s->slots + i * s->width, k, s->width);
    s->used[i] = 1;
    s->n++;
    return 1;
}

int cache_keyset_has(const cache_keyset *s, const uint8_t *k)
{
    return s->cap && s->used[find(s, k)];
}

void cache_keyset_free(cache_keyset *s)
{
    free(s->slots);
    free(s->used);
    memset(s, 0, sizeof *s);
}

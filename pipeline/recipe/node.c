#include "pipeline/recipe/node.h"

#include "common/error.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct block {
    struct block *next;
    size_t used, cap;
    max_align_t data[];
} block;

struct ct_rarena {
    block *head;
};

int ct_rarena_new(ct_rarena **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : ct_error_set(CT_ENOMEM, "out of memory");
}

void ct_rarena_free(ct_rarena *a)
{
    if (!a)
        return;
    for (block *b = a->head, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(a);
}

void *ct_rarena_alloc(ct_rarena *a, size_t n)
{
    const size_t align = sizeof(max_align_t);
    n = (n + align - 1) / align * align;
    if (n == 0)
        n = align;
    block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        b = calloc(1, sizeof *b + cap);
        if (!b)
            return NULL;
        b->cap = cap;
        /* A large request gets its own block behind the current one, so the free
         * space of the current block is not wasted. */
        if (a->head && n > 16384) {
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    return p;
}

char *ct_rarena_strndup(ct_rarena *a, const char *s, size_t n)
{
    char *p = ct_rarena_alloc(a, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

char *ct_rarena_strdup(ct_rarena *a, const char *s) { return ct_rarena_strndup(a, s, strlen(s)); }

ct_rnode *ct_rnode_new(ct_rarena *a, int kind, const char *file, int line, int col)
{
    ct_rnode *n = ct_rarena_alloc(a, sizeof *n);
    if (!n)
        return NULL;
    n->kind = kind;
    n->file = file;
    n->line = line;
    n->col = col;
    n->weight = 1;
    return n;
}

ct_rnode *ct_rnode_scalar(ct_rarena *a, const char *file, int line, int col, const char *text,
                          size_t len, int quoted)
{
    ct_rnode *n = ct_rnode_new(a, CT_RN_SCALAR, file, line, col);
    if (!n || !(n->text = ct_rarena_strndup(a, text, len)))
        return NULL;
    n->stype = quoted ? CT_RS_STRING : ct_rnode_resolve(n->text);
    return n;
}

int ct_rnode_append(ct_rarena *a, ct_rnode *n, ct_rnode *key, ct_rnode *value)
{
    if (n->n == n->cap) {
        size_t cap = n->cap ? 2 * n->cap : 8;
        ct_rnode **items = ct_rarena_alloc(a, cap * sizeof *items);
        ct_rnode **keys = ct_rarena_alloc(a, cap * sizeof *keys);
        if (!items || !keys)
            return ct_error_set(CT_ENOMEM, "out of memory");
        if (n->n) {
            memcpy(items, n->items, n->n * sizeof *items);
            memcpy(keys, n->keys, n->n * sizeof *keys);
        }
        n->items = items;
        n->keys = keys;
        n->cap = cap;
    }
    n->keys[n->n] = key;
    n->items[n->n++] = value;
    n->weight += value->weight;
    if (n->weight > CT_RNODE_MAX_WEIGHT)
        n->weight = CT_RNODE_MAX_WEIGHT + 1; /* saturate; the caller refuses it */
    return 0;
}

ct_rnode *ct_rnode_clone(ct_rarena *a, const ct_rnode *n)
{
    ct_rnode *c = ct_rarena_alloc(a, sizeof *c);
    if (!c)
        return NULL;
    *c = *n;
    if (n->cap) {
        c->items = ct_rarena_alloc(a, n->cap * sizeof *c->items);
        c->keys = ct_rarena_alloc(a, n->cap * sizeof *c->keys);
        if (!c->items || !c->keys)
            return NULL;
        memcpy(c->items, n->items, n->n * sizeof *c->items);
        memcpy(c->keys, n->keys, n->n * sizeof *c->keys);
    }
    return c;
}

long ct_rnode_find(const ct_rnode *map, const char *key)
{
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->keys[i]->text, key) == 0)
            return (long)i;
    return -1;
}

void ct_rnode_remove(ct_rnode *map, size_t i)
{
    memmove(map->items + i, map->items + i + 1, (map->n - i - 1) * sizeof *map->items);
    memmove(map->keys + i, map->keys + i + 1, (map->n - i - 1) * sizeof *map->keys);
    map->n--;
}

int ct_rnode_is_null(const ct_rnode *n)
{
    return n->kind == CT_RN_SCALAR && n->stype == CT_RS_NULL;
}

size_t ct_rnode_lex_number(const char *s, int *is_int)
{
    const char *p = s;
    int digits = 0;
    *is_int = 1;
    if (*p == '+' || *p == '-')
        p++;
    /* integer part: digits with single underscores strictly between digits */
    while (isdigit((unsigned char)*p) || (*p == '_' && digits && isdigit((unsigned char)p[1]))) {
        digits += *p != '_';
        p++;
    }
    if (*p == '.') {
        *is_int = 0;
        p++;
        int frac = 0;
        while (isdigit((unsigned char)*p) || (*p == '_' && frac && isdigit((unsigned char)p[1]))) {
            frac += *p != '_';
            p++;
        }
        digits += frac;
    }
    if (!digits)
        return 0;
    if (*p == 'e' || *p == 'E') {
        const char *q = p + 1;
        if (*q == '+' || *q == '-')
            q++;
        if (isdigit((unsigned char)*q)) {
            while (isdigit((unsigned char)*q))
                q++;
            *is_int = 0;
            p = q;
        }
    }
    return (size_t)(p - s);
}

int ct_rnode_resolve(const char *t)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    static const char *const bools[] = {"true", "True", "TRUE", "false", "False", "FALSE"};
    for (size_t i = 0; i < sizeof nulls / sizeof *nulls; i++)
        if (strcmp(t, nulls[i]) == 0)
            return CT_RS_NULL;
    for (size_t i = 0; i < sizeof bools / sizeof *bools; i++)
        if (strcmp(t, bools[i]) == 0)
            return CT_RS_BOOL;
    int is_int;
    size_t n = ct_rnode_lex_number(t, &is_int);
    if (n && t[n] == '\0')
        return is_int ? CT_RS_INT : CT_RS_FLOAT;
    return CT_RS_STRING;
}

void ct_rnode_describe(const ct_rnode *n, char *buf, size_t cap)
{
    if (n->kind == CT_RN_SEQ) {
        snprintf(buf, cap, "a list");
        return;
    }
    if (n->kind == CT_RN_MAP) {
        snprintf(buf, cap, "a map");
        return;
    }
    switch (n->stype) {
    case CT_RS_NULL: snprintf(buf, cap, "null"); return;
    case CT_RS_BOOL: snprintf(buf, cap, "boolean %s", n->text); return;
    case CT_RS_INT: snprintf(buf, cap, "integer %s", n->text); return;
    case CT_RS_FLOAT: snprintf(buf, cap, "number %s", n->text); return;
    default: break;
    }
    /* Long or multi-line strings are cut so the message stays on one line. */
    char shown[64];
    size_t k = 0;
    for (const char *p = n->text; *p && k < 40; p++)
        shown[k++] = (*p == '\n' || *p == '\t' || *p == '\r') ? ' ' : *p;
    if (n->text[k]) /* do not cut a UTF-8 sequence in half */
        while (k && ((unsigned char)n->text[k] & 0xC0) == 0x80)
            k--;
    shown[k] = '\0';
    snprintf(buf, cap, "string '%s%s'", shown, n->text[k] ? "..." : "");
}

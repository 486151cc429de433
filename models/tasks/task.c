/* The task object: its pairs, their string storage, accessors. */
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "models/tasks/tasks_internal.h"

struct ct_task_block {
    ct_task_block *next;
    size_t used, cap;
    char data[];
};

#define BLOCK_MIN (64 * 1024)

static const char *const drop_names[CT_TASK_N_REASONS] = {
    [CT_TASK_KEEP] = "kept",
    [CT_TASK_NO_ONE_PREFIX] = "no_one_prefix",
    [CT_TASK_NOT_ONE_WORD] = "not_one_word_difference",
    [CT_TASK_IDENTICAL] = "identical",
    [CT_TASK_EMPTY_PREFIX] = "empty_prefix",
    [CT_TASK_PREFIX_MISMATCH] = "prefix_mismatch",
    [CT_TASK_DIFFERENT_TOKEN_COUNTS] = "different_token_counts",
    [CT_TASK_TOO_MANY_TOKENS] = "too_many_tokens",
};

const char *ct_task_drop_name(ct_task_drop why)
{
    return (unsigned)why < CT_TASK_N_REASONS ? drop_names[why] : "unknown";
}

int ct_task_new(const char *name, const char *file, ct_task **out)
{
    ct_task *t = calloc(1, sizeof *t);
    if (!t || !(t->name = strdup(name)) || !(t->file = strdup(file))) {
        ct_task_free(t);
        return ct_error_set(CT_ENOMEM, "%s: out of memory", file);
    }
    *out = t;
    return 0;
}

const char *ct_task_strndup(ct_task *t, const char *s, size_t n)
{
    ct_task_block *b = t->blocks;
    if (!b || b->cap - b->used < n + 1) {
        size_t cap = n + 1 > BLOCK_MIN ? n + 1 : BLOCK_MIN;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = t->blocks;
        t->blocks = b;
    }
    char *p = b->data + b->used;
    memcpy(p, s, n);
    p[n] = '\0';
    b->used += n + 1;
    return p;
}

int ct_task_push(ct_task *t, const ct_task_pair *p)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 1024;
        ct_task_pair *v = realloc(t->pairs, cap * sizeof *v);
        if (!v)
            return ct_error_set(CT_ENOMEM, "%s: out of memory", t->file);
        t->pairs = v;
        t->cap = cap;
    }
    t->pairs[t->n++] = *p;
    return 0;
}

void ct_task_free(ct_task *t)
{
    if (!t)
        return;
    for (ct_task_block *b = t->blocks, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(t->pairs);
    free(t->name);
    free(t->file);
    free(t);
}

const char *ct_task_name(const ct_task *t)
{
    return t->name;
}

size_t ct_task_size(const ct_task *t)
{
    return t->n;
}

int ct_task_pair_get(const ct_task *t, size_t i, ct_task_pair *out)
{
    if (i >= t->n)
        return ct_error_set(CT_EINVAL, "%s: pair %zu out of range (%zu pairs)", t->name, i, t->n);
    *out = t->pairs[i];
    return 0;
}

const char *ct_task_file(const ct_task *t)
{
    return t->file;
}

const char *ct_task_digest(const ct_task *t)
{
    return t->digest;
}

int ct_task_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t k;
        unsigned min;
        if (c == 0) {
            return 0; /* a NUL would silently cut the C strings the text is kept in */
        } else if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            k = 1, min = 0x80, c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2, min = 0x800, c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3, min = 0x10000, c &= 0x07;
        } else {
            return 0;
        }
        if (n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xC0) != 0x80)
                return 0;
            c = (c << 6) | (p[i + j] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
}

int ct_task_json_string(json_t *o, const char *key, const char **s)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return -1;
    *s = json_string_value(v);
    return 1;
}

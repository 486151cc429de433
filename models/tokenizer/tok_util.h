/* Small containers and UTF-8 helpers shared by the tokenizer's parts: growable
 * arrays, a string arena with a string->id hash map, a 64-bit-key hash map. */
#ifndef CT_TOK_UTIL_H
#define CT_TOK_UTIL_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int32_t *v;
    size_t n, cap;
} tok_ids;
int tok_ids_push(tok_ids *a, int32_t x);
int tok_ids_append(tok_ids *a, const int32_t *x, size_t n);

/* A growable byte buffer. */
typedef struct {
    char *p;
    size_t n, cap;
} tok_buf;
int tok_buf_reserve(tok_buf *b, size_t extra);
int tok_buf_put(tok_buf *b, const void *s, size_t n);

/* A (start, end) byte range. */
typedef struct {
    size_t start, end;
} tok_span;
typedef struct {
    tok_span *v;
    size_t n, cap;
} tok_spans;
int tok_spans_push(tok_spans *a, size_t start, size_t end);

/* Strings stored back to back, each NUL-terminated, addressed by offset (stable
 * across growth, unlike pointers). */
typedef struct {
    tok_buf b;
} tok_arena;
int tok_arena_add(tok_arena *a, const char *s, size_t n, uint32_t *off);
static inline const char *tok_arena_str(const tok_arena *a, uint32_t off) { return a->b.p + off; }

/* String -> int32 map whose keys live in an arena. */
typedef struct {
    uint64_t *h; /* 0 = empty slot */
    uint32_t *off, *len;
    int32_t *val;
    size_t cap, n;
} tok_strmap;
/* Inserts or overwrites; the key is copied into `arena`. */
int tok_strmap_put(tok_strmap *m, tok_arena *arena, const char *s, size_t n, int32_t val);
/* 1 and *val when found, 0 otherwise. */
int tok_strmap_get(const tok_strmap *m, const tok_arena *arena, const char *s, size_t n, int32_t *val);
/* Arena offset of a stored key (after a successful get/put of the same key). */
int tok_strmap_key_off(const tok_strmap *m, const tok_arena *arena, const char *s, size_t n,
                       uint32_t *off);
void tok_strmap_free(tok_strmap *m);

/* uint64 -> uint64 map; the key UINT64_MAX is reserved. */
typedef struct {
    uint64_t *k, *v;
    size_t cap, n;
} tok_u64map;
int tok_u64map_put(tok_u64map *m, uint64_t k, uint64_t v);
int tok_u64map_get(const tok_u64map *m, uint64_t k, uint64_t *v);
void tok_u64map_free(tok_u64map *m);

uint64_t tok_hash(const void *s, size_t n);

/* UTF-8: length of a valid input (0 if the byte cannot start a sequence); decoding
 * assumes validated input. */
int tok_utf8_valid(const char *s, size_t n, size_t *bad_at);
/* For a UTF-8 lead byte c >= 0x80: the number of continuation bytes (0 when c cannot
 * start a sequence) and the allowed range [*lo, *hi] of the first one (Unicode's
 * table of well-formed byte sequences). */
static inline size_t tok_utf8_lead(unsigned char c, unsigned char *lo, unsigned char *hi)
{
    *lo = 0x80;
    *hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        return 1;
    if (c >= 0xE0 && c <= 0xEF) {
        if (c == 0xE0)
            *lo = 0xA0;
        if (c == 0xED)
            *hi = 0x9F;
        return 2;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (c == 0xF0)
            *lo = 0x90;
        if (c == 0xF4)
            *hi = 0x8F;
        return 3;
    }
    return 0;
}
static inline int tok_utf8_len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xC0 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF8 ? 4 : 0;
}
uint32_t tok_utf8_decode(const char *s, int *len);
int tok_utf8_encode(uint32_t cp, char *out);

/* Unicode White_Space (what both Oniguruma's and Rust's \s match). */
int tok_is_white_space(uint32_t cp);

#endif

/* Added tokens (special or not) of tokenizer.json: their ids as Hugging Face assigns
 * them on load, and their extraction from text before pre-tokenization (leftmost-
 * longest matching; single_word, lstrip and rstrip as Hugging Face applies them). */
#ifndef CT_TOK_ADDED_H
#define CT_TOK_ADDED_H

#include "models/tokenizer/tok_bpe.h"

typedef struct {
    uint32_t off, len; /* content, in the arena */
    uint8_t special, normalized, single_word, lstrip, rstrip;
} tok_added_tok;

typedef struct {
    int32_t child, sibling, pat; /* pat: index in ids[], -1 when no pattern ends here */
    unsigned char byte;
} tok_trie_node;

typedef struct {
    tok_trie_node *nodes;
    size_t n, cap;
    int32_t *ids; /* pattern -> token id */
    size_t npat;
    uint8_t first[256];
} tok_trie;

/* Normalizes a token's content for matching against normalized text. */
typedef int (*tok_normalize_fn)(const void *ctx, const char *s, size_t n, tok_buf *out);

typedef struct {
    tok_arena arena;
    tok_added_tok *recs; /* every token as added, in order */
    size_t nrecs, caprecs;
    size_t *special_list, *added_list; /* record indices, as Hugging Face keeps them */
    size_t nspecial, nadded;
    tok_strmap map;       /* content -> id */
    tok_u64map by_id;     /* id -> record index (the latest token given that id) */
    tok_strmap special_set;
    tok_trie plain, normalized;
    int32_t max_id;
} tok_added;

/* Adds one token (Hugging Face's add_tokens for a single token). */
int tok_added_add(tok_added *av, const tok_bpe *model, const char *content, size_t len,
                  const tok_added_tok *flags);
/* Builds the matchers; call after the last add. */
int tok_added_refresh(tok_added *av, const tok_bpe *model, tok_normalize_fn norm, const void *ctx);

/* A split of text: an added token (id >= 0) or a run of plain text (id < 0). */
typedef struct {
    size_t start, end;
    int32_t id;
} tok_piece;
typedef struct {
    tok_piece *v;
    size_t n, cap;
} tok_pieces;

/* Covers s[0..n) with added-token matches (of the plain or normalized set) and the
 * text between them. 0 or -1 (out of memory). */
int tok_added_split(const tok_added *av, int normalized_set, const char *s, size_t n, tok_pieces *out);

int tok_added_id(const tok_added *av, const char *s, size_t n, int32_t *id); /* 1 found */
const char *tok_added_content(const tok_added *av, int32_t id);             /* NULL if none */
int tok_added_is_special(const tok_added *av, const char *s, size_t n);
void tok_added_free(tok_added *av);

#endif

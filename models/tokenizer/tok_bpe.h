/* The BPE model: vocabulary, merges by rank, the per-word merge loop (Hugging Face's
 * algorithm: a min-heap of (rank, position) over a linked list of symbols) and a
 * word cache shared by threads. It knows nothing of JSON, so a trainer can build one
 * from its own vocabulary and merges. */
#ifndef CT_TOK_BPE_H
#define CT_TOK_BPE_H

#include "models/tokenizer/tok_util.h"

typedef struct tok_bpe tok_bpe;

typedef struct {
    const char *unk_token;                 /* NULL: characters outside the vocabulary vanish */
    const char *continuing_subword_prefix; /* NULL or "" for none */
    const char *end_of_word_suffix;        /* NULL or "" for none */
    int fuse_unk, byte_fallback, ignore_merges;
} tok_bpe_opts;
#define TOK_BPE_OPTS_INIT {NULL, NULL, NULL, 0, 0, 0}

/* All return 0, or a negative CT_E* code with the reason in err. */
int tok_bpe_new(const tok_bpe_opts *opts, tok_bpe **out, char *err, size_t errlen);
/* Ids are >= 0; a later entry for the same string replaces the earlier one. */
int tok_bpe_add_token(tok_bpe *b, const char *s, size_t n, int32_t id, char *err, size_t errlen);
/* Merges in rank order; every part and the merged token must be in the vocabulary. */
int tok_bpe_add_merge(tok_bpe *b, const char *l, size_t ln, const char *r, size_t rn, char *err,
                      size_t errlen);
int tok_bpe_finish(tok_bpe *b, char *err, size_t errlen);

/* Appends the ids of one word (a pre-tokenized piece). Thread-safe. 0 or CT_E*. */
int tok_bpe_encode_word(const tok_bpe *b, const char *w, size_t n, tok_ids *out);

int tok_bpe_token_to_id(const tok_bpe *b, const char *s, size_t n, int32_t *id); /* 1 found */
const char *tok_bpe_id_to_token(const tok_bpe *b, int32_t id);                  /* NULL if none */
size_t tok_bpe_vocab_len(const tok_bpe *b);  /* distinct strings (HF get_vocab_size) */
int32_t tok_bpe_max_id(const tok_bpe *b);    /* -1 when empty */
void tok_bpe_free(tok_bpe *b);

#endif

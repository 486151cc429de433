/* The trainer's state, shared by the training (train.c) and the output (train_json.c). */
#ifndef CT_TOK_TRAIN_INTERNAL_H
#define CT_TOK_TRAIN_INTERNAL_H

#include "models/tokenizer/tok_pretok.h"
#include "models/tokenizer/tok_util.h"
#include "models/tokenizer/train.h"

struct ct_tok_trainer {
    ct_tok_train_opts o;
    char **specials;
    size_t nspec;

    /* counting */
    tok_pretok pt;
    tok_pretok_scratch sc;
    tok_buf nbuf;
    tok_arena warena;
    tok_strmap wmap; /* piece (byte alphabet) -> word index */
    uint64_t *wcnt;
    uint32_t *woff, *wlen;
    size_t wn, wcap;
    uint64_t pieces;

    /* vocabulary: id -> arena offset, string -> id */
    tok_arena varena;
    tok_strmap vmap;
    uint32_t *voff;
    size_t vn, vcap;

    /* merges in rank order, each pair once */
    uint32_t (*merges)[2];
    size_t nmerges;
    int trained;
};

static inline const char *tok_train_vocab_str(const ct_tok_trainer *t, uint32_t id)
{
    return tok_arena_str(&t->varena, t->voff[id]);
}

#endif

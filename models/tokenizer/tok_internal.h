/* The parts of a loaded tokenizer, shared by the JSON loader and the encoder. */
#ifndef CT_TOK_INTERNAL_H
#define CT_TOK_INTERNAL_H

#include "models/tokenizer/tok_added.h"
#include "models/tokenizer/tok_bpe.h"
#include "models/tokenizer/tok_pretok.h"
#include "models/tokenizer/tokenizer.h"

enum { TOK_NORM_NONE, TOK_NORM_NFC };
enum { TOK_DEC_NONE, TOK_DEC_BYTELEVEL };

struct ct_tokenizer {
    char *name; /* the file, for messages */
    int normalizer;
    tok_pretok pretok;
    tok_bpe *bpe;
    tok_added added;
    int decoder;
};

int tok_normalize(const void *tok, const char *s, size_t n, tok_buf *out);

#endif

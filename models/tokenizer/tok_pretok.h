/* Pre-tokenizers of tokenizer.json: ByteLevel (GPT-2 regex split + byte alphabet),
 * Split (regex or string, five delimiter behaviors, invert) and Sequence. */
#ifndef CT_TOK_PRETOK_H
#define CT_TOK_PRETOK_H

#include "models/tokenizer/tok_regex.h"

enum { TOK_PT_BYTELEVEL, TOK_PT_SPLIT };
enum { TOK_SPLIT_REMOVED, TOK_SPLIT_ISOLATED, TOK_SPLIT_MERGED_WITH_PREVIOUS,
       TOK_SPLIT_MERGED_WITH_NEXT, TOK_SPLIT_CONTIGUOUS };

typedef struct {
    int kind;
    int add_prefix_space, use_regex; /* ByteLevel */
    int behavior, invert;            /* Split */
    tok_regex *re;                   /* Split's pattern, or ByteLevel's GPT-2 regex */
} tok_pretok_step;

typedef struct {
    tok_pretok_step *steps;
    size_t n;
} tok_pretok;

/* Work space reused across calls by one thread. */
typedef struct {
    tok_buf buf[2];
    tok_spans pieces[2];
    tok_spans matches, keep, cover;
    int *flags;
    size_t flags_cap;
} tok_pretok_scratch;

/* Splits s[0..n) into pieces; on return *buf holds them and *pieces their ranges
 * (pointers into the scratch). 0, or -1 on failure (out of memory, matcher limit). */
int tok_pretok_run(const tok_pretok *pt, const char *s, size_t n, tok_pretok_scratch *sc,
                   const tok_buf **buf, const tok_spans **pieces);
void tok_pretok_scratch_free(tok_pretok_scratch *sc);
void tok_pretok_free(tok_pretok *pt);

/* The regex of GPT-2's ByteLevel pre-tokenizer. */
extern const char tok_gpt2_pattern[];

#endif

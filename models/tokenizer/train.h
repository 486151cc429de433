/* Training a byte-level BPE tokenizer as Hugging Face `tokenizers` trains GPT-NeoX-20B's
 * (BpeTrainer with the ByteLevel alphabet as initial alphabet), written as a
 * tokenizer.json that ct_tok_load reads and that is byte for byte what the library's
 * save(pretty) writes for the same model: ByteLevel pre-tokenizer (add_prefix_space
 * false, trim_offsets true, use_regex true), the same ByteLevel post-processor and
 * decoder, NFC or no normalizer, the vocabulary in id order, merges as [left, right].
 *
 * Documents are NFC-normalized (unless opts.nfc is 0) and split by the ByteLevel
 * pre-tokenizer (GPT-2's regex, no prefix space); the distinct pieces are counted. The
 * vocabulary is the special tokens (ids 0..), the 256 byte symbols sorted by code point,
 * then one token per merge. Each step merges the most frequent adjacent pair of symbols
 * (overlapping occurrences counted, as the library counts them); equal counts go to the
 * pair with the smaller (left id, right id) — ids, not strings. Training stops when the
 * vocabulary reaches vocab_size, or when the best pair occurs fewer than min_frequency
 * times. Pair counts are updated incrementally from the words a merge touches, with a
 * lazily refreshed max-heap, so a merge costs time in the words it changes only.
 *
 * Same documents in the same order and the same options -> byte-identical files. */
#ifndef CT_TOK_TRAIN_H
#define CT_TOK_TRAIN_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    size_t vocab_size;      /* special tokens + 256 byte symbols + merges */
    uint64_t min_frequency; /* least occurrences of a pair to merge it (0 and 1: any) */
    /* NULL: GPT-NeoX's "<|endoftext|>" (id 0) and "<|padding|>" (id 1). Special tokens
     * are vocabulary entries and added tokens; training text is not searched for them. */
    const char *const *special_tokens;
    size_t n_special;
    int nfc;      /* 1: NFC before pre-tokenizing, and an NFC normalizer in the file */
    int progress; /* 1: a progress line while merging (common/progress.h) */
} ct_tok_train_opts;
#define CT_TOK_TRAIN_OPTS_INIT {4096, 2, NULL, 0, 1, 0}

typedef struct ct_tok_trainer ct_tok_trainer; /* opaque */

int ct_tok_trainer_new(const ct_tok_train_opts *opts, ct_tok_trainer **out);

/* Counts the pieces of one document (UTF-8; invalid UTF-8 is CT_EINVAL). Not after
 * ct_tok_trainer_train. */
int ct_tok_trainer_feed(ct_tok_trainer *t, const char *text, size_t len);

/* Computes the merges from everything fed so far. Once only. */
int ct_tok_trainer_train(ct_tok_trainer *t);

/* The tokenizer.json text (after train): malloc'd, NUL-terminated; the caller frees it. */
int ct_tok_trainer_json(const ct_tok_trainer *t, char **json, size_t *len);
/* The same written atomically to `path`. */
int ct_tok_trainer_save(const ct_tok_trainer *t, const char *path);

/* Statistics: pieces fed, distinct pieces, vocabulary size and merges (after train). */
typedef struct {
    uint64_t pieces, distinct;
    size_t vocab, merges;
} ct_tok_train_stats;
void ct_tok_trainer_stats(const ct_tok_trainer *t, ct_tok_train_stats *st);

/* The merge of rank `rank` (after train) as token strings in the byte alphabet, owned
 * by the trainer. CT_EINVAL when out of range. */
int ct_tok_trainer_merge(const ct_tok_trainer *t, size_t rank, const char **left, const char **right);

void ct_tok_trainer_free(ct_tok_trainer *t); /* NULL ok */

#endif

/* Hugging Face tokenizer.json for byte-level BPE (GPT-NeoX-20B/Pythia, OLMo, BLOOM,
 * GPT-2), reproducing the `tokenizers` library's ids exactly.
 *
 * Supported: model BPE (vocab, merges as "a b" strings or [a, b] pairs, unk_token,
 * fuse_unk, byte_fallback, continuing_subword_prefix, end_of_word_suffix,
 * ignore_merges; dropout must be null/0); normalizer null, NFC or a Sequence of NFC;
 * pre-tokenizer null, ByteLevel, Split (regex or string; Removed, Isolated,
 * MergedWithPrevious, MergedWithNext, Contiguous; invert) or a Sequence of these;
 * decoder null or ByteLevel; added tokens with special/normalized/single_word/
 * lstrip/rstrip. The post-processor is ignored: encoding never adds special tokens.
 * Anything else is refused with an error naming the file and the type.
 *
 * A loaded tokenizer is immutable apart from an internal word cache that is locked,
 * so one ct_tokenizer may encode and decode from many threads at once. */
#ifndef CT_TOKENIZER_H
#define CT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct ct_tokenizer ct_tokenizer;

/* Loads a tokenizer.json (plain, .gz or .zst). The caller frees *out with ct_tok_free. */
int ct_tok_load(const char *path, ct_tokenizer **out);
/* The same from a JSON text in memory; `name` is used in error messages. */
int ct_tok_load_json(const char *json, size_t len, const char *name, ct_tokenizer **out);

/* Token ids of text[0..len) (UTF-8; invalid UTF-8 is CT_EINVAL), without special
 * tokens added. *ids is malloc'd (NULL when *n == 0); the caller frees it. */
int ct_tok_encode(const ct_tokenizer *tok, const char *text, size_t len, int32_t **ids, size_t *n);

/* Text of ids (unknown ids are skipped, as Hugging Face does; with skip_special the
 * special added tokens too). Invalid UTF-8 produced by byte tokens becomes U+FFFD.
 * *text is malloc'd and NUL-terminated; the caller frees it. */
int ct_tok_decode(const ct_tokenizer *tok, const int32_t *ids, size_t n, int skip_special,
                  char **text, size_t *len);

/* 1 + the largest id the tokenizer knows (model vocabulary and added tokens). */
int ct_tok_vocab_size(const ct_tokenizer *tok, size_t *size);

/* Id of a token string (added tokens first, then the model vocabulary), or -1. */
int32_t ct_tok_token_id(const ct_tokenizer *tok, const char *token);

/* Token string of an id, or NULL; owned by the tokenizer. */
const char *ct_tok_id_to_token(const ct_tokenizer *tok, int32_t id);

/* 1 when id is a special added token, else 0. */
int ct_tok_is_special(const ct_tokenizer *tok, int32_t id);

void ct_tok_free(ct_tokenizer *tok); /* NULL ok */

#endif

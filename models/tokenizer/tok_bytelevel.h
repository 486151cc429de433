/* GPT-2's byte-level alphabet (bytes_to_unicode): every byte becomes one printable
 * code point, so BPE never sees raw bytes; plus the byte-level decoder. */
#ifndef CT_TOK_BYTELEVEL_H
#define CT_TOK_BYTELEVEL_H

#include "models/tokenizer/tok_util.h"

/* Appends the byte-level image of s[0..n). */
int tok_bytelevel_map(const char *s, size_t n, tok_buf *out);
/* Appends the bytes a token stands for: when every character of the token belongs to
 * the alphabet its bytes, else the token's own UTF-8 (as Hugging Face's decoder). */
int tok_bytelevel_unmap(const char *tok, size_t n, tok_buf *out);
/* Appends s with each maximal invalid UTF-8 subsequence replaced by U+FFFD (Rust's
 * String::from_utf8_lossy). */
int tok_utf8_lossy(const char *s, size_t n, tok_buf *out);

#endif

/* Unicode NFC (canonical decomposition, reordering, canonical composition), as the
 * "NFC" normalizer of tokenizer.json applies it. */
#ifndef CT_TOK_NFC_H
#define CT_TOK_NFC_H

#include "models/tokenizer/tok_util.h"

/* Appends NFC(s[0..n)) to out; `s` must be valid UTF-8. 0 or -1 (out of memory). */
int tok_nfc(const char *s, size_t n, tok_buf *out);

#endif

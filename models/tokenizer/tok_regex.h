/* The regular expressions of tokenizer.json (written for Oniguruma) run through PCRE2
 * with Unicode properties, with Oniguruma's match iteration. */
#ifndef CT_TOK_REGEX_H
#define CT_TOK_REGEX_H

#include "models/tokenizer/tok_util.h"

typedef struct tok_regex tok_regex;

/* Compiles an Oniguruma pattern (or, with `literal`, a plain string). On failure
 * returns -1 with a reason in err. */
int tok_regex_compile(const char *pattern, size_t len, int literal, tok_regex **out, char *err,
                      size_t errlen);
/* Appends every match in s[0..n) (valid UTF-8), leftmost first, non-overlapping, an
 * empty match right after the previous match skipped (as Oniguruma's find_iter).
 * 0, or -1 when the matcher fails (resource limits). */
int tok_regex_find_all(const tok_regex *re, const char *s, size_t n, tok_spans *out);
void tok_regex_free(tok_regex *re);

/* Translation of Oniguruma syntax to PCRE2 (exposed for tests): 0, or -1 with err. */
int tok_regex_translate(const char *pattern, size_t len, tok_buf *out, char *err, size_t errlen);

#endif

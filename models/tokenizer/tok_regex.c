#define PCRE2_CODE_UNIT_WIDTH 8
#include "models/tokenizer/tok_regex.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tok_regex {
    pcre2_code *code;
    int jit;
};

/* Oniguruma's \s is Unicode White_Space; PCRE2's (with UCP) also takes U+180E and
 * differs between versions, so the class is spelled out. */
#define WS_ITEMS "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
/* Oniguruma's \w: letters, marks, decimal numbers, connector punctuation. */
#define WORD_ITEMS "\\p{L}\\p{M}\\p{Nd}\\p{Pc}"
#define HEX_ITEMS "0-9a-fA-F"

static int put(tok_buf *o, const char *s) { return tok_buf_put(o, s, strlen(s)); }

/* Copies one escape sequence starting at p[i] == '\\'; returns the new index. */
static size_t copy_escape(const char *p, size_t n, size_t i, tok_buf *o, int in_class, int *err)
{
    if (i + 1 >= n) {
        *err = 1;
        return n;
    }
    char c = p[i + 1];
    const char *rep = NULL;
    if (in_class) {
        switch (c) {
        case 's': rep = WS_ITEMS; break;
        case 'w': rep = WORD_ITEMS; break;
        case 'h': rep = HEX_ITEMS; break;
        case 'd': rep = "\\p{Nd}"; break;
        case 'D': rep = "\\P{Nd}"; break;
        case 'S': case 'W': case 'H': *err = 2; return n;
        default: break;
        }
    } else {
        switch (c) {
        case 's': rep = "[" WS_ITEMS "]"; break;
        case 'S': rep = "[^" WS_ITEMS "]"; break;
        case 'w': rep = "[" WORD_ITEMS "]"; break;
        case 'W': rep = "[^" WORD_ITEMS "]"; break;
        case 'h': rep = "[" HEX_ITEMS "]"; break;
        case 'H': rep = "[^" HEX_ITEMS "]"; break;
        case 'd': rep = "\\p{Nd}"; break;
        case 'D': rep = "\\P{Nd}"; break;
        default: break;
        }
    }
    if (rep) {
        if (put(o, rep))
            *err = 3;
        return i + 2;
    }
    int l = tok_utf8_len((unsigned char)c);
    if (!l)
        l = 1;
    if (i + 1 + (size_t)l > n) {
        *err = 1;
        return n;
    }
    if (tok_buf_put(o, p + i, 1 + (size_t)l))
        *err = 3;
    return i + 1 + (size_t)l;
}

/* Copies the body of a character class starting after its '[' (and '^'); nested
 * positive classes are unions in Oniguruma, so their items are inlined. Returns the
 * index after the closing ']'. */
static size_t copy_class(const char *p, size_t n, size_t i, tok_buf *o, int *err)
{
    int first = 1;
    while (i < n && !*err) {
        char c = p[i];
        if (c == ']' && !first)
            return i + 1;
        first = 0;
        if (c == '\\') {
            i = copy_escape(p, n, i, o, 1, err);
        } else if (c == '[' && i + 1 < n && p[i + 1] == ':') {
            const char *end = strstr(p + i, ":]");
            if (!end || (size_t)(end - p) >= n) {
                *err = 1;
                return n;
            }
            size_t l = (size_t)(end - p) + 2 - i;
            if (tok_buf_put(o, p + i, l))
                *err = 3;
            i += l;
        } else if (c == '[') {
            if (i + 1 < n && p[i + 1] == '^') {
                *err = 4; /* a negated class inside a class has no PCRE2 spelling */
                return n;
            }
            i = copy_class(p, n, i + 1, o, err);
        } else if (c == '&' && i + 1 < n && p[i + 1] == '&') {
            *err = 5; /* class intersection */
            return n;
        } else {
            if (c == '[' || c == ']') {
                if (put(o, "\\"))
                    *err = 3;
            }
            if (tok_buf_put(o, p + i, 1))
                *err = 3;
            i++;
        }
    }
    if (!*err)
        *err = 1;
    return n;
}

int tok_regex_translate(const char *p, size_t n, tok_buf *o, char *errbuf, size_t errlen)
{
    int err = 0;
    size_t i = 0;
    o->n = 0;
    if (tok_buf_reserve(o, n + 16))
        err = 3;
    while (i < n && !err) {
        char c = p[i];
        if (c == '\\') {
            i = copy_escape(p, n, i, o, 0, &err);
        } else if (c == '[') {
            int neg = i + 1 < n && p[i + 1] == '^';
            if (put(o, neg ? "[^" : "["))
                err = 3;
            i = copy_class(p, n, i + 1 + (size_t)neg, o, &err);
            if (!err && put(o, "]"))
                err = 3;
        } else {
            if (tok_buf_put(o, p + i, 1))
                err = 3;
            i++;
        }
    }
    static const char *why[] = {"", "unterminated escape or class",
                                "\\S, \\W or \\H inside a character class is not supported",
                                "out of memory", "a negated class nested in a class is not supported",
                                "class intersection (&&) is not supported"};
    if (err) {
        snprintf(errbuf, errlen, "%s", why[err]);
        return -1;
    }
    return 0;
}

int tok_regex_compile(const char *pattern, size_t len, int literal, tok_regex **out, char *err,
                      size_t errlen)
{
    tok_buf tr = {0};
    const char *pat = pattern;
    size_t plen = len;
    if (!literal) {
        if (tok_regex_translate(pattern, len, &tr, err, errlen)) {
            free(tr.p);
            return -1;
        }
        pat = tr.p;
        plen = tr.n;
    }
    int ec;
    PCRE2_SIZE eoff;
    uint32_t opts = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pat, plen, opts, &ec, &eoff, NULL);
    if (!code) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        snprintf(err, errlen, "%s at offset %zu of \"%.*s\"", (const char *)msg, (size_t)eoff,
                 (int)(plen > 200 ? 200 : plen), pat);
        free(tr.p);
        return -1;
    }
    free(tr.p);
    tok_regex *re = calloc(1, sizeof *re);
    if (!re) {
        pcre2_code_free(code);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    re->code = code;
    re->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    *out = re;
    return 0;
}

int tok_regex_find_all(const tok_regex *re, const char *s, size_t n, tok_spans *out)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re->code, NULL);
    if (!md)
        return -1;
    size_t pos = 0, last_end = 0;
    int have_last = 0, rc = 0;
    while (pos <= n) {
        int m = pcre2_match(re->code, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (m == PCRE2_ERROR_JIT_STACKLIMIT)
            m = pcre2_match(re->code, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, NULL);
        if (m == PCRE2_ERROR_NOMATCH)
            break;
        if (m < 0) {
            rc = -1;
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t st = ov[0], en = ov[1];
        if (st == en && have_last && last_end == en) {
            /* Oniguruma steps one character past an empty match at the previous end. */
            if (pos >= n)
                break;
            int l = tok_utf8_len((unsigned char)s[pos]);
            pos += l ? (size_t)l : 1;
            continue;
        }
        if (tok_spans_push(out, st, en)) {
            rc = -1;
            break;
        }
        have_last = 1;
        last_end = en;
        pos = en;
    }
    pcre2_match_data_free(md);
    return rc;
}

void tok_regex_free(tok_regex *re)
{
    if (!re)
        return;
    pcre2_code_free(re->code);
    free(re);
}

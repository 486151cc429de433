/* The document stream over a corpus's files: one file open at a time, line by line. */
#include "models/corpus/corpus.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/io.h"
#include "models/corpus/corpus_internal.h"


int ct_corpus_format_parse(const char *name, ct_corpus_format *out)
{
    if (name && !strcmp(name, "text")) {
        *out = CT_CORPUS_TEXT;
        return 0;
    }
    if (name && !strcmp(name, "jsonl")) {
        *out = CT_CORPUS_JSONL;
        return 0;
    }
    return ct_error_set(CT_EINVAL, "corpus format \"%s\" is unknown (expected text or jsonl)",
                        name ? name : "(null)");
}

/* Offset of the first byte that does not belong to valid UTF-8 (Unicode scalar values
 * only, shortest form), or n when the whole text is valid. */
static size_t utf8_check(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* Eight ASCII bytes at a time: most of a European corpus. */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            lo = c == 0xE0 ? 0xA0 : 0x80;
            hi = c == 0xED ? 0x9F : 0xBF;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            lo = c == 0xF0 ? 0x90 : 0x80;
            hi = c == 0xF4 ? 0x8F : 0xBF;
        } else {
            return i;
        }
        if (n - i <= need || s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
        i += need + 1;
    }
    return n;
}

int ct_corpus_open(const char *const *files, size_t n, ct_corpus_format fmt, const char *text_field,
                   ct_corpus **out)
{
    *out = NULL;
    if (fmt != CT_CORPUS_TEXT && fmt != CT_CORPUS_JSONL)
        return ct_error_set(CT_EINVAL, "corpus: unknown format %d", (int)fmt);
    if (n == 0)
        return ct_error_set(CT_EINVAL, "corpus: no files given");
    ct_corpus *c = calloc(1, sizeof *c);
    if (!c)
        return ct_error_set(CT_ENOMEM, "out of memory");
    c->fmt = fmt;
    c->field = strdup(text_field && *text_field ? text_field : "text");
    if (!c->field) {
        free(c);
        return ct_error_set(CT_ENOMEM, "out of memory");
    }
    int rc = ct_corpus_expand(files, n, &c->files, &c->nfiles);
    if (rc) {
        ct_corpus_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

static int fail(ct_corpus *c, int rc)
{
    ct_reader_close(c->r);
    c->r = NULL;
    c->done = 1;
    c->have_doc = 0;
    return rc;
}

/* A jsonl line -> its text field. */
static int parse_jsonl(ct_corpus *c, const char *s, size_t n, const char **text, size_t *len)
{
    const char *file = c->files[c->cur];
    json_error_t je;
    json_t *v = json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!v)
        return ct_error_set(CT_EINVAL, "%s:%zu: not valid JSON: %s (column %d)", file, c->line, je.text,
                            je.column);
    if (!json_is_object(v)) {
        json_decref(v);
        return ct_error_set(CT_EINVAL, "%s:%zu: expected a JSON object", file, c->line);
    }
    json_t *f = json_object_get(v, c->field);
    if (!f) {
        json_decref(v);
        return ct_error_set(CT_EINVAL, "%s:%zu: the object has no \"%s\" field", file, c->line, c->field);
    }
    if (!json_is_string(f)) {
        json_decref(v);
        return ct_error_set(CT_EINVAL, "%s:%zu: the \"%s\" field is not a string", file, c->line, c->field);
    }
    c->doc = v;
    *text = json_string_value(f);
    *len = json_string_length(f);
    return 0;
}

int ct_corpus_next(ct_corpus *c, const char **text, size_t *len)
{
    if (c->langs)
        return ct_corpus_mix_next(c, text, len);
    json_decref(c->doc);
    c->doc = NULL;
    while (!c->done) {
        if (!c->r) {
            if (c->cur >= c->nfiles) {
                c->done = 1;
                break;
            }
            int rc = ct_reader_open(c->files[c->cur], &c->r);
            if (rc)
                return fail(c, ct_error_wrap(rc, "corpus"));
            c->line = 0;
        }
        const char *s;
        size_t n;
        int got = ct_reader_getline(c->r, &s, &n);
        if (got < 0)
            return fail(c, got);
        if (got == 0) {
            ct_reader_close(c->r);
            c->r = NULL;
            c->cur++;
            continue;
        }
        c->line++;
        if (c->fmt == CT_CORPUS_JSONL) {
            size_t k = 0;
            while (k < n && (s[k] == ' ' || s[k] == '\t'))
                k++;
            if (k == n)
                continue;
            int rc = parse_jsonl(c, s, n, text, len);
            if (rc)
                return fail(c, rc);
        } else {
            if (n == 0)
                continue;
            size_t bad = utf8_check((const unsigned char *)s, n);
            if (bad != n)
                return fail(c, ct_error_set(CT_EINVAL, "%s:%zu: invalid UTF-8 at byte %zu of the line",
                                            c->files[c->cur], c->line, bad + 1));
            *text = s;
            *len = n;
        }
        c->have_doc = 1;
        c->doc_line = c->line;
        return 1;
    }
    c->have_doc = 0;
    return 0;
}

void ct_corpus_where(const ct_corpus *c, const char **file, size_t *line)
{
    if (c && c->langs) {
        ct_corpus_where(c->cur_lang >= 0 ? c->langs[c->cur_lang].c : NULL, file, line);
        return;
    }
    int ok = c && c->have_doc && c->cur < c->nfiles;
    if (file)
        *file = ok ? c->files[c->cur] : NULL;
    if (line)
        *line = ok ? c->doc_line : 0;
}

size_t ct_corpus_n_files(const ct_corpus *c)
{
    if (c && c->langs) {
        size_t n = 0;
        for (size_t l = 0; l < c->nlang; l++)
            n += c->langs[l].c->nfiles;
        return n;
    }
    return c ? c->nfiles : 0;
}

const char *ct_corpus_file(const ct_corpus *c, size_t i)
{
    if (c && c->langs) {
        for (size_t l = 0; l < c->nlang; l++) {
            if (i < c->langs[l].c->nfiles)
                return c->langs[l].c->files[i];
            i -= c->langs[l].c->nfiles;
        }
        return NULL;
    }
    return c && i < c->nfiles ? c->files[i] : NULL;
}

size_t ct_corpus_file_index(const ct_corpus *c)
{
    if (c && c->langs) { /* files finished or open, over all languages: a progress count */
        size_t n = 0;
        for (size_t l = 0; l < c->nlang; l++)
            n += c->langs[l].c->cur;
        return n;
    }
    return c ? c->cur : 0;
}

void ct_corpus_close(ct_corpus *c)
{
    if (!c)
        return;
    ct_corpus_mix_free(c);
    json_decref(c->doc);
    ct_reader_close(c->r);
    ct_corpus_paths_free(c->files, c->nfiles);
    free(c->field);
    free(c);
}

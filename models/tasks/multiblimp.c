/* MultiBLiMP files, in either of the forms they circulate in:
 *   - the upstream TSV (the Hugging Face dataset's <lang>/data.tsv): a header row naming
 *     the columns (sen, wrong_sen, prefix, phenomenon, verb, swap_head, lang, ...), CSV
 *     quoting with '"' (a quoted field may hold tabs, doubled quotes and newlines);
 *   - JSON lines with the same field names, or with sentence_good/sentence_bad.
 * The pair is derived from the two sentences (they differ in the agreeing word); an
 * upstream prefix column is checked against the derived prefix. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "models/tasks/tasks_internal.h"

typedef struct {
    char *buf; /* unescaped fields, each NUL-terminated */
    size_t len, cap;
    size_t *off; /* start of each field in buf */
    size_t n, ncap;
} record;

static int rec_putc(record *r, char c)
{
    if (r->len == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 4096;
        char *b = realloc(r->buf, cap);
        if (!b)
            return ct_error_set(CT_ENOMEM, "out of memory");
        r->buf = b;
        r->cap = cap;
    }
    r->buf[r->len++] = c;
    return 0;
}

static int rec_start_field(record *r)
{
    if (r->n == r->ncap) {
        size_t cap = r->ncap ? r->ncap * 2 : 64;
        size_t *o = realloc(r->off, cap * sizeof *o);
        if (!o)
            return ct_error_set(CT_ENOMEM, "out of memory");
        r->off = o;
        r->ncap = cap;
    }
    r->off[r->n++] = r->len;
    return 0;
}

/* Reads one record starting at *pos; advances *pos and *lineno past it. */
static int read_record(const char *path, const char *d, size_t len, size_t *pos, size_t *lineno, record *r)
{
    r->len = r->n = 0;
    size_t i = *pos;
    int rc;
    for (;;) {
        if ((rc = rec_start_field(r)))
            return rc;
        if (i < len && d[i] == '"') {
            size_t open_line = *lineno;
            i++;
            for (;;) {
                if (i >= len)
                    return ct_error_set(CT_EFORMAT, "%s:%zu: quoted field never closed", path, open_line);
                if (d[i] == '"') {
                    if (i + 1 < len && d[i + 1] == '"') {
                        if ((rc = rec_putc(r, '"')))
                            return rc;
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                if (d[i] == '\n')
                    (*lineno)++;
                if ((rc = rec_putc(r, d[i++])))
                    return rc;
            }
            if (i < len && d[i] == '\r')
                i++;
            if (i < len && d[i] != '\t' && d[i] != '\n')
                return ct_error_set(CT_EFORMAT, "%s:%zu: text after the closing quote of a field", path,
                                    *lineno);
        } else {
            while (i < len && d[i] != '\t' && d[i] != '\n') {
                if (d[i] != '\r' || (i + 1 < len && d[i + 1] != '\n'))
                    if ((rc = rec_putc(r, d[i])))
                        return rc;
                i++;
            }
        }
        if ((rc = rec_putc(r, '\0')))
            return rc;
        if (i < len && d[i] == '\t') {
            i++;
            continue;
        }
        if (i < len) /* '\n' */
            i++;
        (*lineno)++;
        break;
    }
    *pos = i;
    return 0;
}

static int column(const record *h, const char *name)
{
    for (size_t k = 0; k < h->n; k++)
        if (strcmp(h->buf + h->off[k], name) == 0)
            return (int)k;
    return -1;
}

static int check_utf8(const char *path, size_t line, const char *s)
{
    if (!ct_task_utf8_valid(s, strlen(s)))
        return ct_error_set(CT_EFORMAT, "%s:%zu: invalid UTF-8 or a NUL byte", path, line);
    return 0;
}

static int add(ct_task *t, const char *path, size_t line, const char *good, const char *bad,
               const char *prefix, const char *phen)
{
    int rc = check_utf8(path, line, good);
    if (!rc)
        rc = check_utf8(path, line, bad);
    if (!rc && prefix)
        rc = check_utf8(path, line, prefix);
    if (!rc && phen)
        rc = check_utf8(path, line, phen);
    if (rc)
        return rc;
    return ct_task_add_sentences(t, good, strlen(good), bad, strlen(bad), prefix, phen, line);
}

static int read_tsv(ct_task *t, const char *path, const char *d, size_t len)
{
    const char *nul = memchr(d, '\0', len);
    if (nul) {
        size_t line = 1;
        for (const char *p = d; p < nul; p++)
            line += *p == '\n';
        return ct_error_set(CT_EFORMAT, "%s:%zu: NUL byte", path, line);
    }
    record h = {0}, r = {0};
    size_t pos = 0, lineno = 1;
    int rc = read_record(path, d, len, &pos, &lineno, &h);
    int c_good = -1, c_bad = -1, c_prefix = -1, c_phen = -1;
    if (!rc) {
        c_good = column(&h, "sen") >= 0 ? column(&h, "sen") : column(&h, "sentence_good");
        c_bad = column(&h, "wrong_sen") >= 0 ? column(&h, "wrong_sen") : column(&h, "sentence_bad");
        c_prefix = column(&h, "prefix");
        c_phen = column(&h, "phenomenon");
        if (c_good < 0 || c_bad < 0)
            rc = ct_error_set(CT_EFORMAT,
                              "%s:1: the header names no \"sen\" and \"wrong_sen\" columns "
                              "(nor sentence_good/sentence_bad)",
                              path);
    }
    while (!rc && pos < len) {
        size_t line = lineno;
        rc = read_record(path, d, len, &pos, &lineno, &r);
        if (rc)
            break;
        if (r.n == 1 && r.buf[0] == '\0')
            continue; /* blank line */
        if (r.n != h.n) {
            rc = ct_error_set(CT_EFORMAT, "%s:%zu: %zu fields, the header has %zu", path, line, r.n, h.n);
            break;
        }
        rc = add(t, path, line, r.buf + r.off[c_good], r.buf + r.off[c_bad],
                 c_prefix >= 0 ? r.buf + r.off[c_prefix] : NULL, c_phen >= 0 ? r.buf + r.off[c_phen] : NULL);
    }
    free(h.buf);
    free(h.off);
    free(r.buf);
    free(r.off);
    return rc;
}

static int read_jsonl(ct_task *t, const char *path, const char *d, size_t len)
{
    size_t pos = 0, lineno = 0;
    while (pos < len) {
        const char *line = d + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + 1;
        lineno++;
        size_t k = 0;
        while (k < n && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r'))
            k++;
        if (k == n)
            continue;
        json_error_t je;
        json_t *o = json_loadb(line, n, 0, &je);
        if (!o)
            return ct_error_set(CT_EFORMAT, "%s:%zu: not a JSON object (%s)", path, lineno, je.text);
        const char *good = NULL, *bad = NULL, *prefix = NULL, *phen = NULL;
        int rc = 0;
        if (!json_is_object(o)) {
            rc = ct_error_set(CT_EFORMAT, "%s:%zu: expected a JSON object", path, lineno);
        } else {
            int g = ct_task_json_string(o, "sen", &good), b = ct_task_json_string(o, "wrong_sen", &bad);
            if (g == 0)
                g = ct_task_json_string(o, "sentence_good", &good);
            if (b == 0)
                b = ct_task_json_string(o, "sentence_bad", &bad);
            int p = ct_task_json_string(o, "prefix", &prefix), f = ct_task_json_string(o, "phenomenon", &phen);
            if (g <= 0 || b <= 0)
                rc = ct_error_set(CT_EFORMAT,
                                  "%s:%zu: missing string fields \"sen\"/\"wrong_sen\" "
                                  "(or \"sentence_good\"/\"sentence_bad\")",
                                  path, lineno);
            else if (p < 0 || f < 0)
                rc = ct_error_set(CT_EFORMAT, "%s:%zu: field \"%s\" is not a string", path, lineno,
                                  p < 0 ? "prefix" : "phenomenon");
            else
                rc = add(t, path, lineno, good, bad, prefix, phen);
        }
        json_decref(o);
        if (rc)
            return rc;
    }
    return 0;
}

int ct_task_read_multiblimp(ct_task *t, const char *path, const char *data, size_t len)
{
    size_t k = 0;
    while (k < len && (data[k] == ' ' || data[k] == '\t' || data[k] == '\r' || data[k] == '\n'))
        k++;
    if (k == len)
        return ct_error_set(CT_EFORMAT, "%s: no pairs in the file", path);
    return data[k] == '{' ? read_jsonl(t, path, data, len) : read_tsv(t, path, data, len);
}

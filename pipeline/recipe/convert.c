#include "pipeline/recipe/check.h"
#include "pipeline/recipe/yaml.h"

#include "common/error.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_CAP 1024

typedef struct {
    ct_rarena *a;
    ct_rlocs *locs;
} conv;

void ct_rlocs_free(ct_rlocs *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].path);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static int cmp_loc(const void *x, const void *y)
{
    return strcmp(((const ct_rloc *)x)->path, ((const ct_rloc *)y)->path);
}

void ct_rlocs_sort(ct_rlocs *l)
{
    if (l->n)
        qsort(l->v, l->n, sizeof *l->v, cmp_loc);
}

const ct_rloc *ct_rlocs_find(const ct_rlocs *l, const char *path)
{
    ct_rloc key = {.path = (char *)path};
    return l->n ? bsearch(&key, l->v, l->n, sizeof *l->v, cmp_loc) : NULL;
}

static int locs_add(ct_rlocs *l, const char *path, const ct_rnode *n)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        ct_rloc *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return ct_error_set(CT_ENOMEM, "out of memory");
        l->v = v;
        l->cap = cap;
    }
    char *p = strdup(path);
    if (!p)
        return ct_error_set(CT_ENOMEM, "out of memory");
    l->v[l->n++] = (ct_rloc){p, n->file, n->line, n->col};
    return 0;
}

int ct_rerror_at(const char *file, int line, int col, const char *path, const char *fmt, ...)
{
    char msg[1536], where[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(where, sizeof where, "%s:%d:%d", file, line, col);
    else
        snprintf(where, sizeof where, "%s", file);
    if (path && *path)
        return ct_error_set(CT_EINVAL, "%s: %s: %s", where, path, msg);
    return ct_error_set(CT_EINVAL, "%s: %s", where, msg);
}

static int err_node(const ct_rnode *n, const char *path, const char *msg)
{
    return ct_rerror_at(n->file, n->line, n->col, path, "%s", msg);
}

static int expected(const ct_sfield *f, const ct_rnode *n, const char *path)
{
    char what[320], got[128], msg[512];
    if (f->expect)
        snprintf(what, sizeof what, "%s", f->expect);
    else
        ct_sfield_expected(f, what, sizeof what);
    ct_rnode_describe(n, got, sizeof got);
    snprintf(msg, sizeof msg, "expected %s, got %s", what, got);
    return err_node(n, path, msg);
}

static int out_of_range(const ct_sfield *f, const ct_rnode *n, const char *path, double v)
{
    char what[64], got[128], msg[320];
    ct_sfield_expected(f, what, sizeof what);
    ct_rnode_describe(n, got, sizeof got);
    if ((f->flags & CT_SF_MIN) && v < f->min) {
        if ((f->flags & CT_SF_MAX))
            snprintf(msg, sizeof msg, "expected %s in [%g, %g], got %s", what, f->min, f->max, got);
        else
            snprintf(msg, sizeof msg, "expected %s >= %g, got %s", what, f->min, got);
        return err_node(n, path, msg);
    }
    if ((f->flags & CT_SF_MAX) && v > f->max) {
        if ((f->flags & CT_SF_MIN))
            snprintf(msg, sizeof msg, "expected %s in [%g, %g], got %s", what, f->min, f->max, got);
        else
            snprintf(msg, sizeof msg, "expected %s <= %g, got %s", what, f->max, got);
        return err_node(n, path, msg);
    }
    return 0;
}

/* Copies a number's spelling without the digit-group underscores. */
static int strip_underscores(const char *s, char *buf, size_t cap)
{
    size_t k = 0;
    for (; *s; s++)
        if (*s != '_') {
            if (k + 1 >= cap)
                return -1;
            buf[k++] = *s;
        }
    buf[k] = '\0';
    return 0;
}

/* A token count, exactly: digits, optional fraction and exponent, optional suffix
 * K/M/G/B/T (B is a billion, as in "286B tokens"); the value must be a non-negative
 * integer below 2^63. Decimal arithmetic, so "1.5M" is 1500000 with no rounding. */
static int parse_size(const char *t, long long *out)
{
    int is_int;
    size_t n = ct_rnode_lex_number(t, &is_int);
    if (!n || *t == '-')
        return -1;
    int exp = 0;
    if (t[n]) {
        if (t[n + 1])
            return -1;
        switch (t[n]) {
        case 'K': case 'k': exp = 3; break;
        case 'M': exp = 6; break;
        case 'G': case 'B': exp = 9; break;
        case 'T': exp = 12; break;
        default: return -1;
        }
    }
    char digits[64];
    size_t nd = 0;
    int frac = 0, in_frac = 0;
    const char *p = t + (*t == '+');
    for (; p < t + n && *p != 'e' && *p != 'E'; p++) {
        if (*p == '_')
            continue;
        if (*p == '.') {
            in_frac = 1;
            continue;
        }
        if (nd == 0 && *p == '0') {
            frac += in_frac; /* a leading zero adds no digit, but still shifts the point */
            continue;
        }
        if (nd + 1 >= sizeof digits)
            return -1;
        digits[nd++] = *p;
        frac += in_frac;
    }
    if (p < t + n) {
        long e = strtol(p + 1, NULL, 10);
        if (e > 40 || e < -40)
            return -1;
        exp += (int)e;
    }
    exp -= frac;
    while (exp < 0 && nd && digits[nd - 1] == '0') {
        nd--;
        exp++;
    }
    if (nd == 0) {
        *out = 0;
        return 0;
    }
    if (exp < 0)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < nd; i++) {
        if (v > (UINT64_C(1) << 63) / 10)
            return -1;
        v = v * 10 + (uint64_t)(digits[i] - '0');
    }
    for (int i = 0; i < exp; i++) {
        if (v > INT64_MAX / 10)
            return -1;
        v *= 10;
    }
    if (v > INT64_MAX)
        return -1;
    *out = (long long)v;
    return 0;
}

static int convert(conv *c, const ct_sfield *f, const ct_rnode *n, char *path, size_t plen,
                   json_t **out);

static int join(char *path, size_t plen, const char *seg)
{
    int w = snprintf(path + plen, PATH_CAP - plen, "%s%s", plen ? "." : "", seg);
    if (w < 0 || (size_t)w >= PATH_CAP - plen)
        return ct_error_set(CT_EINVAL, "%s...: path too long", path);
    return 0;
}

static int scalar_of(const ct_rnode *n, int stype) { return n->kind == CT_RN_SCALAR && n->stype == stype; }

/* Optimal-string-alignment distance, case-insensitive: how far a typo is from a name. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return (size_t)-1;
    size_t d[64][64];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int same = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]);
            size_t v = d[i - 1][j - 1] + !same;
            if (d[i - 1][j] + 1 < v)
                v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == tolower((unsigned char)b[j - 1]) && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[la][lb];
}

static int unknown_field(const ct_sfield *f, const ct_rnode *key, const char *path)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1, klen = strlen(key->text);
    size_t limit = klen >= 5 ? 2 : 1;
    for (const ct_sfield *s = f->fields; s->name; s++) {
        size_t d = edit_distance(key->text, s->name);
        if (d <= limit && d < best_d && d < strlen(s->name)) {
            best = s->name;
            best_d = d;
        }
    }
    char where[PATH_CAP + 16], hint[128] = "";
    if (*path)
        snprintf(where, sizeof where, "in %s", path);
    else
        snprintf(where, sizeof where, "at top level");
    if (best)
        snprintf(hint, sizeof hint, " (did you mean '%s'?)", best);
    return ct_rerror_at(key->file, key->line, key->col, NULL, "unknown field '%.100s' %s%s",
                        key->text, where, hint);
}

/* Schema defaults are parsed like recipe text and located at "<default>". */
static void mark_default(ct_rnode *n)
{
    n->line = n->col = 0;
    for (size_t i = 0; i < n->n; i++) {
        mark_default(n->items[i]);
        if (n->keys[i])
            mark_default(n->keys[i]);
    }
}

static int default_node(conv *c, const ct_sfield *f, ct_rnode **out)
{
    int rc = ct_ryaml_parse(c->a, "<default>", f->def, strlen(f->def), 0, 0, out);
    if (rc)
        return rc;
    if (!*out)
        return ct_error_set(CT_EINVAL, "schema default of '%s' is empty", f->name);
    mark_default(*out);
    return 0;
}

static int convert_map(conv *c, const ct_sfield *f, const ct_rnode *n, char *path, size_t plen,
                       json_t **out)
{
    size_t nf = 0;
    while (f->fields[nf].name)
        nf++;
    json_t *vals[64] = {0};
    if (nf > 64)
        return ct_error_set(CT_EINVAL, "schema map too large");
    int rc = 0;
    long toy = f == &ct_recipe_schema ? ct_rnode_find(n, "toy") : -1;
    int is_toy = toy >= 0 && !ct_rnode_is_null(n->items[toy]);
    for (size_t i = 0; i < n->n && !rc; i++) {
        const ct_rnode *k = n->keys[i];
        size_t j = 0;
        while (j < nf && strcmp(f->fields[j].name, k->text) != 0)
            j++;
        if (j == nf) {
            rc = unknown_field(f, k, path);
            break;
        }
        if (ct_rnode_is_null(n->items[i]))
            continue; /* null means absent: the default applies */
        if (!(rc = join(path, plen, k->text)))
            rc = convert(c, &f->fields[j], n->items[i], path, strlen(path), &vals[j]);
        path[plen] = '\0';
    }
    for (size_t j = 0; j < nf && !rc; j++) {
        const ct_sfield *s = &f->fields[j];
        if (vals[j] || (s->flags & CT_SF_OPTIONAL) || (is_toy && (s->flags & CT_SF_NOT_IN_TOY)))
            continue;
        if (s->flags & CT_SF_REQUIRED) {
            char msg[160];
            snprintf(msg, sizeof msg, "missing required field '%s'", s->name);
            rc = err_node(n, path, msg);
            break;
        }
        ct_rnode *d;
        if (!(rc = default_node(c, s, &d)) && !(rc = join(path, plen, s->name)))
            rc = convert(c, s, d, path, strlen(path), &vals[j]);
        path[plen] = '\0';
    }
    json_t *obj = rc ? NULL : json_object();
    if (!rc && !obj)
        rc = ct_error_set(CT_ENOMEM, "out of memory");
    for (size_t j = 0; j < nf; j++) {
        if (!vals[j])
            continue;
        if (obj && json_object_set_new(obj, f->fields[j].name, vals[j]) && !rc)
            rc = ct_error_set(CT_ENOMEM, "out of memory");
        else if (!obj)
            json_decref(vals[j]);
    }
    if (rc) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

static int convert(conv *c, const ct_sfield *f, const ct_rnode *n, char *path, size_t plen,
                   json_t **out)
{
    int rc = locs_add(c->locs, path, n);
    if (rc)
        return rc;
    char num[128];
    json_t *v = NULL;
    switch (f->type) {
    case CT_SF_STRING:
        if (!scalar_of(n, CT_RS_STRING) || ((f->flags & CT_SF_NONEMPTY) && !*n->text))
            return expected(f, n, path);
        if (f->valid && !f->valid(n->text))
            return expected(f, n, path);
        v = json_string(n->text);
        break;
    case CT_SF_ENUM: {
        int ok = 0;
        if (scalar_of(n, CT_RS_STRING))
            for (const char *const *ch = f->choices; *ch && !ok; ch++)
                ok = strcmp(*ch, n->text) == 0;
        if (!ok)
            return expected(f, n, path);
        v = json_string(n->text);
        break;
    }
    case CT_SF_BOOL:
        if (!scalar_of(n, CT_RS_BOOL))
            return expected(f, n, path);
        v = json_boolean(tolower((unsigned char)n->text[0]) == 't');
        break;
    case CT_SF_INT: {
        if (!scalar_of(n, CT_RS_INT) || strip_underscores(n->text, num, sizeof num))
            return expected(f, n, path);
        errno = 0;
        long long x = strtoll(num, NULL, 10);
        if (errno == ERANGE)
            return err_node(n, path, "integer out of range");
        if ((rc = out_of_range(f, n, path, (double)x)))
            return rc;
        v = json_integer(x);
        break;
    }
    case CT_SF_NUMBER: {
        if (!(scalar_of(n, CT_RS_INT) || scalar_of(n, CT_RS_FLOAT)) ||
            strip_underscores(n->text, num, sizeof num))
            return expected(f, n, path);
        double x = strtod(num, NULL);
        if (!isfinite(x))
            return err_node(n, path, "number out of range");
        if ((rc = out_of_range(f, n, path, x)))
            return rc;
        v = json_real(x);
        break;
    }
    case CT_SF_SIZE: {
        long long x;
        if (n->kind != CT_RN_SCALAR || n->stype == CT_RS_NULL || n->stype == CT_RS_BOOL ||
            parse_size(n->text, &x))
            return expected(f, n, path);
        if ((rc = out_of_range(f, n, path, (double)x)))
            return rc;
        v = json_integer(x);
        break;
    }
    case CT_SF_LIST: {
        if (n->kind != CT_RN_SEQ || ((f->flags & CT_SF_NONEMPTY) && n->n == 0)) {
            if (n->kind == CT_RN_SEQ) {
                char what[320], msg[400];
                ct_sfield_expected(f, what, sizeof what);
                snprintf(msg, sizeof msg, "expected %s with at least one element, got an empty list", what);
                return err_node(n, path, msg);
            }
            return expected(f, n, path);
        }
        if (!(v = json_array()))
            return ct_error_set(CT_ENOMEM, "out of memory");
        for (size_t i = 0; i < n->n; i++) {
            char idx[32];
            snprintf(idx, sizeof idx, "%zu", i);
            json_t *e = NULL;
            if (!(rc = join(path, plen, idx)))
                rc = convert(c, f->elem, n->items[i], path, strlen(path), &e);
            path[plen] = '\0';
            if (!rc && json_array_append_new(v, e))
                rc = ct_error_set(CT_ENOMEM, "out of memory");
            if (rc) {
                json_decref(v);
                return rc;
            }
        }
        break;
    }
    case CT_SF_DICT: {
        if (n->kind != CT_RN_MAP)
            return expected(f, n, path);
        if (!(v = json_object()))
            return ct_error_set(CT_ENOMEM, "out of memory");
        for (size_t i = 0; i < n->n; i++) {
            json_t *e = NULL;
            if (strchr(n->keys[i]->text, '.') || !*n->keys[i]->text)
                rc = ct_rerror_at(n->keys[i]->file, n->keys[i]->line, n->keys[i]->col, path,
                                  "key '%.100s' must be non-empty and contain no '.'",
                                  n->keys[i]->text);
            else if (!(rc = join(path, plen, n->keys[i]->text)))
                rc = convert(c, f->elem, n->items[i], path, strlen(path), &e);
            path[plen] = '\0';
            if (!rc && json_object_set_new(v, n->keys[i]->text, e))
                rc = ct_error_set(CT_ENOMEM, "out of memory");
            if (rc) {
                json_decref(v);
                return rc;
            }
        }
        break;
    }
    default:
        if (n->kind != CT_RN_MAP)
            return expected(f, n, path);
        return convert_map(c, f, n, path, plen, out);
    }
    if (!v)
        return ct_error_set(CT_ENOMEM, "out of memory");
    *out = v;
    return 0;
}

int ct_rcheck_convert(ct_rarena *a, const ct_rnode *root, json_t **out, ct_rlocs *locs)
{
    conv c = {a, locs};
    char path[PATH_CAP] = "";
    return convert(&c, &ct_recipe_schema, root, path, 0, out);
}

#include "models/checkpoint/safetensors.h"
#include "common/error.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The reference library refuses headers above 100 MB; so do we, before parsing. */
#define ST_MAX_HEADER (100u * 1000u * 1000u)

typedef struct {
    char *name;
    ct_dtype dtype;
    int ndim;
    int64_t shape[CT_TENSOR_MAX_DIM];
    size_t numel, nbytes;
    size_t begin; /* relative to the data section */
} st_entry;

struct ct_safetensors {
    char *path;
    void *map;
    size_t size;
    const unsigned char *data; /* start of the data section */
    size_t data_len;
    st_entry *e;
    size_t n;
    json_t *meta; /* "__metadata__" object or NULL */
};

void ct_safetensors_close(ct_safetensors *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n; i++)
        free(st->e[i].name);
    free(st->e);
    if (st->map)
        munmap(st->map, st->size);
    json_decref(st->meta);
    free(st->path);
    free(st);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const st_entry *)a)->name, ((const st_entry *)b)->name);
}

static int cmp_begin(const void *a, const void *b)
{
    const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

/* A non-negative JSON integer as size_t. */
static int json_size(const json_t *v, size_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (size_t)json_integer_value(v);
    return 0;
}

static int parse_entry(const ct_safetensors *st, const char *name, json_t *v, st_entry *e)
{
    const char *p = st->path;
    if (!json_is_object(v))
        return ct_error_set(CT_ECORRUPT, "%s: tensor '%s': header entry is not an object", p, name);
    json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape"),
           *jo = json_object_get(v, "data_offsets");
    if (!json_is_string(jd))
        return ct_error_set(CT_ECORRUPT, "%s: tensor '%s': missing or non-string \"dtype\"", p,
                            name);
    if (ct_dtype_parse(json_string_value(jd), &e->dtype))
        return ct_error_set(CT_EFORMAT, "%s: tensor '%s': unknown dtype \"%s\"", p, name,
                            json_string_value(jd));
    if (!json_is_array(js))
        return ct_error_set(CT_ECORRUPT, "%s: tensor '%s': missing or non-array \"shape\"", p,
                            name);
    if (json_array_size(js) > CT_TENSOR_MAX_DIM)
        return ct_error_set(CT_EFORMAT, "%s: tensor '%s': %zu dimensions (at most %d supported)", p,
                            name, json_array_size(js), CT_TENSOR_MAX_DIM);
    e->ndim = (int)json_array_size(js);
    size_t numel = 1;
    for (int d = 0; d < e->ndim; d++) {
        size_t s;
        if (json_size(json_array_get(js, (size_t)d), &s) || s > (size_t)INT64_MAX)
            return ct_error_set(CT_ECORRUPT,
                                "%s: tensor '%s': shape[%d] is not a non-negative integer", p, name,
                                d);
        e->shape[d] = (int64_t)s;
        if (s && numel > SIZE_MAX / s)
            return ct_error_set(CT_ECORRUPT, "%s: tensor '%s': element count overflows", p, name);
        numel *= s;
    }
    size_t es = ct_dtype_size(e->dtype);
    if (numel > SIZE_MAX / es)
        return ct_error_set(CT_ECORRUPT, "%s: tensor '%s': byte size overflows", p, name);
    e->numel = numel;
    e->nbytes = numel * es;
    size_t b, en;
    if (!json_is_array(jo) || json_array_size(jo) != 2 || json_size(json_array_get(jo, 0), &b) ||
        json_size(json_array_get(jo, 1), &en))
        return ct_error_set(CT_ECORRUPT, "%s: tensor '%s': \"data_offsets\" is not [begin, end]", p,
                            name);
    if (b > en || en > st->data_len)
        return ct_error_set(CT_ECORRUPT,
                            "%s: tensor '%s': data_offsets [%zu, %zu] out of range (data section "
                            "is %zu bytes)",
                            p, name, b, en, st->data_len);
    if (en - b != e->nbytes)
        return ct_error_set(CT_ECORRUPT,
                            "%s: tensor '%s': data_offsets span %zu bytes but shape and dtype %s "
                            "need %zu",
                            p, name, en - b, ct_dtype_name(e->dtype), e->nbytes);
    e->begin = b;
    return 0;
}

static int parse_meta(ct_safetensors *st, json_t *m)
{
    if (!json_is_object(m))
        return ct_error_set(CT_ECORRUPT, "%s: \"__metadata__\" is not an object", st->path);
    const char *k;
    json_t *v;
    json_object_foreach (m, k, v) {
        if (!json_is_string(v))
            return ct_error_set(CT_ECORRUPT, "%s: \"__metadata__\" value of '%s' is not a string",
                                st->path, k);
    }
    st->meta = json_incref(m);
    return 0;
}

/* Every byte of the data section belongs to exactly one tensor. */
static int check_layout(const ct_safetensors *st)
{
    if (st->n == 0) {
        if (st->data_len)
            return ct_error_set(CT_ECORRUPT, "%s: %zu data bytes but no tensors", st->path,
                                st->data_len);
        return 0;
    }
    const st_entry **ord = malloc(st->n * sizeof *ord);
    if (!ord)
        return ct_error_set(CT_ENOMEM, "%s: out of memory", st->path);
    for (size_t i = 0; i < st->n; i++)
        ord[i] = &st->e[i];
    qsort(ord, st->n, sizeof *ord, cmp_begin);
    size_t end = 0;
    int rc = 0;
    for (size_t i = 0; i < st->n && !rc; i++) {
        if (ord[i]->begin < end)
            rc = ct_error_set(CT_ECORRUPT, "%s: tensor '%s' overlaps tensor '%s'", st->path,
                              ord[i]->name, ord[i - 1]->name);
        else if (ord[i]->begin > end)
            rc = ct_error_set(CT_ECORRUPT, "%s: %zu unused bytes before tensor '%s'", st->path,
                              ord[i]->begin - end, ord[i]->name);
        end = ord[i]->begin + ord[i]->nbytes;
    }
    if (!rc && end != st->data_len)
        rc = ct_error_set(CT_ECORRUPT, "%s: %zu trailing bytes after the last tensor", st->path,
                          st->data_len - end);
    free(ord);
    return rc;
}

static int parse_header(ct_safetensors *st)
{
    const unsigned char *m = st->map;
    if (st->size < 8)
        return ct_error_set(CT_ECORRUPT, "%s: %zu bytes, too short for a safetensors header",
                            st->path, st->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | m[i];
    if (hlen > st->size - 8)
        return ct_error_set(CT_ECORRUPT,
                            "%s: header length %llu runs beyond the file (%zu bytes): truncated "
                            "or not a safetensors file",
                            st->path, (unsigned long long)hlen, st->size);
    if (hlen > ST_MAX_HEADER)
        return ct_error_set(CT_ECORRUPT, "%s: header length %llu exceeds the 100 MB limit",
                            st->path, (unsigned long long)hlen);
    if (hlen < 2 || m[8] != '{')
        return ct_error_set(CT_ECORRUPT, "%s: header does not start with a JSON object", st->path);
    st->data = m + 8 + hlen;
    st->data_len = st->size - 8 - (size_t)hlen;

    json_error_t jerr;
    json_t *root = json_loadb((const char *)m + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return ct_error_set(CT_ECORRUPT, "%s: header JSON: %s (column %d)", st->path, jerr.text,
                            jerr.column);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = ct_error_set(CT_ECORRUPT, "%s: header is not a JSON object", st->path);
        goto out;
    }
    size_t cap = json_object_size(root);
    st->e = calloc(cap ? cap : 1, sizeof *st->e);
    if (!st->e) {
        rc = ct_error_set(CT_ENOMEM, "%s: out of memory", st->path);
        goto out;
    }
    const char *k;
    json_t *v;
    json_object_foreach (root, k, v) {
        if (strcmp(k, "__metadata__") == 0) {
            if ((rc = parse_meta(st, v)))
                goto out;
            continue;
        }
        st_entry *e = &st->e[st->n];
        if ((rc = parse_entry(st, k, v, e)))
            goto out;
        if (!(e->name = strdup(k))) {
            rc = ct_error_set(CT_ENOMEM, "%s: out of memory", st->path);
            goto out;
        }
        st->n++;
    }
    qsort(st->e, st->n, sizeof *st->e, cmp_name);
    rc = check_layout(st);
out:
    json_decref(root);
    return rc;
}

int ct_safetensors_open(const char *path, ct_safetensors **out)
{
    *out = NULL;
    ct_safetensors *st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(path))) {
        free(st);
        return ct_error_set(CT_ENOMEM, "%s: out of memory", path);
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = ct_error_set(errno == ENOENT ? CT_ENOTFOUND : CT_EIO, "%s: cannot open: %s", path,
                              strerror(errno));
        ct_safetensors_close(st);
        return rc;
    }
    struct stat sb;
    int rc = 0;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rc = ct_error_set(CT_EIO, "%s: not a regular file", path);
    } else {
        st->size = (size_t)sb.st_size;
        if (st->size > 0) {
            void *m = mmap(NULL, st->size, PROT_READ, MAP_PRIVATE, fd, 0);
            if (m == MAP_FAILED)
                rc = ct_error_set(CT_EIO, "%s: cannot map: %s", path, strerror(errno));
            else
                st->map = m;
        }
    }
    close(fd);
    if (!rc)
        rc = parse_header(st);
    if (rc) {
        ct_safetensors_close(st);
        return rc;
    }
    *out = st;
    return 0;
}

size_t ct_safetensors_count(const ct_safetensors *st)
{
    return st->n;
}

void ct_safetensors_at(const ct_safetensors *st, size_t i, ct_tensor_view *out)
{
    const st_entry *e = &st->e[i];
    memset(out, 0, sizeof *out);
    out->name = e->name;
    out->dtype = e->dtype;
    out->ndim = e->ndim;
    memcpy(out->shape, e->shape, sizeof e->shape);
    out->numel = e->numel;
    out->nbytes = e->nbytes;
    out->data = st->data + e->begin;
}

int ct_safetensors_find(const ct_safetensors *st, const char *name, ct_tensor_view *out)
{
    st_entry key = {.name = (char *)name};
    const st_entry *e = bsearch(&key, st->e, st->n, sizeof *st->e, cmp_name);
    if (!e)
        return ct_error_set(CT_ENOTFOUND, "%s: no tensor '%s'", st->path, name);
    ct_safetensors_at(st, (size_t)(e - st->e), out);
    return 0;
}

const char *ct_safetensors_meta(const ct_safetensors *st, const char *key)
{
    return st->meta ? json_string_value(json_object_get(st->meta, key)) : NULL;
}

/* ------------------------------------------------------------------ writer */

typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

/* A JSON string literal, escaped as serde_json does. */
static void sb_json(sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        const char *r = NULL;
        switch (c) {
        case '"': r = "\\\""; break;
        case '\\': r = "\\\\"; break;
        case '\n': r = "\\n"; break;
        case '\r': r = "\\r"; break;
        case '\t': r = "\\t"; break;
        case '\b': r = "\\b"; break;
        case '\f': r = "\\f"; break;
        default:
            if (c < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                r = esc;
            }
        }
        if (r)
            sb_str(b, r);
        else
            sb_put(b, (const char *)s, 1);
    }
    sb_put(b, "\"", 1);
}

typedef struct {
    const ct_st_tensor *t;
    size_t align, nbytes, begin;
} w_item;

static int cmp_w(const void *a, const void *b)
{
    const w_item *x = a, *y = b;
    if (x->align != y->align)
        return x->align > y->align ? -1 : 1;
    return strcmp(x->t->name, y->t->name);
}

static int cmp_str_idx(const void *a, const void *b, void *keys)
{
    const char *const *k = keys;
    return strcmp(k[*(const size_t *)a], k[*(const size_t *)b]);
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n > (1u << 30) ? (1u << 30) : n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int build_header(const char *path, w_item *it, size_t n, const char *const *mk,
                        const char *const *mv, size_t n_meta, sbuf *h)
{
    sb_str(h, "{");
    int first = 1;
    if (n_meta) {
        size_t *ord = malloc(n_meta * sizeof *ord);
        if (!ord)
            return ct_error_set(CT_ENOMEM, "%s: out of memory", path);
        for (size_t i = 0; i < n_meta; i++)
            ord[i] = i;
        qsort_r(ord, n_meta, sizeof *ord, cmp_str_idx, (void *)mk);
        sb_str(h, "\"__metadata__\":{");
        for (size_t i = 0; i < n_meta; i++) {
            if (i)
                sb_str(h, ",");
            sb_json(h, mk[ord[i]]);
            sb_str(h, ":");
            sb_json(h, mv[ord[i]]);
        }
        sb_str(h, "}");
        free(ord);
        first = 0;
    }
    for (size_t i = 0; i < n; i++) {
        char num[64];
        if (!first)
            sb_str(h, ",");
        first = 0;
        sb_json(h, it[i].t->name);
        sb_str(h, ":{\"dtype\":");
        sb_json(h, ct_dtype_name(it[i].t->dtype));
        sb_str(h, ",\"shape\":[");
        for (int d = 0; d < it[i].t->ndim; d++) {
            snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)it[i].t->shape[d]);
            sb_str(h, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%zu,%zu]}", it[i].begin,
                 it[i].begin + it[i].nbytes);
        sb_str(h, num);
    }
    sb_str(h, "}");
    while (h->n % 8)
        sb_str(h, " ");
    if (h->oom)
        return ct_error_set(CT_ENOMEM, "%s: out of memory", path);
    return 0;
}

static int check_tensors(const char *path, const ct_st_tensor *t, size_t n, w_item *it)
{
    for (size_t i = 0; i < n; i++) {
        const char *name = t[i].name;
        if (!name || !*name || strcmp(name, "__metadata__") == 0)
            return ct_error_set(CT_EINVAL, "%s: tensor %zu has an invalid name", path, i);
        size_t es = ct_dtype_size(t[i].dtype);
        if (!es)
            return ct_error_set(CT_EINVAL, "%s: tensor '%s' has an invalid dtype", path, name);
        if (t[i].ndim < 0 || t[i].ndim > CT_TENSOR_MAX_DIM || (t[i].ndim && !t[i].shape))
            return ct_error_set(CT_EINVAL, "%s: tensor '%s' has %d dimensions", path, name,
                                t[i].ndim);
        size_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) {
            int64_t s = t[i].shape[d];
            if (s < 0 || (s && numel > SIZE_MAX / (size_t)s / es))
                return ct_error_set(CT_EINVAL, "%s: tensor '%s' has an invalid shape", path, name);
            numel *= (size_t)s;
        }
        it[i].t = &t[i];
        it[i].align = es;
        it[i].nbytes = numel * es;
        if (it[i].nbytes && !t[i].data)
            return ct_error_set(CT_EINVAL, "%s: tensor '%s' has no data", path, name);
    }
    qsort(it, n, sizeof *it, cmp_w);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i; j++) /* names are few: quadratic is fine */
            if (strcmp(it[j].t->name, it[i].t->name) == 0)
                return ct_error_set(CT_EINVAL, "%s: tensor name '%s' appears twice", path,
                                    it[i].t->name);
        it[i].begin = off;
        off += it[i].nbytes;
    }
    return 0;
}

int ct_safetensors_write(const char *path, const ct_st_tensor *tensors, size_t n,
                         const char *const *meta_keys, const char *const *meta_values,
                         size_t n_meta)
{
    for (size_t i = 0; i < n_meta; i++)
        if (!meta_keys[i] || !meta_values[i])
            return ct_error_set(CT_EINVAL, "%s: metadata entry %zu is NULL", path, i);
    w_item *it = calloc(n ? n : 1, sizeof *it);
    if (!it)
        return ct_error_set(CT_ENOMEM, "%s: out of memory", path);
    sbuf h = {0};
    int rc = check_tensors(path, tensors, n, it);
    if (!rc)
        rc = build_header(path, it, n, meta_keys, meta_values, n_meta, &h);
    if (rc)
        goto out;

    char *tmp = malloc(strlen(path) + 32);
    if (!tmp) {
        rc = ct_error_set(CT_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    sprintf(tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = ct_error_set(CT_EIO, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        goto out;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)h.n >> (8 * i));
    int bad = write_all(fd, len8, 8) || write_all(fd, h.p, h.n);
    for (size_t i = 0; i < n && !bad; i++)
        bad = write_all(fd, it[i].t->data, it[i].nbytes);
    if (!bad)
        bad = fsync(fd);
    if (close(fd) != 0)
        bad = 1;
    if (bad || rename(tmp, path) != 0) {
        rc = ct_error_set(CT_EIO, "%s: write failed: %s", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
out:
    free(h.p);
    free(it);
    return rc;
}

#include "pipeline/key.h"
#include "common/error.h"
#include "common/sha256.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} strbuf;

static void sb_put(strbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *nb = realloc(b->buf, cap);
        if (!nb) {
            b->failed = 1;
            return;
        }
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

static void sb_puts(strbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void put_string(strbuf *b, const char *s, size_t n)
{
    sb_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            sb_put(b, esc, 2);
        } else if (c < 0x20) {
            /* the short escapes where JSON has them, \u00XX otherwise */
            char esc[8];
            const char *letter = c == '\b' ? "b" : c == '\t' ? "t" : c == '\n' ? "n"
                               : c == '\f' ? "f" : c == '\r' ? "r" : NULL;
            if (letter)
                snprintf(esc, sizeof esc, "\\%s", letter);
            else
                snprintf(esc, sizeof esc, "\\u%04x", c);
            sb_puts(b, esc);
        } else {
            sb_put(b, (const char *)&s[i], 1);
        }
    }
    sb_put(b, "\"", 1);
}

/* Shortest decimal text that parses back to exactly `x`, with a normalised exponent
 * ("5e-5", not "5e-05") and a ".0" added to integral values so reals never look
 * like integers. */
static void format_real(double x, char *out, size_t n)
{
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, x);
        if (strtod(tmp, NULL) == x)
            break;
    }
    char *e = strchr(tmp, 'e');
    char mant[40], exp[16] = "";
    if (e) {
        snprintf(mant, sizeof mant, "%.*s", (int)(e - tmp), tmp);
        const char *p = e + 1;
        int neg = *p == '-';
        if (*p == '-' || *p == '+')
            p++;
        while (*p == '0' && p[1])
            p++;
        snprintf(exp, sizeof exp, "e%s%s", neg ? "-" : "", p);
    } else {
        snprintf(mant, sizeof mant, "%s", tmp);
    }
    if (!e && !strchr(mant, '.'))
        snprintf(out, n, "%s.0", mant);
    else
        snprintf(out, n, "%s%s", mant, exp);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int put_value(strbuf *b, const json_t *v)
{
    char num[48];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v), i = 0;
        const char **keys = malloc((n ? n : 1) * sizeof *keys);
        if (!keys)
            return ct_error_set(CT_ENOMEM, "out of memory");
        const char *k;
        json_t *item;
        json_object_foreach((json_t *)v, k, item) keys[i++] = k;
        qsort(keys, n, sizeof *keys, cmp_str);
        sb_put(b, "{", 1);
        for (i = 0; i < n; i++) {
            if (i)
                sb_put(b, ",", 1);
            put_string(b, keys[i], strlen(keys[i]));
            sb_put(b, ":", 1);
            int rc = put_value(b, json_object_get(v, keys[i]));
            if (rc) {
                free(keys);
                return rc;
            }
        }
        sb_put(b, "}", 1);
        free(keys);
        return 0;
    }
    case JSON_ARRAY: {
        sb_put(b, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                sb_put(b, ",", 1);
            int rc = put_value(b, json_array_get(v, i));
            if (rc)
                return rc;
        }
        sb_put(b, "]", 1);
        return 0;
    }
    case JSON_STRING:
        put_string(b, json_string_value(v), json_string_length(v));
        return 0;
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        sb_puts(b, num);
        return 0;
    case JSON_REAL: {
        double x = json_real_value(v);
        if (!isfinite(x))
            return ct_error_set(CT_EINVAL, "key material holds a non-finite number");
        format_real(x == 0 ? 0.0 : x, num, sizeof num); /* -0.0 and 0.0 are one value */
        sb_puts(b, num);
        return 0;
    }
    case JSON_TRUE:
        sb_puts(b, "true");
        return 0;
    case JSON_FALSE:
        sb_puts(b, "false");
        return 0;
    case JSON_NULL:
        sb_puts(b, "null");
        return 0;
    }
    return ct_error_set(CT_EINVAL, "unknown JSON type in key material");
}

int ct_canonical_json(const json_t *v, char **text, size_t *len)
{
    strbuf b = {0};
    int rc = put_value(&b, v);
    if (!rc && b.failed)
        rc = ct_error_set(CT_ENOMEM, "out of memory encoding key material");
    if (!rc && !b.buf)
        sb_puts(&b, "");
    if (rc) {
        free(b.buf);
        return rc;
    }
    *text = b.buf;
    if (len)
        *len = b.len;
    return 0;
}

int ct_key_material(const char *kind, int version, const json_t *params, const json_t *inputs,
                    json_t **material)
{
    json_t *m = json_object();
    json_object_set_new(m, "v", json_integer(CT_KEY_ENCODING));
    json_object_set_new(m, "kind", json_string(kind));
    json_object_set_new(m, "version", json_integer(version));
    json_object_set_new(m, "params", params ? json_deep_copy(params) : json_object());
    json_object_set_new(m, "inputs", inputs ? json_deep_copy(inputs) : json_object());
    *material = m;
    return 0;
}

int ct_key_of(const json_t *material, uint8_t key[CT_KEY_LEN])
{
    char *text;
    size_t len;
    int rc = ct_canonical_json(material, &text, &len);
    if (rc)
        return rc;
    ct_sha256 *c;
    if ((rc = ct_sha256_new(&c))) {
        free(text);
        return rc;
    }
    static const char prefix[] = "crosstime-key\n";
    ct_sha256_update(c, prefix, sizeof prefix - 1);
    ct_sha256_update(c, text, len);
    free(text);
    return ct_sha256_final(c, key);
}

void ct_key_hex(const uint8_t key[CT_KEY_LEN], char *hex) { ct_hex_encode(key, CT_KEY_LEN, hex); }

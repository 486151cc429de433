/* Writing a trained model as tokenizer.json, laid out as the library's pretty save. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/io.h"
#include "models/tokenizer/train.h"
#include "models/tokenizer/train_internal.h"

/* A JSON string as serde_json writes it: quotes, backslashes and control characters
 * escaped, everything else as UTF-8. */
static int put_jstr(tok_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (tok_buf_put(b, "\"", 1))
        return -1;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char e[7];
        size_t n = 0;
        switch (*p) {
        case '"': memcpy(e, "\\\"", n = 2); break;
        case '\\': memcpy(e, "\\\\", n = 2); break;
        case '\n': memcpy(e, "\\n", n = 2); break;
        case '\r': memcpy(e, "\\r", n = 2); break;
        case '\t': memcpy(e, "\\t", n = 2); break;
        case '\b': memcpy(e, "\\b", n = 2); break;
        case '\f': memcpy(e, "\\f", n = 2); break;
        default:
            if (*p < 0x20) {
                memcpy(e, "\\u00", 4);
                e[4] = hex[*p >> 4];
                e[5] = hex[*p & 15];
                n = 6;
            } else {
                e[0] = (char)*p;
                n = 1;
            }
        }
        if (tok_buf_put(b, e, n))
            return -1;
    }
    return tok_buf_put(b, "\"", 1);
}

static int put(tok_buf *b, const char *s) { return tok_buf_put(b, s, strlen(s)); }

static int put_bytelevel(tok_buf *b, const char *key, int last)
{
    int rc = put(b, "  \"");
    rc |= put(b, key);
    rc |= put(b, "\": {\n    \"type\": \"ByteLevel\",\n    \"add_prefix_space\": false,\n"
                 "    \"trim_offsets\": true,\n    \"use_regex\": true\n  }");
    rc |= put(b, last ? "\n" : ",\n");
    return rc;
}

int ct_tok_trainer_json(const ct_tok_trainer *t, char **json, size_t *len)
{
    *json = NULL;
    if (len)
        *len = 0;
    if (!t->trained || !t->merges)
        return ct_error_set(CT_EINVAL, "BPE training: no trained model to write");
    tok_buf b = {0};
    char num[32];
    int rc = put(&b, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n"
                     "  \"added_tokens\": [");
    for (size_t i = 0; i < t->nspec; i++) {
        int32_t id = 0;
        tok_strmap_get(&t->vmap, &t->varena, t->specials[i], strlen(t->specials[i]), &id);
        snprintf(num, sizeof num, "%d", id);
        rc |= put(&b, i ? ",\n    {\n      \"id\": " : "\n    {\n      \"id\": ");
        rc |= put(&b, num);
        rc |= put(&b, ",\n      \"content\": ");
        rc |= put_jstr(&b, t->specials[i]);
        rc |= put(&b, ",\n      \"single_word\": false,\n      \"lstrip\": false,\n      \"rstrip\": false,\n"
                      "      \"normalized\": false,\n      \"special\": true\n    }");
    }
    rc |= put(&b, t->nspec ? "\n  ],\n" : "],\n");
    rc |= put(&b, t->o.nfc ? "  \"normalizer\": {\n    \"type\": \"NFC\"\n  },\n"
                           : "  \"normalizer\": null,\n");
    rc |= put_bytelevel(&b, "pre_tokenizer", 0);
    rc |= put_bytelevel(&b, "post_processor", 0);
    rc |= put_bytelevel(&b, "decoder", 0);
    rc |= put(&b, "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n"
                  "    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n"
                  "    \"fuse_unk\": false,\n    \"byte_fallback\": false,\n    \"ignore_merges\": false,\n"
                  "    \"vocab\": {");
    for (size_t i = 0; i < t->vn && !rc; i++) {
        rc |= put(&b, i ? ",\n      " : "\n      ");
        rc |= put_jstr(&b, tok_train_vocab_str(t, (uint32_t)i));
        snprintf(num, sizeof num, ": %zu", i);
        rc |= put(&b, num);
    }
    rc |= put(&b, t->vn ? "\n    },\n    \"merges\": [" : "},\n    \"merges\": [");
    for (size_t i = 0; i < t->nmerges && !rc; i++) {
        rc |= put(&b, i ? ",\n      [\n        " : "\n      [\n        ");
        rc |= put_jstr(&b, tok_train_vocab_str(t, t->merges[i][0]));
        rc |= put(&b, ",\n        ");
        rc |= put_jstr(&b, tok_train_vocab_str(t, t->merges[i][1]));
        rc |= put(&b, "\n      ]");
    }
    rc |= put(&b, t->nmerges ? "\n    ]\n  }\n}" : "]\n  }\n}");
    rc |= tok_buf_put(&b, "", 1);
    if (rc) {
        free(b.p);
        return ct_error_set(CT_ENOMEM, "BPE training: out of memory");
    }
    *json = b.p;
    if (len)
        *len = b.n - 1;
    return 0;
}

int ct_tok_trainer_save(const ct_tok_trainer *t, const char *path)
{
    char *js;
    size_t n;
    int rc = ct_tok_trainer_json(t, &js, &n);
    if (rc)
        return rc;
    rc = ct_write_file_atomic(path, js, n);
    free(js);
    return rc;
}

void ct_tok_trainer_stats(const ct_tok_trainer *t, ct_tok_train_stats *st)
{
    st->pieces = t->pieces;
    st->distinct = t->wn;
    st->vocab = t->vn;
    st->merges = t->nmerges;
}

int ct_tok_trainer_merge(const ct_tok_trainer *t, size_t rank, const char **left, const char **right)
{
    if (!t->trained || rank >= t->nmerges)
        return ct_error_set(CT_EINVAL, "BPE training: no merge of rank %zu", rank);
    *left = tok_train_vocab_str(t, t->merges[rank][0]);
    *right = tok_train_vocab_str(t, t->merges[rank][1]);
    return 0;
}


#include "models/tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "models/tokenizer/tok_bytelevel.h"
#include "models/tokenizer/tok_nfc.h"

int tok_normalize(const void *ctx, const char *s, size_t n, tok_buf *out)
{
    const ct_tokenizer *t = ctx;
    if (t->normalizer == TOK_NORM_NFC)
        return tok_nfc(s, n, out);
    return tok_buf_put(out, s, n);
}

typedef struct {
    tok_pieces raw, norm;
    tok_buf nbuf;
    tok_pretok_scratch pt;
    tok_ids ids;
} enc_state;

static void enc_free(enc_state *st)
{
    free(st->raw.v);
    free(st->norm.v);
    free(st->nbuf.p);
    tok_pretok_scratch_free(&st->pt);
}

/* Hugging Face's order: added tokens that match the raw text, then normalization of
 * what is between them, then added tokens that match normalized text, then the
 * pre-tokenizer and the model on what remains. */
static int encode_plain(const ct_tokenizer *t, enc_state *st, const char *s, size_t n)
{
    st->nbuf.n = 0;
    if (tok_normalize(t, s, n, &st->nbuf))
        return ct_error_set(CT_ENOMEM, "out of memory");
    if (tok_added_split(&t->added, 1, st->nbuf.p, st->nbuf.n, &st->norm))
        return ct_error_set(CT_ENOMEM, "out of memory");
    for (size_t i = 0; i < st->norm.n; i++) {
        const tok_piece *p = &st->norm.v[i];
        if (p->id >= 0) {
            if (tok_ids_push(&st->ids, p->id))
                return ct_error_set(CT_ENOMEM, "out of memory");
            continue;
        }
        const tok_buf *buf;
        const tok_spans *words;
        if (tok_pretok_run(&t->pretok, st->nbuf.p + p->start, p->end - p->start, &st->pt, &buf, &words))
            return ct_error_set(CT_EINVAL, "%s: pre-tokenizer failed (out of memory or regex limit)", t->name);
        for (size_t w = 0; w < words->n; w++) {
            int rc = tok_bpe_encode_word(t->bpe, buf->p + words->v[w].start,
                                         words->v[w].end - words->v[w].start, &st->ids);
            if (rc)
                return ct_error_wrap(rc, "%s", t->name);
        }
    }
    return 0;
}

int ct_tok_encode(const ct_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    if (!t || (!text && len))
        return ct_error_set(CT_EINVAL, "ct_tok_encode: null argument");
    size_t bad;
    if (!tok_utf8_valid(text, len, &bad))
        return ct_error_set(CT_EINVAL, "%s: input text is not valid UTF-8 at byte %zu", t->name, bad);
    enc_state st = {0};
    int rc = 0;
    if (tok_added_split(&t->added, 0, text, len, &st.raw)) {
        rc = ct_error_set(CT_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < st.raw.n && !rc; i++) {
        const tok_piece *p = &st.raw.v[i];
        if (p->id >= 0) {
            if (tok_ids_push(&st.ids, p->id))
                rc = ct_error_set(CT_ENOMEM, "out of memory");
            continue;
        }
        rc = encode_plain(t, &st, text + p->start, p->end - p->start);
    }
out:
    if (!rc) {
        *ids = st.ids.v;
        *n = st.ids.n;
        st.ids.v = NULL;
    }
    free(st.ids.v);
    enc_free(&st);
    return rc;
}

static const char *token_of(const ct_tokenizer *t, int32_t id)
{
    const char *s = tok_added_content(&t->added, id);
    return s ? s : tok_bpe_id_to_token(t->bpe, id);
}

int ct_tok_decode(const ct_tokenizer *t, const int32_t *ids, size_t n, int skip_special, char **text,
                  size_t *len)
{
    *text = NULL;
    if (len)
        *len = 0;
    if (!t || (!ids && n))
        return ct_error_set(CT_EINVAL, "ct_tok_decode: null argument");
    tok_buf raw = {0}, out = {0};
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        const char *s = token_of(t, ids[i]);
        if (!s)
            continue;
        size_t sl = strlen(s);
        if (skip_special && tok_added_is_special(&t->added, s, sl))
            continue;
        int rc;
        if (t->decoder == TOK_DEC_BYTELEVEL) {
            rc = tok_bytelevel_unmap(s, sl, &raw);
        } else {
            rc = (!first && tok_buf_put(&raw, " ", 1)) || tok_buf_put(&raw, s, sl);
        }
        first = 0;
        if (rc) {
            free(raw.p);
            return ct_error_set(CT_ENOMEM, "out of memory");
        }
    }
    int rc = tok_utf8_lossy(raw.p ? raw.p : "", raw.n, &out) || tok_buf_reserve(&out, 0);
    free(raw.p);
    if (rc) {
        free(out.p);
        return ct_error_set(CT_ENOMEM, "out of memory");
    }
    out.p[out.n] = 0;
    *text = out.p;
    if (len)
        *len = out.n;
    return 0;
}

int ct_tok_vocab_size(const ct_tokenizer *t, size_t *size)
{
    if (!t || !size)
        return ct_error_set(CT_EINVAL, "ct_tok_vocab_size: null argument");
    int32_t m = tok_bpe_max_id(t->bpe);
    if (t->added.map.n && t->added.max_id > m)
        m = t->added.max_id;
    *size = (size_t)(m + 1);
    return 0;
}

int32_t ct_tok_token_id(const ct_tokenizer *t, const char *token)
{
    if (!t || !token)
        return -1;
    int32_t id;
    size_t n = strlen(token);
    if (tok_added_id(&t->added, token, n, &id) || tok_bpe_token_to_id(t->bpe, token, n, &id))
        return id;
    return -1;
}

const char *ct_tok_id_to_token(const ct_tokenizer *t, int32_t id)
{
    return t ? token_of(t, id) : NULL;
}

int ct_tok_is_special(const ct_tokenizer *t, int32_t id)
{
    const char *s = t ? token_of(t, id) : NULL;
    return s && tok_added_is_special(&t->added, s, strlen(s));
}

void ct_tok_free(ct_tokenizer *t)
{
    if (!t)
        return;
    free(t->name);
    tok_pretok_free(&t->pretok);
    tok_bpe_free(t->bpe);
    tok_added_free(&t->added);
    free(t);
}

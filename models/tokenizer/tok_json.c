/* tokenizer.json -> ct_tokenizer. Only this file knows the JSON layout; the parts it
 * builds (BPE core, added vocabulary, pre-tokenizer steps) take plain values. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/io.h"
#include "models/tokenizer/tok_internal.h"

#define ERRLEN 512

static const char *type_of(json_t *o)
{
    json_t *t = json_object_get(o, "type");
    return json_is_string(t) ? json_string_value(t) : NULL;
}

/* A boolean member, `def` when absent or null; -1 when it has another type. */
static int get_bool(json_t *o, const char *key, int def)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return def;
    if (!json_is_boolean(v))
        return -1;
    return json_is_true(v);
}

/* A string member: 1 with *s (NULL when null/absent), -1 for another type. */
static int get_str(json_t *o, const char *key, const char **s)
{
    json_t *v = json_object_get(o, key);
    *s = NULL;
    if (!v || json_is_null(v))
        return 1;
    if (!json_is_string(v))
        return -1;
    *s = json_string_value(v);
    return 1;
}

static int load_normalizer(ct_tokenizer *t, json_t *n, const char *name)
{
    if (!n || json_is_null(n))
        return 0;
    if (!json_is_object(n))
        return ct_error_set(CT_EINVAL, "%s: normalizer is not an object", name);
    const char *type = type_of(n);
    if (!type)
        return ct_error_set(CT_EINVAL, "%s: normalizer has no type", name);
    if (!strcmp(type, "NFC")) {
        t->normalizer = TOK_NORM_NFC;
        return 0;
    }
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(n, "normalizers");
        if (!json_is_array(list))
            return ct_error_set(CT_EINVAL, "%s: normalizer Sequence has no \"normalizers\" array", name);
        size_t i;
        json_t *e;
        json_array_foreach(list, i, e)
        {
            int rc = load_normalizer(t, e, name);
            if (rc)
                return rc;
        }
        return 0;
    }
    return ct_error_set(CT_EFORMAT, "%s: normalizer type \"%s\" is not supported (only NFC, Sequence)",
                        name, type);
}

static int add_step(ct_tokenizer *t, const tok_pretok_step *st, const char *name)
{
    tok_pretok_step *p = realloc(t->pretok.steps, (t->pretok.n + 1) * sizeof *p);
    if (!p)
        return ct_error_set(CT_ENOMEM, "%s: out of memory", name);
    p[t->pretok.n++] = *st;
    t->pretok.steps = p;
    return 0;
}

static int load_pretok(ct_tokenizer *t, json_t *p, const char *name)
{
    if (!p || json_is_null(p))
        return 0;
    if (!json_is_object(p))
        return ct_error_set(CT_EINVAL, "%s: pre_tokenizer is not an object", name);
    const char *type = type_of(p);
    if (!type)
        return ct_error_set(CT_EINVAL, "%s: pre_tokenizer has no type", name);
    char err[ERRLEN];
    tok_pretok_step st = {0};
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(p, "pretokenizers");
        if (!json_is_array(list))
            return ct_error_set(CT_EINVAL, "%s: pre_tokenizer Sequence has no \"pretokenizers\" array",
                                name);
        size_t i;
        json_t *e;
        json_array_foreach(list, i, e)
        {
            int rc = load_pretok(t, e, name);
            if (rc)
                return rc;
        }
        return 0;
    }
    if (!strcmp(type, "ByteLevel")) {
        st.kind = TOK_PT_BYTELEVEL;
        st.add_prefix_space = get_bool(p, "add_prefix_space", 1);
        st.use_regex = get_bool(p, "use_regex", 1);
        if (st.add_prefix_space < 0 || st.use_regex < 0)
            return ct_error_set(CT_EINVAL, "%s: ByteLevel pre_tokenizer has a non-boolean flag", name);
        if (st.use_regex &&
            tok_regex_compile(tok_gpt2_pattern, strlen(tok_gpt2_pattern), 0, &st.re, err, sizeof err))
            return ct_error_set(CT_EINVAL, "%s: ByteLevel regex: %s", name, err);
        int rc = add_step(t, &st, name);
        if (rc)
            tok_regex_free(st.re);
        return rc;
    }
    if (!strcmp(type, "Split")) {
        st.kind = TOK_PT_SPLIT;
        json_t *pat = json_object_get(p, "pattern");
        json_t *rx = json_is_object(pat) ? json_object_get(pat, "Regex") : NULL;
        json_t *lit = json_is_object(pat) ? json_object_get(pat, "String") : NULL;
        json_t *src = json_is_string(rx) ? rx : lit;
        if (!json_is_string(src))
            return ct_error_set(CT_EINVAL, "%s: Split pre_tokenizer needs a pattern {\"Regex\": ...} or {\"String\": ...}",
                                name);
        const char *beh;
        if (get_str(p, "behavior", &beh) < 0 || !beh)
            return ct_error_set(CT_EINVAL, "%s: Split pre_tokenizer has no behavior", name);
        static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
                                      "Contiguous"};
        st.behavior = -1;
        for (int i = 0; i < 5; i++)
            if (!strcmp(beh, names[i]))
                st.behavior = i;
        if (st.behavior < 0)
            return ct_error_set(CT_EFORMAT, "%s: Split behavior \"%s\" is not supported", name, beh);
        st.invert = get_bool(p, "invert", 0);
        if (st.invert < 0)
            return ct_error_set(CT_EINVAL, "%s: Split invert is not a boolean", name);
        if (tok_regex_compile(json_string_value(src), json_string_length(src), src == lit, &st.re, err,
                              sizeof err))
            return ct_error_set(CT_EFORMAT, "%s: Split pattern: %s", name, err);
        int rc = add_step(t, &st, name);
        if (rc)
            tok_regex_free(st.re);
        return rc;
    }
    return ct_error_set(CT_EFORMAT,
                        "%s: pre_tokenizer type \"%s\" is not supported (only ByteLevel, Split, Sequence)",
                        name, type);
}

static int load_decoder(ct_tokenizer *t, json_t *d, const char *name)
{
    t->decoder = TOK_DEC_NONE;
    if (!d || json_is_null(d))
        return 0;
    const char *type = json_is_object(d) ? type_of(d) : NULL;
    if (!type)
        return ct_error_set(CT_EINVAL, "%s: decoder has no type", name);
    if (!strcmp(type, "ByteLevel")) {
        t->decoder = TOK_DEC_BYTELEVEL;
        return 0;
    }
    return ct_error_set(CT_EFORMAT, "%s: decoder type \"%s\" is not supported (only ByteLevel)", name,
                        type);
}

static int load_model(ct_tokenizer *t, json_t *m, const char *name)
{
    char err[ERRLEN];
    if (!json_is_object(m))
        return ct_error_set(CT_EINVAL, "%s: \"model\" is missing or not an object", name);
    const char *type = type_of(m);
    if (type && strcmp(type, "BPE"))
        return ct_error_set(CT_EFORMAT, "%s: model type \"%s\" is not supported (only BPE)", name, type);
    json_t *vocab = json_object_get(m, "vocab");
    json_t *merges = json_object_get(m, "merges");
    if (!type && !merges)
        return ct_error_set(CT_EFORMAT, "%s: model has no type and no merges (only BPE is supported)", name);
    if (!json_is_object(vocab))
        return ct_error_set(CT_EINVAL, "%s: model.vocab is missing or not an object", name);
    if (!json_is_array(merges))
        return ct_error_set(CT_EINVAL, "%s: model.merges is missing or not an array", name);
    json_t *dropout = json_object_get(m, "dropout");
    if (dropout && !json_is_null(dropout)) {
        if (!json_is_number(dropout))
            return ct_error_set(CT_EINVAL, "%s: model.dropout is not a number", name);
        if (json_number_value(dropout) != 0.0)
            return ct_error_set(CT_EFORMAT, "%s: BPE dropout %g is not supported (encoding must be deterministic)",
                                name, json_number_value(dropout));
    }
    tok_bpe_opts o = TOK_BPE_OPTS_INIT;
    if (get_str(m, "unk_token", &o.unk_token) < 0 ||
        get_str(m, "continuing_subword_prefix", &o.continuing_subword_prefix) < 0 ||
        get_str(m, "end_of_word_suffix", &o.end_of_word_suffix) < 0)
        return ct_error_set(CT_EINVAL, "%s: model has a non-string unk_token, continuing_subword_prefix or end_of_word_suffix",
                            name);
    o.fuse_unk = get_bool(m, "fuse_unk", 0);
    o.byte_fallback = get_bool(m, "byte_fallback", 0);
    o.ignore_merges = get_bool(m, "ignore_merges", 0);
    if (o.fuse_unk < 0 || o.byte_fallback < 0 || o.ignore_merges < 0)
        return ct_error_set(CT_EINVAL, "%s: model has a non-boolean fuse_unk, byte_fallback or ignore_merges", name);
    int rc = tok_bpe_new(&o, &t->bpe, err, sizeof err);
    if (rc)
        return ct_error_set(rc, "%s: %s", name, err);
    const char *key;
    size_t key_len;
    json_t *val;
    json_object_keylen_foreach(vocab, key, key_len, val)
    {
        if (!json_is_integer(val))
            return ct_error_set(CT_EINVAL, "%s: model.vocab[\"%.60s\"] is not an integer id", name, key);
        json_int_t id = json_integer_value(val);
        /* Ids index a table, so they must stay near the vocabulary's size; a wild id
         * means a damaged file, not a tokenizer anyone trained. */
        if (id < 0 || id > (json_int_t)(16 * json_object_size(vocab) + 65536))
            return ct_error_set(CT_EINVAL, "%s: model.vocab[\"%.60s\"] = %lld is not a valid id for a vocabulary of %zu",
                                name, key, (long long)id, json_object_size(vocab));
        rc = tok_bpe_add_token(t->bpe, key, key_len, (int32_t)id, err, sizeof err);
        if (rc)
            return ct_error_set(rc, "%s: model.vocab: %s", name, err);
    }
    size_t i;
    json_t *e;
    json_array_foreach(merges, i, e)
    {
        const char *l, *r;
        size_t ln, rn;
        if (json_is_string(e)) {
            /* "left right": exactly one space, as Hugging Face requires. */
            const char *s = json_string_value(e);
            const char *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' '))
                return ct_error_set(CT_EINVAL, "%s: model.merges[%zu] \"%.60s\" is not two tokens separated by one space",
                                    name, i, s);
            l = s;
            ln = (size_t)(sp - s);
            r = sp + 1;
            rn = strlen(r);
        } else if (json_is_array(e) && json_array_size(e) == 2 && json_is_string(json_array_get(e, 0)) &&
                   json_is_string(json_array_get(e, 1))) {
            l = json_string_value(json_array_get(e, 0));
            ln = json_string_length(json_array_get(e, 0));
            r = json_string_value(json_array_get(e, 1));
            rn = json_string_length(json_array_get(e, 1));
        } else {
            return ct_error_set(CT_EINVAL, "%s: model.merges[%zu] is neither \"a b\" nor [\"a\", \"b\"]", name, i);
        }
        rc = tok_bpe_add_merge(t->bpe, l, ln, r, rn, err, sizeof err);
        if (rc)
            return ct_error_set(rc, "%s: model.merges[%zu]: %s", name, i, err);
    }
    rc = tok_bpe_finish(t->bpe, err, sizeof err);
    if (rc)
        return ct_error_set(rc, "%s: %s", name, err);
    return 0;
}

static int load_added(ct_tokenizer *t, json_t *list, const char *name)
{
    if (!list || json_is_null(list))
        return tok_added_refresh(&t->added, t->bpe, tok_normalize, t) ? ct_error_set(CT_ENOMEM, "out of memory") : 0;
    if (!json_is_array(list))
        return ct_error_set(CT_EINVAL, "%s: added_tokens is not an array", name);
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        json_t *c = json_is_object(e) ? json_object_get(e, "content") : NULL;
        if (!json_is_string(c))
            return ct_error_set(CT_EINVAL, "%s: added_tokens[%zu] has no string \"content\"", name, i);
        int special = get_bool(e, "special", 0);
        tok_added_tok f = {0};
        int normalized = get_bool(e, "normalized", !special);
        int sw = get_bool(e, "single_word", 0), ls = get_bool(e, "lstrip", 0), rs = get_bool(e, "rstrip", 0);
        if (special < 0 || normalized < 0 || sw < 0 || ls < 0 || rs < 0)
            return ct_error_set(CT_EINVAL, "%s: added_tokens[%zu] has a non-boolean flag", name, i);
        f.special = (uint8_t)special;
        f.normalized = (uint8_t)normalized;
        f.single_word = (uint8_t)sw;
        f.lstrip = (uint8_t)ls;
        f.rstrip = (uint8_t)rs;
        if (tok_added_add(&t->added, t->bpe, json_string_value(c), json_string_length(c), &f))
            return ct_error_set(CT_ENOMEM, "%s: out of memory", name);
    }
    if (tok_added_refresh(&t->added, t->bpe, tok_normalize, t))
        return ct_error_set(CT_ENOMEM, "%s: out of memory", name);
    return 0;
}

int ct_tok_load_json(const char *text, size_t len, const char *name, ct_tokenizer **out)
{
    *out = NULL;
    if (!name)
        name = "tokenizer.json";
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_ALLOW_NUL, &je);
    if (!root)
        return ct_error_set(CT_EINVAL, "%s: not valid JSON (line %d, column %d: %s)", name, je.line, je.column,
                            je.text);
    int rc = 0;
    ct_tokenizer *t = calloc(1, sizeof *t);
    if (!t || !(t->name = strdup(name))) {
        free(t);
        json_decref(root);
        return ct_error_set(CT_ENOMEM, "%s: out of memory", name);
    }
    if (!json_is_object(root)) {
        rc = ct_error_set(CT_EINVAL, "%s: the top level is not a JSON object", name);
        goto out;
    }
    const char *version;
    if (get_str(root, "version", &version) < 0 || (version && strcmp(version, "1.0"))) {
        rc = ct_error_set(CT_EFORMAT, "%s: unknown tokenizer.json version (expected \"1.0\")", name);
        goto out;
    }
    if ((rc = load_model(t, json_object_get(root, "model"), name)) ||
        (rc = load_normalizer(t, json_object_get(root, "normalizer"), name)) ||
        (rc = load_pretok(t, json_object_get(root, "pre_tokenizer"), name)) ||
        (rc = load_decoder(t, json_object_get(root, "decoder"), name)) ||
        (rc = load_added(t, json_object_get(root, "added_tokens"), name)))
        goto out;
out:
    json_decref(root);
    if (rc) {
        ct_tok_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int ct_tok_load(const char *path, ct_tokenizer **out)
{
    *out = NULL;
    char *data;
    size_t len;
    int rc = ct_read_file(path, &data, &len);
    if (rc)
        return rc;
    rc = ct_tok_load_json(data, len, path, out);
    free(data);
    return rc;
}

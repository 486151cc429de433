/* Checks the tokenizer against ids produced by Hugging Face `tokenizers` itself:
 * llama.cpp's vocabulary tests (GPT-NeoX-20B as "mpt", GPT-2) and vectors written by
 * tests/fixtures/tokenizers/gen_vectors.mjs (UD sentences in six languages, BLiMP,
 * CLAMS, edge cases) for GPT-NeoX-20B, three OLMo tokenizers, GPT-2 and a tokenizer
 * with BLOOM's structure; plus decoding, round trips, malformed files and threads. */
#include <jansson.h>
#include <pthread.h>

#include "common/error.h"
#include "common/io.h"
#include "models/tokenizer/tok_nfc.h"
#include "models/tokenizer/tok_regex.h"
#include "models/tokenizer/tokenizer.h"
#include "tests/support/testutil.h"

#define FIX "tests/fixtures/tokenizers/"

/* Lines of a (compressed) file, read whole: next_line() hands them out in order. */
typedef struct {
    char *data;
    size_t len, pos;
} lines_t;

static void lines_open(lines_t *l, const char *rel)
{
    char p[PATH_MAX];
    l->pos = 0;
    ck_assert_msg(ct_read_file(ct_test_src(p, sizeof p, rel), &l->data, &l->len) == 0, "%s", ct_error_message());
}

static int next_line(lines_t *l, const char **line, size_t *len)
{
    if (l->pos >= l->len)
        return 0;
    char *s = l->data + l->pos, *nl = memchr(s, '\n', l->len - l->pos);
    size_t n = nl ? (size_t)(nl - s) : l->len - l->pos;
    l->pos += n + (nl != NULL);
    *line = s;
    *len = n;
    return 1;
}

static ct_tokenizer *load(const char *rel)
{
    char p[PATH_MAX];
    ct_tokenizer *t = NULL;
    int rc = ct_tok_load(ct_test_src(p, sizeof p, rel), &t);
    ck_assert_msg(rc == 0, "load %s: %s", rel, ct_error_message());
    return t;
}

static char *ids_str(const int32_t *ids, size_t n)
{
    size_t cap = n * 12 + 2, len = 0;
    char *s = malloc(cap);
    s[0] = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, cap - len, " %d", ids[i]);
    return s;
}

/* llama.cpp's files: texts separated by "\n__ggml_vocab_test__\n", one line of
 * " id id ..." per text. */
static void check_llama_cpp(const char *tokfile, const char *base)
{
    ct_tokenizer *t = load(tokfile);
    char p[PATH_MAX], rel[256];
    char *inp, *outp;
    size_t inl, outl;
    snprintf(rel, sizeof rel, FIX "llama-cpp-vocab-tests/%s.inp", base);
    ck_assert_int_eq(ct_read_file(ct_test_src(p, sizeof p, rel), &inp, &inl), 0);
    snprintf(rel, sizeof rel, FIX "llama-cpp-vocab-tests/%s.out", base);
    ck_assert_int_eq(ct_read_file(ct_test_src(p, sizeof p, rel), &outp, &outl), 0);
    const char *sep = "\n__ggml_vocab_test__\n";
    char *ip = inp, *op = outp;
    int count = 0;
    for (;;) {
        char *end = strstr(ip, sep);
        char *oend = strchr(op, '\n');
        if (!end || !oend)
            break;
        *oend = 0;
        int32_t *ids;
        size_t n;
        ck_assert_int_eq(ct_tok_encode(t, ip, (size_t)(end - ip), &ids, &n), 0);
        char *got = ids_str(ids, n);
        ck_assert_msg(!strcmp(got, op), "%s text %d \"%.*s\": got \"%s\" want \"%s\"", base, count,
                      (int)(end - ip), ip, got, op);
        char *dec;
        size_t dl;
        ck_assert_int_eq(ct_tok_decode(t, ids, n, 0, &dec, &dl), 0);
        ck_assert_msg(dl == (size_t)(end - ip) && !memcmp(dec, ip, dl), "%s text %d does not round-trip",
                      base, count);
        free(dec);
        free(got);
        free(ids);
        count++;
        ip = end + strlen(sep);
        op = oend + 1;
    }
    ck_assert_int_ge(count, 40);
    free(inp);
    free(outp);
    ct_tok_free(t);
}

START_TEST(llama_cpp_neox_and_gpt2)
{
    check_llama_cpp(FIX "gpt-neox-20b/20B_tokenizer.json.zst", "ggml-vocab-mpt.gguf");
    check_llama_cpp(FIX "gpt2/tokenizer.json.zst", "ggml-vocab-gpt-2.gguf");
}
END_TEST

static void str_eq_json(json_t *want, const char *got, size_t gl, const char *what, const char *name,
                        int line)
{
    ck_assert_msg(json_is_string(want), "%s line %d: %s missing", name, line, what);
    ck_assert_msg(json_string_length(want) == gl && !memcmp(json_string_value(want), got, gl),
                  "%s line %d: %s differs: got \"%s\" want \"%s\"", name, line, what, got,
                  json_string_value(want));
}

static const struct {
    const char *name, *file;
    int nfc;
} sets[] = {
    {"gpt-neox-20b", FIX "gpt-neox-20b/20B_tokenizer.json.zst", 1},
    {"olmo-pii-special", FIX "olmo/allenai_eleuther-ai-gpt-neox-20b-pii-special.json.zst", 1},
    {"olmo-dolma-v1_5", FIX "olmo/allenai_gpt-neox-olmo-dolma-v1_5.json.zst", 1},
    {"olmo-dolma2", FIX "olmo/allenai_dolma2.json.zst", 0},
    {"gpt2", FIX "gpt2/tokenizer.json.zst", 0},
    {"bloom-like", FIX "bloom-like/tokenizer.json.gz", 0},
};

START_TEST(hf_vectors)
{
    const char *name = sets[_i].name;
    ct_tokenizer *t = load(sets[_i].file);
    char rel[256];
    snprintf(rel, sizeof rel, FIX "vectors/%s.jsonl.gz", name);
    lines_t r;
    lines_open(&r, rel);
    const char *line;
    size_t len;
    int lineno = 0, texts = 0, decodes = 0, roundtrips = 0, stable = 0;
    while (next_line(&r, &line, &len)) {
        lineno++;
        json_error_t je;
        json_t *o = json_loadb(line, len, JSON_ALLOW_NUL, &je);
        ck_assert_msg(o != NULL, "%s line %d: %s", name, lineno, je.text);
        json_t *jids = json_object_get(o, "ids"), *jt = json_object_get(o, "text");
        size_t nw = json_array_size(jids);
        int32_t *want = malloc((nw + 1) * sizeof *want);
        for (size_t k = 0; k < nw; k++)
            want[k] = (int32_t)json_integer_value(json_array_get(jids, k));
        if (jt) {
            const char *text = json_string_value(jt);
            size_t tl = json_string_length(jt);
            int32_t *ids;
            size_t n;
            ck_assert_msg(ct_tok_encode(t, text, tl, &ids, &n) == 0, "%s: %s", name, ct_error_message());
            char *g = ids_str(ids, n), *w = ids_str(want, nw);
            ck_assert_msg(!strcmp(g, w), "%s line %d \"%s\": got%s want%s", name, lineno, text, g, w);
            free(g);
            free(w);
            /* decode(encode(text)) is the text itself, normalized when the tokenizer
             * normalizes (NFC computed here, independently of the reference's). */
            char *dec;
            size_t dl;
            ck_assert_int_eq(ct_tok_decode(t, ids, n, 0, &dec, &dl), 0);
            tok_buf nb = {0};
            if (sets[_i].nfc)
                ck_assert_int_eq(tok_nfc(text, tl, &nb), 0);
            else
                tok_buf_put(&nb, text, tl);
            ck_assert_msg(dl == nb.n && !memcmp(dec, nb.p ? nb.p : "", dl),
                          "%s line %d: decode(encode(\"%s\")) = \"%s\"", name, lineno, text, dec);
            roundtrips += dl == tl && !memcmp(dec, text, tl);
            stable += nb.n == tl && !memcmp(nb.p ? nb.p : "", text, tl);
            free(nb.p);
            free(dec);
            free(ids);
            texts++;
        } else {
            decodes++;
        }
        for (int skip = 0; skip < 2; skip++) {
            char *dec;
            size_t dl;
            ck_assert_int_eq(ct_tok_decode(t, want, nw, skip, &dec, &dl), 0);
            str_eq_json(json_object_get(o, skip ? "dec_skip" : "dec"), dec, dl, skip ? "dec_skip" : "dec",
                        name, lineno);
            free(dec);
        }
        free(want);
        json_decref(o);
    }
    free(r.data);
    ck_assert_int_ge(texts, 2500);
    ck_assert_int_ge(decodes, 50);
    /* Every text that normalization leaves alone comes back byte for byte. */
    ck_assert_int_eq(roundtrips, stable);
    ck_assert_int_ge(stable, texts - (sets[_i].nfc ? 400 : 0));
    ct_tok_free(t);
}
END_TEST

/* Variants of the BLOOM-like tokenizer (flagged added tokens, prefix space, every
 * Split behavior): each starts with a patch line replacing fields of the base file. */
START_TEST(hf_variants)
{
    char p[PATH_MAX];
    char *base_text;
    size_t base_len;
    ck_assert_int_eq(ct_read_file(ct_test_src(p, sizeof p, FIX "bloom-like/tokenizer.json.gz"), &base_text, &base_len), 0);
    json_t *base = json_loadb(base_text, base_len, 0, NULL);
    ck_assert_ptr_nonnull(base);
    free(base_text);
    lines_t r;
    lines_open(&r, FIX "vectors/variants.jsonl.gz");
    const char *line;
    size_t len;
    int lineno = 0, variants = 0, checked = 0;
    ct_tokenizer *t = NULL;
    char name[64] = "";
    while (next_line(&r, &line, &len)) {
        lineno++;
        json_t *o = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
        ck_assert_ptr_nonnull(o);
        json_t *patch = json_object_get(o, "patch");
        if (patch) {
            ct_tok_free(t);
            snprintf(name, sizeof name, "%s", json_string_value(json_object_get(o, "variant")));
            json_t *conf = json_deep_copy(base);
            json_object_update(conf, patch);
            char *js = json_dumps(conf, 0);
            ck_assert_msg(ct_tok_load_json(js, strlen(js), name, &t) == 0, "%s", ct_error_message());
            free(js);
            json_decref(conf);
            json_decref(o);
            variants++;
            continue;
        }
        json_t *jids = json_object_get(o, "ids"), *jt = json_object_get(o, "text");
        size_t nw = json_array_size(jids);
        int32_t *want = malloc((nw + 1) * sizeof *want);
        for (size_t k = 0; k < nw; k++)
            want[k] = (int32_t)json_integer_value(json_array_get(jids, k));
        if (jt) {
            int32_t *ids;
            size_t n;
            ck_assert_int_eq(ct_tok_encode(t, json_string_value(jt), json_string_length(jt), &ids, &n), 0);
            char *g = ids_str(ids, n), *w = ids_str(want, nw);
            ck_assert_msg(!strcmp(g, w), "%s line %d \"%s\": got%s want%s", name, lineno,
                          json_string_value(jt), g, w);
            free(g);
            free(w);
            free(ids);
        }
        for (int skip = 0; skip < 2; skip++) {
            char *dec;
            size_t dl;
            ck_assert_int_eq(ct_tok_decode(t, want, nw, skip, &dec, &dl), 0);
            str_eq_json(json_object_get(o, skip ? "dec_skip" : "dec"), dec, dl, skip ? "dec_skip" : "dec",
                        name, lineno);
            free(dec);
        }
        checked++;
        free(want);
        json_decref(o);
    }
    free(r.data);
    ct_tok_free(t);
    json_decref(base);
    ck_assert_int_eq(variants, 12);
    ck_assert_int_ge(checked, 3000);
}
END_TEST

/* The whole English corpus sample (9.5 MB of Gutenberg paragraphs), one encode per line:
 * token count and FNV-1a 64 of the ids equal what the reference library gives. */
START_TEST(english_corpus_matches_reference)
{
    char p[PATH_MAX], *ref_text, *text;
    size_t ref_len, len;
    ck_assert_int_eq(ct_read_file(ct_test_src(p, sizeof p, FIX "vectors/corpus-en-neox.json"), &ref_text, &ref_len), 0);
    json_t *ref = json_loadb(ref_text, ref_len, 0, NULL);
    ck_assert_ptr_nonnull(ref);
    free(ref_text);
    ck_assert_int_eq(ct_read_file(ct_test_src(p, sizeof p, "tests/fixtures/corpus/en_sample.txt.zst"), &text, &len), 0);
    ck_assert_uint_eq(len, (size_t)json_integer_value(json_object_get(ref, "bytes")));
    ct_tokenizer *t = load(FIX "gpt-neox-20b/20B_tokenizer.json.zst");
    uint64_t h = 0xCBF29CE484222325ULL;
    size_t tokens = 0, lines = 0;
    for (size_t off = 0; off < len;) {
        const char *nl = memchr(text + off, '\n', len - off);
        size_t end = nl ? (size_t)(nl - text) + 1 : len;
        int32_t *ids;
        size_t n;
        ck_assert_int_eq(ct_tok_encode(t, text + off, end - off, &ids, &n), 0);
        for (size_t i = 0; i < n; i++)
            h = (h ^ (uint32_t)ids[i]) * 0x100000001B3ULL;
        tokens += n;
        lines++;
        free(ids);
        off = end;
    }
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    ck_assert_uint_eq(lines, (size_t)json_integer_value(json_object_get(ref, "lines")));
    ck_assert_uint_eq(tokens, (size_t)json_integer_value(json_object_get(ref, "tokens")));
    ck_assert_str_eq(hex, json_string_value(json_object_get(ref, "ids_fnv1a")));
    json_decref(ref);
    free(text);
    ct_tok_free(t);
}
END_TEST

START_TEST(lookups_and_sizes)
{
    ct_tokenizer *t = load(FIX "gpt-neox-20b/20B_tokenizer.json.zst");
    size_t vs;
    ck_assert_int_eq(ct_tok_vocab_size(t, &vs), 0);
    ck_assert_uint_eq(vs, 50277); /* 50254 BPE tokens + 23 added (model card) */
    ck_assert_int_eq(ct_tok_token_id(t, "<|endoftext|>"), 0);
    ck_assert_int_eq(ct_tok_token_id(t, "<|padding|>"), 1);
    ck_assert_int_eq(ct_tok_token_id(t, "Hello"), 12092);
    ck_assert_int_eq(ct_tok_token_id(t, "no such token here"), -1);
    ck_assert_str_eq(ct_tok_id_to_token(t, 24387), "\xC4\xA0Hello"); /* "ĠHello" */
    ck_assert_str_eq(ct_tok_id_to_token(t, 50276), "  ");
    ck_assert_ptr_null(ct_tok_id_to_token(t, 50277));
    ck_assert_ptr_null(ct_tok_id_to_token(t, -5));
    ck_assert_int_eq(ct_tok_is_special(t, 0), 1);
    ck_assert_int_eq(ct_tok_is_special(t, 50276), 0);
    ck_assert_int_eq(ct_tok_is_special(t, 12092), 0);
    int32_t *ids;
    size_t n;
    ck_assert_int_eq(ct_tok_encode(t, "", 0, &ids, &n), 0);
    ck_assert_uint_eq(n, 0);
    free(ids);
    ck_assert_int_eq(ct_tok_encode(t, "a\xFF", 2, &ids, &n), CT_EINVAL);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "UTF-8"));
    ct_tok_free(t);
    t = load(FIX "olmo/allenai_gpt-neox-olmo-dolma-v1_5.json.zst");
    ck_assert_int_eq(ct_tok_vocab_size(t, &vs), 0);
    ck_assert_uint_eq(vs, 50280);
    ck_assert_int_eq(ct_tok_token_id(t, "|||IP_ADDRESS|||"), 0);
    ck_assert_int_eq(ct_tok_token_id(t, "<|endoftext|>"), 50279);
    ct_tok_free(t);
}
END_TEST

/* The NFC examples of Unicode Standard Annex #15 (figures 3-6) and Hangul. */
START_TEST(nfc_examples)
{
    static const char *cases[][2] = {
        {"\xE2\x84\xAB", "\xC3\x85"},                       /* U+212B ANGSTROM -> U+00C5 */
        {"\xE2\x84\xA6", "\xCE\xA9"},                       /* U+2126 OHM -> U+03A9 */
        {"A\xCC\x8A", "\xC3\x85"},                          /* A + ring -> U+00C5 */
        {"\xE1\xB9\xA9", "\xE1\xB9\xA9"},                   /* U+1E69 stays */
        {"s\xCC\xA3\xCC\x87", "\xE1\xB9\xA9"},              /* s + dot below + dot above */
        {"s\xCC\x87\xCC\xA3", "\xE1\xB9\xA9"},              /* reordered first */
        {"\xE1\xB8\x8B\xCC\xA3", "\xE1\xB8\x8D\xCC\x87"},   /* U+1E0B U+0323 -> U+1E0D U+0307 */
        {"q\xCC\x87\xCC\xA3", "q\xCC\xA3\xCC\x87"},         /* no composite: only reordered */
        {"\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8", "\xEA\xB0\x81"}, /* jamo -> U+AC01 */
        {"\xEA\xB0\x80\xE1\x86\xA8", "\xEA\xB0\x81"},       /* LV + T */
        {"\xE0\xA5\x98", "\xE0\xA4\x95\xE0\xA4\xBC"},       /* U+0958 is excluded from composition */
        {"\xEF\xAC\x81", "\xEF\xAC\x81"},                   /* ligature fi: compatibility only */
        {"plain ascii", "plain ascii"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tok_buf b = {0};
        ck_assert_int_eq(tok_nfc(cases[i][0], strlen(cases[i][0]), &b), 0);
        ck_assert_msg(b.n == strlen(cases[i][1]) && !memcmp(b.p, cases[i][1], b.n), "NFC case %zu", i);
        free(b.p);
    }
}
END_TEST

START_TEST(oniguruma_translation)
{
    tok_buf b = {0};
    char err[200];
    /* BLOOM's pattern: a class nested in a class is a union in Oniguruma. */
    const char *bloom = " ?[^(\\s|[.,!?\xE2\x80\xA6])]+";
    ck_assert_int_eq(tok_regex_translate(bloom, strlen(bloom), &b, err, sizeof err), 0);
    ck_assert_ptr_null(strstr(b.p, "[."));
    ck_assert_ptr_nonnull(strstr(b.p, ".,!?"));
    tok_regex *re;
    ck_assert_int_eq(tok_regex_compile(bloom, strlen(bloom), 0, &re, err, sizeof err), 0);
    tok_spans sp = {0};
    const char *s = "Hello, world! (x)";
    ck_assert_int_eq(tok_regex_find_all(re, s, strlen(s), &sp), 0);
    /* "Hello" " world" " " "x": parentheses, '|' and the listed punctuation break words. */
    ck_assert_uint_eq(sp.n, 3);
    ck_assert_uint_eq(sp.v[0].start, 0);
    ck_assert_uint_eq(sp.v[0].end, 5);
    ck_assert_uint_eq(sp.v[1].start, 6);
    ck_assert_uint_eq(sp.v[1].end, 12);
    ck_assert_uint_eq(sp.v[2].start, 15);
    tok_regex_free(re);
    free(sp.v);
    const char *neg = "[a[^b]]";
    ck_assert_int_eq(tok_regex_translate(neg, strlen(neg), &b, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "negated"));
    free(b.p);
}
END_TEST

static void expect_load_error(const char *json, int code, const char *needle)
{
    ct_tokenizer *t = (ct_tokenizer *)1;
    int rc = ct_tok_load_json(json, strlen(json), "bad.json", &t);
    ck_assert_msg(rc == code, "rc %d want %d for %s (%s)", rc, code, json, ct_error_message());
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(ct_error_message(), "bad.json") && strstr(ct_error_message(), needle),
                  "message \"%s\" lacks \"%s\"", ct_error_message(), needle);
}

#define VOCAB "\"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}"
#define BPE_OK "{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [\"a b\"]}"

START_TEST(malformed_unknown_model_type)
{
    expect_load_error("{\"model\": {\"type\": \"WordPiece\", " VOCAB "}}", CT_EFORMAT, "model type \"WordPiece\"");
    expect_load_error("{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", 0.0]]}}", CT_EFORMAT, "\"Unigram\"");
    expect_load_error("{\"model\": {\"vocab\": {}}}", CT_EFORMAT, "only BPE");
}
END_TEST

START_TEST(malformed_missing_vocab)
{
    expect_load_error("{\"model\": {\"type\": \"BPE\", \"merges\": []}}", CT_EINVAL, "model.vocab is missing");
    expect_load_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"x\"}, \"merges\": []}}", CT_EINVAL,
                      "not an integer");
    expect_load_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 99999999}, \"merges\": []}}", CT_EINVAL,
                      "not a valid id");
    expect_load_error("{\"normalizer\": null}", CT_EINVAL, "\"model\" is missing");
}
END_TEST

START_TEST(malformed_bad_merges)
{
    expect_load_error("{\"model\": {\"type\": \"BPE\", " VOCAB "}}", CT_EINVAL, "model.merges is missing");
    expect_load_error("{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [\"a c\"]}}", CT_EINVAL,
                      "\"c\" is not in the vocabulary");
    expect_load_error("{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [\"ab\"]}}", CT_EINVAL,
                      "merges[0] \"ab\" is not two tokens");
    expect_load_error("{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [\"a b\", \"a b b\"]}}", CT_EINVAL,
                      "merges[1]");
    expect_load_error("{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [\"b a\"]}}", CT_EINVAL,
                      "merged token \"ba\"");
    expect_load_error("{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [42]}}", CT_EINVAL, "merges[0]");
    expect_load_error("{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [[\"a\"]]}}", CT_EINVAL, "merges[0]");
}
END_TEST

START_TEST(malformed_not_json)
{
    expect_load_error(BPE_OK ", ", CT_EINVAL, "not valid JSON");
    expect_load_error("", CT_EINVAL, "not valid JSON");
    expect_load_error("[1, 2]", CT_EINVAL, "not a JSON object");
    char dir[PATH_MAX], path[PATH_MAX + 32];
    ct_test_tmpdir(dir, sizeof dir, "tok");
    snprintf(path, sizeof path, "%s/missing.json", dir);
    ct_tokenizer *t;
    ck_assert_int_eq(ct_tok_load(path, &t), CT_EIO);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "missing.json"));
    /* The same content from a plain file loads. */
    snprintf(path, sizeof path, "%s/ok.json", dir);
    const char *ok = BPE_OK "}";
    ck_assert_int_eq(ct_write_file_atomic(path, ok, strlen(ok)), 0);
    ck_assert_int_eq(ct_tok_load(path, &t), 0);
    ck_assert_int_eq(ct_tok_token_id(t, "ab"), 2);
    ct_tok_free(t);
    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(unsupported_parts)
{
    expect_load_error(BPE_OK ", \"normalizer\": {\"type\": \"NFKC\"}}", CT_EFORMAT, "normalizer type \"NFKC\"");
    expect_load_error(BPE_OK ", \"pre_tokenizer\": {\"type\": \"Metaspace\"}}", CT_EFORMAT,
                      "pre_tokenizer type \"Metaspace\"");
    expect_load_error(BPE_OK ", \"decoder\": {\"type\": \"WordPiece\"}}", CT_EFORMAT, "decoder type \"WordPiece\"");
    expect_load_error("{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [], \"dropout\": 0.1}}", CT_EFORMAT,
                      "dropout");
    expect_load_error(BPE_OK ", \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, "
                      "\"behavior\": \"Isolated\"}}", CT_EFORMAT, "Split pattern");
    expect_load_error(BPE_OK ", \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, "
                      "\"behavior\": \"Sideways\"}}", CT_EFORMAT, "behavior \"Sideways\"");
    expect_load_error(BPE_OK ", \"version\": \"2.0\"}", CT_EFORMAT, "version");
}
END_TEST

/* A tiny BPE with an unknown-token and fused unknowns, checked by hand: merges apply by
 * rank, not position. */
START_TEST(small_bpe_by_hand)
{
    const char *j = "{\"model\": {\"type\": \"BPE\", \"unk_token\": \"?\", \"fuse_unk\": true, "
                    "\"vocab\": {\"?\": 0, \"a\": 1, \"b\": 2, \"c\": 3, \"bc\": 4, \"ab\": 5, \"abc\": 6}, "
                    "\"merges\": [\"b c\", \"a b\", [\"a\", \"bc\"]]}, \"pre_tokenizer\": "
                    "{\"type\": \"Split\", \"pattern\": {\"String\": \" \"}, \"behavior\": \"Removed\"}}";
    ct_tokenizer *t;
    ck_assert_int_eq(ct_tok_load_json(j, strlen(j), "small", &t), 0);
    int32_t *ids;
    size_t n;
    /* "abc": "b c" has rank 0, then "a bc" -> abc. "ab": only "a b". "xyab": x, y fuse. */
    ck_assert_int_eq(ct_tok_encode(t, "abc ab xyab", 11, &ids, &n), 0);
    int32_t want[] = {6, 5, 0, 5};
    ck_assert_uint_eq(n, 4);
    ck_assert_mem_eq(ids, want, sizeof want);
    char *dec;
    ck_assert_int_eq(ct_tok_decode(t, ids, n, 0, &dec, NULL), 0);
    ck_assert_str_eq(dec, "abc ab ? ab"); /* no decoder: tokens joined by spaces */
    free(dec);
    free(ids);
    ct_tok_free(t);
}
END_TEST

static uint32_t rng_state = 2463534242u;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state % n;
}

/* Random text from the scripts and corner cases that matter (combining marks, Hangul,
 * Devanagari nukta, emoji, Unicode spaces, added tokens): the text must come back
 * from decode(encode(.)) exactly (NFC-normalized for tokenizers with NFC). */
static size_t random_text(char *buf)
{
    static const uint32_t ranges[][2] = {
        {0x20, 0x7E}, {0x20, 0x20}, {0x09, 0x0D}, {0xA0, 0xFF}, {0x300, 0x36F}, {0x391, 0x3C9},
        {0x410, 0x44F}, {0x5D0, 0x5EA}, {0x621, 0x64A}, {0x900, 0x97F}, {0x1100, 0x1112},
        {0x1161, 0x1175}, {0x11A8, 0x11C2}, {0xAC00, 0xD7A3}, {0x2000, 0x200D}, {0x2126, 0x212B},
        {0x3000, 0x303F}, {0x4E00, 0x4E40}, {0x1F300, 0x1F64F}, {0x1D400, 0x1D43F}, {0x1E00, 0x1EFF}};
    static const char *inserts[] = {"<|endoftext|>", "  ", "   ", "|||EMAIL_ADDRESS|||", "<s>", "\n\n", "'s", "'ll"};
    size_t n = 0, k = rnd(40);
    for (size_t i = 0; i < k; i++) {
        if (rnd(12) == 0) {
            const char *s = inserts[rnd(sizeof inserts / sizeof inserts[0])];
            memcpy(buf + n, s, strlen(s));
            n += strlen(s);
            continue;
        }
        size_t r = rnd(sizeof ranges / sizeof ranges[0]);
        uint32_t cp = ranges[r][0] + rnd(ranges[r][1] - ranges[r][0] + 1);
        n += (size_t)tok_utf8_encode(cp, buf + n);
    }
    buf[n] = 0;
    return n;
}

START_TEST(random_text_round_trips)
{
    static const int which[] = {0, 3, 5}; /* NeoX (NFC), dolma2, BLOOM-like */
    for (size_t w = 0; w < sizeof which / sizeof which[0]; w++) {
        ct_tokenizer *t = load(sets[which[w]].file);
        char buf[1024];
        for (int it = 0; it < 3000; it++) {
            size_t n = random_text(buf);
            int32_t *ids;
            size_t m;
            ck_assert_int_eq(ct_tok_encode(t, buf, n, &ids, &m), 0);
            char *dec;
            size_t dl;
            ck_assert_int_eq(ct_tok_decode(t, ids, m, 0, &dec, &dl), 0);
            tok_buf want = {0};
            if (sets[which[w]].nfc)
                ck_assert_int_eq(tok_nfc(buf, n, &want), 0);
            else
                tok_buf_put(&want, buf, n);
            ck_assert_msg(dl == want.n && !memcmp(dec, want.p ? want.p : "", dl), "%s: \"%s\" came back as \"%s\"",
                          sets[which[w]].name, buf, dec);
            free(want.p);
            free(dec);
            free(ids);
        }
        /* Arbitrary ids, known or not, decode without failing. */
        for (int it = 0; it < 500; it++) {
            int32_t ids[8];
            for (int k = 0; k < 8; k++)
                ids[k] = (int32_t)(rnd(3) == 0 ? rnd(0x7FFFFFFF) - 0x3FFFFFFF : rnd(110000));
            char *dec;
            ck_assert_int_eq(ct_tok_decode(t, ids, 8, (int)rnd(2), &dec, NULL), 0);
            size_t bad;
            ck_assert(tok_utf8_valid(dec, strlen(dec), &bad)); /* U+FFFD, never raw bytes */
            free(dec);
        }
        ct_tok_free(t);
    }
}
END_TEST

/* Damaged files load or fail cleanly, never crash (run under the sanitizers in CI). */
START_TEST(mutated_json_never_crashes)
{
    const char *j = "{\"model\": {\"type\": \"BPE\", \"unk_token\": \"?\", "
                    "\"vocab\": {\"?\": 0, \"a\": 1, \"b\": 2, \"c\": 3, \"bc\": 4, \"ab\": 5, \"abc\": 6}, "
                    "\"merges\": [\"b c\", \"a b\", [\"a\", \"bc\"]]}, \"normalizer\": {\"type\": \"NFC\"}, "
                    "\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", "
                    "\"pattern\": {\"Regex\": \"[a-c]+\"}, \"behavior\": \"Isolated\", \"invert\": false}, "
                    "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}]}, "
                    "\"decoder\": {\"type\": \"ByteLevel\"}, \"added_tokens\": [{\"id\": 7, \"content\": \"<x>\", "
                    "\"special\": true, \"normalized\": false, \"lstrip\": true, \"rstrip\": true, \"single_word\": true}]}";
    size_t n = strlen(j);
    char *m = malloc(n + 1);
    int loaded = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(m, j, n + 1);
        for (int k = 0, cnt = 1 + (int)rnd(3); k < cnt; k++)
            m[rnd((uint32_t)n)] = "{}[]\":,ab c\\0-1x?"[rnd(18)];
        ct_tokenizer *t;
        if (ct_tok_load_json(m, n, "mutated", &t) == 0) {
            loaded++;
            int32_t *ids;
            size_t k;
            if (ct_tok_encode(t, "abc <x> cab?", 12, &ids, &k) == 0) {
                char *dec;
                ck_assert_int_eq(ct_tok_decode(t, ids, k, 1, &dec, NULL), 0);
                free(dec);
                free(ids);
            }
            ct_tok_free(t);
        } else {
            ck_assert_ptr_nonnull(strstr(ct_error_message(), "mutated"));
        }
    }
    ck_assert_int_gt(loaded, 0);
    free(m);
}
END_TEST

typedef struct {
    const ct_tokenizer *t;
    char **texts;
    size_t n;
    char **out;
} thread_arg;

static void *encode_all(void *p)
{
    thread_arg *a = p;
    for (size_t i = 0; i < a->n; i++) {
        int32_t *ids;
        size_t n;
        if (ct_tok_encode(a->t, a->texts[i], strlen(a->texts[i]), &ids, &n))
            return (void *)1;
        a->out[i] = ids_str(ids, n);
        free(ids);
    }
    return NULL;
}

START_TEST(threads_agree)
{
    ct_tokenizer *t = load(FIX "gpt-neox-20b/20B_tokenizer.json.zst");
    lines_t r;
    lines_open(&r, FIX "vectors/gpt-neox-20b.jsonl.gz");
    enum { N = 600, T = 4 };
    char *texts[N];
    size_t n = 0;
    const char *line;
    size_t len;
    while (n < N && next_line(&r, &line, &len)) {
        json_t *o = json_loadb(line, len, 0, NULL);
        json_t *jt = o ? json_object_get(o, "text") : NULL;
        if (jt)
            texts[n++] = strdup(json_string_value(jt));
        json_decref(o);
    }
    free(r.data);
    ck_assert_uint_eq(n, N);
    char *out[T][N];
    pthread_t th[T];
    thread_arg args[T];
    for (int k = 0; k < T; k++) {
        args[k] = (thread_arg){t, texts, n, out[k]};
        ck_assert_int_eq(pthread_create(&th[k], NULL, encode_all, &args[k]), 0);
    }
    for (int k = 0; k < T; k++) {
        void *ret;
        pthread_join(th[k], &ret);
        ck_assert_ptr_null(ret);
    }
    for (size_t i = 0; i < n; i++) {
        for (int k = 1; k < T; k++) {
            ck_assert_str_eq(out[k][i], out[0][i]);
            free(out[k][i]);
        }
        free(out[0][i]);
        free(texts[i]);
    }
    ct_tok_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tokenizer");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, llama_cpp_neox_and_gpt2);
    tcase_add_loop_test(tc, hf_vectors, 0, (int)(sizeof sets / sizeof sets[0]));
    tcase_add_test(tc, hf_variants);
    tcase_add_test(tc, english_corpus_matches_reference);
    tcase_add_test(tc, lookups_and_sizes);
    tcase_add_test(tc, nfc_examples);
    tcase_add_test(tc, oniguruma_translation);
    tcase_add_test(tc, malformed_unknown_model_type);
    tcase_add_test(tc, malformed_missing_vocab);
    tcase_add_test(tc, malformed_bad_merges);
    tcase_add_test(tc, malformed_not_json);
    tcase_add_test(tc, unsupported_parts);
    tcase_add_test(tc, small_bpe_by_hand);
    tcase_add_test(tc, random_text_round_trips);
    tcase_add_test(tc, mutated_json_never_crashes);
    tcase_add_test(tc, threads_agree);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

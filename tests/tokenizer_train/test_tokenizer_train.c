/* The BPE trainer: hand-computed merges, the vocabulary's layout, agreement with the
 * Hugging Face library (its trainer's merges, its ids with the trained files), loading
 * through ct_tok_load, round trips, determinism, errors and the CLI command. Fixtures:
 * tests/fixtures/tokenizer_train (see SOURCE.md there). */
#include <ftw.h>
#include <jansson.h>
#include <stdint.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "common/error.h"
#include "common/io.h"
#include "models/corpus/corpus.h"
#include "models/tokenizer/tokenizer.h"
#include "models/tokenizer/train.h"
#include "tests/support/testutil.h"

/* Removes a test's scratch directory and everything in it. */
static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void rm_tree(const char *dir) { ck_assert_int_eq(nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0); }

#define FIX "tests/fixtures/tokenizer_train/"

static const char *const raw_specials[] = {"<s>", "</s>", "<|endoftext|>"};

/* The two trained fixtures' options (gen_vectors.mjs passes the same to the CLI). */
static ct_tok_train_opts nfc_opts(void)
{
    ct_tok_train_opts o = CT_TOK_TRAIN_OPTS_INIT;
    o.vocab_size = 2048;
    o.min_frequency = 2;
    return o;
}

static ct_tok_train_opts raw_opts(void)
{
    ct_tok_train_opts o = CT_TOK_TRAIN_OPTS_INIT;
    o.vocab_size = 1024;
    o.min_frequency = 3;
    o.nfc = 0;
    o.special_tokens = raw_specials;
    o.n_special = 3;
    return o;
}

static ct_tok_trainer *train_docs(const ct_tok_train_opts *o, const char *const *docs, size_t n)
{
    ct_tok_trainer *t;
    ck_assert_int_eq(ct_tok_trainer_new(o, &t), 0);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(ct_tok_trainer_feed(t, docs[i], strlen(docs[i])), 0);
    ck_assert_int_eq(ct_tok_trainer_train(t), 0);
    return t;
}

/* Trains on a corpus file (text format), at most max_docs documents (0: all). */
static ct_tok_trainer *train_file(const ct_tok_train_opts *o, const char *rel, size_t max_docs)
{
    char path[4096];
    ct_test_src(path, sizeof path, rel);
    const char *files[] = {path};
    ct_corpus *c;
    ck_assert_msg(ct_corpus_open(files, 1, CT_CORPUS_TEXT, NULL, &c) == 0, "%s", ct_error_message());
    ct_tok_trainer *t;
    ck_assert_int_eq(ct_tok_trainer_new(o, &t), 0);
    const char *s;
    size_t n, docs = 0;
    int rc;
    while ((max_docs == 0 || docs < max_docs) && (rc = ct_corpus_next(c, &s, &n)) == 1) {
        ck_assert_int_eq(ct_tok_trainer_feed(t, s, n), 0);
        docs++;
    }
    ct_corpus_close(c);
    ck_assert_int_eq(ct_tok_trainer_train(t), 0);
    return t;
}

static void assert_merges(const ct_tok_trainer *t, const char *const (*want)[2], size_t n)
{
    ct_tok_train_stats st;
    ct_tok_trainer_stats(t, &st);
    ck_assert_uint_eq(st.merges, n);
    for (size_t i = 0; i < n; i++) {
        const char *l, *r;
        ck_assert_int_eq(ct_tok_trainer_merge(t, i, &l, &r), 0);
        ck_assert_str_eq(l, want[i][0]);
        ck_assert_str_eq(r, want[i][1]);
    }
}

static ct_tokenizer *load_trained(const ct_tok_trainer *t)
{
    char *js;
    size_t n;
    ck_assert_int_eq(ct_tok_trainer_json(t, &js, &n), 0);
    ct_tokenizer *tok;
    ck_assert_msg(ct_tok_load_json(js, n, "trained", &tok) == 0, "%s", ct_error_message());
    free(js);
    return tok;
}

/* The classic example: in "aaabdaaabac" (one piece, count 1) the pairs are aa x4
 * (overlapping occurrences counted), ab x2, and bd, da, ba, ac once. Merging (a, a)
 * left to right gives [aa a b d aa a b a c]: now (aa, a) and (a, b) both occur twice,
 * and the tie goes to the smaller ids, (a, b), since "aa" is newer than "a". Then
 * [aa ab d aa ab a c] leaves (aa, ab) twice, everything else once. */
START_TEST(test_toy_classic)
{
    ct_tok_train_opts o = CT_TOK_TRAIN_OPTS_INIT;
    o.vocab_size = 100000;
    const char *doc[] = {"aaabdaaabac"};
    ct_tok_trainer *t = train_docs(&o, doc, 1);
    const char *const want[][2] = {{"a", "a"}, {"a", "b"}, {"aa", "ab"}};
    assert_merges(t, want, 3);
    ct_tok_train_stats st;
    ct_tok_trainer_stats(t, &st);
    ck_assert_uint_eq(st.vocab, 2 + 256 + 3);
    ck_assert_uint_eq(st.pieces, 1);
    ck_assert_uint_eq(st.distinct, 1);
    ct_tokenizer *tok = load_trained(t);
    ck_assert_int_eq(ct_tok_token_id(tok, "aa"), 258);
    ck_assert_int_eq(ct_tok_token_id(tok, "ab"), 259);
    ck_assert_int_eq(ct_tok_token_id(tok, "aaab"), 260);
    int32_t *ids;
    size_t n;
    ck_assert_int_eq(ct_tok_encode(tok, "aaabdaaabac", 11, &ids, &n), 0);
    ck_assert_uint_eq(n, 5); /* aaab d aaab a c */
    ck_assert_int_eq(ids[0], 260);
    ck_assert_int_eq(ids[2], 260);
    free(ids);
    ct_tok_free(tok);
    ct_tok_trainer_free(t);

    /* the vocabulary limit counts tokens, not merges: room for two merges only */
    o.vocab_size = 2 + 256 + 2;
    t = train_docs(&o, doc, 1);
    assert_merges(t, want, 2);
    ct_tok_trainer_free(t);
}
END_TEST

/* The Hugging Face library's own trainer test (bpe/trainer.rs, test_train): these word
 * counts with min_frequency 2 give exactly r+e, a+re, i+s. Each word is its own
 * document so that no space joins it; "GPT-2" splits into GPT, -, 2. */
START_TEST(test_hf_unit_example)
{
    const char *docs[] = {"roses", "are", "are", "red", "voilets", "blue", "BERT",
                          "is",    "is",  "big", "and", "so",      "GPT-2"};
    ct_tok_train_opts o = CT_TOK_TRAIN_OPTS_INIT;
    o.vocab_size = 30000;
    ct_tok_trainer *t = train_docs(&o, docs, 13);
    const char *const want[][2] = {{"r", "e"}, {"a", "re"}, {"i", "s"}};
    assert_merges(t, want, 3);
    ct_tok_train_stats st;
    ct_tok_trainer_stats(t, &st);
    ck_assert_uint_eq(st.pieces, 15);
    ck_assert_uint_eq(st.distinct, 13);
    ct_tok_trainer_free(t);
}
END_TEST

START_TEST(test_vocab_layout)
{
    ct_tok_train_opts o = nfc_opts();
    const char *docs[] = {"Hello world, hello worlds! 123 123 123", "  spaced   out  "};
    ct_tok_trainer *t = train_docs(&o, docs, 2);
    ct_tokenizer *tok = load_trained(t);
    ck_assert_int_eq(ct_tok_token_id(tok, "<|endoftext|>"), 0);
    ck_assert_int_eq(ct_tok_token_id(tok, "<|padding|>"), 1);
    ck_assert(ct_tok_is_special(tok, 0) && ct_tok_is_special(tok, 1) && !ct_tok_is_special(tok, 2));
    /* the 256 byte symbols in code point order, as in GPT-NeoX-20B's file: '!' is the
     * first printable byte, Ā (byte 0) the first remapped one, Ń (byte 173) the last */
    ck_assert_int_eq(ct_tok_token_id(tok, "!"), 2);
    ck_assert_int_eq(ct_tok_token_id(tok, "~"), 2 + 93);
    ck_assert_int_eq(ct_tok_token_id(tok, "\xC2\xA1"), 2 + 94);          /* ¡ */
    ck_assert_int_eq(ct_tok_token_id(tok, "\xC3\xBF"), 2 + 187);         /* ÿ */
    ck_assert_int_eq(ct_tok_token_id(tok, "\xC4\x80"), 2 + 188);         /* Ā = byte 0 */
    ck_assert_int_eq(ct_tok_token_id(tok, "\xC4\xA0"), 2 + 188 + 32);    /* Ġ = space */
    ck_assert_int_eq(ct_tok_token_id(tok, "\xC5\x83"), 2 + 255);         /* Ń = byte 173 */
    size_t vs;
    ck_assert_int_eq(ct_tok_vocab_size(tok, &vs), 0);
    ct_tok_train_stats st;
    ct_tok_trainer_stats(t, &st);
    ck_assert_uint_eq(vs, st.vocab);
    ck_assert_uint_eq(st.vocab, 258 + st.merges); /* no merge repeated a token here */
    /* merged tokens follow in rank order */
    for (size_t i = 0; i < st.merges; i++) {
        const char *l, *r;
        ck_assert_int_eq(ct_tok_trainer_merge(t, i, &l, &r), 0);
        char buf[256];
        snprintf(buf, sizeof buf, "%s%s", l, r);
        ck_assert_int_eq(ct_tok_token_id(tok, buf), (int32_t)(258 + i));
    }
    const char *l, *r;
    ck_assert_int_eq(ct_tok_trainer_merge(t, st.merges, &l, &r), CT_EINVAL);
    ct_tok_free(tok);
    ct_tok_trainer_free(t);

    /* custom special tokens, a duplicate kept once */
    const char *const sp[] = {"[A]", "[B]", "[A]"};
    o.special_tokens = sp;
    o.n_special = 3;
    t = train_docs(&o, docs, 2);
    tok = load_trained(t);
    ck_assert_int_eq(ct_tok_token_id(tok, "[A]"), 0);
    ck_assert_int_eq(ct_tok_token_id(tok, "[B]"), 1);
    ck_assert_int_eq(ct_tok_token_id(tok, "!"), 2);
    ck_assert_int_eq(ct_tok_token_id(tok, "<|endoftext|>"), -1);
    int32_t *ids;
    size_t n;
    ck_assert_int_eq(ct_tok_encode(tok, "x[B]y", 5, &ids, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(ids[1], 1);
    free(ids);
    ct_tok_free(tok);
    ct_tok_trainer_free(t);

    /* special tokens that need escaping in JSON */
    const char *const odd[] = {"q\"uote\\back", "tab\tnl\n\x01ctl", "\xC3\xA9t\xC3\xA9"};
    o.special_tokens = odd;
    o.n_special = 3;
    t = train_docs(&o, docs, 2);
    tok = load_trained(t);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(ct_tok_token_id(tok, odd[i]), i);
        ck_assert(ct_tok_is_special(tok, i));
    }
    ct_tok_free(tok);
    ct_tok_trainer_free(t);

    /* no special tokens at all */
    o.n_special = 0;
    o.vocab_size = 256;
    t = train_docs(&o, docs, 2);
    tok = load_trained(t);
    ck_assert_int_eq(ct_tok_token_id(tok, "!"), 0);
    ck_assert_int_eq(ct_tok_vocab_size(tok, &vs), 0);
    ck_assert_uint_eq(vs, 256);
    ct_tok_free(tok);
    ct_tok_trainer_free(t);
}
END_TEST

/* The library's own BpeTrainer on the same text (trainer defaults: vocab 30000 and
 * min_frequency 0, which exhausts every pair of this small corpus) learned these
 * merges; the alphabet it starts from holds only the characters it saw, but ids keep
 * the same order, so the ties fall the same way and the lists must be equal. */
START_TEST(test_hf_trainer_merges)
{
    char path[4096];
    char *text;
    size_t len;
    ck_assert_int_eq(ct_read_file(ct_test_src(path, sizeof path, FIX "hf_merges.txt.gz"), &text, &len), 0);
    ct_tok_train_opts o = CT_TOK_TRAIN_OPTS_INIT;
    o.vocab_size = 1 << 20;
    o.min_frequency = 0;
    ct_tok_trainer *t = train_file(&o, FIX "train_corpus.txt.gz", 0);
    size_t rank = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save), rank++) {
        char *sp = strchr(line, ' ');
        ck_assert_ptr_nonnull(sp);
        *sp = 0;
        const char *l, *r;
        ck_assert_msg(ct_tok_trainer_merge(t, rank, &l, &r) == 0, "rank %zu missing", rank);
        ck_assert_msg(!strcmp(l, line) && !strcmp(r, sp + 1), "rank %zu: %s %s, library: %s %s", rank, l, r,
                      line, sp + 1);
    }
    ck_assert_uint_gt(rank, 10000);
    ct_tok_train_stats st;
    ct_tok_trainer_stats(t, &st);
    ck_assert_uint_eq(st.merges, rank); /* both ran out of pairs at the same point */
    free(text);
    ct_tok_trainer_free(t);
}
END_TEST

static void assert_same_as_fixture(const ct_tok_trainer *t, const char *rel)
{
    char path[4096];
    char *want, *got;
    size_t wn, gn;
    ck_assert_int_eq(ct_read_file(ct_test_src(path, sizeof path, rel), &want, &wn), 0);
    ck_assert_int_eq(ct_tok_trainer_json(t, &got, &gn), 0);
    ck_assert_uint_eq(gn, wn);
    ck_assert_msg(memcmp(got, want, wn) == 0, "%s differs", rel);
    free(want);
    free(got);
}

/* The shipped files were written by the CLI and rewritten unchanged by the library's
 * save; training again gives the same bytes, and so does a second trainer. */
START_TEST(test_fixture_bytes_and_determinism)
{
    ct_tok_train_opts o = nfc_opts();
    ct_tok_trainer *a = train_file(&o, FIX "train_corpus.txt.gz", 0);
    ct_tok_trainer *b = train_file(&o, FIX "train_corpus.txt.gz", 0);
    assert_same_as_fixture(a, FIX "trained-nfc.json.gz");
    assert_same_as_fixture(b, FIX "trained-nfc.json.gz");
    ct_tok_trainer_free(a);
    ct_tok_trainer_free(b);
    o = raw_opts();
    a = train_file(&o, FIX "train_corpus.txt.gz", 0);
    assert_same_as_fixture(a, FIX "trained-raw.json.gz");
    ct_tok_train_stats st;
    ct_tok_trainer_stats(a, &st);
    ck_assert_uint_eq(st.vocab, 1024);
    ct_tok_trainer_free(a);
}
END_TEST

/* ids from the library for the trained files: ct_tok_load must give the same, and
 * decoding the same text. */
static void check_vectors(const char *tok_rel, const char *vec_rel, int roundtrip)
{
    char path[4096];
    ct_tokenizer *tok;
    ck_assert_msg(ct_tok_load(ct_test_src(path, sizeof path, tok_rel), &tok) == 0, "%s", ct_error_message());
    char *text;
    size_t len;
    ck_assert_int_eq(ct_read_file(ct_test_src(path, sizeof path, vec_rel), &text, &len), 0);
    size_t lines = 0, tokens = 0, trips = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_error_t je;
        json_t *v = json_loads(line, JSON_ALLOW_NUL, &je);
        ck_assert_ptr_nonnull(v);
        json_t *jt = json_object_get(v, "text"), *jids = json_object_get(v, "ids");
        const char *s = json_string_value(jt);
        size_t sn = json_string_length(jt);
        int32_t *ids;
        size_t n;
        ck_assert_int_eq(ct_tok_encode(tok, s, sn, &ids, &n), 0);
        ck_assert_msg(n == json_array_size(jids), "%s line %zu: %zu ids, library %zu", vec_rel, lines + 1, n,
                      json_array_size(jids));
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(ids[i] == json_integer_value(json_array_get(jids, i)), "%s line %zu: id %zu differs",
                          vec_rel, lines + 1, i);
        for (int skip = 0; skip < 2; skip++) {
            json_t *jd = json_object_get(v, skip ? "dec_skip" : "dec");
            char *d;
            size_t dn;
            ck_assert_int_eq(ct_tok_decode(tok, ids, n, skip, &d, &dn), 0);
            ck_assert_msg(dn == json_string_length(jd) && memcmp(d, json_string_value(jd), dn) == 0,
                          "%s line %zu: decode(skip=%d) differs", vec_rel, lines + 1, skip);
            if (roundtrip && !skip) {
                /* without a normalizer every text comes back exactly */
                ck_assert_msg(dn == sn && memcmp(d, s, sn) == 0, "%s line %zu: round trip", vec_rel, lines + 1);
                trips++;
            }
            free(d);
        }
        tokens += n;
        free(ids);
        json_decref(v);
        lines++;
    }
    ck_assert_uint_gt(lines, 1000);
    ck_assert_uint_gt(tokens, 50000);
    ck_assert_uint_eq(trips, roundtrip ? lines : 0);
    free(text);
    ct_tok_free(tok);
}

START_TEST(test_hf_vectors)
{
    check_vectors(FIX "trained-nfc.json.gz", FIX "trained-nfc.jsonl.gz", 0);
    check_vectors(FIX "trained-raw.json.gz", FIX "trained-raw.jsonl.gz", 1);
}
END_TEST

/* decode(encode(x)) == x for held-out English paragraphs, with a tokenizer trained on
 * the paragraphs before them (no normalizer, so the text must come back byte for byte),
 * and fewer tokens than bytes. */
START_TEST(test_roundtrip_en_sample)
{
    ct_tok_train_opts o = CT_TOK_TRAIN_OPTS_INIT;
    o.vocab_size = 1000;
    o.nfc = 0;
    ct_tok_trainer *t = train_file(&o, "tests/fixtures/corpus/en_sample.txt.zst", 2000);
    ct_tokenizer *tok = load_trained(t);
    char path[4096];
    const char *files[] = {ct_test_src(path, sizeof path, "tests/fixtures/corpus/en_sample.txt.zst")};
    ct_corpus *c;
    ck_assert_int_eq(ct_corpus_open(files, 1, CT_CORPUS_TEXT, NULL, &c), 0);
    const char *s;
    size_t n, docs = 0, bytes = 0, tokens = 0;
    while (docs < 3000 && ct_corpus_next(c, &s, &n) == 1) {
        if (docs++ < 2000)
            continue;
        int32_t *ids;
        size_t k;
        ck_assert_int_eq(ct_tok_encode(tok, s, n, &ids, &k), 0);
        char *d;
        size_t dn;
        ck_assert_int_eq(ct_tok_decode(tok, ids, k, 0, &d, &dn), 0);
        ck_assert(dn == n && memcmp(d, s, n) == 0);
        bytes += n;
        tokens += k;
        free(d);
        free(ids);
    }
    ck_assert_uint_eq(docs, 3000);
    ck_assert_uint_lt(tokens * 5, bytes * 2); /* 1000 tokens compress English over 2.5x */
    ct_corpus_close(c);
    ct_tok_free(tok);
    ct_tok_trainer_free(t);
}
END_TEST

START_TEST(test_min_frequency)
{
    /* no pair occurs 1000 times: only the byte symbols, and still a working tokenizer */
    ct_tok_train_opts o = CT_TOK_TRAIN_OPTS_INIT;
    o.min_frequency = 1000;
    const char *docs[] = {"the cat sat on the mat", "the end"};
    ct_tok_trainer *t = train_docs(&o, docs, 2);
    ct_tok_train_stats st;
    ct_tok_trainer_stats(t, &st);
    ck_assert_uint_eq(st.merges, 0);
    ck_assert_uint_eq(st.vocab, 258);
    ct_tokenizer *tok = load_trained(t);
    int32_t *ids;
    size_t n;
    const char *x = "caf\xC3\xA9!";
    ck_assert_int_eq(ct_tok_encode(tok, x, strlen(x), &ids, &n), 0);
    ck_assert_uint_eq(n, strlen(x)); /* one token per byte */
    char *d;
    size_t dn;
    ck_assert_int_eq(ct_tok_decode(tok, ids, n, 0, &d, &dn), 0);
    ck_assert_str_eq(d, x);
    free(d);
    free(ids);
    ct_tok_free(tok);
    ct_tok_trainer_free(t);

    /* (a, t) (cat, sat, mat), (t, h) and (h, e) (the, the, the) occur 3 times: the tie
     * goes to the smaller ids, a < h < t; after h+e, (t, he) has the 3 of (t, h) */
    o.min_frequency = 3;
    t = train_docs(&o, docs, 2);
    const char *const want[][2] = {{"a", "t"}, {"h", "e"}, {"t", "he"}};
    assert_merges(t, want, 3);
    ct_tok_trainer_free(t);
    o.min_frequency = 4;
    t = train_docs(&o, docs, 2);
    ct_tok_trainer_stats(t, &st);
    ck_assert_uint_eq(st.merges, 0);
    ct_tok_trainer_free(t);
}
END_TEST

START_TEST(test_nfc_training)
{
    /* decomposed é (e + U+0301) is counted as the precomposed one with NFC; without
     * it the combining accent (a mark, not a letter) even splits off as its own piece */
    const char *docs[] = {"cafe\xCC\x81 cafe\xCC\x81 caf\xC3\xA9"};
    ct_tok_train_opts o = CT_TOK_TRAIN_OPTS_INIT;
    o.vocab_size = 100000;
    ct_tok_trainer *t = train_docs(&o, docs, 1);
    ct_tok_train_stats st;
    ct_tok_trainer_stats(t, &st);
    ck_assert_uint_eq(st.distinct, 2); /* "café", " café" */
    ct_tok_trainer_free(t);
    o.nfc = 0;
    t = train_docs(&o, docs, 1);
    ct_tok_trainer_stats(t, &st);
    ck_assert_uint_eq(st.distinct, 4); /* "cafe", U+0301, " cafe", " café" */
    char *js;
    size_t n;
    ck_assert_int_eq(ct_tok_trainer_json(t, &js, &n), 0);
    ck_assert_ptr_nonnull(strstr(js, "\"normalizer\": null"));
    free(js);
    ct_tok_trainer_free(t);
}
END_TEST

START_TEST(test_errors)
{
    ct_tok_train_opts o = CT_TOK_TRAIN_OPTS_INIT;
    ct_tok_trainer *t;
    o.vocab_size = 257; /* 2 specials + 256 bytes do not fit */
    ck_assert_int_eq(ct_tok_trainer_new(&o, &t), CT_EINVAL);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "258"));
    o.vocab_size = 4096;
    const char *const bad[] = {"ok", ""};
    o.special_tokens = bad;
    o.n_special = 2;
    ck_assert_int_eq(ct_tok_trainer_new(&o, &t), CT_EINVAL);
    o.special_tokens = NULL;
    ck_assert_int_eq(ct_tok_trainer_new(&o, &t), 0);
    char *js;
    size_t n;
    ck_assert_int_eq(ct_tok_trainer_json(t, &js, &n), CT_EINVAL); /* not trained */
    ck_assert_int_eq(ct_tok_trainer_feed(t, "ab\xFF", 3), CT_EINVAL);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "UTF-8"));
    ck_assert_int_eq(ct_tok_trainer_feed(t, "", 0), 0);
    ck_assert_int_eq(ct_tok_trainer_train(t), 0);
    ck_assert_int_eq(ct_tok_trainer_train(t), CT_EINVAL);
    ck_assert_int_eq(ct_tok_trainer_feed(t, "x", 1), CT_EINVAL);
    ct_tok_train_stats st;
    ct_tok_trainer_stats(t, &st);
    ck_assert_uint_eq(st.vocab, 258);
    ck_assert_int_eq(ct_tok_trainer_save(t, "/nonexistent-dir/tokenizer.json"), CT_EIO);
    ct_tok_trainer_free(t);
    ct_tok_trainer_free(NULL);
}
END_TEST

static int run_cli(const char *const *args, int n)
{
    char *argv[32];
    for (int i = 0; i < n; i++)
        argv[i] = (char *)args[i];
    argv[n] = NULL;
    return ct_cmd_tokenizer_train(n, argv);
}

START_TEST(test_cli)
{
    char dir[256], out[512], corpus[4096], want_path[4096];
    ct_test_tmpdir(dir, sizeof dir, "bpe-cli");
    snprintf(out, sizeof out, "%s/tok.json", dir);
    ct_test_src(corpus, sizeof corpus, FIX "train_corpus.txt.gz");
    const char *args[] = {"train", "--vocab-size", "1024", "--min-frequency", "3", "--no-nfc",
                          "--special", "<s>", "--special", "</s>", "--special", "<|endoftext|>",
                          "--out", out, corpus};
    ck_assert_int_eq(run_cli(args, 15), 0);
    char *got, *want;
    size_t gn, wn;
    ck_assert_int_eq(ct_read_file(out, &got, &gn), 0);
    ck_assert_int_eq(ct_read_file(ct_test_src(want_path, sizeof want_path, FIX "trained-raw.json.gz"), &want, &wn),
                     0);
    ck_assert(gn == wn && memcmp(got, want, wn) == 0);
    free(got);
    free(want);

    /* jsonl input through a glob */
    char jl[512], pat[512];
    snprintf(jl, sizeof jl, "%s/docs.jsonl", dir);
    FILE *f = fopen(jl, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\"body\": \"aaabdaaabac\"}\n", f);
    fclose(f);
    snprintf(pat, sizeof pat, "%s/*.jsonl", dir);
    const char *args2[] = {"train", "--vocab-size", "300", "--format", "jsonl", "--text-field", "body",
                           "--out", out, pat};
    ck_assert_int_eq(run_cli(args2, 10), 0);
    ct_tokenizer *tok;
    ck_assert_int_eq(ct_tok_load(out, &tok), 0);
    ck_assert_int_eq(ct_tok_token_id(tok, "aaab"), 260);
    ct_tok_free(tok);

    /* usage errors: 2; run-time errors: 1 and no file written */
    const char *no_out[] = {"train", "--vocab-size", "300", corpus};
    ck_assert_int_eq(run_cli(no_out, 4), 2);
    const char *no_files[] = {"train", "--vocab-size", "300", "--out", out};
    ck_assert_int_eq(run_cli(no_files, 5), 2);
    const char *bad_num[] = {"train", "--vocab-size", "-5", "--out", out, corpus};
    ck_assert_int_eq(run_cli(bad_num, 6), 2);
    const char *bad_opt[] = {"train", "--vocab-size", "300", "--bogus", "--out", out, corpus};
    ck_assert_int_eq(run_cli(bad_opt, 7), 2);
    char out2[512];
    snprintf(out2, sizeof out2, "%s/never.json", dir);
    const char *bad_fmt[] = {"train", "--vocab-size", "300", "--format", "csv", "--out", out2, corpus};
    ck_assert_int_eq(run_cli(bad_fmt, 8), 1);
    snprintf(pat, sizeof pat, "%s/*.nothing", dir);
    const char *no_match[] = {"train", "--vocab-size", "300", "--out", out2, pat};
    ck_assert_int_eq(run_cli(no_match, 6), 1);
    const char *small[] = {"train", "--vocab-size", "100", "--out", out2, corpus};
    ck_assert_int_eq(run_cli(small, 6), 1);
    const char *bad_field[] = {"train", "--vocab-size", "300", "--format", "jsonl", "--out", out2, jl};
    ck_assert_int_eq(run_cli(bad_field, 8), 1);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "docs.jsonl:1"));
    struct stat st;
    ck_assert_int_ne(stat(out2, &st), 0);
    const char *help[] = {"train", "--help"};
    ck_assert_int_eq(run_cli(help, 2), 0);
    rm_tree(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tokenizer_train");
    TCase *tc = tcase_create("train");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_toy_classic);
    tcase_add_test(tc, test_hf_unit_example);
    tcase_add_test(tc, test_vocab_layout);
    tcase_add_test(tc, test_hf_trainer_merges);
    tcase_add_test(tc, test_fixture_bytes_and_determinism);
    tcase_add_test(tc, test_hf_vectors);
    tcase_add_test(tc, test_roundtrip_en_sample);
    tcase_add_test(tc, test_min_frequency);
    tcase_add_test(tc, test_nfc_training);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_cli);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

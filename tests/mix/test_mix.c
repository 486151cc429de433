/* corpus.mix end to end through the CLI on the tiny world of tests/steps/fixture.h
 * with a second language (French paragraphs of the shipped books):
 *  - tokenize/index draws the documents of the two languages in turn (equal weights:
 *    en, fr, en, fr, ... until French runs out), checked against the documents'
 *    own tokens, and records each sequence's language;
 *  - the held-out sequences hold both languages; annotate searches up to
 *    annotate.sequences_per_language of each, labels every context with the language
 *    of its sequence, and lists each latent's languages; the report shows them;
 *  - pretrain/tokens packs the mixture in the same order with exactly the val and test
 *    documents held out (the whole stream rebuilt here from the two files);
 *  - recipe errors: both or neither of corpus.files and corpus.mix, a zero weight;
 *  - the shipped recipes: BLOOM's mix has METHOD §1's weights, and tiny-multilingual's
 *    plan gives every annotate step the index and the val token shards. */
#include "tests/steps/fixture.h"
#include "tests/support/cli.h"

#include "common/io.h"
#include "pipeline/steps/langtab.h"
#include "pipeline/steps/shard.h"

#include <jansson.h>

static char out[1 << 21];

#define N_FR 300 /* French paragraphs: fewer than the 700 English ones */

static const char mix_recipe[] = "include: recipe.yaml\n"
                                 "name: mix-test\n"
                                 "corpus:\n"
                                 "  files: ~\n"
                                 "  mix:\n"
                                 "    fr: {files: [fr.txt], weight: 1}\n"
                                 "    en: {files: [corpus.txt], weight: 1.0}\n"
                                 "languages: [en, fr]\n"
                                 "annotate: {sequences_per_language: 3, top_contexts: 4, context_tokens: 8}\n";

/* A text file's lines, in place in one buffer. */
typedef struct {
    char *buf;
    char **at;
    size_t n;
} lines_t;

static void load_lines(const char *path, lines_t *l)
{
    size_t size;
    ck_assert_int_eq(ct_read_file(path, &l->buf, &size), 0);
    l->n = 0;
    for (size_t i = 0; i < size; i++)
        l->n += l->buf[i] == '\n';
    l->at = malloc((l->n + 1) * sizeof *l->at);
    char *p = l->buf;
    for (size_t i = 0; i < l->n; i++) {
        l->at[i] = p;
        p = strchr(p, '\n');
        *p++ = '\0';
    }
}

static void free_lines(lines_t *l)
{
    free(l->buf);
    free(l->at);
}

/* Document d of the mixture, by the rule the recipe implies: equal weights alternate
 * en (the first code) and fr until French runs out, then English alone. */
static const char *mix_doc(const lines_t *en, const lines_t *fr, uint64_t d, int *is_fr)
{
    ck_assert_uint_eq(fr->n, N_FR);
    *is_fr = d < 2 * N_FR && d % 2;
    if (*is_fr)
        return fr->at[d / 2];
    uint64_t i = d < 2 * N_FR ? d / 2 : d - N_FR;
    ck_assert_uint_lt(i, en->n);
    return en->at[i];
}

/* The planned step `label`, its artifact and its record's summary. */
static const ct_plan_step *planned(fx_world *w, const char *label)
{
    size_t idx;
    ck_assert_msg(ct_plan_find(w->plan, label, &idx) == 0, "no step %s", label);
    return ct_plan_get(w->plan, idx);
}

static char *stored(fx_world *w, const char *label, size_t *len)
{
    char *data = NULL;
    int rc = ct_cache_read_all(w->cache, planned(w, label)->key, &data, len);
    ck_assert_msg(rc == 0, "%s: %s", label, ct_error_message());
    return data;
}

static json_t *summary_of(fx_world *w, const char *label)
{
    json_t *rec, *sum;
    ck_assert_int_eq(ct_cache_get(w->cache, planned(w, label)->key, &rec), 0);
    sum = json_incref(json_object_get(rec, "summary"));
    json_decref(rec);
    return sum;
}

static void setup(fx_env *e, char *fr, size_t frcap, char *mix, size_t mixcap, const char *tag)
{
    fx_setup(e, tag);
    snprintf(fr, frcap, "%s/fr.txt", e->dir);
    fx_paragraphs("data/corpora/fr/pg11131.txt.zst", fr, N_FR);
    snprintf(mix, mixcap, "%s/mix.yaml", e->dir);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static ct_langtab index_languages(fx_world *w)
{
    ct_blob_reader *r;
    ck_assert_int_eq(ct_blob_reader_open(w->cache, planned(w, "tokenize/index")->key, &r), 0);
    ct_langtab t;
    ck_assert_msg(ct_langtab_read(r, "index", &t) == 0, "%s", ct_error_message());
    ct_blob_reader_close(r);
    return t;
}

START_TEST(mix_index_annotate_report)
{
    fx_env e;
    char fr[PATH_MAX + 16], mix[PATH_MAX + 16], page[PATH_MAX + 16];
    setup(&e, fr, sizeof fr, mix, sizeof mix, "mix");
    fx_write_recipe(&e, e.corpus);
    write_text(mix, mix_recipe);
    snprintf(page, sizeof page, "%s/report.html", e.dir);
    int rc = ct_cli(out, sizeof out, "run %s --cache %s -q", mix, e.cache);
    ck_assert_msg(rc == 0, "run: %s", out);
    rc = ct_cli(out, sizeof out, "report %s --cache %s --out %s", mix, e.cache, page);
    ck_assert_msg(rc == 0, "report: %s", out);

    snprintf(e.recipe, sizeof e.recipe, "%s", mix);
    fx_world w;
    fx_world_open(&w, &e, NULL);
    ct_tokenizer *tok;
    ck_assert_int_eq(ct_tok_load(e.tok, &tok), 0);

    /* the index: every sequence is the first seq_len tokens of its mixture document,
     * and its recorded language is that document's */
    size_t len;
    char *index = stored(&w, "tokenize/index", &len);
    ct_tokshard s;
    ct_langtab t = index_languages(&w);
    ck_assert_uint_eq(t.n_lang, 2);
    ck_assert_str_eq(t.names[0], "en"); /* codes sorted, whatever the recipe's order */
    ck_assert_str_eq(t.names[1], "fr");
    size_t plain = len - 16 - 4 - 2 - 4 - 2 - t.n_seq; /* the shard without the language table */
    ck_assert_int_eq(ct_tokshard_parse(index, plain, "index", &s), 0);
    ck_assert_uint_eq(s.n_seq, t.n_seq);
    uint64_t per[2] = {0};
    lines_t en_lines, fr_lines;
    load_lines(e.corpus, &en_lines);
    load_lines(fr, &fr_lines);
    for (uint64_t i = 0; i < s.n_seq; i++) {
        int is_fr;
        const char *text = mix_doc(&en_lines, &fr_lines, s.doc_index[i], &is_fr);
        ck_assert_int_eq(t.lang[i], is_fr);
        per[t.lang[i]]++;
        int32_t *ids;
        size_t nid;
        ck_assert_int_eq(ct_tok_encode(tok, text, strlen(text), &ids, &nid), 0);
        ck_assert_uint_ge(nid, s.seq_len);
        ck_assert_int_eq(memcmp(ids, s.ids + i * s.seq_len, s.seq_len * 4), 0);
        free(ids);
    }
    free_lines(&en_lines);
    free_lines(&fr_lines);
    ck_assert_uint_gt(per[0], 0);
    ck_assert_uint_gt(per[1], 0);
    ct_tokshard_free(&s);
    free(index);
    json_t *sum = summary_of(&w, "tokenize/index");
    json_t *sl = json_object_get(sum, "languages");
    ck_assert_int_eq(json_integer_value(json_object_get(sl, "en")), (json_int_t)per[0]);
    ck_assert_int_eq(json_integer_value(json_object_get(sl, "fr")), (json_int_t)per[1]);
    json_decref(sum);

    /* the held-out sequences hold both languages */
    char *val = stored(&w, "tokenize/val/0000", &len);
    ck_assert_int_eq(ct_tokshard_parse(val, len, "val", &s), 0);
    free(val);
    int seen[2] = {0};
    for (uint64_t i = 0; i < s.n_seq; i++)
        seen[t.lang[s.seq_index[i]]]++;
    ck_assert_msg(seen[0] && seen[1], "val: %d en, %d fr", seen[0], seen[1]);

    /* annotate: up to 3 sequences per language; every context in its sequence's
     * language; a latent's languages are those of its contexts */
    char *text = stored(&w, "annotate/a-b/seed1", &len);
    json_t *ann = json_loadb(text, len, 0, NULL);
    free(text);
    ck_assert_ptr_nonnull(ann);
    json_t *langs = json_object_get(ann, "languages");
    ck_assert_uint_eq(json_array_size(langs), 2);
    ck_assert_str_eq(json_string_value(json_array_get(langs, 0)), "en");
    json_t *spl = json_object_get(ann, "sequences_per_language");
    json_int_t n_en = json_integer_value(json_object_get(spl, "en"));
    json_int_t n_fr = json_integer_value(json_object_get(spl, "fr"));
    ck_assert_int_eq(n_en, seen[0] < 3 ? seen[0] : 3);
    ck_assert_int_eq(n_fr, seen[1] < 3 ? seen[1] : 3);
    ck_assert_int_eq(json_integer_value(json_object_get(ann, "sequences")), n_en + n_fr);
    size_t i, m, k, contexts = 0;
    json_t *lat, *list, *c;
    int any_lang = 0;
    json_array_foreach(json_object_get(ann, "latents"), i, lat) {
        int has[2] = {0};
        json_array_foreach(json_object_get(lat, "contexts"), m, list) json_array_foreach(list, k, c)
        {
            uint64_t seq = (uint64_t)json_integer_value(json_object_get(c, "seq"));
            ck_assert_uint_lt(seq, s.n_seq);
            const char *code = json_string_value(json_object_get(c, "lang"));
            ck_assert_ptr_nonnull(code);
            ck_assert_str_eq(code, t.names[t.lang[s.seq_index[seq]]]);
            has[t.lang[s.seq_index[seq]]] = 1;
            contexts++;
        }
        json_t *ll = json_object_get(lat, "languages");
        ck_assert_uint_eq(json_array_size(ll), (size_t)(has[0] + has[1]));
        any_lang |= json_array_size(ll) > 0;
        json_t *rates = json_object_get(lat, "fire_rate");
        ck_assert_uint_eq(json_object_size(rates), 2);
        for (int l = 0; l < 2; l++) {
            json_t *r = json_object_get(rates, t.names[l]);
            ck_assert_uint_eq(json_array_size(r), 2);
            for (m = 0; m < 2; m++) {
                double v = json_number_value(json_array_get(r, m));
                ck_assert(v >= 0 && v <= 1);
                /* a latent with a context of a language fires on it */
                size_t nctx = json_array_size(json_array_get(json_object_get(lat, "contexts"), m));
                if (nctx && v == 0) {
                    json_array_foreach(json_array_get(json_object_get(lat, "contexts"), m), k, c)
                        ck_assert_str_ne(json_string_value(json_object_get(c, "lang")), t.names[l]);
                }
            }
        }
    }
    ck_assert_uint_gt(contexts, 0);
    ck_assert(any_lang);
    json_decref(ann);
    sum = summary_of(&w, "annotate/a-b/seed1");
    sl = json_object_get(sum, "languages");
    ck_assert_int_eq(json_integer_value(json_object_get(sl, "en")), n_en);
    ck_assert_int_eq(json_integer_value(json_object_get(sl, "fr")), n_fr);
    json_decref(sum);
    ct_tokshard_free(&s);
    ct_langtab_free(&t);

    /* the report shows the languages */
    char *html;
    ck_assert_int_eq(ct_read_file(page, &html, &len), 0);
    ck_assert_ptr_nonnull(strstr(html, "Languages it fires on"));
    ck_assert_ptr_null(strstr(html, "not recorded"));
    ck_assert_ptr_nonnull(strstr(html, "Share of each language"));
    free(html);
    ct_tok_free(tok);
    fx_world_close(&w);
}
END_TEST

/* The pretraining stream of a mixture: the same document numbers as the index, the
 * val and test documents held out, everything else packed in mixture order. */
START_TEST(mix_pretrain_holds_out_val_and_test)
{
    fx_env e;
    char fr[PATH_MAX + 16], mix[PATH_MAX + 16];
    setup(&e, fr, sizeof fr, mix, sizeof mix, "mix-pretrain");
    write_text(mix, "name: mix-pretrain\n"
                    "model: {family: gpt-neox, checkpoints: [{name: s10, source: 'pretrain:10', tokens: 100},\n"
                    "        {name: s20, source: 'pretrain:20', tokens: 200}]}\n"
                    "layer: 1\n"
                    "corpus: {mix: {en: {files: [corpus.txt], weight: 1}, fr: {files: [fr.txt], weight: 1}},\n"
                    "         seq_len: 16, train_sequences: 40, val_sequences: 8, test_sequences: 6}\n"
                    "pretrain: {tokenizer: {vocab_size: 350, min_frequency: 3}, batch_sequences: 4, steps: 20,\n"
                    "           model: {hidden: 32, layers: 2, heads: 4, ctx: 16}, save_steps: [10, 20]}\n"
                    "tuples: [[s10, s20]]\n");
    static const char *const only[] = {"tokenizer", "tokenize/index", "tokenize/val/0000", "tokenize/test/0000",
                                       "pretrain/tokens"};
    for (size_t k = 0; k < sizeof only / sizeof *only; k++) {
        int rc = ct_cli(out, sizeof out, "run %s --cache %s --only %s", mix, e.cache, only[k]);
        ck_assert_msg(rc == 0, "%s: %s", only[k], out);
    }
    snprintf(e.recipe, sizeof e.recipe, "%s", mix);
    fx_world w;
    fx_world_open(&w, &e, NULL);
    size_t len;
    char *json = stored(&w, "tokenizer", &len);
    ct_tokenizer *tok;
    ck_assert_int_eq(ct_tok_load_json(json, len, "tokenizer", &tok), 0);
    free(json);
    int32_t eos = ct_tok_token_id(tok, "<|endoftext|>");
    ck_assert_int_ge(eos, 0);

    /* the held-out documents */
    uint64_t held[14];
    size_t n_held = 0;
    static const char *const splits[2] = {"tokenize/val/0000", "tokenize/test/0000"};
    for (int sp = 0; sp < 2; sp++) {
        char *a = stored(&w, splits[sp], &len);
        ct_tokshard s;
        ck_assert_int_eq(ct_tokshard_parse(a, len, splits[sp], &s), 0);
        for (uint64_t i = 0; i < s.n_seq; i++)
            held[n_held++] = s.doc_index[i];
        ct_tokshard_free(&s);
        free(a);
    }
    ck_assert_uint_eq(n_held, 14);

    /* the stream rebuilt from the files: documents in mixture order but the held ones */
    char *a = stored(&w, "pretrain/tokens", &len);
    ct_tokshard p;
    ck_assert_int_eq(ct_tokshard_parse(a, len, "pretrain/tokens", &p), 0);
    free(a);
    size_t want = (size_t)p.n_seq * p.seq_len, at = 0;
    lines_t en_lines, fr_lines;
    load_lines(e.corpus, &en_lines);
    load_lines(fr, &fr_lines);
    for (uint64_t d = 0; d < FX_DOCS + N_FR && at < want; d++) {
        int is_held = 0, is_fr;
        for (size_t h = 0; h < n_held; h++)
            is_held |= held[h] == d;
        if (is_held)
            continue;
        const char *text = mix_doc(&en_lines, &fr_lines, d, &is_fr);
        int32_t *ids;
        size_t nid;
        ck_assert_int_eq(ct_tok_encode(tok, text, strlen(text), &ids, &nid), 0);
        for (size_t q = 0; q <= nid && at < want; q++, at++)
            ck_assert_msg(p.ids[at] == (q < nid ? ids[q] : eos), "token %zu (document %llu)", at,
                          (unsigned long long)d);
        free(ids);
    }
    free_lines(&en_lines);
    free_lines(&fr_lines);
    ck_assert_uint_eq(at, want);
    ct_tokshard_free(&p);
    json_t *sum = summary_of(&w, "pretrain/tokens");
    ck_assert_int_eq(json_integer_value(json_object_get(sum, "held_out")), 14);
    ck_assert_int_eq(json_integer_value(json_object_get(sum, "documents")), FX_DOCS + N_FR - 14);
    json_decref(sum);
    ct_tok_free(tok);
    fx_world_close(&w);
}
END_TEST

START_TEST(mix_recipe_errors)
{
    fx_env e;
    char fr[PATH_MAX + 16], mix[PATH_MAX + 16];
    ct_test_tmpdir(e.dir, sizeof e.dir, "mix-errors");
    snprintf(e.corpus, sizeof e.corpus, "%s/corpus.txt", e.dir);
    snprintf(e.recipe, sizeof e.recipe, "%s/recipe.yaml", e.dir);
    snprintf(e.cache, sizeof e.cache, "%s/cache", e.dir);
    snprintf(e.tok, sizeof e.tok, "%s/tokenizer.json", e.dir);
    snprintf(mix, sizeof mix, "%s/mix.yaml", e.dir);
    snprintf(fr, sizeof fr, "%s/fr.txt", e.dir);
    write_text(e.corpus, "one\n");
    write_text(fr, "un\n");
    write_text(e.tok, "{}");
    fx_write_recipe(&e, e.corpus);
    /* both: the error points at corpus.mix */
    write_text(mix, "include: recipe.yaml\ncorpus:\n  mix:\n    fr: {files: [fr.txt], weight: 1}\n");
    int rc = ct_cli(out, sizeof out, "plan %s --cache %s", mix, e.cache);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(out, "mix.yaml:4:5: corpus.mix: give corpus.files or corpus.mix, not both"), "%s", out);
    /* neither */
    rc = ct_cli(out, sizeof out, "plan %s --cache %s --set corpus.files=null", e.recipe, e.cache);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(out, "recipe.yaml:10:3: corpus: needs corpus.files"), "%s", out);
    /* a zero weight, and a weight without files */
    write_text(mix, "include: recipe.yaml\ncorpus:\n  files: ~\n  mix:\n    fr: {files: [fr.txt], weight: 0}\n");
    rc = ct_cli(out, sizeof out, "plan %s --cache %s", mix, e.cache);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(out, "mix.yaml:5:35: corpus.mix.fr.weight: expected a weight > 0, got 0"), "%s", out);
    write_text(mix, "include: recipe.yaml\ncorpus:\n  files: ~\n  mix:\n    fr: {weight: 1}\n");
    rc = ct_cli(out, sizeof out, "plan %s --cache %s", mix, e.cache);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(out, "mix.yaml:5:9: corpus.mix.fr: missing required field 'files'"), "%s", out);
    /* a language whose files are missing is a plan note naming it */
    write_text(mix, "include: recipe.yaml\ncorpus:\n  files: ~\n  mix:\n    fr: {files: [fr.txt], weight: 1}\n"
                    "    pt: {files: [pt/*.txt], weight: 1}\n");
    rc = ct_cli(out, sizeof out, "plan %s --cache %s", mix, e.cache);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strstr(out, "corpus: no file matches") && strstr(out, "(corpus.mix.pt.files.0)"), "%s", out);
}
END_TEST

/* The shipped multilingual recipes mix their languages: BLOOM with METHOD §1's weights. */
START_TEST(shipped_recipes_use_mix)
{
    static const char *const codes[10] = {"en", "zh", "fr", "es", "pt", "ar", "vi", "hi", "id", "bn"};
    static const double weights[10] = {.35, .19, .15, .13, .06, .05, .03, .02, .01, .01};
    ct_recipe *r;
    ck_assert_msg(ct_recipe_load("bloom-1b1-multilingual", NULL, &r) == 0, "%s", ct_error_message());
    ck_assert_ptr_null(ct_recipe_get(r, "corpus.files"));
    ck_assert_uint_eq(json_object_size(ct_recipe_get(r, "corpus.mix")), 10);
    for (int l = 0; l < 10; l++) {
        char path[64];
        snprintf(path, sizeof path, "corpus.mix.%s.weight", codes[l]);
        ck_assert_msg(json_real_value(ct_recipe_get(r, path)) == weights[l], "%s", path);
        snprintf(path, sizeof path, "corpus.mix.%s.files.0", codes[l]);
        char want[64];
        snprintf(want, sizeof want, "c4-%s.tfrecord-", codes[l]);
        ck_assert_ptr_nonnull(strstr(json_string_value(ct_recipe_get(r, path)), want));
    }
    /* the study's languages (METHOD §7) are languages of the mix */
    size_t i;
    json_t *v;
    json_array_foreach(ct_recipe_get(r, "languages"), i, v) {
        char path[64];
        snprintf(path, sizeof path, "corpus.mix.%s", json_string_value(v));
        ck_assert_ptr_nonnull(ct_recipe_get(r, path));
    }
    ct_recipe_free(r);
    ck_assert_msg(ct_recipe_load("tiny-multilingual", NULL, &r) == 0, "%s", ct_error_message());
    ck_assert_ptr_null(ct_recipe_get(r, "corpus.files"));
    ck_assert_uint_eq(json_object_size(ct_recipe_get(r, "corpus.mix")), 4);
    static const char *const tiny[4] = {"en", "fr", "es", "pt"};
    for (int l = 0; l < 4; l++) {
        char path[64];
        snprintf(path, sizeof path, "corpus.mix.%s.weight", tiny[l]);
        ck_assert(json_real_value(ct_recipe_get(r, path)) == 1.0);
    }
    ct_recipe_free(r);

    /* its plan: annotate reads the index's languages through the val shards */
    char dir[PATH_MAX];
    ct_test_tmpdir(dir, sizeof dir, "mix-plan");
    int rc = ct_cli(out, sizeof out, "plan tiny-multilingual --cache %s/cache --format json", dir);
    ck_assert_msg(rc == 0, "%.2000s", out);
    json_t *plan = json_loads(out, 0, NULL), *st;
    ck_assert_ptr_nonnull(plan);
    size_t n_annotate = 0;
    json_array_foreach(json_object_get(plan, "steps"), i, st) {
        if (strcmp(json_string_value(json_object_get(st, "kind")), "annotate") != 0)
            continue;
        json_t *in = json_object_get(st, "inputs");
        ck_assert_str_eq(json_string_value(json_object_get(in, "index")), "tokenize/index");
        ck_assert_uint_eq(json_array_size(json_object_get(in, "val_tokens")),
                          json_array_size(json_object_get(in, "act_0")));
        n_annotate++;
    }
    ck_assert_uint_eq(n_annotate, 4); /* one per crosscoder */
    json_decref(plan);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mix");
    TCase *tc = tcase_create("mix");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, shipped_recipes_use_mix);
    tcase_add_test(tc, mix_recipe_errors);
    tcase_add_test(tc, mix_index_annotate_report);
    tcase_add_test(tc, mix_pretrain_holds_out_val_and_test);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

/* Task loaders and the METHOD.md §4 answer-token rule, on the shipped data.
 *
 * Pair counts per file were counted independently (Python over the upstream files);
 * kept/dropped counts and the digest of every kept example come from ref_counts.py,
 * which re-derives the pairs in Python and takes token ids from the Hugging Face
 * tokenizers library (GPT-NeoX-20B, Pythia's tokenizer). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/error.h"
#include "common/io.h"
#include "common/sha256.h"
#include "models/tasks/tasks.h"
#include "models/tokenizer/tokenizer.h"
#include "tests/support/testutil.h"

static ct_tokenizer *tok;

static ct_tokenizer *neox(void)
{
    if (!tok) {
        char path[PATH_MAX];
        ct_test_src(path, sizeof path, "tests/fixtures/tokenizers/gpt-neox-20b/20B_tokenizer.json.zst");
        ck_assert_msg(ct_tok_load(path, &tok) == 0, "%s", ct_error_message());
    }
    return tok;
}

static ct_task *load(const char *name)
{
    ct_task *t = NULL;
    ck_assert_msg(ct_task_load(name, &t) == 0, "%s: %s", name, ct_error_message());
    return t;
}

static size_t count_drops(const ct_task *t, ct_task_drop why)
{
    size_t n = 0;
    for (size_t i = 0; i < ct_task_size(t); i++) {
        ct_task_pair p;
        ck_assert_int_eq(ct_task_pair_get(t, i, &p), 0);
        n += p.drop == why;
    }
    return n;
}

static void expect_pair(const ct_task *t, size_t i, size_t line, const char *prefix, const char *good,
                        const char *bad)
{
    ct_task_pair p;
    ck_assert_int_eq(ct_task_pair_get(t, i, &p), 0);
    ck_assert_int_eq(p.drop, CT_TASK_KEEP);
    ck_assert_uint_eq(p.line, line);
    ck_assert_str_eq(p.prefix, prefix);
    ck_assert_str_eq(p.good, good);
    ck_assert_str_eq(p.bad, bad);
}

/* ---- loaders ---------------------------------------------------------------------- */

START_TEST(blimp_pairs)
{
    /* The four subject-verb agreement subsets of the paper, and every paradigm. */
    ct_task *t = load("blimp/distractor_agreement_relational_noun");
    ck_assert_uint_eq(ct_task_size(t), 1000);
    ck_assert_str_eq(ct_task_name(t), "blimp/distractor_agreement_relational_noun");
    ck_assert_uint_eq(count_drops(t, CT_TASK_KEEP), 1000);
    expect_pair(t, 0, 1, "A niece of most senators", "hasn't", "haven't");
    expect_pair(t, 1, 2, "The sketch of those trucks", "hasn't", "haven't");
    ct_task_pair p;
    ck_assert_int_eq(ct_task_pair_get(t, 0, &p), 0);
    ck_assert_str_eq(p.sentence_good, "A niece of most senators hasn't descended most slopes.");
    ck_assert_str_eq(p.sentence_bad, "A niece of most senators haven't descended most slopes.");
    ck_assert_int_eq(ct_task_pair_get(t, 1000, &p), CT_EINVAL);
    /* zstd -dc data/tasks/blimp/distractor_agreement_relational_noun.jsonl.zst | sha256sum */
    ck_assert_str_eq(ct_task_digest(t), "37c1553f4c6594b162256edce0f6b40bad1898b311c8aaa69605b526b6494a34");
    ck_assert_ptr_nonnull(strstr(ct_task_file(t), "blimp/distractor_agreement_relational_noun.jsonl"));
    ct_task_free(t);

    /* A paradigm without one_prefix fields: every pair is dropped with the reason. */
    t = load("blimp/adjunct_island");
    ck_assert_uint_eq(ct_task_size(t), 1000);
    ck_assert_uint_eq(count_drops(t, CT_TASK_NO_ONE_PREFIX), 1000);
    ck_assert_int_eq(ct_task_pair_get(t, 0, &p), 0);
    ck_assert_ptr_null(p.prefix);
    ck_assert_ptr_nonnull(p.sentence_good);
    ct_task_free(t);

    /* All 67 paradigms hold 1000 pairs; 20 of them are one-prefix paradigms, and in
     * one of those (principle_A_case_2) 5 pairs have the same good and bad words. */
    char **names;
    size_t n;
    ck_assert_int_eq(ct_task_list(NULL, &names, &n), 0);
    size_t paradigms = 0, one_prefix = 0;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(names[i], "blimp/", 6))
            continue;
        paradigms++;
        t = load(names[i]);
        ck_assert_uint_eq(ct_task_size(t), 1000);
        size_t keep = count_drops(t, CT_TASK_KEEP), same = count_drops(t, CT_TASK_IDENTICAL);
        ck_assert_uint_eq(count_drops(t, CT_TASK_NO_ONE_PREFIX), keep ? 0 : 1000);
        ck_assert_uint_eq(same, strcmp(names[i], "blimp/principle_A_case_2") ? 0 : 5);
        ck_assert_uint_eq(keep + same, keep ? 1000 : 0);
        one_prefix += keep > 0;
        ct_task_free(t);
    }
    ck_assert_uint_eq(paradigms, 67);
    ck_assert_uint_eq(one_prefix, 20);
    t = load("blimp/principle_A_case_2");
    ck_assert_int_eq(ct_task_pair_get(t, 105, &p), 0);
    ck_assert_int_eq(p.drop, CT_TASK_IDENTICAL);
    ck_assert_uint_eq(p.line, 106);
    ct_task_free(t);
    ct_task_names_free(names);
}
END_TEST

START_TEST(clams_pairs)
{
    static const struct {
        const char *name;
        size_t pairs, not_one_word;
    } files[] = {
        {"clams/en/long_vp_coord", 400, 0},
        {"clams/en/obj_rel_across_anim", 11200, 0},
        {"clams/en/obj_rel_within_anim", 11200, 0},
        {"clams/en/prep_anim", 16800, 0},
        {"clams/en/simple_agrmt", 140, 0},
        {"clams/en/subj_rel", 11200, 0},
        {"clams/en/vp_coord", 840, 0},
        {"clams/en/npi_across_anim", 4800, 4800},
        {"clams/fr/long_vp_coord", 500, 0},
        {"clams/fr/obj_rel_across_anim", 11200, 4800},
        {"clams/fr/obj_rel_within_anim", 11200, 0},
        {"clams/fr/prep_anim", 14000, 6000},
        {"clams/fr/simple_agrmt", 280, 120},
        {"clams/fr/subj_rel", 11200, 4800},
        {"clams/fr/vp_coord", 980, 420},
        {"clams/de/simple_agrmt", 140, 0},
        {"clams/he/vp_coord", 980, 0},
        {"clams/ru/subj_rel", 10080, 0},
    };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        ct_task *t = load(files[i].name);
        ck_assert_msg(ct_task_size(t) == files[i].pairs, "%s: %zu pairs", files[i].name, ct_task_size(t));
        ck_assert_uint_eq(count_drops(t, CT_TASK_NOT_ONE_WORD), files[i].not_one_word);
        ck_assert_uint_eq(count_drops(t, CT_TASK_KEEP), files[i].pairs - files[i].not_one_word);
        ct_task_free(t);
    }

    /* "True\tthe author laughs" / "False\tthe author laugh", capitalised as the
     * reference does. */
    ct_task *t = load("clams/en/simple_agrmt");
    expect_pair(t, 0, 1, "The author", "laughs", "laugh");
    expect_pair(t, 1, 3, "The author", "swims", "swim");
    ct_task_pair p;
    ck_assert_int_eq(ct_task_pair_get(t, 0, &p), 0);
    ck_assert_str_eq(p.sentence_good, "The author laughs");
    ck_assert_str_eq(p.sentence_bad, "The author laugh");
    ct_task_free(t);

    /* "les auteurs sont vieux" / "les auteurs est vieux" keeps; the next pair
     * ("sont jeunes" / "est jeune") differs in two words. */
    t = load("clams/fr/simple_agrmt");
    expect_pair(t, 0, 1, "Les auteurs", "sont", "est");
    ck_assert_int_eq(ct_task_pair_get(t, 1, &p), 0);
    ck_assert_int_eq(p.drop, CT_TASK_NOT_ONE_WORD);
    ck_assert_uint_eq(p.line, 3);
    ck_assert_ptr_null(p.good);
    ct_task_free(t);

    /* Cyrillic capitalisation: "авторы говорят" / "авторы говорит". */
    t = load("clams/ru/simple_agrmt");
    expect_pair(t, 0, 1, "\xd0\x90вторы", "говорят", "говорит");
    ct_task_free(t);

    /* German nouns keep their capitals. */
    t = load("clams/de/simple_agrmt");
    expect_pair(t, 0, 1, "Die Schriftsteller", "sind", "ist");
    ct_task_free(t);

    /* ISO 639-3 codes are accepted and canonicalised. */
    t = load("clams/eng/simple_agrmt");
    ck_assert_str_eq(ct_task_name(t), "clams/en/simple_agrmt");
    ct_task_free(t);
}
END_TEST

START_TEST(multiblimp_pairs)
{
    ct_task *t = load("multiblimp/eng");
    ck_assert_uint_eq(ct_task_size(t), 770);
    ck_assert_uint_eq(count_drops(t, CT_TASK_KEEP), 770);
    ck_assert_str_eq(ct_task_digest(t), "6a33f36ab3c821b70d5763551ad32c1b71a1e3f3ef17f11e26f5534924d48e8a");
    expect_pair(t, 0, 2, "Yes, lovely creature,", "is", "am");
    ct_task_pair p;
    ck_assert_int_eq(ct_task_pair_get(t, 0, &p), 0);
    ck_assert_str_eq(p.phenomenon, "SV-P");
    ck_assert_str_eq(p.sentence_bad, "Yes, lovely creature, am n't she?");
    /* A quoted TSV field with doubled quotes, and punctuation shared by both words. */
    expect_pair(t, 44, 46, "In the best case, the clamoring for a \"refund\"", "subsides", "subside");
    ck_assert_int_eq(ct_task_pair_get(t, 44, &p), 0);
    ck_assert_str_eq(p.sentence_good, "In the best case, the clamoring for a \"refund\" subsides.");
    ct_task_free(t);

    t = load("multiblimp/en/SV-#");
    ck_assert_str_eq(ct_task_name(t), "multiblimp/eng/SV-#");
    ck_assert_uint_eq(ct_task_size(t), 317);
    ct_task_free(t);
    t = load("multiblimp/eng/SV-P");
    ck_assert_uint_eq(ct_task_size(t), 453);
    expect_pair(t, 0, 2, "Yes, lovely creature,", "is", "am");
    ct_task_free(t);

    t = load("multiblimp/fra");
    ck_assert_uint_eq(ct_task_size(t), 255);
    expect_pair(t, 0, 1, "C'est le genre \xc3\xa0 lequel", "appartiennent", "appartenez");
    /* Two pairs differ at their first word: nothing to predict it from. */
    ck_assert_uint_eq(count_drops(t, CT_TASK_EMPTY_PREFIX), 2);
    ct_task_free(t);

    /* The French file labels no phenomena. */
    ck_assert_int_eq(ct_task_load("multiblimp/fra/SV-#", &t), CT_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "labels no phenomena"));
    ck_assert_int_eq(ct_task_load("multiblimp/eng/SV-G", &t), CT_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "\"SV-G\" (it has: SV-P SV-#)"));
}
END_TEST

/* ---- the answer-token rule --------------------------------------------------------- */

/* SHA-256 over "pair:prefix ids:good:bad\n" of every example (ref_counts.py's digest). */
static void examples_digest(const ct_task_examples *e, char hex[65])
{
    ct_sha256 *h;
    ck_assert_int_eq(ct_sha256_new(&h), 0);
    for (size_t i = 0; i < ct_task_examples_size(e); i++) {
        const ct_task_example *x = ct_task_examples_get(e, i);
        char buf[64];
        int n = snprintf(buf, sizeof buf, "%zu:", x->pair);
        ct_sha256_update(h, buf, (size_t)n);
        for (size_t k = 0; k < x->n_prefix; k++) {
            n = snprintf(buf, sizeof buf, k ? ",%d" : "%d", x->prefix[k]);
            ct_sha256_update(h, buf, (size_t)n);
        }
        n = snprintf(buf, sizeof buf, ":%d:%d\n", x->good, x->bad);
        ct_sha256_update(h, buf, (size_t)n);
    }
    uint8_t d[CT_SHA256_LEN];
    ck_assert_int_eq(ct_sha256_final(h, d), 0);
    ct_hex_encode(d, sizeof d, hex);
}

static const struct {
    const char *name;
    size_t pairs, kept;
    size_t dropped[CT_TASK_N_REASONS];
    const char *sha;
} ref[] = {
    {"blimp/distractor_agreement_relational_noun",
     1000,
     918,
     {[CT_TASK_DIFFERENT_TOKEN_COUNTS] = 82},
     "dc21e90b9a8352871e43f3b6247c6cc071292297738ca25bfe992e7bf746ce84"},
    {"blimp/distractor_agreement_relative_clause",
     1000,
     873,
     {[CT_TASK_DIFFERENT_TOKEN_COUNTS] = 124, [CT_TASK_TOO_MANY_TOKENS] = 3},
     "bc059241468a04f0e1cbdbd97eb75db8918474bcb6977757b4f9172604e88653"},
    {"blimp/irregular_plural_subject_verb_agreement_1",
     1000,
     857,
     {[CT_TASK_DIFFERENT_TOKEN_COUNTS] = 143},
     "af5dd2e36c83a60a2dea066720c582a1d57f0f68d967b7eae293727ea6feab4d"},
    {"blimp/regular_plural_subject_verb_agreement_1",
     1000,
     829,
     {[CT_TASK_DIFFERENT_TOKEN_COUNTS] = 171},
     "16d980ef1b372164c6287f12ebec8ffe8a36079654f856b6bfd7be28d8dfc210"},
    {"blimp/determiner_noun_agreement_1",
     1000,
     906,
     {[CT_TASK_DIFFERENT_TOKEN_COUNTS] = 94},
     "2c825fab70a5d7d26bf388b7645bbb253ecb4379fa2abae75fda41653c87cb9b"},
    {"blimp/adjunct_island",
     1000,
     0,
     {[CT_TASK_NO_ONE_PREFIX] = 1000},
     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"clams/en/long_vp_coord",
     400,
     400,
     {0},
     "152139de66a890e0434f54d24ac21860a3e308c7ad61508b226f1edd26c2d8cc"},
    {"clams/en/simple_agrmt",
     140,
     120,
     {[CT_TASK_DIFFERENT_TOKEN_COUNTS] = 20},
     "c91898c3421136974ef7a7073c5c2fc87477f5b7b0d7e52293d35bc7db61b8d7"},
    {"clams/en/vp_coord",
     840,
     720,
     {[CT_TASK_DIFFERENT_TOKEN_COUNTS] = 120},
     "e2d4eb09a769b1defd5548070db4131760f51a591d0c2b11b3c26011420e81fd"},
    {"clams/en/obj_rel_within_anim",
     11200,
     8400,
     {[CT_TASK_DIFFERENT_TOKEN_COUNTS] = 2800},
     "f7865520376069262d70f4ca7544b0a9bacb2c2b01930a15199f465024b16172"},
    {"clams/fr/long_vp_coord",
     500,
     200,
     {[CT_TASK_DIFFERENT_TOKEN_COUNTS] = 300},
     "13a1a8e2587fea6af4112b79af1c4abfa51c06a105c29467d10c840671b7ceea"},
    {"clams/fr/simple_agrmt",
     280,
     120,
     {[CT_TASK_NOT_ONE_WORD] = 120, [CT_TASK_DIFFERENT_TOKEN_COUNTS] = 40},
     "9617cad9dd028a140da5bd13f089d40782dacea7a767d1bdf5b1ebd3f5122d20"},
    {"clams/fr/vp_coord",
     980,
     420,
     {[CT_TASK_NOT_ONE_WORD] = 420, [CT_TASK_DIFFERENT_TOKEN_COUNTS] = 140},
     "bc65a3a9d52bcefadb30b3916a86d0a1e402a71ee2b57f8b1bd4771ca46934a2"},
    {"clams/fr/subj_rel",
     11200,
     4800,
     {[CT_TASK_NOT_ONE_WORD] = 4800, [CT_TASK_DIFFERENT_TOKEN_COUNTS] = 1600},
     "f147924e49656dafd9a76353942c1ebaf75c3ea645a5754a6120f25be089a157"},
    {"multiblimp/eng",
     770,
     495,
     {[CT_TASK_DIFFERENT_TOKEN_COUNTS] = 275},
     "c718093052968a571ac6b94ac1a3f7079666b6a7889b229debaec6db739ff971"},
    {"multiblimp/eng/SV-#",
     317,
     294,
     {[CT_TASK_DIFFERENT_TOKEN_COUNTS] = 23},
     "e450063af4d80fd4991d34b927f473a04bbc99cb8faa587591fc19176fa8f727"},
    {"multiblimp/eng/SV-P",
     453,
     201,
     {[CT_TASK_DIFFERENT_TOKEN_COUNTS] = 252},
     "0e701f263d253361c770bf16e3ea111134f5e5aa3cf275328a09726d3876109c"},
    {"multiblimp/fra",
     255,
     169,
     {[CT_TASK_DIFFERENT_TOKEN_COUNTS] = 74, [CT_TASK_TOO_MANY_TOKENS] = 10, [CT_TASK_EMPTY_PREFIX] = 2},
     "e1b16acf7726a743377bea82bf981b56dc41ba53c0364e3da63b97ca43a05139"},
};

START_TEST(rule_matches_reference)
{
    size_t i = (size_t)_i;
    ct_task *t = load(ref[i].name);
    ct_task_examples *e;
    ck_assert_msg(ct_task_tokenize(t, neox(), 0, &e) == 0, "%s", ct_error_message());
    ck_assert_uint_eq(ct_task_examples_pairs(e), ref[i].pairs);
    ck_assert_msg(ct_task_examples_kept(e) == ref[i].kept, "%s: kept %zu", ref[i].name,
                  ct_task_examples_kept(e));
    ck_assert_uint_eq(ct_task_examples_size(e), ref[i].kept);
    size_t sum = ct_task_examples_kept(e);
    for (int r = 1; r < CT_TASK_N_REASONS; r++) {
        ck_assert_msg(ct_task_examples_dropped(e, (ct_task_drop)r) == ref[i].dropped[r], "%s: %s %zu",
                      ref[i].name, ct_task_drop_name((ct_task_drop)r),
                      ct_task_examples_dropped(e, (ct_task_drop)r));
        sum += ct_task_examples_dropped(e, (ct_task_drop)r);
    }
    ck_assert_uint_eq(sum, ct_task_size(t));
    char hex[65];
    examples_digest(e, hex);
    ck_assert_str_eq(hex, ref[i].sha);
    for (size_t k = 0; k < ct_task_examples_size(e); k++) {
        const ct_task_example *x = ct_task_examples_get(e, k);
        ck_assert(x->n_prefix >= 1 && x->good != x->bad && x->pair < ct_task_size(t));
    }
    ck_assert_ptr_null(ct_task_examples_get(e, ct_task_examples_size(e)));
    ct_task_examples_free(e);
    ct_task_free(t);
}
END_TEST

START_TEST(rule_known_examples)
{
    /* Hugging Face ids: "A niece of most senators hasn't" = [34, 43551, 273, 954, 31650,
     * 11210, 626], "... haven't" = [..., 6468, 626]: the shared "'t" is not compared. */
    ct_task *t = load("blimp/distractor_agreement_relational_noun");
    ct_task_examples *e;
    ck_assert_int_eq(ct_task_tokenize(t, neox(), 0, &e), 0);
    const ct_task_example *x = ct_task_examples_get(e, 0);
    static const int32_t prefix[] = {34, 43551, 273, 954, 31650};
    ck_assert_uint_eq(x->pair, 0);
    ck_assert_uint_eq(x->n_prefix, 5);
    ck_assert_mem_eq(x->prefix, prefix, sizeof prefix);
    ck_assert_int_eq(x->good, 11210);
    ck_assert_int_eq(x->bad, 6468);
    ck_assert_str_eq(ct_tok_id_to_token(neox(), x->good), "\xc4\xa0hasn");
    ct_task_examples_free(e);
    ct_task_free(t);

    /* The four SVA subsets together: 3,477 of 4,000 pairs kept (the paper's notebooks
     * report 3,469). */
    static const char *const sva[] = {
        "blimp/distractor_agreement_relational_noun", "blimp/distractor_agreement_relative_clause",
        "blimp/irregular_plural_subject_verb_agreement_1", "blimp/regular_plural_subject_verb_agreement_1"};
    size_t n_sva, kept = 0;
    const char *const *def = ct_task_blimp_sva(&n_sva);
    ck_assert_uint_eq(n_sva, 4);
    for (size_t i = 0; i < 4; i++) {
        ck_assert_str_eq(def[i], sva[i]);
        t = load(sva[i]);
        ck_assert_int_eq(ct_task_tokenize(t, neox(), 0, &e), 0);
        kept += ct_task_examples_kept(e);
        ct_task_examples_free(e);
        ct_task_free(t);
    }
    ck_assert_uint_eq(kept, 3477);
}
END_TEST

START_TEST(rule_cap_spreads)
{
    ct_task *t = load("clams/en/vp_coord");
    ct_task_examples *all, *cap, *big;
    ck_assert_int_eq(ct_task_tokenize(t, neox(), 0, &all), 0);
    ck_assert_int_eq(ct_task_tokenize(t, neox(), 7, &cap), 0);
    ck_assert_int_eq(ct_task_tokenize(t, neox(), 100000, &big), 0);
    size_t kept = ct_task_examples_kept(all);
    ck_assert_uint_eq(ct_task_examples_size(cap), 7);
    ck_assert_uint_eq(ct_task_examples_kept(cap), kept);
    ck_assert_uint_eq(ct_task_examples_size(big), kept);
    for (size_t i = 0; i < 7; i++) {
        const ct_task_example *a = ct_task_examples_get(all, i * kept / 7), *c = ct_task_examples_get(cap, i);
        ck_assert_uint_eq(a->pair, c->pair);
        ck_assert_uint_eq(a->n_prefix, c->n_prefix);
        ck_assert_mem_eq(a->prefix, c->prefix, a->n_prefix * sizeof *a->prefix);
        ck_assert_int_eq(a->good, c->good);
        ck_assert_int_eq(a->bad, c->bad);
    }
    /* The last capped example comes from the last seventh of the file. */
    ck_assert_uint_ge(ct_task_examples_get(cap, 6)->pair, ct_task_size(t) * 6 / 7 - 1);
    ct_task_examples_free(all);
    ct_task_examples_free(cap);
    ct_task_examples_free(big);
    ct_task_free(t);
}
END_TEST

/* ---- names, search path, errors ------------------------------------------------------ */

START_TEST(list_and_languages)
{
    char **names;
    size_t n;
    ck_assert_int_eq(ct_task_list(NULL, &names, &n), 0);
    /* 67 BLiMP + CLAMS (en 22, fr/de/he/ru 7 each) + multiblimp/eng, eng/SV-#, eng/SV-P, fra */
    ck_assert_uint_eq(n, 67 + 22 + 4 * 7 + 4);
    for (size_t i = 1; i < n; i++)
        ck_assert_int_lt(strcmp(names[i - 1], names[i]), 0);
    ck_assert_ptr_null(names[n]);
    int seen = 0;
    for (size_t i = 0; i < n; i++)
        seen += !strcmp(names[i], "multiblimp/eng/SV-#") + !strcmp(names[i], "clams/he/prep_anim") +
                !strcmp(names[i], "blimp/wh_island");
    ck_assert_int_eq(seen, 3);
    ct_task_names_free(names);

    const char *langs[] = {"en", "fra"};
    ck_assert_int_eq(ct_tasks_for_languages(langs, 2, NULL, &names, &n), 0);
    static const char *const want[] = {
        "clams/en/long_vp_coord",
        "clams/en/obj_rel_across_anim",
        "clams/en/obj_rel_within_anim",
        "clams/en/prep_anim",
        "clams/en/simple_agrmt",
        "clams/en/subj_rel",
        "clams/en/vp_coord",
        "multiblimp/eng/SV-#",
        "multiblimp/eng/SV-P",
        "clams/fr/long_vp_coord",
        "clams/fr/obj_rel_across_anim",
        "clams/fr/obj_rel_within_anim",
        "clams/fr/prep_anim",
        "clams/fr/simple_agrmt",
        "clams/fr/subj_rel",
        "clams/fr/vp_coord",
        "multiblimp/fra",
    };
    ck_assert_uint_eq(n, sizeof want / sizeof *want);
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(names[i], want[i]);
    ct_task_names_free(names);

    const char *none[] = {"en", "es"};
    ck_assert_int_eq(ct_tasks_for_languages(none, 2, NULL, &names, &n), CT_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "\"es\""));
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "eng"));
}
END_TEST

static char tmp[PATH_MAX];

static void put(const char *rel, const char *text)
{
    char path[PATH_MAX * 2], dir[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", tmp, rel);
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    ck_assert_int_eq(ct_mkdirs(dir, 0755), 0);
    ck_assert_int_eq(ct_write_file_atomic(path, text, strlen(text)), 0);
}

static void expect_error(const char *name, int code, const char *s1, const char *s2)
{
    ct_task *t = NULL;
    int rc = ct_task_load_from(name, tmp, &t);
    ck_assert_msg(rc == code, "%s: rc %d (%s)", name, rc, ct_error_message());
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(ct_error_message(), s1), "%s: %s", name, ct_error_message());
    if (s2)
        ck_assert_msg(strstr(ct_error_message(), s2), "%s: %s", name, ct_error_message());
}

START_TEST(errors)
{
    ct_test_tmpdir(tmp, sizeof tmp, "tasks");
    ct_task *t = NULL;
    ck_assert_int_eq(ct_task_load("blimp/distractor_agreement_relational_nun", &t), CT_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "closest: blimp/distractor_agreement_relational_noun"));
    ck_assert_int_eq(ct_task_load("clams/en/simple_agreement", &t), CT_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "clams/en/simple_agrmt"));
    ck_assert_int_eq(ct_task_load("glue/cola", &t), CT_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "multiblimp/<lang>"));
    ck_assert_int_eq(ct_task_load("multiblimp/xx", &t), CT_ENOTFOUND);
    ck_assert_int_eq(ct_task_load("blimp/../blimp/wh_island", &t), CT_EINVAL);
    ck_assert_int_eq(ct_task_load("blimp/", &t), CT_EINVAL);
    ck_assert_int_eq(ct_task_load("clams/en/simple_agrmt/x", &t), CT_EINVAL);
    ck_assert_ptr_null(t);

    put("tasks/blimp/bad.jsonl",
        "{\"sentence_good\": \"a b\", \"sentence_bad\": \"a c\"}\n{\"sentence_good\": \n");
    expect_error("blimp/bad", CT_EFORMAT, "tasks/blimp/bad.jsonl:2:", "not a JSON object");
    put("tasks/blimp/nogood.jsonl", "\n{\"sentence_bad\": \"a c\"}\n");
    expect_error("blimp/nogood", CT_EFORMAT, "nogood.jsonl:2:", "sentence_good");
    put("tasks/blimp/num.jsonl",
        "{\"sentence_good\": \"a b\", \"sentence_bad\": \"a c\", \"one_prefix_prefix\": 3}\n");
    expect_error("blimp/num", CT_EFORMAT, "num.jsonl:1:", "one_prefix_prefix");
    put("tasks/blimp/empty.jsonl", "\n\n");
    expect_error("blimp/empty", CT_EFORMAT, "empty.jsonl", "no pairs");

    put("tasks/clams/en/odd.txt",
        "True\tthe author laughs\nFalse\tthe author laugh\nTrue\tthe author swims\n");
    expect_error("clams/en/odd", CT_EFORMAT, "odd.txt:3:", "without its False twin");
    put("tasks/clams/en/twice.txt", "True\ta b\nTrue\ta c\nFalse\ta d\n");
    expect_error("clams/en/twice", CT_EFORMAT, "twice.txt:1:", "line 2 is True again");
    put("tasks/clams/en/falsefirst.txt", "False\ta b\nTrue\ta c\n");
    expect_error("clams/en/falsefirst", CT_EFORMAT, "falsefirst.txt:1:", "False without a preceding True");
    put("tasks/clams/en/label.txt", "True\ta b\nfalse\ta c\n");
    expect_error("clams/en/label", CT_EFORMAT, "label.txt:2:", "True\" or \"False\"");
    put("tasks/clams/en/utf8.txt", "True\ta \xff\nFalse\ta c\n");
    expect_error("clams/en/utf8", CT_EFORMAT, "utf8.txt:1:", "UTF-8");

    put("tasks/multiblimp/xxa.tsv", "sen\twrong_sen\tphenomenon\na b c\ta d c\tSV-#\na b\n");
    expect_error("multiblimp/xxa", CT_EFORMAT, "xxa.tsv:3:", "1 fields, the header has 3");
    put("tasks/multiblimp/xxb.tsv", "sentence\tother\na b\tc d\n");
    expect_error("multiblimp/xxb", CT_EFORMAT, "xxb.tsv:1:", "wrong_sen");
    put("tasks/multiblimp/xxc.tsv", "sen\twrong_sen\n\"a b\ta c\n");
    expect_error("multiblimp/xxc", CT_EFORMAT, "xxc.tsv:2:", "never closed");
    put("tasks/multiblimp/xxd.jsonl", "{\"sen\": \"a b\", \"wrong_sen\": \"a c\"}\n[1]\n");
    expect_error("multiblimp/xxd", CT_EFORMAT, "xxd.jsonl:2:", "expected a JSON object");
}
END_TEST

START_TEST(search_path)
{
    ct_test_tmpdir(tmp, sizeof tmp, "tasks");
    /* A user's MultiBLiMP language in the Hugging Face layout (<lang>/data.tsv), with
     * an index column, quoting, and a prefix column that one row contradicts. */
    put("tasks/multiblimp/spa/data.tsv",
        "\tsen\twrong_sen\tprefix\tphenomenon\n"
        "0\tLos gatos duermen.\tLos gatos duerme.\tLos gatos\tSV-#\n"
        "1\t\"El \"\"gato\"\" come\"\t\"El \"\"gato\"\" comen\"\t\"El \"\"gato\"\"\"\tSV-#\n"
        "2\tYo canto bien\tYo canta bien\tTu\tSV-P\n");
    ct_task *t;
    ck_assert_msg(ct_task_load_from("multiblimp/es", tmp, &t) == 0, "%s", ct_error_message());
    ck_assert_str_eq(ct_task_name(t), "multiblimp/spa");
    ck_assert_uint_eq(ct_task_size(t), 3);
    expect_pair(t, 0, 2, "Los gatos", "duermen", "duerme");
    expect_pair(t, 1, 3, "El \"gato\"", "come", "comen");
    ct_task_pair p;
    ck_assert_int_eq(ct_task_pair_get(t, 2, &p), 0);
    ck_assert_int_eq(p.drop, CT_TASK_PREFIX_MISMATCH);
    ct_task_free(t);

    const char *langs[] = {"es"};
    char **names;
    size_t n;
    ck_assert_int_eq(ct_tasks_for_languages(langs, 1, tmp, &names, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(names[0], "multiblimp/spa/SV-#");
    ck_assert_str_eq(names[1], "multiblimp/spa/SV-P");
    ct_task_names_free(names);

    /* Folders of the search path come first: a shadowing BLiMP file wins over the
     * shipped one, through the argument and through $CROSSTIME_DATA. */
    put("tasks/blimp/wh_island.jsonl",
        "{\"sentence_good\": \"x\", \"sentence_bad\": \"y\", \"one_prefix_prefix\": \"We saw\", "
        "\"one_prefix_word_good\": \"it\", \"one_prefix_word_bad\": \"them\"}\n");
    ck_assert_int_eq(ct_task_load_from("blimp/wh_island", tmp, &t), 0);
    ck_assert_uint_eq(ct_task_size(t), 1);
    ct_task_free(t);
    ck_assert_int_eq(setenv("CROSSTIME_DATA", tmp, 1), 0);
    ck_assert_int_eq(ct_task_load("blimp/wh_island", &t), 0);
    ck_assert_uint_eq(ct_task_size(t), 1);
    ct_task_free(t);
    ck_assert_int_eq(ct_task_list(NULL, &names, &n), 0);
    ck_assert_uint_eq(n, 67 + 22 + 4 * 7 + 4 + 3); /* + multiblimp/spa, spa/SV-#, spa/SV-P */
    ct_task_names_free(names);
    ck_assert_int_eq(unsetenv("CROSSTIME_DATA"), 0);
    ck_assert_int_eq(ct_task_load("blimp/wh_island", &t), 0);
    ck_assert_uint_eq(ct_task_size(t), 1000);
    ct_task_free(t);
}
END_TEST

/* Deterministic mutations of small valid files of each format: every load either
 * succeeds (and tokenizes with consistent counts) or fails with a message naming the
 * file; under the sanitizers this also shows no read goes out of bounds. */
START_TEST(mutations)
{
    ct_test_tmpdir(tmp, sizeof tmp, "tasks");
    static const struct {
        const char *rel, *name, *text;
    } seeds[] = {
        {"tasks/blimp/fz.jsonl", "blimp/fz",
         "{\"sentence_good\": \"A niece hasn't left.\", \"sentence_bad\": \"A niece haven't left.\", "
         "\"one_prefix_prefix\": \"A niece\", \"one_prefix_word_good\": \"hasn't\", "
         "\"one_prefix_word_bad\": \"haven't\"}\n"
         "{\"sentence_good\": \"Who ran?\", \"sentence_bad\": \"Who run?\"}\n"},
        {"tasks/clams/fz/p.txt", "clams/fz/p",
         "True\tthe author laughs\nFalse\tthe author laugh\nTrue\tl'\xc3\xa9l\xc3\xa8ve dort\n"
         "False\tl'\xc3\xa9l\xc3\xa8ve dorment\n"},
        {"tasks/multiblimp/fza.tsv", "multiblimp/fza",
         "\tsen\twrong_sen\tprefix\tphenomenon\n0\t\"He said \"\"no\"\" twice.\"\t\"He say \"\"no\"\" "
         "twice.\"\tHe\tSV-P\n"
         "1\tThe dogs bark.\tThe dogs barks.\tThe dogs\tSV-#\n"},
        {"tasks/multiblimp/fzb.jsonl", "multiblimp/fzb",
         "{\"sen\": \"Les chats dorment.\", \"wrong_sen\": \"Les chats dort.\", \"phenomenon\": \"SV-#\"}\n"
         "{\"sentence_good\": \"Il vient\", \"sentence_bad\": \"Il viennent\"}\n"},
    };
    static const unsigned char specials[] = {'\t', '\n', '"', '{', '}', ' ', 0, 0xC3, 0xFF, '\\', ':', 'T'};
    uint64_t x = 0x9E3779B97F4A7C15u;
    size_t loaded = 0, failed = 0;
    for (size_t s = 0; s < sizeof seeds / sizeof *seeds; s++) {
        for (int iter = 0; iter < 150; iter++) {
            unsigned char buf[1024];
            size_t n = strlen(seeds[s].text);
            memcpy(buf, seeds[s].text, n);
            int muts = 1 + (int)(x % 4);
            for (int m = 0; m < muts && n > 0; m++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                size_t pos = (size_t)(x >> 8) % n, op = x % 4;
                if (op == 0)
                    buf[pos] =
                        (x >> 40) & 1 ? (unsigned char)(x >> 48) : specials[(x >> 32) % sizeof specials];
                else if (op == 1) {
                    size_t k = 1 + (x >> 24) % 8;
                    k = k > n - pos ? n - pos : k;
                    memmove(buf + pos, buf + pos + k, n - pos - k);
                    n -= k;
                } else if (op == 2 && n + 8 < sizeof buf) {
                    memmove(buf + pos + 8, buf + pos, n - pos);
                    n += 8;
                } else
                    n = pos;
            }
            char path[PATH_MAX * 2];
            snprintf(path, sizeof path, "%s/%s", tmp, seeds[s].rel);
            char dirp[PATH_MAX * 2];
            snprintf(dirp, sizeof dirp, "%s", path);
            *strrchr(dirp, '/') = '\0';
            ck_assert_int_eq(ct_mkdirs(dirp, 0755), 0);
            ck_assert_int_eq(ct_write_file_atomic(path, buf, n), 0);
            ct_task *t = NULL;
            int rc = ct_task_load_from(seeds[s].name, tmp, &t);
            if (rc) {
                failed++;
                ck_assert_ptr_null(t);
                ck_assert_msg(strstr(ct_error_message(), strrchr(seeds[s].rel, '/') + 1), "%s",
                              ct_error_message());
                continue;
            }
            loaded++;
            ct_task_examples *e;
            ck_assert_msg(ct_task_tokenize(t, neox(), 0, &e) == 0, "%s", ct_error_message());
            size_t sum = ct_task_examples_kept(e);
            for (int r = 1; r < CT_TASK_N_REASONS; r++)
                sum += ct_task_examples_dropped(e, (ct_task_drop)r);
            ck_assert_uint_eq(sum, ct_task_size(t));
            ct_task_examples_free(e);
            ct_task_free(t);
        }
    }
    /* Both outcomes occur, so both paths were exercised. */
    ck_assert_uint_gt(loaded, 20);
    ck_assert_uint_gt(failed, 20);
}
END_TEST

/* The language of a task from its name, as the overlap step groups tasks. */
START_TEST(task_languages)
{
    static const char *const cases[][2] = {
        {"blimp/regular_plural_subject_verb_agreement_1", "en"}, {"clams/fr/simple_agrmt", "fr"},
        {"clams/en/vp_coord", "en"}, {"multiblimp/fra", "fr"}, {"multiblimp/eng/SV-#", "en"},
        {"multiblimp/xyz/SV-P", "xyz"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char lang[16];
        ct_task_language(cases[i][0], lang, sizeof lang);
        ck_assert_msg(strcmp(lang, cases[i][1]) == 0, "%s: %s, expected %s", cases[i][0], lang, cases[i][1]);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tasks");
    TCase *tc = tcase_create("tasks");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, blimp_pairs);
    tcase_add_test(tc, clams_pairs);
    tcase_add_test(tc, multiblimp_pairs);
    tcase_add_loop_test(tc, rule_matches_reference, 0, (int)(sizeof ref / sizeof *ref));
    tcase_add_test(tc, rule_known_examples);
    tcase_add_test(tc, rule_cap_spreads);
    tcase_add_test(tc, list_and_languages);
    tcase_add_test(tc, errors);
    tcase_add_test(tc, search_path);
    tcase_add_test(tc, mutations);
    tcase_add_test(tc, task_languages);
    suite_add_tcase(s, tc);
    int rc = ct_test_run(s);
    ct_tok_free(tok);
    return rc;
}

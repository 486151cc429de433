/* The paper's recipes (recipes/pythia-1b.yaml, olmo-1b-0724.yaml,
 * bloom-1b1-multilingual.yaml and their families/) against the numbers of
 * "Crosscoding Through Time" written out below: METHOD section 8 (checkpoints,
 * revisions, tuples), section 1 (layer, sequences, dtype, normalisation), section 2
 * (crosscoder hyperparameters and seeds) and section 4 (tasks). */
#include "common/error.h"
#include "pipeline/recipe/recipe.h"
#include "tests/support/testutil.h"

typedef struct {
    const char *name, *source;
    long long tokens;
} paper_ckpt;

typedef struct {
    const char *recipe, *family;
    int layer;
    paper_ckpt ckpts[6];
    const char *tuples[8][4]; /* NULL-terminated tuples, then an empty one */
} paper_run;

#define B 1000000000LL
#define M 1000000LL

static const paper_run runs[] = {
    {"pythia-1b",
     "gpt-neox",
     8,
     {{"step64", "hf:EleutherAI/pythia-1b@step64", 128 * M},
      {"step512", "hf:EleutherAI/pythia-1b@step512", 1 * B},
      {"step2000", "hf:EleutherAI/pythia-1b@step2000", 4 * B},
      {"main", "hf:EleutherAI/pythia-1b@main", 286 * B},
      {NULL, NULL, 0}},
     {{"step64", "step512"}, {"step512", "step2000"}, {"step2000", "main"}, {"step512", "step2000", "main"}, {NULL}}},
    {"olmo-1b-0724",
     "olmo",
     8,
     {{"step1000", "hf:allenai/OLMo-1B-0724-hf@step1000-tokens2B", 2 * B},
      {"step2000", "hf:allenai/OLMo-1B-0724-hf@step2000-tokens4B", 4 * B},
      {"step16000", "hf:allenai/OLMo-1B-0724-hf@step16000-tokens33B", 33 * B},
      {"step137000", "hf:allenai/OLMo-1B-0724-hf@step137000-tokens287B", 287 * B},
      {"step1454000", "hf:allenai/OLMo-1B-0724-hf@step1454000-tokens3048B", 3048 * B},
      {NULL, NULL, 0}},
     {{"step1000", "step2000"},
      {"step2000", "step16000"},
      {"step16000", "step137000"},
      {"step16000", "step1454000"},
      {"step137000", "step1454000"},
      {"step2000", "step16000", "step1454000"},
      {NULL}}},
    {"bloom-1b1-multilingual",
     "bloom",
     12,
     {{"global_step1000", "hf:bigscience/bloom-1b1-intermediate@global_step1000", 550 * M},
      {"global_step10000", "hf:bigscience/bloom-1b1-intermediate@global_step10000", 5500 * M},
      {"global_step100000", "hf:bigscience/bloom-1b1-intermediate@global_step100000", 55 * B},
      {"main", "hf:bigscience/bloom-1b1-intermediate@main", 341 * B},
      {NULL, NULL, 0}},
     {{"global_step1000", "global_step10000"},
      {"global_step10000", "global_step100000"},
      {"global_step100000", "main"},
      {"global_step10000", "global_step100000", "main"},
      {NULL}}},
};

static const char *const blimp_sva[] = {
    "blimp/distractor_agreement_relational_noun", "blimp/distractor_agreement_relative_clause",
    "blimp/irregular_plural_subject_verb_agreement_1", "blimp/regular_plural_subject_verb_agreement_1", NULL};

static ct_recipe *load(const char *name)
{
    ct_recipe *r = NULL;
    ck_assert_msg(ct_recipe_load(name, NULL, &r) == 0, "%s: %s", name, ct_error_message());
    return r;
}

static long long get_int(const ct_recipe *r, const char *path)
{
    json_t *v = ct_recipe_get(r, path);
    ck_assert_msg(json_is_integer(v), "%s: %s is not an integer", ct_recipe_name(r), path);
    return (long long)json_integer_value(v);
}

static double get_num(const ct_recipe *r, const char *path)
{
    json_t *v = ct_recipe_get(r, path);
    ck_assert_msg(json_is_number(v), "%s: %s is not a number", ct_recipe_name(r), path);
    return json_number_value(v);
}

static const char *get_str(const ct_recipe *r, const char *path)
{
    const char *s = json_string_value(ct_recipe_get(r, path));
    ck_assert_msg(s != NULL, "%s: %s is not a string", ct_recipe_name(r), path);
    return s;
}

/* METHOD sections 1 and 2: the same for every model of the paper. */
static void check_paper_settings(const ct_recipe *r)
{
    ck_assert_str_eq(get_str(r, "crosscoder.type"), "l1");
    ck_assert_int_eq(get_int(r, "crosscoder.dict_size"), 16384);
    ck_assert_int_eq(get_int(r, "crosscoder.batch_size"), 4096);
    ck_assert_int_eq(get_int(r, "crosscoder.tokens"), 400 * M);
    ck_assert_int_eq(get_int(r, "crosscoder.tokens") / get_int(r, "crosscoder.batch_size"), 97656);
    ck_assert(get_num(r, "crosscoder.lr") == 5e-5);
    ck_assert(get_num(r, "crosscoder.beta1") == 0.9);
    ck_assert(get_num(r, "crosscoder.beta2") == 0.999);
    ck_assert(get_num(r, "crosscoder.eps") == 1e-8);
    ck_assert(get_num(r, "crosscoder.grad_clip") == 1.0);
    ck_assert(get_num(r, "crosscoder.l1_coeff") == 2.0);
    ck_assert(get_num(r, "crosscoder.l1_warmup") == 0.05);
    ck_assert(get_num(r, "crosscoder.lr_decay_start") == 0.8);
    ck_assert(get_num(r, "crosscoder.dec_init_norm") == 0.08);
    ck_assert_int_eq(get_int(r, "crosscoder.checkpoint_every"), 5000);
    json_t *seeds = ct_recipe_get(r, "crosscoder.seeds");
    ck_assert_int_eq(json_array_size(seeds), 3);
    ck_assert_int_eq(json_integer_value(json_array_get(seeds, 0)), 124);
    ck_assert_int_eq(json_integer_value(json_array_get(seeds, 1)), 153);
    ck_assert_int_eq(json_integer_value(json_array_get(seeds, 2)), 6582);
    ck_assert_int_eq(get_int(r, "corpus.seq_len"), 1024);
    ck_assert_str_eq(get_str(r, "activations.dtype"), "bf16");
    ck_assert_int_eq(get_int(r, "activations.norm_batches"), 1000);
    ck_assert_int_eq(get_int(r, "activations.norm_batch_sequences"), 4);
    ck_assert_int_eq(get_int(r, "relie.ig_steps"), 10);
    ck_assert(get_num(r, "relie.threshold") == 0.1);
    ck_assert_int_eq(get_int(r, "relie.max_examples"), 1000);
}

START_TEST(paper_recipe_matches_method)
{
    const paper_run *p = &runs[_i];
    ct_recipe *r = load(p->recipe);
    ck_assert_str_eq(ct_recipe_name(r), p->recipe);
    ck_assert_str_eq(get_str(r, "model.family"), p->family);
    ck_assert_int_eq(get_int(r, "layer"), p->layer);
    check_paper_settings(r);
    json_t *ck = ct_recipe_get(r, "model.checkpoints");
    size_t n = 0;
    for (; p->ckpts[n].name; n++) {
        json_t *c = json_array_get(ck, n);
        ck_assert_msg(c != NULL, "%s: checkpoint %zu missing", p->recipe, n);
        ck_assert_str_eq(json_string_value(json_object_get(c, "name")), p->ckpts[n].name);
        ck_assert_str_eq(json_string_value(json_object_get(c, "source")), p->ckpts[n].source);
        ck_assert_int_eq(json_integer_value(json_object_get(c, "tokens")), p->ckpts[n].tokens);
    }
    ck_assert_int_eq(json_array_size(ck), n);
    json_t *tuples = ct_recipe_get(r, "tuples");
    size_t t = 0;
    for (; p->tuples[t][0]; t++) {
        json_t *tu = json_array_get(tuples, t);
        size_t k = 0;
        for (; k < 4 && p->tuples[t][k]; k++)
            ck_assert_str_eq(json_string_value(json_array_get(tu, k)), p->tuples[t][k]);
        ck_assert_int_eq(json_array_size(tu), k);
    }
    ck_assert_int_eq(json_array_size(tuples), t);
    ct_recipe_free(r);
}
END_TEST

START_TEST(english_recipes_use_the_four_blimp_agreement_subsets)
{
    const char *names[] = {"pythia-1b", "olmo-1b-0724"};
    for (int i = 0; i < 2; i++) {
        ct_recipe *r = load(names[i]);
        json_t *tasks = ct_recipe_get(r, "tasks");
        size_t k = 0;
        for (; blimp_sva[k]; k++)
            ck_assert_str_eq(json_string_value(json_array_get(tasks, k)), blimp_sva[k]);
        ck_assert_int_eq(json_array_size(tasks), k);
        ct_recipe_free(r);
    }
}
END_TEST

/* CLAMS: the seven phenomena in en and fr; MultiBLiMP: SV-#, SV-G, SV-P in six languages. */
START_TEST(bloom_recipe_tasks_cover_clams_and_multiblimp)
{
    static const char *const clams[] = {"long_vp_coord", "obj_rel_across_anim", "obj_rel_within_anim", "prep_anim",
                                        "simple_agrmt",  "subj_rel",            "vp_coord"};
    static const char *const langs[] = {"eng", "fra", "spa", "por", "arb", "hin"};
    static const char *const sv[] = {"SV-#", "SV-G", "SV-P"};
    ct_recipe *r = load("bloom-1b1-multilingual");
    json_t *tasks = ct_recipe_get(r, "tasks");
    size_t k = 0;
    char want[128];
    for (int l = 0; l < 2; l++)
        for (int p = 0; p < 7; p++) {
            snprintf(want, sizeof want, "clams/%s/%s", l ? "fr" : "en", clams[p]);
            ck_assert_str_eq(json_string_value(json_array_get(tasks, k++)), want);
        }
    for (int l = 0; l < 6; l++)
        for (int p = 0; p < 3; p++) {
            snprintf(want, sizeof want, "multiblimp/%s/%s", langs[l], sv[p]);
            ck_assert_str_eq(json_string_value(json_array_get(tasks, k++)), want);
        }
    ck_assert_int_eq(json_array_size(tasks), k);
    json_t *study = ct_recipe_get(r, "languages");
    ck_assert_int_eq(json_array_size(study), 6);
    ck_assert_str_eq(json_string_value(json_array_get(study, 4)), "ar");
    ct_recipe_free(r);
}
END_TEST

/* Every paper recipe says where its corpus comes from. */
START_TEST(corpus_sources_name_the_public_datasets)
{
    static const char *const want[][3] = {{"pythia-1b", "monology/pile-uncopyrighted", ".jsonl.zst"},
                                          {"olmo-1b-0724", "allenai/dolma", ".json.gz"},
                                          {"bloom-1b1-multilingual", "allenai/c4", ".json.gz"}};
    for (int i = 0; i < 3; i++) {
        ct_recipe *r = load(want[i][0]);
        ck_assert_ptr_nonnull(strstr(get_str(r, "corpus.download"), want[i][1]));
        /* BLOOM's C4 is a language mixture (corpus.mix), the others one stream */
        const char *files = ct_recipe_get(r, "corpus.mix") ? "corpus.mix.en.files.0" : "corpus.files.0";
        ck_assert_ptr_nonnull(strstr(get_str(r, files), want[i][2]));
        ck_assert_str_eq(get_str(r, "corpus.format"), "jsonl");
        ct_recipe_free(r);
    }
}
END_TEST

/* The family files alone carry the paper's settings and each family's site. */
START_TEST(family_defaults)
{
    static const char *const fam[][2] = {{"families/pythia.yaml", "gpt-neox"},
                                         {"families/olmo.yaml", "olmo"},
                                         {"families/bloom.yaml", "bloom"}};
    static const int layer[] = {8, 8, 12};
    for (int i = 0; i < 3; i++) {
        char yaml[512];
        snprintf(yaml, sizeof yaml,
                 "name: t\ninclude: %s\nmodel:\n  checkpoints:\n    - {name: a, source: hf:o/m@a, tokens: 1}\n"
                 "    - {name: b, source: hf:o/m@b, tokens: 2}\ncorpus: {files: [x.txt]}\ntuples: [[a, b]]\n",
                 fam[i][0]);
        ct_recipe *r = NULL;
        ck_assert_msg(ct_recipe_load_string("t.yaml", yaml, NULL, &r) == 0, "%s", ct_error_message());
        ck_assert_str_eq(get_str(r, "model.family"), fam[i][1]);
        ck_assert_int_eq(get_int(r, "layer"), layer[i]);
        check_paper_settings(r);
        ct_recipe_free(r);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("paper_recipes");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, paper_recipe_matches_method, 0, (int)(sizeof runs / sizeof *runs));
    tcase_add_test(tc, english_recipes_use_the_four_blimp_agreement_subsets);
    tcase_add_test(tc, bloom_recipe_tasks_cover_clams_and_multiblimp);
    tcase_add_test(tc, corpus_sources_name_the_public_datasets);
    tcase_add_test(tc, family_defaults);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return ct_test_run(suite()); }

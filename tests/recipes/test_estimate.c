/* The disk and compute estimate (pipeline/estimate.h):
 * - the paper's models without their weights: parameter counts against the published
 *   totals, activation bytes against tokens x d x 2, FLOPs against the formulas of
 *   METHOD section 2 computed here;
 * - a checkpoint present in the hub cache: its config.json wins over the table.
 * test_recipes_cli.c checks the byte counts against a real run. */
#include "pipeline/estimate.h"
#include "common/error.h"
#include "common/io.h"
#include "tests/support/testutil.h"

#include <math.h>

static void empty_hub(const char *tag)
{
    char dir[PATH_MAX];
    ct_test_tmpdir(dir, sizeof dir, tag);
    setenv("HF_HUB_CACHE", dir, 1);
}

static ct_estimate estimate_of(const char *name, const char *const *sets, size_t n_sets)
{
    ct_recipe_options ro = CT_RECIPE_OPTIONS_INIT;
    ro.sets = sets;
    ro.n_sets = n_sets;
    ct_recipe *r = NULL;
    ck_assert_msg(ct_recipe_load(name, &ro, &r) == 0, "%s", ct_error_message());
    ct_estimate e;
    ck_assert_msg(ct_estimate_recipe(r, NULL, &e) == 0, "%s", ct_error_message());
    ct_recipe_free(r);
    return e;
}

static void assert_rel(double got, double want, double tol, const char *what)
{
    ck_assert_msg(fabs(got - want) <= tol * fabs(want), "%s: %.17g, expected %.17g", what, got, want);
}

/* Parameter counts of the paper's models as their publishers state them (Pythia paper
 * table 1; the OLMo-1B and BLOOM-1b1 model cards / transformers' num_parameters()). */
START_TEST(paper_models_without_weights)
{
    empty_hub("est-hub");
    static const struct {
        const char *recipe;
        int n_layer, d, vocab, n_ckpt;
        double params;
    } m[] = {
        {"pythia-1b", 16, 2048, 50304, 4, 1011781632.0},
        {"olmo-1b-0724", 16, 2048, 50304, 5, 1176764416.0},
        {"bloom-1b1-multilingual", 24, 1536, 250880, 4, 1065314304.0},
    };
    for (int i = 0; i < 3; i++) {
        ct_estimate e = estimate_of(m[i].recipe, NULL, 0);
        ck_assert_int_eq(e.n_layer, m[i].n_layer);
        ck_assert_int_eq(e.d, m[i].d);
        ck_assert_int_eq(e.vocab, m[i].vocab);
        ck_assert_msg(e.params == m[i].params, "%s: %.0f parameters, expected %.0f", m[i].recipe, e.params,
                      m[i].params);
        ck_assert_ptr_nonnull(strstr(e.shape_source, "table"));
        ck_assert_int_eq(e.checkpoints, m[i].n_ckpt);
        /* 400M training tokens at 1023 per sequence (the first position is dropped) */
        ck_assert_int_eq(e.train_sequences, (400000000 + 1022) / 1023);
        ck_assert_int_eq(e.val_sequences, 240);
        long long rows = (e.train_sequences + e.val_sequences) * 1023;
        ck_assert_int_eq(e.train_rows + e.val_rows, rows);
        /* bf16: 2 bytes per value; beside them only headers and one int32 token per row */
        double data = (double)rows * m[i].d * 2;
        long long shards = e.train_shards + e.val_shards;
        ck_assert_msg(e.act_checkpoint_bytes >= data + (double)rows * 4 &&
                          e.act_checkpoint_bytes <= data + (double)rows * 4 + (double)shards * (112 + 64),
                      "%s: %.0f activation bytes per checkpoint for %lld rows", m[i].recipe, e.act_checkpoint_bytes,
                      rows);
        ck_assert(e.act_bytes == e.act_checkpoint_bytes * m[i].n_ckpt);
        ck_assert_int_eq(e.steps_per_crosscoder, 97656);
    }
    unsetenv("HF_HUB_CACHE");
}
END_TEST

/* Pythia-1B: extraction through blocks 0..8 and the crosscoders of METHOD section 2. */
START_TEST(pythia_flops_and_crosscoder_bytes)
{
    empty_hub("est-hub2");
    ct_estimate e = estimate_of("pythia-1b", NULL, 0);
    unsetenv("HF_HUB_CACHE");
    /* non-embedding parameters 805,736,448 (Pythia paper) less the final LayerNorm */
    double block = (805736448.0 - 2 * 2048) / 16;
    double tokens = (double)(e.train_sequences + e.val_sequences) * 1024;
    assert_rel(e.extract_checkpoint_flops, tokens * 9 * (2 * block + 2 * 1024.0 * 2048), 1e-12, "extract");
    assert_rel(e.extract_flops, 4 * e.extract_checkpoint_flops, 1e-12, "extract, 4 checkpoints");
    /* tuples: three pairs and one triple, three seeds each */
    double H = 16384, Bt = 4096, d = 2048, steps = 97656;
    double train = 3 * steps * 12 * Bt * d * H * (2 + 2 + 2 + 3);
    assert_rel(e.train_flops, train, 1e-12, "train");
    /* W_enc [M,d,H], b_enc [H], W_dec [H,M,d], b_dec [M,d] in fp32 */
    double w2 = 2 * d * H * 2 + H + 2 * d, w3 = 3 * d * H * 2 + H + 3 * d;
    assert_rel(e.crosscoder_bytes, 3 * 4 * (3 * w2 + w3), 1e-12, "crosscoder bytes");
    ck_assert_int_eq(e.crosscoders, 12);
    assert_rel(e.total_flops, e.extract_flops + e.train_flops + e.accuracy_flops + e.attribute_flops, 1e-12,
               "total");
    ck_assert(e.attribute_flops > 0 && e.accuracy_flops > 0);
    assert_rel(e.seconds, e.total_flops / (e.gflops * 1e9), 1e-12, "time");
}
END_TEST

START_TEST(throughput_option)
{
    empty_hub("est-hub3");
    ct_recipe *r = NULL;
    ck_assert_int_eq(ct_recipe_load("olmo-1b-0724", NULL, &r), 0);
    ct_estimate cpu, cuda, given;
    ct_estimate_options o = CT_ESTIMATE_OPTIONS_INIT;
    ck_assert_int_eq(ct_estimate_recipe(r, &o, &cpu), 0);
    o.device = "cuda";
    ck_assert_int_eq(ct_estimate_recipe(r, &o, &cuda), 0);
    o.gflops = 1234;
    ck_assert_int_eq(ct_estimate_recipe(r, &o, &given), 0);
    ct_recipe_free(r);
    unsetenv("HF_HUB_CACHE");
    ck_assert(cuda.gflops > cpu.gflops);
    ck_assert(given.gflops == 1234);
    ck_assert_ptr_nonnull(strstr(given.gflops_source, "--gflops"));
    assert_rel(given.seconds, given.total_flops / 1234e9, 1e-12, "time at 1234 GFLOP/s");
    ck_assert(cpu.total_flops == given.total_flops);
}
END_TEST

/* A downloaded checkpoint's config.json is used instead of the table. */
START_TEST(config_json_wins_over_the_table)
{
    char hub[PATH_MAX], p[PATH_MAX + 128];
    ct_test_tmpdir(hub, sizeof hub, "est-hubcfg");
    const char *commit = "0123456789abcdef0123456789abcdef01234567";
    snprintf(p, sizeof p, "%s/models--EleutherAI--pythia-1b/refs", hub);
    ck_assert_int_eq(ct_mkdirs(p, 0755), 0);
    snprintf(p, sizeof p, "%s/models--EleutherAI--pythia-1b/refs/step64", hub);
    ck_assert_int_eq(ct_write_file_atomic(p, commit, strlen(commit)), 0);
    snprintf(p, sizeof p, "%s/models--EleutherAI--pythia-1b/snapshots/%s", hub, commit);
    ck_assert_int_eq(ct_mkdirs(p, 0755), 0);
    snprintf(p + strlen(p), sizeof p - strlen(p), "/config.json");
    const char *cfg = "{\"architectures\": [\"GPTNeoXForCausalLM\"], \"model_type\": \"gpt_neox\", "
                      "\"hidden_size\": 512, \"num_hidden_layers\": 10, \"num_attention_heads\": 8, "
                      "\"intermediate_size\": 2048, \"vocab_size\": 1000, \"rotary_pct\": 0.25, "
                      "\"use_parallel_residual\": true, \"hidden_act\": \"gelu\", \"layer_norm_eps\": 1e-5, "
                      "\"max_position_embeddings\": 2048, \"tie_word_embeddings\": false}";
    ck_assert_int_eq(ct_write_file_atomic(p, cfg, strlen(cfg)), 0);
    setenv("HF_HUB_CACHE", hub, 1);
    ct_estimate e = estimate_of("pythia-1b", NULL, 0);
    unsetenv("HF_HUB_CACHE");
    ck_assert_msg(strstr(e.shape_source, "config.json") != NULL, "%s", e.shape_source);
    ck_assert_int_eq(e.d, 512);
    ck_assert_int_eq(e.n_layer, 10);
    ck_assert_int_eq(e.vocab, 1000);
    double rows = (double)(e.train_rows + e.val_rows);
    ck_assert(e.act_checkpoint_bytes >= rows * 512 * 2 && e.act_checkpoint_bytes < rows * 512 * 2 * 1.01);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("estimate");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, paper_models_without_weights);
    tcase_add_test(tc, pythia_flops_and_crosscoder_bytes);
    tcase_add_test(tc, throughput_option);
    tcase_add_test(tc, config_json_wins_over_the_table);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return ct_test_run(suite()); }

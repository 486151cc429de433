/* The paper's recipes through the CLI on a machine with neither weights nor corpus:
 * `plan` exits 0 and lists one download command per checkpoint (repository and
 * revision from the table below, not from the recipes) and where the corpus comes
 * from; `run --dry-run` prints the estimate, exits 0 and creates no cache; `run`
 * prints the estimate, runs what it can and fails naming the missing inputs. Then a
 * small recipe run for real: the estimate's byte counts equal the stored artifacts. */
#include "pipeline/estimate.h"
#include "pipeline/key.h"
#include "tests/steps/fixture.h"
#include "tests/support/cli.h"

#include <sys/stat.h>

static char out[1 << 17];

typedef struct {
    const char *recipe;
    const char *repo;
    const char *revisions[6];
    int d;
    const char *corpus_url;
} paper;

static const paper papers[] = {
    {"pythia-1b", "EleutherAI/pythia-1b", {"step64", "step512", "step2000", "main"}, 2048,
     "huggingface.co/datasets/monology/pile-uncopyrighted"},
    {"olmo-1b-0724",
     "allenai/OLMo-1B-0724-hf",
     {"step1000-tokens2B", "step2000-tokens4B", "step16000-tokens33B", "step137000-tokens287B",
      "step1454000-tokens3048B"},
     2048,
     "huggingface.co/datasets/allenai/dolma"},
    {"bloom-1b1-multilingual",
     "bigscience/bloom-1b1-intermediate",
     {"global_step1000", "global_step10000", "global_step100000", "main"},
     1536,
     "huggingface.co/datasets/allenai/c4"},
};

static int count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* Empty hub cache and an empty project root, so neither weights nor corpus exist. */
static void bare_machine(char *dir, size_t n, const char *tag)
{
    char p[PATH_MAX + 16];
    ct_test_tmpdir(dir, n, tag);
    snprintf(p, sizeof p, "%s/hub", dir);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    setenv("HF_HUB_CACHE", p, 1);
    snprintf(p, sizeof p, "%s/home", dir);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    setenv("CROSSTIME_HOME", p, 1);
}

START_TEST(plan_lists_downloads_without_weights_or_corpus)
{
    const paper *pp = &papers[_i];
    char dir[PATH_MAX];
    bare_machine(dir, sizeof dir, "recipes-plan");
    int rc = ct_cli(out, sizeof out, "plan %s --cache %s/cache", pp->recipe, dir);
    ck_assert_msg(rc == 0, "%s", out);
    int n = 0;
    for (; n < 6 && pp->revisions[n]; n++) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "huggingface-cli download %s --revision %s ", pp->repo, pp->revisions[n]);
        ck_assert_msg(count(out, cmd) == 1, "%s: expected once: %s\n%s", pp->recipe, cmd, out);
    }
    ck_assert_msg(count(out, "--revision ") == n, "%s: %d download commands, expected %d\n%s", pp->recipe,
                  count(out, "--revision "), n, out);
    char where[PATH_MAX + 64];
    snprintf(where, sizeof where, "corpus: no file matches %s/home/data/", dir);
    ck_assert_msg(count(out, where) == 1, "%s\n%s", where, out);
    ck_assert_msg(strstr(out, pp->corpus_url) != NULL, "%s", out);
    ck_assert_msg(strstr(out, "{dir}") == NULL, "placeholder left in: %s", out);
}
END_TEST

/* Task data that is not installed is a note naming where it goes, not a failure. */
START_TEST(missing_task_data_is_a_note)
{
    char dir[PATH_MAX];
    bare_machine(dir, sizeof dir, "recipes-tasks");
    int rc = ct_cli(out, sizeof out, "plan bloom-1b1-multilingual --cache %s/cache", dir);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strstr(out, "task multiblimp/hin/SV-# is not planned") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "huggingface-cli download jumelet/multiblimp hin/data.tsv") != NULL, "%s", out);
    ck_assert_int_eq(count(out, "jumelet/multiblimp hin/data.tsv"), 1); /* once for the three phenomena */
    /* a malformed task name stays an error */
    rc = ct_cli(out, sizeof out, "plan pythia-1b --cache %s/cache --set 'tasks=[blimp/a/b/c]'", dir);
    ck_assert_int_ne(rc, 0);
}
END_TEST

START_TEST(dry_run_prints_the_estimate_and_creates_nothing)
{
    const paper *pp = &papers[_i];
    char dir[PATH_MAX], cache[PATH_MAX + 16];
    bare_machine(dir, sizeof dir, "recipes-dry");
    snprintf(cache, sizeof cache, "%s/cache", dir);
    int rc = ct_cli(out, sizeof out, "run %s --dry-run --format json --cache %s", pp->recipe, cache);
    ck_assert_msg(rc == 0, "%s", out);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    ck_assert_msg(j != NULL, "%s: %s", je.text, out);
    json_t *counts = json_object_get(j, "counts"), *bytes = json_object_get(j, "bytes");
    long long train = (400000000 + 1022) / 1023, val = 240, rows = (train + val) * 1023;
    ck_assert_int_eq(json_integer_value(json_object_get(counts, "train_sequences")), train);
    double per_ckpt = json_number_value(json_object_get(bytes, "activations_per_checkpoint"));
    double data = (double)rows * pp->d * 2; /* bf16 */
    ck_assert_msg(per_ckpt >= data && per_ckpt <= data * 1.003, "%s: %.0f bytes per checkpoint, data %.0f",
                  pp->recipe, per_ckpt, data);
    json_decref(j);
    rc = ct_cli(out, sizeof out, "run %s --dry-run --cache %s --device cuda", pp->recipe, cache);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strstr(out, "activations") && strstr(out, "per checkpoint") && strstr(out, "time: about") &&
                      strstr(out, "--device cuda"),
                  "%s", out);
    struct stat st;
    ck_assert_msg(stat(cache, &st) != 0, "--dry-run created %s", cache);
}
END_TEST

START_TEST(run_prints_the_estimate_and_fails_on_missing_inputs)
{
    char dir[PATH_MAX];
    bare_machine(dir, sizeof dir, "recipes-run");
    int rc = ct_cli(out, sizeof out, "run pythia-1b --cache %s/cache", dir);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(out, "estimate for pythia-1b") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "inputs are missing") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "huggingface-cli download EleutherAI/pythia-1b --revision step64 ") != NULL, "%s",
                  out);
}
END_TEST

static double artifact_size(fx_world *w, const char *label)
{
    size_t idx;
    ck_assert_msg(ct_plan_find(w->plan, label, &idx) == 0, "no step %s", label);
    const ct_plan_step *s = ct_plan_get(w->plan, idx);
    json_t *rec;
    ck_assert_msg(ct_cache_get(w->cache, s->key, &rec) == 0, "%s: %s", label, ct_error_message());
    double size = (double)json_integer_value(json_object_get(json_object_get(rec, "blob"), "size"));
    json_decref(rec);
    return size;
}

/* The byte counts are exact: run a small recipe and weigh what it stored. */
START_TEST(estimate_matches_the_stored_artifacts)
{
    fx_env e;
    fx_setup(&e, "est-run");
    fx_write_recipe(&e, "corpus.txt");
    int rc = ct_cli(out, sizeof out, "run %s --cache %s -q", e.recipe, e.cache);
    ck_assert_msg(rc == 0, "%s", out);
    fx_world w;
    fx_world_open(&w, &e, NULL);
    ct_estimate est;
    ck_assert_msg(ct_estimate_recipe(w.recipe, NULL, &est) == 0, "%s", ct_error_message());
    ck_assert_int_eq(est.d, FX_D);
    ck_assert_ptr_nonnull(strstr(est.shape_source, "config.json"));
    double tokens = 0, acts = 0;
    static const char *const splits[3] = {"train", "val", "test"};
    long long counts[3] = {est.train_sequences, est.val_sequences, est.test_sequences};
    tokens += artifact_size(&w, "tokenize/index");
    for (int s = 0; s < 3; s++)
        for (long long k = 0; k * 64 < counts[s]; k++) {
            char label[64];
            snprintf(label, sizeof label, "tokenize/%s/%04lld", splits[s], k);
            tokens += artifact_size(&w, label);
            if (s < 2) {
                snprintf(label, sizeof label, "extract/a/%s/%04lld", splits[s], k);
                acts += artifact_size(&w, label);
            }
        }
    ck_assert_msg(tokens == est.tokens_bytes, "token shards: %.0f stored, %.0f estimated", tokens,
                  est.tokens_bytes);
    ck_assert_msg(acts == est.act_checkpoint_bytes, "activations: %.0f stored, %.0f estimated", acts,
                  est.act_checkpoint_bytes);
    /* the train artifact: the crosscoder's weights plus a header and the metric lines */
    double cc = artifact_size(&w, "train/a-b/seed1");
    ck_assert_msg(cc >= est.crosscoder_bytes && cc < est.crosscoder_bytes + 65536, "crosscoder: %.0f vs %.0f", cc,
                  est.crosscoder_bytes);
    fx_world_close(&w);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("recipes_cli");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 240);
    int n = (int)(sizeof papers / sizeof *papers);
    tcase_add_loop_test(tc, plan_lists_downloads_without_weights_or_corpus, 0, n);
    tcase_add_test(tc, missing_task_data_is_a_note);
    tcase_add_loop_test(tc, dry_run_prints_the_estimate_and_creates_nothing, 0, n);
    tcase_add_test(tc, run_prints_the_estimate_and_fails_on_missing_inputs);
    tcase_add_test(tc, estimate_matches_the_stored_artifacts);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return ct_test_run(suite()); }

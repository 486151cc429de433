/* Checkpoint sources in the planner: the key is the checkpoint's content digest,
 * memoised by the files' identity on disk. */
#include "cache/cache.h"
#include "common/error.h"
#include "common/sha256.h"
#include "models/checkpoint/checkpoint.h"
#include "pipeline/key.h"
#include "pipeline/plan.h"
#include "pipeline/steps/sources.h"
#include "tests/support/testutil.h"

#include <sys/stat.h>
#include <time.h>
#include <utime.h>

static const char *g_source; /* the checkpoint the test step kind plans */

static int plan_ckpt(ct_plan *plan, const ct_recipe *recipe)
{
    const char *label;
    return ct_steps_source_checkpoint(plan, g_source, &label);
}

static const ct_step_kind test_kind = {.name = "test_checkpoint_source", .version = 1, .plan = plan_ckpt,
                                       .internal = 1};

static int count_memos(const uint8_t key[CT_KEY_LEN], json_t *record, void *user)
{
    const char *kind = json_string_value(json_object_get(json_object_get(record, "material"), "kind"));
    if (kind && strcmp(kind, "source_digest_memo") == 0)
        (*(int *)user)++;
    return 0;
}

static void plan_once(ct_cache *cache, ct_recipe *recipe, char *hex)
{
    ct_plan *plan;
    ck_assert_msg(ct_plan_build(recipe, cache, &plan) == 0, "%s", ct_error_message());
    size_t idx;
    char label[PATH_MAX + 16];
    snprintf(label, sizeof label, "checkpoint:%s", g_source);
    ck_assert_int_eq(ct_plan_find(plan, label, &idx), 0);
    ct_key_hex(ct_plan_get(plan, idx)->key, hex);
    ck_assert_ptr_nonnull(ct_plan_get(plan, idx)->source_path);
    ck_assert_int_eq(ct_plan_save_manifest(plan, cache), 0);
    ct_plan_free(plan);
}

START_TEST(checkpoint_digest_is_memoised)
{
    char dir[PATH_MAX], src[PATH_MAX], cmd[3 * PATH_MAX], ckpt[PATH_MAX + 8];
    ct_test_tmpdir(dir, sizeof dir, "sources");
    snprintf(ckpt, sizeof ckpt, "%s/neox", dir);
    snprintf(cmd, sizeof cmd, "cp -r %s %s", ct_test_src(src, sizeof src, "tests/fixtures/checkpoints/neox"), ckpt);
    ck_assert_int_eq(system(cmd), 0);
    g_source = ckpt;
    ck_assert_int_eq(ct_step_register(&test_kind), 0);

    ct_cache_options o = CT_CACHE_OPTIONS_INIT;
    char cache_dir[PATH_MAX + 8];
    snprintf(cache_dir, sizeof cache_dir, "%s/cache", dir);
    o.dir = cache_dir;
    ct_cache *cache;
    ck_assert_int_eq(ct_cache_open(&o, &cache), 0);
    ct_recipe *recipe;
    ck_assert_int_eq(ct_recipe_load_string("t.yaml", "name: t\ntoy: {inputs: []}\n", NULL, &recipe), 0);

    char expect[CT_SHA256_HEX_LEN + 1], a[CT_KEY_HEX_LEN + 1], b[CT_KEY_HEX_LEN + 1];
    ck_assert_int_eq(ct_ckpt_digest_source(ckpt, NULL, expect), 0);
    plan_once(cache, recipe, a);
    ck_assert_str_eq(a, expect);
    plan_once(cache, recipe, b);
    ck_assert_str_eq(b, expect);
    int memos = 0;
    ct_cache_foreach(cache, count_memos, &memos);
    ck_assert_int_eq(memos, 1); /* the second plan reused the memo */

    /* touching a file changes its identity: a new memo, the same content digest */
    char cfg[PATH_MAX + 32];
    snprintf(cfg, sizeof cfg, "%s/config.json", ckpt);
    struct utimbuf t = {.actime = 1000000000, .modtime = 1000000000};
    ck_assert_int_eq(utime(cfg, &t), 0);
    plan_once(cache, recipe, b);
    ck_assert_str_eq(b, expect);
    memos = 0;
    ct_cache_foreach(cache, count_memos, &memos);
    ck_assert_int_eq(memos, 2);

    /* a missing checkpoint is a clear error naming the download command */
    g_source = "hf:EleutherAI/pythia-1b@step64";
    setenv("HF_HUB_CACHE", dir, 1);
    ct_plan *plan;
    ck_assert_int_ne(ct_plan_build(recipe, cache, &plan), 0);
    ck_assert_msg(strstr(ct_error_message(), "huggingface-cli download EleutherAI/pythia-1b"), "%s",
                  ct_error_message());
    ct_recipe_free(recipe);
    ct_cache_close(cache);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sources");
    TCase *tc = tcase_create("checkpoint");
    tcase_add_test(tc, checkpoint_digest_is_memoised);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

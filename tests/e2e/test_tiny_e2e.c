/* tiny-ci (tests/fixtures/recipes/tiny-ci.yaml: tiny-en shrunk) end to end through the
 * CLI: every registered step kind runs, the accuracy table is complete, a second run
 * computes nothing, the pretrain save points export as Hugging Face directories that
 * the checkpoint reader accepts (names, shapes, config) and that equal what
 * ct_pretrain_write_hf writes from the stored training state, and the pretrain chain
 * is deterministic: a second cache, whose run is killed mid-link and resumed, holds
 * bit-identical save points. */
#include "../support/cli.h"
#include "../support/testutil.h"
#include "cache/cache.h"
#include "common/error.h"
#include "common/io.h"
#include "common/sha256.h"
#include "models/checkpoint/checkpoint.h"
#include "models/forward/pretrain.h"
#include "models/tokenizer/tokenizer.h"
#include "pipeline/steps/pretrain.h"

#include <jansson.h>
#include <signal.h>

static char out[1 << 16];
static char recipe[PATH_MAX];

static const char *const save_names[] = {"step4", "step16", "step40"};
static const char *const save_labels[] = {"pretrain/4", "pretrain/16", "pretrain/40"};
#define N_SAVES 3

typedef struct {
    const char *label;
    uint8_t key[CT_KEY_LEN];
    json_t *record;
} find_ctx;

static int find_label(const uint8_t key[CT_KEY_LEN], json_t *record, void *user)
{
    find_ctx *f = user;
    const char *label = json_string_value(json_object_get(record, "label"));
    if (label && strcmp(label, f->label) == 0) {
        ck_assert_msg(!f->record, "two entries labelled %s", f->label);
        memcpy(f->key, key, CT_KEY_LEN);
        f->record = json_incref(record);
    }
    return 0;
}

/* The artifact and record of the step labelled `label` in the cache at `dir`. */
static void read_artifact(const char *dir, const char *label, char **data, size_t *len, json_t **record)
{
    ct_cache_options o = CT_CACHE_OPTIONS_INIT;
    o.dir = dir;
    o.read_only = 1;
    ct_cache *c;
    ck_assert_msg(ct_cache_open(&o, &c) == 0, "%s", ct_error_message());
    find_ctx f = {label, {0}, NULL};
    ck_assert_int_eq(ct_cache_foreach(c, find_label, &f), 0);
    ck_assert_msg(f.record, "%s: no entry labelled %s", dir, label);
    ck_assert_msg(ct_cache_read_all(c, f.key, data, len) == 0, "%s", ct_error_message());
    ct_cache_close(c);
    *record = f.record;
}

static int files_equal(const char *a, const char *b)
{
    char *x, *y;
    size_t nx, ny;
    ck_assert_msg(ct_read_file(a, &x, &nx) == 0, "%s", ct_error_message());
    ck_assert_msg(ct_read_file(b, &y, &ny) == 0, "%s", ct_error_message());
    int eq = nx == ny && memcmp(x, y, nx) == 0;
    free(x);
    free(y);
    return eq;
}

static long long jint(json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }

/* The exported directory of one save point against the checkpoint reader and against
 * ct_pretrain_write_hf run on a trainer restored from the artifact's state. */
static void check_checkpoint(const char *tmp, const char *cache, int i)
{
    char dir[PATH_MAX], ref[PATH_MAX], a[PATH_MAX + 32], b[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/hf-%s", tmp, save_names[i]);
    int rc = ct_cli(out, sizeof out, "export checkpoint %s %s --cache %s --out %s", save_names[i], recipe, cache, dir);
    ck_assert_msg(rc == 0, "export: %s", out);

    char *data;
    size_t len;
    json_t *record;
    read_artifact(cache, save_labels[i], &data, &len, &record);
    json_t *params = json_object_get(json_object_get(record, "material"), "params");
    json_t *m = json_object_get(params, "model"), *r = json_object_get(params, "run");
    ck_assert_int_eq(jint(params, "to"), atoll(save_labels[i] + 9));

    /* the reader: config fields as the recipe set them */
    ct_checkpoint *ck = NULL;
    ck_assert_msg(ct_ckpt_open(dir, &ck) == 0, "%s: %s", dir, ct_error_message());
    const ct_model_config *cfg = ct_ckpt_config(ck);
    ck_assert_int_eq(cfg->arch, CT_ARCH_GPT_NEOX);
    ck_assert_int_eq(cfg->hidden, jint(m, "hidden"));
    ck_assert_int_eq(cfg->n_layer, jint(m, "layers"));
    ck_assert_int_eq(cfg->n_head, jint(m, "heads"));
    ck_assert_int_eq(cfg->vocab, jint(m, "vocab"));
    ck_assert_int_eq(cfg->max_positions, jint(m, "ctx"));
    ck_assert_int_eq(cfg->intermediate, 4 * jint(m, "hidden"));
    ck_assert_int_eq(cfg->parallel_residual, json_is_true(json_object_get(m, "parallel_residual")));
    ck_assert_float_eq_tol(cfg->rotary_pct, json_number_value(json_object_get(m, "rotary_pct")), 1e-6);
    ck_assert(!cfg->tie_embeddings);
    ct_tokenizer *tok;
    snprintf(a, sizeof a, "%s/tokenizer.json", dir);
    ck_assert_msg(ct_tok_load(a, &tok) == 0, "%s", ct_error_message());
    int32_t eos = ct_tok_token_id(tok, "<|endoftext|>");
    ck_assert_int_ge(eos, 0);
    ck_assert_int_eq(cfg->eos_token_id, eos);
    ct_tok_free(tok);

    /* a trainer of the same setup, restored from the stored state */
    ct_model_config mc;
    ct_pretrain_neox_config(&mc, (int)jint(m, "vocab"), (int)jint(m, "hidden"), (int)jint(m, "layers"),
                            (int)jint(m, "heads"), (int)jint(m, "intermediate"), (int)jint(m, "ctx"),
                            (float)json_number_value(json_object_get(m, "rotary_pct")),
                            json_is_true(json_object_get(m, "parallel_residual")));
    mc.bos_token_id = mc.eos_token_id = eos;
    ct_pretrain_config pc = CT_PRETRAIN_CONFIG_INIT;
    pc.batch_sequences = (int)jint(r, "batch_sequences");
    pc.ctx = (int)jint(m, "ctx");
    pc.steps = (long)jint(r, "steps");
    pc.lr = json_number_value(json_object_get(r, "lr"));
    pc.min_lr = json_number_value(json_object_get(r, "min_lr"));
    pc.warmup_steps = (long)jint(r, "warmup_steps");
    pc.weight_decay = json_number_value(json_object_get(r, "weight_decay"));
    pc.grad_clip = json_number_value(json_object_get(r, "grad_clip"));
    pc.seed = (uint64_t)jint(r, "seed");
    ct_pretrain *t;
    ck_assert_msg(ct_pretrain_create(&pc, &mc, &t) == 0, "%s", ct_error_message());
    const void *state;
    size_t state_len;
    ck_assert_int_eq(ct_steps_pretrain_find(data, len, save_labels[i], "state", &state, &state_len), 0);
    ck_assert_msg(ct_pretrain_state_load(t, state, state_len, save_labels[i]) == 0, "%s", ct_error_message());
    ck_assert_int_eq(ct_pretrain_steps_done(t), jint(params, "to"));

    /* every parameter of the trainer under its HF name and shape, nothing else */
    ck_assert_uint_eq(ct_ckpt_tensor_count(ck), ct_pretrain_n_tensors(t));
    for (size_t k = 0; k < ct_pretrain_n_tensors(t); k++) {
        const ct_pretrain_tensor *pt = ct_pretrain_tensor_at(t, k);
        ct_tensor_view v;
        ck_assert_msg(ct_ckpt_tensor(ck, pt->name, &v) == 0, "%s: %s", pt->name, ct_error_message());
        ck_assert_uint_eq(v.numel, pt->numel);
        ck_assert_int_eq(v.ndim, pt->cols ? 2 : 1);
        ck_assert_int_eq(v.shape[0], pt->rows);
        if (pt->cols)
            ck_assert_int_eq(v.shape[1], pt->cols);
    }
    ct_ckpt_close(ck);

    snprintf(ref, sizeof ref, "%s/ref-%s", tmp, save_names[i]);
    ck_assert_msg(ct_pretrain_write_hf(t, ref, a) == 0, "%s", ct_error_message());
    for (int f = 0; f < 3; f++) {
        snprintf(a, sizeof a, "%s/%s", dir, ct_steps_pretrain_hf_files[f]);
        snprintf(b, sizeof b, "%s/%s", ref, ct_steps_pretrain_hf_files[f]);
        ck_assert_msg(files_equal(a, b), "%s differs from ct_pretrain_write_hf's %s", a, b);
    }
    ct_pretrain_free(t);
    json_decref(record);
    free(data);
}

/* SHA-256 of the whole artifact and of its model.safetensors. */
static void digests(const char *cache, const char *label, char whole[65], char weights[65])
{
    char *data;
    size_t len;
    json_t *record;
    read_artifact(cache, label, &data, &len, &record);
    uint8_t d[CT_SHA256_LEN];
    ct_sha256_buf(data, len, d);
    ct_hex_encode(d, CT_SHA256_LEN, whole);
    const void *st;
    size_t st_len;
    ck_assert_int_eq(ct_steps_pretrain_find(data, len, label, "model.safetensors", &st, &st_len), 0);
    ct_sha256_buf(st, st_len, d);
    ct_hex_encode(d, CT_SHA256_LEN, weights);
    json_decref(record);
    free(data);
}

START_TEST(tiny_end_to_end)
{
    char tmp[PATH_MAX], c1[PATH_MAX + 8], c2[PATH_MAX + 8];
    ct_test_tmpdir(tmp, sizeof tmp, "e2e");
    ct_test_src(recipe, sizeof recipe, "tests/fixtures/recipes/tiny-ci.yaml");
    snprintf(c1, sizeof c1, "%s/c1", tmp);
    snprintf(c2, sizeof c2, "%s/c2", tmp);

    int rc = ct_cli(out, sizeof out, "run %s --cache %s", recipe, c1);
    ck_assert_msg(rc == 0 && strstr(out, " 0 failed, 0 skipped"), "run: %s", out);
    for (int i = 0; i < N_SAVES; i++) {
        char line[64];
        snprintf(line, sizeof line, "computed %s (pretrain)", save_labels[i]);
        ck_assert_msg(strstr(out, line), "no '%s' in: %s", line, out);
    }
    ck_assert_msg(!strstr(out, "cannot be planned"), "%s", out);

    /* the accuracy table: every (task, checkpoint) cell filled */
    rc = ct_cli(out, sizeof out, "results %s --cache %s --table accuracy --format json", recipe, c1);
    ck_assert_msg(rc == 0, "results: %s", out);
    json_error_t err;
    json_t *table = json_loads(out, 0, &err);
    ck_assert_msg(table, "results json: %s: %s", err.text, out);
    ck_assert_int_eq(json_integer_value(json_object_get(table, "missing")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(table, "cells")), 2 * N_SAVES);
    json_decref(table);

    /* a second run computes nothing, and the plan has every step cached */
    rc = ct_cli(out, sizeof out, "run %s --cache %s", recipe, c1);
    ck_assert_msg(rc == 0 && strstr(out, " 0 computed"), "second run: %s", out);
    rc = ct_cli(out, sizeof out, "plan %s --cache %s --format json", recipe, c1);
    ck_assert_msg(rc == 0, "plan: %s", out);
    json_t *plan = json_loads(out, 0, &err);
    ck_assert_msg(plan, "plan json: %s", err.text);
    json_t *steps = json_object_get(plan, "steps");
    ck_assert_int_gt(json_array_size(steps), 30);
    size_t k;
    json_t *s;
    json_array_foreach(steps, k, s)
        ck_assert_msg(strcmp(json_string_value(json_object_get(s, "kind")), "source") == 0 ||
                          json_is_true(json_object_get(s, "cached")),
                      "step %s not cached after two runs", json_string_value(json_object_get(s, "label")));
    json_decref(plan);

    for (int i = 0; i < N_SAVES; i++)
        check_checkpoint(tmp, c1, i);

    /* determinism and resume: a second cache whose run is killed at step 25 (inside
     * the 16 -> 40 link, after the resume save at step 20) and then rerun */
    setenv("CT_PRETRAIN_KILL_AT", "25", 1);
    rc = ct_cli(out, sizeof out, "run %s --cache %s", recipe, c2);
    unsetenv("CT_PRETRAIN_KILL_AT");
    ck_assert_msg(rc == 128 + SIGKILL, "killed run: %d %s", rc, out);
    rc = ct_cli(out, sizeof out, "run %s --cache %s -v", recipe, c2);
    ck_assert_msg(rc == 0 && strstr(out, " 0 failed"), "resumed run: %s", out);
    ck_assert_msg(strstr(out, "pretrain/40: resuming at step 20"), "%s", out);
    for (int i = 0; i < N_SAVES; i++) {
        char w1[65], w2[65], a1[65], a2[65];
        digests(c1, save_labels[i], a1, w1);
        digests(c2, save_labels[i], a2, w2);
        ck_assert_msg(strcmp(w1, w2) == 0, "%s: model.safetensors differs between runs", save_labels[i]);
        ck_assert_msg(strcmp(a1, a2) == 0, "%s: artifact differs between runs", save_labels[i]);
    }
    /* the save points differ from each other: training moved the weights */
    char w0[65], w3[65], x[65];
    digests(c1, save_labels[0], x, w0);
    digests(c1, save_labels[N_SAVES - 1], x, w3);
    ck_assert_str_ne(w0, w3);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tiny_e2e");
    TCase *tc = tcase_create("e2e");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, tiny_end_to_end);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

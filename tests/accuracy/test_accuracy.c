/* The accuracy step kind and `crosstime results`, end to end through the CLI on the
 * tiny world of tests/steps/fixture.h (a BPE tokenizer trained on the shipped corpus
 * sample and two random GPT-NeoX checkpoints), with two real tasks capped at a few
 * examples. The step's log-probabilities are checked against an independent
 * computation: one unbatched forward per example and a float64 log-softmax of its
 * logits. */
#include "tests/steps/fixture.h"
#include "tests/support/cli.h"

#include "cache/cache.h"
#include "models/forward/model.h"
#include "models/tasks/tasks.h"
#include "pipeline/plan.h"
#include "pipeline/recipe/recipe.h"
#include "pipeline/results.h"
#include "pipeline/step.h"

#include <jansson.h>

static char out[1 << 20];

static const char *const tasks[2] = {"blimp/regular_plural_subject_verb_agreement_1", "clams/en/simple_agrmt"};
static const char *const cks[2] = {"a", "b"};
#define MAX_EXAMPLES 12

static void setup(fx_env *e, const char *tag)
{
    fx_setup(e, tag);
    fx_write_recipe(e, e->corpus);
    FILE *f = fopen(e->recipe, "a");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "tasks: [%s, %s]\nrelie: {max_examples: %d, batch_size: 4}\n", tasks[0], tasks[1], MAX_EXAMPLES);
    fclose(f);
}

/* `crosstime run` of just the accuracy steps (the corpus steps of the same recipe are
 * other kinds' business); extra options are appended. */
static int run_accuracy(const fx_env *e, const char *extra)
{
    char only[2048] = "";
    for (int t = 0; t < 2; t++)
        for (int m = 0; m < 2; m++)
            snprintf(only + strlen(only), sizeof only - strlen(only), " --only accuracy/%s/%s", tasks[t], cks[m]);
    return ct_cli(out, sizeof out, "run %s --cache %s -q%s %s", e->recipe, e->cache, only, extra ? extra : "");
}


/* The artifact (CSV) and summary of step accuracy/<task>/<ck>. */
static char *step_output(fx_world *w, const char *task, const char *ck, json_t **summary)
{
    char label[512];
    snprintf(label, sizeof label, "accuracy/%s/%s", task, ck);
    size_t idx, len;
    ck_assert_msg(ct_plan_find(w->plan, label, &idx) == 0, "no step %s", label);
    const ct_plan_step *s = ct_plan_get(w->plan, idx);
    ck_assert_msg(s->cached, "%s is not cached", label);
    char *csv;
    ck_assert_int_eq(ct_cache_read_all(w->cache, s->key, &csv, &len), 0);
    json_t *record;
    ck_assert_int_eq(ct_cache_get(w->cache, s->key, &record), 0);
    *summary = json_incref(json_object_get(record, "summary"));
    json_decref(record);
    return csv;
}

/* Parses the step's CSV: n lines of index,pair,logp_good,logp_bad. */
static size_t parse_csv(const char *csv, size_t *pair, double *good, double *bad, size_t cap)
{
    ck_assert_msg(strncmp(csv, "index,pair,logp_good,logp_bad\n", 30) == 0, "header: %.40s", csv);
    const char *p = csv + 30;
    size_t n = 0;
    while (*p) {
        size_t idx;
        int used;
        ck_assert_int_lt(n, cap);
        ck_assert_int_eq(sscanf(p, "%zu,%zu,%lf,%lf%n", &idx, &pair[n], &good[n], &bad[n], &used), 4);
        ck_assert_uint_eq(idx, n);
        p += used;
        ck_assert_int_eq(*p, '\n');
        p++;
        n++;
    }
    return n;
}

/* Independent reference: each example alone (T = its prefix), logits at its last
 * position, log-softmax in float64. */
static void reference(const fx_env *e, const char *task_name, int m, size_t *pair, double *good, double *bad,
                      size_t *n_out)
{
    ct_tokenizer *tok;
    ct_task *task;
    ct_task_examples *ex;
    ct_model *model;
    ck_assert_int_eq(ct_tok_load(e->tok, &tok), 0);
    ck_assert_int_eq(ct_task_load(task_name, &task), 0);
    ck_assert_int_eq(ct_task_tokenize(task, tok, MAX_EXAMPLES, &ex), 0);
    ct_model_options mo = CT_MODEL_OPTIONS_INIT;
    ck_assert_int_eq(ct_model_load(e->ck[m], &mo, &model), 0);
    int V = ct_model_get_config(model)->vocab;
    float *logits = malloc((size_t)V * sizeof *logits);
    size_t n = ct_task_examples_size(ex);
    for (size_t i = 0; i < n; i++) {
        const ct_task_example *x = ct_task_examples_get(ex, i);
        int32_t row = (int32_t)x->n_prefix - 1;
        ct_forward_args a = CT_FORWARD_ARGS_INIT;
        a.n_seq = 1;
        a.seq_len = (int)x->n_prefix;
        a.ids = x->prefix;
        a.n_rows = 1;
        a.rows = &row;
        a.logits = logits;
        ck_assert_int_eq(ct_model_forward(model, &a), 0);
        double mx = logits[0], z = 0;
        for (int v = 1; v < V; v++)
            mx = logits[v] > mx ? logits[v] : mx;
        for (int v = 0; v < V; v++)
            z += exp((double)logits[v] - mx);
        double lse = mx + log(z);
        good[i] = logits[x->good] - lse;
        bad[i] = logits[x->bad] - lse;
        pair[i] = x->pair;
    }
    *n_out = n;
    free(logits);
    ct_model_free(model);
    ct_task_examples_free(ex);
    ct_task_free(task);
    ct_tok_free(tok);
}

START_TEST(logprobs_match_unbatched_reference_and_batching_does_not_matter)
{
    fx_env e;
    setup(&e, "acc-ref");
    int rc = run_accuracy(&e, NULL);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strstr(out, "4 computed"), "%s", out);
    fx_world w;
    fx_world_open(&w, &e, NULL);
    size_t pair[64], rpair[64];
    double good[64], bad[64], rgood[64], rbad[64];
    for (int t = 0; t < 2; t++) {
        for (int m = 0; m < 2; m++) {
            json_t *s;
            char *csv = step_output(&w, tasks[t], cks[m], &s);
            size_t n = parse_csv(csv, pair, good, bad, 64), rn;
            reference(&e, tasks[t], m, rpair, rgood, rbad, &rn);
            ck_assert_uint_eq(n, rn);
            ck_assert_uint_eq(n, MAX_EXAMPLES);
            size_t correct = 0;
            double diff = 0;
            for (size_t i = 0; i < n; i++) {
                ck_assert_uint_eq(pair[i], rpair[i]);
                ck_assert_msg(fabs(good[i] - rgood[i]) <= 1e-5 && fabs(bad[i] - rbad[i]) <= 1e-5,
                              "%s/%s example %zu: %.9g %.9g vs reference %.9g %.9g", tasks[t], cks[m], i, good[i],
                              bad[i], rgood[i], rbad[i]);
                ck_assert_msg(fabs(rgood[i] - rbad[i]) > 1e-4, "near tie makes the accuracy check fragile");
                correct += rgood[i] > rbad[i];
                diff += rgood[i] - rbad[i];
            }
            ck_assert_double_eq(json_real_value(json_object_get(s, "accuracy")), (double)correct / (double)n);
            ck_assert_double_eq_tol(json_real_value(json_object_get(s, "mean_logprob_diff")), diff / (double)n,
                                    1e-5);
            ck_assert_int_eq(json_integer_value(json_object_get(s, "n")), (json_int_t)n);
            json_int_t kept = json_integer_value(json_object_get(s, "kept"));
            json_int_t pairs = json_integer_value(json_object_get(s, "pairs"));
            json_int_t dropped = 0;
            const char *k;
            json_t *v;
            json_object_foreach(json_object_get(s, "dropped"), k, v) dropped += json_integer_value(v);
            ck_assert_int_ge(kept, (json_int_t)n);
            ck_assert_int_eq(kept + dropped, pairs);
            ck_assert_int_gt(pairs, 100);
            json_decref(s);
            free(csv);
        }
    }
    fx_world_close(&w);

    /* one example per batch: other keys, the same numbers */
    rc = run_accuracy(&e, "--set relie.batch_size=1");
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strstr(out, "4 computed"), "%s", out);
    fx_world w4, w1;
    fx_world_open(&w4, &e, NULL);
    fx_world_open(&w1, &e, "relie.batch_size=1");
    for (int t = 0; t < 2; t++) {
        for (int m = 0; m < 2; m++) {
            json_t *s4, *s1;
            char *c4 = step_output(&w4, tasks[t], cks[m], &s4), *c1 = step_output(&w1, tasks[t], cks[m], &s1);
            size_t n4 = parse_csv(c4, pair, good, bad, 64), n1 = parse_csv(c1, rpair, rgood, rbad, 64);
            ck_assert_uint_eq(n4, n1);
            for (size_t i = 0; i < n4; i++) {
                ck_assert_uint_eq(pair[i], rpair[i]);
                /* equal up to float rounding: GEMM blocking differs with the batch shape */
                ck_assert_double_eq_tol(good[i], rgood[i], 1e-5);
                ck_assert_double_eq_tol(bad[i], rbad[i], 1e-5);
            }
            ck_assert_double_eq(json_real_value(json_object_get(s4, "accuracy")),
                                json_real_value(json_object_get(s1, "accuracy")));
            json_decref(s4);
            json_decref(s1);
            free(c4);
            free(c1);
        }
    }
    fx_world_close(&w4);
    fx_world_close(&w1);
}
END_TEST

/* The keys of every step of `crosstime plan --format json`, by label. */
static json_t *plan_keys(const fx_env *e, const char *extra)
{
    int rc = ct_cli(out, sizeof out, "plan %s --cache %s --format json %s", e->recipe, e->cache, extra);
    ck_assert_msg(rc == 0, "%s", out);
    json_error_t err;
    json_t *plan = json_loads(out, 0, &err);
    ck_assert_msg(plan != NULL, "plan json: %s", err.text);
    json_t *keys = json_object();
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(plan, "steps"), i, s)
        json_object_set(keys, json_string_value(json_object_get(s, "label")), json_object_get(s, "key"));
    json_decref(plan);
    return keys;
}

START_TEST(run_then_results_tables)
{
    fx_env e;
    setup(&e, "acc-res");
    /* nothing computed yet: every cell is missing, and a note says so */
    int rc = ct_cli(out, sizeof out, "results %s --cache %s --format csv", e.recipe, e.cache);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strstr(out, "task,a,b\n"), "%s", out);
    ck_assert_msg(strstr(out, "\nclams/en/simple_agrmt,,\n"), "%s", out);
    ck_assert_msg(strstr(out, "4 of 4 cells missing"), "%s", out);

    rc = run_accuracy(&e, NULL);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strstr(out, "4 computed, 0 picked up, 0 failed"), "%s", out);
    rc = run_accuracy(&e, NULL);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strstr(out, " 0 computed"), "second run computed something: %s", out);

    /* csv: header, one line per task, values equal to the step summaries */
    rc = ct_cli(out, sizeof out, "results %s --cache %s --format csv", e.recipe, e.cache);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strncmp(out, "task,a,b\n", 9) == 0, "%s", out);
    ck_assert_ptr_null(strstr(out, "missing"));
    fx_world w;
    fx_world_open(&w, &e, NULL);
    const char *line = out + 9;
    for (int t = 0; t < 2; t++) {
        size_t tl = strlen(tasks[t]);
        ck_assert_msg(strncmp(line, tasks[t], tl) == 0 && line[tl] == ',', "row %d: %s", t, line);
        const char *p = line + tl;
        for (int m = 0; m < 2; m++) {
            json_t *s;
            free(step_output(&w, tasks[t], cks[m], &s));
            ck_assert_int_eq(*p, ',');
            char *end;
            double v = strtod(p + 1, &end);
            ck_assert_ptr_ne(end, p + 1);
            ck_assert_double_eq_tol(v, json_real_value(json_object_get(s, "accuracy")), 1e-9);
            json_decref(s);
            p = end;
        }
        ck_assert_int_eq(*p, '\n');
        line = p + 1;
    }
    ck_assert_int_eq(*line, '\0');

    /* json: parses, with accuracy and mean logprob diff per cell */
    rc = ct_cli(out, sizeof out, "results %s --cache %s --format json", e.recipe, e.cache);
    ck_assert_msg(rc == 0, "%s", out);
    json_error_t err;
    json_t *j = json_loads(out, 0, &err);
    ck_assert_msg(j != NULL, "json: %s: %s", err.text, out);
    ck_assert_str_eq(json_string_value(json_object_get(j, "table")), "accuracy");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "missing")), 0);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "columns"), 1)), "b");
    json_t *rows = json_object_get(j, "rows");
    ck_assert_uint_eq(json_array_size(rows), 2);
    for (int t = 0; t < 2; t++) {
        json_t *row = json_array_get(rows, t);
        ck_assert_str_eq(json_string_value(json_object_get(row, "task")), tasks[t]);
        for (int m = 0; m < 2; m++) {
            json_t *cell = json_array_get(json_object_get(row, "cells"), (size_t)m), *s;
            free(step_output(&w, tasks[t], cks[m], &s));
            ck_assert_double_eq(json_real_value(json_object_get(cell, "accuracy")),
                                json_real_value(json_object_get(s, "accuracy")));
            ck_assert_double_eq(json_real_value(json_object_get(cell, "mean_logprob_diff")),
                                json_real_value(json_object_get(s, "mean_logprob_diff")));
            json_decref(s);
        }
    }
    json_decref(j);
    fx_world_close(&w);

    /* the aligned text table names every task */
    rc = ct_cli(out, sizeof out, "results %s --cache %s", e.recipe, e.cache);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strncmp(out, "task ", 5) == 0 && strstr(out, tasks[0]) && strstr(out, tasks[1]), "%s", out);

    /* an unknown table is an error that lists the known ones */
    rc = ct_cli(out, sizeof out, "results %s --cache %s --table nope", e.recipe, e.cache);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(out, "unknown table 'nope'") && strstr(out, "accuracy"), "%s", out);
}
END_TEST

START_TEST(max_examples_reruns_exactly_the_accuracy_steps)
{
    fx_env e;
    setup(&e, "acc-max");
    int rc = run_accuracy(&e, NULL);
    ck_assert_msg(rc == 0, "%s", out);
    json_t *before = plan_keys(&e, "");
    json_t *after = plan_keys(&e, "--set relie.max_examples=5");
    ck_assert_uint_eq(json_object_size(before), json_object_size(after));
    /* the examples cap reaches the accuracy and attribution steps and what reads them;
     * the corpus, activations and crosscoders keep their keys */
    static const char *const reads_examples[] = {"accuracy/", "attribute/", "validate/", "overlap/",
                                                 "annotate/", "report"};
    const char *label;
    json_t *key;
    int changed_accuracy = 0;
    json_object_foreach(before, label, key) {
        json_t *k2 = json_object_get(after, label);
        ck_assert_msg(k2 != NULL, "%s vanished", label);
        int differs = !json_equal(key, k2), expected = 0;
        for (size_t i = 0; i < sizeof reads_examples / sizeof *reads_examples; i++)
            expected |= strncmp(label, reads_examples[i], strlen(reads_examples[i])) == 0;
        ck_assert_msg(differs == expected, "%s: key %s", label, differs ? "changed" : "did not change");
        changed_accuracy += differs && strncmp(label, "accuracy/", 9) == 0;
    }
    ck_assert_int_eq(changed_accuracy, 4);
    json_decref(before);
    json_decref(after);

    /* the same steps in a fresh cache give byte-identical artifacts */
    fx_env e2 = e;
    snprintf(e2.cache, sizeof e2.cache, "%s/cache2", e.dir);
    rc = run_accuracy(&e2, NULL);
    ck_assert_msg(rc == 0, "%s", out);
    fx_world w1, w2;
    fx_world_open(&w1, &e, NULL);
    fx_world_open(&w2, &e2, NULL);
    for (int t = 0; t < 2; t++)
        for (int m = 0; m < 2; m++) {
            json_t *s1, *s2;
            char *c1 = step_output(&w1, tasks[t], cks[m], &s1), *c2 = step_output(&w2, tasks[t], cks[m], &s2);
            ck_assert_str_eq(c1, c2);
            ck_assert(json_equal(s1, s2));
            json_decref(s1);
            json_decref(s2);
            free(c1);
            free(c2);
        }
    fx_world_close(&w1);
    fx_world_close(&w2);

    rc = ct_cli(out, sizeof out, "results %s --cache %s --format csv --set relie.max_examples=5", e.recipe, e.cache);
    ck_assert_msg(strstr(out, "4 of 4 cells missing"), "%s", out);
    rc = run_accuracy(&e, "--set relie.max_examples=5");
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strstr(out, "4 computed"), "%s", out);
    rc = ct_cli(out, sizeof out, "results %s --cache %s --format json --set relie.max_examples=5", e.recipe,
                e.cache);
    ck_assert_msg(rc == 0, "%s", out);
    json_t *j = json_loads(out, 0, NULL);
    ck_assert_ptr_nonnull(j);
    json_t *cell = json_array_get(json_object_get(json_array_get(json_object_get(j, "rows"), 0), "cells"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(cell, "n")), 5);
    json_decref(j);
}
END_TEST

/* Checkpoints without tokenizer.json of the recipe's own: the checkpoint directory's
 * tokenizer is used; a pretrain: checkpoint reads the save point's artifact as its
 * checkpoint and tokenizer, and its column stays empty until that has run. */
START_TEST(checkpoint_tokenizer_and_pretrain_column)
{
    fx_env e;
    fx_setup(&e, "acc-pre");
    char cmd[4 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s/tokenizer.json'", e.tok, e.ck[0]);
    ck_assert_int_eq(system(cmd), 0);
    FILE *f = fopen(e.recipe, "w");
    ck_assert_ptr_nonnull(f);
    fputs("name: acc-pretrain\n"
          "model:\n"
          "  family: gpt-neox\n"
          "  checkpoints:\n"
          "    - {name: a, source: ckA, tokens: 1000}\n"
          "    - {name: p, source: \"pretrain:10\", tokens: 5000}\n"
          "layer: 1\n"
          "corpus: {files: [corpus.txt], seq_len: 16, val_sequences: 8, test_sequences: 4, shard_sequences: 64}\n"
          "crosscoder: {dict_size: 64, batch_size: 64, tokens: 4800, seeds: [1]}\n"
          "tuples: [[a, p]]\n"
          "tasks: [clams/en/simple_agrmt]\n"
          "relie: {max_examples: 4}\n"
          "pretrain: {model: {hidden: 32, layers: 2, heads: 4, ctx: 16}, batch_sequences: 2, steps: 10,\n"
          "           save_steps: [10]}\n",
          f);
    fclose(f);
    int rc = ct_cli(out, sizeof out, "plan %s --cache %s", e.recipe, e.cache);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(!strstr(out, "cannot be planned"), "%s", out);
    ck_assert_msg(strstr(out, "accuracy/clams/en/simple_agrmt/a "), "%s", out);
    ck_assert_msg(strstr(out, "accuracy/clams/en/simple_agrmt/p "), "%s", out);
    rc = ct_cli(out, sizeof out, "plan %s --cache %s --format json", e.recipe, e.cache);
    ck_assert_int_eq(rc, 0);
    json_t *plan = json_loads(out, 0, NULL);
    ck_assert_ptr_nonnull(plan);
    size_t i;
    json_t *step;
    char want[PATH_MAX + 64], real[PATH_MAX];
    ck_assert_ptr_nonnull(realpath(e.ck[0], real));
    snprintf(want, sizeof want, "source:%s/tokenizer.json", real);
    int found = 0;
    json_array_foreach(json_object_get(plan, "steps"), i, step) {
        json_t *in = json_object_get(step, "inputs");
        if (strcmp(json_string_value(json_object_get(step, "label")), "accuracy/clams/en/simple_agrmt/p") == 0) {
            ck_assert_str_eq(json_string_value(json_object_get(in, "checkpoint")), "pretrain/10");
            ck_assert_str_eq(json_string_value(json_object_get(in, "tokenizer")), "pretrain/10");
            found += 2;
        }
        if (strcmp(json_string_value(json_object_get(step, "label")), "accuracy/clams/en/simple_agrmt/a") != 0)
            continue;
        found += 1;
        const char *tok = json_string_value(json_object_get(in, "tokenizer"));
        ck_assert_msg(tok && strcmp(tok, want) == 0, "tokenizer input %s, want %s", tok, want);
    }
    ck_assert_int_eq(found, 3);
    json_decref(plan);
    rc = ct_cli(out, sizeof out, "run %s --cache %s -q --only accuracy/clams/en/simple_agrmt/a", e.recipe,
                e.cache);
    ck_assert_msg(rc == 0, "%s", out);
    rc = ct_cli(out, sizeof out, "results %s --cache %s --format csv", e.recipe, e.cache);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strncmp(out, "task,a,p\nclams/en/simple_agrmt,", 31) == 0, "%s", out);
    char *end;
    double v = strtod(out + 31, &end);
    ck_assert_ptr_ne(end, out + 31);
    ck_assert(v >= 0 && v <= 1);
    ck_assert_msg(strncmp(end, ",\n", 2) == 0, "%s", out);
    ck_assert_msg(strstr(out, "1 of 2 cells missing"), "%s", out);
}
END_TEST

START_TEST(bad_task_and_mismatched_tokenizer_are_clear_errors)
{
    fx_env e;
    setup(&e, "acc-err");
    int rc = ct_cli(out, sizeof out, "plan %s --cache %s --set 'tasks=[blimp/no_such_paradigm]'", e.recipe, e.cache);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(out, "no_such_paradigm"), "%s", out);
    /* no model.tokenizer and none in the checkpoint directory */
    rc = ct_cli(out, sizeof out, "plan %s --cache %s --set model.tokenizer=null", e.recipe, e.cache);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(out, "tokenizer.json"), "%s", out);
    /* GPT-NeoX-20B's tokenizer has ids far beyond the tiny models' vocabulary */
    char neox[PATH_MAX];
    ct_test_src(neox, sizeof neox, "tests/fixtures/tokenizers/gpt-neox-20b/20B_tokenizer.json.zst");
    rc = ct_cli(out, sizeof out, "run %s --cache %s -q --set model.tokenizer=%s --only accuracy/%s/a", e.recipe,
                e.cache, neox, tasks[1]);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(out, "FAILED accuracy/clams/en/simple_agrmt/a") &&
                      strstr(out, "the tokenizer does not match the checkpoint"),
                  "%s", out);
}
END_TEST

START_TEST(unknown_table_and_format)
{
    size_t n;
    const char *const *names = ct_results_tables(&n);
    ck_assert_uint_ge(n, 1);
    ck_assert_str_eq(names[0], "accuracy");
    ck_assert_int_eq(ct_results_check("accuracy"), 0);
    ck_assert_int_eq(ct_results_check("latentz"), CT_EINVAL);
    ck_assert_msg(strstr(ct_error_message(), "unknown table 'latentz' (known tables: accuracy"), "%s",
                  ct_error_message());
    json_t *t = json_pack("{s:s, s:s, s:[s], s:[{s:s, s:[n]}], s:i, s:i}", "row_header", "task", "value",
                          "accuracy", "columns", "x", "rows", "task", "t", "cells", "cells", 1, "missing", 1);
    ck_assert_int_eq(ct_results_write(t, "xml", stdout), CT_EINVAL);
    json_decref(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("accuracy");
    TCase *tc = tcase_create("accuracy");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, unknown_table_and_format);
    tcase_add_test(tc, logprobs_match_unbatched_reference_and_batching_does_not_matter);
    tcase_add_test(tc, run_then_results_tables);
    tcase_add_test(tc, max_examples_reruns_exactly_the_accuracy_steps);
    tcase_add_test(tc, checkpoint_tokenizer_and_pretrain_column);
    tcase_add_test(tc, bad_task_and_mismatched_tokenizer_are_clear_errors);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

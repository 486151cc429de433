/* accuracy: (checkpoint, task) -> per-example log-probabilities of the good and bad
 * answers, labelled "accuracy/<task>/<checkpoint>" (METHOD §4).
 *
 * Artifact: a CSV with a header line and one line per example,
 *   index,pair,logp_good,logp_bad
 * (index: the example's position among those used; pair: its source pair, see
 * ct_task_pair_get; log-probabilities at the last prefix position, "%.9g" so that the
 * floats round-trip). Summary: accuracy = P(logp(good) > logp(bad)),
 * mean_logprob_diff = mean(logp(good) - logp(bad)), n (examples used), pairs, kept,
 * and dropped {reason: count}. Accuracy and the mean are null when no example is left.
 *
 * Batching: examples are run relie.batch_size at a time, right-padded to the longest
 * prefix of the batch. Attention is causal, so a pad never reaches an earlier
 * position; reading each example's row at its own last prefix position makes the
 * values independent of its batch up to float rounding. batch_size stays in the key
 * because GEMM blocking may still change the last bits. */
#include "common/error.h"
#include "models/checkpoint/checkpoint.h"
#include "models/forward/model.h"
#include "models/tasks/tasks.h"
#include "models/tokenizer/tokenizer.h"
#include "pipeline/plan.h"
#include "pipeline/step.h"
#include "pipeline/steps/sources.h"
#include "pipeline/steps/shard.h"
#include "pipeline/steps/tuple.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The tokenizer.json that goes with checkpoint `m`: model.tokenizer (a file, or a
 * checkpoint directory / hf: source holding one), else the checkpoint's own. */
static int tokenizer_file(const ct_recipe *r, size_t m, char **out)
{
    const char *tok = json_string_value(ct_recipe_get(r, "model.tokenizer"));
    char dotted[64], *src = NULL;
    snprintf(dotted, sizeof dotted, "model.checkpoints.%zu.source", m);
    int rc = ct_recipe_resolve_path(r, tok && *tok ? "model.tokenizer" : dotted, &src);
    if (rc)
        return rc;
    struct stat st;
    if (strncmp(src, "hf:", 3) != 0 && !(stat(src, &st) == 0 && S_ISDIR(st.st_mode))) {
        *out = src; /* a tokenizer.json file (a missing one is reported by the source) */
        return 0;
    }
    char *dir = NULL;
    rc = ct_ckpt_resolve(src, &dir);
    free(src);
    if (rc)
        return rc;
    size_t n = strlen(dir) + sizeof "/tokenizer.json";
    *out = malloc(n);
    if (!*out) {
        free(dir);
        return ct_error_set(CT_ENOMEM, "out of memory");
    }
    snprintf(*out, n, "%s/tokenizer.json", dir);
    if (stat(*out, &st) != 0)
        rc = ct_error_set(CT_ENOTFOUND, "%s: no tokenizer.json for the accuracy steps: set model.tokenizer, or "
                          "put the checkpoint's tokenizer.json there", dir);
    free(dir);
    if (rc) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

/* Two notes: what is missing (the loader's reason, without its list of similar
 * names), and where the language's file goes (the same for each of its phenomena, so
 * ct_plan_note keeps it once). */
static void missing_task_note(ct_plan *plan, const char *name)
{
    const char *why = ct_error_message();
    ct_plan_note(plan, "task %s is not planned: %.*s", name, (int)strcspn(why, ";"), why);
    ct_error_clear();
    int n = (int)strcspn(name + 11, "/");
    ct_plan_note(plan,
                 "MultiBLiMP %.*s (https://huggingface.co/datasets/jumelet/multiblimp): huggingface-cli "
                 "download jumelet/multiblimp %.*s/data.tsv --repo-type dataset --local-dir "
                 "\"$CROSSTIME_DATA/tasks/multiblimp\"",
                 n, name + 11, n, name + 11);
}

static int plan_accuracy(ct_plan *plan, const ct_recipe *recipe)
{
    json_t *tasks = ct_recipe_get(recipe, "tasks");
    json_t *cks = ct_recipe_get(recipe, "model.checkpoints");
    size_t n_tasks = json_array_size(tasks);
    if (!n_tasks || !json_array_size(cks))
        return 0;
    /* Each task is loaded once, for its canonical name and its data file. */
    const char **task_labels = calloc(n_tasks, sizeof *task_labels);
    char **canonical = calloc(n_tasks, sizeof *canonical);
    int rc = task_labels && canonical ? 0 : ct_error_set(CT_ENOMEM, "out of memory");
    for (size_t t = 0; t < n_tasks && !rc; t++) {
        ct_task *task = NULL;
        const char *task_name = json_string_value(json_array_get(tasks, t));
        rc = ct_task_load(task_name, &task);
        if (rc == CT_ENOTFOUND && strncmp(task_name, "multiblimp/", 11) == 0) {
            /* MultiBLiMP ships for eng and fra only: another language's data is
             * downloaded by the user, and the rest of the recipe still plans. BLiMP and
             * CLAMS ship whole, so an unknown name there stays an error. */
            missing_task_note(plan, task_name);
            rc = 0;
            continue;
        }
        if (rc)
            break;
        canonical[t] = strdup(ct_task_name(task));
        rc = canonical[t] ? ct_plan_source_file(plan, ct_task_file(task), &task_labels[t])
                          : ct_error_set(CT_ENOMEM, "out of memory");
        ct_task_free(task);
    }
    long long max_examples = json_integer_value(ct_recipe_get(recipe, "relie.max_examples"));
    long long batch = json_integer_value(ct_recipe_get(recipe, "relie.batch_size"));
    for (size_t m = 0; m < json_array_size(cks) && !rc; m++) {
        json_t *ck = json_array_get(cks, m);
        const char *name = json_string_value(json_object_get(ck, "name"));
        const char *source = json_string_value(json_object_get(ck, "source"));
        if (!ct_steps_checkpoint_available(plan, recipe, m))
            continue;
        /* a pretrain save point carries its own tokenizer.json */
        int pretrained = source && strncmp(source, "pretrain:", 9) == 0;
        char dotted[64], *src = NULL, *tok = NULL;
        const char *ck_label, *tok_label = NULL;
        snprintf(dotted, sizeof dotted, "model.checkpoints.%zu.source", m);
        if ((rc = ct_recipe_resolve_path(recipe, dotted, &src)) == 0 &&
            (rc = ct_steps_source_checkpoint(plan, src, &ck_label)) == 0 && pretrained)
            tok_label = ck_label;
        else if (!rc && (rc = tokenizer_file(recipe, m, &tok)) == 0)
            rc = ct_plan_source_file(plan, tok, &tok_label);
        free(src);
        free(tok);
        for (size_t t = 0; t < n_tasks && !rc; t++) {
            if (!task_labels[t])
                continue;
            char label[1024];
            snprintf(label, sizeof label, "accuracy/%s/%s", json_string_value(json_array_get(tasks, t)), name);
            json_t *params = json_pack("{s:s, s:I, s:I}", "task", canonical[t], "max_examples",
                                       (json_int_t)max_examples, "batch_size", (json_int_t)batch);
            rc = ct_plan_add(plan, "accuracy", label, params,
                             json_pack("{s:s, s:s, s:s}", "checkpoint", ck_label, "task", task_labels[t],
                                       "tokenizer", tok_label));
        }
    }
    for (size_t t = 0; canonical && t < n_tasks; t++)
        free(canonical[t]);
    free(canonical);
    free(task_labels);
    return rc;
}

/* Runs examples [e0, e0+B) as one right-padded batch; writes logp of good and bad. */
static int run_batch(ct_model *model, const ct_task_examples *ex, size_t e0, int B, int vocab, int32_t *ids,
                     int32_t *rows, float *logprobs, float *lp_good, float *lp_bad)
{
    int T = 0;
    for (int b = 0; b < B; b++) {
        const ct_task_example *x = ct_task_examples_get(ex, e0 + (size_t)b);
        if ((int)x->n_prefix > T)
            T = (int)x->n_prefix;
    }
    for (int b = 0; b < B; b++) {
        const ct_task_example *x = ct_task_examples_get(ex, e0 + (size_t)b);
        int32_t *row = ids + (size_t)b * T;
        memcpy(row, x->prefix, x->n_prefix * sizeof *row);
        /* any valid id: causal attention keeps pads away from the rows read */
        for (int t = (int)x->n_prefix; t < T; t++)
            row[t] = x->prefix[x->n_prefix - 1];
        rows[b] = b * T + (int)x->n_prefix - 1;
    }
    ct_forward_args a = CT_FORWARD_ARGS_INIT;
    a.n_seq = B;
    a.seq_len = T;
    a.ids = ids;
    a.n_rows = B;
    a.rows = rows;
    a.logprobs = logprobs;
    int rc = ct_model_forward(model, &a);
    for (int b = 0; b < B && !rc; b++) {
        const ct_task_example *x = ct_task_examples_get(ex, e0 + (size_t)b);
        lp_good[b] = logprobs[(size_t)b * vocab + x->good];
        lp_bad[b] = logprobs[(size_t)b * vocab + x->bad];
    }
    return rc;
}

/* Checks every id and prefix length against the model before anything runs. */
static int check_examples(const char *label, const ct_task_examples *ex, const ct_model_config *cfg,
                          const char *ckpt)
{
    for (size_t i = 0; i < ct_task_examples_size(ex); i++) {
        const ct_task_example *x = ct_task_examples_get(ex, i);
        ct_task_fit fit = ct_task_example_fit(x, cfg->vocab, cfg->max_positions);
        if (fit == CT_TASK_TOO_LONG)
            return ct_error_set(CT_EINVAL, "%s: example %zu has %zu prefix tokens, more than the %d positions of %s",
                                label, i, x->n_prefix, cfg->max_positions, ckpt);
        if (fit == CT_TASK_OUT_OF_VOCAB)
            return ct_error_set(CT_EINVAL, "%s: example %zu has a token id outside the vocabulary of %d rows of %s: "
                                "the tokenizer does not match the checkpoint", label, i, cfg->vocab, ckpt);
    }
    return 0;
}

static int run_accuracy(ct_step_ctx *ctx)
{
    const char *label = ct_step_label(ctx);
    json_t *p = ct_step_params(ctx);
    const char *name = json_string_value(json_object_get(p, "task"));
    json_int_t max_examples = json_integer_value(json_object_get(p, "max_examples"));
    json_int_t batch = json_integer_value(json_object_get(p, "batch_size"));
    const char *task_file = ct_step_input_path(ctx, "task", 0);
    if (!name || !task_file)
        return ct_error_set(CT_EINVAL, "%s: needs a task name and checkpoint, task and tokenizer inputs", label);
    if (max_examples < 0 || batch < 1 || batch > 4096)
        return ct_error_set(CT_EINVAL, "%s: relie.max_examples must be >= 0 and relie.batch_size in [1, 4096]",
                            label);
    ct_model_options mo = CT_MODEL_OPTIONS_INIT;
    ct_tokenizer *tok = NULL;
    ct_task *task = NULL;
    ct_task_examples *ex = NULL;
    ct_model *model = NULL;
    char *ckpt = NULL, *tok_file = NULL;
    int rc = ct_device_parse(ct_step_device(ctx), &mo.device);
    if (!rc)
        rc = ct_steps_checkpoint_dir(ctx, "checkpoint", 0, &ckpt);
    if (!rc)
        rc = ct_steps_tokenizer_path(ctx, "tokenizer", 0, &tok_file);
    if (!rc)
        rc = ct_tok_load(tok_file, &tok);
    if (!rc)
        rc = ct_steps_task_load(label, name, task_file, &task);
    if (!rc)
        rc = ct_task_tokenize(task, tok, (size_t)max_examples, &ex);
    if (!rc)
        rc = ct_model_load(ckpt, &mo, &model);
    const ct_model_config *cfg = rc ? NULL : ct_model_get_config(model);
    if (!rc)
        rc = check_examples(label, ex, cfg, ckpt);
    size_t n = rc ? 0 : ct_task_examples_size(ex);
    size_t max_prefix = 1;
    for (size_t i = 0; i < n; i++)
        if (ct_task_examples_get(ex, i)->n_prefix > max_prefix)
            max_prefix = ct_task_examples_get(ex, i)->n_prefix;
    int B = (int)batch;
    int32_t *ids = NULL, *rows = NULL;
    float *logprobs = NULL, *lp = NULL;
    if (!rc) {
        ids = malloc((size_t)B * max_prefix * sizeof *ids);
        rows = malloc((size_t)B * sizeof *rows);
        logprobs = malloc((size_t)B * (size_t)cfg->vocab * sizeof *logprobs);
        lp = malloc((2 * n + 2) * sizeof *lp);
        if (!ids || !rows || !logprobs || !lp)
            rc = ct_error_set(CT_ENOMEM, "out of memory");
    }
    ct_progress *prog = rc ? NULL : ct_step_progress(ctx, (double)n, "ex");
    for (size_t e0 = 0; e0 < n && !rc; e0 += (size_t)B) {
        if (ct_step_interrupted(ctx)) {
            rc = ct_error_set(CT_EINTR, "interrupted");
            break;
        }
        int b = n - e0 < (size_t)B ? (int)(n - e0) : B;
        rc = run_batch(model, ex, e0, b, cfg->vocab, ids, rows, logprobs, lp + e0, lp + n + e0);
        ct_progress_update(prog, (double)(e0 + (size_t)b));
    }
    ct_blob_writer *w = NULL;
    if (!rc)
        rc = ct_step_output(ctx, &w);
    static const char header[] = "index,pair,logp_good,logp_bad\n";
    if (!rc)
        rc = ct_blob_write(w, header, sizeof header - 1);
    size_t correct = 0;
    double sum_diff = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        float g = lp[i], b = lp[n + i];
        correct += g > b;
        sum_diff += (double)g - (double)b;
        char line[128];
        int len = snprintf(line, sizeof line, "%zu,%zu,%.9g,%.9g\n", i, ct_task_examples_get(ex, i)->pair,
                           (double)g, (double)b);
        rc = ct_blob_write(w, line, (size_t)len);
    }
    if (!rc) {
        json_t *dropped = json_object();
        for (int why = 1; why < CT_TASK_N_REASONS; why++)
            json_object_set_new(dropped, ct_task_drop_name((ct_task_drop)why),
                                json_integer((json_int_t)ct_task_examples_dropped(ex, (ct_task_drop)why)));
        json_t *s = json_pack("{s:s, s:o, s:o, s:I, s:I, s:I, s:o}", "task", ct_task_name(task), "accuracy",
                              n ? json_real((double)correct / (double)n) : json_null(), "mean_logprob_diff",
                              n ? json_real(sum_diff / (double)n) : json_null(), "n", (json_int_t)n, "pairs",
                              (json_int_t)ct_task_examples_pairs(ex), "kept", (json_int_t)ct_task_examples_kept(ex),
                              "dropped", dropped);
        ct_step_set_summary(ctx, s);
        if (n)
            ct_step_log(ctx, "%s: accuracy %.4f over %zu examples, mean logprob diff %.4f", label,
                        (double)correct / (double)n, n, sum_diff / (double)n);
        else
            ct_step_log(ctx, "%s: no example is left after the answer-token rule", label);
    }
    free(ids);
    free(rows);
    free(logprobs);
    free(lp);
    ct_model_free(model);
    ct_task_examples_free(ex);
    ct_task_free(task);
    ct_tok_free(tok);
    free(ckpt);
    free(tok_file);
    return rc;
}

const ct_step_kind ct_step_accuracy = {
    .name = "accuracy",
    .version = 1,
    .summary = "log-probabilities of good and bad answers of one task on one checkpoint; task accuracy",
    .plan = plan_accuracy,
    .run = run_accuracy,
    .internal = 0,
    .bundle = CT_BUNDLE_ARTIFACT,
};

/* pretrain: one save point of the recipe's pretraining run ("pretrain/<step>"; the
 * artifact's format is in pipeline/steps/pretrain.h).
 *
 * The run is a chain: pretrain/<s_k> starts from the training state stored in
 * pretrain/<s_{k-1}> (or from a fresh seeded model for the first save point) and
 * trains until step s_k. A link's key holds the whole run's setup plus its own
 * [from, to), so lengthening the run or adding a later save point reruns only the
 * links after the change, and every link is bit-identical to the same steps of one
 * uninterrupted run (the training state carries parameters, Adam moments, the step
 * count and the batch sampler). pretrain.steps is the schedule's length: the cosine
 * reaches min_lr there, whatever the save points are.
 *
 * Batches are windows of ctx + 1 tokens at seeded random offsets of the packed stream
 * (pretrain/tokens). Within a link the state is saved to the step's resume slot every
 * pretrain.resume_every global steps and on Ctrl-C; a rerun continues from there. */
#include "common/error.h"
#include "common/io.h"
#include "models/forward/pretrain.h"
#include "models/tokenizer/tokenizer.h"
#include "pipeline/plan.h"
#include "pipeline/step.h"
#include "pipeline/steps/hooks.h"
#include "pipeline/steps/pretrain.h"
#include "pipeline/steps/shard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static int plan_pretrain(ct_plan *plan, const ct_recipe *recipe)
{
    size_t idx;
    if (!ct_recipe_get(recipe, "pretrain") || ct_plan_find(plan, "pretrain/tokens", &idx) != 0)
        return 0;
    json_t *saves = ct_recipe_get(recipe, "pretrain.save_steps");
    size_t n = json_array_size(saves);
    long long *steps = calloc(n + 1, sizeof *steps);
    if (!steps)
        return ct_error_set(CT_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        steps[i] = json_integer_value(json_array_get(saves, i));
    qsort(steps, n, sizeof *steps, cmp_ll);
    json_t *model = json_deep_copy(ct_recipe_get(recipe, "pretrain.model"));
    json_object_set(model, "vocab", ct_recipe_get(recipe, "pretrain.tokenizer.vocab_size"));
    static const char *const fields[] = {"batch_sequences", "steps", "lr", "min_lr", "warmup_steps",
                                         "weight_decay", "grad_clip", "seed"};
    json_t *run = json_object();
    for (size_t f = 0; f < sizeof fields / sizeof *fields; f++) {
        char dotted[64];
        snprintf(dotted, sizeof dotted, "pretrain.%s", fields[f]);
        json_object_set(run, fields[f], ct_recipe_get(recipe, dotted));
    }
    json_t *resume = ct_recipe_get(recipe, "pretrain.resume_every");
    int rc = 0;
    long long prev = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (steps[i] == prev) /* a duplicate save point, or pretrain:0 */
            continue;
        char label[64], prev_label[64];
        snprintf(label, sizeof label, "pretrain/%lld", steps[i]);
        snprintf(prev_label, sizeof prev_label, "pretrain/%lld", prev);
        json_t *params = json_pack("{s:O, s:O, s:I, s:I}", "model", model, "run", run, "from", (json_int_t)prev,
                                   "to", (json_int_t)steps[i]);
        json_t *inputs = json_pack("{s:s, s:s}", "tokens", "pretrain/tokens", "tokenizer", "tokenizer");
        if (prev)
            json_object_set_new(inputs, "prev", json_string(prev_label));
        if (!(rc = ct_plan_add(plan, "pretrain", label, params, inputs)) && resume)
            rc = ct_plan_set_options(plan, label, json_pack("{s:O}", "resume_every", resume));
        prev = steps[i];
    }
    json_decref(model);
    json_decref(run);
    free(steps);
    return rc;
}

static double num(json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }
static long long integer(json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }

/* The trainer of the link's setup, before any state is restored. */
static int make_trainer(ct_step_ctx *ctx, json_t *p, int32_t eos, ct_pretrain **out)
{
    json_t *m = json_object_get(p, "model"), *r = json_object_get(p, "run");
    ct_model_config mc;
    ct_pretrain_neox_config(&mc, (int)integer(m, "vocab"), (int)integer(m, "hidden"), (int)integer(m, "layers"),
                            (int)integer(m, "heads"), (int)integer(m, "intermediate"), (int)integer(m, "ctx"),
                            (float)num(m, "rotary_pct"), json_is_true(json_object_get(m, "parallel_residual")));
    mc.bos_token_id = mc.eos_token_id = eos;
    ct_pretrain_config cfg = CT_PRETRAIN_CONFIG_INIT;
    cfg.batch_sequences = (int)integer(r, "batch_sequences");
    cfg.ctx = (int)integer(m, "ctx");
    cfg.steps = (long)integer(r, "steps");
    cfg.lr = num(r, "lr");
    cfg.min_lr = num(r, "min_lr");
    cfg.warmup_steps = (long)integer(r, "warmup_steps");
    cfg.weight_decay = num(r, "weight_decay");
    cfg.grad_clip = num(r, "grad_clip");
    cfg.seed = (uint64_t)integer(r, "seed");
    int rc = ct_device_parse(ct_step_device(ctx), &cfg.device);
    return rc ? rc : ct_pretrain_create(&cfg, &mc, out);
}

/* The resume slot holds the training state followed by the link's log so far, so a
 * resumed link writes the same artifact as an uninterrupted one. */
static int save_resume(ct_step_ctx *ctx, ct_pretrain *t, const char *log, size_t log_len)
{
    unsigned char *state;
    size_t len;
    int rc = ct_pretrain_state_image(t, &state, &len);
    if (rc)
        return rc;
    unsigned char *buf = malloc(8 + len + log_len);
    if (!buf) {
        free(state);
        return ct_error_set(CT_ENOMEM, "out of memory");
    }
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)len >> (8 * i));
    memcpy(buf + 8, state, len);
    memcpy(buf + 8 + len, log, log_len);
    rc = ct_step_resume_save(ctx, buf, 8 + len + log_len);
    free(buf);
    free(state);
    return rc;
}

static int load_resume(ct_step_ctx *ctx, ct_pretrain *t, char **log, size_t *log_len, size_t *log_cap)
{
    void *data;
    size_t len;
    int rc = ct_step_resume_load(ctx, &data, &len);
    if (rc == CT_ENOTFOUND) {
        ct_error_clear();
        return 0;
    }
    if (rc)
        return rc;
    const unsigned char *b = data;
    uint64_t sl = 0;
    for (int i = 7; i >= 0 && len >= 8; i--)
        sl = sl << 8 | b[i];
    char name[300];
    snprintf(name, sizeof name, "%s: resume state", ct_step_label(ctx));
    if (len < 8 || sl > len - 8)
        rc = ct_error_set(CT_ECORRUPT, "%s is truncated", name);
    if (!rc)
        rc = ct_pretrain_state_load(t, b + 8, (size_t)sl, name);
    size_t ll = rc ? 0 : len - 8 - (size_t)sl;
    if (!rc && ll + 1 > *log_cap) {
        char *nl = realloc(*log, ll + 1);
        if (!nl)
            rc = ct_error_set(CT_ENOMEM, "out of memory");
        else {
            *log = nl;
            *log_cap = ll + 1;
        }
    }
    if (!rc) {
        memcpy(*log, b + 8 + sl, ll);
        *log_len = ll;
        ct_step_log(ctx, "%s: resuming at step %ld", ct_step_label(ctx), ct_pretrain_steps_done(t));
    }
    free(data);
    return rc;
}

static int append_log(char **log, size_t *len, size_t *cap, const ct_pretrain_stats *st)
{
    char line[160];
    int n = snprintf(line, sizeof line, "{\"step\":%ld,\"loss\":%.9g,\"grad_norm\":%.9g,\"lr\":%.9g}\n", st->step,
                     st->loss, st->grad_norm, st->lr);
    if (*len + (size_t)n + 1 > *cap) {
        size_t nc = *cap ? *cap * 2 : 4096;
        while (nc < *len + (size_t)n + 1)
            nc *= 2;
        char *t = realloc(*log, nc);
        if (!t)
            return ct_error_set(CT_ENOMEM, "out of memory");
        *log = t;
        *cap = nc;
    }
    memcpy(*log + *len, line, (size_t)n);
    *len += (size_t)n;
    return 0;
}

/* Writes the Hugging Face files through ct_pretrain_write_hf (so the artifact holds
 * exactly what it writes) and reads them back into hf[0..3). */
static int hf_files(ct_pretrain *t, const char *tok_json, size_t tok_len, char *hf[3], size_t hf_len[3])
{
    const char *tmp = getenv("TMPDIR");
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/crosstime-pretrain-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return ct_error_set(CT_EIO, "%s: cannot create a temporary directory", dir);
    snprintf(path, sizeof path, "%s/tokenizer.src.json", dir);
    int rc = ct_write_file_atomic(path, tok_json, tok_len);
    if (!rc)
        rc = ct_pretrain_write_hf(t, dir, path);
    unlink(path);
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, ct_steps_pretrain_hf_files[i]);
        if (!rc)
            rc = ct_read_file(path, &hf[i], &hf_len[i]);
        unlink(path);
    }
    rmdir(dir);
    return rc;
}

static int run_pretrain(ct_step_ctx *ctx)
{
    const char *label = ct_step_label(ctx);
    json_t *p = ct_step_params(ctx);
    long from = (long)integer(p, "from"), to = (long)integer(p, "to");
    json_int_t resume_every = json_integer_value(json_object_get(ct_step_options(ctx), "resume_every"));
    if (resume_every <= 0)
        resume_every = 100;
    char *tok_json = NULL, *prev = NULL, *log = NULL, *hf[3] = {NULL, NULL, NULL};
    size_t tok_len = 0, prev_len = 0, log_len = 0, log_cap = 0, hf_len[3] = {0, 0, 0};
    unsigned char *state = NULL;
    size_t state_len = 0;
    ct_tokenizer *tok = NULL;
    ct_pretrain *t = NULL;
    int32_t *batch = NULL;
    ct_tokshard stream = {0};
    int rc = ct_steps_read_input(ctx, "tokenizer", 0, &tok_json, &tok_len);
    if (!rc)
        rc = ct_tok_load_json(tok_json, tok_len, "tokenizer artifact", &tok);
    if (!rc)
        rc = make_trainer(ctx, p, ct_tok_token_id(tok, "<|endoftext|>"), &t);
    const ct_pretrain_config *cfg = rc ? NULL : ct_pretrain_get_config(t);
    int vocab = (int)integer(json_object_get(p, "model"), "vocab");
    size_t tok_vocab = 0;
    if (!rc && !(rc = ct_tok_vocab_size(tok, &tok_vocab)) && tok_vocab > (size_t)vocab)
        rc = ct_error_set(CT_EINVAL, "%s: the tokenizer has %zu tokens, more than the model's %d", label, tok_vocab,
                          vocab);
    if (!rc)
        rc = ct_tokshard_read(ctx, "tokens", 0, &stream);
    size_t n_stream = (size_t)(stream.n_seq * stream.seq_len);
    if (!rc && n_stream < (size_t)cfg->ctx + 2)
        rc = ct_error_set(CT_EINVAL, "%s: the token stream (%zu tokens) is shorter than one batch row", label,
                          n_stream);
    for (size_t i = 0; i < n_stream && !rc; i++)
        if (stream.ids[i] < 0 || stream.ids[i] >= vocab)
            rc = ct_error_set(CT_EINVAL, "%s: token %d at %zu of the stream is outside the vocabulary of %d", label,
                              stream.ids[i], i, vocab);
    if (!rc && ct_step_input_count(ctx, "prev")) {
        const void *sd;
        size_t sl;
        char name[300];
        snprintf(name, sizeof name, "%s: input prev", label);
        if (!(rc = ct_steps_read_input(ctx, "prev", 0, &prev, &prev_len)) &&
            !(rc = ct_steps_pretrain_find(prev, prev_len, name, "state", &sd, &sl)))
            rc = ct_pretrain_state_load(t, sd, sl, name);
    }
    if (!rc && ct_pretrain_steps_done(t) != from)
        rc = ct_error_set(CT_ECORRUPT, "%s: the previous save point is at step %ld, expected %ld", label,
                          ct_pretrain_steps_done(t), from);
    if (!rc)
        rc = load_resume(ctx, t, &log, &log_len, &log_cap);
    if (!rc && (ct_pretrain_steps_done(t) < from || ct_pretrain_steps_done(t) > to))
        rc = ct_error_set(CT_ECORRUPT, "%s: resume state at step %ld is outside [%ld, %ld]", label,
                          ct_pretrain_steps_done(t), from, to);
    if (!rc && !(batch = malloc((size_t)cfg->batch_sequences * (size_t)(cfg->ctx + 1) * sizeof *batch)))
        rc = ct_error_set(CT_ENOMEM, "out of memory");
    ct_progress *prog = rc ? NULL : ct_step_progress(ctx, (double)(to - from), "step");
    ct_pretrain_stats st = {0};
    ct_steps_stop_hooks hooks;
    ct_steps_stop_hooks_read(&hooks, "CT_PRETRAIN");
    while (!rc && ct_pretrain_steps_done(t) < to) {
        ct_steps_stop_hooks_check(&hooks, ct_pretrain_steps_done(t));
        if (ct_step_interrupted(ctx)) {
            if (!(rc = save_resume(ctx, t, log, log_len)))
                rc = ct_error_set(CT_EINTR, "interrupted at step %ld (saved)", ct_pretrain_steps_done(t));
            break;
        }
        if (!(rc = ct_pretrain_sample_batch(t, stream.ids, n_stream, batch)) &&
            !(rc = ct_pretrain_step(t, batch, &st)))
            rc = append_log(&log, &log_len, &log_cap, &st);
        if (!rc && st.step % 50 == 0)
            ct_step_log(ctx, "%s: step %ld loss %.4f lr %.3g", label, st.step, st.loss, st.lr);
        if (!rc && st.step % resume_every == 0 && st.step < to)
            rc = save_resume(ctx, t, log, log_len);
        ct_progress_update(prog, (double)(ct_pretrain_steps_done(t) - from));
    }
    if (!rc)
        rc = ct_pretrain_state_image(t, &state, &state_len);
    if (!rc)
        rc = hf_files(t, tok_json, tok_len, hf, hf_len);
    ct_blob_writer *w;
    if (!rc && !(rc = ct_step_output(ctx, &w))) {
        ct_steps_pretrain_file files[5] = {
            {"state", state, state_len},
            {ct_steps_pretrain_hf_files[0], hf[0], hf_len[0]},
            {ct_steps_pretrain_hf_files[1], hf[1], hf_len[1]},
            {ct_steps_pretrain_hf_files[2], hf[2], hf_len[2]},
            {"log.jsonl", log ? log : "", log_len},
        };
        rc = ct_steps_pretrain_write(w, files, 5);
    }
    if (!rc) {
        /* the last step's loss: from this run, or from the log when it was all resumed */
        double loss = st.step ? st.loss : 0;
        for (const char *q = log; !st.step && q && (q = strstr(q, "\"loss\":")); q++)
            loss = strtod(q + 7, NULL);
        ct_step_set_summary(ctx, json_pack("{s:I, s:I, s:f, s:f, s:I}", "step", (json_int_t)to, "tokens",
                                           (json_int_t)to * cfg->batch_sequences * cfg->ctx, "loss", loss, "lr",
                                           ct_pretrain_lr(cfg, to - 1), "params",
                                           (json_int_t)ct_pretrain_n_params(t)));
    }
    for (int i = 0; i < 3; i++)
        free(hf[i]);
    free(state);
    free(batch);
    free(log);
    free(prev);
    free(tok_json);
    ct_tokshard_free(&stream);
    ct_pretrain_free(t);
    ct_tok_free(tok);
    return rc;
}

const ct_step_kind ct_step_pretrain = {
    .name = "pretrain",
    .version = 1,
    .summary = "pretrain the recipe's GPT-NeoX model up to one save point (training state + HF checkpoint)",
    .plan = plan_pretrain,
    .run = run_pretrain,
    .internal = 0,
    .bundle = CT_BUNDLE_ARTIFACT,
};

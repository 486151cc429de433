/* evaluate: one crosscoder's quality (METHOD §2 metrics), labelled
 * "evaluate/<A-B>/seed<S>".
 *
 * ΔCE: the mean next-token cross-entropy of each checkpoint on held-out sequences,
 * clean and with the crosscoder's reconstruction spliced in at the layer
 * (ct_attr_delta_ce). The sequences are the first evaluation.ce_sequences of the
 * validation split (the test split when the recipe has no validation sequences), in
 * split order, evaluation.ce_batch at a time. They are the corpus sequences as
 * tokenized for the activations: the tokenizers of the supported families add no BOS,
 * so none is added here either, and position 0 is evaluated like the others.
 *
 * The training metrics (L2, L1, L0, dead latents, explained variance per checkpoint)
 * are copied from the last validation line of the train artifact's metrics (the last
 * training line when training had no validation rows; dead is then null).
 *
 * Artifact and summary: the same JSON object {type, seed, dict_size, M, split,
 * n_sequences, seq_len, ce_clean[M], ce_spliced[M], delta_ce[M], metrics_split,
 * metrics_step, l2, l1, l0, dead, explained_variance[M]}; values the run cannot give
 * are null. */
#include "analysis/attribution.h"
#include "common/error.h"
#include "pipeline/plan.h"
#include "pipeline/step.h"
#include "pipeline/steps/shard.h"
#include "pipeline/steps/tuple.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int plan_evaluate(ct_plan *plan, const ct_recipe *r)
{
    ct_steps_crosscoder *cc = NULL;
    size_t ncc = 0;
    int rc = ct_steps_crosscoders(plan, r, &cc, &ncc);
    ct_steps_budget b;
    if (rc || !ncc || (rc = ct_steps_budget_of(r, &b)) != 0) {
        free(cc);
        return rc;
    }
    const char *split = b.n_val > 0 ? "val" : "test";
    size_t shards = ct_steps_n_shards(b.n_val > 0 ? b.n_val : b.n_test, b.per_shard);
    for (size_t c = 0; c < ncc && !rc; c++) {
        json_t *tokens = json_array();
        for (size_t k = 0; k < shards; k++) {
            char label[64];
            snprintf(label, sizeof label, "tokenize/%s/%04zu", split, k);
            json_array_append_new(tokens, json_string(label));
        }
        json_t *inputs = json_pack("{s:o}", "tokens", tokens);
        if ((rc = ct_steps_tuple_inputs(plan, &cc[c], 0, inputs))) {
            json_decref(inputs);
            break;
        }
        char label[700];
        snprintf(label, sizeof label, "evaluate/%s", cc[c].suffix);
        json_t *params = json_pack("{s:O, s:O, s:O, s:s}", "layer", ct_recipe_get(r, "layer"), "ce_sequences",
                                   ct_recipe_get(r, "evaluation.ce_sequences"), "ce_batch",
                                   ct_recipe_get(r, "evaluation.ce_batch"), "split", split);
        rc = ct_plan_add(plan, "evaluate", label, params, inputs);
    }
    free(cc);
    return rc;
}

/* The first `want` sequences of the "tokens" shards; *n_seq may come out smaller. */
static int read_sequences(ct_step_ctx *ctx, const ct_steps_tuple *t, size_t want, int32_t **ids, int *n_seq,
                          int *seq_len)
{
    const char *label = ct_step_label(ctx);
    size_t n = 0, cap = 0;
    *ids = NULL;
    *n_seq = 0;
    *seq_len = 0;
    int rc = 0;
    for (size_t i = 0; i < ct_step_input_count(ctx, "tokens") && n < want && !rc; i++) {
        ct_tokshard s;
        if ((rc = ct_tokshard_read(ctx, "tokens", i, &s)))
            break;
        if (*seq_len == 0) {
            *seq_len = (int)s.seq_len;
            cap = want * s.seq_len;
            *ids = malloc(cap * sizeof **ids + 1);
            if (!*ids)
                rc = ct_error_set(CT_ENOMEM, "out of memory");
        } else if ((uint32_t)*seq_len != s.seq_len) {
            rc = ct_error_set(CT_ECORRUPT, "%s: token shards of %d and %u tokens", label, *seq_len, s.seq_len);
        }
        for (uint64_t q = 0; q < s.n_seq && n < want && !rc; q++, n++)
            memcpy(*ids + n * s.seq_len, s.ids + q * s.seq_len, s.seq_len * sizeof **ids);
        ct_tokshard_free(&s);
    }
    for (int m = 0; m < t->M && !rc && n; m++) {
        const ct_model_config *c = ct_model_get_config(t->models[m]);
        if (c->max_positions > 0 && *seq_len > c->max_positions)
            rc = ct_error_set(CT_EINVAL, "%s: sequences of %d tokens exceed the %d positions of checkpoint %d", label,
                              *seq_len, c->max_positions, m);
        for (size_t i = 0; i < n * (size_t)*seq_len && !rc; i++)
            if ((*ids)[i] < 0 || (*ids)[i] >= c->vocab)
                rc = ct_error_set(CT_EINVAL, "%s: token id %d is outside the vocabulary of %d rows of checkpoint %d",
                                  label, (*ids)[i], c->vocab, m);
    }
    *n_seq = (int)n;
    return rc;
}

/* The last metrics line of `split` in the train artifact (new reference or NULL). */
static json_t *last_metrics(const ct_steps_tuple *t, const char *split)
{
    json_t *last = NULL;
    const char *p = t->metrics, *end = t->metrics + t->metrics_len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        json_t *o = json_loadb(p, len, 0, NULL);
        const char *sp = json_string_value(json_object_get(o, "split"));
        if (sp && strcmp(sp, split) == 0) {
            json_decref(last);
            last = o;
        } else {
            json_decref(o);
        }
        p += len + 1;
    }
    return last;
}

static void on_progress(void *user, size_t done, size_t total)
{
    (void)total;
    ct_progress_update(user, (double)done);
}

static json_t *field(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return v ? json_incref(v) : json_null();
}

static json_t *summary_of(const ct_steps_tuple *t, const char *split, int n_seq, int seq_len, const double *clean,
                          const double *spliced)
{
    int M = t->M;
    json_t *c = json_array(), *s = json_array(), *d = json_array();
    for (int m = 0; m < M; m++) {
        int ok = n_seq > 0 && isfinite(clean[m]) && isfinite(spliced[m]);
        json_array_append_new(c, ok ? json_real(clean[m]) : json_null());
        json_array_append_new(s, ok ? json_real(spliced[m]) : json_null());
        json_array_append_new(d, ok ? json_real(spliced[m] - clean[m]) : json_null());
    }
    json_t *metrics = last_metrics(t, "val");
    const char *msplit = "val";
    if (!metrics) {
        metrics = last_metrics(t, "train");
        msplit = metrics ? "train" : NULL;
    }
    const ct_cc_config *cfg = &t->cc->cfg;
    json_t *out = json_pack("{s:s, s:I, s:i, s:i, s:s, s:i, s:i, s:o, s:o, s:o}", "type",
                            cfg->type == CT_CC_BATCHTOPK ? "batchtopk" : "l1", "seed", (json_int_t)cfg->seed,
                            "dict_size", cfg->H, "M", M, "split", split, "n_sequences", n_seq, "seq_len", seq_len,
                            "ce_clean", c, "ce_spliced", s, "delta_ce", d);
    json_object_set_new(out, "metrics_split", msplit ? json_string(msplit) : json_null());
    json_object_set_new(out, "metrics_step", field(metrics, "step"));
    json_object_set_new(out, "l2", field(metrics, "l2"));
    json_object_set_new(out, "l1", field(metrics, "l1"));
    json_object_set_new(out, "l0", field(metrics, "l0"));
    json_object_set_new(out, "dead", field(metrics, "dead"));
    json_object_set_new(out, "explained_variance", field(metrics, "ev"));
    json_decref(metrics);
    return out;
}

static int run_evaluate(ct_step_ctx *ctx)
{
    const char *label = ct_step_label(ctx);
    json_t *p = ct_step_params(ctx);
    int layer = (int)json_integer_value(json_object_get(p, "layer"));
    json_int_t want = json_integer_value(json_object_get(p, "ce_sequences"));
    const char *split = json_string_value(json_object_get(p, "split"));
    ct_attr_options o = CT_ATTR_OPTIONS_INIT;
    o.batch = (int)json_integer_value(json_object_get(p, "ce_batch"));
    if (want < 0 || want > (1 << 24) || o.batch < 1 || o.batch > 4096 || !split)
        return ct_error_set(CT_EINVAL, "%s: evaluation.ce_sequences in [0, 2^24] and evaluation.ce_batch in "
                            "[1, 4096] are required", label);
    ct_steps_tuple t;
    int rc = ct_steps_tuple_load(ctx, layer, 0, &t);
    if (rc)
        return rc;
    int32_t *ids = NULL;
    int n_seq = 0, seq_len = 0;
    double clean[CT_STEPS_MAX_M], spliced[CT_STEPS_MAX_M];
    rc = read_sequences(ctx, &t, (size_t)want, &ids, &n_seq, &seq_len);
    if (!rc && n_seq > 0) {
        o.progress = on_progress;
        o.progress_user = ct_step_progress(ctx, (double)n_seq, "seq");
        rc = ct_attr_delta_ce(t.models, t.M, t.cc, layer, ids, n_seq, seq_len, &o, clean, spliced);
    }
    if (!rc) {
        rc = ct_steps_output_json(ctx, summary_of(&t, split, n_seq, seq_len, clean, spliced));
        if (!rc)
            ct_step_log(ctx, "%s: CE on %d sequences; first checkpoint %.4f -> %.4f", label, n_seq,
                        n_seq ? clean[0] : NAN, n_seq ? spliced[0] : NAN);
    }
    free(ids);
    ct_steps_tuple_free(&t);
    return rc;
}

const ct_step_kind ct_step_evaluate = {
    .name = "evaluate",
    .version = 1,
    .summary = "cross-entropy increase with the reconstruction spliced in, and the final training metrics",
    .plan = plan_evaluate,
    .run = run_evaluate,
    .internal = 0,
    .bundle = CT_BUNDLE_RESULT,
};

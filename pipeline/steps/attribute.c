/* attribute: (crosscoder, task) -> indirect effect of every latent on every checkpoint
 * of the tuple by integrated gradients (METHOD §5), labelled
 * "attribute/<A-B>/seed<S>/<task>".
 *
 * Inputs: the train step's crosscoder, the tuple's checkpoints (the sources their
 * extract steps read), the tokenizer the corpus was tokenized with, and the task file.
 * Parameters in the key: the canonical task name, layer, relie.max_examples,
 * relie.ig_steps, relie.threshold and relie.batch_size (batching changes the values
 * only by float rounding, as for accuracy, but stays in the key for that reason).
 *
 * Artifact: "CTATTRIB" (pipeline/steps/tuple.h): IE[M*H], the crosscoder's one-vs-all
 * RelDec[M*H] (so that the latents table needs no crosscoder), and per example and
 * checkpoint the completeness terms of ct_attr_ig. Summary: task, n_examples,
 * nonzero[M] (latents with IE != 0 per checkpoint), nonzero_latents (with IE != 0 on
 * any checkpoint), top[M] (the ATTR_TOP largest |IE| per checkpoint as
 * {latent, ie}). */
#include "analysis/attribution.h"
#include "common/error.h"
#include "pipeline/plan.h"
#include "pipeline/step.h"
#include "pipeline/steps/tuple.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ATTR_TOP 10

static int plan_attribute(ct_plan *plan, const ct_recipe *r)
{
    json_t *params = json_pack("{s:O, s:O, s:O, s:O, s:O}", "layer", ct_recipe_get(r, "layer"), "max_examples",
                               ct_recipe_get(r, "relie.max_examples"), "ig_steps", ct_recipe_get(r, "relie.ig_steps"),
                               "threshold", ct_recipe_get(r, "relie.threshold"), "batch_size",
                               ct_recipe_get(r, "relie.batch_size"));
    return ct_steps_plan_per_task(plan, r, "attribute", params, 0);
}

static void on_progress(void *user, size_t done, size_t total)
{
    (void)total;
    ct_progress_update(user, (double)done);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Writes the artifact (floats and doubles in host order: little-endian hosts only). */
static int write_artifact(ct_blob_writer *w, const ct_attr_result *res, const float *reldec, const uint64_t *pair)
{
    uint8_t h[32] = {0};
    memcpy(h, "CTATTRIB", 8);
    put32(h + 8, 1);
    put32(h + 12, (uint32_t)res->M);
    put32(h + 16, (uint32_t)res->H);
    put32(h + 24, (uint32_t)res->n_examples);
    put32(h + 28, (uint32_t)((uint64_t)res->n_examples >> 32));
    size_t mh = (size_t)res->M * (size_t)res->H, nm = res->n_examples * (size_t)res->M;
    int rc = ct_blob_write(w, h, sizeof h);
    if (!rc)
        rc = ct_blob_write(w, res->ie, mh * sizeof(float));
    if (!rc)
        rc = ct_blob_write(w, reldec, mh * sizeof(float));
    const double *blocks[4] = {res->example_total, res->example_error, res->example_delta, res->example_metric};
    for (int b = 0; b < 4 && !rc; b++)
        rc = nm ? ct_blob_write(w, blocks[b], nm * sizeof(double)) : 0;
    if (!rc && res->n_examples)
        rc = ct_blob_write(w, pair, res->n_examples * sizeof *pair);
    return rc;
}

static json_t *summary_of(const char *task, const ct_attr_result *res)
{
    int M = res->M, H = res->H;
    json_t *nonzero = json_array(), *top = json_array();
    double *mag = malloc(((size_t)H + 1) * sizeof *mag);
    int32_t best[ATTR_TOP];
    size_t any = 0;
    for (int j = 0; j < H; j++) {
        int nz = 0;
        for (int m = 0; m < M; m++)
            nz |= res->ie[(size_t)m * H + j] != 0.0f;
        any += (size_t)nz;
    }
    for (int m = 0; m < M && mag; m++) {
        size_t n = 0, nb = 0;
        for (int j = 0; j < H; j++) {
            mag[j] = fabs((double)res->ie[(size_t)m * H + j]);
            n += mag[j] != 0;
        }
        json_t *list = json_array();
        if (ct_steps_top(mag, H, ATTR_TOP, best, &nb) == 0)
            for (size_t i = 0; i < nb; i++)
                json_array_append_new(list, json_pack("{s:i, s:f}", "latent", (int)best[i], "ie",
                                                      (double)res->ie[(size_t)m * H + best[i]]));
        json_array_append_new(nonzero, json_integer((json_int_t)n));
        json_array_append_new(top, list);
    }
    free(mag);
    return json_pack("{s:s, s:I, s:o, s:I, s:o}", "task", task, "n_examples", (json_int_t)res->n_examples,
                     "nonzero", nonzero, "nonzero_latents", (json_int_t)any, "top", top);
}

static int run_attribute(ct_step_ctx *ctx)
{
    const char *label = ct_step_label(ctx);
    json_t *p = ct_step_params(ctx);
    const char *name = json_string_value(json_object_get(p, "task"));
    json_int_t max_examples = json_integer_value(json_object_get(p, "max_examples"));
    int layer = (int)json_integer_value(json_object_get(p, "layer"));
    ct_attr_options o = CT_ATTR_OPTIONS_INIT;
    o.steps = (int)json_integer_value(json_object_get(p, "ig_steps"));
    o.threshold = (float)json_number_value(json_object_get(p, "threshold"));
    o.batch = (int)json_integer_value(json_object_get(p, "batch_size"));
    const uint16_t one = 1;
    if (*(const uint8_t *)&one != 1)
        return ct_error_set(CT_EUNSUPPORTED, "%s: big-endian hosts are not supported", label);
    if (max_examples < 0 || o.steps < 1 || o.batch < 1 || o.batch > 4096 || !(o.threshold >= 0))
        return ct_error_set(CT_EINVAL, "%s: relie.max_examples >= 0, relie.ig_steps >= 1, relie.threshold >= 0 "
                            "and relie.batch_size in [1, 4096] are required", label);
    ct_steps_tuple t;
    ct_task *task = NULL;
    ct_task_examples *ex = NULL;
    ct_attr_result res = {0};
    uint64_t *pair = NULL;
    int rc = ct_steps_tuple_load(ctx, layer, 1, &t);
    if (rc)
        return rc;
    rc = ct_steps_tuple_examples(ctx, &t, name, (size_t)max_examples, &task, &ex);
    size_t n = rc ? 0 : ct_task_examples_size(ex);
    int M = t.M, H = t.cc->cfg.H;
    if (!rc && n) {
        o.progress = on_progress;
        o.progress_user = ct_step_progress(ctx, (double)n, "ex");
        rc = ct_attr_ig(t.models, M, t.cc, layer, ct_task_examples_get(ex, 0), n, &o, &res);
        if (!rc && (res.M != M || res.H != H || res.n_examples != n))
            rc = ct_error_set(CT_EINVAL, "%s: attribution returned M=%d H=%d n=%zu for M=%d H=%d n=%zu", label,
                              res.M, res.H, res.n_examples, M, H, n);
    } else if (!rc) {
        /* no example survives the answer-token rule: every effect is 0 */
        res.M = M;
        res.H = H;
        res.ie = calloc((size_t)M * (size_t)H, sizeof *res.ie);
        if (!res.ie)
            rc = ct_error_set(CT_ENOMEM, "out of memory");
    }
    if (!rc && !(pair = malloc((n + 1) * sizeof *pair)))
        rc = ct_error_set(CT_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && !rc; i++)
        pair[i] = ct_task_examples_get(ex, i)->pair;
    ct_blob_writer *w = NULL;
    if (!rc)
        rc = ct_step_output(ctx, &w);
    if (!rc)
        rc = write_artifact(w, &res, t.reldec, pair);
    if (!rc) {
        json_t *s = summary_of(ct_task_name(task), &res);
        ct_step_log(ctx, "%s: %zu examples, %lld latents with a nonzero effect", label, n,
                    (long long)json_integer_value(json_object_get(s, "nonzero_latents")));
        ct_step_set_summary(ctx, s);
    }
    free(pair);
    ct_attr_result_free(&res);
    ct_task_examples_free(ex);
    ct_task_free(task);
    ct_steps_tuple_free(&t);
    return rc;
}

const ct_step_kind ct_step_attribute = {
    .name = "attribute",
    .version = 1,
    .summary = "indirect effect of every crosscoder latent on each checkpoint of its tuple, per task",
    .plan = plan_attribute,
    .run = run_attribute,
    .internal = 0,
    .bundle = CT_BUNDLE_ARTIFACT,
};

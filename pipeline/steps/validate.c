/* validate: the ablation check of RelIE (METHOD §6) for one (crosscoder, task),
 * labelled "validate/<A-B>/seed<S>/<task>".
 *
 * Inputs: the attribute step of the same crosscoder and task, and the same models,
 * crosscoder, tokenizer and task file. Parameters in the key: the canonical task name,
 * layer, relie.max_examples (the attribute step's examples), relie.batch_size and
 * relie.top_k.
 *
 * The latents are ct_relie_select(top_k) of the attribute step's IE: per checkpoint
 * the top_k by |IE| among the nonzero ones, then their union. Each is zeroed in turn
 * (ct_attr_ablate) and Δ = clean − ablated of the mean LogProbDiff and of the accuracy
 * is taken per checkpoint. The compared pair is A = the tuple's first and B = its last
 * checkpoint, for two checkpoints as for three (the paper's 3-way RelIE is one-vs-all;
 * its validation is reported for 2-way pairs, and first-vs-last is the pair whose
 * difference in training is largest). For each latent: ratio = |Δ_B| / |Δ_A| of the
 * LogProbDiff, RelIE = ct_relie2(|IE_A|, |IE_B|), RelDec = ct_cc_reldec(A, B) of the
 * unfolded crosscoder.
 * ρ = Spearman(ratio, RelIE) and Spearman(ratio, RelDec) over the latents with
 * |Δ_A| + |Δ_B| > 0. Ranks are computed on |Δ_B| / (|Δ_A| + |Δ_B|), a strictly
 * increasing function of the ratio, so ρ is the same and a latent with Δ_A = 0 (ratio
 * infinite) keeps its rank; its ratio is null in the summary.
 *
 * Artifact and summary: the same JSON object {task, pair: [a, b], n_latents,
 * n_ranked, rho_relie, rho_reldec (null when undefined), clean_lpd[M], clean_acc[M],
 * latents: [{latent, relie, reldec, class, ie[M], delta_lpd[M], delta_acc[M],
 * ratio}]}; class is ct_relie_class_name over all M checkpoints. */
#include "analysis/attribution.h"
#include "analysis/relie.h"
#include "common/error.h"
#include "pipeline/plan.h"
#include "pipeline/step.h"
#include "pipeline/steps/tuple.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int plan_validate(ct_plan *plan, const ct_recipe *r)
{
    json_t *params = json_pack("{s:O, s:O, s:O, s:O}", "layer", ct_recipe_get(r, "layer"), "max_examples",
                               ct_recipe_get(r, "relie.max_examples"), "batch_size",
                               ct_recipe_get(r, "relie.batch_size"), "top_k", ct_recipe_get(r, "relie.top_k"));
    return ct_steps_plan_per_task(plan, r, "validate", params, 1);
}

static json_t *num_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *reals(const double *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, num_or_null(v[i]));
    return a;
}

static void on_progress(void *user, size_t done, size_t total)
{
    (void)total;
    ct_progress_update(user, (double)done);
}

/* The per-latent rows and ρ. */
static json_t *rows_of(const ct_steps_attr *a, const ct_ablation_result *ab, const int32_t *sel, size_t k,
                       const float *reldec_ab, double *x, double *y_relie, double *y_reldec, size_t *n_ranked)
{
    int M = a->M, H = a->H, B = M - 1;
    json_t *rows = json_array();
    *n_ranked = 0;
    for (size_t i = 0; i < k; i++) {
        int32_t j = sel[i];
        double abs_ie[CT_STEPS_MAX_M], dl[CT_STEPS_MAX_M], da[CT_STEPS_MAX_M], ie[CT_STEPS_MAX_M];
        for (int m = 0; m < M; m++) {
            ie[m] = a->ie[(size_t)m * H + j];
            abs_ie[m] = fabs(ie[m]);
            dl[m] = ab->clean_lpd[m] - ab->ablated_lpd[i * (size_t)M + m];
            da[m] = ab->clean_acc[m] - ab->ablated_acc[i * (size_t)M + m];
        }
        double relie = ct_relie2(abs_ie[0], abs_ie[B]), reldec = reldec_ab[j];
        double dA = fabs(dl[0]), dB = fabs(dl[B]);
        if (dA + dB > 0) {
            x[*n_ranked] = dB / (dA + dB);
            y_relie[*n_ranked] = relie;
            y_reldec[*n_ranked] = reldec;
            (*n_ranked)++;
        }
        json_t *row = json_pack("{s:i, s:f, s:f, s:s, s:o, s:o, s:o, s:o}", "latent", (int)j, "relie", relie,
                                "reldec", reldec, "class",
                                ct_relie_class_name(ct_relie_classify(abs_ie, M), M), "ie", reals(ie, M),
                                "delta_lpd", reals(dl, M), "delta_acc", reals(da, M), "ratio",
                                dA > 0 ? json_real(dB / dA) : json_null());
        json_array_append_new(rows, row);
    }
    return rows;
}

static int run_validate(ct_step_ctx *ctx)
{
    const char *label = ct_step_label(ctx);
    json_t *p = ct_step_params(ctx);
    const char *name = json_string_value(json_object_get(p, "task"));
    json_int_t max_examples = json_integer_value(json_object_get(p, "max_examples"));
    json_int_t top_k = json_integer_value(json_object_get(p, "top_k"));
    int layer = (int)json_integer_value(json_object_get(p, "layer"));
    ct_attr_options o = CT_ATTR_OPTIONS_INIT;
    o.batch = (int)json_integer_value(json_object_get(p, "batch_size"));
    if (max_examples < 0 || top_k < 1 || top_k > (1 << 20) || o.batch < 1 || o.batch > 4096)
        return ct_error_set(CT_EINVAL, "%s: relie.max_examples >= 0, relie.top_k >= 1 and relie.batch_size in "
                            "[1, 4096] are required", label);
    ct_steps_attr a = {0};
    ct_steps_tuple t;
    ct_task *task = NULL;
    ct_task_examples *ex = NULL;
    ct_ablation_result ab = {0};
    int32_t *sel = NULL;
    double *buf = NULL;
    size_t k = 0;
    int rc = ct_steps_attr_read(ctx, "attribute", 0, &a);
    if (rc)
        return rc;
    if ((rc = ct_steps_tuple_load(ctx, layer, 1, &t))) {
        ct_steps_attr_free(&a);
        return rc;
    }
    int M = t.M, H = t.cc->cfg.H;
    if (a.M != M || a.H != H)
        rc = ct_error_set(CT_EINVAL, "%s: the attribute input has M=%d H=%d, the crosscoder M=%d H=%d", label, a.M,
                          a.H, M, H);
    if (!rc)
        rc = ct_steps_tuple_examples(ctx, &t, name, (size_t)max_examples, &task, &ex);
    size_t n = rc ? 0 : ct_task_examples_size(ex);
    if (!rc && n != a.n)
        rc = ct_error_set(CT_EINVAL, "%s: %zu examples, but the attribute input was computed on %zu", label, n, a.n);
    if (!rc) {
        sel = malloc((size_t)M * (size_t)top_k * sizeof *sel);
        buf = malloc((3 * (size_t)M * (size_t)top_k + 1) * sizeof *buf);
        if (!sel || !buf)
            rc = ct_error_set(CT_ENOMEM, "out of memory");
    }
    if (!rc)
        ct_relie_select(a.ie, M, H, (int)top_k, sel, &k);
    if (!rc && k && n) {
        o.progress = on_progress;
        o.progress_user = ct_step_progress(ctx, (double)n, "ex");
        rc = ct_attr_ablate(t.models, M, t.cc, layer, ct_task_examples_get(ex, 0), n, sel, k, &o, &ab);
    }
    if (!rc) {
        size_t n_ranked = 0;
        json_t *rows = json_array();
        double rho_relie = NAN, rho_reldec = NAN;
        double nan_m[CT_STEPS_MAX_M];
        for (int m = 0; m < M; m++)
            nan_m[m] = NAN;
        if (k && n) {
            json_decref(rows);
            rows = rows_of(&a, &ab, sel, k, t.reldec_pair, buf, buf + M * top_k, buf + 2 * M * top_k, &n_ranked);
            rho_relie = ct_spearman(buf, buf + M * top_k, n_ranked);
            rho_reldec = ct_spearman(buf, buf + 2 * M * top_k, n_ranked);
        }
        json_t *s = json_pack("{s:s, s:[i, i], s:I, s:I, s:o, s:o, s:o, s:o, s:o}", "task", ct_task_name(task),
                              "pair", 0, M - 1, "n_latents", (json_int_t)(n ? k : 0), "n_ranked", (json_int_t)n_ranked,
                              "rho_relie", num_or_null(rho_relie), "rho_reldec", num_or_null(rho_reldec),
                              "clean_lpd", reals(ab.clean_lpd ? ab.clean_lpd : nan_m, M), "clean_acc",
                              reals(ab.clean_acc ? ab.clean_acc : nan_m, M), "latents", rows);
        rc = ct_steps_output_json(ctx, s);
        if (!rc)
            ct_step_log(ctx, "%s: %zu latents ablated, rho(RelIE) %.3f, rho(RelDec) %.3f", label, k, rho_relie,
                        rho_reldec);
    }
    free(sel);
    free(buf);
    ct_ablation_result_free(&ab);
    ct_task_examples_free(ex);
    ct_task_free(task);
    ct_steps_tuple_free(&t);
    ct_steps_attr_free(&a);
    return rc;
}

const ct_step_kind ct_step_validate = {
    .name = "validate",
    .version = 1,
    .summary = "ablation of the top latents per task: Spearman of the effect ratio with RelIE and RelDec",
    .plan = plan_validate,
    .run = run_validate,
    .internal = 0,
    .bundle = CT_BUNDLE_RESULT,
};

/* overlap: cross-lingual overlap of a crosscoder's top latents (METHOD §7), labelled
 * "overlap/<A-B>/seed<S>"; planned only when the recipe's tasks span two or more
 * languages (blimp is English, clams/<lang>/..., multiblimp/<lang>... with its
 * 3-letter codes mapped to ISO 639-1).
 *
 * Inputs "attr_<lang>": the attribute steps of that language's tasks. Parameters in
 * the key: the languages in order of first appearance among the tasks, and top_k =
 * relie.top_k_overlap. A latent's score for a language is Σ_m |IE_m| averaged over
 * that language's attribute steps; its top latents are the top_k by score among those
 * with a nonzero score (ties: lower latent first), fewer when fewer are nonzero. For
 * each pair of languages: count = |A ∩ B| and fraction = count / top_k.
 *
 * Artifact and summary: the same JSON object {top_k, languages, top: {lang: [latents
 * ascending]}, pairs: [{lang_a, lang_b, count, fraction}]}. */
#include "analysis/relie.h"
#include "common/error.h"
#include "pipeline/plan.h"
#include "pipeline/step.h"
#include "pipeline/steps/tuple.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int plan_overlap(ct_plan *plan, const ct_recipe *r)
{
    ct_steps_analysis an;
    int rc = ct_steps_analysis_open(plan, r, &an);
    json_t *langs = json_array();
    for (size_t i = 0; i < an.nt; i++) {
        size_t k;
        json_t *l;
        int seen = 0;
        json_array_foreach(langs, k, l) seen |= strcmp(json_string_value(l), an.tasks[i].lang) == 0;
        if (!seen)
            json_array_append_new(langs, json_string(an.tasks[i].lang));
    }
    for (size_t c = 0; c < an.ncc && !rc && json_array_size(langs) >= 2; c++) {
        json_t *inputs = json_object();
        for (size_t i = 0; i < an.nt; i++) {
            char name[64], label[1024];
            snprintf(name, sizeof name, "attr_%s", an.tasks[i].lang);
            snprintf(label, sizeof label, "attribute/%s/%s", an.cc[c].suffix, an.tasks[i].name);
            json_t *list = json_object_get(inputs, name);
            if (!list) {
                list = json_array();
                json_object_set_new(inputs, name, list);
            }
            json_array_append_new(list, json_string(label));
        }
        char label[700];
        snprintf(label, sizeof label, "overlap/%s", an.cc[c].suffix);
        rc = ct_plan_add(plan, "overlap", label,
                         json_pack("{s:O, s:O}", "languages", langs, "top_k", ct_recipe_get(r, "relie.top_k_overlap")),
                         inputs);
    }
    json_decref(langs);
    ct_steps_analysis_free(&an);
    return rc;
}

static int ascending(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* The top latents of one language into top[0..*n), ascending; *H_io is checked
 * against (or set from) the artifacts. */
static int language_top(ct_step_ctx *ctx, const char *input, int top_k, int *H_io, int32_t *top, size_t *n)
{
    size_t steps = ct_step_input_count(ctx, input);
    double *score = NULL;
    int rc = 0;
    *n = 0;
    for (size_t s = 0; s < steps && !rc; s++) {
        ct_steps_attr a;
        if ((rc = ct_steps_attr_read(ctx, input, s, &a)))
            break;
        if (*H_io && a.H != *H_io)
            rc = ct_error_set(CT_EINVAL, "%s: input %s[%zu] has %d latents, others %d", ct_step_label(ctx), input, s,
                              a.H, *H_io);
        *H_io = a.H;
        if (!rc && !score && !(score = calloc((size_t)a.H, sizeof *score)))
            rc = ct_error_set(CT_ENOMEM, "out of memory");
        for (int j = 0; j < a.H && !rc; j++)
            for (int m = 0; m < a.M; m++)
                score[j] += fabs((double)a.ie[(size_t)m * a.H + j]) / (double)steps;
        ct_steps_attr_free(&a);
    }
    if (!rc && score)
        rc = ct_steps_top(score, *H_io, (size_t)top_k, top, n);
    qsort(top, *n, sizeof *top, ascending);
    free(score);
    return rc;
}

static int run_overlap(ct_step_ctx *ctx)
{
    const char *label = ct_step_label(ctx);
    json_t *p = ct_step_params(ctx), *langs = json_object_get(p, "languages");
    json_int_t top_k = json_integer_value(json_object_get(p, "top_k"));
    size_t L = json_array_size(langs);
    if (L < 2 || top_k < 1 || top_k > (1 << 24))
        return ct_error_set(CT_EINVAL, "%s: needs two or more languages and relie.top_k_overlap >= 1", label);
    int32_t *top = malloc(L * (size_t)top_k * sizeof *top);
    size_t *n = calloc(L, sizeof *n);
    int H = 0, rc = top && n ? 0 : ct_error_set(CT_ENOMEM, "out of memory");
    json_t *tops = json_object(), *pairs = json_array();
    for (size_t a = 0; a < L && !rc; a++) {
        char input[64];
        const char *lang = json_string_value(json_array_get(langs, a));
        snprintf(input, sizeof input, "attr_%s", lang ? lang : "");
        if (!lang || !ct_step_input_count(ctx, input)) {
            rc = ct_error_set(CT_EINVAL, "%s: no attribute inputs for language %zu", label, a);
            break;
        }
        int32_t *t = top + a * (size_t)top_k;
        if ((rc = language_top(ctx, input, (int)top_k, &H, t, &n[a])))
            break;
        json_t *list = json_array();
        for (size_t i = 0; i < n[a]; i++)
            json_array_append_new(list, json_integer(t[i]));
        json_object_set_new(tops, lang, list);
    }
    for (size_t a = 0; a < L && !rc; a++)
        for (size_t b = a + 1; b < L; b++) {
            size_t c = ct_overlap_count(top + a * (size_t)top_k, n[a], top + b * (size_t)top_k, n[b]);
            json_array_append_new(pairs, json_pack("{s:O, s:O, s:I, s:f}", "lang_a", json_array_get(langs, a),
                                                   "lang_b", json_array_get(langs, b), "count", (json_int_t)c,
                                                   "fraction", (double)c / (double)top_k));
        }
    if (!rc) {
        rc = ct_steps_output_json(ctx, json_pack("{s:I, s:O, s:O, s:O}", "top_k", top_k, "languages", langs, "top",
                                                 tops, "pairs", pairs));
        if (!rc)
            ct_step_log(ctx, "%s: %zu languages, top %lld latents each", label, L, (long long)top_k);
    }
    json_decref(tops);
    json_decref(pairs);
    free(top);
    free(n);
    return rc;
}

const ct_step_kind ct_step_overlap = {
    .name = "overlap",
    .version = 1,
    .summary = "overlap of the top latents by |IE| between the languages of the tasks, per crosscoder",
    .plan = plan_overlap,
    .run = run_overlap,
    .internal = 0,
    .bundle = CT_BUNDLE_RESULT,
};

/* scale: the normalisation factor of one checkpoint ("scale/<checkpoint>"), METHOD §1:
 * s_m = sqrt(d) / E[‖x_m‖₂] over the first activations.norm_batches batches of
 * activations.norm_batch_sequences sequences of the train activation shards, in shard
 * order. When the train split is smaller than that, all of it is used (the summary
 * says how many rows). The artifact is a small JSON object; the summary holds the
 * factor too. */
#include "common/error.h"
#include "pipeline/plan.h"
#include "pipeline/step.h"
#include "pipeline/steps/shard.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int plan_scale(ct_plan *plan, const ct_recipe *recipe)
{
    json_t *cks = ct_recipe_get(recipe, "model.checkpoints");
    ct_steps_budget b;
    if (!ct_recipe_get(recipe, "corpus") || ct_steps_budget_of(recipe, &b) != 0)
        return 0; /* no corpus: nothing was planned upstream */
    long long nb = json_integer_value(ct_recipe_get(recipe, "activations.norm_batches"));
    long long bs = json_integer_value(ct_recipe_get(recipe, "activations.norm_batch_sequences"));
    long long want = nb * bs < b.n_train ? nb * bs : b.n_train;
    size_t shards = ct_steps_n_shards(want, b.per_shard);
    int rc = 0;
    for (size_t m = 0; m < json_array_size(cks) && !rc; m++) {
        const char *name = json_string_value(json_object_get(json_array_get(cks, m), "name"));
        char label[512], first[512];
        size_t idx;
        snprintf(first, sizeof first, "extract/%s/train/0000", name);
        if (ct_plan_find(plan, first, &idx) != 0)
            return 0;
        json_t *acts = json_array();
        for (size_t k = 0; k < shards; k++) {
            snprintf(label, sizeof label, "extract/%s/train/%04zu", name, k);
            json_array_append_new(acts, json_string(label));
        }
        snprintf(label, sizeof label, "scale/%s", name);
        rc = ct_plan_add(plan, "scale", label, json_pack("{s:I}", "sequences", (json_int_t)want),
                         json_pack("{s:o}", "acts", acts));
    }
    return rc;
}

static int run_scale(ct_step_ctx *ctx)
{
    long long want = json_integer_value(json_object_get(ct_step_params(ctx), "sequences"));
    size_t n = ct_step_input_count(ctx, "acts");
    double sum = 0;
    uint64_t rows = 0, seqs = 0;
    uint32_t d = 0;
    int rc = 0;
    uint16_t *row = NULL;
    for (size_t k = 0; k < n && !rc && (long long)seqs < want; k++) {
        ct_blob_reader *r;
        if ((rc = ct_step_input(ctx, "acts", k, &r)))
            break;
        ct_actshard_info h;
        char name[300];
        snprintf(name, sizeof name, "%s: input acts[%zu]", ct_step_label(ctx), k);
        rc = ct_actshard_header(r, name, &h);
        if (!rc && d && h.d != d)
            rc = ct_error_set(CT_ECORRUPT, "%s: width %u differs from the first shard's %u", name, h.d, d);
        if (!rc && !row && !(row = malloc((size_t)h.d * 2)))
            rc = ct_error_set(CT_ENOMEM, "out of memory");
        d = h.d;
        uint64_t per = h.seq_len - 1;
        for (uint64_t s = 0; s < h.n_seq && !rc && (long long)seqs < want; s++, seqs++) {
            for (uint64_t t = 0; t < per && !rc; t++) {
                uint64_t ri = s * per + t;
                if ((rc = ct_blob_read_at(r, h.data_offset + ri * d * 2, row, (size_t)d * 2)))
                    break;
                double sq = 0;
                for (uint32_t i = 0; i < d; i++) {
                    double x = h.dtype == CT_ACT_BF16 ? ct_bf16_to_f32(row[i]) : ct_f16_to_f32(row[i]);
                    sq += x * x;
                }
                sum += sqrt(sq);
                rows++;
            }
        }
        ct_blob_reader_close(r);
    }
    free(row);
    if (rc)
        return rc;
    double mean = rows ? sum / (double)rows : 0;
    if (!(mean > 0) || !isfinite(mean))
        return ct_error_set(CT_EINVAL, "%s: the mean activation norm over %llu rows is %g; no factor exists",
                            ct_step_label(ctx), (unsigned long long)rows, mean);
    double s = sqrt((double)d) / mean;
    json_t *out = json_pack("{s:f, s:f, s:i, s:I, s:I}", "scale", s, "mean_norm", mean, "d", (int)d, "rows",
                            (json_int_t)rows, "sequences", (json_int_t)seqs);
    char *text = json_dumps(out, JSON_SORT_KEYS | JSON_COMPACT | JSON_REAL_PRECISION(17));
    ct_blob_writer *w;
    rc = text ? ct_step_output(ctx, &w) : ct_error_set(CT_ENOMEM, "out of memory");
    if (!rc)
        rc = ct_blob_write(w, text, strlen(text));
    free(text);
    ct_step_log(ctx, "s = sqrt(%u) / %.6g = %.6g over %llu rows", d, mean, s, (unsigned long long)rows);
    if (!rc)
        ct_step_set_summary(ctx, out);
    else
        json_decref(out);
    return rc;
}

const ct_step_kind ct_step_scale = {
    .name = "scale",
    .version = 1,
    .summary = "normalisation factor sqrt(d) / E[norm of x] of one checkpoint's activations",
    .plan = plan_scale,
    .run = run_scale,
    .internal = 0,
    .bundle = CT_BUNDLE_ARTIFACT,
};

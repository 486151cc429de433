/* extract: (checkpoint, layer, token shard) -> activation shard
 * ("extract/<checkpoint>/<split>/<shard>"; format in pipeline/steps/shard.h).
 *
 * The residual at the output of block `layer` (METHOD §1), with the first position of
 * every sequence dropped, stored as bf16 or fp16 (activations.dtype). Train and val
 * shards are extracted; the test split stays as tokens for the steps that run the
 * model on it themselves. Rows are in token-shard order, so row r of shard k is the
 * same token in every checkpoint's shard k, which is what aligns checkpoints for the
 * crosscoder. */
#include "common/error.h"
#include "models/forward/model.h"
#include "pipeline/plan.h"
#include "pipeline/step.h"
#include "pipeline/steps/shard.h"
#include "pipeline/steps/sources.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sequences per forward pass: bounds memory; results do not depend on it. */
#define EXTRACT_BATCH 4

static int plan_extract(ct_plan *plan, const ct_recipe *recipe)
{
    size_t idx;
    if (ct_plan_find(plan, "tokenize/index", &idx) != 0)
        return 0;
    if (!ct_steps_checkpoints_plannable(recipe))
        return 0; /* pretrain: sources without a pretrain section: the recipe check reports it */
    if (!ct_steps_checkpoints_available(plan, recipe))
        return 0; /* each missing checkpoint is in the notes, with its download command */
    ct_steps_budget b;
    int rc = ct_steps_budget_of(recipe, &b);
    json_t *cks = ct_recipe_get(recipe, "model.checkpoints");
    const char *dtype = json_string_value(ct_recipe_get(recipe, "activations.dtype"));
    for (size_t m = 0; m < json_array_size(cks) && !rc; m++) {
        const char *name = json_string_value(json_object_get(json_array_get(cks, m), "name"));
        char dotted[64], *src = NULL;
        const char *ck_label;
        snprintf(dotted, sizeof dotted, "model.checkpoints.%zu.source", m);
        if ((rc = ct_recipe_resolve_path(recipe, dotted, &src)))
            break;
        rc = ct_steps_source_checkpoint(plan, src, &ck_label);
        free(src);
        static const char *const splits[2] = {"train", "val"};
        long long counts[2] = {b.n_train, b.n_val};
        for (int s = 0; s < 2 && !rc; s++) {
            size_t ns = ct_steps_n_shards(counts[s], b.per_shard);
            for (size_t k = 0; k < ns && !rc; k++) {
                char label[512], tok[64];
                snprintf(label, sizeof label, "extract/%s/%s/%04zu", name, splits[s], k);
                snprintf(tok, sizeof tok, "tokenize/%s/%04zu", splits[s], k);
                json_t *params = json_pack("{s:O, s:s}", "layer", ct_recipe_get(recipe, "layer"), "dtype",
                                           dtype ? dtype : "bf16");
                rc = ct_plan_add(plan, "extract", label, params,
                                 json_pack("{s:s, s:s}", "checkpoint", ck_label, "tokens", tok));
            }
        }
    }
    return rc;
}

/* The last model used, kept for the next shard of the same checkpoint: loading a
 * paper-size checkpoint takes longer than running a shard through it on a GPU. One
 * step uses it at a time; a step that finds it busy or different loads its own.
 * Results do not depend on whether the model was reused. */
static struct {
    pthread_mutex_t lock;
    char *path;
    ct_device device;
    ct_model *model;
    int busy;
} g_keep = {PTHREAD_MUTEX_INITIALIZER, NULL, CT_DEVICE_CPU, NULL, 0};

static int model_acquire(const char *path, const ct_model_options *mo, ct_model **out)
{
    pthread_mutex_lock(&g_keep.lock);
    if (g_keep.model && !g_keep.busy && g_keep.device == mo->device && strcmp(g_keep.path, path) == 0) {
        g_keep.busy = 1;
        *out = g_keep.model;
        pthread_mutex_unlock(&g_keep.lock);
        return 0;
    }
    pthread_mutex_unlock(&g_keep.lock);
    return ct_model_load(path, mo, out);
}

static void model_release(const char *path, const ct_model_options *mo, ct_model *m)
{
    if (!m)
        return;
    ct_model *drop = NULL;
    pthread_mutex_lock(&g_keep.lock);
    if (m == g_keep.model) {
        g_keep.busy = 0;
    } else if (!g_keep.busy) {
        char *p = strdup(path);
        if (p) { /* the newest model replaces the kept one */
            drop = g_keep.model;
            free(g_keep.path);
            g_keep.path = p;
            g_keep.device = mo->device;
            g_keep.model = m;
        } else {
            drop = m;
        }
    } else {
        drop = m;
    }
    pthread_mutex_unlock(&g_keep.lock);
    ct_model_free(drop);
}

static int run_extract(ct_step_ctx *ctx)
{
    json_t *p = ct_step_params(ctx);
    int layer = (int)json_integer_value(json_object_get(p, "layer"));
    int dtype = ct_act_dtype_parse(json_string_value(json_object_get(p, "dtype")));
    if (!dtype)
        return ct_error_set(CT_EINVAL, "%s: activations.dtype must be bf16 or fp16", ct_step_label(ctx));
    char *ckpt = NULL;
    int rc = ct_steps_checkpoint_dir(ctx, "checkpoint", 0, &ckpt);
    if (rc)
        return rc;
    ct_model_options mo = CT_MODEL_OPTIONS_INIT;
    rc = ct_device_parse(ct_step_device(ctx), &mo.device);
    ct_actshard_info h = {0};
    ct_tokshard toks = {0};
    ct_model *model = NULL;
    if (!rc)
        rc = ct_steps_input_key_hex(ctx, "tokens", 0, h.token_key);
    if (!rc)
        rc = ct_tokshard_read(ctx, "tokens", 0, &toks);
    if (!rc)
        rc = model_acquire(ckpt, &mo, &model);
    if (rc) {
        ct_tokshard_free(&toks);
        free(ckpt);
        return rc;
    }
    const ct_model_config *cfg = ct_model_get_config(model);
    int T = (int)toks.seq_len, d = cfg->hidden;
    if (layer < 0 || layer >= cfg->n_layer)
        rc = ct_error_set(CT_EINVAL, "%s: layer %d does not exist in %s (%d blocks)", ct_step_label(ctx), layer,
                          ckpt, cfg->n_layer);
    if (!rc && T < 2)
        rc = ct_error_set(CT_EINVAL, "%s: sequences of %d tokens leave no rows", ct_step_label(ctx), T);
    if (!rc && cfg->max_positions > 0 && T > cfg->max_positions)
        rc = ct_error_set(CT_EINVAL, "%s: seq_len %d exceeds the model's %d positions (%s)", ct_step_label(ctx),
                          T, cfg->max_positions, ckpt);
    for (uint64_t i = 0; !rc && i < toks.n_seq * (uint64_t)T; i++)
        if (toks.ids[i] < 0 || toks.ids[i] >= cfg->vocab)
            rc = ct_error_set(CT_EINVAL, "%s: token id %d (sequence %llu) is outside the vocabulary of %d "
                              "rows of %s: the tokenizer does not match the checkpoint", ct_step_label(ctx),
                              toks.ids[i], (unsigned long long)toks.seq_index[i / (uint64_t)T], cfg->vocab,
                              ckpt);
    h.dtype = (uint32_t)dtype;
    h.d = (uint32_t)d;
    h.seq_len = (uint32_t)T;
    h.n_seq = toks.n_seq;
    h.rows = toks.n_seq * (uint64_t)(T - 1);
    h.data_offset = ct_actshard_data_offset(h.rows);
    ct_blob_writer *w = NULL;
    float *cap = NULL;
    uint16_t *half = NULL;
    if (!rc) {
        cap = malloc((size_t)EXTRACT_BATCH * T * d * sizeof *cap);
        half = malloc((size_t)(T - 1) * d * sizeof *half);
        if (!cap || !half)
            rc = ct_error_set(CT_ENOMEM, "out of memory");
    }
    if (!rc)
        rc = ct_step_output(ctx, &w);
    if (!rc) {
        uint8_t hb[CT_ACTSHARD_HEADER];
        ct_actshard_encode_header(&h, hb);
        rc = ct_blob_write(w, hb, sizeof hb);
    }
    for (uint64_t s = 0; s < toks.n_seq && !rc; s++)
        rc = ct_steps_write_i32(w, toks.ids + s * (uint64_t)T + 1, (size_t)T - 1);
    if (!rc) {
        static const uint8_t zeros[64];
        uint64_t pad = h.data_offset - (CT_ACTSHARD_HEADER + h.rows * 4);
        rc = ct_blob_write(w, zeros, (size_t)pad);
    }
    ct_progress *prog = rc ? NULL : ct_step_progress(ctx, (double)toks.n_seq, "seq");
    for (uint64_t s0 = 0; s0 < toks.n_seq && !rc; s0 += EXTRACT_BATCH) {
        if (ct_step_interrupted(ctx)) {
            rc = ct_error_set(CT_EINTR, "interrupted");
            break;
        }
        int B = (int)(toks.n_seq - s0 < EXTRACT_BATCH ? toks.n_seq - s0 : EXTRACT_BATCH);
        ct_forward_args a = CT_FORWARD_ARGS_INIT;
        a.n_seq = B;
        a.seq_len = T;
        a.ids = toks.ids + s0 * (uint64_t)T;
        a.n_capture = 1;
        a.capture_layers = &layer;
        a.capture = &cap;
        if ((rc = ct_model_forward(model, &a)))
            break;
        for (int b = 0; b < B && !rc; b++) {
            const float *x = cap + ((size_t)b * T + 1) * d;
            size_t n = (size_t)(T - 1) * d;
            for (size_t i = 0; i < n; i++)
                half[i] = dtype == CT_ACT_BF16 ? ct_f32_to_bf16(x[i]) : ct_f32_to_f16(x[i]);
            rc = ct_blob_write(w, half, n * sizeof *half); /* little-endian: tokenize refuses other hosts */
        }
        ct_progress_update(prog, (double)(s0 + (uint64_t)B));
    }
    if (!rc)
        ct_step_set_summary(ctx, json_pack("{s:I, s:i, s:i, s:s}", "rows", (json_int_t)h.rows, "d", d, "layer",
                                           layer, "dtype", dtype == CT_ACT_BF16 ? "bf16" : "fp16"));
    free(cap);
    free(half);
    model_release(ckpt, &mo, model);
    ct_tokshard_free(&toks);
    free(ckpt);
    return rc;
}

const ct_step_kind ct_step_extract = {
    .name = "extract",
    .version = 1,
    .summary = "residual activations after block `layer` of one checkpoint on one token shard",
    .plan = plan_extract,
    .run = run_extract,
    .internal = 0,
    .bundle = CT_BUNDLE_ACTIVATION,
};

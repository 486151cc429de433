/* train: one crosscoder per (tuple, seed) ("train/<A>-<B>/seed<S>"), METHOD §2.
 *
 * Inputs: train_<m> and val_<m> (the activation shards of the tuple's m-th checkpoint)
 * and scale_<m> (its factor). Rows come from pipeline/steps/actsource.c, scaled by s_m
 * and shuffled from the seed; validation rows are the first val_rows rows of the val
 * shards in storage order.
 *
 * Artifact ("CTCCTRND", version 1; little-endian):
 *   char magic[8]; u32 version; u32 reserved (0); u64 model_len; u64 metrics_len;
 *   model_len bytes    the ct_cc_save image (weights, unfolded, with the factors s_m)
 *   metrics_len bytes  JSON lines of train and val metrics (crosscoder/train.h)
 *
 * Resume: the training state (ct_cc_trainer_save) and the metric lines so far are
 * saved as the step's resume state every crosscoder.checkpoint_every steps, and when
 * the user interrupts; a rerun (also after a kill) restores the last one and continues
 * exactly, so the artifact does not depend on when or whether the run was interrupted.
 * For the same reason checkpoint_every is a step option, not part of the key. */
#include "common/error.h"
#include "crosscoder/train.h"
#include "pipeline/plan.h"
#include "pipeline/step.h"
#include "pipeline/steps/actsource.h"
#include "pipeline/steps/hooks.h"
#include "pipeline/steps/shard.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TRAIN_MAGIC "CTCCTRND"
#define RESUME_MAGIC "CTCCRSUM"

static int plan_train(ct_plan *plan, const ct_recipe *recipe)
{
    json_t *tuples = ct_recipe_get(recipe, "tuples");
    json_t *cc = ct_recipe_get(recipe, "crosscoder");
    ct_steps_budget b;
    if (!tuples || !cc || !ct_recipe_get(recipe, "corpus") || ct_steps_budget_of(recipe, &b) != 0)
        return 0;
    size_t n_train = ct_steps_n_shards(b.n_train, b.per_shard), n_val = ct_steps_n_shards(b.n_val, b.per_shard);
    long long val_rows = b.n_val * (b.seq_len - 1);
    long long batch = json_integer_value(json_object_get(cc, "batch_size"));
    if (val_rows > 4 * batch) /* one val line costs four training steps at most */
        val_rows = 4 * batch;
    size_t t;
    json_t *tuple;
    int rc = 0;
    json_array_foreach(tuples, t, tuple) {
        char names[512] = "", first[600];
        size_t m;
        json_t *nm;
        json_t *inputs = json_object();
        json_array_foreach(tuple, m, nm) {
            const char *name = json_string_value(nm);
            size_t idx;
            snprintf(first, sizeof first, "extract/%s/train/0000", name);
            if (ct_plan_find(plan, first, &idx) != 0) {
                json_decref(inputs);
                return 0;
            }
            size_t l = strlen(names);
            snprintf(names + l, sizeof names - l, "%s%s", m ? "-" : "", name);
            json_t *tr = json_array(), *va = json_array();
            for (size_t k = 0; k < n_train; k++) {
                snprintf(first, sizeof first, "extract/%s/train/%04zu", name, k);
                json_array_append_new(tr, json_string(first));
            }
            for (size_t k = 0; k < n_val; k++) {
                snprintf(first, sizeof first, "extract/%s/val/%04zu", name, k);
                json_array_append_new(va, json_string(first));
            }
            char key[32];
            snprintf(key, sizeof key, "train_%zu", m);
            json_object_set_new(inputs, key, tr);
            snprintf(key, sizeof key, "val_%zu", m);
            json_object_set_new(inputs, key, va);
            snprintf(key, sizeof key, "scale_%zu", m);
            snprintf(first, sizeof first, "scale/%s", name);
            json_object_set_new(inputs, key, json_string(first));
        }
        size_t s;
        json_t *seed;
        json_array_foreach(json_object_get(cc, "seeds"), s, seed) {
            json_t *params = json_deep_copy(cc);
            json_object_del(params, "seeds");
            json_object_del(params, "checkpoint_every");
            json_object_set(params, "seed", seed);
            json_object_set_new(params, "M", json_integer((json_int_t)json_array_size(tuple)));
            json_object_set_new(params, "val_rows", json_integer(val_rows));
            char label[700];
            snprintf(label, sizeof label, "train/%s/seed%lld", names, (long long)json_integer_value(seed));
            if ((rc = ct_plan_add(plan, "train", label, params, json_deep_copy(inputs))) ||
                (rc = ct_plan_set_options(plan, label,
                                          json_pack("{s:O}", "checkpoint_every",
                                                    json_object_get(cc, "checkpoint_every")))))
                break;
        }
        json_decref(inputs);
        if (rc)
            break;
    }
    return rc;
}

static double pnum(json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

static int config_of(json_t *p, int d, ct_cc_config *c)
{
    ct_cc_config init = CT_CC_CONFIG_INIT;
    *c = init;
    const char *type = json_string_value(json_object_get(p, "type"));
    c->type = type && strcmp(type, "batchtopk") == 0 ? CT_CC_BATCHTOPK : CT_CC_L1;
    c->M = (int)pnum(p, "M");
    c->d = d;
    c->H = (int)pnum(p, "dict_size");
    c->batch = (int)pnum(p, "batch_size");
    c->tokens = (long long)pnum(p, "tokens");
    c->lr = (float)pnum(p, "lr");
    c->beta1 = (float)pnum(p, "beta1");
    c->beta2 = (float)pnum(p, "beta2");
    c->eps = (float)pnum(p, "eps");
    c->grad_clip = (float)pnum(p, "grad_clip");
    c->l1_coeff = (float)pnum(p, "l1_coeff");
    c->l1_warmup = pnum(p, "l1_warmup");
    c->lr_decay_start = pnum(p, "lr_decay_start");
    c->dec_init_norm = (float)pnum(p, "dec_init_norm");
    c->seed = (uint64_t)json_integer_value(json_object_get(p, "seed"));
    c->checkpoint_every = 0; /* resume states are saved by the step (see the top) */
    c->log_every = (long)pnum(p, "log_every");
    json_t *tk = json_object_get(p, "topk");
    c->k_start = (int)pnum(tk, "k_start");
    c->k_end = (int)pnum(tk, "k_end");
    c->k_anneal_steps = (long)pnum(tk, "k_anneal_steps");
    c->threshold_start_step = (long)pnum(tk, "threshold_start_step");
    c->threshold_beta = (float)pnum(tk, "threshold_beta");
    c->aux_coeff = (float)pnum(tk, "aux_coeff");
    c->k_aux = (int)pnum(tk, "aux_k");
    c->dead_tokens = (long long)pnum(tk, "dead_tokens");
    c->val_rows = (int)pnum(p, "val_rows");
    return ct_cc_config_resolve(c);
}

typedef struct {
    char *buf;
    size_t len, cap;
} strbuf;

static int sb_add(strbuf *b, const void *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *t = realloc(b->buf, cap);
        if (!t)
            return ct_error_set(CT_ENOMEM, "out of memory");
        b->buf = t;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, data, n);
    b->len += n;
    b->buf[b->len] = '\0';
    return 0;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* magic, version, reserved, two lengths, then the two blocks */
static int container(const char *magic, const void *a, size_t alen, const void *b, size_t blen, strbuf *out)
{
    uint8_t h[32] = {0};
    memcpy(h, magic, 8);
    h[8] = 1;
    put64(h + 16, alen);
    put64(h + 24, blen);
    int rc = sb_add(out, h, sizeof h);
    if (!rc)
        rc = sb_add(out, a, alen);
    if (!rc && blen)
        rc = sb_add(out, b, blen);
    return rc;
}

int ct_steps_train_parse(const void *buf, size_t len, const char *name, const void **model, size_t *model_len,
                         const char **metrics, size_t *metrics_len)
{
    const uint8_t *p = buf;
    if (len < 32 || (memcmp(p, TRAIN_MAGIC, 8) != 0 && memcmp(p, RESUME_MAGIC, 8) != 0) || p[8] != 1)
        return ct_error_set(CT_ECORRUPT, "%s: not a version 1 crosscoder training artifact", name);
    uint64_t a = get64(p + 16), b = get64(p + 24);
    if (a > len - 32 || b != len - 32 - a)
        return ct_error_set(CT_ECORRUPT, "%s: block lengths %llu + %llu do not match the %zu bytes", name,
                            (unsigned long long)a, (unsigned long long)b, len);
    *model = p + 32;
    *model_len = (size_t)a;
    *metrics = (const char *)p + 32 + a;
    *metrics_len = (size_t)b;
    return 0;
}

typedef struct {
    ct_step_ctx *ctx;
    strbuf metrics;
    ct_cc_source *sources[2]; /* training and validation rows (the latter may be closed) */
} train_run;

static int on_metrics(void *u, const char *json)
{
    train_run *tr = u;
    int rc = sb_add(&tr->metrics, json, strlen(json));
    return rc ? rc : sb_add(&tr->metrics, "\n", 1);
}

/* Before writing to the cache: the sources' open readers would block a remap of the
 * map (ct_cc_trainer_save has stopped any reading ahead, so none is in use). */
static void release_sources(train_run *tr)
{
    ct_steps_actsource_release(tr->sources[0]);
    ct_steps_actsource_release(tr->sources[1]);
}

static int save_resume(train_run *tr, ct_cc_trainer *t)
{
    void *state;
    size_t len;
    int rc = ct_cc_trainer_save(t, &state, &len);
    if (rc)
        return rc;
    release_sources(tr);
    strbuf c = {0};
    if (!(rc = container(RESUME_MAGIC, state, len, tr->metrics.buf, tr->metrics.len, &c)))
        rc = ct_step_resume_save(tr->ctx, c.buf, c.len);
    free(state);
    free(c.buf);
    return rc;
}

static int read_scale(ct_step_ctx *ctx, int m, float *out)
{
    char name[32], *text;
    size_t len;
    snprintf(name, sizeof name, "scale_%d", m);
    int rc = ct_steps_read_input(ctx, name, 0, &text, &len);
    if (rc)
        return rc;
    json_error_t err;
    json_t *o = json_loadb(text, len, 0, &err);
    free(text);
    double s = json_number_value(json_object_get(o, "scale"));
    json_decref(o);
    if (!(s > 0) || !isfinite(s))
        return ct_error_set(CT_ECORRUPT, "%s: input %s holds no valid factor", ct_step_label(ctx), name);
    *out = (float)s;
    return 0;
}

static int run_train(ct_step_ctx *ctx)
{
    json_t *p = ct_step_params(ctx);
    int M = (int)json_integer_value(json_object_get(p, "M"));
    float scale[8];
    if (M < 2 || M > 8)
        return ct_error_set(CT_EINVAL, "%s: a tuple of %d checkpoints (2 to 8 supported)", ct_step_label(ctx), M);
    int rc = 0;
    for (int m = 0; m < M && !rc; m++)
        rc = read_scale(ctx, m, &scale[m]);
    uint64_t seed = (uint64_t)json_integer_value(json_object_get(p, "seed"));
    ct_cc_source tsrc = {0}, vsrc = {0};
    ct_cc_config cfg;
    ct_cc_trainer *t = NULL;
    train_run tr = {ctx, {0}, {&tsrc, &vsrc}};
    if (!rc)
        rc = ct_steps_actsource_open(ctx, "train", M, scale, seed, 1, &tsrc);
    int have_val = ct_step_input_count(ctx, "val_0") > 0;
    if (!rc && have_val)
        rc = ct_steps_actsource_open(ctx, "val", M, scale, 0, 0, &vsrc);
    if (!rc && (rc = config_of(p, tsrc.d, &cfg)) != 0)
        rc = ct_error_wrap(rc, "%s", ct_step_label(ctx));
    if (!rc && have_val && (uint64_t)cfg.val_rows > ct_steps_actsource_rows(&vsrc))
        cfg.val_rows = (int)ct_steps_actsource_rows(&vsrc);
    if (!rc)
        rc = ct_cc_trainer_create(&cfg, &tsrc, have_val ? &vsrc : NULL, scale, &t);
    /* The device is not part of the key (provenance records it): CPU and CUDA agree
     * to fp32 rounding, and each is bit-reproducible on its own. */
    ct_device dev = CT_DEVICE_CPU;
    if (!rc && !(rc = ct_device_parse(ct_step_device(ctx), &dev)) && dev == CT_DEVICE_CUDA)
        rc = ct_cc_trainer_set_device(t, dev);
    if (!rc) {
        ct_cc_callbacks cb = {.ctx = &tr, .on_metrics = on_metrics};
        ct_cc_trainer_set_callbacks(t, &cb);
        void *state;
        size_t len;
        int lr = ct_step_resume_load(ctx, &state, &len);
        if (lr == 0) {
            const void *st;
            const char *mx;
            size_t stl, mxl;
            rc = ct_steps_train_parse(state, len, "resume state", &st, &stl, &mx, &mxl);
            if (!rc)
                rc = ct_cc_trainer_restore(t, st, stl, ct_step_label(ctx));
            if (!rc)
                rc = sb_add(&tr.metrics, mx, mxl);
            if (!rc)
                ct_step_log(ctx, "resumed after step %ld", ct_cc_trainer_steps_done(t));
            free(state);
        } else if (lr != CT_ENOTFOUND) {
            rc = lr;
        }
    }
    ct_steps_stop_hooks hooks;
    ct_steps_stop_hooks_read(&hooks, "CT_TRAIN");
    ct_progress *prog = rc ? NULL : ct_step_progress(ctx, (double)cfg.steps, "steps");
    long save_every = (long)json_integer_value(json_object_get(ct_step_options(ctx), "checkpoint_every"));
    while (!rc && ct_cc_trainer_steps_done(t) < cfg.steps) {
        long done = ct_cc_trainer_steps_done(t);
        ct_steps_stop_hooks_check(&hooks, done);
        if (ct_step_interrupted(ctx)) {
            rc = save_resume(&tr, t);
            if (!rc)
                rc = ct_error_set(CT_EINTR, "%s: interrupted after step %ld; the next run resumes there",
                                  ct_step_label(ctx), done);
            break;
        }
        ct_cc_losses l;
        if ((rc = ct_cc_trainer_step(t, &l)))
            break;
        if (!isfinite(l.loss)) {
            rc = ct_error_set(CT_EINVAL, "%s: the loss is not finite at step %ld", ct_step_label(ctx), done + 1);
            break;
        }
        ct_progress_update(prog, (double)(done + 1));
        if (save_every > 0 && (done + 1) % save_every == 0 && done + 1 < cfg.steps)
            rc = save_resume(&tr, t);
    }
    strbuf art = {0};
    if (!rc) {
        void *model;
        size_t mlen;
        if (!(rc = ct_cc_save(ct_cc_trainer_model(t), &model, &mlen))) {
            rc = container(TRAIN_MAGIC, model, mlen, tr.metrics.buf, tr.metrics.len, &art);
            free(model);
        }
    }
    ct_cc_trainer_free(t); /* stops any reading ahead */
    t = NULL;
    release_sources(&tr);
    ct_blob_writer *w;
    if (!rc && !(rc = ct_step_output(ctx, &w)))
        rc = ct_blob_write(w, art.buf, art.len);
    if (!rc) {
        json_t *sc = json_array();
        for (int m = 0; m < M; m++)
            json_array_append_new(sc, json_real(scale[m]));
        ct_step_set_summary(ctx, json_pack("{s:I, s:o, s:I}", "steps", (json_int_t)cfg.steps, "scale", sc,
                                           "metric_bytes", (json_int_t)tr.metrics.len));
    }
    free(art.buf);
    free(tr.metrics.buf);
    ct_cc_source_close(&tsrc);
    ct_cc_source_close(&vsrc);
    return rc;
}

const ct_step_kind ct_step_train = {
    .name = "train",
    .version = 1,
    .summary = "one crosscoder per checkpoint tuple and seed, on the cached activations",
    .plan = plan_train,
    .run = run_train,
    .internal = 0,
    .bundle = CT_BUNDLE_ARTIFACT,
};

/* Shared pieces of the analysis step kinds (pipeline/steps/tuple.h). */
#include "pipeline/steps/tuple.h"
#include "common/error.h"
#include "pipeline/plan_internal.h"
#include "pipeline/steps/shard.h"
#include "pipeline/steps/sources.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ct_steps_crosscoders(const ct_plan *plan, const ct_recipe *r, ct_steps_crosscoder **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    json_t *tuples = ct_recipe_get(r, "tuples"), *seeds = ct_recipe_get(r, "crosscoder.seeds");
    size_t cap = json_array_size(tuples) * json_array_size(seeds);
    if (!cap)
        return 0;
    ct_steps_crosscoder *cc = calloc(cap, sizeof *cc);
    if (!cc)
        return ct_error_set(CT_ENOMEM, "out of memory");
    size_t t, s, m;
    json_t *tuple, *seed, *name;
    json_array_foreach(tuples, t, tuple) {
        char label[700] = "train/";
        json_array_foreach(tuple, m, name) {
            size_t l = strlen(label);
            snprintf(label + l, sizeof label - l, "%s%s", m ? "-" : "", json_string_value(name));
        }
        size_t base = strlen(label);
        json_array_foreach(seeds, s, seed) {
            snprintf(label + base, sizeof label - base, "/seed%lld", (long long)json_integer_value(seed));
            size_t idx;
            if (ct_plan_find(plan, label, &idx) != 0)
                continue;
            const char *l = ct_plan_get(plan, idx)->label;
            cc[*n] = (ct_steps_crosscoder){l, l + strlen("train/"), tuple};
            (*n)++;
        }
    }
    if (!*n) {
        free(cc);
        cc = NULL;
    }
    *out = cc;
    return 0;
}

int ct_steps_tasks(ct_plan *plan, const ct_recipe *r, ct_steps_task **out, size_t *n)
{
    json_t *tasks = ct_recipe_get(r, "tasks");
    *n = json_array_size(tasks);
    *out = NULL;
    if (!*n)
        return 0;
    ct_steps_task *t = calloc(*n, sizeof *t);
    if (!t)
        return ct_error_set(CT_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < *n && !rc; i++) {
        ct_task *task = NULL;
        t[i].name = json_string_value(json_array_get(tasks, i));
        if ((rc = ct_task_load(t[i].name, &task)) == CT_ENOTFOUND) {
            /* data not installed: the accuracy steps note it; the task is left out */
            ct_error_clear();
            rc = 0;
            t[i].name = NULL;
            continue;
        }
        if (rc)
            break;
        t[i].canonical = strdup(ct_task_name(task));
        rc = t[i].canonical ? ct_plan_source_file(plan, ct_task_file(task), &t[i].source)
                            : ct_error_set(CT_ENOMEM, "out of memory");
        if (!rc)
            ct_task_language(t[i].canonical, t[i].lang, sizeof t[i].lang);
        ct_task_free(task);
    }
    size_t kept = 0;
    for (size_t i = 0; i < *n && !rc; i++)
        if (t[i].name)
            t[kept++] = t[i];
    if (rc || !kept) {
        ct_steps_tasks_free(t, *n);
        *n = 0;
        return rc;
    }
    *n = kept;
    *out = t;
    return 0;
}

void ct_steps_tasks_free(ct_steps_task *t, size_t n)
{
    for (size_t i = 0; t && i < n; i++)
        free(t[i].canonical);
    free(t);
}

/* The label input `name` of the planned step `label`. */
static const char *input_of(const ct_plan *plan, const char *label, const char *name)
{
    size_t idx;
    if (ct_plan_find(plan, label, &idx) != 0)
        return NULL;
    return json_string_value(json_object_get(ct_plan_step_inputs(plan, idx), name));
}

int ct_steps_tuple_inputs(ct_plan *plan, const ct_steps_crosscoder *cc, int tokenizer, json_t *inputs)
{
    json_object_set_new(inputs, "crosscoder", json_string(cc->train_label));
    size_t m;
    json_t *name;
    json_array_foreach(cc->tuple, m, name) {
        char label[512], key[32];
        snprintf(label, sizeof label, "extract/%s/train/0000", json_string_value(name));
        const char *ck = input_of(plan, label, "checkpoint");
        if (!ck)
            return ct_error_set(CT_EINVAL, "%s: no extract step %s names its checkpoint", cc->train_label, label);
        snprintf(key, sizeof key, "checkpoint_%zu", m);
        json_object_set_new(inputs, key, json_string(ck));
    }
    if (tokenizer) {
        const char *tok = input_of(plan, "tokenize/index", "tokenizer");
        if (!tok)
            return ct_error_set(CT_EINVAL, "%s: the plan has no tokenize/index step with a tokenizer",
                                cc->train_label);
        json_object_set_new(inputs, "tokenizer", json_string(tok));
    }
    return 0;
}

static int load_crosscoder(ct_step_ctx *ctx, ct_steps_tuple *t)
{
    const char *label = ct_step_label(ctx);
    size_t len, model_len;
    const void *model;
    int rc = ct_steps_read_input(ctx, "crosscoder", 0, &t->train, &len);
    if (!rc)
        rc = ct_steps_train_parse(t->train, len, label, &model, &model_len, &t->metrics, &t->metrics_len);
    if (!rc)
        rc = ct_cc_load(model, model_len, label, &t->cc);
    if (!rc && t->cc->cfg.M != t->M)
        rc = ct_error_set(CT_EINVAL, "%s: the crosscoder has %d checkpoints, the tuple %d", label, t->cc->cfg.M,
                          t->M);
    int H = rc ? 0 : t->cc->cfg.H, M = t->M;
    float *ova = NULL;
    if (!rc && t->cc->folded)
        rc = ct_error_set(CT_EINVAL, "%s: the train artifact holds a folded crosscoder", label);
    if (!rc) {
        ova = malloc((size_t)M * (size_t)H * sizeof *ova);
        t->reldec = malloc((size_t)M * (size_t)H * sizeof *t->reldec);
        t->reldec_pair = malloc((size_t)H * sizeof *t->reldec_pair);
        if (!ova || !t->reldec || !t->reldec_pair)
            rc = ct_error_set(CT_ENOMEM, "out of memory");
    }
    if (!rc)
        rc = ct_cc_reldec_ova(t->cc, ova);
    if (!rc)
        rc = ct_cc_reldec(t->cc, 0, M - 1, t->reldec_pair);
    for (int j = 0; j < H && !rc; j++)
        for (int m = 0; m < M; m++)
            t->reldec[(size_t)m * H + j] = ova[(size_t)j * M + m];
    free(ova);
    /* folded, it takes the models' raw residuals (METHOD §1) */
    if (!rc)
        rc = ct_cc_fold(t->cc);
    return rc;
}

int ct_steps_tuple_load(ct_step_ctx *ctx, int layer, int tokenizer, ct_steps_tuple *t)
{
    memset(t, 0, sizeof *t);
    const char *label = ct_step_label(ctx);
    while (t->M < CT_STEPS_MAX_M) {
        char key[32];
        snprintf(key, sizeof key, "checkpoint_%d", t->M);
        if (!ct_step_input_count(ctx, key))
            break;
        t->M++;
    }
    if (t->M < 2)
        return ct_error_set(CT_EINVAL, "%s: needs the checkpoints of a tuple (2 to %d)", label, CT_STEPS_MAX_M);
    ct_model_options mo = CT_MODEL_OPTIONS_INIT;
    int rc = ct_device_parse(ct_step_device(ctx), &mo.device);
    if (!rc)
        rc = load_crosscoder(ctx, t);
    for (int m = 0; m < t->M && !rc; m++) {
        char key[32];
        snprintf(key, sizeof key, "checkpoint_%d", m);
        char *path = NULL;
        if ((rc = ct_steps_checkpoint_dir(ctx, key, 0, &path)) == 0)
            rc = ct_model_load(path, &mo, &t->models[m]);
        if (rc) {
            free(path);
            break;
        }
        const ct_model_config *c = ct_model_get_config(t->models[m]), *c0 = ct_model_get_config(t->models[0]);
        if (c->hidden != t->cc->cfg.d)
            rc = ct_error_set(CT_EINVAL, "%s: %s has width %d, the crosscoder %d", label, path, c->hidden,
                              t->cc->cfg.d);
        else if (layer < 0 || layer >= c->n_layer)
            rc = ct_error_set(CT_EINVAL, "%s: layer %d does not exist in %s (%d blocks)", label, layer, path,
                              c->n_layer);
        else if (c->vocab != c0->vocab)
            rc = ct_error_set(CT_EINVAL, "%s: %s has %d vocabulary rows, the tuple's first checkpoint %d", label,
                              path, c->vocab, c0->vocab);
        free(path);
    }
    if (!rc && tokenizer)
        rc = ct_steps_load_tokenizer(ctx, "tokenizer", &t->tok);
    if (rc)
        ct_steps_tuple_free(t);
    return rc;
}

void ct_steps_tuple_free(ct_steps_tuple *t)
{
    for (int m = 0; m < t->M && m < CT_STEPS_MAX_M; m++)
        ct_model_free(t->models[m]);
    ct_cc_free(t->cc);
    free(t->reldec);
    free(t->reldec_pair);
    ct_tok_free(t->tok);
    free(t->train);
    memset(t, 0, sizeof *t);
}

/* The data root is what precedes "/<family>/" in the path (tasks.h:
 * <root>/<family>/...). */
int ct_steps_task_load(const char *label, const char *name, const char *file, ct_task **out)
{
    size_t fl = strcspn(name, "/");
    char pattern[40];
    if (fl == 0 || fl + 3 > sizeof pattern)
        return ct_error_set(CT_EINVAL, "%s: bad task name '%s'", label, name);
    snprintf(pattern, sizeof pattern, "/%.*s/", (int)fl, name);
    const char *at = NULL;
    for (const char *p = strstr(file, pattern); p; p = strstr(p + 1, pattern))
        at = p;
    if (!at)
        return ct_error_set(CT_EINVAL, "%s: task file %s is not under a '%.*s' folder", label, file, (int)fl, name);
    char *root = strndup(file, (size_t)(at - file));
    if (!root)
        return ct_error_set(CT_ENOMEM, "out of memory");
    int rc = ct_task_load_from(name, root, out);
    free(root);
    if (!rc && strcmp(ct_task_file(*out), file) != 0) {
        rc = ct_error_set(CT_EINVAL, "%s: task %s resolves to %s, not to the planned file %s", label, name,
                          ct_task_file(*out), file);
        ct_task_free(*out);
        *out = NULL;
    }
    return rc;
}

int ct_steps_tuple_examples(ct_step_ctx *ctx, const ct_steps_tuple *t, const char *name, size_t max_examples,
                            ct_task **task, ct_task_examples **ex)
{
    const char *label = ct_step_label(ctx), *file = ct_step_input_path(ctx, "task", 0);
    *task = NULL;
    *ex = NULL;
    if (!name || !file || !t->tok)
        return ct_error_set(CT_EINVAL, "%s: needs a task name, a task file and the tokenizer", label);
    int rc = ct_steps_task_load(label, name, file, task);
    if (!rc)
        rc = ct_task_tokenize(*task, t->tok, max_examples, ex);
    for (size_t i = 0; !rc && i < ct_task_examples_size(*ex); i++) {
        const ct_task_example *x = ct_task_examples_get(*ex, i);
        for (int m = 0; m < t->M && !rc; m++) {
            const ct_model_config *c = ct_model_get_config(t->models[m]);
            int bad = x->good < 0 || x->good >= c->vocab || x->bad < 0 || x->bad >= c->vocab;
            for (size_t p = 0; p < x->n_prefix && !bad; p++)
                bad = x->prefix[p] < 0 || x->prefix[p] >= c->vocab;
            if (bad)
                rc = ct_error_set(CT_EINVAL, "%s: example %zu has a token id outside the vocabulary of %d rows of "
                                  "checkpoint %d: the tokenizer does not match the checkpoint", label, i, c->vocab, m);
            else if (c->max_positions > 0 && x->n_prefix > (size_t)c->max_positions)
                rc = ct_error_set(CT_EINVAL, "%s: example %zu has %zu prefix tokens, more than the %d positions of "
                                  "checkpoint %d", label, i, x->n_prefix, c->max_positions, m);
        }
    }
    if (rc) {
        ct_task_examples_free(*ex);
        ct_task_free(*task);
        *ex = NULL;
        *task = NULL;
    }
    return rc;
}

/* --- the attribute artifact -------------------------------------------------------- */

#define ATTR_MAGIC "CTATTRIB"
#define ATTR_HEADER 32

static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

static void *take(const uint8_t **p, size_t bytes)
{
    void *v = malloc(bytes ? bytes : 1);
    if (v) {
        memcpy(v, *p, bytes);
        *p += bytes;
    }
    return v;
}

int ct_steps_attr_parse(const void *buf, size_t len, const char *name, ct_steps_attr *out)
{
    memset(out, 0, sizeof *out);
    const uint8_t *p = buf;
    if (len < ATTR_HEADER || memcmp(p, ATTR_MAGIC, 8) != 0 || get32(p + 8) != 1)
        return ct_error_set(CT_ECORRUPT, "%s: not a version 1 attribute artifact", name);
    uint32_t M = get32(p + 12), H = get32(p + 16);
    uint64_t n = get64(p + 24);
    if (M < 2 || M > CT_STEPS_MAX_M || H < 1 || H > (1u << 26) || n > ((uint64_t)1 << 32))
        return ct_error_set(CT_ECORRUPT, "%s: implausible sizes M=%u H=%u n=%llu", name, M, H,
                            (unsigned long long)n);
    size_t mh = (size_t)M * H, nm = (size_t)n * M;
    size_t want = ATTR_HEADER + mh * 4 * 2 + nm * 8 * 4 + (size_t)n * 8;
    if (len != want)
        return ct_error_set(CT_ECORRUPT, "%s: %zu bytes, expected %zu for M=%u H=%u n=%llu", name, len, want, M, H,
                            (unsigned long long)n);
    out->M = (int)M;
    out->H = (int)H;
    out->n = (size_t)n;
    p += ATTR_HEADER;
    /* copies: the float blocks leave the doubles unaligned when M*H is odd */
    out->ie = take(&p, mh * 4);
    out->reldec = take(&p, mh * 4);
    out->total = take(&p, nm * 8);
    out->error = take(&p, nm * 8);
    out->delta = take(&p, nm * 8);
    out->metric = take(&p, nm * 8);
    out->pair = take(&p, (size_t)n * 8);
    if (!out->ie || !out->reldec || !out->total || !out->error || !out->delta || !out->metric || !out->pair) {
        ct_steps_attr_free(out);
        return ct_error_set(CT_ENOMEM, "out of memory");
    }
    return 0;
}

int ct_steps_attr_read(ct_step_ctx *ctx, const char *input, size_t i, ct_steps_attr *out)
{
    char *data, name[512];
    size_t len;
    int rc = ct_steps_read_input(ctx, input, i, &data, &len);
    if (rc)
        return rc;
    snprintf(name, sizeof name, "%s: input %s[%zu]", ct_step_label(ctx), input, i);
    rc = ct_steps_attr_parse(data, len, name, out);
    free(data);
    return rc;
}

void ct_steps_attr_free(ct_steps_attr *a)
{
    free(a->ie);
    free(a->reldec);
    free(a->total);
    free(a->error);
    free(a->delta);
    free(a->metric);
    free(a->pair);
    memset(a, 0, sizeof *a);
}

int ct_steps_analysis_open(ct_plan *plan, const ct_recipe *r, ct_steps_analysis *a)
{
    memset(a, 0, sizeof *a);
    int rc = json_array_size(ct_recipe_get(r, "tasks")) ? ct_steps_crosscoders(plan, r, &a->cc, &a->ncc) : 0;
    if (!rc && a->ncc)
        rc = ct_steps_tasks(plan, r, &a->tasks, &a->nt);
    if (rc || !a->nt)
        ct_steps_analysis_free(a);
    return rc;
}

void ct_steps_analysis_free(ct_steps_analysis *a)
{
    ct_steps_tasks_free(a->tasks, a->nt);
    free(a->cc);
    memset(a, 0, sizeof *a);
}

int ct_steps_plan_per_task(ct_plan *plan, const ct_recipe *r, const char *kind, json_t *params, int attribute)
{
    ct_steps_analysis an;
    int rc = ct_steps_analysis_open(plan, r, &an);
    for (size_t c = 0; c < an.ncc && !rc; c++) {
        for (size_t i = 0; i < an.nt && !rc; i++) {
            char label[1024], attr[1024];
            snprintf(label, sizeof label, "%s/%s/%s", kind, an.cc[c].suffix, an.tasks[i].name);
            snprintf(attr, sizeof attr, "attribute/%s/%s", an.cc[c].suffix, an.tasks[i].name);
            json_t *inputs = json_pack("{s:s}", "task", an.tasks[i].source);
            if (attribute)
                json_object_set_new(inputs, "attribute", json_string(attr));
            if ((rc = ct_steps_tuple_inputs(plan, &an.cc[c], 1, inputs))) {
                json_decref(inputs);
                break;
            }
            json_t *p = json_deep_copy(params);
            json_object_set_new(p, "task", json_string(an.tasks[i].canonical));
            rc = ct_plan_add(plan, kind, label, p, inputs);
        }
    }
    json_decref(params);
    ct_steps_analysis_free(&an);
    return rc;
}

typedef struct {
    double score;
    int32_t j;
} ranked;

static int by_score(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return (x->j > y->j) - (x->j < y->j);
}

int ct_steps_top(const double *score, int H, size_t k, int32_t *out, size_t *n)
{
    *n = 0;
    ranked *r = malloc(((size_t)H + 1) * sizeof *r);
    if (!r)
        return ct_error_set(CT_ENOMEM, "out of memory");
    size_t nz = 0;
    for (int j = 0; j < H; j++)
        if (score[j] > 0)
            r[nz++] = (ranked){score[j], j};
    qsort(r, nz, sizeof *r, by_score);
    for (; *n < nz && *n < k; (*n)++)
        out[*n] = r[*n].j;
    free(r);
    return 0;
}

int ct_steps_output_json(ct_step_ctx *ctx, json_t *summary)
{
    char *text = summary ? json_dumps(summary, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    ct_blob_writer *w = NULL;
    int rc = text ? ct_step_output(ctx, &w) : ct_error_set(CT_ENOMEM, "out of memory");
    if (!rc)
        rc = ct_blob_write(w, text, strlen(text));
    free(text);
    if (rc)
        json_decref(summary);
    else
        ct_step_set_summary(ctx, summary);
    return rc;
}

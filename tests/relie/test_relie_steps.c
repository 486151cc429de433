/* The RelIE step kinds (attribute, validate, evaluate, overlap) and their result tables,
 * end to end through the CLI on the tiny world of tests/steps/fixture.h: two random
 * GPT-NeoX checkpoints, a crosscoder trained on their activations, an English and a
 * French task. The tables are checked against the artifacts and against independent
 * recomputations (a direct ct_attr_ig call on the same models, the selection and the
 * language overlap redone from the attribute artifacts, the class rule of METHOD §5). */
#include "tests/steps/fixture.h"
#include "tests/support/cli.h"

#include "analysis/attribution.h"
#include "cache/cache.h"
#include "crosscoder/crosscoder.h"
#include "models/forward/model.h"
#include "models/tasks/tasks.h"
#include "pipeline/plan.h"
#include "pipeline/results.h"
#include "pipeline/steps/shard.h"
#include "pipeline/steps/tuple.h"

#include <jansson.h>

static char out[1 << 22];

static const char *const tasks[2] = {"blimp/regular_plural_subject_verb_agreement_1", "clams/fr/simple_agrmt"};
static const char *const langs[2] = {"en", "fr"};
#define MAX_EXAMPLES 6
#define TOP_K 3
#define TOP_OVERLAP 8
#define CC "a-b/seed1"
#define NM 2
#define NH 64

static void setup(fx_env *e, const char *tag)
{
    fx_setup(e, tag);
    fx_write_recipe(e, e->corpus);
    FILE *f = fopen(e->recipe, "a");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "tasks: [%s, %s]\n"
            "relie: {max_examples: %d, batch_size: 4, ig_steps: 4, threshold: 0.001, top_k: %d, top_k_overlap: %d}\n"
            "evaluation: {ce_sequences: 6, ce_batch: 4}\n",
            tasks[0], tasks[1], MAX_EXAMPLES, TOP_K, TOP_OVERLAP);
    fclose(f);
}

static json_t *results(const fx_env *e, const char *table, const char *extra)
{
    int rc = ct_cli(out, sizeof out, "results %s --cache %s --table %s --format json %s", e->recipe, e->cache, table,
                    extra ? extra : "");
    ck_assert_msg(rc == 0, "%s", out);
    json_error_t err;
    json_t *j = json_loads(out, 0, &err);
    ck_assert_msg(j != NULL, "%s json: %s: %.2000s", table, err.text, out);
    ck_assert_str_eq(json_string_value(json_object_get(j, "table")), table);
    ck_assert_str_eq(json_string_value(json_object_get(j, "kind")), "flat");
    ck_assert_str_eq(json_string_value(json_object_get(j, "recipe")), "steps-test");
    return j;
}

/* The columns of a flat table and its csv header must agree with `cols`. */
static void check_columns(const fx_env *e, const char *table, const char *const *cols, size_t n, size_t rows)
{
    json_t *j = results(e, table, NULL);
    json_t *c = json_object_get(j, "columns");
    ck_assert_uint_eq(json_array_size(c), n);
    char header[1024] = "";
    for (size_t i = 0; i < n; i++) {
        ck_assert_str_eq(json_string_value(json_array_get(c, i)), cols[i]);
        snprintf(header + strlen(header), sizeof header - strlen(header), "%s%s", i ? "," : "", cols[i]);
    }
    ck_assert_uint_eq(json_array_size(json_object_get(j, "rows")), rows);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "missing")), 0);
    json_decref(j);
    int rc = ct_cli(out, sizeof out, "results %s --cache %s --table %s --format csv", e->recipe, e->cache, table);
    ck_assert_msg(rc == 0, "%s", out);
    size_t hl = strlen(header);
    ck_assert_msg(strncmp(out, header, hl) == 0 && out[hl] == '\n', "%s csv header: %.300s", table, out);
    size_t lines = 0;
    for (const char *p = out; *p; p++)
        lines += *p == '\n';
    ck_assert_uint_eq(lines, rows + 1);
    ck_assert_ptr_null(strstr(out, "note:"));
    rc = ct_cli(out, sizeof out, "results %s --cache %s --table %s", e->recipe, e->cache, table);
    ck_assert_msg(rc == 0 && strncmp(out, cols[0], strlen(cols[0])) == 0, "%s text: %.300s", table, out);
}

static const ct_plan_step *step_of(fx_world *w, const char *label)
{
    size_t idx;
    ck_assert_msg(ct_plan_find(w->plan, label, &idx) == 0, "no step %s", label);
    const ct_plan_step *s = ct_plan_get(w->plan, idx);
    ck_assert_msg(s->cached, "%s is not cached", label);
    return s;
}

static void read_attr(fx_world *w, int t, ct_steps_attr *a)
{
    char label[512];
    snprintf(label, sizeof label, "attribute/" CC "/%s", tasks[t]);
    char *data;
    size_t len;
    ck_assert_int_eq(ct_cache_read_all(w->cache, step_of(w, label)->key, &data, &len), 0);
    ck_assert_msg(ct_steps_attr_parse(data, len, label, a) == 0, "%s", ct_error_message());
    free(data);
    ck_assert_int_eq(a->M, NM);
    ck_assert_int_eq(a->H, NH);
    ck_assert_uint_eq(a->n, MAX_EXAMPLES);
}

static json_t *summary_of(fx_world *w, const char *label)
{
    json_t *record;
    ck_assert_int_eq(ct_cache_get(w->cache, step_of(w, label)->key, &record), 0);
    json_t *s = json_incref(json_object_get(record, "summary"));
    json_decref(record);
    return s;
}

/* Independent selection: per checkpoint the TOP_K largest |IE| among nonzero ones. */
static int selected_ref(const ct_steps_attr *a, int j)
{
    for (int m = 0; m < NM; m++) {
        float v = fabsf(a->ie[m * NH + j]);
        if (v == 0)
            continue;
        int above = 0;
        for (int k = 0; k < NH; k++) {
            float u = fabsf(a->ie[m * NH + k]);
            above += u > v || (u == v && k < j);
        }
        if (above < TOP_K)
            return 1;
    }
    return 0;
}

/* The crosscoder of the train artifact, unfolded, and the two models. */
static ct_crosscoder *load_crosscoder(fx_world *w)
{
    char *train;
    size_t len, model_len, metrics_len;
    const void *model;
    const char *metrics;
    ck_assert_int_eq(ct_cache_read_all(w->cache, step_of(w, "train/" CC)->key, &train, &len), 0);
    ck_assert_int_eq(ct_steps_train_parse(train, len, "train", &model, &model_len, &metrics, &metrics_len), 0);
    ct_crosscoder *cc;
    ck_assert_int_eq(ct_cc_load(model, model_len, "train", &cc), 0);
    free(train);
    return cc;
}

static void load_models(const fx_env *e, ct_model **models)
{
    ct_model_options mo = CT_MODEL_OPTIONS_INIT;
    for (int m = 0; m < NM; m++)
        ck_assert_int_eq(ct_model_load(e->ck[m], &mo, &models[m]), 0);
}

/* The attribute artifact of task t against ct_attr_ig called directly on the same
 * models, crosscoder (from the train artifact, folded) and examples. */
static void check_attribute_reference(fx_world *w, const fx_env *e, int t, const ct_steps_attr *a)
{
    ct_crosscoder *cc = load_crosscoder(w);
    float reldec[NH * NM];
    ck_assert_int_eq(ct_cc_reldec_ova(cc, reldec), 0);
    ck_assert_int_eq(ct_cc_fold(cc), 0);
    ct_model *models[NM];
    load_models(e, models);
    ct_tokenizer *tok;
    ct_task *task;
    ct_task_examples *ex;
    ck_assert_int_eq(ct_tok_load(e->tok, &tok), 0);
    ck_assert_int_eq(ct_task_load(tasks[t], &task), 0);
    ck_assert_int_eq(ct_task_tokenize(task, tok, MAX_EXAMPLES, &ex), 0);
    ct_attr_options o = CT_ATTR_OPTIONS_INIT;
    o.steps = 4;
    o.threshold = 0.001f;
    o.batch = 4;
    ct_attr_result r;
    ck_assert_int_eq(ct_attr_ig(models, NM, cc, 1, ct_task_examples_get(ex, 0), ct_task_examples_size(ex), &o, &r), 0);
    ck_assert_uint_eq(r.n_examples, a->n);
    for (int i = 0; i < NM * NH; i++) {
        ck_assert_msg(r.ie[i] == a->ie[i], "%s ie[%d]: %g vs %g", tasks[t], i, r.ie[i], a->ie[i]);
        ck_assert_float_eq(a->reldec[i], reldec[(i % NH) * NM + i / NH]);
    }
    for (size_t i = 0; i < a->n * NM; i++) {
        ck_assert_double_eq(r.example_total[i], a->total[i]);
        ck_assert_double_eq(r.example_metric[i], a->metric[i]);
    }
    for (size_t i = 0; i < a->n; i++)
        ck_assert_uint_eq(a->pair[i], ct_task_examples_get(ex, i)->pair);
    ct_attr_result_free(&r);
    ct_task_examples_free(ex);
    ct_task_free(task);
    ct_tok_free(tok);
    for (int m = 0; m < NM; m++)
        ct_model_free(models[m]);
    ct_cc_free(cc);
}

/* ΔCE of the evaluate step against ct_attr_delta_ce called directly on the first 6
 * validation sequences (recipe: evaluation.ce_sequences 6, ce_batch 4). */
static void check_evaluate_reference(fx_world *w, const fx_env *e)
{
    char *toks;
    size_t tlen;
    ct_crosscoder *cc = load_crosscoder(w);
    ck_assert_int_eq(ct_cc_fold(cc), 0);
    ck_assert_int_eq(ct_cache_read_all(w->cache, step_of(w, "tokenize/val/0000")->key, &toks, &tlen), 0);
    ct_tokshard sh;
    ck_assert_int_eq(ct_tokshard_parse(toks, tlen, "val", &sh), 0);
    ck_assert_uint_ge(sh.n_seq, 6);
    ct_model *models[NM];
    load_models(e, models);
    ct_attr_options o = CT_ATTR_OPTIONS_INIT;
    o.batch = 4;
    double clean[NM], spliced[NM];
    ck_assert_int_eq(ct_attr_delta_ce(models, NM, cc, 1, sh.ids, 6, (int)sh.seq_len, &o, clean, spliced), 0);
    json_t *s = summary_of(w, "evaluate/" CC);
    ck_assert_int_eq(json_integer_value(json_object_get(s, "n_sequences")), 6);
    for (int m = 0; m < NM; m++) {
        ck_assert_double_eq(json_real_value(json_array_get(json_object_get(s, "ce_clean"), (size_t)m)), clean[m]);
        ck_assert_double_eq(json_real_value(json_array_get(json_object_get(s, "ce_spliced"), (size_t)m)), spliced[m]);
    }
    json_decref(s);
    for (int m = 0; m < NM; m++)
        ct_model_free(models[m]);
    ct_tokshard_free(&sh);
    ct_cc_free(cc);
    free(toks);
}

static void check_latents(fx_world *w, const fx_env *e, ct_steps_attr *attr)
{
    json_t *j = results(e, "latents", NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "missing")), 0);
    json_t *rows = json_object_get(j, "rows");
    size_t r = 0;
    for (int t = 0; t < 2; t++) {
        ct_steps_attr *a = &attr[t];
        char label[512];
        snprintf(label, sizeof label, "validate/" CC "/%s", tasks[t]);
        json_t *vs = summary_of(w, label);
        size_t n_selected = 0, nonzero = 0;
        for (int jl = 0; jl < NH; jl++) {
            if (a->ie[jl] == 0 && a->ie[NH + jl] == 0)
                continue;
            nonzero++;
            int sel = selected_ref(a, jl);
            n_selected += (size_t)sel;
            double abs_a = fabs(a->ie[jl]), abs_b = fabs(a->ie[NH + jl]);
            double relie_b = abs_b / (abs_a + abs_b);
            const char *cls = relie_b < 0.3 ? "A-specific" : relie_b > 0.7 ? "B-specific" : "shared";
            for (int m = 0; m < NM; m++, r++) {
                json_t *row = json_array_get(rows, r);
                ck_assert_msg(row != NULL, "row %zu missing", r);
                ck_assert_str_eq(json_string_value(json_object_get(row, "crosscoder")), CC);
                ck_assert_str_eq(json_string_value(json_object_get(row, "task")), tasks[t]);
                ck_assert_int_eq(json_integer_value(json_object_get(row, "latent")), jl);
                ck_assert_str_eq(json_string_value(json_object_get(row, "checkpoint")), m ? "b" : "a");
                ck_assert_double_eq(json_real_value(json_object_get(row, "ie")), (double)a->ie[m * NH + jl]);
                double relie = json_real_value(json_object_get(row, "relie"));
                ck_assert_double_eq_tol(relie, m ? relie_b : 1 - relie_b, 1e-12);
                /* pairwise RelIE: for two checkpoints B's row holds RelIE against A twice */
                if (m) {
                    ck_assert_double_eq_tol(json_real_value(json_object_get(row, "relie_prev")), relie_b, 1e-12);
                    ck_assert_double_eq_tol(json_real_value(json_object_get(row, "relie_first")), relie_b, 1e-12);
                } else {
                    ck_assert(json_is_null(json_object_get(row, "relie_prev")));
                    ck_assert(json_is_null(json_object_get(row, "relie_first")));
                }
                ck_assert_double_eq(json_real_value(json_object_get(row, "reldec")), (double)a->reldec[m * NH + jl]);
                ck_assert_str_eq(json_string_value(json_object_get(row, "class")), cls);
                ck_assert_msg(json_is_boolean(json_object_get(row, "selected")), "selected is not a boolean");
                ck_assert_int_eq(json_is_true(json_object_get(row, "selected")), sel);
                ck_assert_int_eq(json_is_real(json_object_get(row, "delta_lpd")), sel);
                ck_assert_int_eq(json_is_real(json_object_get(row, "delta_acc")), sel);
                if (sel) {
                    double dacc = json_real_value(json_object_get(row, "delta_acc"));
                    ck_assert(dacc >= -1 && dacc <= 1);
                }
            }
        }
        ck_assert_msg(nonzero > 0, "%s: no latent with a nonzero IE: the test shows nothing", tasks[t]);
        ck_assert_msg(nonzero < NH, "%s: every latent has a nonzero IE: the filter is not tested", tasks[t]);
        ck_assert_int_eq(json_integer_value(json_object_get(vs, "n_latents")), (json_int_t)n_selected);
        ck_assert_uint_le(n_selected, (size_t)(NM * TOP_K));
        json_decref(vs);
    }
    ck_assert_uint_eq(r, json_array_size(rows));
    json_decref(j);
}

static void check_validation(fx_world *w, const fx_env *e)
{
    json_t *j = results(e, "validation", NULL);
    json_t *rows = json_object_get(j, "rows");
    ck_assert_uint_eq(json_array_size(rows), 2);
    for (int t = 0; t < 2; t++) {
        json_t *row = json_array_get(rows, (size_t)t);
        char label[512];
        snprintf(label, sizeof label, "validate/" CC "/%s", tasks[t]);
        json_t *s = summary_of(w, label);
        ck_assert_str_eq(json_string_value(json_object_get(row, "task")), tasks[t]);
        ck_assert_int_eq(json_integer_value(json_object_get(row, "n_latents")),
                         json_integer_value(json_object_get(s, "n_latents")));
        int ranked = 0, x_varies = 0, relie_varies = 0, reldec_varies = 0;
        double x0 = 0, relie0 = 0, reldec0 = 0;
        size_t i;
        json_t *l;
        json_array_foreach(json_object_get(s, "latents"), i, l) {
            double da = json_real_value(json_array_get(json_object_get(l, "delta_lpd"), 0));
            double db = json_real_value(json_array_get(json_object_get(l, "delta_lpd"), 1));
            if (fabs(da) + fabs(db) > 0) {
                double x = fabs(db) / (fabs(da) + fabs(db));
                double relie = json_real_value(json_object_get(l, "relie"));
                double reldec = json_real_value(json_object_get(l, "reldec"));
                if (ranked) {
                    x_varies |= x != x0;
                    relie_varies |= relie != relie0;
                    reldec_varies |= reldec != reldec0;
                }
                x0 = x;
                relie0 = relie;
                reldec0 = reldec;
                ranked++;
            }
            json_t *ratio = json_object_get(l, "ratio");
            if (da != 0)
                ck_assert_double_eq_tol(json_real_value(ratio), fabs(db) / fabs(da), 1e-9 * (1 + fabs(db / da)));
            else
                ck_assert(json_is_null(ratio));
        }
        ck_assert_int_eq(json_integer_value(json_object_get(s, "n_ranked")), ranked);
        static const char *const rho[2] = {"rho_relie", "rho_reldec"};
        for (int k = 0; k < 2; k++) {
            json_t *v = json_object_get(row, rho[k]);
            ck_assert(json_equal(v, json_object_get(s, rho[k])));
            if (json_is_real(v))
                ck_assert(json_real_value(v) >= -1 - 1e-12 && json_real_value(v) <= 1 + 1e-12);
            else /* Spearman is undefined for fewer than 2 latents or a constant side */
                ck_assert_msg(json_is_null(v) && (ranked < 2 || !x_varies || !(k ? reldec_varies : relie_varies)),
                              "%s is not a number with %d ranked latents", rho[k], ranked);
        }
        ck_assert_int_eq(strlen(json_string_value(json_object_get(row, "key"))), 64);
        json_decref(s);
    }
    json_decref(j);
}

static void check_crosscoders(const fx_env *e)
{
    json_t *j = results(e, "crosscoders", NULL);
    json_t *rows = json_object_get(j, "rows");
    ck_assert_uint_eq(json_array_size(rows), 2);
    for (int m = 0; m < NM; m++) {
        json_t *row = json_array_get(rows, (size_t)m);
        ck_assert_str_eq(json_string_value(json_object_get(row, "crosscoder")), CC);
        ck_assert_str_eq(json_string_value(json_object_get(row, "checkpoint")), m ? "b" : "a");
        ck_assert_str_eq(json_string_value(json_object_get(row, "type")), "l1");
        ck_assert_int_eq(json_integer_value(json_object_get(row, "seed")), 1);
        ck_assert_int_eq(json_integer_value(json_object_get(row, "dict_size")), NH);
        double clean = json_real_value(json_object_get(row, "ce_clean"));
        double spliced = json_real_value(json_object_get(row, "ce_spliced"));
        double delta = json_real_value(json_object_get(row, "delta_ce"));
        /* random models over a 400-token vocabulary: CE near log(400) = 6 */
        ck_assert_msg(isfinite(clean) && clean > 1 && clean < 30, "ce_clean %g", clean);
        ck_assert_msg(isfinite(spliced) && spliced > 1 && spliced < 30, "ce_spliced %g", spliced);
        ck_assert_double_eq_tol(delta, spliced - clean, 1e-12);
        ck_assert_msg(delta != 0, "the reconstruction changes nothing: splicing is not tested");
        double ev = json_real_value(json_object_get(row, "explained_variance"));
        ck_assert_msg(isfinite(ev) && ev <= 1, "explained variance %g", ev);
        double l0 = json_real_value(json_object_get(row, "l0"));
        ck_assert(l0 >= 0 && l0 <= NH);
        ck_assert(json_real_value(json_object_get(row, "l2")) > 0);
        json_int_t dead = json_integer_value(json_object_get(row, "dead"));
        ck_assert(json_is_integer(json_object_get(row, "dead")) && dead >= 0 && dead <= NH);
        ck_assert_int_eq(strlen(json_string_value(json_object_get(row, "key"))), 64);
    }
    json_decref(j);
}

/* Overlap recomputed from the attribute artifacts (one task per language). */
static void check_overlap(const fx_env *e, const ct_steps_attr *attr)
{
    int top[2][TOP_OVERLAP], n[2] = {0, 0};
    for (int t = 0; t < 2; t++) {
        double score[NH];
        for (int j = 0; j < NH; j++)
            score[j] = fabs(attr[t].ie[j]) + fabs(attr[t].ie[NH + j]);
        for (; n[t] < TOP_OVERLAP; n[t]++) {
            int best = -1;
            for (int j = 0; j < NH; j++)
                if (score[j] > 0 && (best < 0 || score[j] > score[best]))
                    best = j;
            if (best < 0)
                break;
            top[t][n[t]] = best;
            score[best] = 0;
        }
    }
    int count = 0;
    for (int a = 0; a < n[0]; a++)
        for (int b = 0; b < n[1]; b++)
            count += top[0][a] == top[1][b];
    json_t *j = results(e, "overlap", NULL);
    json_t *rows = json_object_get(j, "rows");
    ck_assert_uint_eq(json_array_size(rows), 1);
    json_t *row = json_array_get(rows, 0);
    ck_assert_str_eq(json_string_value(json_object_get(row, "lang_a")), langs[0]);
    ck_assert_str_eq(json_string_value(json_object_get(row, "lang_b")), langs[1]);
    ck_assert_int_eq(json_integer_value(json_object_get(row, "top_k")), TOP_OVERLAP);
    ck_assert_int_eq(json_integer_value(json_object_get(row, "count")), count);
    ck_assert_int_le(count, TOP_OVERLAP);
    ck_assert_double_eq(json_real_value(json_object_get(row, "fraction")), (double)count / TOP_OVERLAP);
    json_decref(j);
}

/* `crosstime plan --format json`: its steps in plan order (upstream first). */
static json_t *plan_steps(const fx_env *e, const char *extra)
{
    int rc = ct_cli(out, sizeof out, "plan %s --cache %s --format json %s", e->recipe, e->cache, extra);
    ck_assert_msg(rc == 0, "%s", out);
    json_t *plan = json_loads(out, 0, NULL);
    ck_assert_ptr_nonnull(plan);
    json_t *steps = json_incref(json_object_get(plan, "steps"));
    json_decref(plan);
    return steps;
}

/* Changing relie.top_k must change the keys of the validate steps and of what reads
 * them, and nothing else; returns how many changed. */
static int check_top_k_change(const fx_env *e)
{
    json_t *before = plan_steps(e, ""), *after = plan_steps(e, "--set relie.top_k=1");
    ck_assert_uint_eq(json_array_size(before), json_array_size(after));
    json_t *expect = json_object();
    size_t i, d;
    json_t *s, *dep;
    int changed = 0, validates = 0;
    json_array_foreach(before, i, s) {
        const char *label = json_string_value(json_object_get(s, "label"));
        json_t *s2 = json_array_get(after, i);
        ck_assert_str_eq(json_string_value(json_object_get(s2, "label")), label);
        int want = strncmp(label, "validate/", 9) == 0;
        validates += want;
        json_array_foreach(json_object_get(s, "deps"), d, dep) want |= json_is_true(json_object_get(expect, json_string_value(dep)));
        json_object_set_new(expect, label, json_boolean(want));
        int differs = !json_equal(json_object_get(s, "key"), json_object_get(s2, "key"));
        ck_assert_msg(differs == want, "%s: key %s", label, differs ? "changed" : "did not change");
        changed += differs;
    }
    ck_assert_int_eq(validates, 2);
    json_decref(expect);
    json_decref(before);
    json_decref(after);
    return changed;
}

START_TEST(run_then_every_table)
{
    fx_env e;
    setup(&e, "relie");
    /* before anything ran: every table is empty or null, with a note */
    int rc = ct_cli(out, sizeof out, "results %s --cache %s --table validation --format csv", e.recipe, e.cache);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strstr(out, "crosscoder,task,n_latents,rho_relie,rho_reldec,key\n" CC ",") &&
                      strstr(out, "2 steps of this table not computed yet"),
                  "%s", out);

    rc = ct_cli(out, sizeof out, "run %s --cache %s -q", e.recipe, e.cache);
    ck_assert_msg(rc == 0, "%s", out);
    /* attribute and validate per task, evaluate, overlap */
    fx_world w;
    fx_world_open(&w, &e, NULL);
    static const char *const planned[] = {"attribute/" CC "/blimp/regular_plural_subject_verb_agreement_1",
                                          "attribute/" CC "/clams/fr/simple_agrmt",
                                          "validate/" CC "/blimp/regular_plural_subject_verb_agreement_1",
                                          "validate/" CC "/clams/fr/simple_agrmt", "evaluate/" CC, "overlap/" CC};
    for (size_t i = 0; i < sizeof planned / sizeof *planned; i++)
        step_of(&w, planned[i]);

    ct_steps_attr attr[2];
    for (int t = 0; t < 2; t++)
        read_attr(&w, t, &attr[t]);
    check_attribute_reference(&w, &e, 0, &attr[0]);
    check_evaluate_reference(&w, &e);

    static const char *const cc_cols[] = {"crosscoder", "checkpoint", "type", "seed", "dict_size",
                                          "l2", "l1", "l0", "dead", "explained_variance",
                                          "ce_clean", "ce_spliced", "delta_ce", "key"};
    static const char *const lat_cols[] = {"crosscoder", "task",        "latent",   "checkpoint", "ie",
                                           "relie",      "relie_prev",  "relie_first", "reldec",  "class",
                                           "selected",   "delta_lpd",   "delta_acc"};
    static const char *const val_cols[] = {"crosscoder", "task", "n_latents", "rho_relie", "rho_reldec", "key"};
    static const char *const ov_cols[] = {"crosscoder", "lang_a", "lang_b", "top_k", "count", "fraction"};
    size_t lat_rows = 0;
    for (int t = 0; t < 2; t++)
        for (int j = 0; j < NH; j++)
            lat_rows += (attr[t].ie[j] != 0 || attr[t].ie[NH + j] != 0) ? NM : 0;
    check_columns(&e, "crosscoders", cc_cols, 14, 2);
    check_columns(&e, "latents", lat_cols, 13, lat_rows);
    check_columns(&e, "validation", val_cols, 6, 2);
    check_columns(&e, "overlap", ov_cols, 6, 1);
    check_crosscoders(&e);
    check_latents(&w, &e, attr);
    check_validation(&w, &e);
    check_overlap(&e, attr);
    fx_world_close(&w);

    /* the summary of attribute counts the nonzero latents of the artifact */
    fx_world_open(&w, &e, NULL);
    json_t *s = summary_of(&w, planned[0]);
    int nz = 0;
    for (int j = 0; j < NH; j++)
        nz += attr[0].ie[NH + j] != 0;
    ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(s, "nonzero"), 1)), nz);
    ck_assert_int_eq(json_integer_value(json_object_get(s, "n_examples")), MAX_EXAMPLES);
    json_decref(s);
    fx_world_close(&w);

    /* a second run computes nothing */
    rc = ct_cli(out, sizeof out, "run %s --cache %s -q", e.recipe, e.cache);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strstr(out, " 0 computed"), "second run computed something: %s", out);

    /* relie.top_k changes the keys of the validate steps and their readers only */
    int changed = check_top_k_change(&e);
    rc = ct_cli(out, sizeof out, "run %s --cache %s -q --set relie.top_k=1", e.recipe, e.cache);
    ck_assert_msg(rc == 0, "%s", out);
    char computed[64];
    snprintf(computed, sizeof computed, " %d computed", changed);
    ck_assert_msg(strstr(out, computed), "expected%s: %s", computed, out);
    json_t *v = results(&e, "validation", "--set relie.top_k=1");
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(v, "rows"), i, row)
        ck_assert_int_le(json_integer_value(json_object_get(row, "n_latents")), NM);
    json_decref(v);
    for (int t = 0; t < 2; t++)
        ct_steps_attr_free(&attr[t]);
}
END_TEST

/* One language: no overlap step is planned, and the overlap table is empty. */
START_TEST(one_language_plans_no_overlap)
{
    fx_env e;
    setup(&e, "relie-1l");
    int rc = ct_cli(out, sizeof out, "plan %s --cache %s --set 'tasks=[%s]'", e.recipe, e.cache, tasks[0]);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strstr(out, "attribute/" CC "/") && strstr(out, "validate/" CC "/") && strstr(out, "evaluate/" CC),
                  "%s", out);
    ck_assert_ptr_null(strstr(out, "overlap/"));
    rc = ct_cli(out, sizeof out, "results %s --cache %s --table overlap --format csv --set 'tasks=[%s]'", e.recipe,
                e.cache, tasks[0]);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_str_eq(out, "crosscoder,lang_a,lang_b,top_k,count,fraction\n");
}
END_TEST

/* METHOD §5 classes for three checkpoints, from one-vs-all values. */
static const char *class3(const double *v)
{
    static const char *const specific[3] = {"A-specific", "B-specific", "C-specific"};
    int mx = 0;
    for (int m = 1; m < 3; m++)
        mx = v[m] > v[mx] ? m : mx;
    if (v[mx] > 0.7)
        return specific[mx];
    int big = (v[0] >= 0.3) + (v[1] >= 0.3) + (v[2] >= 0.3);
    if (big == 3)
        return "shared";
    if (big == 2)
        return v[0] < 0.3 ? "pair:BC" : v[1] < 0.3 ? "pair:AC" : "pair:AB";
    return "other";
}

/* A three-checkpoint tuple: one-vs-all RelIE and the 3-way classes in the latents
 * table, and validation between the first and the last checkpoint. */
START_TEST(three_checkpoints)
{
    fx_env e;
    fx_setup(&e, "relie-3");
    char ckc[PATH_MAX + 32];
    snprintf(ckc, sizeof ckc, "%s/ckC", e.dir);
    fx_checkpoint(ckc, e.vocab, 1002);
    /* the fixture's recipe with a third checkpoint c and the tuple [a, b, c] */
    static char text[8192];
    char *b = strstr(fx_recipe_text, "    - {name: b,"), *t = strstr(fx_recipe_text, "  - [a, b]\n");
    ck_assert(b && t);
    const char *b_end = strchr(b, '\n') + 1;
    snprintf(text, sizeof text, "%.*s    - {name: c, source: ckC, tokens: 3000}\n%.*s  - [a, b, c]\n"
             "tasks: [%s]\nrelie: {max_examples: 4, ig_steps: 3, threshold: 0.001, top_k: 4}\n"
             "evaluation: {ce_sequences: 4}\n",
             (int)(b_end - fx_recipe_text), fx_recipe_text, (int)(t - b_end), b_end, tasks[0]);
    FILE *f = fopen(e.recipe, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, text, e.corpus);
    fclose(f);
    int rc = ct_cli(out, sizeof out, "run %s --cache %s -q", e.recipe, e.cache);
    ck_assert_msg(rc == 0, "%s", out);
    static const char *const names[3] = {"a", "b", "c"};
    json_t *j = results(&e, "latents", NULL);
    json_t *rows = json_object_get(j, "rows");
    ck_assert_uint_gt(json_array_size(rows), 0);
    ck_assert_uint_eq(json_array_size(rows) % 3, 0);
    for (size_t r = 0; r < json_array_size(rows); r += 3) {
        double abs_ie[3], v[3], sum = 0;
        for (int m = 0; m < 3; m++) {
            json_t *row = json_array_get(rows, r + (size_t)m);
            ck_assert_str_eq(json_string_value(json_object_get(row, "crosscoder")), "a-b-c/seed1");
            ck_assert_str_eq(json_string_value(json_object_get(row, "checkpoint")), names[m]);
            ck_assert_int_eq(json_integer_value(json_object_get(row, "latent")),
                             json_integer_value(json_object_get(json_array_get(rows, r), "latent")));
            abs_ie[m] = fabs(json_real_value(json_object_get(row, "ie")));
            sum += abs_ie[m];
        }
        ck_assert(sum > 0);
        for (int m = 0; m < 3; m++)
            v[m] = abs_ie[m] / sum;
        /* METHOD §5's pairwise vector [B/(A+B), C/(B+C), C/(A+C)] from the rows of B and C */
        double pair[3] = {abs_ie[1] / (abs_ie[0] + abs_ie[1]), abs_ie[2] / (abs_ie[1] + abs_ie[2]),
                          abs_ie[2] / (abs_ie[0] + abs_ie[2])};
        for (int k = 0; k < 3; k++)
            if (!isfinite(pair[k]))
                pair[k] = 0.5;
        json_t *rb = json_array_get(rows, r + 1), *rc3 = json_array_get(rows, r + 2);
        ck_assert_double_eq_tol(json_real_value(json_object_get(rb, "relie_prev")), pair[0], 1e-12);
        ck_assert_double_eq_tol(json_real_value(json_object_get(rc3, "relie_prev")), pair[1], 1e-12);
        ck_assert_double_eq_tol(json_real_value(json_object_get(rc3, "relie_first")), pair[2], 1e-12);
        for (int m = 0; m < 3; m++) {
            json_t *row = json_array_get(rows, r + (size_t)m);
            ck_assert_double_eq_tol(json_real_value(json_object_get(row, "relie")), v[m], 1e-12);
            ck_assert_str_eq(json_string_value(json_object_get(row, "class")), class3(v));
            double rd = json_real_value(json_object_get(row, "reldec"));
            ck_assert(rd > 0 && rd < 1);
        }
    }
    json_decref(j);

    /* validation compares a with c: RelIE and the ratio from checkpoints 0 and 2 */
    fx_world w;
    fx_world_open(&w, &e, NULL);
    char label[512];
    snprintf(label, sizeof label, "validate/a-b-c/seed1/%s", tasks[0]);
    json_t *s = summary_of(&w, label);
    ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(s, "pair"), 1)), 2);
    size_t i;
    json_t *l;
    ck_assert_uint_gt(json_array_size(json_object_get(s, "latents")), 0);
    json_array_foreach(json_object_get(s, "latents"), i, l) {
        json_t *ie = json_object_get(l, "ie"), *d = json_object_get(l, "delta_lpd");
        ck_assert_uint_eq(json_array_size(ie), 3);
        double a = fabs(json_real_value(json_array_get(ie, 0))), c = fabs(json_real_value(json_array_get(ie, 2)));
        ck_assert_double_eq_tol(json_real_value(json_object_get(l, "relie")), a + c > 0 ? c / (a + c) : 0.5, 1e-12);
        double da = fabs(json_real_value(json_array_get(d, 0))), dc = fabs(json_real_value(json_array_get(d, 2)));
        if (da > 0)
            ck_assert_double_eq_tol(json_real_value(json_object_get(l, "ratio")), dc / da, 1e-9 * (1 + dc / da));
    }
    json_decref(s);
    fx_world_close(&w);
    j = results(&e, "validation", NULL);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "rows")), 1);
    json_decref(j);
    rc = ct_cli(out, sizeof out, "results %s --cache %s --table crosscoders --format csv", e.recipe, e.cache);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strstr(out, "\na-b-c/seed1,a,l1,") && strstr(out, "\na-b-c/seed1,b,l1,") &&
                      strstr(out, "\na-b-c/seed1,c,l1,"),
                  "%s", out);
}
END_TEST

/* A corrupt attribute artifact is a clear error, never a crash. */
START_TEST(attribute_artifact_parse_errors)
{
    ct_steps_attr a;
    uint8_t buf[64] = "CTATTRIB";
    ck_assert_int_eq(ct_steps_attr_parse(buf, 10, "x", &a), CT_ECORRUPT);
    buf[8] = 1;
    buf[12] = 2;
    buf[16] = 4;
    ck_assert_int_eq(ct_steps_attr_parse(buf, sizeof buf, "x.bin", &a), CT_ECORRUPT);
    ck_assert_msg(strstr(ct_error_message(), "x.bin: 64 bytes, expected"), "%s", ct_error_message());
    buf[12] = 99;
    ck_assert_int_eq(ct_steps_attr_parse(buf, sizeof buf, "x.bin", &a), CT_ECORRUPT);
    /* a well-formed one with n = 0 */
    uint8_t ok[32 + 2 * 2 * 4 * 4] = "CTATTRIB";
    ok[8] = 1;
    ok[12] = 2;
    ok[16] = 4;
    float one = 1.5f;
    memcpy(ok + 32 + 4, &one, 4);
    ck_assert_int_eq(ct_steps_attr_parse(ok, sizeof ok, "ok", &a), 0);
    ck_assert_int_eq(a.M, 2);
    ck_assert_int_eq(a.H, 4);
    ck_assert_uint_eq(a.n, 0);
    ck_assert_float_eq(a.ie[1], 1.5f);
    ct_steps_attr_free(&a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("relie");
    TCase *tc = tcase_create("relie");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, attribute_artifact_parse_errors);
    tcase_add_test(tc, one_language_plans_no_overlap);
    tcase_add_test(tc, run_then_every_table);
    tcase_add_test(tc, three_checkpoints);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

/* The corpus-to-crosscoder step kinds end to end through the CLI, on a tiny world
 * built by the test (fixture.h): tokenize_index, tokenize, extract, scale, train.
 * Artifacts are checked against independent computations: the tokenizer on the
 * corpus's documents, the forward pass on the same sequences, the mean norm. */
#include "tests/steps/fixture.h"
#include "tests/support/cli.h"

#include <signal.h>
#include <sys/stat.h>

#include "cache/cache.h"
#include "common/io.h"
#include "crosscoder/crosscoder.h"
#include "models/checkpoint/safetensors.h"
#include "models/forward/model.h"
#include "pipeline/key.h"
#include "pipeline/plan.h"
#include "pipeline/recipe/recipe.h"
#include "pipeline/step.h"

#include <jansson.h>

static char out[1 << 16];

/* --- reading artifacts back through the library ----------------------------------- */


static char *artifact(fx_world *w, const char *label, size_t *len)
{
    size_t idx;
    ck_assert_msg(ct_plan_find(w->plan, label, &idx) == 0, "no step %s", label);
    char *data;
    ck_assert_msg(ct_cache_read_all(w->cache, ct_plan_get(w->plan, idx)->key, &data, len) == 0, "%s: %s", label,
                  ct_error_message());
    return data;
}

static uint32_t rd32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint64_t rd64(const void *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static float bf16(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* --- the independent references ------------------------------------------------------ */

/* Ids of document `doc` (0-based line of the corpus file). */
static int32_t *doc_ids(const fx_env *e, ct_tokenizer *tok, uint64_t doc, size_t *n)
{
    FILE *f = fopen(e->corpus, "r");
    ck_assert_ptr_nonnull(f);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len = 0;
    for (uint64_t i = 0; i <= doc; i++)
        ck_assert_int_gt(len = getline(&line, &cap, f), 0);
    fclose(f);
    int32_t *ids;
    ck_assert_int_eq(ct_tok_encode(tok, line, (size_t)len - 1, &ids, n), 0);
    free(line);
    return ids;
}

static void check_tokens(fx_world *w, const fx_env *e)
{
    ct_tokenizer *tok;
    ck_assert_int_eq(ct_tok_load(e->tok, &tok), 0);
    /* the k-th sequence of the stream is the k-th document of >= 16 tokens */
    uint64_t seq_doc[400];
    size_t nseq = 0;
    for (uint64_t doc = 0; doc < FX_DOCS && nseq < 400; doc++) {
        size_t n;
        int32_t *ids = doc_ids(e, tok, doc, &n);
        if (n >= 16)
            seq_doc[nseq++] = doc;
        free(ids);
    }
    ck_assert_int_ge(nseq, 332);
    const char *labels[3] = {"tokenize/train/0000", "tokenize/val/0000", "tokenize/test/0000"};
    int expect_n[3] = {64, 8, 4};
    uint64_t seen_total = 0;
    for (int s = 0; s < 3; s++) {
        size_t len;
        char *a = artifact(w, labels[s], &len);
        ck_assert_int_eq(memcmp(a, "CTTOKSHD", 8), 0);
        ck_assert_int_eq(rd32(a + 8), 1);
        uint32_t T = rd32(a + 12);
        uint64_t n = rd64(a + 16);
        ck_assert_uint_eq(T, 16);
        ck_assert_uint_eq(n, (uint64_t)expect_n[s]);
        ck_assert_uint_eq(len, 24 + n * T * 4 + n * 16);
        const char *ids = a + 24, *si = ids + n * T * 4, *di = si + n * 8;
        for (uint64_t q = 0; q < n; q++) {
            uint64_t seq = rd64(si + 8 * q), doc = rd64(di + 8 * q);
            ck_assert_uint_lt(seq, 332);
            ck_assert_uint_eq(doc, seq_doc[seq]);
            if (q > 0)
                ck_assert_uint_gt(seq, rd64(si + 8 * (q - 1))); /* corpus order within a split */
            if (q < 6 || q == n - 1) {
                size_t nd;
                int32_t *ref = doc_ids(e, tok, doc, &nd);
                for (uint32_t t = 0; t < T; t++)
                    ck_assert_int_eq((int32_t)rd32(ids + 4 * (q * T + t)), ref[t]);
                free(ref);
            }
        }
        seen_total += n;
        free(a);
    }
    ck_assert_uint_eq(seen_total, 76);
    ct_tok_free(tok);
}

static void check_activations(fx_world *w, const fx_env *e, int m)
{
    char label[64];
    snprintf(label, sizeof label, "extract/%c/train/0001", 'a' + m);
    size_t len, tlen;
    char *a = artifact(w, label, &len);
    char *t = artifact(w, "tokenize/train/0001", &tlen);
    ck_assert_int_eq(memcmp(a, "CTACTSHD", 8), 0);
    uint32_t dtype = rd32(a + 12), d = rd32(a + 16), T = rd32(a + 20);
    uint64_t n_seq = rd64(a + 24), rows = rd64(a + 32), off = rd64(a + 40);
    ck_assert_uint_eq(dtype, 1);
    ck_assert_uint_eq(d, FX_D);
    ck_assert_uint_eq(T, 16);
    ck_assert_uint_eq(n_seq, 64);
    ck_assert_uint_eq(rows, 64 * 15);
    ck_assert_uint_eq(off % 64, 0);
    ck_assert_uint_eq(len, off + rows * d * 2);
    /* the token-shard key it names is the key of tokenize/train/0001 */
    size_t idx;
    ck_assert_int_eq(ct_plan_find(w->plan, "tokenize/train/0001", &idx), 0);
    char hex[65];
    ct_key_hex(ct_plan_get(w->plan, idx)->key, hex);
    ck_assert_int_eq(memcmp(a + 48, hex, 64), 0);

    ct_model *model;
    ct_model_options mo = CT_MODEL_OPTIONS_INIT;
    ck_assert_int_eq(ct_model_load(e->ck[m], &mo, &model), 0);
    float cap[16 * FX_D];
    int layer = 1;
    float *capp = cap;
    double max_rel = 0;
    for (uint64_t s = 0; s < n_seq; s += 21) {
        int32_t ids[16];
        for (int i = 0; i < 16; i++)
            ids[i] = (int32_t)rd32(t + 24 + 4 * (s * 16 + (uint64_t)i));
        ct_forward_args fa = CT_FORWARD_ARGS_INIT;
        fa.n_seq = 1;
        fa.seq_len = 16;
        fa.ids = ids;
        fa.n_capture = 1;
        fa.capture_layers = &layer;
        fa.capture = &capp;
        ck_assert_int_eq(ct_model_forward(model, &fa), 0);
        for (int p = 1; p < 16; p++) {
            uint64_t r = s * 15 + (uint64_t)(p - 1);
            ck_assert_int_eq((int32_t)rd32(a + 112 + 4 * r), ids[p]); /* row -> token */
            for (uint32_t i = 0; i < d; i++) {
                uint16_t h;
                memcpy(&h, a + off + (r * d + i) * 2, 2);
                float got = bf16(h), want = cap[p * FX_D + (int)i];
                double rel = fabs((double)got - want) / (fabs(want) + 1e-3);
                if (rel > max_rel)
                    max_rel = rel;
            }
        }
    }
    /* bf16 keeps 8 significant bits: half an ulp is 2^-8 relative */
    ck_assert_msg(max_rel <= 1.0 / 256 + 1e-6, "max relative error %g", max_rel);
    ct_model_free(model);
    free(a);
    free(t);
}

/* s = sqrt(d) / mean norm over the first 16 train sequences (4 batches of 4). */
static double reference_scale(fx_world *w, int m)
{
    char label[64];
    snprintf(label, sizeof label, "extract/%c/train/0000", 'a' + m);
    size_t len;
    char *a = artifact(w, label, &len);
    uint64_t off = rd64(a + 40);
    double sum = 0;
    for (uint64_t r = 0; r < 16 * 15; r++) {
        double sq = 0;
        for (int i = 0; i < FX_D; i++) {
            uint16_t h;
            memcpy(&h, a + off + (r * FX_D + (uint64_t)i) * 2, 2);
            sq += (double)bf16(h) * bf16(h);
        }
        sum += sqrt(sq);
    }
    free(a);
    return sqrt((double)FX_D) / (sum / (16 * 15));
}

static void check_scale_and_model(fx_world *w)
{
    double s[2];
    for (int m = 0; m < 2; m++) {
        char label[64];
        snprintf(label, sizeof label, "scale/%c", 'a' + m);
        size_t len;
        char *text = artifact(w, label, &len);
        json_t *o = json_loads(text, 0, NULL);
        ck_assert_ptr_nonnull(o);
        s[m] = json_number_value(json_object_get(o, "scale"));
        double ref = reference_scale(w, m);
        ck_assert_msg(fabs(s[m] - ref) <= 1e-9 * ref, "scale %.12g vs %.12g", s[m], ref);
        ck_assert_int_eq(json_integer_value(json_object_get(o, "rows")), 240);
        json_decref(o);
        free(text);
    }
    size_t len;
    char *a = artifact(w, "train/a-b/seed1", &len);
    ck_assert_int_eq(memcmp(a, "CTCCTRND", 8), 0);
    uint64_t ml = rd64(a + 16), xl = rd64(a + 24);
    ck_assert_uint_eq(len, 32 + ml + xl);
    ct_crosscoder *cc;
    ck_assert_msg(ct_cc_load(a + 32, ml, "train artifact", &cc) == 0, "%s", ct_error_message());
    ck_assert_int_eq(cc->cfg.M, 2);
    ck_assert_int_eq(cc->cfg.d, FX_D);
    ck_assert_int_eq(cc->cfg.H, 64);
    ck_assert_int_eq(cc->cfg.steps, 75);
    for (int m = 0; m < 2; m++)
        ck_assert_float_eq_tol(cc->scale[m], (float)s[m], 1e-6f * (float)s[m]);
    for (size_t i = 0; i < cc->n_params; i++)
        ck_assert(isfinite(cc->mem[i]));
    ct_cc_free(cc);
    /* metrics: JSON lines, every number finite, train and val lines present */
    char *metrics = strndup(a + 32 + ml, xl);
    int lines = 0, val = 0;
    double first_l2 = -1, last_l2 = -1;
    for (char *save, *line = strtok_r(metrics, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *o = json_loads(line, 0, NULL);
        ck_assert_msg(o != NULL, "bad metrics line %s", line);
        const char *k;
        json_t *v;
        json_object_foreach(o, k, v) {
            if (json_is_number(v))
                ck_assert_msg(isfinite(json_number_value(v)), "%s: %s", k, line);
        }
        const char *split = json_string_value(json_object_get(o, "split"));
        ck_assert_ptr_nonnull(split);
        if (strcmp(split, "val") == 0) {
            val++;
            ck_assert_int_eq(json_integer_value(json_object_get(o, "rows")), 8 * 15); /* all val rows */
        } else {
            double l2 = json_number_value(json_object_get(o, "l2"));
            if (first_l2 < 0)
                first_l2 = l2;
            last_l2 = l2;
        }
        lines++;
        json_decref(o);
    }
    ck_assert_int_ge(lines, 5);
    ck_assert_int_ge(val, 1);
    ck_assert_msg(last_l2 < 0.9 * first_l2, "reconstruction did not improve: %g -> %g", first_l2, last_l2);
    free(metrics);
    free(a);
}

/* `export crosscoder` writes the artifact's weights under the reference's names. */
static void check_export(fx_world *w, const fx_env *e)
{
    size_t idx, len;
    ck_assert_int_eq(ct_plan_find(w->plan, "train/a-b/seed1", &idx), 0);
    char hex[65], st_path[PATH_MAX + 32], json_path[PATH_MAX + 32];
    ct_key_hex(ct_plan_get(w->plan, idx)->key, hex);
    hex[16] = '\0';
    snprintf(st_path, sizeof st_path, "%s/cc.safetensors", e->dir);
    snprintf(json_path, sizeof json_path, "%s/cc.json", e->dir);
    int rc = ct_cli(out, sizeof out, "export crosscoder %s --out %s --cache %s", hex, st_path, e->cache);
    ck_assert_msg(rc == 0, "%s", out);
    char *a = artifact(w, "train/a-b/seed1", &len);
    ct_crosscoder *cc;
    ck_assert_int_eq(ct_cc_load(a + 32, rd64(a + 16), "train artifact", &cc), 0);
    ct_safetensors *st;
    ck_assert_msg(ct_safetensors_open(st_path, &st) == 0, "%s", ct_error_message());
    ct_tensor_view v;
    ck_assert_int_eq(ct_safetensors_find(st, "W_enc", &v), 0);
    ck_assert_int_eq(v.ndim, 3);
    ck_assert_int_eq(v.shape[0], 2);
    ck_assert_int_eq(v.shape[1], FX_D);
    ck_assert_int_eq(v.shape[2], 64);
    ck_assert_int_eq(memcmp(v.data, cc->p.W_enc, v.nbytes), 0);
    ck_assert_int_eq(ct_safetensors_find(st, "W_dec", &v), 0);
    ck_assert_int_eq(v.shape[0], 64);
    ck_assert_int_eq(memcmp(v.data, cc->p.W_dec, v.nbytes), 0);
    ct_safetensors_close(st);
    json_t *cfg = json_load_file(json_path, 0, NULL);
    ck_assert_ptr_nonnull(cfg);
    json_t *nf = json_object_get(cfg, "normalisation_factors");
    ck_assert_int_eq(json_array_size(nf), 2);
    ck_assert_float_eq_tol(json_number_value(json_array_get(nf, 1)), cc->scale[1], 1e-6);
    json_decref(cfg);
    ct_cc_free(cc);
    free(a);

    /* import into another cache, export again: the same bytes; the root keeps it */
    char cache2[PATH_MAX + 32], st2[PATH_MAX + 32], json2[PATH_MAX + 32], key[80];
    snprintf(cache2, sizeof cache2, "%s/import-cache", e->dir);
    snprintf(st2, sizeof st2, "%s/cc2.safetensors", e->dir);
    snprintf(json2, sizeof json2, "%s/cc2.json", e->dir);
    rc = ct_cli(out, sizeof out, "import crosscoder %s --cache %s", st_path, cache2);
    ck_assert_msg(rc == 0 && strlen(out) == 65, "%s", out);
    snprintf(key, sizeof key, "%.16s", out);
    rc = ct_cli(out, sizeof out, "export crosscoder %s --out %s --cache %s", key, st2, cache2);
    ck_assert_msg(rc == 0, "%s", out);
    char *x, *y;
    size_t nx, ny;
    ck_assert_int_eq(ct_read_file(st_path, &x, &nx), 0);
    ck_assert_int_eq(ct_read_file(st2, &y, &ny), 0);
    ck_assert(nx == ny && memcmp(x, y, nx) == 0);
    free(x);
    free(y);
    ck_assert_int_eq(ct_cli(out, sizeof out, "cache gc --cache %s", cache2), 0);
    ck_assert_msg(strstr(out, "removed 0 entries"), "%s", out);
    rc = ct_cli(out, sizeof out, "import crosscoder %s --cache %s", json_path, cache2);
    ck_assert_int_ne(rc, 0); /* not a safetensors file */

    /* an entry that is not a crosscoder is refused */
    ck_assert_int_eq(ct_plan_find(w->plan, "scale/a", &idx), 0);
    ct_key_hex(ct_plan_get(w->plan, idx)->key, hex);
    hex[16] = '\0';
    rc = ct_cli(out, sizeof out, "export crosscoder %s --out %s/x.safetensors --cache %s", hex, e->dir, e->cache);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(out, "not a trained crosscoder"), "%s", out);
}

/* The train artifact's digest as `cache ls --json` reports it. */
static void train_digest(const fx_env *e, char *digest, size_t n)
{
    int rc = ct_cli(out, sizeof out, "cache ls --json --cache %s", e->cache);
    ck_assert_msg(rc == 0, "%s", out);
    digest[0] = '\0';
    for (char *save, *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *o = json_loads(line, 0, NULL);
        if (!o)
            continue;
        json_t *rec = json_object_get(o, "record");
        const char *label = json_string_value(json_object_get(rec, "label"));
        if (label && strcmp(label, "train/a-b/seed1") == 0) {
            const char *dg = json_string_value(json_object_get(json_object_get(rec, "blob"), "sha256"));
            ck_assert_ptr_nonnull(dg);
            snprintf(digest, n, "%s", dg);
        }
        json_decref(o);
    }
    ck_assert_msg(digest[0], "no train entry in the cache listing");
}

/* Runner lines "[i/n] computed LABEL (KIND) ..." of one kind. */
static int count_runs(const char *text, const char *kind)
{
    char pat[64];
    snprintf(pat, sizeof pat, " (%s) ", kind);
    int n = 0;
    for (const char *p = text; (p = strstr(p, "] computed ")); p++) {
        const char *eol = strchr(p, '\n'), *k = strstr(p, pat);
        n += k && (!eol || k < eol);
    }
    return n;
}

/* Plan lines "  STATUS KEY LABEL KIND ..." with that status and kind. */
static int count_plan(const char *text, const char *status, const char *kind)
{
    int n = 0;
    const char *p = text;
    while (*p) {
        char st[16], key[32], label[256], k[64];
        if (sscanf(p, "%15s %31s %255s %63s", st, key, label, k) == 4 && strcmp(st, status) == 0 &&
            strcmp(k, kind) == 0 && strlen(key) == 12)
            n++;
        const char *eol = strchr(p, '\n');
        if (!eol)
            break;
        p = eol + 1;
    }
    return n;
}

START_TEST(pipeline_end_to_end)
{
    fx_env e;
    fx_setup(&e, "steps");
    fx_write_recipe(&e, "corpus.txt");
    int rc = ct_cli(out, sizeof out, "run %s --cache %s", e.recipe, e.cache);
    ck_assert_msg(rc == 0, "run failed: %s", out);
    ck_assert_msg(strstr(out, " 0 failed"), "%s", out);
    /* 1 index + 7 token shards + 2 x 6 activation shards + 2 scales + 1 train */
    ck_assert_int_eq(count_runs(out, "tokenize_index"), 1);
    ck_assert_int_eq(count_runs(out, "tokenize"), 7);
    ck_assert_int_eq(count_runs(out, "extract"), 12);
    ck_assert_int_eq(count_runs(out, "scale"), 2);
    ck_assert_int_eq(count_runs(out, "train"), 1);
    rc = ct_cli(out, sizeof out, "run %s --cache %s", e.recipe, e.cache);
    ck_assert_msg(rc == 0 && strstr(out, " 0 computed"), "second run: %s", out);

    fx_world w;
    fx_world_open(&w, &e, NULL);
    check_tokens(&w, &e);
    check_activations(&w, &e, 0);
    check_activations(&w, &e, 1);
    check_scale_and_model(&w);
    check_export(&w, &e);
    fx_world_close(&w);

    /* a new learning rate reruns the train step only */
    rc = ct_cli(out, sizeof out, "plan %s --cache %s --set crosscoder.lr=2e-3", e.recipe, e.cache);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_int_eq(count_plan(out, "run", "train"), 1);
    ck_assert_int_eq(count_plan(out, "cached", "train"), 0);
    const char *upstream[] = {"tokenize_index", "tokenize", "extract", "scale"};
    int n_up[] = {1, 7, 12, 2};
    for (int k = 0; k < 4; k++) {
        ck_assert_int_eq(count_plan(out, "run", upstream[k]), 0);
        ck_assert_int_eq(count_plan(out, "cached", upstream[k]), n_up[k]);
    }

    /* determinism: a second cache (filled by parallel steps) gives the same train
     * artifact; an interrupted and resumed run too */
    char d1[128], d2[128], d3[128];
    train_digest(&e, d1, sizeof d1);
    fx_env e2 = e;
    snprintf(e2.cache, sizeof e2.cache, "%s/cache2", e.dir);
    rc = ct_cli(out, sizeof out, "run %s --cache %s --jobs 3", e.recipe, e2.cache);
    ck_assert_msg(rc == 0, "%s", out);
    train_digest(&e2, d2, sizeof d2);
    ck_assert_str_eq(d1, d2);

    fx_env e3 = e;
    snprintf(e3.cache, sizeof e3.cache, "%s/cache3", e.dir);
    setenv("CT_TRAIN_INTERRUPT_AT", "31", 1);
    rc = ct_cli(out, sizeof out, "run %s --cache %s", e.recipe, e3.cache);
    unsetenv("CT_TRAIN_INTERRUPT_AT");
    ck_assert_msg(rc != 0 && strstr(out, "interrupted after step 31"), "%s", out);
    /* the resumed run computes the train step and what depends on it, nothing else:
     * exactly what the plan says is left to run */
    rc = ct_cli(out, sizeof out, "plan %s --cache %s", e.recipe, e3.cache);
    ck_assert_msg(rc == 0, "%s", out);
    const char *left = strstr(out, " cached, ");
    ck_assert_msg(left != NULL, "%s", out);
    char computed[64];
    snprintf(computed, sizeof computed, "%ld computed", strtol(left + 9, NULL, 10));
    ck_assert_msg(strstr(out, "train/") != NULL, "%s", out);
    rc = ct_cli(out, sizeof out, "run %s --cache %s -v", e.recipe, e3.cache);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strstr(out, "resumed after step 31"), "%s", out);
    ck_assert_msg(strstr(out, computed), "expected \"%s\":\n%s", computed, out);
    train_digest(&e3, d3, sizeof d3);
    ck_assert_str_eq(d1, d3);

    /* killed outright after step 40: the next run resumes from the state saved every
     * crosscoder.checkpoint_every (= 8) steps, i.e. after step 40, and ends bit-identical;
     * checkpoint_every is an option, not part of the key */
    fx_env e4 = e;
    snprintf(e4.cache, sizeof e4.cache, "%s/cache4", e.dir);
    setenv("CT_TRAIN_KILL_AT", "40", 1);
    rc = ct_cli(out, sizeof out, "run %s --cache %s --set crosscoder.checkpoint_every=8", e.recipe, e4.cache);
    unsetenv("CT_TRAIN_KILL_AT");
    ck_assert_msg(rc == 128 + SIGKILL, "%s", out);
    rc = ct_cli(out, sizeof out, "run %s --cache %s -v --set crosscoder.checkpoint_every=8", e.recipe, e4.cache);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strstr(out, "resumed after step 40"), "%s", out);
    train_digest(&e4, d3, sizeof d3);
    ck_assert_str_eq(d1, d3);
    rc = ct_cli(out, sizeof out, "plan %s --cache %s --set crosscoder.checkpoint_every=8", e.recipe, e.cache);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_int_eq(count_plan(out, "cached", "train"), 1);

    /* without model.tokenizer the first checkpoint's tokenizer.json is used: the same
     * file content gives the same keys, so the token steps stay cached */
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s/tokenizer.json'", e.tok, e.ck[0]);
    ck_assert_int_eq(system(cmd), 0);
    rc = ct_cli(out, sizeof out, "plan %s --cache %s --set model.tokenizer=null", e.recipe, e.cache);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_int_eq(count_plan(out, "cached", "tokenize_index"), 1);
    ck_assert_int_eq(count_plan(out, "cached", "tokenize"), 7);
    ck_assert_int_eq(count_plan(out, "run", "extract"), 6); /* checkpoint a's digest changed */
    ck_assert_int_eq(count_plan(out, "cached", "extract"), 6);
}
END_TEST

START_TEST(corpus_glob_matching_nothing)
{
    fx_env e;
    ct_test_tmpdir(e.dir, sizeof e.dir, "steps-glob");
    snprintf(e.recipe, sizeof e.recipe, "%s/recipe.yaml", e.dir);
    snprintf(e.cache, sizeof e.cache, "%s/cache", e.dir);
    snprintf(e.tok, sizeof e.tok, "%s/tokenizer.json", e.dir);
    FILE *f = fopen(e.tok, "w");
    fputs("{}", f);
    fclose(f);
    fx_write_recipe(&e, "nothing-here/*.txt.zst");
    /* plan lists it as missing and plans the rest; run fails naming it */
    int rc = ct_cli(out, sizeof out, "plan %s --cache %s", e.recipe, e.cache);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strstr(out, "corpus: no file matches") && strstr(out, "nothing-here/*.txt.zst"), "%s", out);
    rc = ct_cli(out, sizeof out, "run %s --cache %s", e.recipe, e.cache);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(out, "nothing-here/*.txt.zst"), "%s", out);
}
END_TEST

START_TEST(tokenizer_larger_than_model_vocab)
{
    fx_env e;
    fx_setup(&e, "steps-vocab");
    /* replace checkpoint b by one whose embedding has fewer rows than the tokenizer */
    char cmd[PATH_MAX * 2];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", e.ck[1]);
    ck_assert_int_eq(system(cmd), 0);
    fx_checkpoint(e.ck[1], 270, 7);
    fx_write_recipe(&e, "corpus.txt");
    int rc = ct_cli(out, sizeof out, "run %s --cache %s", e.recipe, e.cache);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(out, "outside the vocabulary of 270"), "%s", out);
    ck_assert_msg(strstr(out, "tokenizer does not match the checkpoint"), "%s", out);
}
END_TEST

/* Checkpoints not downloaded yet: `plan` still works, lists each missing one with the
 * command that downloads it, and plans what does not need them. */
START_TEST(missing_checkpoints_are_listed_with_download_commands)
{
    fx_env e;
    fx_setup(&e, "steps-missing");
    fx_write_recipe(&e, "corpus.txt");
    char hub[PATH_MAX + 16];
    snprintf(hub, sizeof hub, "%s/hub", e.dir);
    ck_assert_int_eq(mkdir(hub, 0755), 0);
    setenv("HF_HUB_CACHE", hub, 1);
    int rc = ct_cli(out, sizeof out,
                    "plan %s --cache %s --set model.checkpoints.1.source=hf:EleutherAI/pythia-1b@step64 "
                    "--set 'tasks=[blimp/regular_plural_subject_verb_agreement_1]'",
                    e.recipe, e.cache);
    unsetenv("HF_HUB_CACHE");
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strstr(out, "checkpoint b is not available"), "%s", out);
    ck_assert_msg(strstr(out, "huggingface-cli download EleutherAI/pythia-1b --revision step64"), "%s", out);
    ck_assert_int_eq(count_plan(out, "run", "extract"), 0); /* every crosscoder needs b */
    ck_assert_int_eq(count_plan(out, "run", "accuracy"), 1); /* checkpoint a's accuracy */
    ck_assert_int_eq(count_plan(out, "run", "tokenize_index"), 1);
    /* the note is given once, though extract and accuracy both found it missing */
    const char *first = strstr(out, "checkpoint b is not available");
    ck_assert_ptr_null(strstr(first + 1, "checkpoint b is not available"));
}
END_TEST

/* A recipe with a pretrain section: the tokenizer is trained on the corpus and used by
 * tokenize; the pretrain checkpoints themselves are not planned here. */
START_TEST(tokenizer_train_for_pretrain_recipes)
{
    fx_env e;
    fx_setup(&e, "steps-pretrain");
    FILE *f = fopen(e.recipe, "w");
    fputs("name: steps-pretrain\n"
          "model:\n"
          "  family: gpt-neox\n"
          "  checkpoints:\n"
          "    - {name: s10, source: 'pretrain:10', tokens: 100}\n"
          "    - {name: s20, source: 'pretrain:20', tokens: 200}\n"
          "layer: 1\n"
          "corpus: {files: [corpus.txt], seq_len: 16, train_sequences: 40, val_sequences: 8,\n"
          "         test_sequences: 4, shard_sequences: 32}\n"
          "pretrain:\n"
          "  tokenizer: {vocab_size: 350, min_frequency: 3}\n"
          "  model: {hidden: 32, layers: 2, heads: 4, ctx: 16}\n"
          "  batch_sequences: 4\n"
          "  steps: 20\n"
          "  save_steps: [10, 20]\n"
          "tuples: [[s10, s20]]\n",
          f);
    fclose(f);
    /* only these steps: later kinds may plan the pretraining itself */
    const char *only[3] = {"tokenizer", "tokenize/index", "tokenize/train/0000"};
    const char *kinds[3] = {"tokenizer_train", "tokenize_index", "tokenize"};
    for (int k = 0; k < 3; k++) {
        int rc = ct_cli(out, sizeof out, "run %s --cache %s --only %s", e.recipe, e.cache, only[k]);
        ck_assert_msg(rc == 0, "%s", out);
        ck_assert_int_eq(count_runs(out, kinds[k]), 1);
    }

    /* the same training done here directly on the corpus file's lines */
    ct_tok_train_opts o = CT_TOK_TRAIN_OPTS_INIT;
    o.vocab_size = 350;
    o.min_frequency = 3;
    ct_tok_trainer *t;
    ck_assert_int_eq(ct_tok_trainer_new(&o, &t), 0);
    f = fopen(e.corpus, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0)
        ck_assert_int_eq(ct_tok_trainer_feed(t, line, (size_t)n - 1), 0);
    fclose(f);
    free(line);
    ck_assert_int_eq(ct_tok_trainer_train(t), 0);
    char *want;
    size_t wlen;
    ck_assert_int_eq(ct_tok_trainer_json(t, &want, &wlen), 0);
    ct_tok_trainer_free(t);

    fx_world w;
    fx_world_open(&w, &e, NULL);
    size_t len;
    char *got = artifact(&w, "tokenizer", &len);
    ck_assert_uint_eq(len, wlen);
    ck_assert_int_eq(memcmp(got, want, len), 0);
    /* the token shards use it */
    ct_tokenizer *tok;
    ck_assert_int_eq(ct_tok_load_json(want, wlen, "trained", &tok), 0);
    char *a = artifact(&w, "tokenize/train/0000", &len);
    uint64_t ns = rd64(a + 16);
    ck_assert_uint_eq(ns, 32);
    uint64_t doc = rd64(a + 24 + ns * 16 * 4 + ns * 8);
    size_t nd;
    int32_t *ref = doc_ids(&e, tok, doc, &nd);
    ck_assert_uint_ge(nd, 16);
    for (int i = 0; i < 16; i++)
        ck_assert_int_eq((int32_t)rd32(a + 24 + 4 * (size_t)i), ref[i]);
    free(ref);
    free(a);
    free(got);
    free(want);
    ct_tok_free(tok);
    fx_world_close(&w);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("steps");
    TCase *tc = tcase_create("steps");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, pipeline_end_to_end);
    tcase_add_test(tc, corpus_glob_matching_nothing);
    tcase_add_test(tc, missing_checkpoints_are_listed_with_download_commands);
    tcase_add_test(tc, tokenizer_larger_than_model_vocab);
    tcase_add_test(tc, tokenizer_train_for_pretrain_recipes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return ct_test_run(suite()); }

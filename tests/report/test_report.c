/* The annotate and report step kinds and `crosstime report`, end to end through the
 * CLI on the tiny world of tests/steps/fixture.h (two random GPT-NeoX checkpoints, one
 * crosscoder, one BLiMP task capped at a few examples).
 *
 * The annotate artifact is checked against an independent computation: every
 * held-out row of the activation shards encoded in double precision with the folded
 * crosscoder, the top activations of each annotated latent found by brute force. The
 * page is checked for its sections, plots, highlighted contexts, provenance keys, the
 * absence of scripts and network references, and identical bytes on a second render.
 * It is left in $CT_BINARY_DIR/test-artifacts/report/ for the browser test. */
#include "tests/steps/fixture.h"
#include "tests/support/cli.h"

#include "cache/cache.h"
#include "common/io.h"
#include "crosscoder/crosscoder.h"
#include "pipeline/key.h"
#include "pipeline/plan.h"
#include "pipeline/steps/shard.h"

#include <jansson.h>

static char out[1 << 20];

/* Result tables inside a step (pipeline/steps/report.c): once the runner provides it,
 * the report step's page must be the very page `crosstime report` writes. */
extern int ct_step_results(ct_step_ctx *ctx, const char *table, json_t **out) __attribute__((weak));

static const char *const section_ids[] = {"accuracy", "crosscoders", "relie", "validation",
                                          "overlap", "latents", "provenance"};

static const char extra_recipe[] = "tasks: [blimp/regular_plural_subject_verb_agreement_1]\n"
                                   "relie: {max_examples: 8, batch_size: 4, top_k: 3}\n"
                                   "annotate: {sequences: 1000, top_contexts: 5, context_tokens: 8}\n";

static void artifact_dir(char *buf, size_t n)
{
    const char *bin = getenv("CT_BINARY_DIR");
    snprintf(buf, n, "%s/test-artifacts/report", bin && *bin ? bin : ".");
    ck_assert_int_eq(ct_mkdirs(buf, 0755), 0);
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void check_page_shape(const char *html)
{
    ck_assert_msg(strncmp(html, "<!DOCTYPE html>", 15) == 0, "not an HTML page: %.40s", html);
    for (size_t i = 0; i < sizeof section_ids / sizeof *section_ids; i++) {
        char id[64];
        snprintf(id, sizeof id, "<section id=\"%s\">", section_ids[i]);
        ck_assert_msg(strstr(html, id), "section %s is missing", section_ids[i]);
    }
    /* self-contained: no script, no external resource */
    ck_assert_ptr_null(strstr(html, "<script"));
    ck_assert_ptr_null(strstr(html, " src="));
    ck_assert_ptr_null(strstr(html, "<link"));
    ck_assert_uint_eq(count(html, "http"), count(html, "http://www.w3.org/2000/svg"));
    ck_assert_uint_eq(count(html, "<svg"), count(html, "</svg>"));
}

static char *read_page(const char *path)
{
    char *html;
    size_t len;
    ck_assert_msg(ct_read_file(path, &html, &len) == 0, "%s", ct_error_message());
    ck_assert_uint_eq(strlen(html), len);
    return html;
}

static const ct_plan_step *step(fx_world *w, const char *label)
{
    size_t idx;
    ck_assert_msg(ct_plan_find(w->plan, label, &idx) == 0, "no step %s", label);
    const ct_plan_step *s = ct_plan_get(w->plan, idx);
    ck_assert_msg(s->cached, "%s is not cached", label);
    return s;
}

static char *artifact(fx_world *w, const char *label, size_t *len)
{
    char *data;
    ck_assert_int_eq(ct_cache_read_all(w->cache, step(w, label)->key, &data, len), 0);
    return data;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

/* The held-out rows of checkpoint `ck` as doubles (the only val shard of the world). */
typedef struct {
    uint32_t d, seq_len;
    uint64_t rows;
    double *x;
    int32_t *tokens;
} rows_t;

static void read_rows(fx_world *w, const char *ck, rows_t *r)
{
    char label[128];
    size_t len;
    snprintf(label, sizeof label, "extract/%s/val/0000", ck);
    uint8_t *b = (uint8_t *)artifact(w, label, &len);
    ck_assert(memcmp(b, "CTACTSHD", 8) == 0);
    uint32_t dtype = le32(b + 12);
    r->d = le32(b + 16);
    r->seq_len = le32(b + 20);
    r->rows = le64(b + 32);
    uint64_t off = le64(b + 40);
    ck_assert_uint_eq(len, off + r->rows * r->d * 2);
    r->x = malloc(r->rows * r->d * sizeof *r->x);
    r->tokens = malloc(r->rows * sizeof *r->tokens);
    for (uint64_t i = 0; i < r->rows; i++)
        r->tokens[i] = (int32_t)le32(b + 112 + 4 * i);
    for (uint64_t i = 0; i < r->rows * r->d; i++) {
        uint16_t h = (uint16_t)(b[off + 2 * i] | b[off + 2 * i + 1] << 8);
        ck_assert_uint_eq(dtype, 1); /* bf16: the upper half of a float */
        uint32_t u = (uint32_t)h << 16;
        float f;
        memcpy(&f, &u, 4);
        r->x[i] = f;
    }
    free(b);
}

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

static void check_annotate(fx_world *w)
{
    size_t len;
    char *text = artifact(w, "annotate/a-b/seed1", &len);
    json_t *ann = json_loadb(text, len, 0, NULL);
    free(text);
    ck_assert_ptr_nonnull(ann);
    ck_assert_str_eq(json_string_value(json_object_get(ann, "selection")), "validate");
    /* the selected latents are the union of the validate step's */
    json_t *vrec;
    const char *validate = "validate/a-b/seed1/blimp/regular_plural_subject_verb_agreement_1";
    ck_assert_int_eq(ct_cache_get(w->cache, step(w, validate)->key, &vrec), 0);
    json_t *vl = json_object_get(json_object_get(vrec, "summary"), "latents"), *l;
    size_t i, k;
    ck_assert_uint_gt(json_array_size(vl), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(ann, "latents")), json_array_size(vl));
    json_array_foreach(vl, i, l) {
        int found = 0;
        json_t *a;
        json_int_t j = json_integer_value(json_object_get(l, "latent"));
        json_array_foreach(json_object_get(ann, "latents"), k, a)
            found |= json_integer_value(json_object_get(a, "latent")) == j;
        ck_assert_msg(found, "validated latent %lld is not annotated", (long long)j);
    }
    json_decref(vrec);

    /* reference: the folded crosscoder on every held-out row, in double */
    char *train = artifact(w, "train/a-b/seed1", &len);
    const void *model;
    const char *metrics;
    size_t mlen, xlen;
    ck_assert_int_eq(ct_steps_train_parse(train, len, "train", &model, &mlen, &metrics, &xlen), 0);
    ct_crosscoder *cc;
    ck_assert_int_eq(ct_cc_load(model, mlen, "cc", &cc), 0);
    free(train);
    ck_assert_int_eq(ct_cc_fold(cc), 0);
    rows_t rows[2];
    read_rows(w, "a", &rows[0]);
    read_rows(w, "b", &rows[1]);
    ck_assert_uint_eq(rows[0].rows, rows[1].rows);
    int d = cc->cfg.d, H = cc->cfg.H;
    uint32_t R = rows[0].seq_len - 1;
    ck_assert_uint_eq(json_integer_value(json_object_get(ann, "sequences")), rows[0].rows / R);
    double *ref = malloc(rows[0].rows * sizeof *ref);
    size_t checked = 0;
    json_t *a;
    json_array_foreach(json_object_get(ann, "latents"), i, a) {
        int j = (int)json_integer_value(json_object_get(a, "latent"));
        ck_assert(j >= 0 && j < H);
        for (int m = 0; m < 2; m++) {
            size_t n = 0;
            for (uint64_t r = 0; r < rows[m].rows; r++) {
                double s = cc->p.b_enc[j];
                for (int e = 0; e < d; e++)
                    s += rows[m].x[r * d + e] * cc->p.W_enc[((size_t)m * d + e) * H + j];
                if (s > 0)
                    ref[n++] = s;
            }
            qsort(ref, n, sizeof *ref, cmp_desc);
            json_t *ctxs = json_array_get(json_object_get(a, "contexts"), (size_t)m), *c;
            ck_assert_uint_eq(json_array_size(ctxs), n < 5 ? n : 5);
            json_array_foreach(ctxs, k, c) {
                double act = json_number_value(json_object_get(c, "act"));
                ck_assert_msg(fabs(act - ref[k]) <= 1e-3 * (1 + fabs(ref[k])), "latent %d ck %d #%zu: %g vs %g", j, m,
                              k, act, ref[k]);
                /* the stored position is where that activation is */
                uint64_t seq = (uint64_t)json_integer_value(json_object_get(c, "seq"));
                uint64_t pos = (uint64_t)json_integer_value(json_object_get(c, "pos"));
                ck_assert(pos >= 1 && pos < rows[m].seq_len);
                uint64_t r = seq * R + pos - 1;
                double s = cc->p.b_enc[j];
                for (int e = 0; e < d; e++)
                    s += rows[m].x[r * d + e] * cc->p.W_enc[((size_t)m * d + e) * H + j];
                ck_assert_double_eq_tol(act, s, 1e-3 * (1 + fabs(s)));
                /* the highlighted token is the token at that position */
                json_t *ids = json_object_get(c, "ids");
                long long fire = json_integer_value(json_object_get(c, "fire"));
                ck_assert(fire >= 0 && (size_t)fire < json_array_size(ids));
                ck_assert_int_eq(json_integer_value(json_array_get(ids, (size_t)fire)), rows[m].tokens[r]);
                ck_assert_uint_eq(json_array_size(json_object_get(c, "pieces")), json_array_size(ids));
                ck_assert_uint_le(json_array_size(ids), 8);
                checked++;
            }
        }
    }
    ck_assert_uint_gt(checked, 0);
    free(ref);
    for (int m = 0; m < 2; m++) {
        free(rows[m].x);
        free(rows[m].tokens);
    }
    ct_cc_free(cc);
    json_decref(ann);
}

START_TEST(report_end_to_end)
{
    fx_env e;
    fx_setup(&e, "report");
    fx_write_recipe(&e, e.corpus);
    FILE *f = fopen(e.recipe, "a");
    ck_assert_ptr_nonnull(f);
    fputs(extra_recipe, f);
    fclose(f);
    char dir[PATH_MAX], page[PATH_MAX + 64], again[PATH_MAX + 64];
    artifact_dir(dir, sizeof dir);

    /* before anything ran: every section is there and says what is missing */
    snprintf(page, sizeof page, "%s/empty.html", dir);
    int rc = ct_cli(out, sizeof out, "report %s --cache %s --out %s", e.recipe, e.cache, page);
    ck_assert_msg(rc == 0, "report on an empty cache: %s", out);
    char *html = read_page(page);
    check_page_shape(html);
    ck_assert_uint_ge(count(html, "not computed yet"), 5);
    free(html);

    rc = ct_cli(out, sizeof out, "run %s --cache %s -q", e.recipe, e.cache);
    ck_assert_msg(rc == 0, "run: %s", out);

    snprintf(page, sizeof page, "%s/tiny.html", dir);
    rc = ct_cli(out, sizeof out, "report %s --cache %s --out %s", e.recipe, e.cache, page);
    ck_assert_msg(rc == 0, "report: %s", out);
    html = read_page(page);
    check_page_shape(html);
    /* accuracy, 3 training curves, scatter, classes, IE trajectories, validation scatter,
     * and an IE plot per latent at least */
    ck_assert_uint_ge(count(html, "<svg"), 9);
    static const char *const plots[] = {"plot-accuracy", "plot-loss-a-b/seed1", "plot-l0-a-b/seed1",
                                        "plot-ev-a-b/seed1", "plot-relie-a-b/seed1", "plot-classes-a-b/seed1"};
    for (size_t i = 0; i < sizeof plots / sizeof *plots; i++) {
        char id[128];
        snprintf(id, sizeof id, "id=\"%s\"", plots[i]);
        ck_assert_msg(strstr(html, id), "plot %s is missing", plots[i]);
    }
    ck_assert_ptr_nonnull(strstr(html, "<mark>"));
    ck_assert_ptr_nonnull(strstr(html, "id=\"latent-a-b/seed1-"));
    ck_assert_ptr_nonnull(strstr(html, "training tokens (log scale)"));

    fx_world w;
    fx_world_open(&w, &e, NULL);
    /* provenance: the key of every step the report reads is on the page */
    static const char *const labels[] = {"train/a-b/seed1", "annotate/a-b/seed1",
                                         "accuracy/blimp/regular_plural_subject_verb_agreement_1/a"};
    for (size_t i = 0; i < sizeof labels / sizeof *labels; i++) {
        char hex[CT_KEY_HEX_LEN + 1], attr[CT_KEY_HEX_LEN + 16];
        ct_key_hex(step(&w, labels[i])->key, hex);
        snprintf(attr, sizeof attr, "title=\"%s\"", hex);
        ck_assert_msg(strstr(html, attr), "the key of %s is not on the page", labels[i]);
    }

    /* the same cache, the same bytes */
    snprintf(again, sizeof again, "%s/tiny-again.html", dir);
    rc = ct_cli(out, sizeof out, "report %s --cache %s --out %s", e.recipe, e.cache, again);
    ck_assert_int_eq(rc, 0);
    char *html2 = read_page(again);
    ck_assert_msg(strcmp(html, html2) == 0, "two renders of the same cache differ");
    free(html2);
    unlink(again);

    /* the report step: planned last, its artifact is a page of the same sections */
    ck_assert_str_eq(ct_plan_get(w.plan, ct_plan_size(w.plan) - 1)->label, "report");
    size_t len;
    char *stored = artifact(&w, "report", &len);
    check_page_shape(stored);
    ck_assert_ptr_nonnull(strstr(stored, "<mark>"));
    ck_assert_ptr_nonnull(strstr(stored, "id=\"plot-loss-a-b/seed1\""));
    if (ct_step_results)
        ck_assert_msg(strcmp(stored, html) == 0, "the report step's page differs from crosstime report's");
    free(stored);

    check_annotate(&w);
    fx_world_close(&w);
    free(html);
}
END_TEST

START_TEST(report_usage_errors)
{
    ck_assert_int_eq(ct_cli(out, sizeof out, "report --bogus"), 2);
    ck_assert_ptr_nonnull(strstr(out, "usage: crosstime report"));
    int rc = ct_cli(out, sizeof out, "report /nonexistent/recipe.yaml --cache /tmp/ct-none --out /tmp/x.html");
    ck_assert_int_eq(rc, 1);
    ck_assert_ptr_nonnull(strstr(out, "recipe.yaml"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("report");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, report_end_to_end);
    tcase_add_test(tc, report_usage_errors);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

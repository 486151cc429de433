/* The training-row source over activation shards (pipeline/steps/actsource.c), probed
 * from inside a step: every epoch yields each aligned row exactly once, with the
 * stored values times the factors; epochs are shuffled differently; seek replays; the
 * unshuffled source is storage order. Many small shards make batches cross shard
 * groups and epochs. */
#include "tests/steps/fixture.h"

#include "pipeline/plan.h"
#include "pipeline/recipe/recipe.h"
#include "pipeline/runner.h"
#include "pipeline/step.h"
#include "pipeline/steps/actsource.h"

#include <jansson.h>

#define M 2
#define ROW (M * FX_D)

static char failure[1024];

#define PROBE(cond, ...)                                                                                 \
    do {                                                                                                 \
        if (!(cond) && !failure[0]) {                                                                    \
            snprintf(failure, sizeof failure, __VA_ARGS__);                                              \
        }                                                                                                \
    } while (0)

static int cmp_row(const void *a, const void *b) { return memcmp(a, b, ROW * sizeof(float)); }

/* All rows of inputs train_0/train_1 in storage order, read independently. */
static float *reference_rows(ct_step_ctx *ctx, const float *scale, size_t *n_rows)
{
    size_t K = ct_step_input_count(ctx, "train_0"), n = 0, cap = 0;
    float *rows = NULL;
    for (size_t k = 0; k < K; k++) {
        char *blob[M];
        uint64_t nr = 0, off = 0;
        for (int m = 0; m < M; m++) {
            ct_blob_reader *r;
            char name[16];
            snprintf(name, sizeof name, "train_%d", m);
            if (ct_step_input(ctx, name, k, &r))
                return NULL;
            blob[m] = malloc(ct_blob_size(r));
            ct_blob_read_at(r, 0, blob[m], ct_blob_size(r));
            ct_blob_reader_close(r);
            memcpy(&nr, blob[m] + 32, 8);
            memcpy(&off, blob[m] + 40, 8);
        }
        if (n + nr > cap) {
            cap = (n + nr) * 2;
            rows = realloc(rows, cap * ROW * sizeof(float));
        }
        for (uint64_t r = 0; r < nr; r++, n++)
            for (int m = 0; m < M; m++)
                for (int i = 0; i < FX_D; i++) {
                    uint16_t h;
                    memcpy(&h, blob[m] + off + (r * FX_D + (uint64_t)i) * 2, 2);
                    uint32_t u = (uint32_t)h << 16;
                    float x;
                    memcpy(&x, &u, 4);
                    rows[n * ROW + (size_t)m * FX_D + (size_t)i] = x * scale[m];
                }
        for (int m = 0; m < M; m++)
            free(blob[m]);
    }
    *n_rows = n;
    return rows;
}

static int probe_run(ct_step_ctx *ctx)
{
    const float scale[M] = {0.5f, 3.0f};
    size_t N = 0;
    float *ref = reference_rows(ctx, scale, &N);
    PROBE(ref && N == 320 * 15, "reference rows: %zu", N);
    if (!ref)
        return CT_EINVAL;

    /* storage order without shuffle */
    ct_cc_source src;
    int rc = ct_steps_actsource_open(ctx, "train", M, scale, 9, 0, &src);
    PROBE(rc == 0, "open: %s", ct_error_message());
    PROBE(ct_steps_actsource_rows(&src) == N, "rows per epoch %llu", (unsigned long long)ct_steps_actsource_rows(&src));
    float *got = malloc((2 * N + 300) * ROW * sizeof(float));
    size_t done = 0;
    while (!rc && done < N) {
        size_t b = N - done < 97 ? N - done : 97;
        rc = src.next(src.ctx, got + done * ROW, b);
        done += b;
    }
    PROBE(rc == 0 && memcmp(got, ref, N * ROW * sizeof(float)) == 0, "unshuffled rows differ from storage order");
    ct_cc_source_close(&src);

    /* shuffled: two epochs and a bit, in batches of 61 that cross groups and epochs */
    rc = ct_steps_actsource_open(ctx, "train", M, scale, 9, 1, &src);
    ct_cc_cursor mid = {0, 0};
    size_t mid_at = 0;
    done = 0;
    while (!rc && done < 2 * N + 150) {
        if (!mid_at && done >= N + 500) {
            src.tell(src.ctx, &mid);
            mid_at = done;
        }
        rc = src.next(src.ctx, got + done * ROW, 61);
        done += 61;
    }
    PROBE(rc == 0, "next: %s", ct_error_message());
    PROBE(mid.epoch == 1 && mid.index == mid_at - N, "cursor (%llu, %llu) at row %zu",
          (unsigned long long)mid.epoch, (unsigned long long)mid.index, mid_at);
    PROBE(memcmp(got, ref, 200 * ROW * sizeof(float)) != 0, "epoch 0 is not shuffled");
    PROBE(memcmp(got, got + N * ROW, 200 * ROW * sizeof(float)) != 0, "epochs 0 and 1 have the same order");
    /* seek replays from the cursor */
    float *again = malloc(300 * ROW * sizeof(float));
    PROBE(src.seek(src.ctx, &mid) == 0, "seek");
    PROBE(src.next(src.ctx, again, 300) == 0, "next after seek");
    PROBE(memcmp(again, got + mid_at * ROW, 300 * ROW * sizeof(float)) == 0, "seek does not replay");
    free(again);
    ct_cc_source_close(&src);
    /* each epoch is a permutation of the rows: same multiset */
    qsort(ref, N, ROW * sizeof(float), cmp_row);
    for (int e = 0; e < 2; e++) {
        qsort(got + (size_t)e * N * ROW, N, ROW * sizeof(float), cmp_row);
        PROBE(memcmp(got + (size_t)e * N * ROW, ref, N * ROW * sizeof(float)) == 0,
              "epoch %d is not a permutation of the rows", e);
    }
    free(got);
    free(ref);
    return failure[0] ? CT_EINVAL : 0;
}

static const ct_step_kind probe_kind = {
    .name = "actsource_probe", .version = 1, .summary = "test probe", .plan = NULL, .run = probe_run,
    .internal = 1, .bundle = CT_BUNDLE_NEVER,
};

START_TEST(rows_once_per_epoch_scaled_and_replayable)
{
    fx_env e;
    fx_setup(&e, "actsource");
    fx_write_recipe(&e, "corpus.txt");
    ct_steps_register_builtin();
    ct_step_register(&probe_kind);
    ct_recipe_options ro = CT_RECIPE_OPTIONS_INIT;
    const char *sets[] = {"corpus.shard_sequences=8"}; /* 40 train shards: 3 groups */
    ro.sets = sets;
    ro.n_sets = 1;
    ct_recipe *r;
    ck_assert_msg(ct_recipe_load(e.recipe, &ro, &r) == 0, "%s", ct_error_message());
    ct_cache_options co = CT_CACHE_OPTIONS_INIT;
    co.dir = e.cache;
    ct_cache *cache;
    ck_assert_int_eq(ct_cache_open(&co, &cache), 0);
    ct_plan *plan;
    ck_assert_msg(ct_plan_build(r, cache, &plan) == 0, "%s", ct_error_message());
    json_t *tr[M];
    for (int m = 0; m < M; m++) {
        tr[m] = json_array();
        for (int k = 0; k < 40; k++) {
            char label[64];
            snprintf(label, sizeof label, "extract/%c/train/%04d", 'a' + m, k);
            json_array_append_new(tr[m], json_string(label));
        }
    }
    ck_assert_msg(ct_plan_add(plan, "actsource_probe", "probe", NULL,
                              json_pack("{s:o, s:o}", "train_0", tr[0], "train_1", tr[1])) == 0,
                  "%s", ct_error_message());
    ct_run_options o = CT_RUN_OPTIONS_INIT;
    o.quiet = 1;
    ct_run_stats st;
    int rc = ct_run(plan, cache, &o, &st);
    ck_assert_msg(!failure[0], "%s", failure);
    ck_assert_msg(rc == 0, "%s", ct_error_message());
    ck_assert_uint_eq(st.failed, 0);
    ct_plan_free(plan);
    ct_cache_close(cache);
    ct_recipe_free(r);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("actsource");
    TCase *tc = tcase_create("actsource");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, rows_once_per_epoch_scaled_and_replayable);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return ct_test_run(suite()); }

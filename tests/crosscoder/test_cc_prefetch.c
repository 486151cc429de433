/* Reading ahead (crosscoder/prefetch.h): the prefetcher hands out exactly the batches
 * and positions of reading the source directly, leaves the source where a direct reader
 * would be when stopped, reports a source's error on the batch it happened; a trainer
 * reading ahead ends bit-identical to one that does not, also across save and resume. */
#include "common/error.h"
#include "crosscoder/prefetch.h"
#include "crosscoder/source.h"
#include "crosscoder/train.h"
#include "tests/support/testutil.h"

#include <string.h>

enum { M = 2, D = 12 };

static float *rows_of(size_t n, uint64_t seed)
{
    float *r = malloc(n * M * D * sizeof *r);
    for (size_t i = 0; i < n * M * D; i++)
        r[i] = (float)ct_test_normal(&seed);
    return r;
}

START_TEST(prefetch_reads_what_the_source_reads)
{
    size_t n = 45, B = 7; /* batches straddle the epoch ends */
    float *rows = rows_of(n, 1);
    ct_cc_source direct, ahead;
    ck_assert_int_eq(ct_cc_memsource_open(rows, n, M, D, NULL, 9, 1, &direct), 0);
    ck_assert_int_eq(ct_cc_memsource_open(rows, n, M, D, NULL, 9, 1, &ahead), 0);
    float *b0 = malloc(B * M * D * 4), *b1 = malloc(B * M * D * 4), *want = malloc(B * M * D * 4);
    float *buf[2] = {b0, b1};
    ct_cc_prefetch *p;
    ck_assert_int_eq(ct_cc_prefetch_start(&ahead, buf, B, &p), 0);
    ct_cc_cursor c0, c1;
    ct_cc_prefetch_tell(p, &c0);
    ck_assert(c0.epoch == 0 && c0.index == 0);
    for (int k = 0; k < 20; k++) {
        float *got;
        ck_assert_int_eq(ct_cc_prefetch_next(p, &got), 0);
        ck_assert(got == b0 || got == b1);
        ck_assert_int_eq(direct.next(direct.ctx, want, B), 0);
        ck_assert_msg(memcmp(got, want, B * M * D * 4) == 0, "batch %d differs", k);
        ct_cc_prefetch_tell(p, &c0);
        direct.tell(direct.ctx, &c1);
        ck_assert(c0.epoch == c1.epoch && c0.index == c1.index);
    }
    ck_assert_uint_gt(c0.epoch, 1);
    /* Stopped, the source continues where the direct reader is, not where the thread got. */
    ck_assert_int_eq(ct_cc_prefetch_stop(p), 0);
    ck_assert_int_eq(ahead.next(ahead.ctx, b0, B), 0);
    ck_assert_int_eq(direct.next(direct.ctx, want, B), 0);
    ck_assert_int_eq(memcmp(b0, want, B * M * D * 4), 0);
    ct_cc_source_close(&direct);
    ct_cc_source_close(&ahead);
    free(rows);
    free(b0);
    free(b1);
    free(want);
}
END_TEST

/* A source that fails on its third batch. */
typedef struct { int calls; } failing;

static int fail_next(void *ctx, float *rows, size_t n)
{
    failing *f = ctx;
    if (++f->calls == 3)
        return ct_error_set(CT_ECORRUPT, "shard-0003.bin: truncated activation block");
    memset(rows, 0, n * M * D * sizeof *rows);
    return 0;
}

static int fail_tell(void *ctx, ct_cc_cursor *c)
{
    failing *f = ctx;
    c->epoch = 0;
    c->index = (uint64_t)f->calls;
    return 0;
}

static int fail_seek(void *ctx, const ct_cc_cursor *c)
{
    ((failing *)ctx)->calls = (int)c->index;
    return 0;
}

START_TEST(prefetch_reports_the_source_error)
{
    failing f = {0};
    ct_cc_source src = {.M = M, .d = D, .ctx = &f, .next = fail_next, .tell = fail_tell, .seek = fail_seek};
    float b0[4 * M * D], b1[4 * M * D];
    float *buf[2] = {b0, b1}, *got;
    ct_cc_prefetch *p;
    ck_assert_int_eq(ct_cc_prefetch_start(&src, buf, 4, &p), 0);
    ck_assert_int_eq(ct_cc_prefetch_next(p, &got), 0);
    ck_assert_int_eq(ct_cc_prefetch_next(p, &got), 0);
    ck_assert_int_eq(ct_cc_prefetch_next(p, &got), CT_ECORRUPT);
    ck_assert_ptr_null(got);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "shard-0003.bin: truncated activation block"));
    ck_assert_int_eq(ct_cc_prefetch_next(p, &got), CT_ECORRUPT); /* and stays failed */
    ct_cc_cursor c;
    ct_cc_prefetch_tell(p, &c);
    ck_assert_uint_eq(c.index, 2); /* after the two good batches */
    ck_assert_int_eq(ct_cc_prefetch_stop(p), 0);
    ck_assert_int_eq(f.calls, 2);
}
END_TEST

static ct_cc_config config(void)
{
    ct_cc_config c = CT_CC_CONFIG_INIT;
    c.M = M;
    c.d = D;
    c.H = 40;
    c.batch = 16;
    c.steps = 12;
    c.log_every = 0;
    c.checkpoint_every = 0;
    ck_assert_int_eq(ct_cc_config_resolve(&c), 0);
    return c;
}

/* Trains `steps` steps with the given prefetch mode, from `state` when not NULL, and
 * returns the saved state. */
static void *train(const ct_cc_config *c, const float *rows, size_t n, int prefetch, const void *state,
                   size_t state_len, long steps, size_t *len)
{
    ct_cc_source src;
    ck_assert_int_eq(ct_cc_memsource_open(rows, n, M, D, NULL, 5, 1, &src), 0);
    ct_cc_trainer *t;
    ck_assert_int_eq(ct_cc_trainer_create(c, &src, NULL, NULL, &t), 0);
    ct_cc_trainer_set_prefetch(t, prefetch);
    if (state)
        ck_assert_int_eq(ct_cc_trainer_restore(t, state, state_len, "state"), 0);
    while (ct_cc_trainer_steps_done(t) < steps) {
        ck_assert_int_eq(ct_cc_trainer_step(t, NULL), 0);
        if (ct_cc_trainer_steps_done(t) == 5)
            ct_cc_trainer_set_prefetch(t, !prefetch); /* switching midway changes nothing */
        if (ct_cc_trainer_steps_done(t) == 8)
            ct_cc_trainer_set_prefetch(t, prefetch);
    }
    void *buf;
    ck_assert_int_eq(ct_cc_trainer_save(t, &buf, len), 0);
    ct_cc_trainer_free(t);
    ct_cc_source_close(&src);
    return buf;
}

START_TEST(trainer_reading_ahead_is_bit_identical)
{
    ct_cc_config c = config();
    size_t n = 150;
    float *rows = rows_of(n, 2);
    size_t la, lb, lm, lr;
    void *a = train(&c, rows, n, 0, NULL, 0, c.steps, &la);
    void *b = train(&c, rows, n, 1, NULL, 0, c.steps, &lb);
    ck_assert_uint_eq(la, lb);
    ck_assert_int_eq(memcmp(a, b, la), 0);
    /* Saved while reading ahead (the thread is a batch further on), resumed reading ahead. */
    void *mid = train(&c, rows, n, 1, NULL, 0, 7, &lm);
    void *res = train(&c, rows, n, 1, mid, lm, c.steps, &lr);
    ck_assert_uint_eq(lr, la);
    ck_assert_int_eq(memcmp(res, a, la), 0);
    free(a);
    free(b);
    free(mid);
    free(res);
    free(rows);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cc_prefetch");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, prefetch_reads_what_the_source_reads);
    tcase_add_test(tc, prefetch_reports_the_source_error);
    tcase_add_test(tc, trainer_reading_ahead_is_bit_identical);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

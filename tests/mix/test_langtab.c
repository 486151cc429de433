/* The language table after a token shard (pipeline/steps/langtab.h): a round trip
 * through the cache checked against the bytes the format describes, a shard without
 * one, and damaged tables. ct_tokshard_header accepts a shard followed by a table and
 * nothing else. */
#include "tests/support/testutil.h"

#include "cache/cache.h"
#include "common/error.h"
#include "pipeline/steps/langtab.h"
#include "pipeline/steps/shard.h"

#include <stdint.h>

typedef struct {
    char dir[256];
    ct_cache *cache;
    uint8_t next; /* distinct keys */
} store;

static void store_open(store *s)
{
    ct_test_tmpdir(s->dir, sizeof s->dir, "langtab");
    ct_cache_options o = CT_CACHE_OPTIONS_INIT;
    o.dir = s->dir;
    ck_assert_msg(ct_cache_open(&o, &s->cache) == 0, "%s", ct_error_message());
    s->next = 0;
}

/* A shard of 3 sequences of 2 tokens, then `tail` (tail_len bytes); returns a reader. */
static ct_blob_reader *put(store *s, const uint8_t *tail, size_t tail_len)
{
    ct_blob_writer *w;
    ck_assert_int_eq(ct_blob_writer_open(s->cache, &w), 0);
    int32_t ids[6] = {1, 2, 3, 4, 5, 6};
    uint64_t idx[3] = {0, 1, 2}, doc[3] = {0, 2, 5};
    ct_tokshard sh = {2, 3, ids, idx, doc};
    ck_assert_int_eq(ct_tokshard_write(w, &sh), 0);
    if (tail_len)
        ck_assert_int_eq(ct_blob_write(w, tail, tail_len), 0);
    uint8_t key[CT_KEY_LEN] = {0};
    key[0] = ++s->next;
    ck_assert_int_eq(ct_blob_commit(w, key, NULL), 0);
    ct_blob_reader *r;
    ck_assert_int_eq(ct_blob_reader_open(s->cache, key, &r), 0);
    return r;
}

/* The table's bytes as langtab.h lays them out, written here by hand. */
static size_t table_bytes(uint8_t *b, const uint8_t *lang)
{
    static const uint8_t head[] = {'C', 'T', 'L', 'A', 'N', 'G', 'T', 'B', 1, 0, 0, 0, 2, 0, 0, 0,
                                   2, 0, 0, 0, 'e', 'n', 3, 0, 0, 0, 'h', 'i', 'n'};
    memcpy(b, head, sizeof head);
    memcpy(b + sizeof head, lang, 3);
    return sizeof head + 3;
}

START_TEST(round_trip_and_layout)
{
    store s;
    store_open(&s);
    /* the writer produces exactly the documented bytes */
    ct_blob_writer *w;
    ck_assert_int_eq(ct_blob_writer_open(s.cache, &w), 0);
    const char *names[2] = {"en", "hin"};
    const uint8_t lang[3] = {1, 0, 1};
    ck_assert_int_eq(ct_langtab_write(w, names, 2, lang, 3), 0);
    uint8_t key[CT_KEY_LEN] = {0xff};
    ck_assert_int_eq(ct_blob_commit(w, key, NULL), 0);
    char *got;
    size_t len;
    ck_assert_int_eq(ct_cache_read_all(s.cache, key, &got, &len), 0);
    uint8_t want[64];
    size_t wlen = table_bytes(want, lang);
    ck_assert_uint_eq(len, wlen);
    ck_assert_int_eq(memcmp(got, want, wlen), 0);
    free(got);

    /* after a shard: the header check accepts it and the reader gets it back */
    ct_blob_reader *r = put(&s, want, wlen);
    uint32_t T;
    uint64_t n;
    ck_assert_int_eq(ct_tokshard_header(r, "shard", &T, &n), 0);
    ck_assert_uint_eq(n, 3);
    ct_langtab t;
    ck_assert_msg(ct_langtab_read(r, "shard", &t) == 0, "%s", ct_error_message());
    ck_assert_uint_eq(t.n_lang, 2);
    ck_assert_str_eq(t.names[0], "en");
    ck_assert_str_eq(t.names[1], "hin");
    ck_assert_uint_eq(t.n_seq, 3);
    ck_assert_int_eq(memcmp(t.lang, lang, 3), 0);
    ct_langtab_free(&t);
    ct_langtab_free(&t); /* twice is harmless */
    ct_blob_reader_close(r);

    /* a shard without one */
    r = put(&s, NULL, 0);
    ck_assert_int_eq(ct_langtab_read(r, "plain", &t), CT_ENOTFOUND);
    ct_blob_reader_close(r);

    /* the writer refuses a language outside the table, and no languages */
    ck_assert_int_eq(ct_blob_writer_open(s.cache, &w), 0);
    const uint8_t wrong[3] = {0, 2, 0};
    ck_assert_int_eq(ct_langtab_write(w, names, 2, wrong, 3), CT_EINVAL);
    ck_assert_int_eq(ct_langtab_write(w, names, 0, lang, 3), CT_EINVAL);
    ct_blob_abort(w);
    ct_cache_close(s.cache);
}
END_TEST

START_TEST(damaged_tables)
{
    store s;
    store_open(&s);
    const uint8_t lang[3] = {0, 1, 1};
    uint8_t good[64], bad[64];
    size_t n = table_bytes(good, lang);
    ct_langtab t;
    uint32_t T;
    uint64_t ns;

    /* bytes after a shard that are not a language table */
    memcpy(bad, good, n);
    bad[0] = 'X';
    ct_blob_reader *r = put(&s, bad, n);
    ck_assert_int_eq(ct_tokshard_header(r, "junk", &T, &ns), CT_ECORRUPT);
    ck_assert_int_eq(ct_langtab_read(r, "junk", &t), CT_ECORRUPT);
    ct_blob_reader_close(r);
    r = put(&s, good, 5); /* shorter than the magic */
    ck_assert_int_eq(ct_tokshard_header(r, "short", &T, &ns), CT_ECORRUPT);
    ct_blob_reader_close(r);

    struct {
        size_t at;
        uint8_t value;
        size_t len; /* bytes kept */
    } cases[] = {
        {8, 2, 0},   /* version */
        {12, 0, 0},  /* no languages */
        {12, 9, 0},  /* more languages than bytes */
        {16, 0, 0},  /* an empty name */
        {16, 200, 0}, /* a name past the end */
        {29, 2, 0},  /* a language id outside the table */
        {0, 0, 30},  /* one language byte missing */
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        memcpy(bad, good, n);
        size_t len = cases[k].len ? cases[k].len : n;
        if (!cases[k].len)
            bad[cases[k].at] = cases[k].value;
        r = put(&s, bad, len);
        ck_assert_msg(ct_langtab_read(r, "bad", &t) == CT_ECORRUPT, "case %zu: %s", k, ct_error_message());
        ck_assert_ptr_null(t.names);
        ck_assert_ptr_null(t.lang);
        ct_blob_reader_close(r);
    }
    /* one byte too many */
    memcpy(bad, good, n);
    bad[n] = 0;
    r = put(&s, bad, n + 1);
    ck_assert_int_eq(ct_langtab_read(r, "long", &t), CT_ECORRUPT);
    ct_blob_reader_close(r);
    ct_cache_close(s.cache);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("langtab");
    TCase *tc = tcase_create("langtab");
    tcase_add_test(tc, round_trip_and_layout);
    tcase_add_test(tc, damaged_tables);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

/* Blob round trips, records, lookups and listing. */
#include "tests/cache/cache_testutil.h"

#include <ctype.h>
#include <pthread.h>
#include <regex.h>

#define CHUNK 4096

/* One blob of `len` bytes written in pieces of `piece`, then read back every way. */
static void round_trip(size_t len, size_t piece, uint64_t seed)
{
    char dir[PATH_MAX];
    ct_test_tmpdir(dir, sizeof dir, "blob");
    ct_cache *c = tc_open(dir, CHUNK, 1 << 20);
    uint8_t key[CT_KEY_LEN];
    tc_key(key, "round-trip %llu %llu", len, piece);
    json_t *rec = json_pack("{s:s, s:{s:[s]}}", "kind", "test", "material", "inputs", "x");
    ck_assert_msg(tc_write_entry(c, key, seed, len, len, piece, rec) == 0, "%s", ct_error_message());
    json_decref(rec);

    uint8_t *want = malloc(len + 1);
    tc_fill(want, len, seed, len);
    tc_check_entry(c, key, seed, len, len);

    /* The record: the caller's fields kept, the cache's fields right. */
    json_t *got;
    ck_assert_int_eq(ct_cache_get(c, key, &got), 0);
    ck_assert_str_eq(json_string_value(json_object_get(got, "kind")), "test");
    json_t *blob = json_object_get(got, "blob"), *cache = json_object_get(got, "cache");
    ck_assert_int_eq(json_integer_value(json_object_get(blob, "size")), (json_int_t)len);
    ck_assert_int_eq(json_integer_value(json_object_get(blob, "chunks")), (json_int_t)((len + CHUNK - 1) / CHUNK));
    ck_assert_int_eq(json_integer_value(json_object_get(cache, "format")), CT_CACHE_FORMAT);
    regex_t re;
    ck_assert_int_eq(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$", REG_EXTENDED), 0);
    ck_assert_int_eq(regexec(&re, json_string_value(json_object_get(cache, "created")), 0, NULL, 0), 0);
    regfree(&re);
    char ref[65];
    tc_sha256sum(dir, want, len, ref);
    ck_assert_str_eq(json_string_value(json_object_get(blob, "sha256")), ref);
    json_decref(got);

    /* read_at at seeded random ranges, many of them spanning chunk boundaries. */
    ct_blob_reader *r;
    ck_assert_int_eq(ct_blob_reader_open(c, key, &r), 0);
    uint64_t s = seed;
    uint8_t *buf = malloc(len + 1);
    for (int i = 0; i < 200 && len; i++) {
        size_t off = ct_test_splitmix(&s) % len, n = ct_test_splitmix(&s) % (len - off + 1);
        if (i == 0) {
            off = 0;
            n = len;
        }
        ck_assert_int_eq(ct_blob_read_at(r, off, buf, n), 0);
        ck_assert_msg(memcmp(buf, want + off, n) == 0, "read_at(%zu, %zu) differs", off, n);
    }
    ck_assert_int_eq(ct_blob_read_at(r, len, buf, 1), CT_EINVAL);
    ck_assert_int_eq(ct_blob_read_at(r, UINT64_MAX, buf, 2), CT_EINVAL);

    /* Views are zero-copy: the same addresses the chunk iterator hands out. */
    ct_blob_chunk ch;
    while (ct_blob_next_chunk(r, &ch) == 1) {
        const void *p;
        ck_assert_int_eq(ct_blob_view(r, ch.offset, ch.len, &p), 0);
        ck_assert_ptr_eq(p, ch.data);
        if (ch.len > 3) {
            ck_assert_int_eq(ct_blob_view(r, ch.offset + 1, ch.len - 2, &p), 0);
            ck_assert_ptr_eq(p, (const uint8_t *)ch.data + 1);
        }
        if (ch.offset + ch.len < len) {
            ck_assert_int_eq(ct_blob_view(r, ch.offset + ch.len - 1, 2, &p), CT_EINVAL);
            ck_assert_ptr_null(p);
        }
    }
    ct_blob_reader_close(r);

    char *all;
    size_t all_len;
    ck_assert_int_eq(ct_cache_read_all(c, key, &all, &all_len), 0);
    ck_assert_uint_eq(all_len, len);
    ck_assert(memcmp(all, want, len) == 0);
    ck_assert_int_eq(all[len], '\0');
    free(all);

    ct_cache_stats st;
    ck_assert_int_eq(ct_cache_stat(c, &st), 0);
    ck_assert_uint_eq(st.entries, 1);
    ck_assert_uint_eq(st.blob_bytes, len);
    ck_assert_uint_eq(st.chunks, (len + CHUNK - 1) / CHUNK);
    ck_assert_uint_eq(st.pending_writes, 0);
    free(buf);
    free(want);
    ct_cache_close(c);
    tc_rmtree(dir);
}

START_TEST(blob_empty) { round_trip(0, 1, 1); }
END_TEST
START_TEST(blob_one_byte) { round_trip(1, 1, 2); }
END_TEST
START_TEST(blob_exactly_one_chunk) { round_trip(CHUNK, 1000, 3); }
END_TEST
START_TEST(blob_chunk_plus_one) { round_trip(CHUNK + 1, 1000, 4); }
END_TEST
START_TEST(blob_several_chunks_small_pieces) { round_trip(7 * CHUNK + 123, 333, 5); }
END_TEST
START_TEST(blob_several_chunks_one_write) { round_trip(5 * CHUNK, 5 * CHUNK, 6); }
END_TEST
START_TEST(blob_big_writes_unaligned) { round_trip(9 * CHUNK + 7, 2 * CHUNK + 5, 7); }
END_TEST

START_TEST(first_commit_wins_and_abort_leaves_nothing)
{
    char dir[PATH_MAX];
    ct_test_tmpdir(dir, sizeof dir, "blob");
    ct_cache *c = tc_open(dir, CHUNK, 1 << 20);
    uint8_t key[CT_KEY_LEN];
    tc_key(key, "twice %llu %llu", 0, 0);
    ck_assert_int_eq(tc_write_entry(c, key, 10, 0, 3 * CHUNK, 1000, NULL), 0);
    /* A second writer for the same key (streamed, so pending) is discarded. */
    ck_assert_int_eq(tc_write_entry(c, key, 11, 0, 5 * CHUNK, 1000, NULL), 0);
    tc_check_entry(c, key, 10, 0, 3 * CHUNK);
    /* Same for a one-chunk blob, stored by the commit alone. */
    ck_assert_int_eq(ct_cache_put(c, key, NULL, "xyz", 3), 0);
    tc_check_entry(c, key, 10, 0, 3 * CHUNK);

    ct_blob_writer *w;
    ck_assert_int_eq(ct_blob_writer_open(c, &w), 0);
    uint8_t junk[3 * CHUNK];
    tc_fill(junk, sizeof junk, 12, 0);
    ck_assert_int_eq(ct_blob_write(w, junk, sizeof junk), 0);
    ct_cache_stats st;
    ck_assert_int_eq(ct_cache_stat(c, &st), 0);
    ck_assert_uint_eq(st.pending_writes, 1);
    ck_assert_uint_gt(st.chunks, 3);
    ct_blob_abort(w);
    ck_assert_int_eq(ct_cache_stat(c, &st), 0);
    ck_assert_uint_eq(st.pending_writes, 0);
    ck_assert_uint_eq(st.chunks, 3);
    ck_assert_uint_eq(st.entries, 1);

    /* A non-object record is refused and the writer freed. */
    ck_assert_int_eq(ct_blob_writer_open(c, &w), 0);
    json_t *bad = json_integer(3);
    uint8_t key2[CT_KEY_LEN];
    tc_key(key2, "bad record %llu %llu", 0, 0);
    ck_assert_int_eq(ct_blob_commit(w, key2, bad), CT_EINVAL);
    json_decref(bad);
    ck_assert_int_eq(ct_cache_get(c, key2, NULL), CT_ENOTFOUND);
    ct_cache_close(c);
    tc_rmtree(dir);
}
END_TEST

static int collect(const uint8_t key[CT_KEY_LEN], json_t *record, void *user)
{
    uint8_t (*keys)[CT_KEY_LEN] = user;
    json_int_t i = json_integer_value(json_object_get(record, "i"));
    memcpy(keys[i], key, CT_KEY_LEN);
    static uint8_t last[CT_KEY_LEN];
    static int have;
    ck_assert(!have || memcmp(last, key, CT_KEY_LEN) < 0); /* key order */
    memcpy(last, key, CT_KEY_LEN);
    have = 1;
    return 0;
}

static int stop_at_three(const uint8_t key[CT_KEY_LEN], json_t *record, void *user)
{
    int *n = user;
    return ++*n == 3 ? 42 : 0;
}

static int delete_each(const uint8_t key[CT_KEY_LEN], json_t *record, void *user)
{
    ct_cache *c = user;
    return ct_cache_delete(c, key);
}

START_TEST(foreach_get_delete_prefix)
{
    char dir[PATH_MAX];
    ct_test_tmpdir(dir, sizeof dir, "blob");
    ct_cache *c = tc_open(dir, CHUNK, 1 << 20);
    enum { N = 600 }; /* more than one listing batch */
    static uint8_t keys[N][CT_KEY_LEN], seen[N][CT_KEY_LEN];
    for (int i = 0; i < N; i++) {
        tc_key(keys[i], "entry %llu %llu", (uint64_t)i, 0);
        json_t *rec = json_pack("{s:i}", "i", i);
        char data[32];
        int n = snprintf(data, sizeof data, "value %d", i);
        ck_assert_int_eq(ct_cache_put(c, keys[i], rec, data, (size_t)n), 0);
        json_decref(rec);
    }
    memset(seen, 0, sizeof seen);
    ck_assert_int_eq(ct_cache_foreach(c, collect, seen), 0);
    ck_assert(memcmp(seen, keys, sizeof keys) == 0);
    int count = 0;
    ck_assert_int_eq(ct_cache_foreach(c, stop_at_three, &count), 42);
    ck_assert_int_eq(count, 3);

    char *data;
    size_t len;
    ck_assert_int_eq(ct_cache_read_all(c, keys[17], &data, &len), 0);
    ck_assert_str_eq(data, "value 17");
    free(data);

    /* Prefixes: unique, ambiguous, absent, malformed. */
    char hex[65];
    tc_hex(keys[5], hex);
    uint8_t found[CT_KEY_LEN];
    hex[10] = '\0';
    ck_assert_int_eq(ct_cache_resolve_prefix(c, hex, found), 0);
    ck_assert(memcmp(found, keys[5], CT_KEY_LEN) == 0);
    for (char *p = hex; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    ck_assert_int_eq(ct_cache_resolve_prefix(c, hex, found), 0);
    ck_assert(memcmp(found, keys[5], CT_KEY_LEN) == 0);
    uint8_t a[CT_KEY_LEN], b[CT_KEY_LEN];
    memset(a, 0xab, sizeof a);
    memset(b, 0xab, sizeof b);
    a[2] = 0xc0;
    b[2] = 0xc1;
    ck_assert_int_eq(ct_cache_put(c, a, NULL, "a", 1), 0);
    ck_assert_int_eq(ct_cache_put(c, b, NULL, "b", 1), 0);
    ck_assert_int_eq(ct_cache_resolve_prefix(c, "abab", found), CT_EINVAL);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "ambiguous"));
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "ababc0abababab"));
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "ababc1abababab"));
    ck_assert_int_eq(ct_cache_resolve_prefix(c, "ababc1", found), 0);
    ck_assert(memcmp(found, b, CT_KEY_LEN) == 0);
    ck_assert_int_eq(ct_cache_resolve_prefix(c, "ababc", found), CT_EINVAL);
    ck_assert_int_eq(ct_cache_resolve_prefix(c, "ababd", found), CT_ENOTFOUND);
    ck_assert_int_eq(ct_cache_resolve_prefix(c, "aba", found), CT_EINVAL);
    ck_assert_int_eq(ct_cache_resolve_prefix(c, "abxz", found), CT_EINVAL);

    ck_assert_int_eq(ct_cache_delete(c, a), 0);
    ck_assert_int_eq(ct_cache_delete(c, a), CT_ENOTFOUND);
    ck_assert_int_eq(ct_cache_get(c, a, NULL), CT_ENOTFOUND);
    ck_assert_int_eq(ct_cache_resolve_prefix(c, "abab", found), 0);

    /* The callback may write: no transaction is open while it runs. */
    ck_assert_int_eq(ct_cache_foreach(c, delete_each, c), 0);
    ct_cache_stats st;
    ck_assert_int_eq(ct_cache_stat(c, &st), 0);
    ck_assert_uint_eq(st.entries, 0);
    ck_assert_uint_eq(st.chunks, 0);
    ct_cache_close(c);
    tc_rmtree(dir);
}
END_TEST

typedef struct {
    ct_cache *c;
    int t;
    int failures;
} thread_arg;

static void *writer_thread(void *p)
{
    thread_arg *a = p;
    for (int i = 0; i < 20; i++) {
        uint8_t key[CT_KEY_LEN];
        tc_key(key, "thread %llu entry %llu", (uint64_t)a->t, (uint64_t)i);
        size_t len = (size_t)(a->t * 7919 + i * 1237) % (6 * CHUNK);
        if (tc_write_entry(a->c, key, (uint64_t)a->t, (uint64_t)i, len, 1500, NULL) != 0)
            a->failures++;
        /* Read back an earlier entry while other threads write. */
        tc_key(key, "thread %llu entry %llu", (uint64_t)a->t, (uint64_t)(i / 2));
        size_t l2 = (size_t)(a->t * 7919 + (i / 2) * 1237) % (6 * CHUNK);
        tc_check_entry(a->c, key, (uint64_t)a->t, (uint64_t)(i / 2), l2);
    }
    return NULL;
}

START_TEST(threads_share_one_cache)
{
    char dir[PATH_MAX];
    ct_test_tmpdir(dir, sizeof dir, "blob");
    /* A small map, so that growth happens while threads read and write. */
    ct_cache *c = tc_open(dir, CHUNK, 64 << 10);
    pthread_t th[4];
    thread_arg args[4];
    for (int t = 0; t < 4; t++) {
        args[t] = (thread_arg){c, t, 0};
        pthread_create(&th[t], NULL, writer_thread, &args[t]);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        ck_assert_int_eq(args[t].failures, 0);
    }
    ct_cache_stats st;
    ck_assert_int_eq(ct_cache_stat(c, &st), 0);
    ck_assert_uint_eq(st.entries, 80);
    ck_assert_uint_gt(st.map_size, 64 << 10);
    ck_assert_uint_eq(st.pending_writes, 0);
    uint64_t n_corrupt = 1;
    ck_assert_int_eq(ct_cache_verify(c, 0, NULL, NULL, &n_corrupt), 0);
    ck_assert_uint_eq(n_corrupt, 0);
    ct_cache_close(c);
    tc_rmtree(dir);
}
END_TEST

START_TEST(default_location)
{
    char dir[PATH_MAX], sub[PATH_MAX + 32];
    ct_test_tmpdir(dir, sizeof dir, "blob");
    snprintf(sub, sizeof sub, "%s/from-env", dir);
    setenv("CROSSTIME_CACHE", sub, 1);
    ct_cache *c;
    ck_assert_int_eq(ct_cache_open(NULL, &c), 0);
    ck_assert_str_eq(ct_cache_dir(c), sub);
    ct_cache_close(c);
    struct stat sb;
    snprintf(sub, sizeof sub, "%s/from-env/data.mdb", dir);
    ck_assert_int_eq(stat(sub, &sb), 0);

    unsetenv("CROSSTIME_CACHE");
    setenv("HOME", dir, 1);
    ck_assert_int_eq(ct_cache_open(NULL, &c), 0);
    snprintf(sub, sizeof sub, "%s/.cache/crosstime", dir);
    ck_assert_str_eq(ct_cache_dir(c), sub);
    ct_cache_close(c);
    snprintf(sub, sizeof sub, "%s/.cache/crosstime/locks", dir);
    ck_assert_int_eq(stat(sub, &sb), 0);
    ck_assert(S_ISDIR(sb.st_mode));
    char ver[64];
    snprintf(ver, sizeof ver, "LMDB %d.%d.%d", MDB_VERSION_MAJOR, MDB_VERSION_MINOR, MDB_VERSION_PATCH);
    ck_assert_str_eq(ct_cache_lmdb_version(), ver);
    tc_rmtree(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cache_blob");
    TCase *tc = tcase_create("blob");
    tcase_add_test(tc, blob_empty);
    tcase_add_test(tc, blob_one_byte);
    tcase_add_test(tc, blob_exactly_one_chunk);
    tcase_add_test(tc, blob_chunk_plus_one);
    tcase_add_test(tc, blob_several_chunks_small_pieces);
    tcase_add_test(tc, blob_several_chunks_one_write);
    tcase_add_test(tc, blob_big_writes_unaligned);
    tcase_add_test(tc, first_commit_wins_and_abort_leaves_nothing);
    tcase_add_test(tc, foreach_get_delete_prefix);
    tcase_add_test(tc, threads_share_one_cache);
    tcase_add_test(tc, default_location);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

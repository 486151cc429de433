/* The LMDB map grows when full, waits for this process's readers, and follows
 * growth done by another process. */
#include "tests/cache/cache_testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

#define MIB ((size_t)1 << 20)

START_TEST(grows_from_one_mib_to_fifty)
{
    char dir[PATH_MAX];
    ct_test_tmpdir(dir, sizeof dir, "map");
    ct_cache *c = tc_open(dir, 512 << 10, MIB);
    enum { N = 22 };
    uint8_t keys[N + 1][CT_KEY_LEN];
    for (int i = 0; i < N; i++) {
        tc_key(keys[i], "grow %llu %llu", (uint64_t)i, 0);
        ck_assert_msg(tc_write_entry(c, keys[i], 5, (uint64_t)i, 2 * MIB + (size_t)i, 100000, NULL) == 0, "%s",
                      ct_error_message());
    }
    ct_cache_close(c);
    /* One blob in a single chunk larger than the whole map: several doublings at once. */
    ct_cache_options o = CT_CACHE_OPTIONS_INIT;
    o.dir = dir;
    o.initial_map_size = MIB;
    ck_assert_int_eq(ct_cache_open(&o, &c), 0);
    tc_key(keys[N], "grow %llu %llu", N, 0);
    ck_assert_int_eq(tc_write_entry(c, keys[N], 5, N, 6 * MIB, 6 * MIB, NULL), 0);
    for (int i = 0; i < N; i++)
        tc_check_entry(c, keys[i], 5, (uint64_t)i, 2 * MIB + (size_t)i);
    tc_check_entry(c, keys[N], 5, N, 6 * MIB);
    ct_cache_stats st;
    ck_assert_int_eq(ct_cache_stat(c, &st), 0);
    ck_assert_uint_eq(st.entries, N + 1);
    ck_assert_uint_ge(st.blob_bytes, 50 * MIB);
    ck_assert_uint_ge(st.map_size, st.map_used);
    ck_assert_uint_ge(st.map_used, 50 * MIB);
    uint64_t n;
    ck_assert_int_eq(ct_cache_verify(c, 0, NULL, NULL, &n), 0);
    ck_assert_uint_eq(n, 0);
    ct_cache_close(c);
    tc_rmtree(dir);
}
END_TEST

typedef struct {
    ct_cache *c;
    atomic_int done;
    int rc;
} writer_arg;

static void *big_writer(void *p)
{
    writer_arg *a = p;
    uint8_t key[CT_KEY_LEN];
    tc_key(key, "big %llu %llu", 0, 0);
    a->rc = tc_write_entry(a->c, key, 9, 9, 8 * MIB, 65536, NULL);
    atomic_store(&a->done, 1);
    return NULL;
}

START_TEST(growth_waits_for_readers_of_other_threads)
{
    char dir[PATH_MAX];
    ct_test_tmpdir(dir, sizeof dir, "map");
    ct_cache *c = tc_open(dir, 256 << 10, MIB);
    uint8_t small[CT_KEY_LEN];
    tc_key(small, "small %llu %llu", 0, 0);
    ck_assert_int_eq(tc_write_entry(c, small, 1, 1, 3000, 3000, NULL), 0);
    ct_blob_reader *r;
    ck_assert_int_eq(ct_blob_reader_open(c, small, &r), 0);
    const void *view;
    ck_assert_int_eq(ct_blob_view(r, 0, 3000, &view), 0);
    uint8_t want[3000];
    tc_fill(want, sizeof want, 1, 1);

    writer_arg a = {c, 0, -1};
    pthread_t th;
    pthread_create(&th, NULL, big_writer, &a);
    usleep(300000);
    /* The writer needs the map to grow, which would move our view: it must wait. */
    int finished = atomic_load(&a.done);
    ck_assert_int_eq(finished, 0);
    ck_assert(memcmp(view, want, sizeof want) == 0);
    ct_blob_reader_close(r);
    pthread_join(th, NULL);
    ck_assert_msg(a.rc == 0, "%s", ct_error_message());
    uint8_t key[CT_KEY_LEN];
    tc_key(key, "big %llu %llu", 0, 0);
    tc_check_entry(c, key, 9, 9, 8 * MIB);
    tc_check_entry(c, small, 1, 1, 3000);
    ct_cache_close(c);
    tc_rmtree(dir);
}
END_TEST

START_TEST(growth_with_own_reader_open_fails_clearly)
{
    char dir[PATH_MAX];
    ct_test_tmpdir(dir, sizeof dir, "map");
    ct_cache *c = tc_open(dir, 256 << 10, MIB);
    uint8_t small[CT_KEY_LEN], big[CT_KEY_LEN];
    tc_key(small, "small %llu %llu", 0, 0);
    tc_key(big, "big %llu %llu", 0, 0);
    ck_assert_int_eq(tc_write_entry(c, small, 1, 1, 3000, 3000, NULL), 0);
    ct_blob_reader *r;
    ck_assert_int_eq(ct_blob_reader_open(c, small, &r), 0);
    int rc = tc_write_entry(c, big, 9, 9, 8 * MIB, 65536, NULL);
    ck_assert_int_eq(rc, CT_EBUSY);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), dir));
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "read transaction"));
    ct_blob_reader_close(r);
    ck_assert_int_eq(tc_write_entry(c, big, 9, 9, 8 * MIB, 65536, NULL), 0);
    tc_check_entry(c, big, 9, 9, 8 * MIB);
    ct_cache_stats st;
    ck_assert_int_eq(ct_cache_stat(c, &st), 0);
    ck_assert_uint_eq(st.pending_writes, 0); /* the failed write was aborted */
    ck_assert_uint_eq(st.entries, 2);
    ct_cache_close(c);
    tc_rmtree(dir);
}
END_TEST

START_TEST(follows_growth_by_another_process)
{
    char dir[PATH_MAX];
    ct_test_tmpdir(dir, sizeof dir, "map");
    int ready[2], go[2];
    ck_assert_int_eq(pipe(ready), 0);
    ck_assert_int_eq(pipe(go), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        ct_cache_options o = CT_CACHE_OPTIONS_INIT;
        o.dir = dir;
        o.initial_map_size = MIB;
        o.chunk_size = 1 << 20;
        ct_cache *c;
        char b;
        if (ct_cache_open(&o, &c) || write(ready[1], "r", 1) != 1 || read(go[0], &b, 1) != 1)
            _exit(2);
        for (uint64_t i = 0; i < 10; i++) {
            uint8_t key[CT_KEY_LEN];
            tc_key(key, "child %llu %llu", i, 0);
            if (tc_write_entry(c, key, 3, i, 2 * MIB, MIB / 3, NULL))
                _exit(3);
        }
        ct_cache_close(c);
        _exit(0);
    }
    char b;
    ck_assert_int_eq(read(ready[0], &b, 1), 1);
    ct_cache *c = tc_open(dir, 0, MIB);
    uint8_t mine[CT_KEY_LEN];
    tc_key(mine, "parent %llu %llu", 0, 0);
    ck_assert_int_eq(tc_write_entry(c, mine, 4, 0, 1000, 1000, NULL), 0);
    ct_cache_stats st;
    ck_assert_int_eq(ct_cache_stat(c, &st), 0);
    ck_assert_uint_eq(st.map_size, MIB);
    ck_assert_int_eq(write(go[1], "g", 1), 1);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* The child's data lies beyond our 1 MiB map: we must remap to read it. */
    for (uint64_t i = 0; i < 10; i++) {
        uint8_t key[CT_KEY_LEN];
        tc_key(key, "child %llu %llu", i, 0);
        tc_check_entry(c, key, 3, i, 2 * MIB);
    }
    ck_assert_int_eq(ct_cache_stat(c, &st), 0);
    ck_assert_uint_ge(st.map_size, 20 * MIB);
    tc_check_entry(c, mine, 4, 0, 1000);
    ct_cache_close(c);
    tc_rmtree(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cache_map");
    TCase *tc = tcase_create("map");
    tcase_add_test(tc, grows_from_one_mib_to_fifty);
    tcase_add_test(tc, growth_waits_for_readers_of_other_threads);
    tcase_add_test(tc, growth_with_own_reader_open_fails_clearly);
    tcase_add_test(tc, follows_growth_by_another_process);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

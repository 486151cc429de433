/* Several processes on one cache: each key computed once under its lock, and
 * writers, map growth and gc running at the same time corrupt nothing. */
#include "tests/cache/cache_testutil.h"

#include <fcntl.h>
#include <sys/wait.h>

#define CHUNK 4096
#define KEYS 24
#define PROCS 3

static size_t len_of(uint64_t k) { return (size_t)(k * 5381 % (9 * CHUNK)); }

/* The runner's protocol: lock, re-check, compute, commit, unlock. Each computation
 * appends the key's number to a log, so the parent can count them. */
static void runner(const char *dir, const char *log, int id)
{
    ct_cache_options o = CT_CACHE_OPTIONS_INIT;
    o.dir = dir;
    o.chunk_size = CHUNK;
    o.initial_map_size = 128 << 10; /* growth in several processes at once */
    ct_cache *c;
    if (ct_cache_open(&o, &c))
        _exit(2);
    int fd = open(log, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0)
        _exit(3);
    for (uint64_t i = 0; i < KEYS; i++) {
        uint64_t k = (i + (uint64_t)id * 7) % KEYS; /* runners start at different keys */
        uint8_t key[CT_KEY_LEN];
        tc_key(key, "shared work %llu %llu", k, 0);
        ct_cache_lock *l;
        if (ct_cache_lock_key(c, key, NULL, NULL, &l))
            _exit(4);
        int rc = ct_cache_get(c, key, NULL);
        if (rc == CT_ENOTFOUND) {
            char line[32];
            int n = snprintf(line, sizeof line, "%llu\n", (unsigned long long)k);
            if (write(fd, line, (size_t)n) != n)
                _exit(5);
            if (tc_write_entry(c, key, 77, k, len_of(k), 1111, NULL))
                _exit(6);
        } else if (rc) {
            _exit(7);
        }
        ct_cache_unlock(l);
    }
    close(fd);
    ct_cache_close(c);
    _exit(0);
}

START_TEST(runners_compute_each_key_once_while_gc_runs)
{
    char dir[PATH_MAX], log[PATH_MAX + 16];
    ct_test_tmpdir(dir, sizeof dir, "conc");
    snprintf(log, sizeof log, "%s/computed.log", dir);
    /* Root every key first, so the concurrent gc may only reclaim abandoned writes. */
    ct_cache *c = tc_open(dir, CHUNK, 128 << 10);
    uint8_t keys[KEYS][CT_KEY_LEN];
    for (uint64_t k = 0; k < KEYS; k++)
        tc_key(keys[k], "shared work %llu %llu", k, 0);
    ck_assert_int_eq(ct_cache_root_set(c, "run", (const uint8_t(*)[CT_KEY_LEN])keys, KEYS), 0);
    ct_cache_close(c);

    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        ck_assert_int_ge(pids[p], 0);
        if (pids[p] == 0)
            runner(dir, log, p);
    }
    c = tc_open(dir, CHUNK, 128 << 10);
    int running = PROCS, rounds = 0;
    while (running > 0) {
        ct_cache_gc_stats gs;
        ck_assert_msg(ct_cache_gc(c, 0, &gs) == 0, "%s", ct_error_message());
        ck_assert_uint_eq(gs.entries_removed, 0);
        ck_assert_uint_eq(gs.abandoned_writes, 0);
        rounds++;
        for (int p = 0; p < PROCS; p++) {
            int status;
            if (pids[p] > 0 && waitpid(pids[p], &status, WNOHANG) == pids[p]) {
                ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "runner %d failed: status %d",
                              p, status);
                pids[p] = 0;
                running--;
            }
        }
        usleep(2000);
    }
    ck_assert_int_gt(rounds, 0);

    char *text;
    size_t len;
    ck_assert_int_eq(ct_read_file(log, &text, &len), 0);
    int computed[KEYS] = {0}, lines = 0;
    for (char *p = text; *p;) {
        char *end;
        unsigned long k = strtoul(p, &end, 10);
        ck_assert(end != p && *end == '\n' && k < KEYS);
        computed[k]++;
        lines++;
        p = end + 1;
    }
    free(text);
    ck_assert_int_eq(lines, KEYS);
    for (int k = 0; k < KEYS; k++) {
        ck_assert_int_eq(computed[k], 1);
        tc_check_entry(c, keys[k], 77, (uint64_t)k, len_of((uint64_t)k));
    }
    ct_cache_stats st;
    ck_assert_int_eq(ct_cache_stat(c, &st), 0);
    ck_assert_uint_eq(st.entries, KEYS);
    ck_assert_uint_eq(st.pending_writes, 0);
    uint64_t n;
    ck_assert_int_eq(ct_cache_verify(c, 0, NULL, NULL, &n), 0);
    ck_assert_uint_eq(n, 0);
    ct_cache_close(c);
    tc_rmtree(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cache_concurrent");
    TCase *tc = tcase_create("concurrent");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, runners_compute_each_key_once_while_gc_runs);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

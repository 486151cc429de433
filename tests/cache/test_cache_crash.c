/* Crash safety: writers SIGKILLed at seeded random moments never leave a visible
 * partial entry, and gc reclaims what they abandoned. */
#include "tests/cache/cache_testutil.h"

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>

#define CHUNK 4096
#define ROUNDS 12

static size_t entry_len(uint64_t round, uint64_t i)
{
    uint64_t s = round * 7777 + i;
    return (size_t)(ct_test_splitmix(&s) % (12 * CHUNK));
}

/* Writes entries until killed. Before announcing itself it leaves one streaming
 * write open (three chunks stored, so registered as pending) that it never
 * finishes, so that every round is certain to abandon a write. */
static void child(const char *dir, uint64_t round, int ready_fd)
{
    ct_cache_options o = CT_CACHE_OPTIONS_INIT;
    o.dir = dir;
    o.chunk_size = CHUNK;
    o.initial_map_size = 256 << 10;
    ct_cache *c;
    if (ct_cache_open(&o, &c) != 0)
        _exit(2);
    ct_blob_writer *w;
    uint8_t junk[3 * CHUNK + 10];
    tc_fill(junk, sizeof junk, round, 999999);
    if (ct_blob_writer_open(c, &w) != 0 || ct_blob_write(w, junk, sizeof junk) != 0)
        _exit(3);
    if (write(ready_fd, "r", 1) != 1)
        _exit(4);
    for (uint64_t i = 0; i < 100000; i++) {
        uint8_t key[CT_KEY_LEN];
        tc_key(key, "crash round %llu entry %llu", round, i);
        size_t len = entry_len(round, i);
        json_t *rec = json_pack("{s:I, s:I, s:I}", "round", (json_int_t)round, "i", (json_int_t)i,
                                "len", (json_int_t)len);
        if (tc_write_entry(c, key, round, i, len, 700, rec) != 0)
            _exit(5);
        json_decref(rec);
    }
    _exit(0);
}

typedef struct {
    uint64_t per_round[ROUNDS];  /* entries seen */
    uint64_t max_i[ROUNDS];      /* highest index seen + 1 */
    uint64_t chunks;             /* chunks the entries should own */
    uint8_t (*keys)[CT_KEY_LEN];
    size_t n;
    ct_cache *c;
} seen_t;

static int check_one(const uint8_t key[CT_KEY_LEN], json_t *rec, void *user)
{
    seen_t *s = user;
    uint64_t round = (uint64_t)json_integer_value(json_object_get(rec, "round"));
    uint64_t i = (uint64_t)json_integer_value(json_object_get(rec, "i"));
    size_t len = (size_t)json_integer_value(json_object_get(rec, "len"));
    ck_assert_uint_lt(round, ROUNDS);
    uint8_t want[CT_KEY_LEN];
    tc_key(want, "crash round %llu entry %llu", round, i);
    ck_assert(memcmp(want, key, CT_KEY_LEN) == 0);
    ck_assert_uint_eq(len, entry_len(round, i));
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(rec, "blob"), "size")), (json_int_t)len);
    tc_check_entry(s->c, key, round, i, len);
    s->per_round[round]++;
    if (i + 1 > s->max_i[round])
        s->max_i[round] = i + 1;
    s->chunks += (len + CHUNK - 1) / CHUNK;
    memcpy(s->keys[s->n++], key, CT_KEY_LEN);
    return 0;
}

static size_t count_lock_files(const char *dir)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/locks", dir);
    DIR *d = opendir(path);
    ck_assert_ptr_nonnull(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strstr(e->d_name, ".lock") != NULL;
    closedir(d);
    return n;
}

START_TEST(killed_writers_leave_no_partial_entries)
{
    char dir[PATH_MAX];
    ct_test_tmpdir(dir, sizeof dir, "crash");
    uint64_t seed = 20240607;
    for (uint64_t r = 0; r < ROUNDS; r++) {
        int fds[2];
        ck_assert_int_eq(pipe(fds), 0);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            close(fds[0]);
            child(dir, r, fds[1]);
        }
        close(fds[1]);
        char b;
        ck_assert_int_eq(read(fds[0], &b, 1), 1);
        close(fds[0]);
        usleep((useconds_t)(1000 + ct_test_splitmix(&seed) % 60000));
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                      "round %llu: child exited early (status %d)", (unsigned long long)r, status);
    }

    ct_cache *c = tc_open(dir, CHUNK, 0);
    uint64_t n_corrupt = 99;
    ck_assert_msg(ct_cache_verify(c, 0, NULL, NULL, &n_corrupt) == 0, "%s", ct_error_message());
    ck_assert_uint_eq(n_corrupt, 0);

    ct_cache_stats st;
    ck_assert_int_eq(ct_cache_stat(c, &st), 0);
    seen_t *s = calloc(1, sizeof *s);
    s->keys = malloc((st.entries + 1) * CT_KEY_LEN);
    s->c = c;
    ck_assert_int_eq(ct_cache_foreach(c, check_one, s), 0);
    ck_assert_uint_eq(s->n, st.entries);
    uint64_t total = 0;
    for (int r = 0; r < ROUNDS; r++) {
        /* A child commits its entries in order: what is visible is a prefix. */
        ck_assert_uint_eq(s->per_round[r], s->max_i[r]);
        total += s->per_round[r];
    }
    ck_assert_uint_gt(total, 0);
    /* Every round abandoned at least its deliberate write. */
    ck_assert_uint_ge(st.pending_writes, ROUNDS);
    ck_assert_uint_gt(st.chunks, s->chunks);

    /* Keep all entries through a root: gc must only reclaim the abandoned writes. */
    ck_assert_int_eq(ct_cache_root_set(c, "all", (const uint8_t(*)[CT_KEY_LEN])s->keys, s->n), 0);
    ct_cache_gc_stats gs;
    ck_assert_int_eq(ct_cache_gc(c, 1, &gs), 0);
    ck_assert_uint_eq(gs.abandoned_writes, st.pending_writes);
    ck_assert_uint_eq(gs.entries_removed, 0);
    ck_assert_uint_gt(gs.bytes_removed, 0);
    ct_cache_stats st2;
    ck_assert_int_eq(ct_cache_stat(c, &st2), 0);
    ck_assert_uint_eq(st2.pending_writes, st.pending_writes); /* dry run changed nothing */

    ct_cache_gc_stats gs2;
    ck_assert_int_eq(ct_cache_gc(c, 0, &gs2), 0);
    ck_assert_uint_eq(gs2.abandoned_writes, st.pending_writes);
    ck_assert_uint_eq(gs2.bytes_removed, gs.bytes_removed);
    ck_assert_uint_eq(gs2.entries_removed, 0);
    ck_assert_int_eq(ct_cache_stat(c, &st2), 0);
    ck_assert_uint_eq(st2.pending_writes, 0);
    ck_assert_uint_eq(st2.entries, st.entries);
    ck_assert_uint_eq(st2.chunks, s->chunks); /* nothing but the entries' chunks is left */
    ck_assert_uint_eq(count_lock_files(dir), 0);
    ck_assert_int_eq(ct_cache_verify(c, 0, NULL, NULL, &n_corrupt), 0);
    ck_assert_uint_eq(n_corrupt, 0);
    free(s->keys);
    free(s);
    ct_cache_close(c);
    tc_rmtree(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cache_crash");
    TCase *tc = tcase_create("crash");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, killed_writers_leave_no_partial_entries);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

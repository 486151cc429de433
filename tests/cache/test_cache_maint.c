/* verify (corruption found on disk), roots and gc. */
#include "tests/cache/cache_testutil.h"

#include <fcntl.h>
#include <sys/wait.h>

#define CHUNK 4096

static const char PATTERN[] = "crosstime-verify-pattern:7f3a9c0e5b1d";

typedef struct {
    uint8_t keys[8][CT_KEY_LEN];
    char why[8][1024];
    int n;
} reports;

static void on_corrupt(const uint8_t key[CT_KEY_LEN], const char *why, void *user)
{
    reports *r = user;
    if (r->n < 8) {
        memcpy(r->keys[r->n], key, CT_KEY_LEN);
        snprintf(r->why[r->n], sizeof r->why[r->n], "%s", why);
    }
    r->n++;
}

START_TEST(verify_finds_a_flipped_byte_and_repair_removes_it)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    ct_test_tmpdir(dir, sizeof dir, "maint");
    ct_cache *c = tc_open(dir, CHUNK, 1 << 20);
    uint8_t bad[CT_KEY_LEN], good[3][CT_KEY_LEN];
    size_t len = 3 * CHUNK + 100;
    uint8_t *data = malloc(len);
    tc_fill(data, len, 1, 1);
    memcpy(data + CHUNK + 1000, PATTERN, sizeof PATTERN - 1); /* inside chunk 1 */
    tc_key(bad, "victim %llu %llu", 0, 0);
    ck_assert_int_eq(ct_cache_put(c, bad, NULL, data, len), 0);
    for (int i = 0; i < 3; i++) {
        tc_key(good[i], "good %llu %llu", (uint64_t)i, 0);
        ck_assert_int_eq(tc_write_entry(c, good[i], 2, (uint64_t)i, (size_t)(i + 1) * 5000, 999, NULL), 0);
    }
    uint64_t n = 99;
    ck_assert_int_eq(ct_cache_verify(c, 0, NULL, NULL, &n), 0);
    ck_assert_uint_eq(n, 0);
    ct_cache_close(c);

    /* Flip one byte of the pattern inside data.mdb, as a failing disk would. */
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    char *file;
    size_t flen;
    ck_assert_int_eq(ct_read_file(path, &file, &flen), 0);
    size_t hits = 0, at = 0;
    for (size_t i = 0; i + sizeof PATTERN - 1 <= flen; i++)
        if (memcmp(file + i, PATTERN, sizeof PATTERN - 1) == 0) {
            hits++;
            at = i;
        }
    ck_assert_uint_eq(hits, 1);
    free(file);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    uint8_t b;
    ck_assert_int_eq(pread(fd, &b, 1, (off_t)(at + 9)), 1);
    b ^= 0x20;
    ck_assert_int_eq(pwrite(fd, &b, 1, (off_t)(at + 9)), 1);
    close(fd);

    c = tc_open(dir, CHUNK, 1 << 20);
    reports r = {0};
    ck_assert_int_eq(ct_cache_verify(c, 0, on_corrupt, &r, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(r.n, 1);
    ck_assert(memcmp(r.keys[0], bad, CT_KEY_LEN) == 0);
    ck_assert_ptr_nonnull(strstr(r.why[0], "digest mismatch"));
    ck_assert_int_eq(ct_cache_get(c, bad, NULL), 0); /* reporting alone removes nothing */

    memset(&r, 0, sizeof r);
    ck_assert_int_eq(ct_cache_verify(c, 1, on_corrupt, &r, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(ct_cache_get(c, bad, NULL), CT_ENOTFOUND);
    ck_assert_int_eq(ct_cache_verify(c, 0, NULL, NULL, &n), 0);
    ck_assert_uint_eq(n, 0);
    for (int i = 0; i < 3; i++)
        tc_check_entry(c, good[i], 2, (uint64_t)i, (size_t)(i + 1) * 5000);
    /* A later run recomputes it. */
    ck_assert_int_eq(ct_cache_put(c, bad, NULL, data, len), 0);
    ck_assert_int_eq(ct_cache_verify(c, 0, NULL, NULL, &n), 0);
    ck_assert_uint_eq(n, 0);
    free(data);
    ct_cache_close(c);
    tc_rmtree(dir);
}
END_TEST

static void put_with_inputs(ct_cache *c, uint8_t key[CT_KEY_LEN], const char *name, json_t *inputs,
                            size_t len, uint64_t *bytes)
{
    tc_key(key, name, 0, 0);
    json_t *rec = json_pack("{s:s, s:{s:s, s:o}}", "name", name, "material", "kind", "test", "inputs",
                            inputs ? inputs : json_object());
    ck_assert_int_eq(tc_write_entry(c, key, 7, len, len, 1000, rec), 0);
    json_decref(rec);
    if (bytes)
        *bytes += len;
}

static json_t *hexkey(const uint8_t key[CT_KEY_LEN])
{
    char hex[65];
    tc_hex(key, hex);
    return json_string(hex);
}

static int count_roots(const char *name, size_t n_keys, void *user)
{
    int *n = user;
    ck_assert_str_eq(name, "results");
    ck_assert_uint_eq(n_keys, 1);
    (*n)++;
    return 0;
}

START_TEST(gc_keeps_what_roots_reach)
{
    char dir[PATH_MAX];
    ct_test_tmpdir(dir, sizeof dir, "maint");
    ct_cache *c = tc_open(dir, CHUNK, 1 << 20);
    uint8_t A[CT_KEY_LEN], B[CT_KEY_LEN], C[CT_KEY_LEN], D[CT_KEY_LEN], E[CT_KEY_LEN], F[CT_KEY_LEN],
        G[CT_KEY_LEN];
    uint64_t kept_bytes = 0, gone_bytes = 0;
    put_with_inputs(c, A, "A", NULL, 3 * CHUNK + 1, &kept_bytes);
    put_with_inputs(c, B, "B", json_pack("{s:o}", "x", hexkey(A)), 100, &kept_bytes);
    put_with_inputs(c, D, "D", NULL, 2 * CHUNK, &kept_bytes);
    put_with_inputs(c, C, "C", json_pack("{s:[o,o], s:s}", "list", hexkey(B), hexkey(D), "note", "not a key"),
                    10, &kept_bytes);
    put_with_inputs(c, E, "E", NULL, 5 * CHUNK, &gone_bytes);
    put_with_inputs(c, F, "F", json_pack("{s:o}", "e", hexkey(E)), 7, &gone_bytes);
    put_with_inputs(c, G, "G", NULL, 0, &gone_bytes);
    ck_assert_int_eq(ct_cache_root_set(c, "results", (const uint8_t(*)[CT_KEY_LEN])C, 1), 0);

    uint8_t (*keys)[CT_KEY_LEN];
    size_t n;
    ck_assert_int_eq(ct_cache_root_get(c, "results", &keys, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert(memcmp(keys[0], C, CT_KEY_LEN) == 0);
    free(keys);
    int nroots = 0;
    ck_assert_int_eq(ct_cache_root_foreach(c, count_roots, &nroots), 0);
    ck_assert_int_eq(nroots, 1);
    ck_assert_int_eq(ct_cache_root_get(c, "nope", &keys, &n), CT_ENOTFOUND);
    ck_assert_int_eq(ct_cache_root_set(c, "", NULL, 0), CT_EINVAL);

    ct_cache_gc_stats gs;
    ck_assert_int_eq(ct_cache_gc(c, 1, &gs), 0);
    ck_assert_uint_eq(gs.entries_removed, 3);
    ck_assert_uint_eq(gs.bytes_removed, gone_bytes);
    ct_cache_stats st;
    ck_assert_int_eq(ct_cache_stat(c, &st), 0);
    ck_assert_uint_eq(st.entries, 7);

    ck_assert_int_eq(ct_cache_gc(c, 0, &gs), 0);
    ck_assert_uint_eq(gs.entries_removed, 3);
    ck_assert_uint_eq(gs.bytes_removed, gone_bytes);
    ck_assert_uint_eq(gs.abandoned_writes, 0);
    ck_assert_int_eq(ct_cache_stat(c, &st), 0);
    ck_assert_uint_eq(st.entries, 4);
    ck_assert_uint_eq(st.blob_bytes, kept_bytes);
    ck_assert_uint_eq(st.chunks, 4 + 1 + 2 + 1);
    ck_assert_uint_eq(st.roots, 1);
    ck_assert_int_eq(ct_cache_get(c, E, NULL), CT_ENOTFOUND);
    ck_assert_int_eq(ct_cache_get(c, F, NULL), CT_ENOTFOUND);
    ck_assert_int_eq(ct_cache_get(c, G, NULL), CT_ENOTFOUND);
    tc_check_entry(c, A, 7, 3 * CHUNK + 1, 3 * CHUNK + 1);
    tc_check_entry(c, D, 7, 2 * CHUNK, 2 * CHUNK);
    ck_assert_int_eq(ct_cache_gc(c, 0, &gs), 0); /* nothing more to do */
    ck_assert_uint_eq(gs.entries_removed, 0);

    /* An emptied root keeps nothing. */
    ck_assert_int_eq(ct_cache_root_set(c, "results", NULL, 0), 0);
    ck_assert_int_eq(ct_cache_root_get(c, "results", &keys, &n), 0);
    ck_assert_uint_eq(n, 0);
    free(keys);
    ck_assert_int_eq(ct_cache_gc(c, 0, &gs), 0);
    ck_assert_uint_eq(gs.entries_removed, 4);
    ck_assert_uint_eq(gs.bytes_removed, kept_bytes);
    ck_assert_int_eq(ct_cache_root_delete(c, "results"), 0);
    ck_assert_int_eq(ct_cache_root_delete(c, "results"), CT_ENOTFOUND);
    ck_assert_int_eq(ct_cache_stat(c, &st), 0);
    ck_assert_uint_eq(st.entries, 0);
    ck_assert_uint_eq(st.chunks, 0);
    ck_assert_uint_eq(st.roots, 0);
    ct_cache_close(c);
    tc_rmtree(dir);
}
END_TEST

/* A child holding a streaming write open until told to finish it. */
static void live_writer(const char *dir, int ready_fd, int go_fd, const uint8_t key[CT_KEY_LEN])
{
    ct_cache_options o = CT_CACHE_OPTIONS_INIT;
    o.dir = dir;
    o.chunk_size = CHUNK;
    ct_cache *c;
    ct_blob_writer *w;
    uint8_t buf[4 * CHUNK];
    tc_fill(buf, sizeof buf, 3, 3);
    char b;
    /* One write of four chunks: three are stored at once (so the write is
     * pending), the fourth stays buffered. */
    if (ct_cache_open(&o, &c) || ct_blob_writer_open(c, &w) || ct_blob_write(w, buf, sizeof buf))
        _exit(2);
    if (write(ready_fd, "r", 1) != 1 || read(go_fd, &b, 1) != 1)
        _exit(3);
    if (ct_blob_write(w, buf, 10) || ct_blob_commit(w, key, NULL))
        _exit(4);
    ct_cache_close(c);
    _exit(0);
}

START_TEST(gc_spares_live_writers_and_sweeps_orphan_chunks)
{
    char dir[PATH_MAX];
    ct_test_tmpdir(dir, sizeof dir, "maint");
    ct_cache *c = tc_open(dir, CHUNK, 1 << 20);
    uint8_t orphan[CT_KEY_LEN], live[CT_KEY_LEN];
    tc_key(orphan, "orphan %llu %llu", 0, 0);
    tc_key(live, "live %llu %llu", 0, 0);
    ck_assert_int_eq(tc_write_entry(c, orphan, 4, 4, 2 * CHUNK + 5, 1000, NULL), 0);
    ct_cache_close(c);

    /* Damage the record: the entry can no longer name its chunks. */
    tc_raw r;
    tc_raw_open(&r, dir, "entries");
    MDB_val k = {CT_KEY_LEN, orphan}, v = {5, "{oops"};
    ck_assert_int_eq(mdb_put(r.txn, r.dbi, &k, &v, 0), 0);
    tc_raw_close(&r);

    int ready[2], go[2];
    ck_assert_int_eq(pipe(ready), 0);
    ck_assert_int_eq(pipe(go), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        live_writer(dir, ready[1], go[0], live);
    char b;
    ck_assert_int_eq(read(ready[0], &b, 1), 1);

    c = tc_open(dir, CHUNK, 1 << 20);
    uint64_t n;
    ck_assert_int_eq(ct_cache_verify(c, 1, NULL, NULL, &n), 0);
    ck_assert_uint_eq(n, 1);
    ct_cache_stats st;
    ck_assert_int_eq(ct_cache_stat(c, &st), 0);
    ck_assert_uint_eq(st.entries, 0);
    ck_assert_uint_eq(st.chunks, 3 + 3); /* orphaned + the live write's stored chunks */
    ck_assert_uint_eq(st.pending_writes, 1);
    ct_cache_gc_stats gs;
    ck_assert_int_eq(ct_cache_gc(c, 1, &gs), 0);
    ck_assert_uint_eq(gs.bytes_removed, 2 * CHUNK + 5);
    ck_assert_int_eq(ct_cache_gc(c, 0, &gs), 0);
    ck_assert_uint_eq(gs.abandoned_writes, 0);
    ck_assert_uint_eq(gs.bytes_removed, 2 * CHUNK + 5);
    ck_assert_int_eq(ct_cache_stat(c, &st), 0);
    ck_assert_uint_eq(st.chunks, 3);
    ck_assert_uint_eq(st.pending_writes, 1);

    /* The writer finishes after gc ran. */
    ck_assert_int_eq(write(go[1], "g", 1), 1);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_int_eq(ct_cache_stat(c, &st), 0);
    ck_assert_uint_eq(st.pending_writes, 0);
    ck_assert_uint_eq(st.chunks, 5);
    uint8_t buf[4 * CHUNK];
    tc_fill(buf, sizeof buf, 3, 3);
    ct_blob_reader *rd;
    ck_assert_int_eq(ct_blob_reader_open(c, live, &rd), 0);
    ck_assert_uint_eq(ct_blob_size(rd), sizeof buf + 10);
    uint8_t back[sizeof buf + 10];
    ck_assert_int_eq(ct_blob_read_at(rd, 0, back, sizeof back), 0);
    ck_assert(memcmp(back, buf, sizeof buf) == 0 && memcmp(back + sizeof buf, buf, 10) == 0);
    ct_blob_reader_close(rd);
    ck_assert_int_eq(ct_cache_verify(c, 0, NULL, NULL, &n), 0);
    ck_assert_uint_eq(n, 0);
    ct_cache_close(c);
    tc_rmtree(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cache_maint");
    TCase *tc = tcase_create("maint");
    tcase_add_test(tc, verify_finds_a_flipped_byte_and_repair_removes_it);
    tcase_add_test(tc, gc_keeps_what_roots_reach);
    tcase_add_test(tc, gc_spares_live_writers_and_sweeps_orphan_chunks);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

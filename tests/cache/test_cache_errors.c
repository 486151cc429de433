/* Bad cache input gives clear errors naming the cache and the key, never a crash. */
#include "cache/fs_internal.h"
#include "tests/cache/cache_testutil.h"

#define CHUNK 4096

static void expect_msg(const char *a, const char *b)
{
    ck_assert_msg(strstr(ct_error_message(), a) && (!b || strstr(ct_error_message(), b)),
                  "message '%s' lacks '%s' / '%s'", ct_error_message(), a, b ? b : "");
}

START_TEST(cache_path_that_is_a_file)
{
    char dir[PATH_MAX], file[PATH_MAX + 16], below[PATH_MAX + 32];
    ct_test_tmpdir(dir, sizeof dir, "err");
    snprintf(file, sizeof file, "%s/plain", dir);
    ck_assert_int_eq(ct_write_file_atomic(file, "x", 1), 0);
    ct_cache_options o = CT_CACHE_OPTIONS_INIT;
    ct_cache *c = (ct_cache *)1;
    o.dir = file;
    ck_assert_int_eq(ct_cache_open(&o, &c), CT_EINVAL);
    ck_assert_ptr_null(c);
    expect_msg(file, "not a directory");
    snprintf(below, sizeof below, "%s/sub", file);
    o.dir = below;
    ck_assert_int_lt(ct_cache_open(&o, &c), 0);
    expect_msg(file, NULL);
    o.dir = dir;
    o.chunk_size = (size_t)8 << 30;
    ck_assert_int_eq(ct_cache_open(&o, &c), CT_EINVAL);
    expect_msg("chunk_size", NULL);
    tc_rmtree(dir);
}
END_TEST

START_TEST(not_an_lmdb_file_or_wrong_cache_format)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    ct_test_tmpdir(dir, sizeof dir, "err");
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    char junk[16384];
    memset(junk, 'j', sizeof junk);
    ck_assert_int_eq(ct_write_file_atomic(path, junk, sizeof junk), 0);
    ct_cache_options o = CT_CACHE_OPTIONS_INIT;
    o.dir = dir;
    o.initial_map_size = 1 << 20;
    ct_cache *c;
    ck_assert_int_eq(ct_cache_open(&o, &c), CT_EFORMAT);
    expect_msg(path, NULL);
    tc_rmtree(dir);

    ct_test_tmpdir(dir, sizeof dir, "err");
    c = tc_open(dir, CHUNK, 1 << 20);
    ct_cache_close(c);
    tc_raw r;
    tc_raw_open(&r, dir, "meta");
    MDB_val k = {6, "format"}, v = {1, "9"};
    ck_assert_int_eq(mdb_put(r.txn, r.dbi, &k, &v, 0), 0);
    tc_raw_close(&r);
    o.dir = dir;
    ck_assert_int_eq(ct_cache_open(&o, &c), CT_EFORMAT);
    expect_msg(dir, "format '9'");
    tc_rmtree(dir);
}
END_TEST

/* Replaces the record of `key` with `text`. */
static void set_record(const char *dir, const uint8_t key[CT_KEY_LEN], const char *text)
{
    tc_raw r;
    tc_raw_open(&r, dir, "entries");
    MDB_val k = {CT_KEY_LEN, (void *)key}, v = {strlen(text), (void *)text};
    ck_assert_int_eq(mdb_put(r.txn, r.dbi, &k, &v, 0), 0);
    tc_raw_close(&r);
}

static int count_entries(const uint8_t key[CT_KEY_LEN], json_t *record, void *user)
{
    ++*(int *)user;
    return 0;
}

START_TEST(damaged_records)
{
    char dir[PATH_MAX], hex[65];
    ct_test_tmpdir(dir, sizeof dir, "err");
    ct_cache *c = tc_open(dir, CHUNK, 1 << 20);
    uint8_t key[CT_KEY_LEN];
    tc_key(key, "damaged %llu %llu", 0, 0);
    tc_hex(key, hex);
    ck_assert_int_eq(ct_cache_put(c, key, NULL, "payload", 7), 0);
    json_t *rec;
    ck_assert_int_eq(ct_cache_get(c, key, &rec), 0);
    char *good = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    ct_cache_close(c);

    static const struct {
        const char *text;
        int code;
        const char *what;
    } cases[] = {
        {"{\"blob\": {\"size\": 7", CT_ECORRUPT, "not valid JSON"},
        {"[1,2,3]", CT_ECORRUPT, "cache.format"},
        {"{\"cache\":{\"format\":2}}", CT_EFORMAT, "format 2"},
        {"{\"cache\":{\"format\":1}}", CT_ECORRUPT, "\"blob\""},
        {"{\"cache\":{\"format\":1},\"blob\":{\"size\":9000,\"chunks\":1,\"chunk_size\":4096,"
         "\"sha256\":\"00\",\"id\":\"0000000000000000\"}}",
         CT_ECORRUPT, "\"blob\""},
        {"{\"cache\":{\"format\":1},\"blob\":{\"size\":9000,\"chunks\":1,\"chunk_size\":4096,"
         "\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\","
         "\"id\":\"0000000000000000\"}}",
         CT_ECORRUPT, "disagree"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        set_record(dir, key, cases[i].text);
        c = tc_open(dir, CHUNK, 1 << 20);
        ck_assert_int_eq(ct_cache_get(c, key, &rec), cases[i].code);
        expect_msg(dir, hex);
        expect_msg(cases[i].what, NULL);
        ct_blob_reader *r = (ct_blob_reader *)1;
        ck_assert_int_eq(ct_blob_reader_open(c, key, &r), cases[i].code);
        ck_assert_ptr_null(r);
        int n = 0;
        ck_assert_int_eq(ct_cache_foreach(c, count_entries, &n), cases[i].code);
        expect_msg(hex, NULL);
        uint64_t bad = 0;
        ck_assert_int_eq(ct_cache_verify(c, 0, NULL, NULL, &bad), 0);
        ck_assert_uint_eq(bad, 1);
        ct_cache_stats st;
        ck_assert_int_eq(ct_cache_stat(c, &st), 0);
        ck_assert_uint_eq(st.entries, 1);
        ct_cache_close(c);
    }
    /* Restoring the record makes the entry whole again. */
    set_record(dir, key, good);
    free(good);
    c = tc_open(dir, CHUNK, 1 << 20);
    char *data;
    size_t len;
    ck_assert_int_eq(ct_cache_read_all(c, key, &data, &len), 0);
    ck_assert_str_eq(data, "payload");
    free(data);
    ct_cache_close(c);
    tc_rmtree(dir);
}
END_TEST

/* Chunk `index` of the blob of `key`, located through the record. */
static void chunk_key_of(ct_cache *c, const uint8_t key[CT_KEY_LEN], uint64_t index, uint8_t out[16])
{
    json_t *rec;
    ck_assert_int_eq(ct_cache_get(c, key, &rec), 0);
    const char *id = json_string_value(json_object_get(json_object_get(rec, "blob"), "id"));
    ck_assert_int_eq(ct_hex_decode(id, out, 8), 0);
    json_decref(rec);
    for (int i = 0; i < 8; i++)
        out[8 + i] = (uint8_t)(index >> (56 - 8 * i));
}

START_TEST(missing_and_truncated_chunks)
{
    char dir[PATH_MAX], hex[65];
    ct_test_tmpdir(dir, sizeof dir, "err");
    ct_cache *c = tc_open(dir, CHUNK, 1 << 20);
    uint8_t key[CT_KEY_LEN], ck1[16], ck0[16];
    tc_key(key, "chunks %llu %llu", 0, 0);
    tc_hex(key, hex);
    ck_assert_int_eq(tc_write_entry(c, key, 1, 2, 3 * CHUNK - 10, 1000, NULL), 0);
    chunk_key_of(c, key, 1, ck1);
    chunk_key_of(c, key, 0, ck0);
    ct_cache_close(c);

    tc_raw r;
    tc_raw_open(&r, dir, "chunks");
    MDB_val k = {16, ck1};
    ck_assert_int_eq(mdb_del(r.txn, r.dbi, &k, NULL), 0);
    tc_raw_close(&r);

    c = tc_open(dir, CHUNK, 1 << 20);
    ct_blob_reader *rd;
    ck_assert_int_eq(ct_blob_reader_open(c, key, &rd), 0);
    ct_blob_chunk ch;
    ck_assert_int_eq(ct_blob_next_chunk(rd, &ch), 1);
    ck_assert_int_eq(ct_blob_next_chunk(rd, &ch), CT_ECORRUPT);
    expect_msg(hex, "chunk 1 of 3 is missing");
    expect_msg(dir, NULL);
    uint8_t buf[2 * CHUNK];
    ck_assert_int_eq(ct_blob_read_at(rd, CHUNK - 5, buf, 10), CT_ECORRUPT);
    ck_assert_int_eq(ct_blob_read_at(rd, 0, buf, 10), 0);
    ct_blob_reader_close(rd);
    char *data;
    size_t len;
    ck_assert_int_eq(ct_cache_read_all(c, key, &data, &len), CT_ECORRUPT);
    ck_assert_ptr_null(data);
    ct_cache_close(c);

    /* A chunk of the wrong length. */
    tc_raw_open(&r, dir, "chunks");
    k.mv_data = ck0;
    MDB_val v = {100, buf};
    ck_assert_int_eq(mdb_put(r.txn, r.dbi, &k, &v, 0), 0);
    tc_raw_close(&r);
    c = tc_open(dir, CHUNK, 1 << 20);
    ck_assert_int_eq(ct_blob_reader_open(c, key, &rd), 0);
    ck_assert_int_eq(ct_blob_next_chunk(rd, &ch), CT_ECORRUPT);
    expect_msg(hex, "has 100 bytes");
    ct_blob_reader_close(rd);
    uint64_t bad;
    ck_assert_int_eq(ct_cache_verify(c, 1, NULL, NULL, &bad), 0);
    ck_assert_uint_eq(bad, 1);
    ck_assert_int_eq(ct_cache_get(c, key, NULL), CT_ENOTFOUND);
    ct_cache_close(c);
    tc_rmtree(dir);
}
END_TEST

START_TEST(read_only_caches)
{
    char dir[PATH_MAX], missing[PATH_MAX + 16];
    ct_test_tmpdir(dir, sizeof dir, "err");
    snprintf(missing, sizeof missing, "%s/none", dir);
    ct_cache_options o = CT_CACHE_OPTIONS_INIT;
    o.dir = missing;
    o.read_only = 1;
    ct_cache *c;
    ck_assert_int_eq(ct_cache_open(&o, &c), CT_ENOTFOUND);
    expect_msg(missing, NULL);

    c = tc_open(dir, CHUNK, 1 << 20);
    uint8_t key[CT_KEY_LEN];
    tc_key(key, "ro %llu %llu", 0, 0);
    ck_assert_int_eq(ct_cache_put(c, key, NULL, "abc", 3), 0);
    ct_cache_close(c);
    o.dir = dir;
    ck_assert_int_eq(ct_cache_open(&o, &c), 0);
    char *data;
    size_t len;
    ck_assert_int_eq(ct_cache_read_all(c, key, &data, &len), 0);
    ck_assert_str_eq(data, "abc");
    free(data);
    ck_assert_int_eq(ct_cache_put(c, key, NULL, "abc", 3), CT_EINVAL);
    expect_msg("read-only", NULL);
    ck_assert_int_eq(ct_cache_delete(c, key), CT_EINVAL);
    ct_cache_gc_stats gs;
    ck_assert_int_eq(ct_cache_gc(c, 0, &gs), CT_EINVAL);
    ck_assert_int_eq(ct_cache_gc(c, 1, &gs), 0);
    ck_assert_uint_eq(gs.entries_removed, 1);
    ck_assert_int_eq(ct_cache_get(c, key, NULL), 0);
    ct_cache_close(c);
    tc_rmtree(dir);
}
END_TEST

START_TEST(network_filesystems_are_recognised)
{
    const char *name;
    ck_assert_int_eq(ct_cache_fs_classify(0x6969, NULL, &name), 1);
    ck_assert_str_eq(name, "nfs");
    ck_assert_int_eq(ct_cache_fs_classify(0xFF534D42UL, NULL, &name), 1);
    ck_assert_str_eq(name, "cifs");
    ck_assert_int_eq(ct_cache_fs_classify(0xFE534D42UL, NULL, &name), 1);
    ck_assert_str_eq(name, "smb2");
    ck_assert_int_eq(ct_cache_fs_classify(0x01021997UL, NULL, &name), 1);
    ck_assert_str_eq(name, "9p");
    ck_assert_int_eq(ct_cache_fs_classify(0x00C36400UL, NULL, &name), 1);
    ck_assert_str_eq(name, "ceph");
    ck_assert_int_eq(ct_cache_fs_classify(0x65735546UL, "fuse.sshfs", &name), 1);
    ck_assert_str_eq(name, "fuse.sshfs");
    ck_assert_int_eq(ct_cache_fs_classify(0x65735546UL, NULL, &name), 1);
    ck_assert_str_eq(name, "fuse");
    ck_assert_int_eq(ct_cache_fs_classify(0x65735546UL, "fuse.fuse-overlayfs", &name), 0);
    ck_assert_int_eq(ct_cache_fs_classify(0x65735546UL, "fuseblk", &name), 0);
    ck_assert_int_eq(ct_cache_fs_classify(0xEF53, NULL, &name), 0);
    ck_assert_str_eq(name, "ext4");
    ck_assert_int_eq(ct_cache_fs_classify(0x01021994UL, NULL, &name), 0);
    ck_assert_int_eq(ct_cache_fs_classify(0x12345678UL, NULL, &name), 0);
    ck_assert_ptr_null(name);

    /* The temporary directory is local, including a path not created yet. */
    char dir[PATH_MAX], sub[PATH_MAX + 16];
    ct_test_tmpdir(dir, sizeof dir, "err");
    snprintf(sub, sizeof sub, "%s/a/b/c", dir);
    ck_assert_int_eq(ct_cache_fs_check(sub), 0);
    tc_rmtree(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cache_errors");
    TCase *tc = tcase_create("errors");
    tcase_add_test(tc, cache_path_that_is_a_file);
    tcase_add_test(tc, not_an_lmdb_file_or_wrong_cache_format);
    tcase_add_test(tc, damaged_records);
    tcase_add_test(tc, missing_and_truncated_chunks);
    tcase_add_test(tc, read_only_caches);
    tcase_add_test(tc, network_filesystems_are_recognised);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

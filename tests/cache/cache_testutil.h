/* Helpers for the cache tests: temporary caches, re-derivable content, an
 * independent SHA-256 (coreutils' sha256sum) and raw LMDB access for damaging a
 * cache on purpose. */
#ifndef CT_CACHE_TESTUTIL_H
#define CT_CACHE_TESTUTIL_H

#include "cache/cache.h"
#include "common/error.h"
#include "common/io.h"
#include "common/sha256.h"
#include "tests/support/testutil.h"

#include <ftw.h>
#include <lmdb.h>
#include <stdint.h>
#include <sys/stat.h>

/* Deterministic bytes derived from (seed, index): the content of a test entry can
 * always be recomputed from its record. */
static inline void tc_fill(uint8_t *buf, size_t len, uint64_t seed, uint64_t index)
{
    uint64_t s = seed * 1000003ULL ^ index * 0x2545F4914F6CDD1DULL;
    for (size_t i = 0; i < len; i += 8) {
        uint64_t x = ct_test_splitmix(&s);
        size_t n = len - i < 8 ? len - i : 8;
        memcpy(buf + i, &x, n);
    }
}

/* A key: SHA-256 of a label. */
static inline void tc_key(uint8_t key[CT_KEY_LEN], const char *fmt, uint64_t a, uint64_t b)
{
    char label[256];
    snprintf(label, sizeof label, fmt, (unsigned long long)a, (unsigned long long)b);
    ct_sha256_buf(label, strlen(label), key);
}

static inline void tc_hex(const uint8_t key[CT_KEY_LEN], char hex[2 * CT_KEY_LEN + 1])
{
    ct_hex_encode(key, CT_KEY_LEN, hex);
}

static inline ct_cache *tc_open(const char *dir, size_t chunk, size_t map)
{
    ct_cache_options o = CT_CACHE_OPTIONS_INIT;
    o.dir = dir;
    o.chunk_size = chunk;
    o.initial_map_size = map;
    ct_cache *c = NULL;
    int rc = ct_cache_open(&o, &c);
    ck_assert_msg(rc == 0, "open %s: %s", dir, ct_error_message());
    return c;
}

/* Writes `len` bytes of (seed, index) content through the streaming writer in
 * pieces of `piece` bytes. */
static inline int tc_write_entry(ct_cache *c, const uint8_t key[CT_KEY_LEN], uint64_t seed, uint64_t index,
                                 size_t len, size_t piece, json_t *record)
{
    uint8_t *buf = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(buf);
    tc_fill(buf, len, seed, index);
    ct_blob_writer *w;
    int rc = ct_blob_writer_open(c, &w);
    for (size_t off = 0; !rc && off < len; off += piece)
        rc = ct_blob_write(w, buf + off, len - off < piece ? len - off : piece);
    if (rc)
        ct_blob_abort(w);
    else
        rc = ct_blob_commit(w, key, record);
    free(buf);
    return rc;
}

/* Reads the whole blob through the chunk iterator and compares it with
 * (seed, index) content of `len` bytes. */
static inline void tc_check_entry(ct_cache *c, const uint8_t key[CT_KEY_LEN], uint64_t seed,
                                  uint64_t index, size_t len)
{
    uint8_t *want = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(want);
    tc_fill(want, len, seed, index);
    ct_blob_reader *r;
    ck_assert_msg(ct_blob_reader_open(c, key, &r) == 0, "%s", ct_error_message());
    ck_assert_uint_eq(ct_blob_size(r), len);
    ct_blob_chunk ch;
    uint64_t at = 0;
    int rc;
    while ((rc = ct_blob_next_chunk(r, &ch)) == 1) {
        ck_assert_uint_eq(ch.offset, at);
        ck_assert_uint_le(at + ch.len, len);
        ck_assert_msg(memcmp(ch.data, want + at, ch.len) == 0, "content differs in chunk at %llu",
                      (unsigned long long)at);
        at += ch.len;
    }
    ck_assert_msg(rc == 0, "%s", ct_error_message());
    ck_assert_uint_eq(at, len);
    ct_blob_reader_close(r);
    free(want);
}

/* Independent reference: coreutils' sha256sum over the bytes written to a file. */
static inline void tc_sha256sum(const char *dir, const void *data, size_t len, char hex[65])
{
    char path[PATH_MAX + 32], cmd[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/sha-input.bin", dir);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(len ? fwrite(data, 1, len, f) : 0, len);
    fclose(f);
    snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(fscanf(p, "%64s", hex), 1);
    ck_assert_int_eq(pclose(p), 0);
    unlink(path);
}

static inline int tc_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void tc_rmtree(const char *dir) { nftw(dir, tc_rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

/* Raw LMDB access to a (closed) cache, to damage it the way a disk or a bug could. */
typedef struct {
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
} tc_raw;

static inline void tc_raw_open(tc_raw *r, const char *dir, const char *db)
{
    ck_assert_int_eq(mdb_env_create(&r->env), 0);
    mdb_env_set_maxdbs(r->env, 8);
    mdb_env_set_mapsize(r->env, (size_t)1 << 30);
    ck_assert_int_eq(mdb_env_open(r->env, dir, 0, 0644), 0);
    ck_assert_int_eq(mdb_txn_begin(r->env, NULL, 0, &r->txn), 0);
    ck_assert_int_eq(mdb_dbi_open(r->txn, db, 0, &r->dbi), 0);
}

static inline void tc_raw_close(tc_raw *r)
{
    ck_assert_int_eq(mdb_txn_commit(r->txn), 0);
    mdb_env_close(r->env);
}

#endif

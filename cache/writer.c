/* The streaming blob writer. Data is buffered up to one chunk; each full chunk is
 * stored by its own write transaction under a random blob id registered in the
 * "pending" database, with the writer's lock file held so that gc can tell a live
 * writer from a dead one. The entry becomes visible only in the commit transaction.
 * A blob that fits in one chunk never becomes pending: its chunk and record are
 * stored together by the commit. */
#include "cache/cache_internal.h"
#include "common/error.h"
#include "common/sha256.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

struct ct_blob_writer {
    ct_cache *c;
    ct_sha256 *sha;
    uint8_t id[CACHE_ID_LEN];
    size_t chunk_size;
    uint8_t *buf;
    size_t len, cap;
    uint64_t size;    /* bytes written so far */
    uint64_t flushed; /* chunks stored so far */
    int registered;   /* pending record stored and lock held */
    int lock_fd;
    int failed;
    char lock_path[PATH_MAX];
};

static void new_id(uint8_t id[CACHE_ID_LEN])
{
    if (getrandom(id, CACHE_ID_LEN, 0) == CACHE_ID_LEN)
        return;
    /* No entropy source: uniqueness still only needs to hold on this machine. */
    static _Atomic uint64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 48) ^
                 (counter++ * 0x9E3779B97F4A7C15ULL);
    memcpy(id, &x, CACHE_ID_LEN);
}

static int chunks_exist(ct_cache *c, MDB_txn *txn, const uint8_t id[CACHE_ID_LEN], int *exist)
{
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, c->db_chunks, &cur);
    if (mrc)
        return cache_mdb_error(c, mrc, "cannot open a cursor");
    uint8_t start[CACHE_CHUNK_KEY_LEN];
    cache_chunk_key(id, 0, start);
    MDB_val k = {sizeof start, start}, v;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    *exist = mrc == 0 && k.mv_size == CACHE_CHUNK_KEY_LEN && memcmp(k.mv_data, id, CACHE_ID_LEN) == 0;
    mdb_cursor_close(cur);
    return mrc == 0 || mrc == MDB_NOTFOUND ? 0 : cache_mdb_error(c, mrc, "cannot read chunks");
}

int ct_blob_writer_open(ct_cache *c, ct_blob_writer **out)
{
    *out = NULL;
    int rc = cache_require_writable(c, "write a blob");
    if (rc)
        return rc;
    ct_blob_writer *w = calloc(1, sizeof *w);
    if (!w)
        return ct_error_set(CT_ENOMEM, "out of memory");
    if ((rc = ct_sha256_new(&w->sha)) != 0) {
        free(w);
        return rc;
    }
    w->c = c;
    w->chunk_size = c->chunk_size;
    w->lock_fd = -1;
    new_id(w->id);
    *out = w;
    return 0;
}

/* --- registration as a pending write ---------------------------------------------- */

enum { ID_TAKEN = 1 };

static int register_body(ct_cache *c, MDB_txn *txn, void *arg)
{
    ct_blob_writer *w = arg;
    MDB_val k = {CACHE_ID_LEN, w->id}, v;
    int exist = 0;
    int mrc = mdb_get(txn, c->db_pending, &k, &v);
    if (mrc == 0)
        return ID_TAKEN;
    if (mrc != MDB_NOTFOUND)
        return cache_mdb_error(c, mrc, "cannot read pending writes");
    int rc = chunks_exist(c, txn, w->id, &exist);
    if (rc || exist)
        return rc ? rc : ID_TAKEN;
    char host[256] = "", when[32], info[512];
    gethostname(host, sizeof host - 1);
    cache_iso_time(when);
    json_t *j = json_pack("{s:I, s:s, s:s}", "pid", (json_int_t)getpid(), "host", host, "started", when);
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    snprintf(info, sizeof info, "%s", text ? text : "{}");
    free(text);
    v.mv_size = strlen(info);
    v.mv_data = info;
    return cache_mdb_error(c, mdb_put(txn, c->db_pending, &k, &v, 0), "cannot register a pending write");
}

static int register_pending(ct_blob_writer *w)
{
    for (int attempt = 0; attempt < 16; attempt++) {
        if (attempt)
            new_id(w->id);
        cache_writer_lock_path(w->c, w->id, w->lock_path, sizeof w->lock_path);
        int rc = cache_lockfile_acquire(w->lock_path, 0, NULL, NULL, &w->lock_fd);
        if (rc == CT_EBUSY)
            continue;
        if (rc)
            return rc;
        /* The lock is held before the pending record exists, so gc never sees a
         * pending write whose lock is free while its writer lives. */
        rc = cache_write(w->c, register_body, w);
        if (rc == 0) {
            w->registered = 1;
            return 0;
        }
        cache_lockfile_release(w->lock_path, w->lock_fd, 1);
        w->lock_fd = -1;
        if (rc != ID_TAKEN)
            return rc;
    }
    return ct_error_set(CT_EIO, "%s: cannot find a free blob id", w->c->dir);
}

/* --- chunks ------------------------------------------------------------------------ */

typedef struct {
    ct_blob_writer *w;
    const void *data;
    size_t len;
} chunk_arg;

static int put_chunk(ct_cache *c, MDB_txn *txn, const ct_blob_writer *w, uint64_t index,
                     const void *data, size_t len)
{
    uint8_t key[CACHE_CHUNK_KEY_LEN];
    cache_chunk_key(w->id, index, key);
    MDB_val k = {sizeof key, key}, v = {len, (void *)data};
    return cache_mdb_error(c, mdb_put(txn, c->db_chunks, &k, &v, 0), "cannot store a blob chunk");
}

static int chunk_body(ct_cache *c, MDB_txn *txn, void *arg)
{
    chunk_arg *a = arg;
    return put_chunk(c, txn, a->w, a->w->flushed, a->data, a->len);
}

static int flush_chunk(ct_blob_writer *w, const void *data, size_t len)
{
    int rc = w->registered ? 0 : register_pending(w);
    if (rc)
        return rc;
    chunk_arg a = {w, data, len};
    if ((rc = cache_write(w->c, chunk_body, &a)) != 0)
        return rc;
    w->flushed++;
    return 0;
}

static int writer_failed(ct_blob_writer *w)
{
    return ct_error_set(CT_EINVAL, "%s: blob writer used after an earlier failure", w->c->dir);
}

int ct_blob_write(ct_blob_writer *w, const void *data, size_t len)
{
    if (w->failed)
        return writer_failed(w);
    int rc = ct_sha256_update(w->sha, data, len);
    const uint8_t *p = data;
    while (!rc && len) {
        /* A full buffer is kept until more data arrives, so that a blob of exactly
         * one chunk is still stored by the commit alone. */
        if (w->len == w->chunk_size) {
            if ((rc = flush_chunk(w, w->buf, w->len)) != 0)
                break;
            w->len = 0;
        }
        if (w->len == 0 && len > w->chunk_size) {
            /* Whole chunks straight from the caller's memory, with more to come. */
            if ((rc = flush_chunk(w, p, w->chunk_size)) != 0)
                break;
            p += w->chunk_size;
            len -= w->chunk_size;
            w->size += w->chunk_size;
            continue;
        }
        size_t n = w->chunk_size - w->len;
        if (n > len)
            n = len;
        if (w->len + n > w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 65536;
            if (cap < w->len + n)
                cap = w->len + n;
            if (cap > w->chunk_size)
                cap = w->chunk_size;
            uint8_t *nb = realloc(w->buf, cap);
            if (!nb) {
                rc = ct_error_set(CT_ENOMEM, "out of memory buffering a blob chunk of %zu bytes", cap);
                break;
            }
            w->buf = nb;
            w->cap = cap;
        }
        memcpy(w->buf + w->len, p, n);
        w->len += n;
        w->size += n;
        p += n;
        len -= n;
    }
    if (rc)
        w->failed = 1;
    return rc;
}

/* --- commit and abort ------------------------------------------------------------- */

typedef struct {
    ct_blob_writer *w;
    const uint8_t *key;
    const json_t *record;
    cache_blob_info bi;
} commit_arg;

static int entry_exists(ct_cache *c, MDB_txn *txn, const uint8_t *key, int *exists)
{
    MDB_val k = {CT_KEY_LEN, (void *)key}, v;
    int mrc = mdb_get(txn, c->db_entries, &k, &v);
    *exists = mrc == 0;
    return mrc == 0 || mrc == MDB_NOTFOUND ? 0 : cache_mdb_error(c, mrc, "cannot read an entry");
}

static int put_entry(ct_cache *c, MDB_txn *txn, commit_arg *a)
{
    char *text;
    size_t len;
    int rc = cache_record_build(a->record, &a->bi, &text, &len);
    if (rc)
        return rc;
    MDB_val k = {CT_KEY_LEN, (void *)a->key}, v = {len, text};
    rc = cache_mdb_error(c, mdb_put(txn, c->db_entries, &k, &v, MDB_NOOVERWRITE), "cannot store an entry");
    free(text);
    return rc;
}

static int commit_body(ct_cache *c, MDB_txn *txn, void *arg)
{
    commit_arg *a = arg;
    ct_blob_writer *w = a->w;
    int exists, rc;
    if ((rc = entry_exists(c, txn, a->key, &exists)) != 0)
        return rc;
    MDB_val pk = {CACHE_ID_LEN, w->id}, pv;
    if (w->registered) {
        int mrc = mdb_get(txn, c->db_pending, &pk, &pv);
        if (mrc == MDB_NOTFOUND)
            return ct_error_set(CT_ECORRUPT, "%s: the pending record of this blob write vanished", c->dir);
        if (mrc)
            return cache_mdb_error(c, mrc, "cannot read pending writes");
        if (exists) { /* someone else stored the key first: drop our copy */
            if ((rc = cache_delete_chunks(c, txn, w->id, NULL)) != 0)
                return rc;
            return cache_mdb_error(c, mdb_del(txn, c->db_pending, &pk, NULL), "cannot delete a pending write");
        }
    } else {
        if (exists)
            return 0;
        /* Never pending, so nobody else knows this id: pick another if taken. */
        int taken = 1;
        for (int i = 0; taken && i < 16; i++) {
            if ((rc = chunks_exist(c, txn, w->id, &taken)) != 0)
                return rc;
            if (taken)
                new_id(w->id);
        }
        if (taken)
            return ct_error_set(CT_EIO, "%s: cannot find a free blob id", c->dir);
    }
    if (w->len && (rc = put_chunk(c, txn, w, w->flushed, w->buf, w->len)) != 0)
        return rc;
    memcpy(a->bi.id, w->id, CACHE_ID_LEN);
    if ((rc = put_entry(c, txn, a)) != 0)
        return rc;
    if (w->registered)
        return cache_mdb_error(c, mdb_del(txn, c->db_pending, &pk, NULL), "cannot delete a pending write");
    return 0;
}

static int abort_body(ct_cache *c, MDB_txn *txn, void *arg)
{
    ct_blob_writer *w = arg;
    int rc = cache_delete_chunks(c, txn, w->id, NULL);
    if (rc)
        return rc;
    MDB_val pk = {CACHE_ID_LEN, w->id};
    int mrc = mdb_del(txn, w->c->db_pending, &pk, NULL);
    return mrc == MDB_NOTFOUND ? 0 : cache_mdb_error(c, mrc, "cannot delete a pending write");
}

static void writer_free(ct_blob_writer *w)
{
    if (w->registered)
        cache_lockfile_release(w->lock_path, w->lock_fd, 1);
    ct_sha256_free(w->sha);
    free(w->buf);
    free(w);
}

void ct_blob_abort(ct_blob_writer *w)
{
    if (!w)
        return;
    /* If this fails the pending write stays behind; its lock is released below,
     * so gc reclaims it. */
    if (w->registered)
        cache_write(w->c, abort_body, w);
    writer_free(w);
}

/* Aborts after a failure without losing the failure's message. */
static int abort_keeping_error(ct_blob_writer *w, int rc)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", ct_error_message());
    ct_blob_abort(w);
    return ct_error_set(rc, "%s", msg);
}

int ct_blob_commit(ct_blob_writer *w, const uint8_t key[CT_KEY_LEN], json_t *record)
{
    if (w->failed)
        return abort_keeping_error(w, writer_failed(w));
    if (record && !json_is_object(record))
        return abort_keeping_error(w, ct_error_set(CT_EINVAL, "%s: cache record must be a JSON object", w->c->dir));
    commit_arg a = {w, key, record, {0}};
    a.bi.size = w->size;
    a.bi.chunk_size = w->chunk_size;
    a.bi.chunks = w->flushed + (w->len > 0);
    ct_sha256 *sha = w->sha;
    w->sha = NULL;
    int rc = ct_sha256_final(sha, a.bi.sha256);
    if (!rc)
        rc = cache_write(w->c, commit_body, &a);
    if (rc)
        return abort_keeping_error(w, rc);
    writer_free(w);
    return 0;
}

int ct_cache_put(ct_cache *c, const uint8_t key[CT_KEY_LEN], json_t *record, const void *data, size_t len)
{
    ct_blob_writer *w;
    int rc = ct_blob_writer_open(c, &w);
    if (rc)
        return rc;
    if ((rc = ct_blob_write(w, data, len)) != 0)
        return abort_keeping_error(w, rc);
    return ct_blob_commit(w, key, record);
}

/* ct_cache_gc: reclaims abandoned writes, then deletes what no named root reaches
 * and any chunk that no entry or pending write owns. */
#include "cache/cache_internal.h"
#include "common/error.h"
#include "common/sha256.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- abandoned writes -------------------------------------------------------------- */

typedef struct {
    const uint8_t *id;
    int found;
    uint64_t bytes;
} reclaim_arg;

static int reclaim_body(ct_cache *c, MDB_txn *txn, void *arg)
{
    reclaim_arg *a = arg;
    a->found = 0;
    a->bytes = 0;
    MDB_val k = {CACHE_ID_LEN, (void *)a->id}, v;
    int mrc = mdb_get(txn, c->db_pending, &k, &v);
    if (mrc == MDB_NOTFOUND)
        return 0; /* its writer committed or aborted meanwhile */
    if (mrc)
        return cache_mdb_error(c, mrc, "cannot read pending writes");
    int rc = cache_delete_chunks(c, txn, a->id, &a->bytes);
    if (rc)
        return rc;
    a->found = 1;
    return cache_mdb_error(c, mdb_del(txn, c->db_pending, &k, NULL), "cannot delete a pending write");
}

static int count_chunks(ct_cache *c, MDB_txn *txn, const uint8_t id[CACHE_ID_LEN], uint64_t *bytes)
{
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, c->db_chunks, &cur);
    if (mrc)
        return cache_mdb_error(c, mrc, "cannot open a cursor");
    uint8_t start[CACHE_CHUNK_KEY_LEN];
    cache_chunk_key(id, 0, start);
    MDB_val k = {sizeof start, start}, v;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         mrc == 0 && k.mv_size == CACHE_CHUNK_KEY_LEN && memcmp(k.mv_data, id, CACHE_ID_LEN) == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        *bytes += v.mv_size;
    mdb_cursor_close(cur);
    return mrc == 0 || mrc == MDB_NOTFOUND ? 0 : cache_mdb_error(c, mrc, "cannot read chunks");
}

static int list_pending(ct_cache *c, uint8_t (**ids)[CACHE_ID_LEN], size_t *n)
{
    *ids = NULL;
    *n = 0;
    cache_txn t;
    int rc = cache_txn_begin(c, 1, &t);
    if (rc)
        return rc;
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(t.txn, c->db_pending, &cur);
    size_t cap = 0;
    MDB_val k, v;
    if (!mrc) {
        for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0 && !rc;
             mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (k.mv_size != CACHE_ID_LEN)
                continue;
            if (*n == cap) {
                cap = cap ? 2 * cap : 16;
                void *ni = realloc(*ids, cap * CACHE_ID_LEN);
                if (!ni) {
                    rc = ct_error_set(CT_ENOMEM, "out of memory");
                    break;
                }
                *ids = ni;
            }
            memcpy((*ids)[(*n)++], k.mv_data, CACHE_ID_LEN);
        }
        mdb_cursor_close(cur);
    }
    cache_txn_abort(c, &t);
    if (!rc && mrc != MDB_NOTFOUND)
        rc = cache_mdb_error(c, mrc, "cannot list pending writes");
    return rc;
}

/* A pending write whose lock file can be locked has no live writer: the kernel
 * released the lock when the writer died. */
static int reclaim_abandoned(ct_cache *c, int dry_run, ct_cache_gc_stats *st)
{
    uint8_t (*ids)[CACHE_ID_LEN];
    size_t n;
    int rc = list_pending(c, &ids, &n);
    for (size_t i = 0; i < n && !rc; i++) {
        char path[PATH_MAX];
        int fd;
        cache_writer_lock_path(c, ids[i], path, sizeof path);
        rc = cache_lockfile_acquire(path, 0, NULL, NULL, &fd);
        if (rc == CT_EBUSY) {
            rc = 0;
            continue;
        }
        if (rc)
            break;
        reclaim_arg a = {ids[i], 0, 0};
        if (dry_run) {
            cache_txn t;
            if ((rc = cache_txn_begin(c, 1, &t)) == 0) {
                MDB_val k = {CACHE_ID_LEN, ids[i]}, v;
                a.found = mdb_get(t.txn, c->db_pending, &k, &v) == 0;
                if (a.found)
                    rc = count_chunks(c, t.txn, ids[i], &a.bytes);
                cache_txn_abort(c, &t);
            }
        } else {
            rc = cache_write(c, reclaim_body, &a);
        }
        if (!rc && a.found) {
            st->abandoned_writes++;
            st->bytes_removed += a.bytes;
        }
        cache_lockfile_release(path, fd, 1);
    }
    free(ids);
    return rc;
}

/* --- reachability ------------------------------------------------------------------ */

typedef struct {
    int dry_run;
    uint64_t entries_removed, bytes_removed;
    cache_keyset live; /* entry keys reachable from a root */
    cache_keyset ids;  /* blob ids owned by kept entries or pending writes */
    uint8_t (*queue)[CT_KEY_LEN];
    size_t qn, qcap;
} gc_arg;

static int enqueue(gc_arg *a, const uint8_t key[CT_KEY_LEN])
{
    int added = cache_keyset_add(&a->live, key);
    if (added <= 0)
        return added;
    if (a->qn == a->qcap) {
        size_t cap = a->qcap ? a->qcap * 2 : 64;
        void *nq = realloc(a->queue, cap * CT_KEY_LEN);
        if (!nq)
            return ct_error_set(CT_ENOMEM, "out of memory");
        a->queue = nq;
        a->qcap = cap;
    }
    memcpy(a->queue[a->qn++], key, CT_KEY_LEN);
    return 0;
}

/* Follows "inputs": hex keys, possibly inside arrays or objects. Strings that are
 * not keys (other key material) are ignored. */
static int follow(gc_arg *a, const json_t *j, int depth)
{
    if (depth > 16)
        return 0;
    if (json_is_string(j)) {
        uint8_t k[CT_KEY_LEN];
        const char *s = json_string_value(j);
        if (strlen(s) == 2 * CT_KEY_LEN && ct_hex_decode(s, k, CT_KEY_LEN) == 0)
            return enqueue(a, k);
        return 0;
    }
    int rc = 0;
    if (json_is_array(j)) {
        size_t i;
        const json_t *v;
        json_array_foreach(j, i, v) if (!rc) rc = follow(a, v, depth + 1);
    } else if (json_is_object(j)) {
        const char *name;
        const json_t *v;
        json_object_foreach((json_t *)j, name, v) if (!rc) rc = follow(a, v, depth + 1);
    }
    return rc;
}

static int mark(ct_cache *c, MDB_txn *txn, gc_arg *a)
{
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, c->db_roots, &cur);
    if (mrc)
        return cache_mdb_error(c, mrc, "cannot open a cursor");
    MDB_val k, v;
    int rc = 0;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0 && !rc;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        for (size_t off = 0; off + CT_KEY_LEN <= v.mv_size && !rc; off += CT_KEY_LEN)
            rc = enqueue(a, (const uint8_t *)v.mv_data + off);
    mdb_cursor_close(cur);
    if (!rc && mrc != MDB_NOTFOUND)
        rc = cache_mdb_error(c, mrc, "cannot read roots");
    for (size_t i = 0; i < a->qn && !rc; i++) {
        uint8_t key[CT_KEY_LEN];
        memcpy(key, a->queue[i], CT_KEY_LEN); /* the queue may move while we follow */
        k.mv_size = CT_KEY_LEN;
        k.mv_data = key;
        if (mdb_get(txn, c->db_entries, &k, &v) != 0)
            continue;
        json_t *rec;
        /* A damaged record cannot name its inputs; it is kept, and verify reports it. */
        if (cache_record_parse(c, key, &v, &rec, NULL) != 0)
            continue;
        rc = follow(a, json_object_get(json_object_get(rec, "material"), "inputs"), 0);
        json_decref(rec);
    }
    return rc;
}

/* --- sweeping ---------------------------------------------------------------------- */

static int sweep_entries(ct_cache *c, MDB_txn *txn, gc_arg *a)
{
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, c->db_entries, &cur);
    if (mrc)
        return cache_mdb_error(c, mrc, "cannot open a cursor");
    uint8_t (*victims)[CT_KEY_LEN] = NULL;
    size_t nv = 0, cap = 0;
    int rc = 0;
    MDB_val k, v;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0 && !rc;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != CT_KEY_LEN)
            continue;
        cache_blob_info bi;
        int parsed = cache_record_parse(c, k.mv_data, &v, NULL, &bi) == 0;
        if (cache_keyset_has(&a->live, k.mv_data)) {
            if (parsed && cache_keyset_add(&a->ids, bi.id) < 0)
                rc = CT_ENOMEM;
            continue;
        }
        if (nv == cap) {
            cap = cap ? cap * 2 : 64;
            void *nn = realloc(victims, cap * CT_KEY_LEN);
            if (!nn) {
                rc = ct_error_set(CT_ENOMEM, "out of memory");
                break;
            }
            victims = nn;
        }
        memcpy(victims[nv++], k.mv_data, CT_KEY_LEN);
        if (a->dry_run && parsed) {
            a->bytes_removed += bi.size;
            /* Not deleted in a dry run: keep its chunks from counting as orphans. */
            if (cache_keyset_add(&a->ids, bi.id) < 0)
                rc = CT_ENOMEM;
        }
    }
    mdb_cursor_close(cur);
    if (!rc && mrc != MDB_NOTFOUND)
        rc = cache_mdb_error(c, mrc, "cannot iterate entries");
    for (size_t i = 0; i < nv && !rc; i++) {
        if (!a->dry_run)
            rc = cache_delete_entry_txn(c, txn, victims[i], &a->bytes_removed);
        a->entries_removed++;
    }
    free(victims);
    return rc;
}

/* Chunks whose blob id no kept entry and no pending write names: left behind by
 * records that were removed after they stopped parsing. */
static int sweep_chunks(ct_cache *c, MDB_txn *txn, gc_arg *a)
{
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, c->db_pending, &cur);
    if (mrc)
        return cache_mdb_error(c, mrc, "cannot open a cursor");
    MDB_val k, v;
    int rc = 0;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0 && !rc;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        if (k.mv_size == CACHE_ID_LEN && cache_keyset_add(&a->ids, k.mv_data) < 0)
            rc = CT_ENOMEM;
    mdb_cursor_close(cur);
    if (rc)
        return rc;
    if ((mrc = mdb_cursor_open(txn, c->db_chunks, &cur)) != 0)
        return cache_mdb_error(c, mrc, "cannot open a cursor");
    uint8_t id[CACHE_ID_LEN], seek[CACHE_CHUNK_KEY_LEN] = {0};
    k.mv_size = sizeof seek;
    k.mv_data = seek;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0 && !rc;) {
        if (k.mv_size != CACHE_CHUNK_KEY_LEN) {
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            continue;
        }
        memcpy(id, k.mv_data, CACHE_ID_LEN);
        if (!cache_keyset_has(&a->ids, id)) {
            uint64_t bytes = 0;
            rc = a->dry_run ? count_chunks(c, txn, id, &bytes) : cache_delete_chunks(c, txn, id, &bytes);
            a->bytes_removed += bytes;
        }
        /* Continue at the next blob id. */
        int carry = 1;
        for (int i = CACHE_ID_LEN - 1; i >= 0 && carry; i--)
            carry = ++id[i] == 0;
        if (carry)
            break;
        memcpy(seek, id, CACHE_ID_LEN);
        memset(seek + CACHE_ID_LEN, 0, CACHE_CHUNK_KEY_LEN - CACHE_ID_LEN);
        k.mv_size = sizeof seek;
        k.mv_data = seek;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    }
    mdb_cursor_close(cur);
    if (!rc && mrc && mrc != MDB_NOTFOUND)
        rc = cache_mdb_error(c, mrc, "cannot iterate chunks");
    return rc;
}

static void gc_reset(gc_arg *a)
{
    cache_keyset_free(&a->live);
    cache_keyset_free(&a->ids);
    cache_keyset_init(&a->live, CT_KEY_LEN);
    cache_keyset_init(&a->ids, CACHE_ID_LEN);
    a->qn = 0;
    a->entries_removed = a->bytes_removed = 0;
}

/* Marking and sweeping share one write transaction, so that a root set or an
 * entry committed meanwhile is either fully seen or not at all. */
static int gc_body(ct_cache *c, MDB_txn *txn, void *arg)
{
    gc_arg *a = arg;
    gc_reset(a);
    int rc = mark(c, txn, a);
    if (!rc)
        rc = sweep_entries(c, txn, a);
    if (!rc)
        rc = sweep_chunks(c, txn, a);
    if (rc == CT_ENOMEM)
        ct_error_set(CT_ENOMEM, "%s: out of memory during gc", c->dir);
    return rc;
}

/* Lock files nobody holds are left by killed processes; remove them. */
static void sweep_lock_files(ct_cache *c)
{
    DIR *d = opendir(c->locks_dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".lock") != 0)
            continue;
        char path[PATH_MAX];
        int fd;
        snprintf(path, sizeof path, "%s/%s", c->locks_dir, e->d_name);
        if (cache_lockfile_acquire(path, 0, NULL, NULL, &fd) == 0)
            cache_lockfile_release(path, fd, 1);
    }
    closedir(d);
}

int ct_cache_gc(ct_cache *c, int dry_run, ct_cache_gc_stats *st)
{
    memset(st, 0, sizeof *st);
    int rc = dry_run ? 0 : cache_require_writable(c, "collect garbage");
    if (rc)
        return rc;
    int dead = 0;
    mdb_reader_check(c->env, &dead); /* stale readers pin pages gc would free */
    if ((rc = reclaim_abandoned(c, dry_run, st)) != 0)
        return rc;
    gc_arg a;
    memset(&a, 0, sizeof a);
    a.dry_run = dry_run;
    if (dry_run) {
        cache_txn t;
        if ((rc = cache_txn_begin(c, 1, &t)) == 0) {
            rc = gc_body(c, t.txn, &a);
            cache_txn_abort(c, &t);
        }
    } else {
        rc = cache_write(c, gc_body, &a);
    }
    if (!rc) {
        st->entries_removed = a.entries_removed;
        st->bytes_removed += a.bytes_removed;
    }
    cache_keyset_free(&a.live);
    cache_keyset_free(&a.ids);
    free(a.queue);
    if (!rc && !dry_run)
        sweep_lock_files(c);
    return rc;
}

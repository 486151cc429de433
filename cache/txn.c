/* Transactions of this process: every one is registered so that the map is only
 * remapped (grown when full, or adopted after another process grew it) while none
 * is open, since a remap moves every pointer into the map. */
#include "cache/cache_internal.h"
#include "common/error.h"
#include "common/progress.h"

#include <errno.h>
#include <time.h>


int cache_mdb_error(ct_cache *c, int rc, const char *what)
{
    switch (rc) {
    case MDB_SUCCESS:
        return 0;
    case MDB_MAP_FULL:
        return MDB_MAP_FULL;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_PANIC:
        return ct_error_set(CT_ECORRUPT, "%s: %s: LMDB database is damaged: %s", c->dir, what,
                            mdb_strerror(rc));
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    case MDB_INCOMPATIBLE:
        return ct_error_set(CT_EFORMAT, "%s: %s: %s", c->dir, what, mdb_strerror(rc));
    case MDB_READERS_FULL:
        return ct_error_set(CT_EBUSY, "%s: %s: too many open readers (%d)", c->dir, what,
                            CACHE_MAX_READERS);
    case ENOMEM:
        return ct_error_set(CT_ENOMEM, "%s: %s: out of memory", c->dir, what);
    default:
        return ct_error_set(CT_EIO, "%s: %s: %s", c->dir, what, mdb_strerror(rc));
    }
}

int cache_require_writable(ct_cache *c, const char *what)
{
    if (c->read_only)
        return ct_error_set(CT_EINVAL, "%s: cannot %s: the cache was opened read-only", c->dir, what);
    return 0;
}

static int self_holds_txn(const ct_cache *c)
{
    pthread_t me = pthread_self();
    for (const cache_txn *t = c->active; t; t = t->next)
        if (pthread_equal(t->owner, me))
            return 1;
    return 0;
}

static void unregister(ct_cache *c, cache_txn *t)
{
    pthread_mutex_lock(&c->mu);
    if (t->prev)
        t->prev->next = t->next;
    else
        c->active = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->prev = t->next = NULL;
    c->n_active--;
    if (c->remapping)
        pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Remaps the environment once no transaction of this process is open. grow=1
 * doubles the map unless another thread remapped since generation `gen`; grow=0
 * adopts the size another process recorded (after MDB_MAP_RESIZED). */
static int remap(ct_cache *c, unsigned gen, int grow)
{
    pthread_mutex_lock(&c->mu);
    if (self_holds_txn(c)) {
        pthread_mutex_unlock(&c->mu);
        return ct_error_set(CT_EBUSY,
                            "%s: the LMDB map must be %s, but this thread holds an open read "
                            "transaction (a blob reader or iteration) that the remap would "
                            "invalidate; close it before writing",
                            c->dir, grow ? "grown" : "remapped");
    }
    c->remapping++;
    int logged = 0;
    time_t start = time(NULL);
    while (c->n_active > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        if (!logged && c->n_active > 0 && time(NULL) - start >= 10) {
            ct_log("cache %s: waiting for %zu open read transaction(s) to close before the "
                   "map can grow", c->dir, c->n_active);
            logged = 1;
        }
    }
    int rc = 0;
    if (!grow || c->map_gen == gen) {
        MDB_envinfo info;
        mdb_env_info(c->env, &info);
        size_t size = 0;
        if (grow) {
            if (info.me_mapsize >= CACHE_MAX_MAP)
                rc = ct_error_set(CT_EIO, "%s: the LMDB map is full at %zu bytes and cannot grow further",
                                  c->dir, info.me_mapsize);
            size = info.me_mapsize * 2;
        }
        if (!rc) {
            int mrc = mdb_env_set_mapsize(c->env, size);
            if (mrc) {
                rc = ct_error_set(CT_EIO, "%s: cannot resize the LMDB map to %zu bytes: %s", c->dir,
                                  size, mdb_strerror(mrc));
                /* The old mapping is gone: restore one so the environment stays usable. */
                mdb_env_set_mapsize(c->env, info.me_mapsize);
            }
            c->map_gen++;
        }
    }
    c->remapping--;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int cache_txn_begin(ct_cache *c, int read_only, cache_txn *t)
{
    for (int attempt = 0;; attempt++) {
        pthread_mutex_lock(&c->mu);
        /* A thread that already holds a transaction must not wait for a remap, which
         * itself waits for that transaction. */
        while (c->remapping && !self_holds_txn(c))
            pthread_cond_wait(&c->cv, &c->mu);
        t->owner = pthread_self();
        t->gen = c->map_gen;
        t->prev = NULL;
        t->next = c->active;
        if (c->active)
            c->active->prev = t;
        c->active = t;
        c->n_active++;
        pthread_mutex_unlock(&c->mu);

        int rc = mdb_txn_begin(c->env, NULL, read_only ? MDB_RDONLY : 0, &t->txn);
        if (rc == 0)
            return 0;
        t->txn = NULL;
        unregister(c, t);
        if (rc == MDB_MAP_RESIZED && attempt < 8) {
            int r = remap(c, 0, 0);
            if (r)
                return r;
            continue;
        }
        return cache_mdb_error(c, rc, read_only ? "cannot begin a read transaction"
                                                : "cannot begin a write transaction");
    }
}

void cache_txn_abort(ct_cache *c, cache_txn *t)
{
    if (!t->txn)
        return;
    mdb_txn_abort(t->txn);
    t->txn = NULL;
    unregister(c, t);
}

int cache_txn_commit(ct_cache *c, cache_txn *t)
{
    int rc = mdb_txn_commit(t->txn);
    t->txn = NULL;
    unregister(c, t);
    return rc;
}

int cache_write(ct_cache *c, cache_write_fn fn, void *arg)
{
    int rc = cache_require_writable(c, "write");
    if (rc)
        return rc;
    for (;;) {
        cache_txn t;
        rc = cache_txn_begin(c, 0, &t);
        if (rc)
            return rc;
        unsigned gen = t.gen;
        rc = fn(c, t.txn, arg);
        if (rc == 0) {
            rc = cache_txn_commit(c, &t);
            if (rc && rc != MDB_MAP_FULL)
                return cache_mdb_error(c, rc, "cannot commit");
        } else {
            cache_txn_abort(c, &t);
        }
        if (rc != MDB_MAP_FULL)
            return rc;
        /* Readers left by dead processes pin old pages; clear them before growing. */
        int dead = 0;
        if (mdb_reader_check(c->env, &dead) == 0 && dead > 0)
            continue;
        rc = remap(c, gen, 1);
        if (rc)
            return rc;
    }
}

/* Opening and closing the LMDB environment of a cache directory. */
#include "cache/cache_internal.h"
#include "cache/fs_internal.h"
#include "common/error.h"
#include "common/io.h"
#include "common/progress.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>


/* The database can never outgrow its filesystem, so mapping the filesystem's size
 * (within bounds) means the map rarely has to grow. The reservation is virtual:
 * LMDB extends data.mdb only as it fills. */
static size_t default_map_size(const char *dir)
{
    struct statvfs sv;
    size_t size = CACHE_DEFAULT_MAP;
    if (statvfs(dir, &sv) == 0) {
        double fs = (double)sv.f_blocks * (double)sv.f_frsize;
        if (fs > (double)CACHE_MAX_DEFAULT_MAP)
            fs = (double)CACHE_MAX_DEFAULT_MAP;
        size_t gib = (size_t)(fs / (double)((size_t)1 << 30)) + 1;
        if (gib << 30 > size)
            size = gib << 30;
    }
    return size;
}

static char *default_dir(void)
{
    const char *env = getenv("CROSSTIME_CACHE");
    if (env && *env)
        return strdup(env);
    const char *home = getenv("HOME");
    if (!home || !*home) {
        struct passwd *pw = getpwuid(getuid());
        home = pw ? pw->pw_dir : NULL;
    }
    if (!home)
        return NULL;
    size_t n = strlen(home) + sizeof "/.cache/crosstime";
    char *d = malloc(n);
    if (d)
        snprintf(d, n, "%s/.cache/crosstime", home);
    return d;
}

static int init_body(ct_cache *c, MDB_txn *txn, void *arg)
{
    unsigned flags = c->read_only ? 0 : MDB_CREATE;
    struct {
        const char *name;
        MDB_dbi *dbi;
    } dbs[] = {{"entries", &c->db_entries}, {"chunks", &c->db_chunks}, {"pending", &c->db_pending},
               {"roots", &c->db_roots}, {"meta", &c->db_meta}};
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++) {
        int mrc = mdb_dbi_open(txn, dbs[i].name, flags, dbs[i].dbi);
        if (mrc == MDB_NOTFOUND)
            return ct_error_set(CT_EFORMAT, "%s: not a crosstime cache (no \"%s\" database)", c->dir,
                                dbs[i].name);
        if (mrc)
            return cache_mdb_error(c, mrc, "cannot open the databases");
    }
    char want[16];
    snprintf(want, sizeof want, "%d", CT_CACHE_FORMAT);
    MDB_val k = {6, "format"}, v;
    int mrc = mdb_get(txn, c->db_meta, &k, &v);
    if (mrc == MDB_NOTFOUND) {
        if (c->read_only)
            return 0; /* an empty cache: nothing to check */
        v.mv_size = strlen(want);
        v.mv_data = want;
        return cache_mdb_error(c, mdb_put(txn, c->db_meta, &k, &v, 0), "cannot record the format version");
    }
    if (mrc)
        return cache_mdb_error(c, mrc, "cannot read the format version");
    if (v.mv_size != strlen(want) || memcmp(v.mv_data, want, v.mv_size) != 0)
        return ct_error_set(CT_EFORMAT, "%s: cache format '%.*s' is not supported (this build reads format %s)",
                            c->dir, (int)(v.mv_size < 32 ? v.mv_size : 32), (const char *)v.mv_data, want);
    return 0;
}

static int open_dbis(ct_cache *c)
{
    if (!c->read_only)
        return cache_write(c, init_body, NULL);
    cache_txn t;
    int rc = cache_txn_begin(c, 1, &t);
    if (rc)
        return rc;
    rc = init_body(c, t.txn, NULL);
    if (rc) {
        cache_txn_abort(c, &t);
        return rc;
    }
    /* Committing keeps the dbi handles open after the transaction. */
    rc = cache_txn_commit(c, &t);
    return rc ? cache_mdb_error(c, rc, "cannot open the databases") : 0;
}

int ct_cache_open(const ct_cache_options *opts, ct_cache **out)
{
    ct_cache_options o = CT_CACHE_OPTIONS_INIT;
    if (opts)
        o = *opts;
    *out = NULL;
    if (o.chunk_size > CACHE_MAX_CHUNK)
        return ct_error_set(CT_EINVAL, "cache chunk_size %zu exceeds the limit of %zu bytes",
                            o.chunk_size, CACHE_MAX_CHUNK);
    ct_cache *c = calloc(1, sizeof *c);
    if (!c)
        return ct_error_set(CT_ENOMEM, "out of memory");
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->chunk_size = o.chunk_size ? o.chunk_size : CT_CACHE_CHUNK;
    c->read_only = o.read_only;
    c->dir = o.dir && *o.dir ? strdup(o.dir) : default_dir();
    int rc = 0;
    if (!c->dir) {
        rc = ct_error_set(CT_EINVAL, "no cache directory: set CROSSTIME_CACHE or HOME");
        goto fail;
    }
    size_t n = strlen(c->dir) + sizeof "/locks";
    c->locks_dir = malloc(n);
    if (!c->locks_dir) {
        rc = ct_error_set(CT_ENOMEM, "out of memory");
        goto fail;
    }
    snprintf(c->locks_dir, n, "%s/locks", c->dir);

    if (!o.allow_network_fs && (rc = ct_cache_fs_check(c->dir)) != 0)
        goto fail;
    struct stat st;
    if (stat(c->dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
        rc = ct_error_set(CT_EINVAL, "%s: cache path exists but is not a directory", c->dir);
        goto fail;
    }
    if (!c->read_only) {
        if ((rc = ct_mkdirs(c->dir, 0755)) != 0 || (rc = ct_mkdirs(c->locks_dir, 0755)) != 0)
            goto fail;
    } else {
        char data[PATH_MAX];
        snprintf(data, sizeof data, "%s/data.mdb", c->dir);
        if (access(data, F_OK) != 0) {
            rc = ct_error_set(CT_ENOTFOUND, "%s: no cache here (data.mdb missing)", c->dir);
            goto fail;
        }
    }
    if (stat(c->dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rc = ct_error_set(CT_EINVAL, "%s: cache path is not a directory", c->dir);
        goto fail;
    }

    int mrc = 0;
    size_t want = o.initial_map_size ? o.initial_map_size : default_map_size(c->dir);
    for (;;) {
        mrc = mdb_env_create(&c->env);
        if (!mrc)
            mrc = mdb_env_set_maxdbs(c->env, 8);
        if (!mrc)
            mrc = mdb_env_set_maxreaders(c->env, CACHE_MAX_READERS);
        if (!mrc)
            mrc = mdb_env_set_mapsize(c->env, want);
        /* MDB_NOTLS: read transactions belong to objects (blob readers), not threads. */
        if (!mrc)
            mrc = mdb_env_open(c->env, c->dir, MDB_NOTLS | (c->read_only ? MDB_RDONLY : 0), 0644);
        /* Address space may be limited (ulimit -v): settle for a smaller default. */
        if (mrc == ENOMEM && !o.initial_map_size && want > CACHE_MIN_DEFAULT_MAP) {
            mdb_env_close(c->env);
            c->env = NULL;
            want /= 2;
            continue;
        }
        break;
    }
    if (mrc) {
        if (mrc == MDB_INVALID || mrc == MDB_VERSION_MISMATCH)
            rc = ct_error_set(CT_EFORMAT, "%s/data.mdb: not an LMDB database of a supported version: %s",
                              c->dir, mdb_strerror(mrc));
        else
            rc = ct_error_set(CT_EIO, "%s: cannot open the LMDB environment: %s", c->dir,
                              mdb_strerror(mrc));
        goto fail;
    }
    /* Adopt the size another process may have grown the map to, keep at least the
     * size asked for, and leave room to double: a remap has to wait for every open
     * reader of this process, so it should be rare. */
    MDB_envinfo info;
    MDB_stat es;
    mdb_env_set_mapsize(c->env, 0);
    mdb_env_info(c->env, &info);
    mdb_env_stat(c->env, &es);
    size_t size = info.me_mapsize > want ? info.me_mapsize : want;
    size_t used = (info.me_last_pgno + 1) * (size_t)es.ms_psize;
    if (size < 2 * used)
        size = 2 * used;
    if (size != info.me_mapsize && (mrc = mdb_env_set_mapsize(c->env, size)) != 0) {
        rc = ct_error_set(CT_EIO, "%s: cannot map %zu bytes: %s", c->dir, size, mdb_strerror(mrc));
        goto fail;
    }
    int dead = 0;
    mdb_reader_check(c->env, &dead);
    if ((rc = open_dbis(c)) != 0)
        goto fail;
    *out = c;
    return 0;
fail:
    ct_cache_close(c);
    return rc;
}

void ct_cache_close(ct_cache *c)
{
    if (!c)
        return;
    if (c->env)
        mdb_env_close(c->env);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c->dir);
    free(c->locks_dir);
    free(c);
}

const char *ct_cache_dir(const ct_cache *c) { return c->dir; }

static char lmdb_version[64];

static void lmdb_version_init(void)
{
    int major, minor, patch;
    mdb_version(&major, &minor, &patch);
    snprintf(lmdb_version, sizeof lmdb_version, "LMDB %d.%d.%d", major, minor, patch);
}

const char *ct_cache_lmdb_version(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, lmdb_version_init);
    return lmdb_version;
}

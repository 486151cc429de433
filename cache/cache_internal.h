/* Private state of the cache shared by its source files. Not installed. */
#ifndef CT_CACHE_INTERNAL_H
#define CT_CACHE_INTERNAL_H

#include "cache/cache.h"

#include <lmdb.h>
#include <pthread.h>
#include <stdint.h>

/* LMDB stores a value's size in 32 bits; keep chunks well below that. */
#define CACHE_MAX_CHUNK ((size_t)1 << 31)
#define CACHE_DEFAULT_MAP ((size_t)64 << 30)     /* at least, by default */
#define CACHE_MAX_DEFAULT_MAP ((size_t)4 << 40) /* at most, by default */
#define CACHE_MIN_DEFAULT_MAP ((size_t)1 << 30) /* when address space is short */
/* Address space is the only limit on the map; stop doubling far below it. */
#define CACHE_MAX_MAP ((size_t)1 << 46)
/* Blob readers each hold a read transaction (MDB_NOTLS), so allow many. */
#define CACHE_MAX_READERS 1022
#define CACHE_CHUNK_KEY_LEN 16
#define CACHE_ID_LEN 8

/* Every LMDB transaction this process opens is registered here, because the map
 * may only be remapped (grown, or adopted after another process grew it) while no
 * transaction of this process is open: a remap moves every pointer into the map. */
typedef struct cache_txn {
    MDB_txn *txn;
    pthread_t owner; /* thread that opened it: growth from that thread cannot wait */
    unsigned gen;    /* map generation when opened */
    struct cache_txn *prev, *next;
} cache_txn;

struct ct_cache {
    MDB_env *env;
    MDB_dbi db_entries, db_chunks, db_pending, db_roots, db_meta;
    char *dir;
    char *locks_dir;
    size_t chunk_size;
    int read_only;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    cache_txn *active;   /* list of open transactions */
    size_t n_active;
    int remapping;       /* threads waiting to remap: new transactions wait */
    unsigned map_gen;    /* bumped on every remap */
};

/* What the cache owns in a record (its "blob" object). */
typedef struct {
    uint64_t size, chunks, chunk_size;
    uint8_t id[CACHE_ID_LEN];
    uint8_t sha256[32];
} cache_blob_info;

/* --- transactions (txn.c) --- */
int cache_txn_begin(ct_cache *c, int read_only, cache_txn *t);
void cache_txn_abort(ct_cache *c, cache_txn *t);
/* Returns the raw LMDB code (MDB_MAP_FULL passes through for the retry loop). */
int cache_txn_commit(ct_cache *c, cache_txn *t);

/* A write transaction body: returns 0, a CT_E* code with its message set, or
 * MDB_MAP_FULL, on which cache_write() aborts, grows the map and runs it again
 * (so a body must have no side effects outside the transaction). */
typedef int (*cache_write_fn)(ct_cache *c, MDB_txn *txn, void *arg);
int cache_write(ct_cache *c, cache_write_fn fn, void *arg);

/* Converts an LMDB code into a CT_E* code with a message naming the cache dir;
 * MDB_MAP_FULL is returned unchanged. */
int cache_mdb_error(ct_cache *c, int rc, const char *what);
int cache_require_writable(ct_cache *c, const char *what);

/* --- keys and records (record.c) --- */
void cache_chunk_key(const uint8_t id[CACHE_ID_LEN], uint64_t index, uint8_t out[CACHE_CHUNK_KEY_LEN]);
/* Parses a stored record; rec and bi may be NULL. CT_ECORRUPT / CT_EFORMAT with a
 * message naming the cache dir and the key. */
int cache_record_parse(ct_cache *c, const uint8_t key[CT_KEY_LEN], const MDB_val *val,
                       json_t **rec, cache_blob_info *bi);
/* The stored text: the caller's record (copied) plus the cache's own fields. */
int cache_record_build(const json_t *user, const cache_blob_info *bi, char **text, size_t *len);
void cache_iso_time(char buf[32]);
void cache_key_hex(const uint8_t key[CT_KEY_LEN], char hex[2 * CT_KEY_LEN + 1]);

/* Deletes every chunk stored under blob `id`; adds their bytes to *bytes when
 * non-NULL. Returns 0, CT_E* or MDB_MAP_FULL. */
int cache_delete_chunks(ct_cache *c, MDB_txn *txn, const uint8_t id[CACHE_ID_LEN], uint64_t *bytes);
/* Deletes an entry and its chunks inside `txn`; CT_ENOTFOUND when absent. */
int cache_delete_entry_txn(ct_cache *c, MDB_txn *txn, const uint8_t key[CT_KEY_LEN], uint64_t *bytes);

/* The SHA-256 the record of a reader's entry states (reader.c). */
void cache_reader_digest(const ct_blob_reader *r, uint8_t out[32]);

/* --- lock files (lock.c) --- */
/* Takes an exclusive flock on `path`, creating it. Lock files are unlinked by their
 * holder on release, so after locking we check that the path still names the file
 * we locked and start over if not. blocking=0: CT_EBUSY when held elsewhere. */
int cache_lockfile_acquire(const char *path, int blocking, void (*on_wait)(void *), void *user,
                           int *fd_out);
void cache_lockfile_release(const char *path, int fd, int unlink_it);
void cache_writer_lock_path(ct_cache *c, const uint8_t id[CACHE_ID_LEN], char *buf, size_t n);

/* --- a set of fixed-size byte strings (keyset.c) --- */
typedef struct {
    uint8_t *slots;
    uint8_t *used;
    size_t width, cap, n;
} cache_keyset;
void cache_keyset_init(cache_keyset *s, size_t width);
/* 1 if added, 0 if present, CT_ENOMEM. */
int cache_keyset_add(cache_keyset *s, const uint8_t *k);
int cache_keyset_has(const cache_keyset *s, const uint8_t *k);
void cache_keyset_free(cache_keyset *s);

#endif

/* The content-addressed store on LMDB.
 *
 * The cache stores bytes under 32-byte keys and knows nothing of tensors, models or
 * recipes. An entry is (key -> record, blob): the record is a JSON object the caller
 * supplies (key material, timings, provenance) to which the cache adds what it owns
 * (format version, blob size, chunk count, SHA-256 of the blob, creation time); the
 * blob is an artifact of any size, stored as chunks of at most CT_CACHE_CHUNK bytes,
 * so it may exceed RAM and LMDB's 4 GiB value limit.
 *
 * Visibility: a blob is written chunk by chunk (each chunk its own LMDB transaction,
 * registered as "pending" under a writer lock), and the entry appears in one final
 * write transaction. A crash at any point leaves no visible partial entry; the chunks
 * of abandoned writes are reclaimed by ct_cache_gc().
 *
 * Concurrency: any number of processes and threads may share a cache directory.
 * ct_cache_lock_key() gives a per-key lock (flock on a lock file, released by the
 * kernel when a holder dies, so locks of killed processes never go stale): a process
 * that would compute a key locks it, re-checks, computes, commits, unlocks; a waiting
 * process then finds the entry.
 *
 * Layout of the directory: data.mdb/lock.mdb (LMDB, named databases "entries",
 * "chunks", "pending", "roots", "meta"), locks/ (per-key and per-writer lock files).
 *
 * Ownership: every object returned through an out-pointer is owned by the caller
 * and freed with the matching _close/_free function. Pointers into blob chunks
 * (ct_blob_chunk) are zero-copy views into the LMDB map and stay valid until the
 * ct_blob_reader that produced them is closed.
 *
 * Map growth: growing the map moves it, so it waits until no read transaction of
 * this process is open. A thread that itself holds an open reader cannot wait for
 * that: a write from it that needs a larger map fails with CT_EBUSY (close the
 * reader, then retry). The default map is a large virtual reservation, so growth
 * is rare. */
#ifndef CT_CACHE_H
#define CT_CACHE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define CT_KEY_LEN 32
#define CT_CACHE_FORMAT 1
#define CT_CACHE_CHUNK ((size_t)64 << 20) /* default chunk size: 64 MiB */

typedef struct ct_cache ct_cache;
typedef struct ct_blob_writer ct_blob_writer;
typedef struct ct_blob_reader ct_blob_reader;
typedef struct ct_cache_lock ct_cache_lock;

typedef struct {
    const char *dir;           /* NULL: $CROSSTIME_CACHE, else ~/.cache/crosstime */
    size_t initial_map_size;   /* bytes; 0 = default. The map grows when full. */
    size_t chunk_size;         /* bytes per blob chunk; 0 = CT_CACHE_CHUNK */
    int allow_network_fs;      /* 1: skip the refusal of NFS/CIFS/remote FUSE */
    int read_only;             /* 1: open without write access */
} ct_cache_options;

#define CT_CACHE_OPTIONS_INIT {NULL, 0, 0, 0, 0}

/* Opens (creating if needed) the cache directory. Refuses network filesystems with
 * a message naming the filesystem and the override. Open a directory once per
 * process and share the ct_cache between threads (LMDB's locks are per process);
 * a forked child opens its own. */
int ct_cache_open(const ct_cache_options *opts, ct_cache **out);
/* Close every reader, writer and lock of `c` first. NULL ok. */
void ct_cache_close(ct_cache *c);
const char *ct_cache_dir(const ct_cache *c);

/* --- entries ------------------------------------------------------------------ */

/* 0 if the entry exists (and *record, when non-NULL, receives a new reference to its
 * record JSON), CT_ENOTFOUND otherwise. */
int ct_cache_get(ct_cache *c, const uint8_t key[CT_KEY_LEN], json_t **record);

/* Finds the unique key whose hex starts with `hex_prefix` (>= 4 hex digits).
 * CT_ENOTFOUND when none, CT_EINVAL when ambiguous (message lists candidates). */
int ct_cache_resolve_prefix(ct_cache *c, const char *hex_prefix, uint8_t key[CT_KEY_LEN]);

/* Removes an entry (its chunks are freed by the same transaction). */
int ct_cache_delete(ct_cache *c, const uint8_t key[CT_KEY_LEN]);

/* Calls fn(key, record, user) for every entry in key order; a non-zero return stops
 * the iteration and is returned. `record` is borrowed for the call. No transaction
 * is open while fn runs, so fn may use the cache (entries added meanwhile may or
 * may not be visited). */
typedef int (*ct_cache_entry_fn)(const uint8_t key[CT_KEY_LEN], json_t *record, void *user);
int ct_cache_foreach(ct_cache *c, ct_cache_entry_fn fn, void *user);

/* --- blobs: streaming write ----------------------------------------------------- */

int ct_blob_writer_open(ct_cache *c, ct_blob_writer **out);
int ct_blob_write(ct_blob_writer *w, const void *data, size_t len);
/* Publishes the entry: stores `record` (borrowed, a JSON object or NULL; the cache
 * adds its own fields under "blob" and "cache") and the blob under `key` in one
 * transaction, then frees the writer (also when the commit fails). If the key
 * already exists the new blob is discarded and 0 returned. */
int ct_blob_commit(ct_blob_writer *w, const uint8_t key[CT_KEY_LEN], json_t *record);
/* Discards a writer and its chunks. NULL ok. */
void ct_blob_abort(ct_blob_writer *w);

/* Convenience: one in-memory blob. */
int ct_cache_put(ct_cache *c, const uint8_t key[CT_KEY_LEN], json_t *record,
                 const void *data, size_t len);

/* --- blobs: zero-copy read ------------------------------------------------------ */

typedef struct {
    const void *data; /* points into the LMDB map */
    size_t len;
    uint64_t offset; /* offset of this chunk within the blob */
} ct_blob_chunk;

/* Opens the blob of an entry inside a read transaction held until close. */
int ct_blob_reader_open(ct_cache *c, const uint8_t key[CT_KEY_LEN], ct_blob_reader **out);
uint64_t ct_blob_size(const ct_blob_reader *r);
/* Iterates chunks in order: 1 with a chunk, 0 at the end, negative on error. */
int ct_blob_next_chunk(ct_blob_reader *r, ct_blob_chunk *chunk);
/* Copies [offset, offset+len) into dst (may span chunks). */
int ct_blob_read_at(ct_blob_reader *r, uint64_t offset, void *dst, size_t len);
/* Zero-copy view of [offset, offset+len) when it lies inside one chunk, else
 * CT_EINVAL (use ct_blob_read_at). */
int ct_blob_view(ct_blob_reader *r, uint64_t offset, size_t len, const void **ptr);
void ct_blob_reader_close(ct_blob_reader *r);

/* The whole blob of an open reader copied into a malloc'd buffer (NUL-terminated);
 * the reader stays open. */
int ct_blob_read_all(ct_blob_reader *r, char **data, size_t *len);

/* Convenience: whole blob copied into a malloc'd buffer (NUL-terminated). */
int ct_cache_read_all(ct_cache *c, const uint8_t key[CT_KEY_LEN], char **data, size_t *len);

/* --- per-key locks -------------------------------------------------------------- */

/* Blocks until this process holds the lock for `key`. When another process holds
 * it, `on_wait` (may be NULL) is called once before blocking. */
int ct_cache_lock_key(ct_cache *c, const uint8_t key[CT_KEY_LEN],
                      void (*on_wait)(void *user), void *user, ct_cache_lock **out);
/* Non-blocking: CT_EBUSY when held elsewhere. */
int ct_cache_trylock_key(ct_cache *c, const uint8_t key[CT_KEY_LEN], ct_cache_lock **out);
void ct_cache_unlock(ct_cache_lock *l);

/* --- named roots -------------------------------------------------------------- */

/* Sets root `name` to exactly the given keys (replacing what it held). */
int ct_cache_root_set(ct_cache *c, const char *name, const uint8_t (*keys)[CT_KEY_LEN], size_t n);
/* Keys of a root; *keys is malloc'd (caller frees). CT_ENOTFOUND if absent. */
int ct_cache_root_get(ct_cache *c, const char *name, uint8_t (**keys)[CT_KEY_LEN], size_t *n);
int ct_cache_root_delete(ct_cache *c, const char *name);
typedef int (*ct_cache_root_fn)(const char *name, size_t n_keys, void *user);
int ct_cache_root_foreach(ct_cache *c, ct_cache_root_fn fn, void *user);

/* --- maintenance ------------------------------------------------------------------ */

typedef struct {
    uint64_t entries, blob_bytes, chunks, pending_writes, roots;
    uint64_t map_size, map_used; /* bytes */
} ct_cache_stats;

int ct_cache_stat(ct_cache *c, ct_cache_stats *st);

/* Re-hashes every blob; calls fn for each corrupt entry (digest or chunk mismatch)
 * with a message. Corrupt entries are removed when `repair` is set, so a later run
 * recomputes them. *n_corrupt receives the count. */
typedef void (*ct_cache_corrupt_fn)(const uint8_t key[CT_KEY_LEN], const char *why, void *user);
int ct_cache_verify(ct_cache *c, int repair, ct_cache_corrupt_fn fn, void *user, uint64_t *n_corrupt);

/* Deletes entries no named root reaches, and chunks of abandoned (dead-writer)
 * writes. Reachability follows the "inputs" of each record's key material
 * (record["material"]["inputs"]: an object of name -> hex key, or arrays of them).
 * `dry_run` only counts. Entries are deleted when unreachable at the moment gc
 * runs: set the root of a run before collecting garbage beside it. */
typedef struct {
    uint64_t entries_removed, bytes_removed, abandoned_writes;
} ct_cache_gc_stats;
int ct_cache_gc(ct_cache *c, int dry_run, ct_cache_gc_stats *st);

/* Library version strings for provenance ("LMDB 0.9.24"). */
const char *ct_cache_lmdb_version(void);

#endif

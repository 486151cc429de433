/* Zero-copy blob reads: chunks are handed out as pointers into the LMDB map,
 * valid while the reader's read transaction stays open. */
#include "cache/cache_internal.h"
#include "common/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct ct_blob_reader {
    ct_cache *c;
    cache_txn t;
    uint8_t key[CT_KEY_LEN];
    cache_blob_info bi;
    uint64_t next; /* next chunk for ct_blob_next_chunk */
};

int ct_blob_reader_open(ct_cache *c, const uint8_t key[CT_KEY_LEN], ct_blob_reader **out)
{
    *out = NULL;
    ct_blob_reader *r = calloc(1, sizeof *r);
    if (!r)
        return ct_error_set(CT_ENOMEM, "out of memory");
    r->c = c;
    memcpy(r->key, key, CT_KEY_LEN);
    int rc = cache_txn_begin(c, 1, &r->t);
    if (rc) {
        free(r);
        return rc;
    }
    MDB_val k = {CT_KEY_LEN, (void *)key}, v;
    int mrc = mdb_get(r->t.txn, c->db_entries, &k, &v);
    if (mrc == MDB_NOTFOUND) {
        char hex[2 * CT_KEY_LEN + 1];
        cache_key_hex(key, hex);
        rc = ct_error_set(CT_ENOTFOUND, "%s: no entry %s", c->dir, hex);
    } else if (mrc) {
        rc = cache_mdb_error(c, mrc, "cannot read an entry");
    } else {
        rc = cache_record_parse(c, key, &v, NULL, &r->bi);
    }
    if (rc) {
        ct_blob_reader_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

uint64_t ct_blob_size(const ct_blob_reader *r) { return r->bi.size; }

void cache_reader_digest(const ct_blob_reader *r, uint8_t out[32]) { memcpy(out, r->bi.sha256, 32); }

/* Hints the kernel to start reading a chunk from disk while the caller works on
 * the previous one; a no-op when it is already in the page cache. */
static void prefetch(const void *data, size_t len)
{
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t p = (uintptr_t)data, start = p & ~(uintptr_t)(page - 1);
    madvise((void *)start, len + (p - start), MADV_WILLNEED);
}

/* Chunk `i` of the blob, checked against the record. */
static int get_chunk(ct_blob_reader *r, uint64_t i, const uint8_t **data, size_t *len)
{
    const cache_blob_info *b = &r->bi;
    uint8_t ck[CACHE_CHUNK_KEY_LEN];
    cache_chunk_key(b->id, i, ck);
    MDB_val k = {sizeof ck, ck}, v;
    int mrc = mdb_get(r->t.txn, r->c->db_chunks, &k, &v);
    uint64_t want = i + 1 < b->chunks ? b->chunk_size : b->size - (b->chunks - 1) * b->chunk_size;
    if (mrc == 0 && v.mv_size == want) {
        *data = v.mv_data;
        *len = v.mv_size;
        return 0;
    }
    char hex[2 * CT_KEY_LEN + 1];
    cache_key_hex(r->key, hex);
    if (mrc == MDB_NOTFOUND)
        return ct_error_set(CT_ECORRUPT, "%s: entry %s: chunk %llu of %llu is missing", r->c->dir, hex,
                            (unsigned long long)i, (unsigned long long)b->chunks);
    if (mrc)
        return cache_mdb_error(r->c, mrc, "cannot read a blob chunk");
    return ct_error_set(CT_ECORRUPT, "%s: entry %s: chunk %llu has %zu bytes, the record says %llu",
                        r->c->dir, hex, (unsigned long long)i, v.mv_size, (unsigned long long)want);
}

int ct_blob_next_chunk(ct_blob_reader *r, ct_blob_chunk *chunk)
{
    if (r->next >= r->bi.chunks)
        return 0;
    const uint8_t *data = NULL;
    size_t len = 0;
    int rc = get_chunk(r, r->next, &data, &len);
    if (rc)
        return rc;
    chunk->data = data;
    chunk->len = len;
    chunk->offset = r->next * r->bi.chunk_size;
    r->next++;
    if (r->next < r->bi.chunks) {
        const uint8_t *nd = NULL;
        size_t nl = 0;
        if (get_chunk(r, r->next, &nd, &nl) == 0)
            prefetch(nd, nl);
    }
    return 1;
}

static int range_check(ct_blob_reader *r, uint64_t offset, size_t len)
{
    if (offset > r->bi.size || len > r->bi.size - offset) {
        char hex[2 * CT_KEY_LEN + 1];
        cache_key_hex(r->key, hex);
        return ct_error_set(CT_EINVAL, "%s: entry %s: range [%llu, +%zu) lies outside the blob of %llu bytes",
                            r->c->dir, hex, (unsigned long long)offset, len, (unsigned long long)r->bi.size);
    }
    return 0;
}

int ct_blob_read_at(ct_blob_reader *r, uint64_t offset, void *dst, size_t len)
{
    int rc = range_check(r, offset, len);
    uint8_t *out = dst;
    while (!rc && len) {
        uint64_t i = offset / r->bi.chunk_size, within = offset % r->bi.chunk_size;
        const uint8_t *data;
        size_t clen;
        if ((rc = get_chunk(r, i, &data, &clen)) != 0)
            break;
        size_t n = clen - within < len ? (size_t)(clen - within) : len;
        memcpy(out, data + within, n);
        out += n;
        offset += n;
        len -= n;
    }
    return rc;
}

int ct_blob_view(ct_blob_reader *r, uint64_t offset, size_t len, const void **ptr)
{
    *ptr = NULL;
    int rc = range_check(r, offset, len);
    if (rc)
        return rc;
    static const uint8_t empty[1];
    if (len == 0) {
        *ptr = empty;
        return 0;
    }
    uint64_t i = offset / r->bi.chunk_size, within = offset % r->bi.chunk_size;
    const uint8_t *data;
    size_t clen;
    if ((rc = get_chunk(r, i, &data, &clen)) != 0)
        return rc;
    if (len > clen - within) {
        char hex[2 * CT_KEY_LEN + 1];
        cache_key_hex(r->key, hex);
        return ct_error_set(CT_EINVAL, "%s: entry %s: range [%llu, +%zu) spans chunks of %llu bytes; "
                            "use ct_blob_read_at", r->c->dir, hex, (unsigned long long)offset, len,
                            (unsigned long long)r->bi.chunk_size);
    }
    *ptr = data + within;
    return 0;
}

void ct_blob_reader_close(ct_blob_reader *r)
{
    if (!r)
        return;
    cache_txn_abort(r->c, &r->t);
    free(r);
}

int ct_blob_read_all(ct_blob_reader *r, char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    uint64_t size = ct_blob_size(r);
    char *buf = size < SIZE_MAX ? malloc((size_t)size + 1) : NULL;
    if (!buf)
        return ct_error_set(CT_ENOMEM, "%s: out of memory reading a blob of %llu bytes", r->c->dir,
                            (unsigned long long)size);
    int rc = ct_blob_read_at(r, 0, buf, (size_t)size);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[size] = '\0';
    *data = buf;
    *len = (size_t)size;
    return 0;
}

int ct_cache_read_all(ct_cache *c, const uint8_t key[CT_KEY_LEN], char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    ct_blob_reader *r;
    int rc = ct_blob_reader_open(c, key, &r);
    if (rc)
        return rc;
    rc = ct_blob_read_all(r, data, len);
    ct_blob_reader_close(r);
    return rc;
}

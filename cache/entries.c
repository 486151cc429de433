/* Looking up, listing and deleting entries. */
#include "cache/cache_internal.h"
#include "common/error.h"
#include "common/sha256.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ct_cache_get(ct_cache *c, const uint8_t key[CT_KEY_LEN], json_t **record)
{
    if (record)
        *record = NULL;
    cache_txn t;
    int rc = cache_txn_begin(c, 1, &t);
    if (rc)
        return rc;
    MDB_val k = {CT_KEY_LEN, (void *)key}, v;
    int mrc = mdb_get(t.txn, c->db_entries, &k, &v);
    if (mrc == MDB_NOTFOUND) {
        char hex[2 * CT_KEY_LEN + 1];
        cache_key_hex(key, hex);
        rc = ct_error_set(CT_ENOTFOUND, "%s: no entry %s", c->dir, hex);
    } else if (mrc) {
        rc = cache_mdb_error(c, mrc, "cannot read an entry");
    } else {
        rc = cache_record_parse(c, key, &v, record, NULL);
    }
    cache_txn_abort(c, &t);
    return rc;
}

static int nibble(char ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                                             : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

int ct_cache_resolve_prefix(ct_cache *c, const char *hex_prefix, uint8_t key[CT_KEY_LEN])
{
    size_t n = strlen(hex_prefix);
    if (n < 4 || n > 2 * CT_KEY_LEN)
        return ct_error_set(CT_EINVAL, "%s: key prefix '%s' must have 4 to %d hex digits", c->dir,
                            hex_prefix, 2 * CT_KEY_LEN);
    uint8_t lo[CT_KEY_LEN] = {0};
    char want[2 * CT_KEY_LEN + 1];
    for (size_t i = 0; i < n; i++) {
        int v = nibble(hex_prefix[i]);
        if (v < 0)
            return ct_error_set(CT_EINVAL, "%s: key prefix '%s' is not hexadecimal", c->dir, hex_prefix);
        lo[i / 2] |= (uint8_t)(i % 2 ? v : v << 4);
        want[i] = (char)tolower((unsigned char)hex_prefix[i]);
    }
    want[n] = '\0';
    cache_txn t;
    int rc = cache_txn_begin(c, 1, &t);
    if (rc)
        return rc;
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(t.txn, c->db_entries, &cur);
    if (mrc) {
        cache_txn_abort(c, &t);
        return cache_mdb_error(c, mrc, "cannot open a cursor");
    }
    MDB_val k = {CT_KEY_LEN, lo}, v;
    size_t found = 0;
    char list[5][2 * CT_KEY_LEN + 1];
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != CT_KEY_LEN)
            continue;
        char hex[2 * CT_KEY_LEN + 1];
        cache_key_hex(k.mv_data, hex);
        if (strncmp(hex, want, n) != 0)
            break;
        if (found == 0)
            memcpy(key, k.mv_data, CT_KEY_LEN);
        if (found < 5)
            memcpy(list[found], hex, sizeof hex);
        found++;
    }
    mdb_cursor_close(cur);
    cache_txn_abort(c, &t);
    if (found == 0)
        return ct_error_set(CT_ENOTFOUND, "%s: no entry's key starts with '%s'", c->dir, hex_prefix);
    if (found > 1) {
        char msg[512] = "";
        size_t len = 0;
        for (size_t i = 0; i < found && i < 5; i++)
            len += (size_t)snprintf(msg + len, sizeof msg - len, "%s%.16s", i ? ", " : "", list[i]);
        return ct_error_set(CT_EINVAL, "%s: key prefix '%s' is ambiguous: %zu entries match (%s%s)",
                            c->dir, hex_prefix, found, msg, found > 5 ? ", ..." : "");
    }
    return 0;
}

int cache_delete_chunks(ct_cache *c, MDB_txn *txn, const uint8_t id[CACHE_ID_LEN], uint64_t *bytes)
{
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, c->db_chunks, &cur);
    if (mrc)
        return cache_mdb_error(c, mrc, "cannot open a cursor");
    uint8_t start[CACHE_CHUNK_KEY_LEN];
    cache_chunk_key(id, 0, start);
    for (;;) {
        MDB_val k = {sizeof start, start}, v;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (mrc == MDB_NOTFOUND || k.mv_size != CACHE_CHUNK_KEY_LEN ||
            memcmp(k.mv_data, id, CACHE_ID_LEN) != 0) {
            mrc = 0;
            break;
        }
        if (mrc)
            break;
        if (bytes)
            *bytes += v.mv_size;
        if ((mrc = mdb_cursor_del(cur, 0)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    return cache_mdb_error(c, mrc, "cannot delete blob chunks");
}

int cache_delete_entry_txn(ct_cache *c, MDB_txn *txn, const uint8_t key[CT_KEY_LEN], uint64_t *bytes)
{
    MDB_val k = {CT_KEY_LEN, (void *)key}, v;
    int mrc = mdb_get(txn, c->db_entries, &k, &v);
    if (mrc == MDB_NOTFOUND) {
        char hex[2 * CT_KEY_LEN + 1];
        cache_key_hex(key, hex);
        return ct_error_set(CT_ENOTFOUND, "%s: no entry %s", c->dir, hex);
    }
    if (mrc)
        return cache_mdb_error(c, mrc, "cannot read an entry");
    cache_blob_info bi;
    /* A record that no longer parses is deleted all the same; its chunks, which it
     * no longer names, are left to gc's sweep of unreferenced chunks. */
    if (cache_record_parse(c, key, &v, NULL, &bi) == 0) {
        int rc = cache_delete_chunks(c, txn, bi.id, bytes);
        if (rc)
            return rc;
    }
    return cache_mdb_error(c, mdb_del(txn, c->db_entries, &k, NULL), "cannot delete an entry");
}

static int delete_body(ct_cache *c, MDB_txn *txn, void *arg)
{
    return cache_delete_entry_txn(c, txn, arg, NULL);
}

int ct_cache_delete(ct_cache *c, const uint8_t key[CT_KEY_LEN])
{
    return cache_write(c, delete_body, (void *)key);
}

/* Entries are handed to the callback in batches read by short transactions, so
 * that the callback may write to the cache (which can need a map remap) and no
 * read transaction stays open for the duration of a long listing. */
#define FOREACH_BATCH 256

int ct_cache_foreach(ct_cache *c, ct_cache_entry_fn fn, void *user)
{
    uint8_t last[CT_KEY_LEN];
    int have_last = 0;
    uint8_t (*keys)[CT_KEY_LEN] = malloc(FOREACH_BATCH * sizeof *keys);
    json_t **recs = calloc(FOREACH_BATCH, sizeof *recs);
    if (!keys || !recs) {
        free(keys);
        free(recs);
        return ct_error_set(CT_ENOMEM, "out of memory");
    }
    int rc = 0, done = 0;
    while (!rc && !done) {
        size_t n = 0;
        int perr = 0;
        cache_txn t;
        if ((rc = cache_txn_begin(c, 1, &t)) != 0)
            break;
        MDB_cursor *cur;
        int mrc = mdb_cursor_open(t.txn, c->db_entries, &cur);
        if (mrc) {
            cache_txn_abort(c, &t);
            rc = cache_mdb_error(c, mrc, "cannot open a cursor");
            break;
        }
        MDB_val k, v;
        if (have_last) {
            k.mv_size = CT_KEY_LEN;
            k.mv_data = last;
            mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
            if (mrc == 0 && k.mv_size == CT_KEY_LEN && memcmp(k.mv_data, last, CT_KEY_LEN) == 0)
                mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        } else {
            mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        }
        for (; mrc == 0 && n < FOREACH_BATCH; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (k.mv_size != CT_KEY_LEN)
                continue;
            memcpy(keys[n], k.mv_data, CT_KEY_LEN);
            if ((perr = cache_record_parse(c, keys[n], &v, &recs[n], NULL)) != 0)
                break;
            n++;
        }
        if (!perr && mrc && mrc != MDB_NOTFOUND)
            perr = cache_mdb_error(c, mrc, "cannot iterate entries");
        char perr_msg[1024] = "";
        if (perr)
            snprintf(perr_msg, sizeof perr_msg, "%s", ct_error_message());
        done = mrc == MDB_NOTFOUND;
        mdb_cursor_close(cur);
        cache_txn_abort(c, &t);
        for (size_t i = 0; i < n; i++) {
            if (!rc)
                rc = fn(keys[i], recs[i], user);
            json_decref(recs[i]);
            recs[i] = NULL;
        }
        if (!rc && perr)
            rc = ct_error_set(perr, "%s", perr_msg);
        if (n) {
            memcpy(last, keys[n - 1], CT_KEY_LEN);
            have_last = 1;
        }
    }
    free(keys);
    free(recs);
    return rc;
}

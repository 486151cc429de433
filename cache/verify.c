/* ct_cache_verify: re-hashes every blob and checks it against its record. */
#include "cache/cache_internal.h"
#include "common/error.h"
#include "common/sha256.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* All keys, copied out of one read transaction. */
static int list_keys(ct_cache *c, uint8_t (**keys)[CT_KEY_LEN], size_t *n)
{
    *keys = NULL;
    *n = 0;
    cache_txn t;
    int rc = cache_txn_begin(c, 1, &t);
    if (rc)
        return rc;
    MDB_stat ms;
    MDB_cursor *cur = NULL;
    int mrc = mdb_stat(t.txn, c->db_entries, &ms);
    if (!mrc)
        mrc = mdb_cursor_open(t.txn, c->db_entries, &cur);
    if (!mrc) {
        *keys = malloc((ms.ms_entries ? ms.ms_entries : 1) * CT_KEY_LEN);
        if (!*keys)
            rc = ct_error_set(CT_ENOMEM, "out of memory");
        MDB_val k, v;
        for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !rc && mrc == 0 && *n < ms.ms_entries;
             mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
            if (k.mv_size == CT_KEY_LEN)
                memcpy((*keys)[(*n)++], k.mv_data, CT_KEY_LEN);
        if (mrc == MDB_NOTFOUND || *n == ms.ms_entries)
            mrc = 0;
        mdb_cursor_close(cur);
    }
    cache_txn_abort(c, &t);
    if (!rc && mrc)
        rc = cache_mdb_error(c, mrc, "cannot list entries");
    if (rc) {
        free(*keys);
        *keys = NULL;
        *n = 0;
    }
    return rc;
}

/* 0: intact; 1: corrupt with `why` filled; negative: verification itself failed. */
static int check_entry(ct_cache *c, const uint8_t key[CT_KEY_LEN], char *why, size_t why_len)
{
    ct_blob_reader *r;
    int rc = ct_blob_reader_open(c, key, &r);
    if (rc == CT_ENOTFOUND)
        return 0; /* deleted meanwhile */
    if (rc == CT_ECORRUPT || rc == CT_EFORMAT) {
        snprintf(why, why_len, "%s", ct_error_message());
        return 1;
    }
    if (rc)
        return rc;
    ct_sha256 *sha;
    if ((rc = ct_sha256_new(&sha)) != 0) {
        ct_blob_reader_close(r);
        return rc;
    }
    ct_blob_chunk ch;
    while ((rc = ct_blob_next_chunk(r, &ch)) == 1)
        ct_sha256_update(sha, ch.data, ch.len);
    uint8_t got[CT_SHA256_LEN], want[CT_SHA256_LEN];
    cache_reader_digest(r, want);
    ct_blob_reader_close(r);
    if (rc < 0) {
        ct_sha256_free(sha);
        if (rc != CT_ECORRUPT)
            return rc;
        snprintf(why, why_len, "%s", ct_error_message());
        return 1;
    }
    if ((rc = ct_sha256_final(sha, got)) != 0)
        return rc;
    if (memcmp(got, want, sizeof got) != 0) {
        char hw[2 * CT_SHA256_LEN + 1], hg[2 * CT_SHA256_LEN + 1];
        ct_hex_encode(want, sizeof want, hw);
        ct_hex_encode(got, sizeof got, hg);
        snprintf(why, why_len, "blob digest mismatch: the record says %s, the stored bytes hash to %s", hw, hg);
        return 1;
    }
    return 0;
}

int ct_cache_verify(ct_cache *c, int repair, ct_cache_corrupt_fn fn, void *user, uint64_t *n_corrupt)
{
    if (n_corrupt)
        *n_corrupt = 0;
    int rc = repair ? cache_require_writable(c, "repair") : 0;
    if (rc)
        return rc;
    uint8_t (*keys)[CT_KEY_LEN];
    size_t n;
    if ((rc = list_keys(c, &keys, &n)) != 0)
        return rc;
    for (size_t i = 0; i < n && !rc; i++) {
        char why[1024];
        int bad = check_entry(c, keys[i], why, sizeof why);
        if (bad < 0) {
            rc = bad;
            break;
        }
        if (!bad)
            continue;
        if (n_corrupt)
            (*n_corrupt)++;
        if (fn)
            fn(keys[i], why, user);
        if (repair) {
            rc = ct_cache_delete(c, keys[i]);
            if (rc == CT_ENOTFOUND)
                rc = 0;
        }
    }
    free(keys);
    return rc;
}

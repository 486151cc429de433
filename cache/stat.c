/* ct_cache_stat: counts and sizes for `crosstime cache stat`. */
#include "cache/cache_internal.h"
#include "common/error.h"

#include <string.h>

int ct_cache_stat(ct_cache *c, ct_cache_stats *st)
{
    memset(st, 0, sizeof *st);
    cache_txn t;
    int rc = cache_txn_begin(c, 1, &t);
    if (rc)
        return rc;
    MDB_stat ms;
    int mrc = mdb_stat(t.txn, c->db_entries, &ms);
    st->entries = ms.ms_entries;
    if (!mrc && !(mrc = mdb_stat(t.txn, c->db_chunks, &ms)))
        st->chunks = ms.ms_entries;
    if (!mrc && !(mrc = mdb_stat(t.txn, c->db_pending, &ms)))
        st->pending_writes = ms.ms_entries;
    if (!mrc && !(mrc = mdb_stat(t.txn, c->db_roots, &ms)))
        st->roots = ms.ms_entries;
    MDB_cursor *cur = NULL;
    if (!mrc)
        mrc = mdb_cursor_open(t.txn, c->db_entries, &cur);
    if (!mrc) {
        MDB_val k, v;
        /* Entries whose record does not parse are left to ct_cache_verify. */
        for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            cache_blob_info bi;
            if (k.mv_size == CT_KEY_LEN && cache_record_parse(c, k.mv_data, &v, NULL, &bi) == 0)
                st->blob_bytes += bi.size;
        }
        if (mrc == MDB_NOTFOUND)
            mrc = 0;
        mdb_cursor_close(cur);
    }
    MDB_envinfo info;
    MDB_stat es;
    if (!mrc && !(mrc = mdb_env_info(c->env, &info)) && !(mrc = mdb_env_stat(c->env, &es))) {
        st->map_size = info.me_mapsize;
        st->map_used = (uint64_t)(info.me_last_pgno + 1) * es.ms_psize;
    }
    cache_txn_abort(c, &t);
    return mrc ? cache_mdb_error(c, mrc, "cannot gather statistics") : 0;
}

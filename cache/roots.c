/* Named roots: a name mapped to a set of keys that gc keeps, with everything they
 * reach. Stored in the "roots" database as the keys' bytes back to back. */
#include "cache/cache_internal.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

#define ROOT_NAME_MAX 255

static int check_name(ct_cache *c, const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > ROOT_NAME_MAX)
        return ct_error_set(CT_EINVAL, "%s: root name must have 1 to %d bytes", c->dir, ROOT_NAME_MAX);
    return 0;
}

typedef struct {
    const char *name;
    const uint8_t (*keys)[CT_KEY_LEN];
    size_t n;
} set_arg;

static int set_body(ct_cache *c, MDB_txn *txn, void *arg)
{
    set_arg *a = arg;
    MDB_val k = {strlen(a->name), (void *)a->name}, v = {a->n * CT_KEY_LEN, (void *)a->keys};
    static const uint8_t none[1];
    if (a->n == 0)
        v.mv_data = (void *)none;
    return cache_mdb_error(c, mdb_put(txn, c->db_roots, &k, &v, 0), "cannot store a root");
}

int ct_cache_root_set(ct_cache *c, const char *name, const uint8_t (*keys)[CT_KEY_LEN], size_t n)
{
    int rc = check_name(c, name);
    if (rc)
        return rc;
    if (n > SIZE_MAX / CT_KEY_LEN / 2 || (n && !keys))
        return ct_error_set(CT_EINVAL, "%s: root '%s': bad key list", c->dir, name);
    set_arg a = {name, keys, n};
    return cache_write(c, set_body, &a);
}

int ct_cache_root_get(ct_cache *c, const char *name, uint8_t (**keys)[CT_KEY_LEN], size_t *n)
{
    *keys = NULL;
    *n = 0;
    int rc = check_name(c, name);
    if (rc)
        return rc;
    cache_txn t;
    if ((rc = cache_txn_begin(c, 1, &t)) != 0)
        return rc;
    MDB_val k = {strlen(name), (void *)name}, v;
    int mrc = mdb_get(t.txn, c->db_roots, &k, &v);
    if (mrc == MDB_NOTFOUND) {
        rc = ct_error_set(CT_ENOTFOUND, "%s: no root named '%s'", c->dir, name);
    } else if (mrc) {
        rc = cache_mdb_error(c, mrc, "cannot read a root");
    } else if (v.mv_size % CT_KEY_LEN) {
        rc = ct_error_set(CT_ECORRUPT, "%s: root '%s' holds %zu bytes, not a whole number of keys",
                          c->dir, name, v.mv_size);
    } else {
        size_t count = v.mv_size / CT_KEY_LEN;
        *keys = malloc(count ? v.mv_size : 1);
        if (!*keys) {
            rc = ct_error_set(CT_ENOMEM, "out of memory");
        } else {
            memcpy(*keys, v.mv_data, v.mv_size);
            *n = count;
        }
    }
    cache_txn_abort(c, &t);
    return rc;
}

static int delete_body(ct_cache *c, MDB_txn *txn, void *arg)
{
    const char *name = arg;
    MDB_val k = {strlen(name), (void *)name};
    int mrc = mdb_del(txn, c->db_roots, &k, NULL);
    if (mrc == MDB_NOTFOUND)
        return ct_error_set(CT_ENOTFOUND, "%s: no root named '%s'", c->dir, name);
    return cache_mdb_error(c, mrc, "cannot delete a root");
}

int ct_cache_root_delete(ct_cache *c, const char *name)
{
    int rc = check_name(c, name);
    return rc ? rc : cache_write(c, delete_body, (void *)name);
}

int ct_cache_root_foreach(ct_cache *c, ct_cache_root_fn fn, void *user)
{
    /* Roots are few: copy them out so the callback runs with no transaction open. */
    cache_txn t;
    int rc = cache_txn_begin(c, 1, &t);
    if (rc)
        return rc;
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(t.txn, c->db_roots, &cur);
    if (mrc) {
        cache_txn_abort(c, &t);
        return cache_mdb_error(c, mrc, "cannot open a cursor");
    }
    char *names = NULL;
    struct {
        size_t off, count;
    } *items = NULL;
    size_t n = 0, cap = 0, used = 0, names_cap = 0;
    MDB_val k, v;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0 && !rc;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            void *ni = realloc(items, cap * sizeof *items);
            if (!ni) {
                rc = ct_error_set(CT_ENOMEM, "out of memory");
                break;
            }
            items = ni;
        }
        if (used + k.mv_size + 1 > names_cap) {
            names_cap = (used + k.mv_size + 1) * 2;
            char *nn = realloc(names, names_cap);
            if (!nn) {
                rc = ct_error_set(CT_ENOMEM, "out of memory");
                break;
            }
            names = nn;
        }
        memcpy(names + used, k.mv_data, k.mv_size);
        names[used + k.mv_size] = '\0';
        items[n].off = used;
        items[n++].count = v.mv_size / CT_KEY_LEN;
        used += k.mv_size + 1;
    }
    if (!rc && mrc != MDB_NOTFOUND)
        rc = cache_mdb_error(c, mrc, "cannot iterate roots");
    mdb_cursor_close(cur);
    cache_txn_abort(c, &t);
    for (size_t i = 0; i < n && !rc; i++)
        rc = fn(names + items[i].off, items[i].count, user);
    free(names);
    free(items);
    return rc;
}

/* `bundle import`: a checked bundle's entries into a cache, then its recipe root. */
#include "common/error.h"
#include "common/progress.h"
#include "common/sha256.h"
#include "pipeline/bundle/bundle_internal.h"
#include "pipeline/key.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One entry to write: the step carrying it, and its writer while it streams. */
typedef struct {
    const bundle_step *step;
    ct_blob_writer *w;
    int done;
} pending;

/* Hostile bundles may list many steps: everything here is sorted and searched, never
 * compared pairwise. */
static int cmp_key(const void *a, const void *b) { return memcmp(a, b, CT_KEY_LEN); }

/* Sorts and removes duplicates; returns the new count. */
static size_t sort_unique(uint8_t (*keys)[CT_KEY_LEN], size_t n)
{
    if (n < 2)
        return n;
    qsort(keys, n, CT_KEY_LEN, cmp_key);
    size_t m = 1;
    for (size_t i = 1; i < n; i++)
        if (memcmp(keys[i], keys[m - 1], CT_KEY_LEN) != 0)
            memcpy(keys[m++], keys[i], CT_KEY_LEN);
    return m;
}

static int key_in(const uint8_t (*sorted)[CT_KEY_LEN], size_t n, const uint8_t key[CT_KEY_LEN])
{
    return n && bsearch(key, sorted, n, CT_KEY_LEN, cmp_key) != NULL;
}

static int cmp_pending_key(const void *a, const void *b)
{
    return memcmp(((const pending *)a)->step->key, ((const pending *)b)->step->key, CT_KEY_LEN);
}

static int cmp_pending_member(const void *a, const void *b)
{
    int c = strcmp(((const pending *)a)->step->member, ((const pending *)b)->step->member);
    return c ? c : cmp_pending_key(a, b);
}

/* Streams the current member into a new entry for each step it carries, re-hashing
 * it: the file may have changed since the checking pass. */
static int stream_member(const bundle_contents *b, ct_cache *cache, struct archive *a, const char *name,
                         pending *p, size_t n, ct_progress *prog, uint64_t *done)
{
    /* p is sorted by member name: find the first entry this member carries */
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(p[mid].step->member, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t first = lo, end = lo;
    while (end < n && strcmp(p[end].step->member, name) == 0)
        end++;
    if (first == end)
        return 0;
    if (p[first].done)
        return ct_error_set(CT_EINVAL, "%s: member '%s': duplicate member name (the file changed while it was "
                            "imported)",
                            b->src.name, name);
    n = end;
    int rc = 0;
    for (size_t i = first; i < n && !rc; i++)
        rc = ct_blob_writer_open(cache, &p[i].w);
    ct_sha256 *sha = NULL;
    char *block = malloc(1 << 16);
    if (!rc && !block)
        rc = ct_error_set(CT_ENOMEM, "out of memory");
    if (!rc)
        rc = ct_sha256_new(&sha);
    uint64_t size = 0;
    while (!rc) {
        la_ssize_t got = archive_read_data(a, block, 1 << 16);
        if (got < 0) {
            rc = ct_error_set(CT_EFORMAT, "%s: member '%s': cannot read it: %s", b->src.name, name,
                              archive_error_string(a) ? archive_error_string(a) : "damaged archive");
            break;
        }
        if (got == 0)
            break;
        size += (uint64_t)got;
        *done += (uint64_t)got;
        ct_progress_update(prog, (double)*done);
        ct_sha256_update(sha, block, (size_t)got);
        for (size_t i = first; i < n && !rc; i++)
            rc = ct_blob_write(p[i].w, block, (size_t)got);
    }
    free(block);
    uint8_t digest[32];
    if (rc) {
        ct_sha256_free(sha);
        return rc;
    }
    ct_sha256_final(sha, digest);
    for (size_t i = first; i < n; i++)
        if (size != p[i].step->size || memcmp(digest, p[i].step->sha256, 32) != 0)
            return ct_error_set(CT_ECORRUPT, "%s: member '%s': digest mismatch (the file changed while it "
                                "was imported; the entries imported before it were checked and are kept)",
                                b->src.name, name);
    /* Committed one by one, not all at the end: open writers hold memory and file
     * descriptors, and the checking pass already vouched for every member. */
    for (size_t i = first; i < n && !rc; i++) {
        json_t *rec = bundle_user_record(p[i].step->record);
        if (!rec)
            return ct_error_set(CT_ENOMEM, "out of memory");
        rc = ct_blob_commit(p[i].w, p[i].step->key, rec);
        p[i].w = NULL;
        p[i].done = 1;
        json_decref(rec);
    }
    return rc;
}

int bundle_write_entries(const bundle_contents *b, ct_cache *cache, const uint8_t (*only)[CT_KEY_LEN],
                         size_t n_only, size_t *imported, size_t *existing)
{
    size_t n_existing = 0, n = 0, m = 0;
    pending *p = calloc(b->n_steps + 1, sizeof *p);
    uint8_t (*filter)[CT_KEY_LEN] = calloc(n_only + 1, CT_KEY_LEN);
    if (!p || !filter) {
        free(p);
        free(filter);
        return ct_error_set(CT_ENOMEM, "out of memory");
    }
    if (n_only)
        memcpy(filter, only, n_only * CT_KEY_LEN);
    n_only = sort_unique(filter, n_only);
    for (size_t i = 0; i < b->n_steps; i++) {
        const bundle_step *s = &b->steps[i];
        if (s->member && (!n_only || key_in((const uint8_t(*)[CT_KEY_LEN])filter, n_only, s->key)))
            p[m++].step = s;
    }
    free(filter);
    /* one entry per key (two steps with one key carry one artifact), minus those present */
    qsort(p, m, sizeof *p, cmp_pending_key);
    for (size_t i = 0; i < m; i++) {
        if (i && memcmp(p[i].step->key, p[i - 1].step->key, CT_KEY_LEN) == 0)
            continue;
        if (ct_cache_get(cache, p[i].step->key, NULL) == 0) {
            n_existing++;
            continue;
        }
        p[n++] = p[i];
    }
    qsort(p, n, sizeof *p, cmp_pending_member);
    ct_error_clear();
    int rc = 0;
    if (n) {
        uint64_t total = 0, done = 0;
        for (size_t i = 0; i < n; i++)
            total += p[i].step->size;
        ct_progress *prog = total >= BUNDLE_PROGRESS_MIN ? ct_progress_start(b->src.name, (double)total, "B")
                                                         : NULL;
        struct archive *a;
        if (!(rc = bundle_read_open(&b->src, &a))) {
            for (;;) {
                struct archive_entry *e;
                int r = archive_read_next_header(a, &e);
                if (r == ARCHIVE_EOF)
                    break;
                const char *name = r == ARCHIVE_OK ? archive_entry_pathname(e) : NULL;
                if (!name) {
                    rc = ct_error_set(CT_EFORMAT, "%s: cannot read the bundle again: %s", b->src.name,
                                      archive_error_string(a) ? archive_error_string(a) : "damaged archive");
                    break;
                }
                if ((rc = stream_member(b, cache, a, name, p, n, prog, &done)))
                    break;
            }
            archive_read_free(a);
        }
        ct_progress_finish(prog);
        for (size_t i = 0; i < n && !rc; i++)
            if (!p[i].done)
                rc = ct_error_set(CT_EINVAL, "%s: member '%s' is missing (the file changed while it was "
                                  "imported)", b->src.name, p[i].step->member);
        for (size_t i = 0; i < n; i++)
            ct_blob_abort(p[i].w);
    }
    free(p);
    if (!rc) {
        if (imported)
            *imported = n;
        if (existing)
            *existing = n_existing;
    }
    return rc;
}

int bundle_merge_root(const bundle_contents *b, ct_cache *cache, const uint8_t (*keys)[CT_KEY_LEN], size_t n_keys)
{
    /* The plan manifest exactly as `crosstime run` stores it ({label: {key, material}}
     * of every step that is not a source, canonical, under SHA-256 of
     * "crosstime-manifest\n" + text), so that caches filled by import and by run hold
     * the same entries and `crosstime plan` can explain what changed. */
    json_t *steps = json_object();
    for (size_t i = 0; i < b->n_steps; i++) {
        const bundle_step *s = &b->steps[i];
        if (!s->is_source)
            json_object_set_new(steps, s->label, json_pack("{s:s, s:O}", "key", s->hex, "material", s->material));
    }
    json_t *manifest = json_pack("{s:s, s:o}", "recipe", b->recipe_name, "steps", steps);
    char *text = NULL;
    size_t len = 0;
    int rc = manifest ? ct_canonical_json(manifest, &text, &len) : ct_error_set(CT_ENOMEM, "out of memory");
    json_decref(manifest);
    if (rc)
        return rc;
    uint8_t mkey[CT_KEY_LEN];
    ct_sha256 *c;
    static const char prefix[] = "crosstime-manifest\n";
    if (!(rc = ct_sha256_new(&c))) {
        ct_sha256_update(c, prefix, sizeof prefix - 1);
        ct_sha256_update(c, text, len);
        rc = ct_sha256_final(c, mkey);
    }
    if (!rc && ct_cache_get(cache, mkey, NULL) != 0) {
        json_t *record = json_pack("{s:{s:s, s:s}}", "material", "kind", "manifest", "recipe", b->recipe_name);
        rc = ct_cache_put(cache, mkey, record, text, len);
        json_decref(record);
    }
    free(text);
    if (rc)
        return rc;
    ct_error_clear();

    /* Merge: the new manifest first (the planner reads the root's first key as the
     * last manifest), then what the root held, then the imported keys. Imports into
     * one cache from several processes take turns, so none loses another's keys. */
    char name[300];
    snprintf(name, sizeof name, "recipe:%s", b->recipe_name);
    uint8_t lock_key[CT_KEY_LEN];
    char lock_id[320];
    snprintf(lock_id, sizeof lock_id, "crosstime-root-merge\n%s", name);
    ct_sha256_buf(lock_id, strlen(lock_id), lock_key);
    ct_cache_lock *lock;
    if ((rc = ct_cache_lock_key(cache, lock_key, NULL, NULL, &lock)))
        return rc;
    uint8_t (*old)[CT_KEY_LEN] = NULL;
    size_t n_old = 0;
    if (ct_cache_root_get(cache, name, &old, &n_old) != 0) {
        ct_error_clear();
        n_old = 0;
    }
    uint8_t (*all)[CT_KEY_LEN] = malloc((1 + n_old + n_keys) * CT_KEY_LEN);
    if (!all) {
        free(old);
        ct_cache_unlock(lock);
        return ct_error_set(CT_ENOMEM, "out of memory");
    }
    size_t n = 0;
    for (size_t i = 0; i < n_old; i++)
        if (memcmp(old[i], mkey, CT_KEY_LEN) != 0)
            memcpy(all[1 + n++], old[i], CT_KEY_LEN);
    for (size_t i = 0; i < n_keys; i++)
        if (memcmp(keys[i], mkey, CT_KEY_LEN) != 0)
            memcpy(all[1 + n++], keys[i], CT_KEY_LEN);
    n = 1 + sort_unique(all + 1, n);
    memcpy(all[0], mkey, CT_KEY_LEN);
    rc = ct_cache_root_set(cache, name, (const uint8_t(*)[CT_KEY_LEN])all, n);
    ct_cache_unlock(lock);
    free(all);
    free(old);
    return rc;
}

static int import_source(const bundle_source *src, ct_cache *cache, ct_bundle_import_stats *st)
{
    ct_bundle_import_stats local;
    if (!st)
        st = &local;
    memset(st, 0, sizeof *st);
    bundle_contents b;
    int rc = bundle_check(src, &b);
    if (rc)
        return rc;
    snprintf(st->recipe, sizeof st->recipe, "%s", b.recipe_name);
    uint8_t (*keys)[CT_KEY_LEN] = calloc(b.n_steps + 1, CT_KEY_LEN);
    if (!keys) {
        bundle_contents_free(&b);
        return ct_error_set(CT_ENOMEM, "out of memory");
    }
    size_t n_keys = 0;
    for (size_t i = 0; i < b.n_steps; i++)
        if (b.steps[i].member)
            memcpy(keys[n_keys++], b.steps[i].key, CT_KEY_LEN);
    n_keys = sort_unique(keys, n_keys);
    st->entries = n_keys;
    rc = bundle_write_entries(&b, cache, NULL, 0, &st->imported, &st->existing);
    if (!rc)
        rc = bundle_merge_root(&b, cache, (const uint8_t(*)[CT_KEY_LEN])keys, n_keys);
    free(keys);
    bundle_contents_free(&b);
    return rc;
}

int ct_bundle_import(const char *path, ct_cache *cache, ct_bundle_import_stats *st)
{
    bundle_source src = {.path = path, .name = path};
    return import_source(&src, cache, st);
}

int ct_bundle_import_buffer(const void *data, size_t len, const char *name, ct_cache *cache,
                            ct_bundle_import_stats *st)
{
    bundle_source src = {.data = data, .len = len, .name = name ? name : "<buffer>"};
    return import_source(&src, cache, st);
}

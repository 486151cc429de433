/* `bundle verify`: recompute a bundle's results in a scratch cache and compare. */
#include "common/error.h"
#include "common/sha256.h"
#include "pipeline/bundle/bundle_internal.h"
#include "pipeline/key.h"
#include "pipeline/runner.h"
#include "pipeline/step.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What verify knows of one bundled result. */
typedef struct {
    const bundle_step *bs;
    size_t plan_index;
    int state; /* R_* */
    char detail[512];
} result;

enum { R_PENDING, R_DONE, R_NOT_RECOMPUTABLE };

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static int load_recipe(const bundle_contents *b, const ct_bundle_verify_options *o, ct_recipe **out)
{
    json_t *sets = json_object_get(b->manifest, "overrides");
    size_t n = json_array_size(sets);
    const char **v = calloc(n + o->n_sets + 1, sizeof *v);
    if (!v)
        return ct_error_set(CT_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        v[i] = json_string_value(json_array_get(sets, i));
    for (size_t i = 0; i < o->n_sets; i++)
        v[n++] = o->sets[i];
    ct_recipe_options ro = CT_RECIPE_OPTIONS_INIT;
    ro.sets = v;
    ro.n_sets = n;
    int rc;
    if (o->recipe_path) {
        rc = ct_recipe_load(o->recipe_path, &ro, out);
    } else {
        /* Named after the bundle, so includes and relative paths resolve beside it. */
        char name[4096];
        snprintf(name, sizeof name, "%s:%s", b->src.name, BUNDLE_RECIPE);
        rc = ct_recipe_load_string(name, b->recipe_text, &ro, out);
    }
    free(v);
    return rc;
}

/* Copies an entry of the user's cache into the scratch cache, checking its digest. */
static int copy_entry(ct_cache *from, ct_cache *to, const uint8_t key[CT_KEY_LEN])
{
    json_t *rec;
    int rc = ct_cache_get(from, key, &rec);
    if (rc)
        return rc;
    ct_blob_reader *r = NULL;
    ct_blob_writer *w = NULL;
    ct_sha256 *sha = NULL;
    if ((rc = ct_blob_reader_open(from, key, &r)) || (rc = ct_blob_writer_open(to, &w)) ||
        (rc = ct_sha256_new(&sha)))
        goto out;
    ct_blob_chunk c;
    int more;
    while ((more = ct_blob_next_chunk(r, &c)) > 0 && !rc) {
        ct_sha256_update(sha, c.data, c.len);
        rc = ct_blob_write(w, c.data, c.len);
    }
    if (more < 0 && !rc)
        rc = more;
    if (rc)
        goto out;
    uint8_t got[32], want[32];
    const char *hex = json_string_value(json_object_get(json_object_get(rec, "blob"), "sha256"));
    ct_sha256_final(sha, got);
    sha = NULL;
    if (!hex || ct_hex_decode(hex, want, 32) || memcmp(got, want, 32) != 0) {
        char k[CT_KEY_HEX_LEN + 1];
        ct_key_hex(key, k);
        rc = ct_error_set(CT_ECORRUPT, "%s: entry %s does not match its digest (run crosstime cache verify)",
                          ct_cache_dir(from), k);
        goto out;
    }
    json_t *user = bundle_user_record(rec);
    rc = ct_blob_commit(w, key, user);
    w = NULL;
    json_decref(user);
out:
    ct_sha256_free(sha);
    ct_blob_abort(w);
    ct_blob_reader_close(r);
    json_decref(rec);
    return rc;
}

static int is_result_step(const result *rs, size_t n, size_t plan_index)
{
    for (size_t i = 0; i < n; i++)
        if (rs[i].state != R_NOT_RECOMPUTABLE && rs[i].plan_index == plan_index)
            return 1;
    return 0;
}

/* Brings the direct inputs of the results into the scratch cache: the bundle's
 * artifacts first, then the user's cache. */
static int gather_inputs(const bundle_contents *b, const ct_bundle_verify_options *o, ct_plan *plan,
                         ct_cache *scratch, result *rs, size_t n)
{
    uint8_t (*need)[CT_KEY_LEN] = calloc(ct_plan_size(plan) + 1, CT_KEY_LEN);
    if (!need)
        return ct_error_set(CT_ENOMEM, "out of memory");
    size_t n_need = 0;
    for (size_t i = 0; i < n; i++) {
        if (rs[i].state == R_NOT_RECOMPUTABLE)
            continue;
        const ct_plan_step *s = ct_plan_get(plan, rs[i].plan_index);
        for (size_t d = 0; d < s->n_deps; d++) {
            const ct_plan_step *in = ct_plan_get(plan, s->deps[d]);
            if (in->source_path || is_result_step(rs, n, in->index))
                continue;
            int dup = 0;
            for (size_t k = 0; k < n_need && !dup; k++)
                dup = memcmp(need[k], in->key, CT_KEY_LEN) == 0;
            if (!dup)
                memcpy(need[n_need++], in->key, CT_KEY_LEN);
        }
    }
    int rc = n_need ? bundle_write_entries(b, scratch, (const uint8_t(*)[CT_KEY_LEN])need, n_need, NULL, NULL)
                    : 0;
    for (size_t k = 0; k < n_need && !rc && o->cache; k++) {
        if (ct_cache_get(scratch, need[k], NULL) == 0 || ct_cache_get(o->cache, need[k], NULL) != 0)
            continue;
        rc = copy_entry(o->cache, scratch, need[k]);
    }
    ct_error_clear();
    free(need);
    return rc;
}

/* Recomputes, wave by wave, the results whose inputs are all in the scratch cache. */
static int recompute(const ct_recipe *recipe, const ct_bundle_verify_options *o, ct_cache *scratch,
                     result *rs, size_t n)
{
    const char **only = calloc(n + 1, sizeof *only);
    if (!only)
        return ct_error_set(CT_ENOMEM, "out of memory");
    int rc = 0;
    for (;;) {
        ct_plan *plan;
        if ((rc = ct_plan_build(recipe, scratch, &plan)))
            break;
        size_t n_only = 0;
        for (size_t i = 0; i < n; i++) {
            if (rs[i].state != R_PENDING)
                continue;
            const ct_plan_step *s = ct_plan_get(plan, rs[i].plan_index);
            int ready = 1;
            for (size_t d = 0; d < s->n_deps && ready; d++)
                ready = ct_plan_get(plan, s->deps[d])->cached;
            if (ready)
                only[n_only++] = s->label;
        }
        if (!n_only) {
            ct_plan_free(plan);
            break;
        }
        ct_run_options ro = CT_RUN_OPTIONS_INIT;
        ro.jobs = o->jobs > 0 ? o->jobs : 1;
        ro.device = o->device ? o->device : "cpu";
        ro.quiet = 1;
        ro.only = only;
        ro.n_only = n_only;
        int run_rc = ct_run(plan, scratch, &ro, NULL);
        char msg[400];
        snprintf(msg, sizeof msg, "%s", run_rc ? ct_error_message() : "");
        for (size_t i = 0; i < n; i++) {
            if (rs[i].state != R_PENDING)
                continue;
            const ct_plan_step *s = ct_plan_get(plan, rs[i].plan_index);
            int asked = 0;
            for (size_t k = 0; k < n_only && !asked; k++)
                asked = strcmp(only[k], s->label) == 0;
            if (!asked)
                continue;
            if (ct_cache_get(scratch, s->key, NULL) == 0) {
                rs[i].state = R_DONE;
            } else {
                rs[i].state = R_NOT_RECOMPUTABLE;
                snprintf(rs[i].detail, sizeof rs[i].detail, "recomputing it failed: %s", msg);
            }
        }
        ct_plan_free(plan);
        ct_error_clear();
        if (run_rc == CT_EINTR) {
            rc = ct_error_set(CT_EINTR, "verify stopped by the user");
            break;
        }
    }
    free(only);
    return rc;
}

/* Names the absent inputs of a result that could not run. */
static void explain_absent(ct_plan *plan, ct_cache *scratch, result *r)
{
    const ct_plan_step *s = ct_plan_get(plan, r->plan_index);
    size_t len = (size_t)snprintf(r->detail, sizeof r->detail, "inputs absent (neither in the bundle nor "
                                  "in the cache):");
    int first = 1;
    for (size_t d = 0; d < s->n_deps && len < sizeof r->detail; d++) {
        const ct_plan_step *in = ct_plan_get(plan, s->deps[d]);
        if (in->source_path || ct_cache_get(scratch, in->key, NULL) == 0)
            continue;
        len += (size_t)snprintf(r->detail + len, sizeof r->detail - len, "%s %s", first ? "" : ",", in->label);
        first = 0;
    }
    ct_error_clear();
}

static int compare(const bundle_contents *b, ct_cache *scratch, result *r, ct_bundle_verify_entry *e)
{
    const bundle_step *bs = r->bs;
    json_t *rec;
    int rc = ct_cache_get(scratch, bs->key, &rec);
    if (rc)
        return rc;
    const char *hex = json_string_value(json_object_get(json_object_get(rec, "blob"), "sha256"));
    uint8_t sha[32];
    int same = hex && ct_hex_decode(hex, sha, 32) == 0 && memcmp(sha, bs->sha256, 32) == 0;
    e->recomputed_bytes = (uint64_t)json_integer_value(json_object_get(json_object_get(rec, "blob"), "size"));
    json_decref(rec);
    e->bundle_bytes = bs->size;
    if (same) {
        e->outcome = CT_BUNDLE_IDENTICAL;
        char full[CT_SHA256_HEX_LEN + 1];
        ct_hex_encode(bs->sha256, 32, full);
        snprintf(r->detail, sizeof r->detail, "identical (%llu bytes, sha256 %.12s)",
                 (unsigned long long)bs->size, full);
        return 0;
    }
    char *mine = NULL, *theirs = NULL;
    size_t lm = 0, lt = 0;
    if ((rc = ct_cache_read_all(scratch, bs->key, &mine, &lm)) ||
        (rc = bundle_read_member(&b->src, bs->member, &theirs, &lt))) {
        free(mine);
        return rc;
    }
    bundle_diff d;
    bundle_diff_compute(theirs, lt, mine, lm, &d);
    free(mine);
    free(theirs);
    e->outcome = CT_BUNDLE_DIFFERENT;
    e->bytes_differing = d.bytes_differing;
    e->bundle_lines = d.lines_a;
    e->recomputed_lines = d.lines_b;
    e->lines_differing = d.lines_differing;
    snprintf(r->detail, sizeof r->detail,
             "different: %llu of %llu lines differ, %llu bytes differ (bundle %llu bytes, recomputed %llu bytes)",
             (unsigned long long)d.lines_differing,
             (unsigned long long)(d.lines_a > d.lines_b ? d.lines_a : d.lines_b),
             (unsigned long long)d.bytes_differing, (unsigned long long)lt, (unsigned long long)lm);
    return 0;
}

int ct_bundle_verify(const char *path, const ct_bundle_verify_options *opts_in, ct_bundle_verify_fn fn,
                     void *user, ct_bundle_verify_stats *stats)
{
    ct_bundle_verify_options o = opts_in ? *opts_in : (ct_bundle_verify_options)CT_BUNDLE_VERIFY_OPTIONS_INIT;
    ct_bundle_verify_stats local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    bundle_source src = {.path = path, .name = path};
    bundle_contents b;
    int rc = bundle_check(&src, &b);
    if (rc)
        return rc;
    ct_recipe *recipe = NULL;
    ct_cache *scratch = NULL;
    ct_plan *plan = NULL;
    result *rs = calloc(b.n_steps + 1, sizeof *rs);
    char dir[4096] = "";
    int made_dir = 0;
    if (!rs) {
        rc = ct_error_set(CT_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = load_recipe(&b, &o, &recipe))) {
        ct_error_wrap(rc, "%s: cannot load the bundled recipe (give one with --recipe)", path);
        goto out;
    }
    if (o.scratch_dir) {
        snprintf(dir, sizeof dir, "%s", o.scratch_dir);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/crosstime-verify-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) {
            rc = ct_error_set(CT_EIO, "%s: cannot create a scratch directory: %s", dir, strerror(errno));
            goto out;
        }
        made_dir = 1;
    }
    ct_cache_options co = CT_CACHE_OPTIONS_INIT;
    co.dir = dir;
    if ((rc = ct_cache_open(&co, &scratch)) || (rc = ct_plan_build(recipe, scratch, &plan)))
        goto out;

    size_t n = 0;
    for (size_t i = 0; i < b.n_steps; i++) {
        const bundle_step *bs = &b.steps[i];
        if (!bs->member || bs->bundle_class != CT_BUNDLE_RESULT)
            continue;
        result *r = &rs[n++];
        r->bs = bs;
        size_t idx;
        if (ct_plan_find(plan, bs->label, &idx) != 0) {
            r->state = R_NOT_RECOMPUTABLE;
            snprintf(r->detail, sizeof r->detail, "the recipe plans no step labelled %s", bs->label);
            continue;
        }
        r->plan_index = idx;
        const ct_plan_step *s = ct_plan_get(plan, idx);
        if (memcmp(s->key, bs->key, CT_KEY_LEN) != 0) {
            char hex[CT_KEY_HEX_LEN + 1];
            ct_key_hex(s->key, hex);
            r->state = R_NOT_RECOMPUTABLE;
            snprintf(r->detail, sizeof r->detail, "the recipe plans key %.12s here, the bundle holds %.12s "
                     "(the recipe, its sources or this build's step versions differ)", hex, bs->hex);
        }
    }
    if ((rc = gather_inputs(&b, &o, plan, scratch, rs, n)) || (rc = recompute(recipe, &o, scratch, rs, n)))
        goto out;
    for (size_t i = 0; i < n; i++) {
        result *r = &rs[i];
        ct_bundle_verify_entry e = {.label = r->bs->label, .kind = r->bs->kind, .key_hex = r->bs->hex,
                                    .outcome = CT_BUNDLE_NOT_RECOMPUTABLE, .bundle_bytes = r->bs->size};
        if (r->state == R_PENDING)
            explain_absent(plan, scratch, r);
        else if (r->state == R_DONE && (rc = compare(&b, scratch, r, &e)))
            goto out;
        e.detail = r->detail;
        if (e.outcome == CT_BUNDLE_IDENTICAL)
            stats->identical++;
        else if (e.outcome == CT_BUNDLE_DIFFERENT)
            stats->different++;
        else
            stats->not_recomputable++;
        if (fn)
            fn(&e, user);
    }
out:
    ct_plan_free(plan);
    ct_cache_close(scratch);
    ct_recipe_free(recipe);
    if (made_dir)
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(rs);
    bundle_contents_free(&b);
    return rc;
}

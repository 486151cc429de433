/* `bundle export`: the plan's records and chosen artifacts as one deterministic
 * tar.zst. */
#include "common/error.h"
#include "common/progress.h"
#include "common/sha256.h"
#include "pipeline/bundle/bundle_internal.h"
#include "pipeline/key.h"
#include "pipeline/step.h"
#include "ct_version.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One member to write: in-memory text, or a cache blob. */
typedef struct {
    char *name;
    const char *text;
    size_t text_len;
    const uint8_t *key; /* blob members */
    uint8_t sha256[32];
    uint64_t size;
    const char *label;
} member;

static int cmp_member(const void *a, const void *b)
{
    return strcmp(((const member *)a)->name, ((const member *)b)->name);
}

/* Labels become member names as they are when they are plainly safe; anything else
 * goes by key, so no label can make export write a name import would refuse. */
static int label_is_safe(const char *label)
{
    if (!*label || strlen(label) > 200)
        return 0;
    for (const char *p = label; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("._-/", *p)))
            return 0;
    for (const char *p = label; *p;) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return 0;
        p = end ? end + 1 : p + n;
    }
    return 1;
}

static int selected(const ct_bundle_export_options *o, const char *label)
{
    if (!o->n_labels)
        return 1;
    for (size_t i = 0; i < o->n_labels; i++)
        if (strcmp(o->labels[i], label) == 0)
            return 1;
    return 0;
}

static int carried(const ct_bundle_export_options *o, const ct_step_kind *kind)
{
    if (o->n_labels)
        return 1;
    switch (kind->bundle) {
    case CT_BUNDLE_RESULT:
        return 1;
    case CT_BUNDLE_ARTIFACT:
        return o->with_artifacts;
    case CT_BUNDLE_ACTIVATION:
        return o->with_activations;
    default:
        return 0;
    }
}

/* Builds the manifest and the list of blob members. */
static int build_manifest(const ct_plan *plan, ct_cache *cache, const ct_bundle_export_options *o,
                          json_t **manifest, member **members, size_t *n_members,
                          ct_bundle_export_stats *st)
{
    size_t n = ct_plan_size(plan);
    member *ms = calloc(n + 2, sizeof *ms);
    json_t *steps = json_array();
    int rc = 0;
    size_t nm = 0;
    if (!ms || !steps) {
        free(ms);
        json_decref(steps);
        return ct_error_set(CT_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n && !rc; i++) {
        const ct_plan_step *s = ct_plan_get(plan, i);
        char hex[CT_KEY_HEX_LEN + 1];
        ct_key_hex(s->key, hex);
        json_t *deps = json_array();
        for (size_t d = 0; d < s->n_deps; d++)
            json_array_append_new(deps, json_string(ct_plan_get(plan, s->deps[d])->label));
        json_t *js = json_pack("{s:s, s:s, s:s, s:O, s:o}", "label", s->label, "kind",
                               s->kind ? s->kind->name : "source", "key", hex, "material", s->material,
                               "deps", deps);
        if (!js) {
            rc = ct_error_set(CT_ENOMEM, "out of memory");
            break;
        }
        json_array_append_new(steps, js);
        if (!s->kind) {
            json_object_set_new(js, "bundle", json_string("source"));
            json_object_set_new(js, "status", json_string("source"));
            continue;
        }
        st->steps++;
        json_object_set_new(js, "bundle", json_string(bundle_class_name(s->kind->bundle)));
        if (!selected(o, s->label)) {
            json_object_set_new(js, "status", json_string("not selected"));
            continue;
        }
        json_t *record;
        if (ct_cache_get(cache, s->key, &record) != 0) {
            if (o->n_labels) {
                rc = ct_error_set(CT_ENOTFOUND, "step %s (key %.12s) is not in the cache %s: run it before "
                                  "exporting it", s->label, hex, ct_cache_dir(cache));
                break;
            }
            ct_error_clear();
            json_object_set_new(js, "status", json_string("absent"));
            st->absent++;
            continue;
        }
        if (!json_equal(json_object_get(record, "material"), s->material)) {
            json_decref(record);
            rc = ct_error_set(CT_ECORRUPT, "%s: entry %s (step %s) holds other key material than the plan",
                              ct_cache_dir(cache), hex, s->label);
            break;
        }
        json_t *portable = bundle_portable_record(record);
        const char *sha = json_string_value(json_object_get(json_object_get(record, "blob"), "sha256"));
        json_int_t size = json_integer_value(json_object_get(json_object_get(record, "blob"), "size"));
        if (!portable || !sha || ct_hex_decode(sha, ms[nm].sha256, 32) || size < 0) {
            json_decref(portable);
            json_decref(record);
            rc = ct_error_set(CT_ECORRUPT, "%s: entry %s (step %s) has no valid blob digest",
                              ct_cache_dir(cache), hex, s->label);
            break;
        }
        json_decref(record);
        json_object_set_new(js, "record", portable);
        st->records++;
        if (!carried(o, s->kind)) {
            json_object_set_new(js, "status", json_string("record"));
            continue;
        }
        char name[256];
        if (s->kind->bundle == CT_BUNDLE_RESULT && label_is_safe(s->label))
            snprintf(name, sizeof name, "results/%s", s->label);
        else if (s->kind->bundle == CT_BUNDLE_RESULT)
            snprintf(name, sizeof name, "results/%s", hex);
        else
            snprintf(name, sizeof name, "artifacts/%s", hex);
        json_object_set_new(js, "status", json_string("exported"));
        json_object_set_new(js, "member", json_string(name));
        ms[nm].name = strdup(name);
        ms[nm].key = s->key;
        ms[nm].size = (uint64_t)size;
        ms[nm].label = s->label;
        if (!ms[nm].name) {
            rc = ct_error_set(CT_ENOMEM, "out of memory");
            break;
        }
        nm++;
        st->artifacts++;
        st->bytes += (uint64_t)size;
    }
    for (size_t k = 0; k < o->n_labels && !rc; k++) {
        size_t idx;
        if (ct_plan_find(plan, o->labels[k], &idx) != 0)
            rc = ct_error_set(CT_ENOTFOUND, "--keys %s: recipe %s has no step with that label", o->labels[k],
                              ct_recipe_name(ct_plan_recipe(plan)));
        else if (!ct_plan_get(plan, idx)->kind)
            rc = ct_error_set(CT_EINVAL, "--keys %s: that is a source file, not a step (sources are read "
                              "where the recipe names them)", o->labels[k]);
    }
    json_t *sets = json_array();
    for (size_t k = 0; k < o->n_sets; k++)
        json_array_append_new(sets, json_string(o->sets[k]));
    json_t *with = json_array();
    if (o->with_activations)
        json_array_append_new(with, json_string("activations"));
    if (o->with_artifacts)
        json_array_append_new(with, json_string("artifacts"));
    *manifest = json_pack("{s:s, s:i, s:s, s:s, s:o, s:o, s:o}", "format", CT_BUNDLE_FORMAT, "version",
                          CT_BUNDLE_VERSION, "crosstime", CT_VERSION, "recipe",
                          ct_recipe_name(ct_plan_recipe(plan)), "overrides", sets, "with", with, "steps",
                          steps);
    if (!rc && !*manifest)
        rc = ct_error_set(CT_ENOMEM, "out of memory");
    *members = ms;
    *n_members = nm;
    return rc;
}

/* --- the deterministic archive ------------------------------------------------------- */

static int arc_fail(struct archive *a, const char *path)
{
    return ct_error_set(CT_EIO, "%s: cannot write the bundle: %s", path,
                        archive_error_string(a) ? archive_error_string(a) : "unknown error");
}

static int open_writer(int fd, int level, const char *path, struct archive **out)
{
    struct archive *a = archive_write_new();
    if (!a)
        return ct_error_set(CT_ENOMEM, "out of memory");
    char lv[16];
    snprintf(lv, sizeof lv, "%d", level);
    if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_add_filter_zstd(a) != ARCHIVE_OK ||
        archive_write_set_filter_option(a, "zstd", "compression-level", lv) != ARCHIVE_OK) {
        int rc = arc_fail(a, path);
        archive_write_free(a);
        return rc;
    }
    /* zstd output is the same for any thread count only with one worker; older
     * libarchive has no "threads" option and is single-threaded anyway. */
    archive_write_set_filter_option(a, "zstd", "threads", "1");
    if (archive_write_open_fd(a, fd) != ARCHIVE_OK) {
        int rc = arc_fail(a, path);
        archive_write_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

static int write_header(struct archive *a, const char *path, const char *name, uint64_t size)
{
    struct archive_entry *e = archive_entry_new();
    if (!e)
        return ct_error_set(CT_ENOMEM, "out of memory");
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, (la_int64_t)size);
    archive_entry_set_mtime(e, 0, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    int r = archive_write_header(a, e);
    archive_entry_free(e);
    return r == ARCHIVE_OK ? 0 : arc_fail(a, path);
}

static int write_data(struct archive *a, const char *path, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        la_ssize_t w = archive_write_data(a, p, len);
        if (w <= 0)
            return arc_fail(a, path);
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int write_blob(struct archive *a, ct_cache *cache, const char *path, const member *m, ct_progress *prog,
                      uint64_t *done)
{
    ct_blob_reader *r;
    int rc = ct_blob_reader_open(cache, m->key, &r);
    if (rc)
        return rc;
    char hex[CT_KEY_HEX_LEN + 1];
    ct_key_hex(m->key, hex);
    if (ct_blob_size(r) != m->size) {
        ct_blob_reader_close(r);
        return ct_error_set(CT_ECORRUPT, "%s: entry %s (step %s): blob size disagrees with its record "
                            "(run crosstime cache verify)", ct_cache_dir(cache), hex, m->label);
    }
    ct_sha256 *sha;
    if ((rc = ct_sha256_new(&sha))) {
        ct_blob_reader_close(r);
        return rc;
    }
    if (!(rc = write_header(a, path, m->name, m->size))) {
        ct_blob_chunk c;
        int more;
        while ((more = ct_blob_next_chunk(r, &c)) > 0 && !rc) {
            ct_sha256_update(sha, c.data, c.len);
            rc = write_data(a, path, c.data, c.len);
            *done += c.len;
            ct_progress_update(prog, (double)*done);
        }
        if (more < 0 && !rc)
            rc = more;
    }
    ct_blob_reader_close(r);
    uint8_t got[32];
    if (rc) {
        ct_sha256_free(sha);
        return rc;
    }
    ct_sha256_final(sha, got);
    if (memcmp(got, m->sha256, 32) != 0)
        return ct_error_set(CT_ECORRUPT, "%s: entry %s (step %s): blob does not match its digest "
                            "(run crosstime cache verify)", ct_cache_dir(cache), hex, m->label);
    return 0;
}

static int write_archive(int fd, const char *path, ct_cache *cache, int level, member *ms, size_t n)
{
    struct archive *a = NULL;
    int rc = open_writer(fd, level, path, &a);
    if (rc)
        return rc;
    uint64_t total = 0, done = 0;
    for (size_t i = 0; i < n; i++)
        total += ms[i].key ? ms[i].size : 0;
    /* Only exports worth waiting for get a progress line. */
    ct_progress *prog = total >= BUNDLE_PROGRESS_MIN ? ct_progress_start(path, (double)total, "B") : NULL;
    for (size_t i = 0; i < n && !rc; i++) {
        if (i && strcmp(ms[i].name, ms[i - 1].name) == 0)
            continue; /* two steps with one key share their artifact */
        if (ms[i].key)
            rc = write_blob(a, cache, path, &ms[i], prog, &done);
        else if (!(rc = write_header(a, path, ms[i].name, ms[i].text_len)))
            rc = write_data(a, path, ms[i].text, ms[i].text_len);
    }
    if (!rc && archive_write_close(a) != ARCHIVE_OK)
        rc = arc_fail(a, path);
    ct_progress_finish(prog);
    archive_write_free(a);
    return rc;
}

int ct_bundle_export(const ct_plan *plan, ct_cache *cache, const char *path,
                     const ct_bundle_export_options *opts_in, ct_bundle_export_stats *stats)
{
    ct_bundle_export_options o = opts_in ? *opts_in : (ct_bundle_export_options)CT_BUNDLE_EXPORT_OPTIONS_INIT;
    ct_bundle_export_stats local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    int level = o.zstd_level ? o.zstd_level : CT_BUNDLE_ZSTD_LEVEL;
    json_t *manifest = NULL;
    member *ms = NULL;
    size_t nm = 0;
    char *mtext = NULL, *tmp = NULL;
    size_t mlen = 0;
    int fd = -1;
    int rc = build_manifest(plan, cache, &o, &manifest, &ms, &nm, stats);
    if (!rc)
        rc = ct_canonical_json(manifest, &mtext, &mlen);
    if (rc)
        goto out;
    /* A trailing newline keeps the member pleasant to read with tar -xO. */
    char *t = realloc(mtext, mlen + 2);
    if (!t) {
        rc = ct_error_set(CT_ENOMEM, "out of memory");
        goto out;
    }
    mtext = t;
    mtext[mlen++] = '\n';
    mtext[mlen] = '\0';
    const char *recipe = ct_recipe_text(ct_plan_recipe(plan));
    ms[nm++] = (member){.name = strdup(BUNDLE_MANIFEST), .text = mtext, .text_len = mlen};
    ms[nm++] = (member){.name = strdup(BUNDLE_RECIPE), .text = recipe ? recipe : "",
                        .text_len = recipe ? strlen(recipe) : 0};
    if (!ms[nm - 1].name || !ms[nm - 2].name) {
        rc = ct_error_set(CT_ENOMEM, "out of memory");
        goto out;
    }
    qsort(ms, nm, sizeof *ms, cmp_member);

    size_t plen = strlen(path);
    if (!(tmp = malloc(plen + 16))) {
        rc = ct_error_set(CT_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    if ((fd = mkstemp(tmp)) < 0) {
        rc = ct_error_set(CT_EIO, "%s: cannot create a file beside it: %s", path, strerror(errno));
        free(tmp);
        tmp = NULL;
        goto out;
    }
    if (fchmod(fd, 0644) != 0 || (rc = write_archive(fd, path, cache, level, ms, nm))) {
        if (!rc)
            rc = ct_error_set(CT_EIO, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        rc = ct_error_set(CT_EIO, "%s: cannot write the bundle: %s", path, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = ct_error_set(CT_EIO, "%s: cannot write the bundle: %s", path, strerror(errno));
        goto out;
    }
    free(tmp);
    tmp = NULL;
out:
    if (fd >= 0)
        close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    for (size_t i = 0; ms && i < nm; i++)
        free(ms[i].name);
    free(ms);
    free(mtext);
    json_decref(manifest);
    return rc;
}

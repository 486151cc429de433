/* Reading an untrusted bundle: one pass over the archive that refuses unsafe
 * members and hashes every blob, then a check of the manifest against the members.
 * Nothing here writes anywhere. */
#include "common/error.h"
#include "common/sha256.h"
#include "pipeline/bundle/bundle_internal.h"
#include "pipeline/key.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bundle_read_open(const bundle_source *src, struct archive **out)
{
    struct archive *a = archive_read_new();
    if (!a)
        return ct_error_set(CT_ENOMEM, "out of memory");
    /* Only what export writes (and its uncompressed or gzipped forms): no other
     * format's parser is exposed to untrusted input. */
    archive_read_support_filter_zstd(a);
    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    int r = src->path ? archive_read_open_filename(a, src->path, 1 << 16)
                      : archive_read_open_memory(a, src->data, src->len);
    if (r != ARCHIVE_OK) {
        int rc = ct_error_set(CT_EFORMAT, "%s: not a readable bundle (tar.zst): %s", src->name,
                              archive_error_string(a) ? archive_error_string(a) : "unknown error");
        archive_read_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void bundle_contents_free(bundle_contents *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n_members; i++)
        free(b->members[i].name);
    free(b->members);
    free(b->manifest_text);
    free(b->recipe_text);
    json_decref(b->manifest);
    free(b->steps);
    memset(b, 0, sizeof *b);
}

/* --- the member pass -------------------------------------------------------------- */

static int refuse(const bundle_source *src, const char *member, const char *what)
{
    return ct_error_set(CT_EINVAL, "%s: member '%s': %s; nothing was imported", src->name, member, what);
}

/* A member name must be relative, without '.', '..' or empty components. */
static int check_name(const bundle_source *src, const char *name)
{
    if (!*name)
        return refuse(src, name, "empty name");
    if (name[0] == '/')
        return refuse(src, name, "absolute path");
    for (const char *p = name; *p;) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return refuse(src, name, "path contains '..'");
        if (n == 0 && end && end[1] == '\0')
            return refuse(src, name, "directory where a file was expected");
        if (n == 0 || (n == 1 && p[0] == '.'))
            return refuse(src, name, "path has an empty or '.' component");
        p = end ? end + 1 : p + n;
    }
    return 0;
}

static int check_type(const bundle_source *src, struct archive_entry *e, const char *name)
{
    if (archive_entry_hardlink(e))
        return refuse(src, name, "hard link (only regular files are allowed)");
    switch (archive_entry_filetype(e)) {
    case AE_IFREG:
        return 0;
    case AE_IFLNK:
        return refuse(src, name, "symbolic link (only regular files are allowed)");
    case AE_IFDIR:
        return refuse(src, name, "directory where a file was expected");
    case AE_IFCHR:
    case AE_IFBLK:
        return refuse(src, name, "device file (only regular files are allowed)");
    case AE_IFIFO:
        return refuse(src, name, "fifo (only regular files are allowed)");
    case AE_IFSOCK:
        return refuse(src, name, "socket (only regular files are allowed)");
    default:
        return refuse(src, name, "not a regular file");
    }
}

static int archive_fail(const bundle_source *src, struct archive *a, const char *member)
{
    const char *why = archive_error_string(a);
    if (member)
        return ct_error_set(CT_EFORMAT, "%s: member '%s': cannot read it: %s", src->name, member,
                            why ? why : "damaged archive");
    return ct_error_set(CT_EFORMAT, "%s: not a readable bundle (tar.zst): %s", src->name,
                        why ? why : "damaged archive");
}

/* Streams the current member: hashes it, and keeps it in memory when `keep` is set
 * (at most `cap` bytes). */
static int read_member(const bundle_source *src, struct archive *a, const char *name, bundle_member *m,
                       char **keep, size_t cap, int text)
{
    ct_sha256 *sha;
    int rc = ct_sha256_new(&sha);
    if (rc)
        return rc;
    char *buf = NULL;
    size_t len = 0, bcap = 0;
    enum { BLOCK = 1 << 16 };
    char *block = malloc(BLOCK);
    if (!block) {
        ct_sha256_free(sha);
        return ct_error_set(CT_ENOMEM, "out of memory");
    }
    for (;;) {
        la_ssize_t got = archive_read_data(a, block, BLOCK);
        if (got < 0) {
            rc = archive_fail(src, a, name);
            break;
        }
        if (got == 0)
            break;
        ct_sha256_update(sha, block, (size_t)got);
        m->size += (uint64_t)got;
        if (keep) {
            if (m->size > cap) {
                rc = refuse(src, name, "too large");
                break;
            }
            if (len + (size_t)got + 1 > bcap) {
                size_t nc = bcap ? bcap * 2 : 1 << 16;
                while (nc < len + (size_t)got + 1)
                    nc *= 2;
                char *nb = realloc(buf, nc);
                if (!nb) {
                    rc = ct_error_set(CT_ENOMEM, "out of memory");
                    break;
                }
                buf = nb;
                bcap = nc;
            }
            memcpy(buf + len, block, (size_t)got);
            len += (size_t)got;
        }
    }
    free(block);
    if (rc) {
        ct_sha256_free(sha);
        free(buf);
        return rc;
    }
    ct_sha256_final(sha, m->sha256);
    if (keep) {
        if (!buf && !(buf = malloc(1)))
            return ct_error_set(CT_ENOMEM, "out of memory");
        buf[len] = '\0';
        if (text && strlen(buf) != len) {
            free(buf);
            return refuse(src, name, "contains a NUL byte");
        }
        *keep = buf;
    }
    return 0;
}

static int cmp_member(const void *a, const void *b)
{
    return strcmp(((const bundle_member *)a)->name, ((const bundle_member *)b)->name);
}

static int scan(const bundle_source *src, bundle_contents *b)
{
    struct archive *a;
    int rc = bundle_read_open(src, &a);
    if (rc)
        return rc;
    size_t cap = 0;
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK) {
            rc = archive_fail(src, a, NULL);
            break;
        }
        const char *name = archive_entry_pathname(e);
        if (!name) {
            rc = ct_error_set(CT_EINVAL, "%s: a member has no readable name; nothing was imported", src->name);
            break;
        }
        if ((rc = check_name(src, name)) || (rc = check_type(src, e, name)))
            break;
        if (b->n_members == cap) {
            size_t nc = cap ? cap * 2 : 16;
            bundle_member *m = realloc(b->members, nc * sizeof *m);
            if (!m) {
                rc = ct_error_set(CT_ENOMEM, "out of memory");
                break;
            }
            b->members = m;
            cap = nc;
        }
        bundle_member *m = &b->members[b->n_members];
        memset(m, 0, sizeof *m);
        if (!(m->name = strdup(name))) {
            rc = ct_error_set(CT_ENOMEM, "out of memory");
            break;
        }
        b->n_members++;
        char **keep = NULL;
        size_t limit = 0;
        if (strcmp(name, BUNDLE_MANIFEST) == 0 && !b->manifest_text)
            keep = &b->manifest_text, limit = BUNDLE_MAX_MANIFEST;
        else if (strcmp(name, BUNDLE_RECIPE) == 0 && !b->recipe_text)
            keep = &b->recipe_text, limit = BUNDLE_MAX_RECIPE;
        if ((rc = read_member(src, a, name, m, keep, limit, 1)))
            break;
    }
    archive_read_free(a);
    if (rc)
        return rc;
    if (b->n_members > 1) {
        qsort(b->members, b->n_members, sizeof *b->members, cmp_member);
        for (size_t i = 1; i < b->n_members; i++)
            if (strcmp(b->members[i - 1].name, b->members[i].name) == 0)
                return refuse(src, b->members[i].name, "duplicate member name");
    }
    if (!b->manifest_text)
        return ct_error_set(CT_EFORMAT, "%s: not a crosstime bundle: it has no %s; nothing was imported",
                            src->name, BUNDLE_MANIFEST);
    if (!b->recipe_text)
        return ct_error_set(CT_EFORMAT, "%s: the bundle has no %s; nothing was imported", src->name,
                            BUNDLE_RECIPE);
    return 0;
}

static bundle_member *find_member(bundle_contents *b, const char *name)
{
    size_t lo = 0, hi = b->n_members;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(b->members[mid].name, name);
        if (c == 0)
            return &b->members[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* --- the manifest ----------------------------------------------------------------- */

static int bad_manifest(const bundle_source *src, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad_manifest(const bundle_source *src, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return ct_error_set(CT_EFORMAT, "%s: member '%s': %s; nothing was imported", src->name, BUNDLE_MANIFEST,
                        what);
}

static const char *const statuses[] = {"exported", "record", "absent", "not selected", "source", NULL};

static int check_step(bundle_contents *b, size_t i, json_t *js)
{
    const bundle_source *src = &b->src;
    bundle_step *s = &b->steps[i];
    if (!json_is_object(js))
        return bad_manifest(src, "steps[%zu] is not an object", i);
    s->label = json_string_value(json_object_get(js, "label"));
    s->kind = json_string_value(json_object_get(js, "kind"));
    s->status = json_string_value(json_object_get(js, "status"));
    const char *hex = json_string_value(json_object_get(js, "key"));
    const char *cls = json_string_value(json_object_get(js, "bundle"));
    s->material = json_object_get(js, "material");
    s->deps = json_object_get(js, "deps");
    if (!s->label || !*s->label || !s->kind || !s->status || !hex || !cls || !json_is_object(s->material) ||
        !json_is_array(s->deps))
        return bad_manifest(src, "steps[%zu] lacks one of label, kind, key, bundle, status, material, deps", i);
    int known = 0;
    for (int k = 0; statuses[k]; k++)
        known |= strcmp(s->status, statuses[k]) == 0;
    if (!known)
        return bad_manifest(src, "step '%s' has unknown status '%s'", s->label, s->status);
    if ((s->bundle_class = bundle_class_parse(cls)) < 0)
        return bad_manifest(src, "step '%s' has unknown bundle class '%s'", s->label, cls);
    if (strlen(hex) != 2 * CT_KEY_LEN || ct_hex_decode(hex, s->key, CT_KEY_LEN))
        return bad_manifest(src, "step '%s': key '%.80s' is not 64 hex digits", s->label, hex);
    ct_key_hex(s->key, s->hex);
    for (size_t d = 0; d < json_array_size(s->deps); d++)
        if (!json_is_string(json_array_get(s->deps, d)))
            return bad_manifest(src, "step '%s': deps must be labels", s->label);

    s->is_source = strcmp(s->kind, "source") == 0;
    if (s->is_source != (strcmp(s->status, "source") == 0))
        return bad_manifest(src, "step '%s': only sources have status 'source'", s->label);
    if (s->is_source) {
        /* A source's key is its content digest, stated in its material. */
        const char *digest = json_string_value(json_object_get(s->material, "digest"));
        if (!digest || strcmp(digest, s->hex) != 0)
            return ct_error_set(CT_EINVAL, "%s: member '%s': key mismatch: source '%s' has key %s but its "
                                "material states digest %.80s; nothing was imported", src->name,
                                BUNDLE_MANIFEST, s->label, s->hex, digest ? digest : "(none)");
    } else {
        uint8_t k[CT_KEY_LEN];
        char khex[2 * CT_KEY_LEN + 1];
        if (ct_key_of(s->material, k))
            return bad_manifest(src, "step '%s': key material cannot be encoded (%s)", s->label,
                                ct_error_message());
        if (memcmp(k, s->key, CT_KEY_LEN) != 0) {
            ct_key_hex(k, khex);
            return ct_error_set(CT_EINVAL, "%s: member '%s': key mismatch: step '%s' is listed under key %s "
                                "but its key material hashes to %s; nothing was imported", src->name,
                                BUNDLE_MANIFEST, s->label, s->hex, khex);
        }
    }

    int has_record = strcmp(s->status, "exported") == 0 || strcmp(s->status, "record") == 0;
    json_t *rec = json_object_get(js, "record");
    json_t *member = json_object_get(js, "member");
    if (has_record != (rec != NULL))
        return bad_manifest(src, "step '%s': a record goes with status exported or record", s->label);
    if ((strcmp(s->status, "exported") == 0) != (member != NULL))
        return bad_manifest(src, "step '%s': a member goes with status exported", s->label);
    if (rec) {
        if (!json_is_object(rec))
            return bad_manifest(src, "step '%s': record is not an object", s->label);
        if (!json_equal(json_object_get(rec, "material"), s->material))
            return ct_error_set(CT_EINVAL, "%s: member '%s': key mismatch: the record of step '%s' holds "
                                "other key material than the step; nothing was imported", src->name,
                                BUNDLE_MANIFEST, s->label);
        json_t *blob = json_object_get(rec, "blob");
        const char *sha = json_string_value(json_object_get(blob, "sha256"));
        json_t *size = json_object_get(blob, "size");
        if (!sha || strlen(sha) != 64 || ct_hex_decode(sha, s->sha256, 32) || !json_is_integer(size) ||
            json_integer_value(size) < 0)
            return bad_manifest(src, "step '%s': record lacks blob.sha256 or blob.size", s->label);
        s->size = (uint64_t)json_integer_value(size);
        s->record = rec;
    }
    if (member) {
        s->member = json_string_value(member);
        if (!s->member || strcmp(s->member, BUNDLE_MANIFEST) == 0 || strcmp(s->member, BUNDLE_RECIPE) == 0)
            return bad_manifest(src, "step '%s': invalid member name", s->label);
        bundle_member *m = find_member(b, s->member);
        if (!m)
            return ct_error_set(CT_EINVAL, "%s: member '%s' of step '%s' is missing from the bundle; "
                                "nothing was imported", src->name, s->member, s->label);
        if (m->size != s->size || memcmp(m->sha256, s->sha256, 32) != 0) {
            char got[65];
            ct_hex_encode(m->sha256, 32, got);
            return ct_error_set(CT_ECORRUPT, "%s: member '%s': digest mismatch: its SHA-256 is %s (%llu "
                                "bytes) but the record of step '%s' says %s (%llu bytes); nothing was "
                                "imported", src->name, s->member, got, (unsigned long long)m->size,
                                s->label, json_string_value(json_object_get(json_object_get(s->record, "blob"),
                                                                            "sha256")),
                                (unsigned long long)s->size);
        }
        m->referenced = 1;
    }
    return 0;
}

static int cmp_label(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int check_manifest(bundle_contents *b)
{
    const bundle_source *src = &b->src;
    json_error_t err;
    b->manifest = json_loads(b->manifest_text, JSON_REJECT_DUPLICATES, &err);
    if (!b->manifest)
        return bad_manifest(src, "not valid JSON (%s at line %d column %d)", err.text, err.line, err.column);
    json_t *m = b->manifest;
    const char *format = json_string_value(json_object_get(m, "format"));
    json_t *version = json_object_get(m, "version");
    json_t *steps = json_object_get(m, "steps");
    json_t *sets = json_object_get(m, "overrides");
    b->recipe_name = json_string_value(json_object_get(m, "recipe"));
    if (!json_is_object(m) || !format || strcmp(format, CT_BUNDLE_FORMAT) != 0)
        return bad_manifest(src, "not a crosstime bundle manifest (format is not \"%s\")", CT_BUNDLE_FORMAT);
    if (!json_is_integer(version) || json_integer_value(version) != CT_BUNDLE_VERSION)
        return bad_manifest(src, "bundle version %lld is not supported (this build reads version %d)",
                            (long long)json_integer_value(version), CT_BUNDLE_VERSION);
    if (!b->recipe_name || !*b->recipe_name || strlen(b->recipe_name) > 200)
        return bad_manifest(src, "recipe name missing or too long");
    if (!json_is_array(steps))
        return bad_manifest(src, "\"steps\" is not an array");
    if (sets && !json_is_array(sets))
        return bad_manifest(src, "\"overrides\" is not an array");
    for (size_t i = 0; i < json_array_size(sets); i++)
        if (!json_is_string(json_array_get(sets, i)))
            return bad_manifest(src, "\"overrides\" must hold strings");
    b->n_steps = json_array_size(steps);
    b->steps = calloc(b->n_steps + 1, sizeof *b->steps);
    if (!b->steps)
        return ct_error_set(CT_ENOMEM, "out of memory");
    for (size_t i = 0; i < b->n_steps; i++) {
        int rc = check_step(b, i, json_array_get(steps, i));
        if (rc)
            return rc;
    }
    /* Labels are unique and dependencies name listed steps (sorted: a hostile
     * manifest may be long). */
    const char **labels = malloc((b->n_steps + 1) * sizeof *labels);
    if (!labels)
        return ct_error_set(CT_ENOMEM, "out of memory");
    for (size_t i = 0; i < b->n_steps; i++)
        labels[i] = b->steps[i].label;
    qsort(labels, b->n_steps, sizeof *labels, cmp_label);
    for (size_t i = 1; i < b->n_steps; i++)
        if (strcmp(labels[i - 1], labels[i]) == 0) {
            int rc = bad_manifest(src, "two steps are labelled '%s'", labels[i]);
            free(labels);
            return rc;
        }
    for (size_t i = 0; i < b->n_steps; i++)
        for (size_t d = 0; d < json_array_size(b->steps[i].deps); d++) {
            const char *dep = json_string_value(json_array_get(b->steps[i].deps, d));
            if (!bsearch(&dep, labels, b->n_steps, sizeof *labels, cmp_label)) {
                int rc = bad_manifest(src, "step '%s' depends on '%s', which the manifest does not list",
                                      b->steps[i].label, dep);
                free(labels);
                return rc;
            }
        }
    free(labels);
    for (size_t i = 0; i < b->n_members; i++) {
        const char *name = b->members[i].name;
        if (!b->members[i].referenced && strcmp(name, BUNDLE_MANIFEST) != 0 && strcmp(name, BUNDLE_RECIPE) != 0)
            return refuse(src, name, "unknown member (the manifest does not list it)");
    }
    return 0;
}

int bundle_check(const bundle_source *src, bundle_contents *out)
{
    memset(out, 0, sizeof *out);
    out->src = *src;
    int rc = scan(src, out);
    if (!rc)
        rc = check_manifest(out);
    if (rc)
        bundle_contents_free(out);
    return rc;
}

int bundle_read_member(const bundle_source *src, const char *name, char **data, size_t *len)
{
    struct archive *a;
    int rc = bundle_read_open(src, &a);
    if (rc)
        return rc;
    rc = CT_ENOTFOUND;
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK) {
            rc = archive_fail(src, a, NULL);
            break;
        }
        const char *n = archive_entry_pathname(e);
        if (!n || strcmp(n, name) != 0)
            continue;
        bundle_member m = {0};
        rc = read_member(src, a, name, &m, data, SIZE_MAX - 1, 0);
        if (!rc)
            *len = (size_t)m.size;
        break;
    }
    archive_read_free(a);
    if (rc == CT_ENOTFOUND)
        ct_error_set(rc, "%s: no member '%s'", src->name, name);
    return rc;
}

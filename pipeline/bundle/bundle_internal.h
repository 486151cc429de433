/* Bundle internals shared by export, import and verify (not part of the public API). */
#ifndef CT_BUNDLE_INTERNAL_H
#define CT_BUNDLE_INTERNAL_H

#include "pipeline/bundle/bundle.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct archive;

#define BUNDLE_MANIFEST "manifest.json"
#define BUNDLE_RECIPE "recipe.yaml"
/* Bounds on what is held in memory while reading an untrusted bundle. */
#define BUNDLE_MAX_MANIFEST ((size_t)256 << 20)
#define BUNDLE_MAX_RECIPE ((size_t)16 << 20)
/* Exports and imports of at least this many artifact bytes show a progress line. */
#define BUNDLE_PROGRESS_MIN ((uint64_t)64 << 20)

/* Where a bundle is read from: a file or a buffer. */
typedef struct {
    const char *path;  /* NULL for a buffer */
    const void *data;
    size_t len;
    const char *name;  /* for messages */
} bundle_source;

/* One member seen by the checking pass. */
typedef struct {
    char *name;
    uint64_t size;
    uint8_t sha256[32];
    int referenced;
} bundle_member;

/* One step of a checked manifest; pointers borrow from the manifest JSON. */
typedef struct {
    const char *label;
    const char *kind;
    const char *status;   /* exported | record | absent | not selected | source */
    uint8_t key[CT_KEY_LEN];
    char hex[2 * CT_KEY_LEN + 1];
    int is_source;
    json_t *material;
    json_t *record;       /* NULL unless exported or record */
    json_t *deps;         /* array of labels */
    const char *member;   /* NULL unless the artifact is carried */
    uint8_t sha256[32];   /* of the artifact, from the record */
    uint64_t size;
    int bundle_class;     /* ct_bundle_class of the kind, from the manifest */
} bundle_step;

/* A bundle whose every member, digest and key has been checked. */
typedef struct {
    bundle_source src;
    bundle_member *members;
    size_t n_members;
    char *manifest_text;
    char *recipe_text;
    json_t *manifest;
    const char *recipe_name;
    bundle_step *steps;
    size_t n_steps;
} bundle_contents;

/* Opens a reader restricted to tar (ustar/pax/gnu) with optional zstd or gzip. */
int bundle_read_open(const bundle_source *src, struct archive **out);
/* Reads the whole bundle once and checks it; on failure nothing is kept and the
 * message names the member and what is wrong. */
int bundle_check(const bundle_source *src, bundle_contents *out);
void bundle_contents_free(bundle_contents *b);

/* Writes the checked bundle's carried artifacts into `cache`: all of them, or only
 * those whose key is in `only` (n_only > 0). Every blob is re-hashed while it
 * streams (the file may have changed since bundle_check) and committed when it
 * matches. *imported and *existing count entries (may be NULL). */
int bundle_write_entries(const bundle_contents *b, ct_cache *cache, const uint8_t (*only)[CT_KEY_LEN],
                         size_t n_only, size_t *imported, size_t *existing);
/* Stores the plan manifest the bundle lists and merges the imported keys into the
 * root "recipe:<name>". */
int bundle_merge_root(const bundle_contents *b, ct_cache *cache, const uint8_t (*keys)[CT_KEY_LEN],
                      size_t n_keys);

/* Reads one member's data into memory (NUL-terminated); CT_ENOTFOUND if absent. */
int bundle_read_member(const bundle_source *src, const char *name, char **data, size_t *len);

/* The record as a bundle carries it: without what belongs to one cache (the
 * "cache" field, the blob's chunking and id). New reference. */
json_t *bundle_portable_record(const json_t *record);
/* The record to hand to the cache on import: without "blob" and "cache". */
json_t *bundle_user_record(const json_t *record);

/* Class names in manifests. */
const char *bundle_class_name(int bundle_class);
int bundle_class_parse(const char *name);

/* How two byte strings differ, for verify. */
typedef struct {
    uint64_t bytes_differing, lines_a, lines_b, lines_differing;
} bundle_diff;
void bundle_diff_compute(const char *a, size_t la, const char *b, size_t lb, bundle_diff *d);

#endif

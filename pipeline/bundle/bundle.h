/* Experiment bundles: one deterministic tar.zst that carries a recipe's results
 * between caches, machines and people.
 *
 * Members (sorted by name, pax restricted, mtime 0, owner 0:0 without names,
 * mode 0644, zstd at a pinned level on one thread, so that the same cache content
 * always gives the same bytes):
 *
 *     recipe.yaml         the recipe text as written (overrides are in the manifest)
 *     manifest.json       canonical JSON: every step of the plan (label, kind, key,
 *                         key material, dependencies, status) and, for each exported
 *                         step, its record (output digest and size, summary, timings,
 *                         provenance) without the fields that belong to one cache
 *     results/<label>     artifacts of result kinds (CT_BUNDLE_RESULT)
 *     artifacts/<hexkey>  other artifacts: with --with artifacts|activations, or
 *                         the steps named by --keys
 *
 * Import trusts nothing: every member must be a regular file with a safe relative
 * name that the manifest references, every key must be the hash of its key
 * material, every blob must match the digest and size of its record. The whole
 * bundle is checked before anything is written to the cache.
 *
 * Ownership: options are borrowed for the call; nothing is retained. */
#ifndef CT_BUNDLE_H
#define CT_BUNDLE_H

#include "cache/cache.h"
#include "pipeline/plan.h"

#include <stddef.h>
#include <stdint.h>

#define CT_BUNDLE_FORMAT "crosstime-bundle"
#define CT_BUNDLE_VERSION 1
/* Part of the byte-for-byte determinism: changing it changes every bundle. */
#define CT_BUNDLE_ZSTD_LEVEL 3

/* --- export --------------------------------------------------------------------- */

typedef struct {
    /* Only these steps (labels): record and artifact whatever their kind, each must
     * be cached. NULL/0: every cached step, artifacts chosen by kind. */
    const char *const *labels;
    size_t n_labels;
    int with_artifacts;   /* also carry CT_BUNDLE_ARTIFACT kinds' artifacts */
    int with_activations; /* also carry CT_BUNDLE_ACTIVATION kinds' artifacts */
    /* The --set overrides the plan was built with: stored so that verify plans the
     * same keys from the recipe text. */
    const char *const *sets;
    size_t n_sets;
    int zstd_level;       /* 0: CT_BUNDLE_ZSTD_LEVEL */
} ct_bundle_export_options;

#define CT_BUNDLE_EXPORT_OPTIONS_INIT {NULL, 0, 0, 0, NULL, 0, 0}

typedef struct {
    size_t steps;     /* steps of the plan, sources excluded */
    size_t records;   /* steps whose record is in the manifest */
    size_t artifacts; /* steps whose artifact is a member */
    size_t absent;    /* steps not in the cache (listed as absent) */
    uint64_t bytes;   /* artifact bytes written (before compression) */
} ct_bundle_export_stats;

/* Writes the bundle of `plan` (built against `cache`) to `path` atomically
 * (temporary file + rename). `stats` may be NULL. */
int ct_bundle_export(const ct_plan *plan, ct_cache *cache, const char *path,
                     const ct_bundle_export_options *opts, ct_bundle_export_stats *stats);

/* --- import --------------------------------------------------------------------- */

typedef struct {
    char recipe[256];   /* the recipe's name */
    size_t entries;     /* artifacts the bundle carries */
    size_t imported;    /* written to the cache */
    size_t existing;    /* already there (skipped) */
} ct_bundle_import_stats;

/* Checks the whole bundle, then writes its entries (skipping existing keys) and
 * merges them into the named root "recipe:<name>": the root keeps what it held,
 * gains the imported keys, and leads with the plan manifest the bundle lists, so
 * that importing many partial bundles (one per cluster job) protects all of them
 * from gc and `crosstime plan` explains changes against the bundled plan.
 * On any refusal nothing is written and the message names the member. */
int ct_bundle_import(const char *path, ct_cache *cache, ct_bundle_import_stats *stats);
/* The same on a bundle in memory (`name` is used in messages). */
int ct_bundle_import_buffer(const void *data, size_t len, const char *name, ct_cache *cache,
                            ct_bundle_import_stats *stats);

/* --- verify --------------------------------------------------------------------- */

typedef enum {
    CT_BUNDLE_IDENTICAL = 0,
    CT_BUNDLE_DIFFERENT = 1,
    CT_BUNDLE_NOT_RECOMPUTABLE = 2,
} ct_bundle_outcome;

typedef struct {
    const char *label;
    const char *kind;
    const char *key_hex;
    ct_bundle_outcome outcome;
    /* DIFFERENT: sizes and how much differs. Bytes: positions that differ plus the
     * length difference; lines: line i against line i, plus the count difference. */
    uint64_t bundle_bytes, recomputed_bytes, bytes_differing;
    uint64_t bundle_lines, recomputed_lines, lines_differing;
    const char *detail; /* one line: what differs, or why it is not recomputable */
} ct_bundle_verify_entry;

typedef void (*ct_bundle_verify_fn)(const ct_bundle_verify_entry *entry, void *user);

typedef struct {
    ct_cache *cache;          /* the user's cache, read for inputs only; may be NULL */
    const char *recipe_path;  /* plan from this file instead of the bundled text */
    const char *scratch_dir;  /* NULL: a new directory under $TMPDIR, removed after */
    int jobs;                 /* parallel steps */
    const char *device;       /* "cpu" or "cuda" */
    /* Overrides applied after those the bundle was exported with. */
    const char *const *sets;
    size_t n_sets;
} ct_bundle_verify_options;

#define CT_BUNDLE_VERIFY_OPTIONS_INIT {NULL, NULL, NULL, 1, "cpu", NULL, 0}

typedef struct {
    size_t identical, different, not_recomputable;
} ct_bundle_verify_stats;

/* Checks the bundle as import does, then recomputes every result it carries in a
 * scratch cache from the result's direct inputs (found among the bundle's own
 * artifacts, then in opts->cache; results that feed other results are recomputed
 * first) and compares them with the bundled ones. `fn` (may be NULL) is called once
 * per result in plan order. Returns 0 when the comparison ran, whatever it found. */
int ct_bundle_verify(const char *path, const ct_bundle_verify_options *opts,
                     ct_bundle_verify_fn fn, void *user, ct_bundle_verify_stats *stats);

#endif

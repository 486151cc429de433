/* Shared between the task loaders, the name resolver and the tokenizing rule. */
#ifndef CT_TASKS_INTERNAL_H
#define CT_TASKS_INTERNAL_H

#include <jansson.h>
#include <stddef.h>

#include "models/tasks/tasks.h"

/* Strings of a task live in a chain of blocks, so pair pointers stay valid as the
 * task grows and one free releases them all. */
typedef struct ct_task_block ct_task_block;

struct ct_task {
    char *name; /* canonical */
    char *file;
    char digest[65];
    ct_task_pair *pairs;
    size_t n, cap;
    ct_task_block *blocks;
};

/* Empty task named `name` for `file`. */
int ct_task_new(const char *name, const char *file, ct_task **out);
/* Copy of s[0..n) (NUL-terminated) owned by the task; NULL when out of memory. */
const char *ct_task_strndup(ct_task *t, const char *s, size_t n);
/* Appends a pair; its strings must already belong to the task. */
int ct_task_push(ct_task *t, const ct_task_pair *p);

/* Adds a pair from two sentences (copied into the task) that should differ in
 * exactly one whitespace-separated word; the prefix/good/bad are derived from them or
 * the pair is marked dropped. `expect_prefix` (may be NULL) is a prefix the source
 * states, checked against the derived one. */
int ct_task_add_sentences(ct_task *t, const char *good, size_t good_len, const char *bad, size_t bad_len,
                          const char *expect_prefix, const char *phenomenon, size_t line);

/* Loaders: parse a whole decompressed file into pairs. `path` is for messages. */
int ct_task_read_blimp(ct_task *t, const char *path, const char *data, size_t len);
int ct_task_read_clams(ct_task *t, const char *path, const char *data, size_t len);
int ct_task_read_multiblimp(ct_task *t, const char *path, const char *data, size_t len);

/* Language codes: CLAMS folders use ISO 639-1 ("en"), MultiBLiMP ISO 639-3 ("eng");
 * either is accepted and mapped (unknown codes are returned unchanged). */
const char *ct_task_lang_clams(const char *code);
const char *ct_task_lang_multiblimp(const char *code);

/* The MultiBLiMP file of a language (ISO 639-3) in the search path: 1 found, 0 not. */
int ct_task_find_multiblimp(char *const *dirs, const char *lang, char **path);

/* 1 when s[0..n) may be a part of a task name: letters, digits, _-.#+, not starting
 * with '.', so that a name never escapes the data folders. */
int ct_task_valid_component(const char *s, size_t n);

/* Loads the file behind a task. kind: 'b' BLiMP, 'c' CLAMS, 'm' MultiBLiMP (then only
 * pairs of `phenomenon` are kept unless it is NULL). */
int ct_task_load_path(char kind, const char *canonical, const char *path, const char *phenomenon,
                      ct_task **out);

/* CT_ENOTFOUND with a message naming the closest existing task names. */
int ct_task_unknown(const char *name, char *const *dirs);

/* 1 when s[0..n) is valid UTF-8 without NUL bytes. */
int ct_task_utf8_valid(const char *s, size_t n);

/* String field `key` of a JSON object: 1 with a string, 0 when absent or null, -1 when
 * another type. */
int ct_task_json_string(json_t *o, const char *key, const char **s);

/* The task data folders of the search path (see tasks.h), existing ones only, in
 * order, NULL-terminated; free with ct_task_names_free. */
int ct_task_dirs(const char *data_path, char ***dirs, size_t *n);
/* First existing regular file dir/rel{,.gz,.zst} over `dirs`: 1 and *path (malloc'd)
 * when found, 0 when not, negative on error. */
int ct_task_find_file(char *const *dirs, const char *rel, char **path);

/* A growable NULL-terminated list of malloc'd strings. */
typedef struct {
    char **v;
    size_t n, cap;
} ct_task_strv;
int ct_task_strv_push(ct_task_strv *s, const char *str); /* copies */
void ct_task_strv_sort_unique(ct_task_strv *s);
int ct_task_strv_contains(const ct_task_strv *s, const char *str);

#endif

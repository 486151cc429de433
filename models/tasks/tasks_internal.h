/* Shared between the task loaders, the name resolver and the tokenizing rule. */
#ifndef CT_TASKS_INTERNAL_H
#define CT_TASKS_INTERNAL_H

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
int ct_task_add_sentences(ct_task *t, const char *good, size_t good_len, const char *bad,
                          size_t bad_len, const char *expect_prefix, const char *phenomenon,
                          size_t line);

/* Loaders: parse a whole decompressed file into pairs. `path` is for messages.
 * MultiBLiMP keeps only pairs of `phenomenon` unless it is NULL. */
int ct_task_read_blimp(ct_task *t, const char *path, const char *data, size_t len);
int ct_task_read_clams(ct_task *t, const char *path, const char *data, size_t len);
int ct_task_read_multiblimp(ct_task *t, const char *path, const char *data, size_t len,
                            const char *phenomenon);

/* 1 when s[0..n) is valid UTF-8. */
int ct_task_utf8_valid(const char *s, size_t n);

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

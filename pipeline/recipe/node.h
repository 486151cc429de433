/* The recipe loader's own YAML tree: every node remembers the file, line and column it
 * was written at, so that schema errors found after includes and overrides were merged
 * still point at the text that caused them.
 *
 * Internal to the recipe module. All nodes and strings live in one arena and are freed
 * together; subtrees may be shared between trees (merging never copies). */
#ifndef CT_RECIPE_NODE_H
#define CT_RECIPE_NODE_H

#include <stddef.h>

typedef struct ct_rarena ct_rarena;

int ct_rarena_new(ct_rarena **out);
void ct_rarena_free(ct_rarena *a); /* NULL ok */
void *ct_rarena_alloc(ct_rarena *a, size_t n); /* zeroed; NULL when out of memory */
char *ct_rarena_strndup(ct_rarena *a, const char *s, size_t n);
char *ct_rarena_strdup(ct_rarena *a, const char *s);

enum { CT_RN_SCALAR, CT_RN_SEQ, CT_RN_MAP };

/* What a scalar means: plain scalars are resolved by their spelling (YAML core schema,
 * restricted to decimal numbers and true/false), quoted ones are always strings. */
enum { CT_RS_NULL, CT_RS_BOOL, CT_RS_INT, CT_RS_FLOAT, CT_RS_STRING };

typedef struct ct_rnode ct_rnode;
struct ct_rnode {
    int kind;
    const char *file; /* "<command line>", "<default>" or a path; arena-owned */
    int line, col;    /* 1-based; 0 for schema defaults */
    /* scalar */
    const char *text; /* NUL-terminated, arena-owned */
    int stype;        /* CT_RS_* */
    /* sequence (items) and mapping (keys[i] -> items[i]; keys are scalars) */
    size_t n, cap;
    ct_rnode **items;
    ct_rnode **keys;
    /* nodes this subtree expands to, counting shared (aliased) subtrees each time */
    size_t weight;
};

/* Expanded trees larger than this are refused (alias bombs). */
#define CT_RNODE_MAX_WEIGHT 1000000u

ct_rnode *ct_rnode_new(ct_rarena *a, int kind, const char *file, int line, int col);
ct_rnode *ct_rnode_scalar(ct_rarena *a, const char *file, int line, int col, const char *text,
                          size_t len, int quoted);
/* Appends (sequence: key NULL). Returns 0 or CT_ENOMEM. */
int ct_rnode_append(ct_rarena *a, ct_rnode *n, ct_rnode *key, ct_rnode *value);
/* Index of `key` in a mapping, or -1. */
/* A shallow copy with its own item arrays, so the copy can be changed alone. */
ct_rnode *ct_rnode_clone(ct_rarena *a, const ct_rnode *n);
long ct_rnode_find(const ct_rnode *map, const char *key);
void ct_rnode_remove(ct_rnode *map, size_t i);
int ct_rnode_is_null(const ct_rnode *n);

/* Resolves a plain scalar's spelling to CT_RS_*. */
int ct_rnode_resolve(const char *text);

/* "integer 512", "string 'abc'", "a list", ... for error messages. */
void ct_rnode_describe(const ct_rnode *n, char *buf, size_t cap);

/* Parses a decimal number spelling: optional sign, digits with single '_' between
 * them, optional fraction and exponent. Sets *is_int when there is neither. Returns the
 * length consumed (0 when not a number). */
size_t ct_rnode_lex_number(const char *s, int *is_int);

#endif

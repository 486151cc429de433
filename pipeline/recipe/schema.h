/* The recipe schema: a declarative table of every field, its type, whether it is
 * required or its default (written as YAML text and parsed like recipe text, so the
 * table, the README and the loaded tree cannot disagree), and its documentation.
 * Internal to the recipe module (tests read it to check recipes/README.md). */
#ifndef CT_RECIPE_SCHEMA_H
#define CT_RECIPE_SCHEMA_H

#include <stddef.h>

enum {
    CT_SF_STRING,
    CT_SF_INT,
    CT_SF_NUMBER, /* stored as a JSON real, whatever its spelling */
    CT_SF_BOOL,
    CT_SF_SIZE,   /* a token count: 400M, 400_000_000, 4e8 -> JSON integer */
    CT_SF_ENUM,   /* one of `choices` */
    CT_SF_LIST,   /* elements described by *elem */
    CT_SF_MAP,    /* the fixed `fields` */
    CT_SF_DICT,   /* free-form keys, values described by *elem */
};

enum {
    CT_SF_REQUIRED = 1,  /* must be written (or included) */
    CT_SF_OPTIONAL = 2,  /* no default: absent stays absent (optional sections) */
    CT_SF_NONEMPTY = 4,  /* lists and strings */
    CT_SF_MIN = 8,       /* numeric value >= min */
    CT_SF_MAX = 16,      /* numeric value <= max */
    CT_SF_INTERNAL = 32, /* documented as internal */
    /* With CT_SF_REQUIRED: except in toy recipes (those with a `toy` section), which
     * exercise the pipeline without a model and leave such fields absent. */
    CT_SF_NOT_IN_TOY = 64,
};

typedef struct ct_sfield ct_sfield;
struct ct_sfield {
    const char *name;
    int type;
    int flags;
    const char *def;  /* default as YAML text; NULL when required or optional */
    const char *doc;
    const ct_sfield *fields;    /* MAP: fields, ended by an entry with name NULL */
    const ct_sfield *elem;      /* LIST, DICT: the element */
    const char *const *choices; /* ENUM: NULL-terminated */
    double min, max;
    /* Extra check of a string's form; `expect` then describes the accepted form. */
    int (*valid)(const char *s);
    const char *expect;
};

/* The root of the schema (a MAP). */
extern const ct_sfield ct_recipe_schema;

/* "a number", "one of 'l1', 'batchtopk'", "a list of integers", ... */
void ct_sfield_expected(const ct_sfield *f, char *buf, size_t cap);
/* The type as the README's table writes it: "int", "list of string", "enum l1|batchtopk". */
void ct_sfield_type_name(const ct_sfield *f, char *buf, size_t cap);

#endif

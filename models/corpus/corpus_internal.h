/* The corpus reader's state, shared by the single-stream reader (corpus.c) and the
 * language mixture (corpus_mix.c). Internal to models/corpus. */
#ifndef CT_CORPUS_INTERNAL_H
#define CT_CORPUS_INTERNAL_H

#include "common/io.h"
#include "models/corpus/corpus.h"

#include <jansson.h>
#include <stdint.h>

/* One language of a mixture: its own stream over its files, and its scheduling state. */
typedef struct {
    char *name;
    ct_corpus *c;
    int64_t weight; /* the weight as an integer share (exact arithmetic, see corpus_mix.c) */
    int64_t credit;
    int active;     /* 0 once its files are exhausted */
} ct_corpus_lang_state;

struct ct_corpus {
    char **files;
    size_t nfiles, cur; /* cur: index of the open (or next) file */
    ct_corpus_format fmt;
    char *field;
    ct_reader *r;
    size_t line;       /* 1-based line of the last line read in files[cur] */
    size_t doc_line;   /* line of the last document returned */
    int have_doc, done;
    json_t *doc;       /* jsonl: the object holding the returned string */
    /* A mixture (ct_corpus_open_mix) reads through langs[] and uses none of the above
     * but `done`; NULL for a single stream. */
    ct_corpus_lang_state *langs;
    size_t nlang;
    long cur_lang; /* language of the last document; -1 before the first */
};

int ct_corpus_mix_next(ct_corpus *c, const char **text, size_t *len);
/* Frees the mixture part (nothing for a single stream). */
void ct_corpus_mix_free(ct_corpus *c);

#endif

/* The language table of a corpus.mix: tokenize_index appends it to its token shard,
 * after doc_index, when the corpus is a language mixture. Single-stream corpora get
 * none, so their artifact (and every key) stays what it was. Little-endian:
 *   char magic[8] "CTLANGTB"; u32 version (1); u32 n_lang;
 *   n_lang times: u32 len; char name[len]   (language codes, in the mixture's order)
 *   u8 lang[n_seq]                          (each sequence's language: an index into them)
 * ct_tokshard_header accepts a token shard followed by this section. */
#ifndef CT_STEPS_LANGTAB_H
#define CT_STEPS_LANGTAB_H

#include "cache/cache.h"

#include <stddef.h>
#include <stdint.h>

#define CT_LANGTAB_MAGIC "CTLANGTB"
#define CT_LANGTAB_VERSION 1

/* A language table in memory; owns its arrays. */
typedef struct {
    size_t n_lang;
    char **names;   /* [n_lang] */
    uint64_t n_seq;
    uint8_t *lang;  /* [n_seq] */
} ct_langtab;

/* Appends the section for names[0..n_lang) and lang[0..n_seq). */
int ct_langtab_write(ct_blob_writer *w, const char *const *names, size_t n_lang, const uint8_t *lang,
                     uint64_t n_seq);
/* Reads the section after the token shard read through `r` (`name` labels errors).
 * CT_ENOTFOUND when the shard has none; CT_ECORRUPT when it is malformed or does not
 * cover the shard's sequences. Free *out with ct_langtab_free. */
int ct_langtab_read(ct_blob_reader *r, const char *name, ct_langtab *out);
void ct_langtab_free(ct_langtab *t);

#endif

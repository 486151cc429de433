/* Text corpora: a stream of documents read from a list of files, each plain or
 * compressed (.gz, .zst, .xz, .bz2: detected from the content). Two formats:
 *   text   one document per line; empty lines are skipped;
 *   jsonl  one JSON object per line whose `text_field` holds the document (a string);
 *          blank lines are skipped.
 * File names may be glob(3) patterns; each pattern's matches are read in byte order
 * (strcmp, not the locale's collation) so that every machine sees the same documents in
 * the same order. Documents must be valid UTF-8: anything else is an error naming the
 * file and line, as is a jsonl line that is not a JSON object with that string field. */
#ifndef CT_CORPUS_H
#define CT_CORPUS_H

#include <stddef.h>

typedef enum { CT_CORPUS_TEXT = 0, CT_CORPUS_JSONL = 1 } ct_corpus_format;

/* "text" or "jsonl" -> format; CT_EINVAL otherwise. */
int ct_corpus_format_parse(const char *name, ct_corpus_format *out);

/* Expands patterns[0..n) in order: an entry with a glob metacharacter (* ? [) becomes
 * its sorted matches (none is CT_ENOTFOUND naming the pattern); any other entry is kept
 * as it is (opening it later reports a missing file). *paths is a malloc'd array of
 * malloc'd strings; free it with ct_corpus_paths_free. */
int ct_corpus_expand(const char *const *patterns, size_t n, char ***paths, size_t *npaths);
void ct_corpus_paths_free(char **paths, size_t npaths);

typedef struct ct_corpus ct_corpus; /* opaque */

/* Opens a corpus over the expansion of files[0..n) (see ct_corpus_expand). text_field
 * is used by jsonl only (NULL: "text"). Files are opened lazily, one at a time. The
 * caller closes *out with ct_corpus_close. */
int ct_corpus_open(const char *const *files, size_t n, ct_corpus_format fmt, const char *text_field,
                   ct_corpus **out);

/* The next document: returns 1 with *text and *len (UTF-8, NUL-terminated, possibly with
 * embedded NULs from jsonl "\u0000"; owned by the corpus and valid until the next call),
 * 0 at the end of the last file, or a negative CT_E* code with a "file:line: ..."
 * message. After an error the corpus stays at the end. */
int ct_corpus_next(ct_corpus *c, const char **text, size_t *len);

/* Where the last document came from: the file (owned by the corpus) and its 1-based
 * line. Either pointer may be NULL. Before the first document: NULL and 0. */
void ct_corpus_where(const ct_corpus *c, const char **file, size_t *line);

/* The expanded file list (owned by the corpus) and the index of the file being read. */
size_t ct_corpus_n_files(const ct_corpus *c);
const char *ct_corpus_file(const ct_corpus *c, size_t i);
size_t ct_corpus_file_index(const ct_corpus *c);

void ct_corpus_close(ct_corpus *c); /* NULL ok */

/* --- language mixtures ------------------------------------------------------------ */

#define CT_CORPUS_MAX_LANGS 255 /* a language id fits a byte */

/* One language of a mixture: its files (patterns as for ct_corpus_open, read in order)
 * and its weight, its share of the documents relative to the others (finite, > 0). */
typedef struct {
    const char *name; /* language code, e.g. "en"; non-empty, unique in the mixture */
    const char *const *files;
    size_t n_files;
    double weight;
} ct_corpus_lang_spec;

/* Opens a mixture of langs[0..n) (1 <= n <= CT_CORPUS_MAX_LANGS; everything is
 * copied). Each language is its own stream with one file open at a time. Documents are
 * drawn from the languages in proportion to their weights by smooth weighted
 * round-robin: every draw adds each language's weight to its credit and takes the
 * language with the largest credit (ties: the lower index), which then pays the total
 * weight. No random numbers: the order is a function of the weights alone, so two
 * readers of one mixture see the same documents in the same order. A language whose
 * files run out drops out and the others go on in their own proportions; the mixture
 * ends when all have. ct_corpus_next, _where, _n_files, _file (the languages' files
 * one language after the other) and _close work on it as on a single stream;
 * ct_corpus_file_index counts the files finished or open over all languages. */
int ct_corpus_open_mix(const ct_corpus_lang_spec *langs, size_t n, ct_corpus_format fmt, const char *text_field,
                       ct_corpus **out);

/* Languages of a mixture: their number (0 for a corpus from ct_corpus_open) and names
 * (owned by the corpus), in the order given to ct_corpus_open_mix. */
size_t ct_corpus_n_langs(const ct_corpus *c);
const char *ct_corpus_lang_name(const ct_corpus *c, size_t i);
/* Index of the language of the last document returned; -1 before the first document,
 * after the end, and always for a single stream. */
int ct_corpus_lang(const ct_corpus *c);

#endif

/* Minimal-pair tasks (BLiMP, CLAMS, MultiBLiMP) and the one-prefix answer rule of
 * METHOD.md §4.
 *
 * Task names:
 *   blimp/<paradigm>                  a BLiMP paradigm (its one_prefix_* fields)
 *   clams/<lang>/<phenomenon>         a CLAMS file (lang: en fr de he ru)
 *   multiblimp/<lang>[/<phenomenon>]  a MultiBLiMP language, optionally one phenomenon
 *                                     (SV-#, SV-G, SV-P, ...); lang is MultiBLiMP's code
 *                                     (eng, fra, ...), "en"/"fr"/... are accepted too
 *
 * Where the data lives. A task's file is looked for in a search path of data roots,
 * first match wins:
 *   1. the `data_path` argument of the *_from functions (':'-separated), if any;
 *   2. $CROSSTIME_DATA (':'-separated);
 *   3. CT_DATA_DIR, the source tree's data/ baked in at build time;
 *   4. the installed copy: <exe dir>/../share/crosstime (a relocated install), then
 *      <install prefix>/share/crosstime as configured at build time.
 * A root holds a `tasks/` folder (or is itself that folder) with
 *   blimp/<paradigm>.jsonl, clams/<lang>/<phenomenon>.txt,
 *   multiblimp/<lang>.tsv | <lang>.jsonl | <lang>/data.tsv,
 * each optionally compressed (.gz, .zst). MultiBLiMP files of other languages in the
 * upstream format (TSV with a header naming sen, wrong_sen, prefix, phenomenon, ...,
 * or JSONL with those fields or sentence_good/sentence_bad) work when put there.
 *
 * A task keeps every pair of its source file; pairs from which no one-prefix pair
 * can be derived carry a drop reason. BLiMP gives prefix and words in its one_prefix_*
 * fields; for CLAMS and MultiBLiMP they are derived from the two sentences, which must
 * differ in exactly one whitespace-separated word (prefix: the words before it). A
 * MultiBLiMP subset of a phenomenon keeps only that phenomenon's pairs.
 * ct_task_tokenize applies the answer-token rule and counts kept and dropped pairs by
 * reason. Loaded tasks are immutable: one may be tokenized from many threads. */
#ifndef CT_TASKS_H
#define CT_TASKS_H

#include <stddef.h>
#include <stdint.h>

#include "models/tokenizer/tokenizer.h"

typedef struct ct_task ct_task;                   /* opaque: one loaded task */
typedef struct ct_task_examples ct_task_examples; /* opaque: its tokenized examples */

/* Why a pair is not used. Names (ct_task_drop_name) are stable: they appear in
 * reports and JSON output. */
typedef enum {
    CT_TASK_KEEP = 0,
    CT_TASK_NO_ONE_PREFIX,          /* "no_one_prefix": BLiMP pair without one_prefix_* */
    CT_TASK_NOT_ONE_WORD,           /* "not_one_word_difference": sentences differ in != 1 word */
    CT_TASK_IDENTICAL,              /* "identical": good and bad are the same */
    CT_TASK_EMPTY_PREFIX,           /* "empty_prefix": nothing precedes the differing word */
    CT_TASK_PREFIX_MISMATCH,        /* "prefix_mismatch": a MultiBLiMP prefix field disagrees */
    CT_TASK_DIFFERENT_TOKEN_COUNTS, /* "different_token_counts": answers differ in length */
    CT_TASK_TOO_MANY_TOKENS,        /* "too_many_tokens": answers longer than 2 tokens */
    CT_TASK_N_REASONS
} ct_task_drop;

const char *ct_task_drop_name(ct_task_drop why);

/* One source pair. Strings are owned by the task and live until ct_task_free. */
typedef struct {
    const char *sentence_good, *sentence_bad; /* as read (CLAMS: first letter capitalised) */
    const char *prefix, *good, *bad;          /* NULL when drop != CT_TASK_KEEP */
    const char *phenomenon;                   /* "" when the source has none */
    size_t line;                              /* 1-based line of the pair in its file */
    ct_task_drop drop;                        /* CT_TASK_KEEP or why it cannot be used */
} ct_task_pair;

/* Loads a task by name (default search path). Unknown names fail with CT_ENOTFOUND and
 * a message listing the closest existing names. Malformed files fail with CT_EFORMAT
 * naming the file and line. The caller frees *out with ct_task_free. */
int ct_task_load(const char *name, ct_task **out);
int ct_task_load_from(const char *name, const char *data_path, ct_task **out);
void ct_task_free(ct_task *t); /* NULL ok */

const char *ct_task_name(const ct_task *t); /* canonical: "multiblimp/eng/SV-#" */
size_t ct_task_size(const ct_task *t);      /* number of pairs (kept or not) */
/* Pair i (< ct_task_size), pointers into the task. */
int ct_task_pair_get(const ct_task *t, size_t i, ct_task_pair *out);

/* Absolute path of the data file behind the task, so a pipeline can key on it; owned
 * by the task. */
const char *ct_task_file(const ct_task *t);
/* SHA-256 (hex, 64 chars + NUL) of the file's decompressed content, so it is stable
 * when the file is recompressed (`zstd -dc FILE | sha256sum`). */
const char *ct_task_digest(const ct_task *t);

/* The METHOD.md §4 rule with `tok`: for each pair, encode prefix + " " + word for good
 * and bad (no special tokens); the longest common token prefix is the prompt, the rest
 * are the answers; drop when the answers differ in length or exceed 2 tokens; the
 * compared ids are the first answer tokens (they differ by construction).
 * Counts cover every pair. With max_examples > 0 at most that many kept examples are
 * returned, spread evenly over the kept ones (example i is kept number
 * floor(i * kept / max_examples)); 0 returns all. Free with ct_task_examples_free. */
int ct_task_tokenize(const ct_task *t, const ct_tokenizer *tok, size_t max_examples, ct_task_examples **out);

typedef struct {
    const int32_t *prefix; /* prompt token ids, owned by the examples */
    size_t n_prefix;       /* >= 1 */
    int32_t good, bad;     /* compared answer ids (good != bad) */
    size_t pair;           /* index of the source pair (ct_task_pair_get) */
} ct_task_example;

/* Whether example x fits a model with `vocab` token ids and `max_positions` positions
 * (<= 0: no limit): its prefix is no longer than that, and every id (prefix, good, bad)
 * lies in [0, vocab). Callers name the model in their own message. */
typedef enum { CT_TASK_FITS = 0, CT_TASK_TOO_LONG, CT_TASK_OUT_OF_VOCAB } ct_task_fit;
ct_task_fit ct_task_example_fit(const ct_task_example *x, int vocab, int max_positions);

size_t ct_task_examples_size(const ct_task_examples *e); /* examples returned */
const ct_task_example *ct_task_examples_get(const ct_task_examples *e, size_t i);
size_t ct_task_examples_pairs(const ct_task_examples *e); /* all pairs seen */
size_t ct_task_examples_kept(const ct_task_examples *e);  /* pairs passing the rule */
size_t ct_task_examples_dropped(const ct_task_examples *e, ct_task_drop why);
void ct_task_examples_free(ct_task_examples *e); /* NULL ok */

/* Every task name available in the search path (sorted, no duplicates): each BLiMP
 * paradigm, each CLAMS file, each MultiBLiMP language and each of its phenomena.
 * *names is a NULL-terminated malloc'd array of malloc'd strings: free with
 * ct_task_names_free. */
int ct_task_list(const char *data_path, char ***names, size_t *n);

/* The paper's default BLiMP tasks (METHOD.md §4): the four one-prefix subject-verb
 * agreement paradigms, as task names; static storage. */
const char *const *ct_task_blimp_sva(size_t *n);

/* The tasks of a language set, e.g. {"en", "fr"}: for each language the CLAMS tasks of
 * the paper's seven agreement phenomena that exist (long_vp_coord obj_rel_across_anim
 * obj_rel_within_anim prep_anim simple_agrmt subj_rel vp_coord) and the MultiBLiMP
 * tasks (one per phenomenon the file labels, else the whole language). Languages by
 * ISO 639-1 ("en") or MultiBLiMP's ISO 639-3 code ("eng"). A language without any
 * data is an error naming it. Output as for ct_task_list, in language order. */
int ct_tasks_for_languages(const char *const *langs, size_t n_langs, const char *data_path, char ***names,
                           size_t *n);

void ct_task_names_free(char **names); /* NULL ok */
/* The ISO 639-1 code of a task's language from its canonical name: blimp/... is "en",
 * clams/<lang>/... and multiblimp/<code>/... map their folder's code (MultiBLiMP's
 * ISO 639-3 "fra" gives "fr"; unknown codes are kept). Writes at most n bytes. */
void ct_task_language(const char *name, char *out, size_t n);

#endif

/* The artifact formats of the corpus-to-crosscoder step kinds, and what their plan
 * functions share (labels, the sequence budget, the seeded row permutation).
 * All integers are little-endian; recipes/README.md documents the layouts.
 *
 * Token shard ("CTTOKSHD", version 1), written by tokenize_index and tokenize:
 *   char magic[8]; u32 version; u32 seq_len; u64 n_seq;
 *   i32 ids[n_seq * seq_len];
 *   u64 seq_index[n_seq];   the sequence's index in the corpus's stream of sequences
 *   u64 doc_index[n_seq];   the 0-based index of the document it was cut from
 * The indices follow the ids so that a writer can stream the ids while it gathers
 * the indices.
 *
 * Activation shard ("CTACTSHD", version 1), written by extract:
 *   char magic[8]; u32 version; u32 dtype (1 bf16, 2 fp16); u32 d; u32 seq_len;
 *   u64 n_seq; u64 rows (= n_seq * (seq_len - 1)); u64 data_offset;
 *   char token_key[64]  (hex key of the token shard the rows come from)
 *   i32 tokens[rows]    row r: the token at position 1 + r % (seq_len - 1) of sequence
 *                       r / (seq_len - 1) of that shard
 *   zero padding to data_offset (a multiple of 64)
 *   u16 x[rows * d]     the residual rows in `dtype`
 */
#ifndef CT_STEPS_SHARD_H
#define CT_STEPS_SHARD_H

#include "cache/cache.h"
#include "models/corpus/corpus.h"
#include "pipeline/plan.h"
#include "pipeline/recipe/recipe.h"
#include "pipeline/step.h"

#include <stddef.h>
#include <stdint.h>

#define CT_TOKSHARD_MAGIC "CTTOKSHD"
#define CT_TOKSHARD_VERSION 1
#define CT_TOKSHARD_HEADER 24
#define CT_ACTSHARD_MAGIC "CTACTSHD"
#define CT_ACTSHARD_VERSION 1
#define CT_ACTSHARD_HEADER 112

enum { CT_ACT_BF16 = 1, CT_ACT_FP16 = 2 };

/* A token shard in memory: owns its arrays. */
typedef struct {
    uint32_t seq_len;
    uint64_t n_seq;
    int32_t *ids;        /* [n_seq * seq_len] */
    uint64_t *seq_index; /* [n_seq] */
    uint64_t *doc_index; /* [n_seq] */
} ct_tokshard;

/* Parses a whole token shard (`name` labels errors); frees nothing of `buf`. */
int ct_tokshard_parse(const void *buf, size_t len, const char *name, ct_tokshard *out);
/* Reads input `input`[i] of the step as a token shard. */
int ct_tokshard_read(ct_step_ctx *ctx, const char *input, size_t i, ct_tokshard *out);
void ct_tokshard_free(ct_tokshard *s);
/* Writes a token shard to w. */
int ct_tokshard_write(ct_blob_writer *w, const ct_tokshard *s);
/* Streaming pieces of the same: the header, then ids, then the two index arrays. */
int ct_tokshard_write_header(ct_blob_writer *w, uint32_t seq_len, uint64_t n_seq);
int ct_steps_write_i32(ct_blob_writer *w, const int32_t *v, size_t n);
int ct_steps_write_u64(ct_blob_writer *w, const uint64_t *v, size_t n);
/* Checks the header of a token shard read through `r`: *seq_len and *n_seq. */
int ct_tokshard_header(ct_blob_reader *r, const char *name, uint32_t *seq_len, uint64_t *n_seq);

/* An activation shard header. */
typedef struct {
    uint32_t dtype, d, seq_len;
    uint64_t n_seq, rows, data_offset;
    char token_key[65];
} ct_actshard_info;

/* Reads and checks the header of an activation shard of `size` bytes. */
int ct_actshard_header(ct_blob_reader *r, const char *name, ct_actshard_info *out);
/* Offset of the data for a given row count (header + tokens, rounded up to 64). */
uint64_t ct_actshard_data_offset(uint64_t rows);
/* Encodes the header into out[CT_ACTSHARD_HEADER]. */
void ct_actshard_encode_header(const ct_actshard_info *h, uint8_t *out);

/* 16-bit float storage (round to nearest even; NaN stays NaN). */
uint16_t ct_f32_to_bf16(float x);
float ct_bf16_to_f32(uint16_t h);
uint16_t ct_f32_to_f16(float x);
float ct_f16_to_f32(uint16_t h);
/* dtype name ("bf16", "fp16") -> CT_ACT_*; 0 when unknown. */
int ct_act_dtype_parse(const char *name);

/* The sequence budget of a recipe (METHOD §1): train sequences (corpus.train_sequences,
 * or ceil(crosscoder.tokens / (seq_len - 1)) when 0), val, test, and per shard. */
typedef struct {
    long long seq_len, n_train, n_val, n_test, per_shard, seed;
} ct_steps_budget;
int ct_steps_budget_of(const ct_recipe *r, ct_steps_budget *out);
/* Shards of `n` sequences at `per_shard` each. */
size_t ct_steps_n_shards(long long n, long long per_shard);

/* Adds the recipe's corpus files (corpus.files, or corpus.mix's languages in sorted
 * order, each language's files in order: paths or globs, resolved relative to the
 * recipe) as sources; *labels is a new array of their labels. A glob matching nothing
 * is an error naming the pattern, as is a corpus with both or neither of files and mix
 * (file:line:column of the recipe). */
int ct_steps_corpus_sources(ct_plan *plan, const ct_recipe *r, json_t **labels);
/* 1 when every corpus pattern names at least one file; otherwise 0, with a plan
 * note per missing pattern saying where the files are expected and how to get them
 * (corpus.download), so `plan` works before the corpus is downloaded. */
int ct_steps_corpus_available(ct_plan *plan, const ct_recipe *r);
/* The corpus parameters every corpus-reading step carries (format, text_field; with
 * corpus.mix also "mix": [{language, weight, files: how many of the corpus inputs, in
 * order, are that language's}]). A recipe without corpus.mix gets exactly the
 * parameters it always had, so its keys do not change. */
json_t *ct_steps_corpus_params(const ct_recipe *r);
/* At run time: opens the step's corpus from those parameters and input `input` (the
 * labels of ct_steps_corpus_sources): a single stream, or the mixture
 * (ct_corpus_open_mix) when the parameters have "mix". */
int ct_steps_corpus_open(ct_step_ctx *ctx, const char *input, ct_corpus **out);

/* 1 when every checkpoint of the recipe can be planned (pretrain: sources need a
 * pretrain section). */
int ct_steps_checkpoints_plannable(const ct_recipe *r);
/* 1 when every checkpoint of the recipe can be found on disk or in the hub cache, or
 * is a save point of the recipe's own pretrain section; otherwise 0, with a plan note per missing checkpoint giving the command
 * that downloads it, so `plan` lists them all instead of stopping at the first. */
int ct_steps_checkpoint_available(ct_plan *plan, const ct_recipe *r, size_t m);
int ct_steps_checkpoints_available(ct_plan *plan, const ct_recipe *r);

/* A seeded bijection of [0, n): a 4-round Feistel network on the next even power of
 * two with cycle walking, so that any row count is shuffled without a table. */
uint64_t ct_steps_permute(uint64_t i, uint64_t n, uint64_t key);
/* splitmix64: the step kinds' seed mixer. */
uint64_t ct_steps_mix(uint64_t x);

/* Splits a train artifact ("CTCCTRND", see pipeline/steps/train.c) into the
 * ct_cc_save image and the metrics JSON lines (pointers into buf). */
int ct_steps_train_parse(const void *buf, size_t len, const char *name, const void **model, size_t *model_len,
                         const char **metrics, size_t *metrics_len);

/* Reads a whole input artifact (malloc'd). */
int ct_steps_read_input(ct_step_ctx *ctx, const char *name, size_t i, char **data, size_t *len);
/* Hex key of input `name`[i] (from its record's key material). */
int ct_steps_input_key_hex(ct_step_ctx *ctx, const char *name, size_t i, char hex[65]);

#endif

/* The artifacts of the pretrain step kinds (pipeline/steps/pretrain.c,
 * pretrain_tokens.c). All integers are little-endian.
 *
 * pretrain/tokens: a token shard (pipeline/steps/shard.h) holding the packed
 * pretraining stream: the corpus documents, minus the held-out ones, concatenated
 * with an end-of-text token after each and cut into rows of pretrain.model.ctx
 * tokens (the tail that does not fill a row is dropped). Read as one stream.
 *
 * pretrain/<step> ("CTPRETRN", version 1): a save point of the training run, a list
 * of named files:
 *   char magic[8]; u32 version; u32 n_files;
 *   per file: u32 name_len; u64 size; char name[name_len]; u8 data[size]
 * Files: "state" (ct_pretrain_save_state's training state, to continue from),
 * "config.json", "model.safetensors", "tokenizer.json" (the Hugging Face checkpoint,
 * byte for byte what ct_pretrain_write_hf writes) and "log.jsonl" (loss per step). */
#ifndef CT_STEPS_PRETRAIN_H
#define CT_STEPS_PRETRAIN_H

#include "cache/cache.h"

#include <stddef.h>

#define CT_PRETRAIN_ART_MAGIC "CTPRETRN"
#define CT_PRETRAIN_ART_VERSION 1

typedef struct {
    const char *name;
    const void *data;
    size_t len;
} ct_steps_pretrain_file;

/* Writes the whole artifact: files[0..n) in order. */
int ct_steps_pretrain_write(ct_blob_writer *w, const ct_steps_pretrain_file *files, size_t n);
/* Finds file `file` in an artifact held in buf (`name` labels errors); *data points
 * into buf. CT_ENOTFOUND when absent, CT_ECORRUPT when the container is damaged. */
int ct_steps_pretrain_find(const void *buf, size_t len, const char *name, const char *file, const void **data,
                           size_t *size);

/* The Hugging Face files of a save point, in the order they are written out. */
extern const char *const ct_steps_pretrain_hf_files[3];

/* Writes the Hugging Face files of an artifact held in buf into `dir` (created when
 * missing; each file replaced atomically). */
int ct_steps_pretrain_write_hf(const void *buf, size_t len, const char *name, const char *dir);

#endif

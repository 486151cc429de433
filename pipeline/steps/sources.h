/* Sources shared by step kinds: inputs that enter keys by content digest. */
#ifndef CT_STEPS_SOURCES_H
#define CT_STEPS_SOURCES_H

#include "pipeline/plan.h"
#include "pipeline/step.h"

/* Adds the checkpoint `source` (a local Hugging Face directory or hf:ORG/NAME@REV)
 * to the plan as a source labelled "checkpoint:<source>". Its key is the checkpoint's
 * content digest (weights, config.json, tokenizer.json; models/checkpoint), memoised
 * by the identity of every file in the resolved directory so that unchanged weights
 * are never re-hashed. A missing checkpoint is an error that prints the download
 * command. *label is borrowed from the plan. */
int ct_steps_source_checkpoint(ct_plan *plan, const char *source, const char **label);
/* ... and `pretrain:<step>` resolves to the plan's "pretrain/<step>" step (the recipe's
 * own pretraining run, planned before any consumer), an error when there is none. */

/* At run time: the Hugging Face directory of checkpoint input `name`[i], to load with
 * ct_model_load / ct_ckpt_open. For a source it is the source's path; for a pretrain
 * save point it is the checkpoint materialised from the artifact under
 * <cache directory>/checkpoints/<the artifact's SHA-256 from its record> (written to a
 * temporary directory and renamed into place, so readers never see a partial one,
 * and reused by every later step). *dir is malloc'd. */
int ct_steps_checkpoint_dir(ct_step_ctx *ctx, const char *name, size_t i, char **dir);
/* The tokenizer.json of input `name`[i]: a source file's path, or the tokenizer.json
 * of a pretrain save point's materialised directory. *path is malloc'd. */
int ct_steps_tokenizer_path(ct_step_ctx *ctx, const char *name, size_t i, char **path);
/* Loads tokenizer input `name`[0]: a tokenizer.json source file or a tokenizer_train
 * artifact. The caller frees *tok with ct_tok_free. */
struct ct_tokenizer;
int ct_steps_load_tokenizer(ct_step_ctx *ctx, const char *name, struct ct_tokenizer **tok);

#endif

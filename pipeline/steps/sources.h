/* Sources shared by step kinds: inputs that enter keys by content digest. */
#ifndef CT_STEPS_SOURCES_H
#define CT_STEPS_SOURCES_H

#include "pipeline/plan.h"

/* Adds the checkpoint `source` (a local Hugging Face directory or hf:ORG/NAME@REV)
 * to the plan as a source labelled "checkpoint:<source>". Its key is the checkpoint's
 * content digest (weights, config.json, tokenizer.json; models/checkpoint), memoised
 * by the identity of every file in the resolved directory so that unchanged weights
 * are never re-hashed. A missing checkpoint is an error that prints the download
 * command. *label is borrowed from the plan. */
int ct_steps_source_checkpoint(ct_plan *plan, const char *source, const char **label);

#endif

/* Training rows for the crosscoder trainer from cached activation shards (see
 * actsource.c for the shuffle). */
#ifndef CT_STEPS_ACTSOURCE_H
#define CT_STEPS_ACTSOURCE_H

#include "crosscoder/source.h"
#include "pipeline/step.h"

#include <stdint.h>

/* A source over the step's inputs "<prefix>_0" .. "<prefix>_<M-1>" (each a list of
 * activation shards, one list per checkpoint, shard k aligned across checkpoints),
 * rows multiplied by scale[m] (NULL: 1), shuffled from `seed` when `shuffle` is set,
 * else in storage order. Borrows ctx; close with ct_cc_source_close. */
int ct_steps_actsource_open(ct_step_ctx *ctx, const char *prefix, int M, const float *scale, uint64_t seed,
                            int shuffle, ct_cc_source *out);
/* Closes the blob readers the source holds open (the next read reopens them), so that
 * the step can write to the cache: a write that has to grow or remap the LMDB map waits
 * until no reader of the process is open. NULL or a closed source ok. */
void ct_steps_actsource_release(ct_cc_source *src);
/* Rows per epoch. */
uint64_t ct_steps_actsource_rows(const ct_cc_source *src);

#endif

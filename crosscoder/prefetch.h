/* Reading the next training batch while the current step computes. A background thread
 * pulls batches from a ct_cc_source into two caller-owned buffers in turn; the trainer
 * takes them one at a time. The rows and their order are exactly those of reading the
 * source directly, and the position reported for saving is that of the first row not yet
 * taken, so checkpoints and resumes are unchanged by prefetching.
 *
 * This pays where reading a batch (widening bf16 shards, scaling) would otherwise leave
 * the compute device idle: on CUDA the host reads while the GPU trains. */
#ifndef CT_CROSSCODER_PREFETCH_H
#define CT_CROSSCODER_PREFETCH_H

#include "crosscoder/source.h"

#include <stddef.h>

typedef struct ct_cc_prefetch ct_cc_prefetch;

/* Starts reading batches of `rows` rows from src into buf[0] and buf[1] (each
 * rows·M·d floats, owned by the caller, untouched by it until ct_cc_prefetch_stop). The
 * source belongs to the prefetcher until then. 0, CT_ENOMEM or CT_EIO (no thread). */
int ct_cc_prefetch_start(ct_cc_source *src, float *const buf[2], size_t rows, ct_cc_prefetch **out);
/* Waits for the next batch and points *batch at it (one of the two buffers); the batch of
 * the previous call is handed back for refilling. A source error is reported by the call
 * that would have returned the failed batch, with the source's message; later calls
 * repeat it. */
int ct_cc_prefetch_next(ct_cc_prefetch *p, float **batch);
/* The source position of the first row not yet returned by ct_cc_prefetch_next. */
void ct_cc_prefetch_tell(const ct_cc_prefetch *p, ct_cc_cursor *cur);
/* Stops the thread, seeks the source to ct_cc_prefetch_tell's position (so it continues
 * as if only the returned batches had been read) and frees p. NULL ok; returns the
 * seek's status. */
int ct_cc_prefetch_stop(ct_cc_prefetch *p);

#endif

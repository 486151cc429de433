/* Where training rows come from. The trainer pulls batches of rows [B,M,d] fp32,
 * already multiplied by the normalisation factors s_m, through ct_cc_source; the
 * pipeline implements one over cached activation shards, tests use the in-memory one.
 * A source's position is a cursor (epoch, index) that the trainer saves with its state
 * and restores with seek, so a resumed run sees exactly the rows it would have seen.
 * METHOD §1 allows any seeded shuffle with the effect of the reference's shuffled
 * refill buffer; the in-memory source draws a fresh permutation per epoch. */
#ifndef CT_CROSSCODER_SOURCE_H
#define CT_CROSSCODER_SOURCE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ct_cc_cursor {
    uint64_t epoch; /* completed passes over the data */
    uint64_t index; /* rows consumed in the current pass */
} ct_cc_cursor;

typedef struct ct_cc_source {
    int M, d;
    void *ctx;
    /* Writes the next n rows to rows[n*M*d]; wraps to the next epoch at the end. */
    int (*next)(void *ctx, float *rows, size_t n);
    int (*tell)(void *ctx, ct_cc_cursor *cur);
    int (*seek)(void *ctx, const ct_cc_cursor *cur);
    void (*destroy)(void *ctx); /* may be NULL */
} ct_cc_source;

/* Rows rows[n*M*d] held by the caller (not copied; they must outlive the source),
 * returned multiplied by scale[m] (NULL = 1). Epoch e visits the rows in the order of a
 * permutation drawn from (seed, e) when `shuffle` is set, in storage order otherwise. */
int ct_cc_memsource_open(const float *rows, size_t n, int M, int d, const float *scale,
                         uint64_t seed, int shuffle, ct_cc_source *out);
/* Calls destroy and clears the struct. NULL ok. */
void ct_cc_source_close(ct_cc_source *s);

/* s_m = sqrt(d) / E[‖x_m‖₂] over the next `rows` rows of an unscaled source, read in
 * batches of `batch` (METHOD §1). scale[M] receives the factors; CT_EINVAL when a mean
 * norm is zero or not finite. The source is left after the rows it read. */
int ct_cc_estimate_scale(ct_cc_source *src, size_t rows, int batch, float *scale);

#endif

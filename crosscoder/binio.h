/* Little-endian binary writer/reader for the crosscoder's artifact and training-state
 * formats (internal). The writer grows a malloc'd buffer and remembers the first
 * failure; the reader never reads past its end and remembers a short read, so callers
 * check once at the end. */
#ifndef CT_CROSSCODER_BINIO_H
#define CT_CROSSCODER_BINIO_H

#include "crosscoder/crosscoder.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ct_cc_wbuf {
    uint8_t *data;
    size_t len, cap;
    int failed;
} ct_cc_wbuf;

void ct_cc_put(ct_cc_wbuf *w, const void *p, size_t n);
void ct_cc_put_u32(ct_cc_wbuf *w, uint32_t v);
void ct_cc_put_u64(ct_cc_wbuf *w, uint64_t v);
void ct_cc_put_f32(ct_cc_wbuf *w, float v);
void ct_cc_put_f64(ct_cc_wbuf *w, double v);
void ct_cc_put_f32s(ct_cc_wbuf *w, const float *v, size_t n);
void ct_cc_put_u64s(ct_cc_wbuf *w, const uint64_t *v, size_t n);

typedef struct ct_cc_rbuf {
    const uint8_t *data;
    size_t len, off;
    int short_read;
} ct_cc_rbuf;

void ct_cc_get(ct_cc_rbuf *r, void *p, size_t n);
uint32_t ct_cc_get_u32(ct_cc_rbuf *r);
uint64_t ct_cc_get_u64(ct_cc_rbuf *r);
float ct_cc_get_f32(ct_cc_rbuf *r);
double ct_cc_get_f64(ct_cc_rbuf *r);
void ct_cc_get_f32s(ct_cc_rbuf *r, float *v, size_t n);
void ct_cc_get_u64s(ct_cc_rbuf *r, uint64_t *v, size_t n);

/* Config fields in a fixed order; the reader validates with ct_cc_config_resolve. */
void ct_cc_put_config(ct_cc_wbuf *w, const ct_cc_config *cfg);
void ct_cc_get_config(ct_cc_rbuf *r, ct_cc_config *cfg);

/* Appends the SHA-256 of everything written so far. */
void ct_cc_put_digest(ct_cc_wbuf *w);
/* Checks that the last 32 bytes are the SHA-256 of the rest; 0 or CT_ECORRUPT naming
 * `name`. On success r covers the payload only. */
int ct_cc_check_digest(ct_cc_rbuf *r, const char *name);

#endif

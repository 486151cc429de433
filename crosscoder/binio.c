/* Little-endian serialisation helpers shared by the artifact and the training state. */
#include "crosscoder/binio.h"

#include "common/error.h"
#include "common/sha256.h"

#include <stdlib.h>
#include <string.h>

void ct_cc_put(ct_cc_wbuf *w, const void *p, size_t n)
{
    if (w->failed)
        return;
    if (w->len + n > w->cap) {
        size_t c = w->cap ? w->cap : 4096;
        while (c < w->len + n)
            c *= 2;
        uint8_t *q = realloc(w->data, c);
        if (!q) {
            w->failed = 1;
            return;
        }
        w->data = q;
        w->cap = c;
    }
    memcpy(w->data + w->len, p, n);
    w->len += n;
}

/* The formats are little-endian; every supported host is too, which the build checks. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "crosscoder formats assume a little-endian host");

void ct_cc_put_u32(ct_cc_wbuf *w, uint32_t v) { ct_cc_put(w, &v, 4); }
void ct_cc_put_u64(ct_cc_wbuf *w, uint64_t v) { ct_cc_put(w, &v, 8); }
void ct_cc_put_f32(ct_cc_wbuf *w, float v) { ct_cc_put(w, &v, 4); }
void ct_cc_put_f64(ct_cc_wbuf *w, double v) { ct_cc_put(w, &v, 8); }
void ct_cc_put_f32s(ct_cc_wbuf *w, const float *v, size_t n) { ct_cc_put(w, v, n * sizeof *v); }
void ct_cc_put_u64s(ct_cc_wbuf *w, const uint64_t *v, size_t n) { ct_cc_put(w, v, n * sizeof *v); }

void ct_cc_get(ct_cc_rbuf *r, void *p, size_t n)
{
    if (r->short_read || n > r->len - r->off) {
        r->short_read = 1;
        memset(p, 0, n);
        return;
    }
    memcpy(p, r->data + r->off, n);
    r->off += n;
}

uint32_t ct_cc_get_u32(ct_cc_rbuf *r) { uint32_t v; ct_cc_get(r, &v, 4); return v; }
uint64_t ct_cc_get_u64(ct_cc_rbuf *r) { uint64_t v; ct_cc_get(r, &v, 8); return v; }
float ct_cc_get_f32(ct_cc_rbuf *r) { float v; ct_cc_get(r, &v, 4); return v; }
double ct_cc_get_f64(ct_cc_rbuf *r) { double v; ct_cc_get(r, &v, 8); return v; }
void ct_cc_get_f32s(ct_cc_rbuf *r, float *v, size_t n) { ct_cc_get(r, v, n * sizeof *v); }
void ct_cc_get_u64s(ct_cc_rbuf *r, uint64_t *v, size_t n) { ct_cc_get(r, v, n * sizeof *v); }

void ct_cc_put_config(ct_cc_wbuf *w, const ct_cc_config *c)
{
    ct_cc_put_u32(w, (uint32_t)c->type);
    ct_cc_put_u32(w, (uint32_t)c->M);
    ct_cc_put_u32(w, (uint32_t)c->d);
    ct_cc_put_u32(w, (uint32_t)c->H);
    ct_cc_put_u32(w, (uint32_t)c->batch);
    ct_cc_put_u64(w, (uint64_t)c->steps);
    ct_cc_put_u64(w, (uint64_t)c->tokens);
    ct_cc_put_f32(w, c->lr);
    ct_cc_put_f32(w, c->beta1);
    ct_cc_put_f32(w, c->beta2);
    ct_cc_put_f32(w, c->eps);
    ct_cc_put_f32(w, c->grad_clip);
    ct_cc_put_f32(w, c->l1_coeff);
    ct_cc_put_f64(w, c->l1_warmup);
    ct_cc_put_f64(w, c->lr_decay_start);
    ct_cc_put_f32(w, c->dec_init_norm);
    ct_cc_put_u64(w, c->seed);
    ct_cc_put_u64(w, (uint64_t)c->checkpoint_every);
    ct_cc_put_u64(w, (uint64_t)c->log_every);
    ct_cc_put_u32(w, (uint32_t)c->k_start);
    ct_cc_put_u32(w, (uint32_t)c->k_end);
    ct_cc_put_u64(w, (uint64_t)c->k_anneal_steps);
    ct_cc_put_u64(w, (uint64_t)c->threshold_start_step);
    ct_cc_put_f32(w, c->threshold_beta);
    ct_cc_put_f32(w, c->aux_coeff);
    ct_cc_put_u32(w, (uint32_t)c->k_aux);
    ct_cc_put_u64(w, (uint64_t)c->dead_tokens);
    ct_cc_put_u32(w, (uint32_t)c->path);
    ct_cc_put_f32(w, c->sparse_density);
    ct_cc_put_u32(w, (uint32_t)c->val_rows);
}

void ct_cc_get_config(ct_cc_rbuf *r, ct_cc_config *c)
{
    c->type = (int)ct_cc_get_u32(r);
    c->M = (int)ct_cc_get_u32(r);
    c->d = (int)ct_cc_get_u32(r);
    c->H = (int)ct_cc_get_u32(r);
    c->batch = (int)ct_cc_get_u32(r);
    c->steps = (long)ct_cc_get_u64(r);
    c->tokens = (long long)ct_cc_get_u64(r);
    c->lr = ct_cc_get_f32(r);
    c->beta1 = ct_cc_get_f32(r);
    c->beta2 = ct_cc_get_f32(r);
    c->eps = ct_cc_get_f32(r);
    c->grad_clip = ct_cc_get_f32(r);
    c->l1_coeff = ct_cc_get_f32(r);
    c->l1_warmup = ct_cc_get_f64(r);
    c->lr_decay_start = ct_cc_get_f64(r);
    c->dec_init_norm = ct_cc_get_f32(r);
    c->seed = ct_cc_get_u64(r);
    c->checkpoint_every = (long)ct_cc_get_u64(r);
    c->log_every = (long)ct_cc_get_u64(r);
    c->k_start = (int)ct_cc_get_u32(r);
    c->k_end = (int)ct_cc_get_u32(r);
    c->k_anneal_steps = (long)ct_cc_get_u64(r);
    c->threshold_start_step = (long)ct_cc_get_u64(r);
    c->threshold_beta = ct_cc_get_f32(r);
    c->aux_coeff = ct_cc_get_f32(r);
    c->k_aux = (int)ct_cc_get_u32(r);
    c->dead_tokens = (long long)ct_cc_get_u64(r);
    c->path = (int)ct_cc_get_u32(r);
    c->sparse_density = ct_cc_get_f32(r);
    c->val_rows = (int)ct_cc_get_u32(r);
}

void ct_cc_put_digest(ct_cc_wbuf *w)
{
    if (w->failed)
        return;
    uint8_t dg[CT_SHA256_LEN];
    ct_sha256_buf(w->data, w->len, dg);
    ct_cc_put(w, dg, sizeof dg);
}

int ct_cc_check_digest(ct_cc_rbuf *r, const char *name)
{
    if (r->len < CT_SHA256_LEN)
        return ct_error_set(CT_ECORRUPT, "%s: truncated (%zu bytes)", name, r->len);
    uint8_t dg[CT_SHA256_LEN];
    ct_sha256_buf(r->data, r->len - CT_SHA256_LEN, dg);
    if (memcmp(dg, r->data + r->len - CT_SHA256_LEN, CT_SHA256_LEN) != 0)
        return ct_error_set(CT_ECORRUPT, "%s: SHA-256 mismatch (file damaged or truncated)", name);
    r->len -= CT_SHA256_LEN;
    return 0;
}

/* The two backends behind kernels.h (internal to kernels/). Both return 0 or a CT_E*
 * code (CPU functions fail only when their scratch cannot be allocated); CUDA functions
 * also take the backend's own state. The argument lists mirror kernels.h without the
 * context. */
#ifndef CT_KERNELS_BACKEND_H
#define CT_KERNELS_BACKEND_H

#include "kernels/kernels.h"

#define CT_KERN_OPS(P, R, X)                                                                 \
    X(P, R, embedding_fwd, (float *out, const int32_t *ids, const float *wte, int N, int C),   \
      (out, ids, wte, N, C))                                                                 \
    X(P, R, layernorm_fwd,                                                                   \
      (float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b, \
       int N, int C, float eps),                                                             \
      (out, mean, rstd, inp, w, b, N, C, eps))                                               \
    X(P, R, layernorm_bwd,                                                                   \
      (float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w, \
       const float *mean, const float *rstd, int N, int C),                                  \
      (dinp, dw, db, dout, inp, w, mean, rstd, N, C))                                        \
    X(P, R, matmul_fwd,                                                                      \
      (float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC,  \
       int accumulate),                                                                      \
      (out, inp, w, bias, N, C, OC, accumulate))                                             \
    X(P, R, matmul_bwd,                                                                      \
      (float *dinp, float *dw, float *dbias, const float *dout, const float *inp,              \
       const float *w, int N, int C, int OC, int accumulate),                                \
      (dinp, dw, dbias, dout, inp, w, N, C, OC, accumulate))                                 \
    X(P, R, qkv_split_fwd,                                                                   \
      (float *q, float *kk, float *v, const float *qkv, int B, int T, int nh, int hd,          \
       float clip),                                                                          \
      (q, kk, v, qkv, B, T, nh, hd, clip))                                                   \
    X(P, R, qkv_split_bwd,                                                                   \
      (float *dqkv, const float *dq, const float *dk, const float *dv, const float *qkv,       \
       int B, int T, int nh, int hd, float clip),                                            \
      (dqkv, dq, dk, dv, qkv, B, T, nh, hd, clip))                                           \
    X(P, R, rope_fwd,                                                                        \
      (float *x, const float *cos, const float *sin, int B, int nh, int T, int hd, int rot),   \
      (x, cos, sin, B, nh, T, hd, rot))                                                      \
    X(P, R, rope_bwd,                                                                        \
      (float *dx, const float *cos, const float *sin, int B, int nh, int T, int hd, int rot),  \
      (dx, cos, sin, B, nh, T, hd, rot))                                                     \
    X(P, R, attention_fwd,                                                                   \
      (float *out, float *probs, const float *q, const float *kk, const float *v,              \
       const float *slopes, int B, int T, int nh, int hd, float scale),                      \
      (out, probs, q, kk, v, slopes, B, T, nh, hd, scale))                                   \
    X(P, R, attention_bwd,                                                                   \
      (float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q, \
       const float *kk, const float *v, int B, int T, int nh, int hd, float scale),          \
      (dq, dk, dv, dout, probs, q, kk, v, B, T, nh, hd, scale))                              \
    X(P, R, gelu_fwd, (float *out, const float *inp, size_t n, ct_gelu_kind kind),             \
      (out, inp, n, kind))                                                                   \
    X(P, R, gelu_bwd,                                                                        \
      (float *dinp, const float *inp, const float *dout, size_t n, ct_gelu_kind kind),         \
      (dinp, inp, dout, n, kind))                                                            \
    X(P, R, swiglu_fwd, (float *out, const float *gu, int N, int I), (out, gu, N, I))          \
    X(P, R, swiglu_bwd, (float *dgu, const float *dout, const float *gu, int N, int I),        \
      (dgu, dout, gu, N, I))                                                                 \
    X(P, R, gather_rows, (float *out, const float *inp, const int32_t *rows, int R, int C),    \
      (out, inp, rows, R, C))                                                                \
    X(P, R, scatter_add_rows, (float *dst, const float *src, const int32_t *rows, int R, int C), \
      (dst, src, rows, R, C))                                                                \
    X(P, R, logsoftmax, (float *out, const float *logits, int N, int V), (out, logits, N, V))  \
    X(P, R, cross_entropy,                                                                   \
      (float *loss, const float *logits, const int32_t *targets, int N, int V),              \
      (loss, logits, targets, N, V))

/* CPU: int ct_kcpu_<op>(args) */
#define CT_KERN_DECL_CPU(P, R, name, params, args) int ct_kcpu_##name params;
CT_KERN_OPS(_, _, CT_KERN_DECL_CPU)

#ifdef CT_HAVE_CUDA
#ifdef __cplusplus
extern "C" {
#endif
typedef struct ct_kcuda ct_kcuda;
int ct_kcuda_device_count(void);
int ct_kcuda_create(ct_kcuda **out);
void ct_kcuda_free(ct_kcuda *c);
int ct_kcuda_alloc(ct_kcuda *c, size_t bytes, void **out);
void ct_kcuda_release(ct_kcuda *c, void *p);
/* kind: 0 host→device, 1 device→host, 2 device→device */
int ct_kcuda_memcpy(ct_kcuda *c, void *dst, const void *src, size_t bytes, int kind);
int ct_kcuda_zero(ct_kcuda *c, void *dst, size_t bytes);
int ct_kcuda_sync(ct_kcuda *c);
#define CT_KERN_DECL_CUDA(P, R, name, params, args) int ct_kcuda_##name(ct_kcuda *c, CT_KERN_UNPAREN params;
#define CT_KERN_UNPAREN(...) __VA_ARGS__)
CT_KERN_OPS(_, _, CT_KERN_DECL_CUDA)
#ifdef __cplusplus
}
#endif
#endif

#endif

/* Numeric kernels of the transformer forward and backward, behind one interface with
 * two backends: CPU (OpenBLAS SGEMM, C with OpenMP elsewhere) and CUDA (cuBLAS plus
 * own kernels, present when the build found the toolkit).
 *
 * A ct_kern context owns a device; every tensor pointer passed to an op lives on that
 * device (host memory for CPU, device memory for CUDA) and is allocated with
 * ct_kern_alloc. Everything is row-major fp32 with fp32 accumulation. Ops never
 * allocate tensors their caller sees; a CUDA context keeps private scratch.
 *
 * Reductions have a fixed order that depends only on the shapes (no float atomics, no
 * thread-count-dependent partitions), so the same inputs on the same device give
 * bit-identical outputs.
 *
 * Backward ops write their input gradient (overwriting unless an `accumulate` flag
 * says +=) and ADD parameter gradients (dw, db) into their buffers, which may be NULL
 * when not wanted. */
#ifndef CT_KERNELS_H
#define CT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { CT_DEVICE_CPU = 0, CT_DEVICE_CUDA = 1 } ct_device;

/* "cpu" or "cuda"; CT_EINVAL otherwise. */
int ct_device_parse(const char *name, ct_device *out);
const char *ct_device_name(ct_device dev);
/* 1 when this build has the CUDA backend and a CUDA device is present. */
int ct_kern_cuda_available(void);

typedef struct ct_kern ct_kern; /* opaque backend context */

/* CT_EUNSUPPORTED for CUDA in a build without it or on a machine without a GPU. */
int ct_kern_create(ct_device dev, ct_kern **out);
void ct_kern_free(ct_kern *k); /* NULL ok */
ct_device ct_kern_device(const ct_kern *k);

/* Zero-filled device memory of `bytes` (0 bytes gives NULL and success). */
int ct_kern_alloc(ct_kern *k, size_t bytes, void **out);
void ct_kern_release(ct_kern *k, void *p); /* NULL ok */
int ct_kern_upload(ct_kern *k, void *dst, const void *host_src, size_t bytes);
int ct_kern_download(ct_kern *k, void *host_dst, const void *src, size_t bytes);
int ct_kern_copy(ct_kern *k, void *dst, const void *src, size_t bytes);
int ct_kern_zero(ct_kern *k, void *dst, size_t bytes);
/* Waits for queued work; reports an asynchronous device failure. */
int ct_kern_sync(ct_kern *k);

/* out[n,:] = wte[ids[n],:]. The caller checks 0 <= ids < rows of wte. */
int ct_kern_embedding_fwd(ct_kern *k, float *out, const int32_t *ids, const float *wte,
                          int N, int C);

/* out = (inp - mean) * rstd * w + b per row of [N,C]; w and b may be NULL (a
 * non-parametric norm). mean and rstd [N] are saved for the backward. */
int ct_kern_layernorm_fwd(ct_kern *k, float *out, float *mean, float *rstd, const float *inp,
                          const float *w, const float *b, int N, int C, float eps);
/* dinp += d(out)/d(inp) · dout; dw, db += (may be NULL). */
int ct_kern_layernorm_bwd(ct_kern *k, float *dinp, float *dw, float *db, const float *dout,
                          const float *inp, const float *w, const float *mean,
                          const float *rstd, int N, int C);

/* out[N,OC] (+)= inp[N,C] · w[OC,C]ᵀ + bias[OC] (the nn.Linear layout; bias may be NULL). */
int ct_kern_matmul_fwd(ct_kern *k, float *out, const float *inp, const float *w,
                       const float *bias, int N, int C, int OC, int accumulate);
/* dinp[N,C] (+)= dout · w; dw[OC,C] += doutᵀ · inp; dbias[OC] += Σ_n dout. dinp, dw and
 * dbias may each be NULL. */
int ct_kern_matmul_bwd(ct_kern *k, float *dinp, float *dw, float *dbias, const float *dout,
                       const float *inp, const float *w, int N, int C, int OC,
                       int accumulate);

/* qkv[B*T, 3, nh, hd] → q, k, v [B, nh, T, hd], each value clamped to [-clip, clip]
 * when clip > 0 (OLMo's clip_qkv). */
int ct_kern_qkv_split_fwd(ct_kern *k, float *q, float *kk, float *v, const float *qkv, int B,
                          int T, int nh, int hd, float clip);
/* dqkv = the inverse permutation of (dq, dk, dv), zero where the forward clamped. */
int ct_kern_qkv_split_bwd(ct_kern *k, float *dqkv, const float *dq, const float *dk,
                          const float *dv, const float *qkv, int B, int T, int nh, int hd,
                          float clip);

/* Rotary embedding, rotate-half form, on the first `rot` dims of every head of
 * x[B, nh, T, hd], in place; cos and sin are [T, rot/2]. The backward applies the
 * transposed rotation to a gradient in place. */
int ct_kern_rope_fwd(ct_kern *k, float *x, const float *cos, const float *sin, int B, int nh,
                     int T, int hd, int rot);
int ct_kern_rope_bwd(ct_kern *k, float *dx, const float *cos, const float *sin, int B, int nh,
                     int T, int hd, int rot);

/* Causal softmax attention: s_ij = scale·q_i·k_j + slope_h·j (ALiBi when slopes[nh] is
 * not NULL), j <= i; out[B, T, nh·hd] has the heads merged. probs[B, nh, T, T] receives
 * the softmax (zero above the diagonal) when not NULL; the backward needs it. */
int ct_kern_attention_fwd(ct_kern *k, float *out, float *probs, const float *q,
                          const float *kk, const float *v, const float *slopes, int B, int T,
                          int nh, int hd, float scale);
/* dq, dk, dv [B, nh, T, hd] (overwritten) from dout [B, T, nh·hd]. */
int ct_kern_attention_bwd(ct_kern *k, float *dq, float *dk, float *dv, const float *dout,
                          const float *probs, const float *q, const float *kk, const float *v,
                          int B, int T, int nh, int hd, float scale);

typedef enum { CT_GELU_ERF = 0, CT_GELU_TANH = 1 } ct_gelu_kind;
int ct_kern_gelu_fwd(ct_kern *k, float *out, const float *inp, size_t n, ct_gelu_kind kind);
/* dinp = gelu'(inp) · dout (overwritten). */
int ct_kern_gelu_bwd(ct_kern *k, float *dinp, const float *inp, const float *dout, size_t n,
                     ct_gelu_kind kind);

/* gu[N, 2I] holds gate (first I columns) and up; out[N, I] = silu(gate) · up. */
int ct_kern_swiglu_fwd(ct_kern *k, float *out, const float *gu, int N, int I);
int ct_kern_swiglu_bwd(ct_kern *k, float *dgu, const float *dout, const float *gu, int N,
                       int I);

/* out[r,:] = inp[rows[r],:] for r < R. */
int ct_kern_gather_rows(ct_kern *k, float *out, const float *inp, const int32_t *rows, int R,
                        int C);
/* dst[rows[r],:] += src[r,:], rows taken in order (repeats allowed). */
int ct_kern_scatter_add_rows(ct_kern *k, float *dst, const float *src, const int32_t *rows,
                             int R, int C);

/* Row-wise log-softmax of [N,V]. */
int ct_kern_logsoftmax(ct_kern *k, float *out, const float *logits, int N, int V);
/* loss[n] = -log softmax(logits[n])[targets[n]], 0 where targets[n] < 0. */
int ct_kern_cross_entropy(ct_kern *k, float *loss, const float *logits, const int32_t *targets,
                          int N, int V);

#endif

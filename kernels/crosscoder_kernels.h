/* Kernels of the crosscoder: CPU (kernels/cpu/crosscoder_*.c) and, where built, the
 * CUDA versions of the elementwise ones (kernels/cuda/crosscoder_cuda.cu).
 *
 * Everything is row-major fp32. A batch row is one token's M checkpoints stacked, so
 * with D = M*d the crosscoder is a plain [B,D] -> [B,H] -> [B,D] autoencoder as far
 * as the kernels are concerned: W_enc is [D,H], W_dec is [H,D].
 *
 * Two paths: dense (OpenBLAS SGEMM) and sparse (only the active latents of each row,
 * held as CSR + its CSC transpose). Every reduction has a fixed order that depends on
 * the shapes and the OpenMP thread count only, never on scheduling, so results are
 * reproducible for a given thread count. Callers own all buffers passed in; the
 * *_reserve functions grow CSR/CSC arrays, and a few kernels take small per-call
 * scratch (a tile per thread, partial sums) that they free before returning. */
#ifndef CT_CROSSCODER_KERNELS_H
#define CT_CROSSCODER_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Active entries of a [B,H] activation matrix. CSR: row_ptr[B+1], col[nnz], val[nnz]
 * (columns ascending within a row). The CSC view (ct_cck_csc) lists, for each latent,
 * the rows where it is active (rows ascending) and the CSR position of each entry, so
 * any per-entry array can be read in either order. */
typedef struct ct_cck_csr {
    int rows, cols;
    size_t nnz, cap;
    size_t *row_ptr;
    int32_t *col;
    float *val;
} ct_cck_csr;

typedef struct ct_cck_csc {
    int rows, cols;
    size_t nnz, cap;
    size_t *col_ptr;  /* [cols+1] */
    int32_t *row;     /* [nnz] */
    size_t *pos;      /* [nnz]: index of the same entry in the CSR arrays */
} ct_cck_csc;

/* Grows the arrays to hold `nnz` entries and shape rows x cols. 0 or CT_ENOMEM. */
int ct_cck_csr_reserve(ct_cck_csr *a, int rows, int cols, size_t nnz);
void ct_cck_csr_free(ct_cck_csr *a);
int ct_cck_csc_reserve(ct_cck_csc *a, int rows, int cols, size_t nnz);
void ct_cck_csc_free(ct_cck_csc *a);

/* Sets flush-to-zero and denormals-are-zero on every OpenMP thread and the caller,
 * remembering each thread's previous mode; ct_cck_fpmode_restore undoes it. */
void ct_cck_fpmode_enter(void);
void ct_cck_fpmode_restore(void);

/* pre[B,H] = X[B,D] W_enc[D,H] + b_enc (SGEMM). */
void ct_cck_encode(const float *X, const float *W_enc, const float *b_enc, float *pre,
                   int B, int D, int H);
/* In place: F = relu(F). */
void ct_cck_relu(float *F, size_t n);
/* Xh[B,D] = F[B,H] W_dec[H,D] (+ b_dec when not NULL) (SGEMM). */
void ct_cck_decode_dense(const float *F, const float *W_dec, const float *b_dec, float *Xh,
                         int B, int H, int D);
/* In place F = relu(F) over [B,H], counting positives per row into row_ptr[B+1] as
 * CSR offsets; returns the total. */
size_t ct_cck_relu_count(float *F, int B, int H, size_t *row_ptr);
/* CSR of the positive entries of F given the offsets from ct_cck_relu_count. */
int ct_cck_csr_fill(const float *F, int B, int H, const size_t *row_ptr, ct_cck_csr *out);
/* CSR of the positive entries of F[B,H]. 0 or CT_ENOMEM. */
int ct_cck_csr_from_dense(const float *F, int B, int H, ct_cck_csr *out);
/* CSC view of `a`. 0 or CT_ENOMEM. */
int ct_cck_csc_from_csr(const ct_cck_csr *a, ct_cck_csc *out);
/* Columns per pass that the sparse kernels use for a dense operand with `rows` rows of
 * D floats: D when the operand fits the cache budget, else a slice that does. */
int ct_cck_sparse_chunk(int rows, int D);
/* Xh[b,:] = (b_dec or 0) + sum over row b of val * W_dec[col,:]. */
void ct_cck_decode_sparse(const ct_cck_csr *a, const float *W_dec, const float *b_dec,
                          float *Xh, int D);
/* out[e] = G[row(e),:] . W_dec[col(e),:] + add[col(e)] (add may be NULL), for every entry. */
void ct_cck_sddmm(const ct_cck_csr *a, const float *G, const float *W_dec, int D,
                  const float *add, float *out);
/* dW[j,:] (+)= sum over the entries of latent j of vals[pos] * A[row,:]; rows of
 * latents without entries are zeroed unless accumulating. dW is [H,D]. */
void ct_cck_gather_rows(const ct_cck_csc *c, const float *vals, const float *A, int D,
                        float *dW, int accumulate);
/* Same sum written transposed: dWt[:,j] (+)= ..., dWt is [D,H]; colsum[j] (+)= sum of
 * vals over latent j when colsum is not NULL. */
void ct_cck_gather_cols(const ct_cck_csc *c, const float *vals, const float *A, int D,
                        float *dWt, float *colsum, int accumulate);

/* BatchTopK selections (kernels/cpu/crosscoder_topk.c; the CUDA versions pick the same
 * entries). Scores are F[b,j]·ns[j] with F ≥ 0 and ns ≥ 0; the radix step is in
 * kernels/topk_bin.h. */
#define CT_CCK_TOPK_BINS 65536
/* Keeps the K largest positive scores of the whole batch (all of them when there are
 * at most K; ties at the boundary kept in row-major order) and zeroes every other entry
 * of F[B,H]. Returns the smallest kept score, 0 when none is kept. hist is scratch of
 * CT_CCK_TOPK_BINS, rowcnt of B. */
float ct_cck_batch_topk(float *F, const float *ns, int B, int H, size_t K, uint32_t *hist, size_t *rowcnt);
/* Zeroes the entries whose score is not above threshold (BatchTopK at inference). */
void ct_cck_threshold_mask(float *F, const float *ns, int B, int H, float threshold);
/* AuxK: per row of R[B,H] (relu(pre) before the top-k), the kk entries of dead latents
 * (dead[j] != 0) with the largest positive R (score R·ns, ties to the lower latent),
 * as CSR in out (columns ascending). rowcnt is scratch of B+1. 0 or CT_ENOMEM. */
int ct_cck_aux_select(const float *R, const float *ns, const uint8_t *dead, int B, int H, int kk,
                      size_t *rowcnt, ct_cck_csr *out);

/* Dense backward GEMMs. dF[B,H] = G[B,D] W_dec[H,D]^T. */
void ct_cck_grad_f_dense(const float *G, const float *W_dec, float *dF, int B, int D, int H);
/* dW_dec[H,D] = F^T G; dW_enc[D,H] = X^T dPre. */
void ct_cck_grad_dec_dense(const float *F, const float *G, float *dW_dec, int B, int H, int D);
void ct_cck_grad_enc_dense(const float *X, const float *dPre, float *dW_enc, int B, int D, int H);
/* out[j] = sum_b A[b,j] over a [B,N] matrix, summed in row order. */
void ct_cck_colsum(const float *A, int B, int N, float *out);

/* Sum of squares of x[0..n) in double, with a fixed blocking independent of threads. */
double ct_cck_sumsq(const float *x, size_t n);

/* One Adam step as torch.optim.Adam computes it for fp32 (no weight decay, no amsgrad):
 * g' = g * gscale; m = b1 m + (1-b1) g'; v = b2 v + (1-b2) g'^2;
 * p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps). t counts from 1. */
void ct_cck_adam(float *p, const float *g, float *m, float *v, size_t n, float gscale,
                 double lr, double b1, double b2, double eps, long t);

/* The per-element part of ct_cck_adam over one span (vectorised where the CPU allows). */
typedef struct ct_cck_adam_coef {
    float gscale, b1, b2, one_minus_b1, one_minus_b2, step_size, bc2_sqrt, eps;
} ct_cck_adam_coef;
void ct_cck_adam_span(float *p, const float *g, float *m, float *v, size_t n, const ct_cck_adam_coef *k);

/* y[0..n) += a * x[0..n) and dot(x, y), vectorised with a fixed summation order. */
void ct_cck_axpy(float *y, float a, const float *x, int n);
float ct_cck_dot(const float *x, const float *y, int n);
/* The same over many rows of a matrix X with leading dimension ld, results bit for bit
 * those of the loops over ct_cck_axpy / ct_cck_dot (entries in order), with the loads of
 * y or g shared by a few entries at a time:
 *   axpy_gather: y[0..n) += val[pos ? pos[t] : t] * X[idx[t]*ld + 0..n) for t = 0..cnt-1;
 *   dot_gather:  out[t] = ct_cck_dot(g, X + idx[t]*ld, n) for t = 0..cnt-1. */
void ct_cck_axpy_gather(float *y, int n, const float *X, size_t ld, const int32_t *idx, const float *val,
                        const size_t *pos, size_t cnt);
void ct_cck_dot_gather(const float *g, int n, const float *X, size_t ld, const int32_t *idx, size_t cnt,
                       float *out);
/* The positive entries of r[0..n) in order: col[] their indices, val[] their values;
 * returns how many (at most n are written). */
size_t ct_cck_positive(const float *r, int n, int32_t *col, float *val);
/* In place r = relu(r) over r[0..n); returns how many entries are positive. */
size_t ct_cck_relu_count_row(float *r, int n);
/* o[i*ldo + r] = s[r*lds + i] (+= when accumulate) for r < rows, i < cols. */
void ct_cck_transpose(float *o, size_t ldo, const float *s, size_t lds, int rows, int cols, int accumulate);

#ifdef CT_HAVE_CUDA
/* CUDA versions (kernels/cuda/crosscoder_cuda.cu) of the elementwise training kernels;
 * pointers are device pointers except row_ptr (host). Same results as the CPU kernels:
 * Adam bit for bit, relu_count exactly, sumsq to double rounding. */
int ct_cck_cuda_device_count(void); /* 0 when no device or driver */
int ct_cck_cuda_alloc(void **p, size_t bytes);
void ct_cck_cuda_free(void *p);
int ct_cck_cuda_copy(void *dst, const void *src, size_t bytes, int to_device);
/* Page-locked host memory: copies from it to the device run at full bus speed. */
int ct_cck_cuda_host_alloc(void **p, size_t bytes);
void ct_cck_cuda_host_free(void *p);
int ct_cck_cuda_adam(float *p, const float *g, float *m, float *v, size_t n, float gscale, double lr,
                     double b1, double b2, double eps, long t);
int ct_cck_cuda_sumsq(const float *x, size_t n, double *out);
int ct_cck_cuda_relu_count(float *F, int B, int H, size_t *row_ptr);

/* Forward and backward of the crosscoder losses on the device
 * (kernels/cuda/crosscoder_train.cu; selections in crosscoder_topk.cu, active-latent
 * kernels in crosscoder_sparse.cu): the same operations as the CPU's path with cuBLAS
 * SGEMM in plain fp32 for the dense products and fixed-order reductions, repeatable bit
 * for bit on one GPU and within fp32 rounding of the CPU. The scratch for batches of up
 * to max_batch rows is owned by the opaque handle.
 *
 * params (device, [D*H + H + H*D + D] in the W_enc, b_enc, W_dec, b_dec order) and X
 * (device, [B,D]) are the caller's. One evaluation is forward, then for BatchTopK with
 * dead latents aux, then backward when a gradient is wanted; results may be read after
 * forward or after backward. */
typedef struct ct_cck_cuda_cc ct_cck_cuda_cc;
int ct_cck_cuda_cc_create(int M, int d, int H, int max_batch, ct_cck_cuda_cc **out);
void ct_cck_cuda_cc_free(ct_cck_cuda_cc *w); /* NULL ok */

/* How the forward pass picks the active latents after the ReLU, and when the step
 * works on the active entries only. */
typedef struct ct_cck_cuda_select {
    int topk;            /* 0: every positive latent (L1); 1: BatchTopK */
    int use_threshold;   /* BatchTopK: keep scores above threshold instead of the top K */
    float threshold;
    size_t K;            /* BatchTopK: scores kept over the batch (k·B) */
    int keep_relu;       /* keep relu(pre) before the selection, for aux */
    float sparse_below;  /* the decoder forward and the backward's products loop over the
                          * active entries when their fraction of the batch's [B,H] is
                          * below this: 0 never (dense SGEMMs), above 1 always */
} ct_cck_cuda_select;
#define CT_CCK_CUDA_SELECT_INIT                                                             \
    { .topk = 0, .use_threshold = 0, .threshold = 0.0f, .K = 0, .keep_relu = 0, .sparse_below = 0.0f }

/* What a forward pass found. */
typedef struct ct_cck_cuda_forward_info {
    float min_kept; /* top-K: the smallest kept score; 0 otherwise */
    int sparse;     /* the active-entry kernels ran (and the backward will use them) */
} ct_cck_cuda_forward_info;

/* pre = X W_enc + b_enc, f = the selection of relu(pre), x̂ = f W_dec + b_dec, and the
 * per-row loss terms. sel NULL: L1, dense. info may be NULL. Deciding on the sparse
 * kernels waits for the active count (sel->sparse_below > 0 only). */
int ct_cck_cuda_cc_forward(ct_cck_cuda_cc *w, const float *params, const float *X, int B,
                           const ct_cck_cuda_select *sel, ct_cck_cuda_forward_info *info);
/* Host copies of the last forward's sums: rowacc[B*(2M+1)] (per row and checkpoint the
 * squared error and the variance around the batch mean, then the row's total error),
 * fsum[H] (Σ_b f_bj), nsum[H] (Σ_m ‖W_dec[j,m]‖) and *nnz (active entries). Waits for
 * the work queued so far and reports any asynchronous failure. */
int ct_cck_cuda_cc_results(ct_cck_cuda_cc *w, int B, double *rowacc, float *fsum, float *nsum, size_t *nnz);
/* AuxK after a forward with keep_relu: per row the kk dead latents (host dead[H]) with
 * the largest relu(pre) (as ct_cck_aux_select), ê = f_aux W_dec and e = x − x̂; *num and
 * *den receive Σ_b ‖ê − e‖² and Σ_b ‖e − mean_batch(e)‖², summed in row order. */
int ct_cck_cuda_cc_aux(ct_cck_cuda_cc *w, const float *params, const float *X, int B, const uint8_t *dead,
                       int kk, double *num, double *den);
/* grad (device, the params layout) receives the gradient of L2 + lambda·L1 and, when
 * aux_scale != 0, of the AuxK term whose residual gradient is aux_scale·(ê − e). */
int ct_cck_cuda_cc_backward(ct_cck_cuda_cc *w, const float *params, const float *X, int B, float lambda,
                            float aux_scale, float *grad);
/* Host copies of the last forward's activations f[B,H] and, after aux, the AuxK
 * activations [B,H] (zero outside the chosen entries); either may be NULL. */
int ct_cck_cuda_cc_activations(ct_cck_cuda_cc *w, int B, float *f, float *f_aux);

/* The selections alone, on device arrays, for checking them against the CPU
 * references: ct_cck_batch_topk on F[B,H] (H of the handle) and ct_cck_aux_select
 * writing the chosen entries of R densely into A[B,H] (dead is host [H]). */
int ct_cck_cuda_batch_topk(ct_cck_cuda_cc *w, float *F, const float *ns, int B, size_t K, float *min_kept);
int ct_cck_cuda_threshold_mask(float *F, const float *ns, int B, int H, float threshold);
int ct_cck_cuda_aux_select(ct_cck_cuda_cc *w, const float *R, const float *ns, const uint8_t *dead, int B,
                           int kk, float *A);
#endif

#endif

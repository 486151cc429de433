/* Forward and backward of the crosscoder losses on the GPU: cuBLAS SGEMM for the five
 * [B,D,H] products (four more for AuxK) and own kernels for the rest, mirroring
 * crosscoder/loss.c operation for operation (see the formulas there). When few latents
 * are active, four of the five products run over the active entries only
 * (crosscoder_sparse.cu), as the CPU's sparse path does; the encoder forward stays an
 * SGEMM. The BatchTopK selections are in crosscoder_topk.cu.
 *
 * Determinism: every reduction has a fixed order (column sums over fixed chunks of rows
 * added in chunk order, or a fixed shared-memory tree per row), there are no float atomics, and
 * cuBLAS runs with atomics disallowed on one stream, so a given GPU and toolkit give
 * bit-identical results run after run. cuBLAS is pinned to plain fp32 (no TF32) so the
 * results stay within fp32 rounding of the CPU's. */
extern "C" {
#include "kernels/crosscoder_kernels.h"
}
#include "kernels/cuda/crosscoder_cuda.cuh"
#include "kernels/cuda/cuda_common.cuh"

#include <limits.h>
#include <stdlib.h>

#define L1_THREADS 256

struct ct_cck_cuda_cc {
    int M, d, H, D, max_batch;
    cublasHandle_t blas;
    float *F, *dF;            /* [B,H]; dF holds relu(pre) from a forward with keep_relu
                               * until the backward overwrites it */
    float *A;                 /* [B,H] AuxK activations, allocated on first use */
    float *E, *Xa;            /* [B,D] AuxK residual (then its gradient) and ê, same */
    double *auxacc;           /* [2B] per-row AuxK numerator and denominator, same */
    double *hauxacc;          /* host [2B] */
    int aux_ready;            /* A, E, Xa hold the last aux call's values */
    ct_cck_topk_scratch topk;
    ct_cck_sparse sp;         /* active-entry lists of F */
    int sparse;               /* the last forward chose the active-entry kernels */
    float *Xh, *G;            /* [B,D] */
    float *mu;                /* [D] */
    float *nrm, *nsum, *fsum, *addv; /* [H*M], [H], [H], [H] */
    double *rowacc;           /* [B*(2M+1)] */
    float *part;              /* [row chunks of max_batch × max(D,H)] column-sum chunks */
    unsigned long long *cnt;  /* [B] */
    unsigned long long *hcnt; /* host [B] */
};

static unsigned blocks_for(size_t n) { return ct_cuda_blocks(n, L1_THREADS); }

/* nrm[j*M+m] = ‖W_dec[j,m,:]‖ and nsum[j] = Σ_m nrm (summed in m order, as the CPU does).
 * One block per latent. */
__global__ static void dec_norms_kernel(const float *W_dec, int M, int d, float *nrm, float *nsum)
{
    __shared__ float sh[L1_THREADS];
    int j = blockIdx.x;
    float tot = 0.0f;
    for (int m = 0; m < M; m++) {
        const float *r = W_dec + ((size_t)j * M + m) * d;
        float s = 0.0f;
        for (int i = threadIdx.x; i < d; i += L1_THREADS)
            s = __fadd_rn(s, __fmul_rn(r[i], r[i]));
        sh[threadIdx.x] = s;
        ct_cck_block_sum(sh, L1_THREADS);
        if (threadIdx.x == 0) {
            float n = sqrtf(sh[0]);
            nrm[(size_t)j * M + m] = n;
            tot += n;
        }
        __syncthreads(); /* sh is reused by the next checkpoint */
    }
    if (threadIdx.x == 0)
        nsum[j] = tot;
}

/* Every row of out[B,N] = v[N]: the bias the SGEMM then accumulates onto. */
__global__ static void fill_rows_kernel(float *out, const float *v, int B, int N)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < (size_t)B * N)
        out[i] = v[i % (size_t)N];
}

/* Column sums of a [B,N] matrix in two fixed stages, so that the order depends on B
 * only: part[c,j] sums the rows of chunk c in order (ct_cck_row_chunk), then the chunk
 * sums are added in chunk order. */
__global__ static void colsum_part_kernel(const float *A, int B, int N, float *part)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= N)
        return;
    int b0, b1;
    ct_cck_row_chunk(B, &b0, &b1);
    float s = 0.0f;
    for (int b = b0; b < b1; b++)
        s = __fadd_rn(s, A[(size_t)b * N + j]);
    part[(size_t)blockIdx.y * N + j] = s;
}

/* out[j] (+)= (Σ_c part[c,j]) / div; dividing by 1 is exact. */
__global__ static void colsum_finish_kernel(const float *part, int chunks, int N, float div, int accumulate,
                                            float *out)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= N)
        return;
    float s = 0.0f;
    for (int c = 0; c < chunks; c++)
        s = __fadd_rn(s, part[(size_t)c * N + j]);
    s = __fdiv_rn(s, div);
    out[j] = accumulate ? __fadd_rn(out[j], s) : s;
}

static int colsum_to(ct_cck_cuda_cc *w, const float *A, int B, int N, float div, int accumulate, float *out)
{
    unsigned chunks = ct_cck_row_chunks(B);
    colsum_part_kernel<<<dim3(blocks_for((size_t)N), chunks), L1_THREADS>>>(A, B, N, w->part);
    CT_CUDA_TRY(cudaGetLastError());
    colsum_finish_kernel<<<blocks_for((size_t)N), L1_THREADS>>>(w->part, (int)chunks, N, div, accumulate, out);
    CT_CUDA_TRY(cudaGetLastError());
    return 0;
}

static int colsum(ct_cck_cuda_cc *w, const float *A, int B, int N, float div, float *out)
{
    return colsum_to(w, A, B, N, div, 0, out);
}

/* One block per row: G = g2 (x̂ − x), and into rowacc the per-checkpoint squared error
 * and variance around the batch mean (double, fixed tree), then their total over m. */
__global__ static void row_terms_kernel(const float *X, const float *Xh, const float *mu, float *G,
                                        int M, int d, float g2, double *rowacc)
{
    __shared__ double sres[L1_THREADS], svar[L1_THREADS];
    int b = blockIdx.x, D = M * d;
    const float *x = X + (size_t)b * D, *xh = Xh + (size_t)b * D;
    float *g = G + (size_t)b * D;
    double *ra = rowacc + (size_t)b * (2 * M + 1);
    double tot = 0.0;
    for (int m = 0; m < M; m++) {
        double res = 0.0, var = 0.0;
        for (int i = m * d + threadIdx.x; i < (m + 1) * d; i += L1_THREADS) {
            float diff = __fsub_rn(xh[i], x[i]);
            float c = __fsub_rn(x[i], mu[i]);
            g[i] = __fmul_rn(g2, diff);
            res += (double)diff * diff;
            var += (double)c * c;
        }
        sres[threadIdx.x] = res;
        svar[threadIdx.x] = var;
        ct_cck_block_sum(sres, L1_THREADS);
        ct_cck_block_sum(svar, L1_THREADS);
        if (threadIdx.x == 0) {
            ra[2 * m] = sres[0];
            ra[2 * m + 1] = svar[0];
            tot += sres[0];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0)
        ra[2 * M] = tot;
}

/* addv[j] = λ n_j / B: the L1 term's gradient with respect to f_bj. */
__global__ static void l1_add_kernel(const float *nsum, float lambda, float B, int H, float *addv)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j < H)
        addv[j] = __fdiv_rn(__fmul_rn(lambda, nsum[j]), B);
}

/* ∂/∂pre: the gradient of f (plus addv when given) where the latent is active
 * (ReLU'(0) = 0), zero elsewhere. */
__global__ static void mask_kernel(float *dF, const float *F, const float *addv, int B, int H)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < (size_t)B * H)
        dF[i] = F[i] > 0.0f ? (addv ? __fadd_rn(dF[i], addv[i % (size_t)H]) : dF[i]) : 0.0f;
}

/* AuxK, per element: E = X − x̂ (the detached residual e). */
__global__ static void residual_kernel(const float *X, const float *Xh, size_t n, float *E)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        E[i] = __fsub_rn(X[i], Xh[i]);
}

/* AuxK, one block per row: Σ (ê − e)² and Σ (e − mean_batch e)², in double. */
__global__ static void aux_row_kernel(const float *Xa, const float *E, const float *mu, int D, double *acc)
{
    __shared__ double snum[L1_THREADS], sden[L1_THREADS];
    size_t o = (size_t)blockIdx.x * D;
    double num = 0.0, den = 0.0;
    for (int i = threadIdx.x; i < D; i += L1_THREADS) {
        double r = (double)Xa[o + i] - E[o + i];
        double c = (double)E[o + i] - mu[i];
        num += r * r;
        den += c * c;
    }
    snum[threadIdx.x] = num;
    sden[threadIdx.x] = den;
    ct_cck_block_sum(snum, L1_THREADS);
    ct_cck_block_sum(sden, L1_THREADS);
    if (threadIdx.x == 0) {
        acc[2 * blockIdx.x] = snum[0];
        acc[2 * blockIdx.x + 1] = sden[0];
    }
}

/* AuxK's gradient with respect to ê, in place: E = scale · (ê − e). */
__global__ static void aux_grad_kernel(const float *Xa, float scale, size_t n, float *E)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        E[i] = __fmul_rn(scale, __fsub_rn(Xa[i], E[i]));
}

/* gW_dec[j,m,:] += (λ/B) (Σ_b f_bj) W_dec[j,m,:] / ‖W_dec[j,m,:]‖, skipping latents that
 * never fired and zero-norm rows, as on the CPU. */
__global__ static void l1_dec_grad_kernel(float *gW, const float *W, const float *fsum, const float *nrm,
                                          int H, int M, int d, float c)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t D = (size_t)M * d;
    if (i >= (size_t)H * D)
        return;
    size_t j = i / D;
    int m = (int)((i % D) / (size_t)d);
    float n = nrm[j * M + m];
    if (fsum[j] == 0.0f || n == 0.0f)
        return;
    float a = __fdiv_rn(__fmul_rn(c, fsum[j]), n);
    gW[i] = __fadd_rn(gW[i], __fmul_rn(a, W[i]));
}


extern "C" void ct_cck_cuda_cc_free(ct_cck_cuda_cc *w)
{
    if (!w)
        return;
    cudaDeviceSynchronize();
    cudaFree(w->F);
    cudaFree(w->dF);
    cudaFree(w->A);
    cudaFree(w->E);
    cudaFree(w->Xa);
    cudaFree(w->auxacc);
    cudaFree(w->Xh);
    cudaFree(w->G);
    cudaFree(w->mu);
    cudaFree(w->nrm);
    cudaFree(w->nsum);
    cudaFree(w->fsum);
    cudaFree(w->addv);
    cudaFree(w->rowacc);
    cudaFree(w->cnt);
    cudaFree(w->part);
    ct_cck_topk_scratch_free(&w->topk);
    ct_cck_sparse_free(&w->sp);
    free(w->hcnt);
    free(w->hauxacc);
    if (w->blas)
        cublasDestroy(w->blas);
    free(w);
}

extern "C" int ct_cck_cuda_cc_create(int M, int d, int H, int max_batch, ct_cck_cuda_cc **out)
{
    *out = NULL;
    if (M < 1 || d < 1 || H < 1 || max_batch < 1 || (long long)M * d > 0x7fffffffLL)
        return ct_error_set(CT_EINVAL, "cuda crosscoder: bad shape M=%d d=%d H=%d batch=%d", M, d, H, max_batch);
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n < 1) {
        cudaGetLastError();
        return ct_error_set(CT_EUNSUPPORTED, "cuda crosscoder: no CUDA device is available");
    }
    ct_cck_cuda_cc *w = (ct_cck_cuda_cc *)calloc(1, sizeof *w);
    if (!w)
        return ct_error_set(CT_ENOMEM, "cuda crosscoder: out of memory");
    w->M = M;
    w->d = d;
    w->H = H;
    w->D = M * d;
    w->max_batch = max_batch;
    size_t BH = (size_t)max_batch * H, BD = (size_t)max_batch * w->D;
    cudaError_t e = cudaSuccess;
    if (e == cudaSuccess) e = cudaMalloc((void **)&w->F, BH * sizeof(float));
    if (e == cudaSuccess) e = cudaMalloc((void **)&w->dF, BH * sizeof(float));
    if (e == cudaSuccess) e = cudaMalloc((void **)&w->Xh, BD * sizeof(float));
    if (e == cudaSuccess) e = cudaMalloc((void **)&w->G, BD * sizeof(float));
    if (e == cudaSuccess) e = cudaMalloc((void **)&w->mu, (size_t)w->D * sizeof(float));
    if (e == cudaSuccess) e = cudaMalloc((void **)&w->nrm, (size_t)H * M * sizeof(float));
    if (e == cudaSuccess) e = cudaMalloc((void **)&w->nsum, (size_t)H * sizeof(float));
    if (e == cudaSuccess) e = cudaMalloc((void **)&w->fsum, (size_t)H * sizeof(float));
    if (e == cudaSuccess) e = cudaMalloc((void **)&w->addv, (size_t)H * sizeof(float));
    if (e == cudaSuccess) e = cudaMalloc((void **)&w->rowacc, (size_t)max_batch * (2 * M + 1) * sizeof(double));
    if (e == cudaSuccess) e = cudaMalloc((void **)&w->cnt, (size_t)max_batch * sizeof(unsigned long long));
    size_t chunks = ct_cck_row_chunks(max_batch);
    if (e == cudaSuccess) e = cudaMalloc((void **)&w->part, chunks * (size_t)(w->D > H ? w->D : H) * sizeof(float));
    if (e == cudaSuccess) e = ct_cck_topk_scratch_alloc(&w->topk, max_batch, H);
    if (e == cudaSuccess) e = ct_cck_sparse_alloc(&w->sp, max_batch, H);
    if (e != cudaSuccess) {
        cudaGetLastError();
        ct_cck_cuda_cc_free(w);
        return ct_error_set(CT_ENOMEM, "cuda crosscoder: cannot allocate device scratch for batch %d: %s",
                            max_batch, cudaGetErrorString(e));
    }
    w->hcnt = (unsigned long long *)malloc((size_t)max_batch * sizeof *w->hcnt);
    if (!w->hcnt) {
        ct_cck_cuda_cc_free(w);
        return ct_error_set(CT_ENOMEM, "cuda crosscoder: out of memory");
    }
    if (cublasCreate(&w->blas) != CUBLAS_STATUS_SUCCESS) {
        w->blas = NULL;
        ct_cck_cuda_cc_free(w);
        return ct_error_set(CT_EIO, "cuda crosscoder: cannot create a cuBLAS handle");
    }
    /* The default stream, like the other crosscoder kernels; plain fp32 (no TF32) and no
     * atomics inside cuBLAS, so products are fp32-comparable with the CPU and repeatable. */
    if (cublasSetStream(w->blas, 0) != CUBLAS_STATUS_SUCCESS ||
        cublasSetMathMode(w->blas, CUBLAS_DEFAULT_MATH) != CUBLAS_STATUS_SUCCESS ||
        cublasSetAtomicsMode(w->blas, CUBLAS_ATOMICS_NOT_ALLOWED) != CUBLAS_STATUS_SUCCESS) {
        ct_cck_cuda_cc_free(w);
        return ct_error_set(CT_EIO, "cuda crosscoder: cannot configure the cuBLAS handle");
    }
    *out = w;
    return 0;
}

static int check_batch(const ct_cck_cuda_cc *w, int B)
{
    if (B < 1 || B > w->max_batch)
        return ct_error_set(CT_EINVAL, "cuda crosscoder: batch of %d rows outside 1..%d", B, w->max_batch);
    return 0;
}

/* The AuxK buffers, allocated the first time a batch has dead latents. */
static int aux_buffers(ct_cck_cuda_cc *w)
{
    if (w->A)
        return 0;
    size_t BH = (size_t)w->max_batch * w->H, BD = (size_t)w->max_batch * w->D;
    cudaError_t e = cudaMalloc((void **)&w->A, BH * sizeof(float));
    if (e == cudaSuccess) e = cudaMalloc((void **)&w->E, BD * sizeof(float));
    if (e == cudaSuccess) e = cudaMalloc((void **)&w->Xa, BD * sizeof(float));
    if (e == cudaSuccess) e = cudaMalloc((void **)&w->auxacc, 2 * (size_t)w->max_batch * sizeof(double));
    if (e == cudaSuccess && !(w->hauxacc = (double *)malloc(2 * (size_t)w->max_batch * sizeof(double))))
        e = cudaErrorMemoryAllocation;
    if (e != cudaSuccess) {
        cudaGetLastError();
        cudaFree(w->A);
        cudaFree(w->E);
        cudaFree(w->Xa);
        cudaFree(w->auxacc);
        w->A = w->E = w->Xa = NULL;
        w->auxacc = NULL;
        return ct_error_set(CT_ENOMEM, "cuda crosscoder: cannot allocate the AuxK scratch for batch %d: %s",
                            w->max_batch, cudaGetErrorString(e));
    }
    return 0;
}

/* Row-major products through column-major cuBLAS: a row-major [r,c] matrix is the
 * column-major [c,r] one, so C = A·B row-major is Cᵀ = Bᵀ·Aᵀ column-major. */
extern "C" int ct_cck_cuda_cc_forward(ct_cck_cuda_cc *w, const float *params, const float *X, int B,
                                      const ct_cck_cuda_select *sel, ct_cck_cuda_forward_info *info)
{
    int rc = check_batch(w, B);
    if (rc)
        return rc;
    int M = w->M, d = w->d, H = w->H, D = w->D;
    size_t BH = (size_t)B * H, BD = (size_t)B * D, DH = (size_t)D * H;
    const float *W_enc = params, *b_enc = params + DH, *W_dec = b_enc + H, *b_dec = W_dec + DH;
    const float one = 1.0f;
    float min_kept = 0.0f;
    w->aux_ready = 0;
    w->sparse = 0;

    dec_norms_kernel<<<(unsigned)H, L1_THREADS>>>(W_dec, M, d, w->nrm, w->nsum);
    CT_CUDA_TRY(cudaGetLastError());
    /* pre[B,H] = X[B,D] W_enc[D,H] + b_enc */
    fill_rows_kernel<<<blocks_for(BH), L1_THREADS>>>(w->F, b_enc, B, H);
    CT_CUDA_TRY(cudaGetLastError());
    CT_CUBLAS_TRY(cublasSgemm(w->blas, CUBLAS_OP_N, CUBLAS_OP_N, H, B, D, &one, W_enc, H, X, D, &one, w->F, H));
    CT_CUDA_TRY(ct_cck_cuda_launch_relu_count(w->F, B, H, w->cnt));
    if (sel && sel->topk) {
        if (sel->keep_relu)
            CT_CUDA_TRY(cudaMemcpyAsync(w->dF, w->F, BH * sizeof(float), cudaMemcpyDeviceToDevice));
        float mk = 0.0f;
        if (sel->use_threshold)
            rc = ct_cck_cuda_threshold_mask(w->F, w->nsum, B, H, sel->threshold);
        else
            rc = ct_cck_cuda_topk_run(&w->topk, w->F, w->nsum, B, H, sel->K, &mk);
        if (rc)
            return rc;
        min_kept = mk;
        /* Counts only: the selection left F ≥ 0. */
        CT_CUDA_TRY(ct_cck_cuda_launch_relu_count(w->F, B, H, w->cnt));
    }
    if (sel && sel->sparse_below > 0.0f && BH <= (size_t)INT_MAX) {
        size_t nnz;
        if ((rc = ct_cck_sparse_count(&w->sp, w->cnt, B, H, &nnz)))
            return rc;
        w->sparse = (double)nnz < (double)sel->sparse_below * (double)BH;
        if (w->sparse && (rc = ct_cck_sparse_rows(&w->sp, w->F, H)))
            return rc;
    }
    if ((rc = colsum(w, X, B, D, (float)B, w->mu)) || (rc = colsum(w, w->F, B, H, 1.0f, w->fsum)))
        return rc;
    /* x̂[B,D] = f[B,H] W_dec[H,D] + b_dec */
    if (w->sparse) {
        if ((rc = ct_cck_sparse_decode(&w->sp, w->F, H, W_dec, D, b_dec, w->Xh)))
            return rc;
    } else {
        fill_rows_kernel<<<blocks_for(BD), L1_THREADS>>>(w->Xh, b_dec, B, D);
        CT_CUDA_TRY(cudaGetLastError());
        CT_CUBLAS_TRY(cublasSgemm(w->blas, CUBLAS_OP_N, CUBLAS_OP_N, D, B, H, &one, W_dec, D, w->F, H, &one, w->Xh, D));
    }
    row_terms_kernel<<<(unsigned)B, L1_THREADS>>>(X, w->Xh, w->mu, w->G, M, d, 2.0f / (float)B, w->rowacc);
    CT_CUDA_TRY(cudaGetLastError());
    if (info) {
        info->min_kept = min_kept;
        info->sparse = w->sparse;
    }
    return 0;
}

extern "C" int ct_cck_cuda_cc_results(ct_cck_cuda_cc *w, int B, double *rowacc, float *fsum, float *nsum,
                                      size_t *nnz)
{
    int rc = check_batch(w, B);
    if (rc)
        return rc;
    /* Blocking copies: they also wait for the queued work and surface any asynchronous
     * failure. */
    CT_CUDA_TRY(cudaMemcpy(rowacc, w->rowacc, (size_t)B * (2 * w->M + 1) * sizeof(double), cudaMemcpyDeviceToHost));
    CT_CUDA_TRY(cudaMemcpy(fsum, w->fsum, (size_t)w->H * sizeof(float), cudaMemcpyDeviceToHost));
    CT_CUDA_TRY(cudaMemcpy(nsum, w->nsum, (size_t)w->H * sizeof(float), cudaMemcpyDeviceToHost));
    CT_CUDA_TRY(cudaMemcpy(w->hcnt, w->cnt, (size_t)B * sizeof *w->hcnt, cudaMemcpyDeviceToHost));
    size_t total = 0;
    for (int b = 0; b < B; b++)
        total += (size_t)w->hcnt[b];
    *nnz = total;
    return 0;
}

extern "C" int ct_cck_cuda_cc_aux(ct_cck_cuda_cc *w, const float *params, const float *X, int B,
                                  const uint8_t *dead, int kk, double *num, double *den)
{
    int rc = check_batch(w, B);
    if (rc || (rc = aux_buffers(w)))
        return rc;
    int D = w->D, H = w->H;
    size_t BD = (size_t)B * D, DH = (size_t)D * H;
    const float *W_dec = params + DH + H;
    const float one = 1.0f, zero = 0.0f;
    /* dF holds relu(pre) from the forward (keep_relu). */
    if ((rc = ct_cck_cuda_aux_run(&w->topk, w->dF, w->nsum, dead, B, H, kk, w->A)))
        return rc;
    /* ê[B,D] = f_aux[B,H] W_dec[H,D], no bias */
    CT_CUBLAS_TRY(cublasSgemm(w->blas, CUBLAS_OP_N, CUBLAS_OP_N, D, B, H, &one, W_dec, D, w->A, H, &zero, w->Xa, D));
    residual_kernel<<<blocks_for(BD), L1_THREADS>>>(X, w->Xh, BD, w->E);
    CT_CUDA_TRY(cudaGetLastError());
    /* mu now holds mean_batch(e): the forward's row terms are done with the mean of X. */
    if ((rc = colsum(w, w->E, B, D, (float)B, w->mu)))
        return rc;
    aux_row_kernel<<<(unsigned)B, L1_THREADS>>>(w->Xa, w->E, w->mu, D, w->auxacc);
    CT_CUDA_TRY(cudaGetLastError());
    CT_CUDA_TRY(cudaMemcpy(w->hauxacc, w->auxacc, 2 * (size_t)B * sizeof(double), cudaMemcpyDeviceToHost));
    double n = 0.0, e = 0.0;
    for (int b = 0; b < B; b++) { /* row order, as on the CPU */
        n += w->hauxacc[2 * b];
        e += w->hauxacc[2 * b + 1];
    }
    *num = n;
    *den = e;
    w->aux_ready = 1;
    return 0;
}

extern "C" int ct_cck_cuda_cc_backward(ct_cck_cuda_cc *w, const float *params, const float *X, int B, float lambda,
                                       float aux_scale, float *grad)
{
    int rc = check_batch(w, B);
    if (rc)
        return rc;
    if (aux_scale != 0.0f && !w->aux_ready)
        return ct_error_set(CT_EINVAL, "cuda crosscoder: an AuxK gradient needs ct_cck_cuda_cc_aux first");
    int M = w->M, d = w->d, H = w->H, D = w->D;
    size_t BH = (size_t)B * H, BD = (size_t)B * D, DH = (size_t)D * H;
    const float *W_dec = params + DH + H;
    float *gW_enc = grad, *gb_enc = grad + DH, *gW_dec = gb_enc + H, *gb_dec = gW_dec + DH;
    const float one = 1.0f, zero = 0.0f;

    l1_add_kernel<<<blocks_for((size_t)H), L1_THREADS>>>(w->nsum, lambda, (float)B, H, w->addv);
    CT_CUDA_TRY(cudaGetLastError());
    const float *addv = lambda != 0.0f ? w->addv : NULL;
    if (w->sparse) {
        if (w->sp.B != B)
            return ct_error_set(CT_EINVAL, "cuda crosscoder: backward of %d rows after a forward of %d", B, w->sp.B);
        /* ∂pre at the active entries; then gW_enc as its transpose [H,D] = ∂preᵀ X, built
         * in gW_dec's memory before gW_dec[H,D] = fᵀ G takes it. */
        if ((rc = ct_cck_sparse_active_dot(&w->sp, w->G, W_dec, D, addv, H, w->dF)) ||
            (!w->sp.have_cols && (rc = ct_cck_sparse_cols(&w->sp, w->F, H))) ||
            (rc = ct_cck_sparse_latent_product(&w->sp, w->dF, H, X, D, gW_dec)) ||
            (rc = ct_cck_cuda_transpose(gW_dec, H, D, gW_enc)) ||
            (rc = ct_cck_sparse_latent_product(&w->sp, w->F, H, w->G, D, gW_dec)))
            return rc;
    } else {
        /* ∂f[B,H] = G[B,D] W_dec[H,D]ᵀ */
        CT_CUBLAS_TRY(cublasSgemm(w->blas, CUBLAS_OP_T, CUBLAS_OP_N, H, B, D, &one, W_dec, D, w->G, D, &zero, w->dF, H));
        mask_kernel<<<blocks_for(BH), L1_THREADS>>>(w->dF, w->F, addv, B, H);
        CT_CUDA_TRY(cudaGetLastError());
        /* gW_dec[H,D] = fᵀ G;  gW_enc[D,H] = Xᵀ ∂pre */
        CT_CUBLAS_TRY(cublasSgemm(w->blas, CUBLAS_OP_N, CUBLAS_OP_T, D, H, B, &one, w->G, D, w->F, H, &zero, gW_dec, D));
        CT_CUBLAS_TRY(cublasSgemm(w->blas, CUBLAS_OP_N, CUBLAS_OP_T, H, D, B, &one, w->dF, H, X, D, &zero, gW_enc, H));
    }
    if ((rc = colsum(w, w->dF, B, H, 1.0f, gb_enc)) || (rc = colsum(w, w->G, B, D, 1.0f, gb_dec)))
        return rc;
    if (lambda != 0.0f) {
        l1_dec_grad_kernel<<<blocks_for(DH), L1_THREADS>>>(gW_dec, W_dec, w->fsum, w->nrm, H, M, d,
                                                          lambda / (float)B);
        CT_CUDA_TRY(cudaGetLastError());
    }
    if (aux_scale != 0.0f) {
        /* E becomes the AuxK gradient with respect to ê; it reaches W_dec through f_aux
         * and W_enc, b_enc through the chosen entries of pre. */
        aux_grad_kernel<<<blocks_for(BD), L1_THREADS>>>(w->Xa, aux_scale, BD, w->E);
        CT_CUDA_TRY(cudaGetLastError());
        CT_CUBLAS_TRY(cublasSgemm(w->blas, CUBLAS_OP_N, CUBLAS_OP_T, D, H, B, &one, w->E, D, w->A, H, &one, gW_dec, D));
        CT_CUBLAS_TRY(cublasSgemm(w->blas, CUBLAS_OP_T, CUBLAS_OP_N, H, B, D, &one, W_dec, D, w->E, D, &zero, w->dF, H));
        mask_kernel<<<blocks_for(BH), L1_THREADS>>>(w->dF, w->A, NULL, B, H);
        CT_CUDA_TRY(cudaGetLastError());
        CT_CUBLAS_TRY(cublasSgemm(w->blas, CUBLAS_OP_N, CUBLAS_OP_T, H, D, B, &one, w->dF, H, X, D, &one, gW_enc, H));
        if ((rc = colsum_to(w, w->dF, B, H, 1.0f, 1, gb_enc)))
            return rc;
    }
    w->aux_ready = 0; /* E now holds a gradient */
    return 0;
}

extern "C" int ct_cck_cuda_cc_activations(ct_cck_cuda_cc *w, int B, float *f, float *f_aux)
{
    int rc = check_batch(w, B);
    if (rc)
        return rc;
    size_t bytes = (size_t)B * w->H * sizeof(float);
    if (f)
        CT_CUDA_TRY(cudaMemcpy(f, w->F, bytes, cudaMemcpyDeviceToHost));
    if (f_aux) {
        if (!w->A)
            return ct_error_set(CT_EINVAL, "cuda crosscoder: no AuxK activations have been computed");
        CT_CUDA_TRY(cudaMemcpy(f_aux, w->A, bytes, cudaMemcpyDeviceToHost));
    }
    return 0;
}

extern "C" int ct_cck_cuda_batch_topk(ct_cck_cuda_cc *w, float *F, const float *ns, int B, size_t K, float *min_kept)
{
    int rc = check_batch(w, B);
    if (!rc)
        rc = ct_cck_cuda_topk_run(&w->topk, F, ns, B, w->H, K, min_kept);
    if (!rc)
        CT_CUDA_TRY(cudaDeviceSynchronize());
    return rc;
}

extern "C" int ct_cck_cuda_aux_select(ct_cck_cuda_cc *w, const float *R, const float *ns, const uint8_t *dead, int B,
                                      int kk, float *A)
{
    int rc = check_batch(w, B);
    if (!rc)
        rc = ct_cck_cuda_aux_run(&w->topk, R, ns, dead, B, w->H, kk, A);
    if (!rc)
        CT_CUDA_TRY(cudaDeviceSynchronize());
    return rc;
}

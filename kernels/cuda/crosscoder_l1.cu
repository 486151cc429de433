/* Dense forward and backward of the L1 crosscoder loss on the GPU: cuBLAS SGEMM for the
 * five [B,D,H] products and own kernels for the rest, mirroring crosscoder/loss.c's dense
 * path operation for operation (see the formulas there).
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

#include <stdlib.h>

#define L1_THREADS 256

struct ct_cck_cuda_l1 {
    int M, d, H, D, max_batch;
    cublasHandle_t blas;
    float *F, *dF;            /* [B,H] */
    float *Xh, *G;            /* [B,D] */
    float *mu;                /* [D] */
    float *nrm, *nsum, *fsum, *addv; /* [H*M], [H], [H], [H] */
    double *rowacc;           /* [B*(2M+1)] */
    float *part;              /* [ceil(B/COLSUM_ROWS) * max(D,H)] column-sum chunks */
    unsigned long long *cnt;  /* [B] */
    unsigned long long *hcnt; /* host [B] */
};

static unsigned blocks_for(size_t n) { return (unsigned)((n + L1_THREADS - 1) / L1_THREADS); }

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
 * only: part[c,j] sums rows [c·COLSUM_ROWS, (c+1)·COLSUM_ROWS) in order, then the chunk
 * sums are added in chunk order. One pass of a thread per column over all B rows would
 * leave most of the GPU idle at N of a few thousand. */
#define COLSUM_ROWS 64

__global__ static void colsum_part_kernel(const float *A, int B, int N, float *part)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= N)
        return;
    int b0 = blockIdx.y * COLSUM_ROWS, b1 = b0 + COLSUM_ROWS < B ? b0 + COLSUM_ROWS : B;
    float s = 0.0f;
    for (int b = b0; b < b1; b++)
        s = __fadd_rn(s, A[(size_t)b * N + j]);
    part[(size_t)blockIdx.y * N + j] = s;
}

/* out[j] = (Σ_c part[c,j]) / div; dividing by 1 is exact. */
__global__ static void colsum_finish_kernel(const float *part, int chunks, int N, float div, float *out)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= N)
        return;
    float s = 0.0f;
    for (int c = 0; c < chunks; c++)
        s = __fadd_rn(s, part[(size_t)c * N + j]);
    out[j] = __fdiv_rn(s, div);
}

static int colsum(ct_cck_cuda_l1 *w, const float *A, int B, int N, float div, float *out)
{
    int chunks = (B + COLSUM_ROWS - 1) / COLSUM_ROWS;
    colsum_part_kernel<<<dim3(blocks_for((size_t)N), (unsigned)chunks), L1_THREADS>>>(A, B, N, w->part);
    CT_CUDA_TRY(cudaGetLastError());
    colsum_finish_kernel<<<blocks_for((size_t)N), L1_THREADS>>>(w->part, chunks, N, div, out);
    CT_CUDA_TRY(cudaGetLastError());
    return 0;
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

/* ∂/∂pre: the gradient of f where the latent is active (ReLU'(0) = 0), zero elsewhere. */
__global__ static void mask_kernel(float *dF, const float *F, const float *addv, int B, int H)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < (size_t)B * H)
        dF[i] = F[i] > 0.0f ? __fadd_rn(dF[i], addv[i % (size_t)H]) : 0.0f;
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

extern "C" void ct_cck_cuda_l1_free(ct_cck_cuda_l1 *w)
{
    if (!w)
        return;
    cudaDeviceSynchronize();
    cudaFree(w->F);
    cudaFree(w->dF);
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
    free(w->hcnt);
    if (w->blas)
        cublasDestroy(w->blas);
    free(w);
}

extern "C" int ct_cck_cuda_l1_create(int M, int d, int H, int max_batch, ct_cck_cuda_l1 **out)
{
    *out = NULL;
    if (M < 1 || d < 1 || H < 1 || max_batch < 1 || (long long)M * d > 0x7fffffffLL)
        return ct_error_set(CT_EINVAL, "cuda crosscoder: bad shape M=%d d=%d H=%d batch=%d", M, d, H, max_batch);
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n < 1) {
        cudaGetLastError();
        return ct_error_set(CT_EUNSUPPORTED, "cuda crosscoder: no CUDA device is available");
    }
    ct_cck_cuda_l1 *w = (ct_cck_cuda_l1 *)calloc(1, sizeof *w);
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
    size_t chunks = ((size_t)max_batch + COLSUM_ROWS - 1) / COLSUM_ROWS;
    if (e == cudaSuccess) e = cudaMalloc((void **)&w->part, chunks * (size_t)(w->D > H ? w->D : H) * sizeof(float));
    if (e != cudaSuccess) {
        cudaGetLastError();
        ct_cck_cuda_l1_free(w);
        return ct_error_set(CT_ENOMEM, "cuda crosscoder: cannot allocate device scratch for batch %d: %s",
                            max_batch, cudaGetErrorString(e));
    }
    w->hcnt = (unsigned long long *)malloc((size_t)max_batch * sizeof *w->hcnt);
    if (!w->hcnt) {
        ct_cck_cuda_l1_free(w);
        return ct_error_set(CT_ENOMEM, "cuda crosscoder: out of memory");
    }
    if (cublasCreate(&w->blas) != CUBLAS_STATUS_SUCCESS) {
        w->blas = NULL;
        ct_cck_cuda_l1_free(w);
        return ct_error_set(CT_EIO, "cuda crosscoder: cannot create a cuBLAS handle");
    }
    /* The default stream, like the other crosscoder kernels; plain fp32 (no TF32) and no
     * atomics inside cuBLAS, so products are fp32-comparable with the CPU and repeatable. */
    if (cublasSetStream(w->blas, 0) != CUBLAS_STATUS_SUCCESS ||
        cublasSetMathMode(w->blas, CUBLAS_DEFAULT_MATH) != CUBLAS_STATUS_SUCCESS ||
        cublasSetAtomicsMode(w->blas, CUBLAS_ATOMICS_NOT_ALLOWED) != CUBLAS_STATUS_SUCCESS) {
        ct_cck_cuda_l1_free(w);
        return ct_error_set(CT_EIO, "cuda crosscoder: cannot configure the cuBLAS handle");
    }
    *out = w;
    return 0;
}

/* Row-major products through column-major cuBLAS: a row-major [r,c] matrix is the
 * column-major [c,r] one, so C = A·B row-major is Cᵀ = Bᵀ·Aᵀ column-major. */
extern "C" int ct_cck_cuda_l1_fwbw(ct_cck_cuda_l1 *w, const float *params, const float *X, int B, float lambda,
                                   float *grad, double *rowacc, float *fsum, float *nsum, size_t *nnz)
{
    if (B < 1 || B > w->max_batch)
        return ct_error_set(CT_EINVAL, "cuda crosscoder: batch of %d rows outside 1..%d", B, w->max_batch);
    int M = w->M, d = w->d, H = w->H, D = w->D;
    size_t BH = (size_t)B * H, BD = (size_t)B * D, DH = (size_t)D * H;
    const float *W_enc = params, *b_enc = params + DH, *W_dec = b_enc + H, *b_dec = W_dec + DH;
    const float one = 1.0f, zero = 0.0f;

    dec_norms_kernel<<<(unsigned)H, L1_THREADS>>>(W_dec, M, d, w->nrm, w->nsum);
    CT_CUDA_TRY(cudaGetLastError());
    /* pre[B,H] = X[B,D] W_enc[D,H] + b_enc */
    fill_rows_kernel<<<blocks_for(BH), L1_THREADS>>>(w->F, b_enc, B, H);
    CT_CUDA_TRY(cudaGetLastError());
    CT_CUBLAS_TRY(cublasSgemm(w->blas, CUBLAS_OP_N, CUBLAS_OP_N, H, B, D, &one, W_enc, H, X, D, &one, w->F, H));
    CT_CUDA_TRY(ct_cck_cuda_launch_relu_count(w->F, B, H, w->cnt));
    int rc;
    if ((rc = colsum(w, X, B, D, (float)B, w->mu)) || (rc = colsum(w, w->F, B, H, 1.0f, w->fsum)))
        return rc;
    /* x̂[B,D] = f[B,H] W_dec[H,D] + b_dec */
    fill_rows_kernel<<<blocks_for(BD), L1_THREADS>>>(w->Xh, b_dec, B, D);
    CT_CUDA_TRY(cudaGetLastError());
    CT_CUBLAS_TRY(cublasSgemm(w->blas, CUBLAS_OP_N, CUBLAS_OP_N, D, B, H, &one, W_dec, D, w->F, H, &one, w->Xh, D));
    row_terms_kernel<<<(unsigned)B, L1_THREADS>>>(X, w->Xh, w->mu, w->G, M, d, 2.0f / (float)B, w->rowacc);
    CT_CUDA_TRY(cudaGetLastError());

    if (grad) {
        float *gW_enc = grad, *gb_enc = grad + DH, *gW_dec = gb_enc + H, *gb_dec = gW_dec + DH;
        l1_add_kernel<<<blocks_for((size_t)H), L1_THREADS>>>(w->nsum, lambda, (float)B, H, w->addv);
        CT_CUDA_TRY(cudaGetLastError());
        /* ∂f[B,H] = G[B,D] W_dec[H,D]ᵀ */
        CT_CUBLAS_TRY(cublasSgemm(w->blas, CUBLAS_OP_T, CUBLAS_OP_N, H, B, D, &one, W_dec, D, w->G, D, &zero, w->dF, H));
        mask_kernel<<<blocks_for(BH), L1_THREADS>>>(w->dF, w->F, w->addv, B, H);
        CT_CUDA_TRY(cudaGetLastError());
        /* gW_dec[H,D] = fᵀ G;  gW_enc[D,H] = Xᵀ ∂pre */
        CT_CUBLAS_TRY(cublasSgemm(w->blas, CUBLAS_OP_N, CUBLAS_OP_T, D, H, B, &one, w->G, D, w->F, H, &zero, gW_dec, D));
        CT_CUBLAS_TRY(cublasSgemm(w->blas, CUBLAS_OP_N, CUBLAS_OP_T, H, D, B, &one, w->dF, H, X, D, &zero, gW_enc, H));
        if ((rc = colsum(w, w->dF, B, H, 1.0f, gb_enc)) || (rc = colsum(w, w->G, B, D, 1.0f, gb_dec)))
            return rc;
        if (lambda != 0.0f) {
            l1_dec_grad_kernel<<<blocks_for(DH), L1_THREADS>>>(gW_dec, W_dec, w->fsum, w->nrm, H, M, d,
                                                              lambda / (float)B);
            CT_CUDA_TRY(cudaGetLastError());
        }
    }
    /* The host finishes the losses from these (blocking copies: they also wait for the
     * work above and surface any asynchronous failure). */
    CT_CUDA_TRY(cudaMemcpy(rowacc, w->rowacc, (size_t)B * (2 * M + 1) * sizeof(double), cudaMemcpyDeviceToHost));
    CT_CUDA_TRY(cudaMemcpy(fsum, w->fsum, (size_t)H * sizeof(float), cudaMemcpyDeviceToHost));
    CT_CUDA_TRY(cudaMemcpy(nsum, w->nsum, (size_t)H * sizeof(float), cudaMemcpyDeviceToHost));
    CT_CUDA_TRY(cudaMemcpy(w->hcnt, w->cnt, (size_t)B * sizeof *w->hcnt, cudaMemcpyDeviceToHost));
    size_t total = 0;
    for (int b = 0; b < B; b++)
        total += (size_t)w->hcnt[b];
    *nnz = total;
    return 0;
}

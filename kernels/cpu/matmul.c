/* Linear layers on the CPU: OpenBLAS SGEMM and bias sums in a fixed row order.
 *
 * A product is cut into blocks of output rows or columns whose sizes depend only on
 * the shapes, and OpenMP threads take the blocks, each running a single-threaded SGEMM
 * (OpenBLAS is held at one thread meanwhile). So every block is computed the same way
 * whatever the thread count (OpenBLAS picks different kernels for different block
 * shapes, so the cut itself must not depend on the threads), and one thread pool
 * serves every op instead of OpenBLAS's workers and OpenMP's competing for cores. */
#include "kernels/backend.h"
#include "kernels/cpu/blas_threads.h"

#include <cblas.h>

/* Block size along the split dimension, a function of that dimension alone: blocks of
 * 512 rows or 1024+ columns run single-threaded SGEMM within 5% of its peak here. */
static int block_of(int dim)
{
    return dim >= 16384 ? 1024 : dim >= 2048 ? 512 : dim >= 512 ? 256 : 64;
}

/* C[M,N] = op(A)·op(B) + beta·C, split over M or N (whichever is larger). */
static void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K, const float *A,
                 int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    int split_m = M >= N, dim = split_m ? M : N, bs = block_of(dim);
    int parts = (dim + bs - 1) / bs;
    int saved = ct_blas_single_begin();
#pragma omp parallel for schedule(dynamic, 1) if (parts > 1)
    for (int p = 0; p < parts; p++) {
        int b = p * bs, n = dim - b < bs ? dim - b : bs;
        if (split_m)
            cblas_sgemm(CblasRowMajor, ta, tb, n, N, K, 1.0f,
                        A + (size_t)b * (ta == CblasNoTrans ? lda : 1), lda, B, ldb, beta,
                        C + (size_t)b * ldc, ldc);
        else
            cblas_sgemm(CblasRowMajor, ta, tb, M, n, K, 1.0f, A, lda,
                        B + (size_t)b * (tb == CblasNoTrans ? 1 : ldb), ldb, beta, C + b, ldc);
    }
    ct_blas_single_end(saved);
}

int ct_kcpu_matmul_fwd(float *out, const float *inp, const float *w, const float *bias, int N,
                       int C, int OC, int accumulate)
{
    if (N <= 0 || OC <= 0)
        return 0;
    if (bias && !accumulate) {
        /* Start from the bias and accumulate: saves SGEMM's own pass zeroing C. */
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++) {
            float *o = out + (size_t)n * OC;
            for (int j = 0; j < OC; j++)
                o[j] = bias[j];
        }
        gemm(CblasNoTrans, CblasTrans, N, OC, C, inp, C, w, C, 1.0f, out, OC);
        return 0;
    }
    gemm(CblasNoTrans, CblasTrans, N, OC, C, inp, C, w, C, accumulate ? 1.0f : 0.0f, out, OC);
    if (bias) {
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++) {
            float *o = out + (size_t)n * OC;
            for (int j = 0; j < OC; j++)
                o[j] += bias[j];
        }
    }
    return 0;
}

int ct_kcpu_matmul_bwd(float *dinp, float *dw, float *dbias, const float *dout,
                       const float *inp, const float *w, int N, int C, int OC, int accumulate)
{
    if (N <= 0)
        return 0;
    if (dinp)
        gemm(CblasNoTrans, CblasNoTrans, N, C, OC, dout, OC, w, C, accumulate ? 1.0f : 0.0f, dinp,
             C);
    if (dw)
        gemm(CblasTrans, CblasNoTrans, OC, C, N, dout, OC, inp, C, 1.0f, dw, C);
    if (dbias) {
        /* Column blocks per thread, rows summed in order: independent of thread count. */
        int nb = (OC + 63) / 64;
#pragma omp parallel for schedule(static)
        for (int bi = 0; bi < nb; bi++) {
            int j0 = bi * 64, j1 = j0 + 64 < OC ? j0 + 64 : OC;
            float acc[64] = {0};
            for (int n = 0; n < N; n++) {
                const float *d = dout + (size_t)n * OC;
                for (int j = j0; j < j1; j++)
                    acc[j - j0] += d[j];
            }
            for (int j = j0; j < j1; j++)
                dbias[j] += acc[j - j0];
        }
    }
    return 0;
}

/* Linear layers with cuBLAS (row-major via the transposed column-major problem) and
 * bias kernels with a fixed summation order. */
#include "kernels/cuda/cuda_common.cuh"

__global__ static void add_bias(float *out, const float *bias, size_t N, int OC)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < N * OC)
        out[i] += bias[i % OC];
}

/* One thread per column sums the rows in order. */
__global__ static void col_sum_add(float *dst, const float *src, int N, int OC)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= OC)
        return;
    float s = 0.0f;
    for (int n = 0; n < N; n++)
        s += src[(size_t)n * OC + j];
    dst[j] += s;
}

extern "C" int ct_kcuda_matmul_fwd(ct_kcuda *c, float *out, const float *inp, const float *w,
                                   const float *bias, int N, int C, int OC, int accumulate)
{
    if (N <= 0 || OC <= 0)
        return 0;
    const float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    CT_CUBLAS_TRY(cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, &one, w, C, inp, C,
                              &beta, out, OC));
    if (bias) {
        size_t n = (size_t)N * OC;
        add_bias<<<ct_cuda_blocks(n, 256), 256, 0, c->stream>>>(out, bias, (size_t)N, OC);
        CT_CUDA_LAUNCHED();
    }
    return 0;
}

extern "C" int ct_kcuda_matmul_bwd(ct_kcuda *c, float *dinp, float *dw, float *dbias,
                                   const float *dout, const float *inp, const float *w, int N,
                                   int C, int OC, int accumulate)
{
    if (N <= 0)
        return 0;
    const float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    if (dinp)
        CT_CUBLAS_TRY(cublasSgemm(c->blas, CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC, &one, w, C, dout,
                                  OC, &beta, dinp, C));
    if (dw)
        CT_CUBLAS_TRY(cublasSgemm(c->blas, CUBLAS_OP_N, CUBLAS_OP_T, C, OC, N, &one, inp, C, dout,
                                  OC, &one, dw, C));
    if (dbias) {
        col_sum_add<<<ct_cuda_blocks((size_t)OC, 256), 256, 0, c->stream>>>(dbias, dout, N, OC);
        CT_CUDA_LAUNCHED();
    }
    return 0;
}

/* Shared state and helpers of the CUDA backend (internal to kernels/cuda/). */
#ifndef CT_KERNELS_CUDA_COMMON_CUH
#define CT_KERNELS_CUDA_COMMON_CUH

extern "C" {
#include "common/error.h"
}
#include "kernels/backend.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

struct ct_kcuda {
    cublasHandle_t blas;
    cudaStream_t stream;
    /* private scratch, grown on demand (attention probabilities and permutes) */
    void *scratch[3];
    size_t scratch_bytes[3];
};

#define CT_CUDA_TRY(call)                                                                    \
    do {                                                                                     \
        cudaError_t e_ = (call);                                                             \
        if (e_ != cudaSuccess)                                                               \
            return ct_error_set(CT_EIO, "cuda: %s: %s", #call, cudaGetErrorString(e_));        \
    } while (0)

#define CT_CUBLAS_TRY(call)                                                                  \
    do {                                                                                     \
        cublasStatus_t s_ = (call);                                                          \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                     \
            return ct_error_set(CT_EIO, "cublas: %s failed with status %d", #call, (int)s_);   \
    } while (0)

/* After a kernel launch: reports a bad launch configuration at once. */
#define CT_CUDA_LAUNCHED() CT_CUDA_TRY(cudaGetLastError())

static inline unsigned ct_cuda_blocks(size_t n, unsigned threads)
{
    return (unsigned)((n + threads - 1) / threads);
}

/* Scratch buffer `i` of at least `bytes`, owned by the context. */
int ct_kcuda_scratch(ct_kcuda *c, int i, size_t bytes, void **out);

__device__ static inline float ct_warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ static inline float ct_warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

#endif

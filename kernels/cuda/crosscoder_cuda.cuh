/* Launchers shared between the crosscoder's CUDA files (internal to kernels/cuda/). */
#ifndef CT_KERNELS_CUDA_CROSSCODER_CUH
#define CT_KERNELS_CUDA_CROSSCODER_CUH

#include <cuda_runtime.h>

/* Fixed-order tree sum over a block: each of the n threads (n == blockDim.x, a power of
 * two) has written its value to sh[threadIdx.x]; afterwards sh[0] holds the total, summed
 * in an order that depends on n only. Every thread of the block must call it. */
template <typename T> __device__ static inline void ct_cck_block_sum(T *sh, int n)
{
    __syncthreads();
    for (int s = n / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s)
            sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
}

/* In place F = relu(F) over [B,H] on the default stream; count[b] (device) receives the
 * number of positives of row b. Reports the launch status. */
cudaError_t ct_cck_cuda_launch_relu_count(float *F, int B, int H, unsigned long long *count);

#endif

/* Launchers shared between the crosscoder's CUDA files (internal to kernels/cuda/). */
#ifndef CT_KERNELS_CUDA_CROSSCODER_CUH
#define CT_KERNELS_CUDA_CROSSCODER_CUH

#include <cuda_runtime.h>
#include <stdint.h>

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

/* Scratch of the BatchTopK selections (kernels/cuda/crosscoder_topk.cu), owned by the
 * training handle: a radix histogram on the device and its host copy, per-row tie
 * counts, and the dead-latent mask of AuxK. */
#define CT_CCK_CUDA_TOPK_BINS 2048
#define CT_CCK_CUDA_TOPK_PASSES 3
/* Radix digit p of a score's bits u is (u >> shift(p)) & mask(p): 11, 11 and 10 bits,
 * so that a histogram fits shared memory. */
__host__ __device__ static inline int ct_cck_cuda_topk_shift(int p) { return p == 0 ? 21 : p == 1 ? 10 : 0; }
__host__ __device__ static inline uint32_t ct_cck_cuda_topk_mask(int p) { return p < 2 ? 2047u : 1023u; }

struct ct_cck_topk_scratch {
    unsigned *hist;               /* device [CT_CCK_CUDA_TOPK_BINS] */
    unsigned *hhist;              /* host, same */
    unsigned long long *rowties;  /* device [max_batch] */
    unsigned long long *hrowties; /* host, same */
    unsigned char *dead;          /* device [H] */
};
cudaError_t ct_cck_topk_scratch_alloc(ct_cck_topk_scratch *s, int max_batch, int H);
void ct_cck_topk_scratch_free(ct_cck_topk_scratch *s);

/* ct_cck_batch_topk on the device (F, ns device [B,H], [H]); returns 0 or an error code
 * with the message set. */
int ct_cck_cuda_topk_run(const ct_cck_topk_scratch *s, float *F, const float *ns, int B, int H, size_t K,
                         float *min_kept);
/* ct_cck_aux_select on the device, writing the chosen entries of R into A[B,H] densely
 * (zero elsewhere); dead is host [H]. */
int ct_cck_cuda_aux_run(const ct_cck_topk_scratch *s, const float *R, const float *ns, const uint8_t *dead,
                        int B, int H, int kk, float *A);

#endif

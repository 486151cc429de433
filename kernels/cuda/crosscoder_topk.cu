/* The BatchTopK selections on the GPU: batch-wide top-K, the inference threshold and
 * AuxK's per-row choice among dead latents. They pick exactly the entries the CPU
 * references in kernels/cpu/crosscoder_topk.c pick (see there for the method):
 *
 * - Batch top-K: three radix passes over the score bits (11, 11 and 10 bits, where the
 *   CPU uses two of 16: the digits do not change the answer), each a histogram built in
 *   shared memory per block and added into a global one with integer atomics (exact in
 *   any order); the host reads the 2048 bins and picks the next digit with the same
 *   ct_cck_topk_bin as the CPU. Ties at the threshold are kept in
 *   row-major order: when some but not all of them are kept, per-row tie counts give each
 *   row its offset and a ballot scan orders the ties inside a row.
 * - AuxK: one block per row does the same radix selection in shared memory, ties going to
 *   the lower latent, and writes the chosen activations densely.
 *
 * Scores are one rounded product f·n (__fmul_rn), as on the CPU. */
extern "C" {
#include "common/error.h"
#include "kernels/topk_bin.h"
}
#include "kernels/cuda/crosscoder_cuda.cuh"
#include "kernels/cuda/cuda_common.cuh"

#include <stdlib.h>
#include <string.h>

#define TOPK_THREADS 256 /* a power of two and a multiple of the warp */
#define TOPK_MAX_GRID 1024

cudaError_t ct_cck_topk_scratch_alloc(ct_cck_topk_scratch *s, int max_batch, int H)
{
    memset(s, 0, sizeof *s);
    cudaError_t e = cudaMalloc((void **)&s->hist, CT_CCK_CUDA_TOPK_BINS * sizeof(unsigned));
    if (e == cudaSuccess)
        e = cudaMallocHost((void **)&s->hhist, CT_CCK_CUDA_TOPK_BINS * sizeof(unsigned));
    if (e == cudaSuccess)
        e = cudaMalloc((void **)&s->rowties, (size_t)max_batch * sizeof(unsigned long long));
    if (e == cudaSuccess)
        e = cudaMallocHost((void **)&s->hrowties, (size_t)max_batch * sizeof(unsigned long long));
    if (e == cudaSuccess)
        e = cudaMalloc((void **)&s->dead, (size_t)H);
    return e;
}

void ct_cck_topk_scratch_free(ct_cck_topk_scratch *s)
{
    cudaFree(s->hist);
    cudaFreeHost(s->hhist);
    cudaFree(s->rowties);
    cudaFreeHost(s->hrowties);
    cudaFree(s->dead);
    memset(s, 0, sizeof *s);
}

/* hist[digit] += the positive scores whose bits match (bits & mmask) == mval. */
__global__ static void topk_hist_kernel(const float *F, const float *ns, int B, int H, unsigned mmask,
                                        unsigned mval, int shift, unsigned dmask, unsigned *hist)
{
    __shared__ unsigned sh[CT_CCK_CUDA_TOPK_BINS];
    for (int i = threadIdx.x; i < CT_CCK_CUDA_TOPK_BINS; i += blockDim.x)
        sh[i] = 0;
    __syncthreads();
    for (int b = blockIdx.x; b < B; b += gridDim.x) {
        const float *r = F + (size_t)b * H;
        for (int j = threadIdx.x; j < H; j += blockDim.x) {
            float s = __fmul_rn(r[j], ns[j]);
            unsigned u = __float_as_uint(s);
            if (s > 0.0f && (u & mmask) == mval)
                atomicAdd(&sh[(u >> shift) & dmask], 1u);
        }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < CT_CCK_CUDA_TOPK_BINS; i += blockDim.x)
        if (sh[i])
            atomicAdd(&hist[i], sh[i]);
}

/* rowties[b] = the scores of row b equal to tval. */
__global__ static void tie_count_kernel(const float *F, const float *ns, int H, float tval,
                                        unsigned long long *rowties)
{
    __shared__ unsigned long long sh[TOPK_THREADS];
    const float *r = F + (size_t)blockIdx.x * H;
    unsigned long long c = 0;
    for (int j = threadIdx.x; j < H; j += blockDim.x)
        c += __fmul_rn(r[j], ns[j]) == tval;
    sh[threadIdx.x] = c;
    ct_cck_block_sum(sh, TOPK_THREADS);
    if (threadIdx.x == 0)
        rowties[blockIdx.x] = sh[0];
}

/* Keeps scores > tval and the ties numbered below ties_keep in row-major order
 * (tiebase[b] = the ties of the rows before b); every tie when tiebase is NULL. */
__global__ static void topk_mask_kernel(float *F, const float *ns, int H, float tval,
                                        const unsigned long long *tiebase, unsigned long long ties_keep)
{
    __shared__ unsigned wcount[TOPK_THREADS / 32];
    __shared__ unsigned long long base;
    float *r = F + (size_t)blockIdx.x * H;
    if (threadIdx.x == 0)
        base = tiebase ? tiebase[blockIdx.x] : 0;
    __syncthreads();
    for (int j0 = 0; j0 < H; j0 += TOPK_THREADS) {
        int j = j0 + threadIdx.x;
        float s = j < H ? __fmul_rn(r[j], ns[j]) : 0.0f;
        int tie = j < H && s == tval;
        unsigned long long idx = ct_cck_ordered_index(tie, &base, wcount);
        if (j < H && !(s > tval || (tie && (!tiebase || idx < ties_keep))))
            r[j] = 0.0f;
    }
}

__global__ static void threshold_kernel(float *F, const float *ns, int B, int H, float threshold)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < (size_t)B * H && !(__fmul_rn(F[i], ns[i % (size_t)H]) > threshold))
        F[i] = 0.0f;
}

extern "C" int ct_cck_cuda_threshold_mask(float *F, const float *ns, int B, int H, float threshold)
{
    size_t n = (size_t)B * H;
    if (n == 0)
        return 0;
    threshold_kernel<<<ct_cuda_blocks(n, TOPK_THREADS), TOPK_THREADS>>>(F, ns, B, H, threshold);
    CT_CUDA_LAUNCHED();
    return 0;
}

/* One radix pass of the batch selection: the histogram of digit p among the scores
 * matching the digits found so far, copied to the host. */
static int hist_pass(const ct_cck_topk_scratch *s, const float *F, const float *ns, int B, int H,
                     unsigned mmask, unsigned mval, int p)
{
    CT_CUDA_TRY(cudaMemsetAsync(s->hist, 0, CT_CCK_CUDA_TOPK_BINS * sizeof(unsigned)));
    unsigned grid = B < TOPK_MAX_GRID ? (unsigned)B : TOPK_MAX_GRID;
    topk_hist_kernel<<<grid, TOPK_THREADS>>>(F, ns, B, H, mmask, mval, ct_cck_cuda_topk_shift(p), ct_cck_cuda_topk_mask(p),
                                             s->hist);
    CT_CUDA_LAUNCHED();
    CT_CUDA_TRY(cudaMemcpy(s->hhist, s->hist, CT_CCK_CUDA_TOPK_BINS * sizeof(unsigned), cudaMemcpyDeviceToHost));
    return 0;
}

int ct_cck_cuda_topk_run(const ct_cck_topk_scratch *s, float *F, const float *ns, int B, int H, size_t K,
                         float *min_kept)
{
    *min_kept = 0.0f;
    if (B < 1 || H < 1)
        return 0;
    int rc = hist_pass(s, F, ns, B, H, 0u, 0u, 0);
    if (rc)
        return rc;
    size_t npos = 0;
    for (int i = 0; i < CT_CCK_CUDA_TOPK_BINS; i++)
        npos += s->hhist[i];
    if (K > npos)
        K = npos;
    if (K == 0) {
        CT_CUDA_TRY(cudaMemsetAsync(F, 0, (size_t)B * H * sizeof(float)));
        return 0;
    }
    unsigned mmask = 0, mval = 0;
    size_t want = K;
    int bin = 0;
    for (int p = 0; p < CT_CCK_CUDA_TOPK_PASSES; p++) {
        if (p > 0 && (rc = hist_pass(s, F, ns, B, H, mmask, mval, p)))
            return rc;
        size_t rest;
        bin = ct_cck_topk_bin((const uint32_t *)s->hhist, (int)ct_cck_cuda_topk_mask(p) + 1, want, &rest);
        mval |= (unsigned)bin << ct_cck_cuda_topk_shift(p);
        mmask |= ct_cck_cuda_topk_mask(p) << ct_cck_cuda_topk_shift(p);
        want = rest;
    }
    float tval;
    memcpy(&tval, &mval, sizeof tval);
    size_t ties = s->hhist[bin], ties_keep = want;
    const unsigned long long *tiebase = NULL;
    if (ties_keep < ties) {
        /* The boundary splits a run of equal scores: number the ties in row-major order. */
        tie_count_kernel<<<(unsigned)B, TOPK_THREADS>>>(F, ns, H, tval, s->rowties);
        CT_CUDA_LAUNCHED();
        CT_CUDA_TRY(cudaMemcpy(s->hrowties, s->rowties, (size_t)B * sizeof(unsigned long long),
                               cudaMemcpyDeviceToHost));
        unsigned long long before = 0;
        for (int b = 0; b < B; b++) {
            unsigned long long c = s->hrowties[b];
            s->hrowties[b] = before;
            before += c;
        }
        CT_CUDA_TRY(cudaMemcpy(s->rowties, s->hrowties, (size_t)B * sizeof(unsigned long long),
                               cudaMemcpyHostToDevice));
        tiebase = s->rowties;
    }
    topk_mask_kernel<<<(unsigned)B, TOPK_THREADS>>>(F, ns, H, tval, tiebase, ties_keep);
    CT_CUDA_LAUNCHED();
    *min_kept = tval;
    return 0;
}

/* ct_cck_topk_bin over a shared-memory histogram by the whole block: each thread sums a
 * group of bins counted from the top, thread 0 finds the group and then the bin. */
__device__ static void block_pick(const unsigned *hist, int nbins, unsigned long long K, unsigned long long *part,
                                  int *out_bin, unsigned long long *out_rest)
{
    int per = nbins / TOPK_THREADS, t = threadIdx.x;
    unsigned long long s = 0;
    for (int i = 0; i < per; i++)
        s += hist[nbins - t * per - 1 - i];
    part[t] = s;
    __syncthreads();
    if (t == 0) {
        unsigned long long above = 0;
        int g = 0;
        while (g < TOPK_THREADS - 1 && above + part[g] < K)
            above += part[g++];
        int bin = nbins - g * per - 1, lo = nbins - (g + 1) * per;
        while (bin > lo && above + hist[bin] < K)
            above += hist[bin--];
        *out_bin = bin;
        *out_rest = K - above;
    }
    __syncthreads();
}

/* One block per row: among the dead latents with R > 0, the kk largest scores (ties to
 * the lower latent) are copied to A, everything else of the row is zeroed. */
__global__ static void aux_select_kernel(const float *R, const float *ns, const unsigned char *dead, int H,
                                         int kk, float *A)
{
    __shared__ unsigned hist[CT_CCK_CUDA_TOPK_BINS];
    __shared__ unsigned long long part[TOPK_THREADS];
    __shared__ unsigned wcount[TOPK_THREADS / 32];
    __shared__ unsigned long long base, rest;
    __shared__ int bin;
    const float *r = R + (size_t)blockIdx.x * H;
    float *a = A + (size_t)blockIdx.x * H;
    unsigned long long c = 0;
    for (int j = threadIdx.x; j < H; j += blockDim.x)
        c += dead[j] && r[j] > 0.0f;
    part[threadIdx.x] = c;
    ct_cck_block_sum(part, TOPK_THREADS);
    unsigned long long ncand = part[0];
    __syncthreads(); /* part is reused below */
    if (ncand <= (unsigned long long)kk) {
        for (int j = threadIdx.x; j < H; j += blockDim.x)
            a[j] = dead[j] && r[j] > 0.0f ? r[j] : 0.0f;
        return;
    }
    unsigned mmask = 0, mval = 0;
    unsigned long long want = (unsigned long long)kk;
    for (int p = 0; p < CT_CCK_CUDA_TOPK_PASSES; p++) {
        int shift = ct_cck_cuda_topk_shift(p);
        unsigned dm = ct_cck_cuda_topk_mask(p);
        for (int i = threadIdx.x; i < CT_CCK_CUDA_TOPK_BINS; i += blockDim.x)
            hist[i] = 0;
        __syncthreads();
        for (int j = threadIdx.x; j < H; j += blockDim.x) {
            if (!dead[j] || !(r[j] > 0.0f))
                continue;
            unsigned u = __float_as_uint(__fmul_rn(r[j], ns[j]));
            if ((u & mmask) == mval)
                atomicAdd(&hist[(u >> shift) & dm], 1u);
        }
        __syncthreads();
        block_pick(hist, (int)dm + 1, want, part, &bin, &rest);
        mval |= (unsigned)bin << shift;
        mmask |= dm << shift;
        want = rest;
    }
    float tval = __uint_as_float(mval);
    if (threadIdx.x == 0)
        base = 0;
    __syncthreads();
    for (int j0 = 0; j0 < H; j0 += TOPK_THREADS) {
        int j = j0 + threadIdx.x;
        int cand = j < H && dead[j] && r[j] > 0.0f;
        float s = cand ? __fmul_rn(r[j], ns[j]) : 0.0f;
        int tie = cand && s == tval;
        unsigned long long idx = ct_cck_ordered_index(tie, &base, wcount);
        if (j < H)
            a[j] = cand && (s > tval || (tie && idx < want)) ? r[j] : 0.0f;
    }
}

int ct_cck_cuda_aux_run(const ct_cck_topk_scratch *s, const float *R, const float *ns, const uint8_t *dead,
                        int B, int H, int kk, float *A)
{
    if (B < 1 || H < 1)
        return 0;
    if (kk < 1) {
        CT_CUDA_TRY(cudaMemsetAsync(A, 0, (size_t)B * H * sizeof(float)));
        return 0;
    }
    CT_CUDA_TRY(cudaMemcpy(s->dead, dead, (size_t)H, cudaMemcpyHostToDevice));
    aux_select_kernel<<<(unsigned)B, TOPK_THREADS>>>(R, ns, s->dead, H, kk, A);
    CT_CUDA_LAUNCHED();
    return 0;
}

/* Row operations: embedding lookup, row gather/scatter (rows in order, no atomics),
 * log-softmax and cross-entropy (one block per row, fixed tree reductions). */
#include "kernels/cuda/cuda_common.cuh"

__global__ static void embed(float *out, const int32_t *ids, const float *wte, int N, int C)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * C)
        return;
    out[i] = wte[(size_t)ids[i / C] * C + i % C];
}

__global__ static void gather(float *out, const float *inp, const int32_t *rows, int R, int C)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)R * C)
        return;
    out[i] = inp[(size_t)rows[i / C] * C + i % C];
}

/* One thread per column walks the rows in order, so repeated rows add deterministically. */
__global__ static void scatter_add(float *dst, const float *src, const int32_t *rows, int R, int C)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C)
        return;
    for (int r = 0; r < R; r++)
        dst[(size_t)rows[r] * C + c] += src[(size_t)r * C + c];
}

/* log-sum-exp of one row with a block of 256 threads. */
__device__ static float block_lse(const float *x, int V)
{
    __shared__ float red[8];
    int lane = threadIdx.x % 32, wid = threadIdx.x / 32;
    float mx = -INFINITY;
    for (int i = threadIdx.x; i < V; i += blockDim.x)
        mx = fmaxf(mx, x[i]);
    mx = ct_warp_max(mx);
    if (lane == 0)
        red[wid] = mx;
    __syncthreads();
    mx = red[0];
    for (int w = 1; w < 8; w++)
        mx = fmaxf(mx, red[w]);
    __syncthreads();
    float s = 0.0f;
    for (int i = threadIdx.x; i < V; i += blockDim.x)
        s += expf(x[i] - mx);
    s = ct_warp_sum(s);
    if (lane == 0)
        red[wid] = s;
    __syncthreads();
    s = 0.0f;
    for (int w = 0; w < 8; w++)
        s += red[w];
    __syncthreads();
    return mx + logf(s);
}

__global__ static void logsoftmax(float *out, const float *logits, int V)
{
    const float *x = logits + (size_t)blockIdx.x * V;
    float lse = block_lse(x, V);
    float *o = out + (size_t)blockIdx.x * V;
    for (int i = threadIdx.x; i < V; i += blockDim.x)
        o[i] = x[i] - lse;
}

__global__ static void cross_entropy(float *loss, const float *logits, const int32_t *targets,
                                     int V)
{
    const float *x = logits + (size_t)blockIdx.x * V;
    int t = targets[blockIdx.x];
    float lse = block_lse(x, V);
    if (threadIdx.x == 0)
        loss[blockIdx.x] = (t >= 0 && t < V) ? lse - x[t] : 0.0f;
}

extern "C" int ct_kcuda_embedding_fwd(ct_kcuda *c, float *out, const int32_t *ids,
                                      const float *wte, int N, int C)
{
    if ((size_t)N * C == 0)
        return 0;
    embed<<<ct_cuda_blocks((size_t)N * C, 256), 256, 0, c->stream>>>(out, ids, wte, N, C);
    CT_CUDA_LAUNCHED();
    return 0;
}

extern "C" int ct_kcuda_gather_rows(ct_kcuda *c, float *out, const float *inp, const int32_t *rows,
                                    int R, int C)
{
    if ((size_t)R * C == 0)
        return 0;
    gather<<<ct_cuda_blocks((size_t)R * C, 256), 256, 0, c->stream>>>(out, inp, rows, R, C);
    CT_CUDA_LAUNCHED();
    return 0;
}

extern "C" int ct_kcuda_scatter_add_rows(ct_kcuda *c, float *dst, const float *src,
                                         const int32_t *rows, int R, int C)
{
    if (R <= 0 || C <= 0)
        return 0;
    scatter_add<<<ct_cuda_blocks((size_t)C, 256), 256, 0, c->stream>>>(dst, src, rows, R, C);
    CT_CUDA_LAUNCHED();
    return 0;
}

extern "C" int ct_kcuda_logsoftmax(ct_kcuda *c, float *out, const float *logits, int N, int V)
{
    if (N <= 0)
        return 0;
    logsoftmax<<<N, 256, 0, c->stream>>>(out, logits, V);
    CT_CUDA_LAUNCHED();
    return 0;
}

extern "C" int ct_kcuda_cross_entropy(ct_kcuda *c, float *loss, const float *logits,
                                      const int32_t *targets, int N, int V)
{
    if (N <= 0)
        return 0;
    cross_entropy<<<N, 256, 0, c->stream>>>(loss, logits, targets, V);
    CT_CUDA_LAUNCHED();
    return 0;
}

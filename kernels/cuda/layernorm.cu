/* LayerNorm forward/backward: one warp per row; parameter gradients one thread per
 * column summing rows in order. */
#include "kernels/cuda/cuda_common.cuh"

__global__ static void ln_fwd(float *out, float *mean, float *rstd, const float *inp,
                              const float *w, const float *b, int N, int C, float eps)
{
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N)
        return;
    const float *x = inp + (size_t)row * C;
    float s = 0.0f;
    for (int i = lane; i < C; i += 32)
        s += x[i];
    float m = ct_warp_sum(s) / C;
    float v = 0.0f;
    for (int i = lane; i < C; i += 32) {
        float d = x[i] - m;
        v += d * d;
    }
    float r = rsqrtf(ct_warp_sum(v) / C + eps);
    float *o = out + (size_t)row * C;
    for (int i = lane; i < C; i += 32) {
        float y = (x[i] - m) * r;
        if (w)
            y *= w[i];
        if (b)
            y += b[i];
        o[i] = y;
    }
    if (lane == 0) {
        mean[row] = m;
        rstd[row] = r;
    }
}

__global__ static void ln_bwd_inp(float *dinp, const float *dout, const float *inp,
                                  const float *w, const float *mean, const float *rstd, int N,
                                  int C)
{
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N)
        return;
    const float *x = inp + (size_t)row * C, *g = dout + (size_t)row * C;
    float m = mean[row], r = rstd[row], s1 = 0.0f, s2 = 0.0f;
    for (int i = lane; i < C; i += 32) {
        float dn = w ? g[i] * w[i] : g[i];
        s1 += dn;
        s2 += dn * (x[i] - m) * r;
    }
    float a = ct_warp_sum(s1) / C, c2 = ct_warp_sum(s2) / C;
    float *dx = dinp + (size_t)row * C;
    for (int i = lane; i < C; i += 32) {
        float dn = w ? g[i] * w[i] : g[i];
        dx[i] += (dn - a - (x[i] - m) * r * c2) * r;
    }
}

__global__ static void ln_bwd_params(float *dw, float *db, const float *dout, const float *inp,
                                     const float *mean, const float *rstd, int N, int C)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= C)
        return;
    float aw = 0.0f, ab = 0.0f;
    for (int n = 0; n < N; n++) {
        float g = dout[(size_t)n * C + i];
        aw += g * (inp[(size_t)n * C + i] - mean[n]) * rstd[n];
        ab += g;
    }
    if (dw)
        dw[i] += aw;
    if (db)
        db[i] += ab;
}

extern "C" int ct_kcuda_layernorm_fwd(ct_kcuda *c, float *out, float *mean, float *rstd,
                                      const float *inp, const float *w, const float *b, int N,
                                      int C, float eps)
{
    if (N <= 0)
        return 0;
    ln_fwd<<<ct_cuda_blocks((size_t)N, 8), 256, 0, c->stream>>>(out, mean, rstd, inp, w, b, N, C,
                                                                 eps);
    CT_CUDA_LAUNCHED();
    return 0;
}

extern "C" int ct_kcuda_layernorm_bwd(ct_kcuda *c, float *dinp, float *dw, float *db,
                                      const float *dout, const float *inp, const float *w,
                                      const float *mean, const float *rstd, int N, int C)
{
    if (N <= 0)
        return 0;
    if (dinp) {
        ln_bwd_inp<<<ct_cuda_blocks((size_t)N, 8), 256, 0, c->stream>>>(dinp, dout, inp, w, mean,
                                                                         rstd, N, C);
        CT_CUDA_LAUNCHED();
    }
    if (dw || db) {
        ln_bwd_params<<<ct_cuda_blocks((size_t)C, 256), 256, 0, c->stream>>>(dw, db, dout, inp,
                                                                             mean, rstd, N, C);
        CT_CUDA_LAUNCHED();
    }
    return 0;
}

/* Attention with cuBLAS batched GEMMs (scores and weighted values) and own kernels for
 * the causal/ALiBi softmax, its backward, head permutes, the q/k/v split (with clamp)
 * and rotary embeddings. */
#include "kernels/cuda/cuda_common.cuh"

__global__ static void qkv_split(float *q, float *k, float *v, const float *qkv, int B, int T,
                                 int nh, int hd, float clip)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x, C = (size_t)nh * hd;
    if (i >= (size_t)B * T * C)
        return;
    /* i indexes the destination [B, nh, T, hd] */
    int d = (int)(i % hd), t = (int)(i / hd % T), h = (int)(i / hd / T % nh);
    size_t b = i / hd / T / nh;
    const float *src = qkv + (b * T + t) * 3 * C + (size_t)h * hd + d;
    float a = src[0], c = src[C], e = src[2 * C];
    if (clip > 0) {
        a = fminf(fmaxf(a, -clip), clip);
        c = fminf(fmaxf(c, -clip), clip);
        e = fminf(fmaxf(e, -clip), clip);
    }
    q[i] = a;
    k[i] = c;
    v[i] = e;
}

__global__ static void qkv_split_bwd(float *dqkv, const float *dq, const float *dk,
                                     const float *dv, const float *qkv, int B, int T, int nh,
                                     int hd, float clip)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x, C = (size_t)nh * hd;
    if (i >= (size_t)B * T * C)
        return;
    int d = (int)(i % hd), t = (int)(i / hd % T), h = (int)(i / hd / T % nh);
    size_t b = i / hd / T / nh;
    size_t base = (b * T + t) * 3 * C + (size_t)h * hd + d;
    const float *g[3] = {dq, dk, dv};
    for (int s = 0; s < 3; s++) {
        float x = qkv[base + s * C];
        int pass = !(clip > 0) || (x >= -clip && x <= clip);
        dqkv[base + s * C] = pass ? g[s][i] : 0.0f;
    }
}

__global__ static void rope(float *x, const float *cs, const float *sn, int BH, int T, int hd,
                            int rot, float dir)
{
    int half = rot / 2;
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)BH * T * half)
        return;
    int j = (int)(i % half), t = (int)(i / half % T);
    size_t bh = i / half / T;
    float *p = x + (bh * T + t) * hd;
    float c = cs[(size_t)t * half + j], s = dir * sn[(size_t)t * half + j];
    float x1 = p[j], x2 = p[j + half];
    p[j] = x1 * c - x2 * s;
    p[j + half] = x2 * c + x1 * s;
}

/* [B, nh, T, hd] <-> [B, T, nh*hd] */
__global__ static void merge_heads(float *out, const float *in, int B, int T, int nh, int hd,
                                   int to_merged)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)B * T * nh * hd)
        return;
    int d = (int)(i % hd), t = (int)(i / hd % T), h = (int)(i / hd / T % nh);
    size_t b = i / hd / T / nh;
    size_t m = (b * T + t) * nh * hd + (size_t)h * hd + d;
    if (to_merged)
        out[m] = in[i];
    else
        out[i] = in[m];
}

/* One warp per row (bh, i): causal mask, ALiBi, softmax in place. */
__global__ static void softmax_fwd(float *att, const float *slopes, int BH, int nh, int T)
{
    size_t row = (size_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= (size_t)BH * T)
        return;
    int i = (int)(row % T), h = (int)(row / T % nh);
    float slope = slopes ? slopes[h] : 0.0f;
    float *s = att + row * T;
    float mx = -INFINITY;
    for (int j = lane; j <= i; j += 32) {
        float v = s[j] + slope * (float)j;
        s[j] = v;
        mx = fmaxf(mx, v);
    }
    mx = ct_warp_max(mx);
    float sum = 0.0f;
    for (int j = lane; j <= i; j += 32) {
        float e = expf(s[j] - mx);
        s[j] = e;
        sum += e;
    }
    float inv = 1.0f / ct_warp_sum(sum);
    for (int j = lane; j < T; j += 32)
        s[j] = j <= i ? s[j] * inv : 0.0f;
}

/* dS = P * (dP - sum(P * dP)) * scale, in place of dP. */
__global__ static void softmax_bwd(float *dp, const float *p, int BH, int T, float scale)
{
    size_t row = (size_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= (size_t)BH * T)
        return;
    int i = (int)(row % T);
    float *g = dp + row * T;
    const float *pr = p + row * T;
    float dot = 0.0f;
    for (int j = lane; j <= i; j += 32)
        dot += pr[j] * g[j];
    dot = ct_warp_sum(dot);
    for (int j = lane; j < T; j += 32)
        g[j] = j <= i ? pr[j] * (g[j] - dot) * scale : 0.0f;
}

extern "C" int ct_kcuda_qkv_split_fwd(ct_kcuda *c, float *q, float *kk, float *v,
                                      const float *qkv, int B, int T, int nh, int hd, float clip)
{
    size_t n = (size_t)B * T * nh * hd;
    if (n == 0)
        return 0;
    qkv_split<<<ct_cuda_blocks(n, 256), 256, 0, c->stream>>>(q, kk, v, qkv, B, T, nh, hd, clip);
    CT_CUDA_LAUNCHED();
    return 0;
}

extern "C" int ct_kcuda_qkv_split_bwd(ct_kcuda *c, float *dqkv, const float *dq, const float *dk,
                                      const float *dv, const float *qkv, int B, int T, int nh,
                                      int hd, float clip)
{
    size_t n = (size_t)B * T * nh * hd;
    if (n == 0)
        return 0;
    qkv_split_bwd<<<ct_cuda_blocks(n, 256), 256, 0, c->stream>>>(dqkv, dq, dk, dv, qkv, B, T, nh,
                                                                 hd, clip);
    CT_CUDA_LAUNCHED();
    return 0;
}

extern "C" int ct_kcuda_rope_fwd(ct_kcuda *c, float *x, const float *cs, const float *sn, int B,
                                 int nh, int T, int hd, int rot)
{
    size_t n = (size_t)B * nh * T * (rot / 2);
    if (n == 0) /* no rotary dims (rot < 2) or an empty batch */
        return 0;
    rope<<<ct_cuda_blocks(n, 256), 256, 0, c->stream>>>(x, cs, sn, B * nh, T, hd, rot, 1.0f);
    CT_CUDA_LAUNCHED();
    return 0;
}

extern "C" int ct_kcuda_rope_bwd(ct_kcuda *c, float *dx, const float *cs, const float *sn, int B,
                                 int nh, int T, int hd, int rot)
{
    size_t n = (size_t)B * nh * T * (rot / 2);
    if (n == 0)
        return 0;
    rope<<<ct_cuda_blocks(n, 256), 256, 0, c->stream>>>(dx, cs, sn, B * nh, T, hd, rot, -1.0f);
    CT_CUDA_LAUNCHED();
    return 0;
}

extern "C" int ct_kcuda_attention_fwd(ct_kcuda *c, float *out, float *probs, const float *q,
                                      const float *kk, const float *v, const float *slopes, int B,
                                      int T, int nh, int hd, float scale)
{
    int BH = B * nh;
    size_t tt = (size_t)T * T, th = (size_t)T * hd;
    if ((size_t)BH * th == 0)
        return 0;
    int rc;
    if (!probs && (rc = ct_kcuda_scratch(c, 0, (size_t)BH * tt * sizeof(float), (void **)&probs)))
        return rc;
    float *o;
    if ((rc = ct_kcuda_scratch(c, 1, (size_t)BH * th * sizeof(float), (void **)&o)))
        return rc;
    const float zero = 0.0f, one = 1.0f;
    CT_CUBLAS_TRY(cublasSgemmStridedBatched(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, T, T, hd, &scale,
                                            kk, hd, th, q, hd, th, &zero, probs, T, tt, BH));
    size_t rows = (size_t)BH * T;
    softmax_fwd<<<ct_cuda_blocks(rows, 8), 256, 0, c->stream>>>(probs, slopes, BH, nh, T);
    CT_CUDA_LAUNCHED();
    CT_CUBLAS_TRY(cublasSgemmStridedBatched(c->blas, CUBLAS_OP_N, CUBLAS_OP_N, hd, T, T, &one, v,
                                            hd, th, probs, T, tt, &zero, o, hd, th, BH));
    merge_heads<<<ct_cuda_blocks((size_t)BH * th, 256), 256, 0, c->stream>>>(out, o, B, T, nh, hd,
                                                                              1);
    CT_CUDA_LAUNCHED();
    return 0;
}

extern "C" int ct_kcuda_attention_bwd(ct_kcuda *c, float *dq, float *dk, float *dv,
                                      const float *dout, const float *probs, const float *q,
                                      const float *kk, const float *v, int B, int T, int nh,
                                      int hd, float scale)
{
    int BH = B * nh;
    size_t tt = (size_t)T * T, th = (size_t)T * hd;
    if ((size_t)BH * th == 0)
        return 0;
    int rc;
    float *dp, *g;
    if ((rc = ct_kcuda_scratch(c, 0, (size_t)BH * tt * sizeof(float), (void **)&dp)) ||
        (rc = ct_kcuda_scratch(c, 1, (size_t)BH * th * sizeof(float), (void **)&g)))
        return rc;
    merge_heads<<<ct_cuda_blocks((size_t)BH * th, 256), 256, 0, c->stream>>>(g, dout, B, T, nh, hd,
                                                                              0);
    CT_CUDA_LAUNCHED();
    const float zero = 0.0f, one = 1.0f;
    /* dP = dO Vᵀ ; dV = Pᵀ dO */
    CT_CUBLAS_TRY(cublasSgemmStridedBatched(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, T, T, hd, &one, v,
                                            hd, th, g, hd, th, &zero, dp, T, tt, BH));
    CT_CUBLAS_TRY(cublasSgemmStridedBatched(c->blas, CUBLAS_OP_N, CUBLAS_OP_T, hd, T, T, &one, g,
                                            hd, th, probs, T, tt, &zero, dv, hd, th, BH));
    size_t rows = (size_t)BH * T;
    softmax_bwd<<<ct_cuda_blocks(rows, 8), 256, 0, c->stream>>>(dp, probs, BH, T, scale);
    CT_CUDA_LAUNCHED();
    /* dQ = dS K ; dK = dSᵀ Q */
    CT_CUBLAS_TRY(cublasSgemmStridedBatched(c->blas, CUBLAS_OP_N, CUBLAS_OP_N, hd, T, T, &one, kk,
                                            hd, th, dp, T, tt, &zero, dq, hd, th, BH));
    CT_CUBLAS_TRY(cublasSgemmStridedBatched(c->blas, CUBLAS_OP_N, CUBLAS_OP_T, hd, T, T, &one, q,
                                            hd, th, dp, T, tt, &zero, dk, hd, th, BH));
    return 0;
}

/* GELU (erf and tanh forms) and SwiGLU, forward and backward. */
#include "kernels/cuda/cuda_common.cuh"

#define GELU_TANH_K 0.7978845608028654f

__global__ static void gelu_fwd(float *out, const float *inp, size_t n, int tanh_form)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    float x = inp[i];
    out[i] = tanh_form ? 0.5f * x * (1.0f + tanhf(GELU_TANH_K * x * (1.0f + 0.044715f * x * x)))
                       : 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
}

__global__ static void gelu_bwd(float *dinp, const float *inp, const float *dout, size_t n,
                                int tanh_form)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    float x = inp[i], d;
    if (tanh_form) {
        float t = tanhf(GELU_TANH_K * x * (1.0f + 0.044715f * x * x));
        float du = GELU_TANH_K * (1.0f + 3.0f * 0.044715f * x * x);
        d = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
    } else {
        d = 0.5f * (1.0f + erff(x * 0.70710678118654752f)) +
            x * expf(-0.5f * x * x) * 0.3989422804014327f;
    }
    dinp[i] = dout[i] * d;
}

__global__ static void swiglu_fwd(float *out, const float *gu, int N, int I)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * I)
        return;
    size_t n = i / I, j = i % I;
    float g = gu[n * 2 * I + j], u = gu[n * 2 * I + I + j];
    out[i] = g / (1.0f + expf(-g)) * u;
}

__global__ static void swiglu_bwd(float *dgu, const float *dout, const float *gu, int N, int I)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * I)
        return;
    size_t n = i / I, j = i % I;
    float g = gu[n * 2 * I + j], u = gu[n * 2 * I + I + j], d = dout[i];
    float s = 1.0f / (1.0f + expf(-g));
    dgu[n * 2 * I + I + j] = d * g * s;
    dgu[n * 2 * I + j] = d * u * (s * (1.0f + g * (1.0f - s)));
}

extern "C" int ct_kcuda_gelu_fwd(ct_kcuda *c, float *out, const float *inp, size_t n,
                                 ct_gelu_kind kind)
{
    if (n == 0)
        return 0;
    gelu_fwd<<<ct_cuda_blocks(n, 256), 256, 0, c->stream>>>(out, inp, n, kind == CT_GELU_TANH);
    CT_CUDA_LAUNCHED();
    return 0;
}

extern "C" int ct_kcuda_gelu_bwd(ct_kcuda *c, float *dinp, const float *inp, const float *dout,
                                 size_t n, ct_gelu_kind kind)
{
    if (n == 0)
        return 0;
    gelu_bwd<<<ct_cuda_blocks(n, 256), 256, 0, c->stream>>>(dinp, inp, dout, n,
                                                            kind == CT_GELU_TANH);
    CT_CUDA_LAUNCHED();
    return 0;
}

extern "C" int ct_kcuda_swiglu_fwd(ct_kcuda *c, float *out, const float *gu, int N, int I)
{
    if ((size_t)N * I == 0)
        return 0;
    swiglu_fwd<<<ct_cuda_blocks((size_t)N * I, 256), 256, 0, c->stream>>>(out, gu, N, I);
    CT_CUDA_LAUNCHED();
    return 0;
}

extern "C" int ct_kcuda_swiglu_bwd(ct_kcuda *c, float *dgu, const float *dout, const float *gu,
                                   int N, int I)
{
    if ((size_t)N * I == 0)
        return 0;
    swiglu_bwd<<<ct_cuda_blocks((size_t)N * I, 256), 256, 0, c->stream>>>(dgu, dout, gu, N, I);
    CT_CUDA_LAUNCHED();
    return 0;
}

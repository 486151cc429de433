/* GELU (erf and tanh forms, as transformers computes them) and SwiGLU on the CPU, with
 * the vectorisable exp/erf/tanh of vecmath.h. */
/* Float compares may be if-converted (vectorised): nothing here relies on FP traps. */
#pragma GCC optimize("no-trapping-math")

#include "kernels/backend.h"
#include "kernels/cpu/vecmath.h"

#include <math.h>

#define GELU_TANH_K 0.7978845608028654f /* sqrt(2/pi) */

void ct_kcpu_gelu_fwd(float *out, const float *inp, size_t n, ct_gelu_kind kind)
{
    if (kind == CT_GELU_TANH) {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) {
            float x = inp[i];
            out[i] = 0.5f * x * (1.0f + ct_vtanhf(GELU_TANH_K * x * (1.0f + 0.044715f * x * x)));
        }
    } else {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) {
            float x = inp[i];
            out[i] = 0.5f * x * (1.0f + ct_verff(x * 0.70710678118654752f));
        }
    }
}

void ct_kcpu_gelu_bwd(float *dinp, const float *inp, const float *dout, size_t n,
                      ct_gelu_kind kind)
{
    if (kind == CT_GELU_TANH) {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) {
            float x = inp[i];
            float u = GELU_TANH_K * x * (1.0f + 0.044715f * x * x);
            float t = ct_vtanhf(u);
            float du = GELU_TANH_K * (1.0f + 3.0f * 0.044715f * x * x);
            dinp[i] = dout[i] * (0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du);
        }
    } else {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) {
            float x = inp[i];
            float cdf = 0.5f * (1.0f + ct_verff(x * 0.70710678118654752f));
            float pdf = ct_vexpf(-0.5f * x * x) * 0.3989422804014327f;
            dinp[i] = dout[i] * (cdf + x * pdf);
        }
    }
}

void ct_kcpu_swiglu_fwd(float *out, const float *gu, int N, int I)
{
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *g = gu + (size_t)n * 2 * I, *u = g + I;
        float *o = out + (size_t)n * I;
#pragma omp simd
        for (int i = 0; i < I; i++)
            o[i] = g[i] / (1.0f + ct_vexpf(-g[i])) * u[i];
    }
}

void ct_kcpu_swiglu_bwd(float *dgu, const float *dout, const float *gu, int N, int I)
{
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *g = gu + (size_t)n * 2 * I, *u = g + I, *d = dout + (size_t)n * I;
        float *dg = dgu + (size_t)n * 2 * I, *du = dg + I;
#pragma omp simd
        for (int i = 0; i < I; i++) {
            float s = 1.0f / (1.0f + ct_vexpf(-g[i]));
            float silu = g[i] * s;
            du[i] = d[i] * silu;
            dg[i] = d[i] * u[i] * (s * (1.0f + g[i] * (1.0f - s)));
        }
    }
}

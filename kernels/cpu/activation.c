/* GELU (erf and tanh forms, as transformers computes them) and SwiGLU on the CPU, with
 * the vectorisable exp/erf/tanh of vecmath.h. Each thread takes one contiguous span;
 * the span functions are cloned for AVX-512 and AVX2 and picked at load time. */
/* Float compares may be if-converted (vectorised): nothing here relies on FP traps. */
#pragma GCC optimize("no-trapping-math")

#include "kernels/backend.h"
#include "kernels/cpu/vecmath.h"

#include <omp.h>

#define GELU_TANH_K 0.7978845608028654f /* sqrt(2/pi) */
#define CT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

CT_CLONES static void gelu_span(float *out, const float *inp, size_t n, int tanh_form)
{
    if (tanh_form) {
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float x = inp[i];
            out[i] = 0.5f * x * (1.0f + ct_vtanhf(GELU_TANH_K * x * (1.0f + 0.044715f * x * x)));
        }
    } else {
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float x = inp[i];
            out[i] = 0.5f * x * (1.0f + ct_verff(x * 0.70710678118654752f));
        }
    }
}

CT_CLONES static void gelu_bwd_span(float *dinp, const float *inp, const float *dout, size_t n,
                                    int tanh_form)
{
    if (tanh_form) {
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float x = inp[i];
            float t = ct_vtanhf(GELU_TANH_K * x * (1.0f + 0.044715f * x * x));
            float du = GELU_TANH_K * (1.0f + 3.0f * 0.044715f * x * x);
            dinp[i] = dout[i] * (0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du);
        }
    } else {
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float x = inp[i];
            float cdf = 0.5f * (1.0f + ct_verff(x * 0.70710678118654752f));
            float pdf = ct_vexpf(-0.5f * x * x) * 0.3989422804014327f;
            dinp[i] = dout[i] * (cdf + x * pdf);
        }
    }
}

CT_CLONES static void swiglu_row(float *o, const float *g, const float *u, int I)
{
#pragma omp simd
    for (int i = 0; i < I; i++)
        o[i] = g[i] / (1.0f + ct_vexpf(-g[i])) * u[i];
}

CT_CLONES static void swiglu_bwd_row(float *dg, float *du, const float *d, const float *g,
                                     const float *u, int I)
{
#pragma omp simd
    for (int i = 0; i < I; i++) {
        float s = 1.0f / (1.0f + ct_vexpf(-g[i]));
        du[i] = d[i] * g[i] * s;
        dg[i] = d[i] * u[i] * (s * (1.0f + g[i] * (1.0f - s)));
    }
}

/* [begin, end) of thread t's share of n elements (elementwise: no reduction). */
static void share(size_t n, size_t *b, size_t *e)
{
    size_t nt = (size_t)omp_get_num_threads(), t = (size_t)omp_get_thread_num();
    size_t per = (n + nt - 1) / nt;
    *b = t * per < n ? t * per : n;
    *e = *b + per < n ? *b + per : n;
}

int ct_kcpu_gelu_fwd(float *out, const float *inp, size_t n, ct_gelu_kind kind)
{
#pragma omp parallel
    {
        size_t b, e;
        share(n, &b, &e);
        gelu_span(out + b, inp + b, e - b, kind == CT_GELU_TANH);
    }
    return 0;
}

int ct_kcpu_gelu_bwd(float *dinp, const float *inp, const float *dout, size_t n,
                     ct_gelu_kind kind)
{
#pragma omp parallel
    {
        size_t b, e;
        share(n, &b, &e);
        gelu_bwd_span(dinp + b, inp + b, dout + b, e - b, kind == CT_GELU_TANH);
    }
    return 0;
}

int ct_kcpu_swiglu_fwd(float *out, const float *gu, int N, int I)
{
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *g = gu + (size_t)n * 2 * I;
        swiglu_row(out + (size_t)n * I, g, g + I, I);
    }
    return 0;
}

int ct_kcpu_swiglu_bwd(float *dgu, const float *dout, const float *gu, int N, int I)
{
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *g = gu + (size_t)n * 2 * I;
        float *dg = dgu + (size_t)n * 2 * I;
        swiglu_bwd_row(dg, dg + I, dout + (size_t)n * I, g, g + I, I);
    }
    return 0;
}

/* Vector primitives of the sparse crosscoder path: axpy and dot over rows of length D.
 * The build targets baseline x86-64 (SSE2), so the AVX2+FMA versions are compiled with
 * a target attribute and chosen once at load time; a process always uses one of them,
 * which keeps results reproducible on a given machine. The dot product keeps four
 * independent 8-lane accumulators folded in a fixed order. */
#include "kernels/crosscoder_kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CT_CCK_HAVE_AVX2_BUILD 1
#endif

static void axpy_scalar(float *y, float a, const float *x, int n)
{
    for (int i = 0; i < n; i++)
        y[i] += a * x[i];
}

static float dot_scalar(const float *x, const float *y, int n)
{
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += x[i + k] * y[i + k];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++)
        s += x[i] * y[i];
    return s;
}

#ifdef CT_CCK_HAVE_AVX2_BUILD
__attribute__((target("avx2,fma"))) static void axpy_avx2(float *y, float a, const float *x, int n)
{
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 y0 = _mm256_loadu_ps(y + i), y1 = _mm256_loadu_ps(y + i + 8);
        __m256 y2 = _mm256_loadu_ps(y + i + 16), y3 = _mm256_loadu_ps(y + i + 24);
        y0 = _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), y0);
        y1 = _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i + 8), y1);
        y2 = _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i + 16), y2);
        y3 = _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i + 24), y3);
        _mm256_storeu_ps(y + i, y0);
        _mm256_storeu_ps(y + i + 8, y1);
        _mm256_storeu_ps(y + i + 16, y2);
        _mm256_storeu_ps(y + i + 24, y3);
    }
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] = __builtin_fmaf(a, x[i], y[i]);
}

__attribute__((target("avx2,fma"))) static float dot_avx2(const float *x, const float *y, int n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
    __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    float l[8];
    _mm256_storeu_ps(l, s);
    float r = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
    for (; i < n; i++)
        r = __builtin_fmaf(x[i], y[i], r);
    return r;
}
#endif

static void (*axpy_impl)(float *, float, const float *, int) = axpy_scalar;
static float (*dot_impl)(const float *, const float *, int) = dot_scalar;

__attribute__((constructor)) static void ct_cck_vec_select(void)
{
#ifdef CT_CCK_HAVE_AVX2_BUILD
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        axpy_impl = axpy_avx2;
        dot_impl = dot_avx2;
    }
#endif
}

void ct_cck_axpy(float *y, float a, const float *x, int n) { axpy_impl(y, a, x, n); }
float ct_cck_dot(const float *x, const float *y, int n) { return dot_impl(x, y, n); }

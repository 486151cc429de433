/* Vector primitives of the sparse crosscoder path: axpy and dot over rows of length D.
 * The build targets baseline x86-64 (SSE2), so the AVX2+FMA versions are compiled with
 * a target attribute and chosen once at load time; a process always uses one of them,
 * which keeps results reproducible on a given machine. The dot product keeps four
 * independent 8-lane accumulators folded in a fixed order. Adam is here too: without
 * -fno-math-errno the compiler will not vectorise sqrtf, and the pass is memory-bound. */
#include "kernels/crosscoder_kernels.h"

#include <math.h>

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

static void adam_scalar(float *p, const float *g, float *m, float *v, size_t n, const ct_cck_adam_coef *k)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * k->gscale;
        float mi = k->b1 * m[i] + k->one_minus_b1 * gi;
        float vi = k->b2 * v[i] + k->one_minus_b2 * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        p[i] -= k->step_size * (mi / (sqrtf(vi) / k->bc2_sqrt + k->eps));
    }
}

#ifdef CT_CCK_HAVE_AVX2_BUILD
/* Same operations as adam_scalar, in the same order, without FMA contraction, so the
 * two agree bit for bit. */
__attribute__((target("avx2"))) static void adam_avx2(float *p, const float *g, float *m, float *v, size_t n,
                                                      const ct_cck_adam_coef *k)
{
    __m256 gs = _mm256_set1_ps(k->gscale), b1 = _mm256_set1_ps(k->b1), b2 = _mm256_set1_ps(k->b2);
    __m256 c1 = _mm256_set1_ps(k->one_minus_b1), c2 = _mm256_set1_ps(k->one_minus_b2);
    __m256 ss = _mm256_set1_ps(k->step_size), bc = _mm256_set1_ps(k->bc2_sqrt), ep = _mm256_set1_ps(k->eps);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 gi = _mm256_mul_ps(_mm256_loadu_ps(g + i), gs);
        __m256 mi = _mm256_add_ps(_mm256_mul_ps(b1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(c1, gi));
        __m256 vi = _mm256_add_ps(_mm256_mul_ps(b2, _mm256_loadu_ps(v + i)), _mm256_mul_ps(c2, _mm256_mul_ps(gi, gi)));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        __m256 den = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), bc), ep);
        __m256 upd = _mm256_mul_ps(ss, _mm256_div_ps(mi, den));
        _mm256_storeu_ps(p + i, _mm256_sub_ps(_mm256_loadu_ps(p + i), upd));
    }
    adam_scalar(p + i, g + i, m + i, v + i, n - i, k);
}
#endif

static void (*adam_impl)(float *, const float *, float *, float *, size_t, const ct_cck_adam_coef *) = adam_scalar;
static void (*axpy_impl)(float *, float, const float *, int) = axpy_scalar;
static float (*dot_impl)(const float *, const float *, int) = dot_scalar;

__attribute__((constructor)) static void ct_cck_vec_select(void)
{
#ifdef CT_CCK_HAVE_AVX2_BUILD
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        axpy_impl = axpy_avx2;
        dot_impl = dot_avx2;
        adam_impl = adam_avx2;
    }
#endif
}

void ct_cck_axpy(float *y, float a, const float *x, int n) { axpy_impl(y, a, x, n); }
float ct_cck_dot(const float *x, const float *y, int n) { return dot_impl(x, y, n); }
void ct_cck_adam_span(float *p, const float *g, float *m, float *v, size_t n, const ct_cck_adam_coef *k)
{
    adam_impl(p, g, m, v, n, k);
}

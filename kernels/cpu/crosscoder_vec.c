/* Vector primitives of the sparse crosscoder path: axpy and dot over rows of length D,
 * their grouped forms over gathered rows, and the row passes that build the CSR (ReLU
 * with counts, positive entries) and write the transposed gather back.
 * The build targets baseline x86-64 (SSE2), so the AVX2+FMA and AVX-512 versions are
 * compiled with target attributes and chosen once at load time; a process always uses
 * the same ones, which keeps results reproducible on a given machine, and the AVX-512
 * versions give exactly the bits of the AVX2 ones. The dot product keeps four
 * independent 8-lane accumulators folded in a fixed order. Adam is here too: without
 * -fno-math-errno the compiler will not vectorise sqrtf, and the pass is memory-bound. */
#include "kernels/crosscoder_kernels.h"

#include <math.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CT_CCK_HAVE_AVX2_BUILD 1
#endif

/* Entries per group of the grouped axpy and dot (see axpy_group_avx512_k). */
#define CT_CCK_AXPY_GROUP 8
#define CT_CCK_DOT_GROUP 4

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

static size_t relu_count_scalar(float *r, int n)
{
    int c = 0;
    /* simd: branch-free, since at densities near 0.5 the sign is a coin flip */
#pragma omp simd reduction(+ : c)
    for (int j = 0; j < n; j++) {
        float v = r[j] > 0.0f ? r[j] : 0.0f;
        r[j] = v;
        c += v > 0.0f;
    }
    return (size_t)c;
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

/* The end of dot_avx2 from the first element `i` past the 32-float blocks: the 8-float
 * blocks into a0, the fixed fold, the scalar tail. Shared with the grouped AVX-512 dot so
 * that both compute each product identically. */
__attribute__((target("avx2,fma"), always_inline)) static inline float
dot_finish_avx2(__m256 a0, __m256 a1, __m256 a2, __m256 a3, const float *x, const float *y, int i, int n)
{
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
    return dot_finish_avx2(a0, a1, a2, a3, x, y, i, n);
}

/* Grouped kernels: several entries per pass over y (axpy) or g (dot).
 *
 * axpy: a chunk of y stays in registers while the entries of a group are added to it in
 * order, so every element sees the same chain of FMAs as ct_cck_axpy called entry after
 * entry (axpy_avx2 uses FMA on every element, tail included) while y is loaded and
 * stored once per group instead of once per entry.
 *
 * dot: a zmm over 16 floats holds lanes 0-7 of two of dot_avx2's accumulators (a0|a1
 * and a2|a3), so each lane sums the same products in the same order; the loads of g are
 * shared by the group, and dot_finish_avx2 ends each entry as dot_avx2 does. */

__attribute__((target("avx512f,fma"), always_inline)) static inline void
axpy_group_avx512_k(float *y, int n, int k, const float *a, const float *const *x)
{
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 y0 = _mm512_loadu_ps(y + i), y1 = _mm512_loadu_ps(y + i + 16);
        __m512 y2 = _mm512_loadu_ps(y + i + 32), y3 = _mm512_loadu_ps(y + i + 48);
        for (int t = 0; t < k; t++) {
            __m512 va = _mm512_set1_ps(a[t]);
            const float *xt = x[t] + i;
            y0 = _mm512_fmadd_ps(va, _mm512_loadu_ps(xt), y0);
            y1 = _mm512_fmadd_ps(va, _mm512_loadu_ps(xt + 16), y1);
            y2 = _mm512_fmadd_ps(va, _mm512_loadu_ps(xt + 32), y2);
            y3 = _mm512_fmadd_ps(va, _mm512_loadu_ps(xt + 48), y3);
        }
        _mm512_storeu_ps(y + i, y0);
        _mm512_storeu_ps(y + i + 16, y1);
        _mm512_storeu_ps(y + i + 32, y2);
        _mm512_storeu_ps(y + i + 48, y3);
    }
    for (; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 y0 = _mm512_maskz_loadu_ps(m, y + i);
        for (int t = 0; t < k; t++)
            y0 = _mm512_fmadd_ps(_mm512_set1_ps(a[t]), _mm512_maskz_loadu_ps(m, x[t] + i), y0);
        _mm512_mask_storeu_ps(y + i, m, y0);
    }
}

/* Constant group sizes let the compiler unroll the entry loop fully. */
__attribute__((target("avx512f,fma"))) static void axpy_group_avx512(float *y, int n, int k, const float *a,
                                                                    const float *const *x)
{
    if (k == CT_CCK_AXPY_GROUP)
        axpy_group_avx512_k(y, n, CT_CCK_AXPY_GROUP, a, x);
    else
        axpy_group_avx512_k(y, n, k, a, x);
}

__attribute__((target("avx512f,fma"), always_inline)) static inline void
dot_group_avx512_k(const float *g, int n, int k, const float *const *x, float *out)
{
    __m512 lo[CT_CCK_DOT_GROUP], hi[CT_CCK_DOT_GROUP];
    for (int t = 0; t < k; t++)
        lo[t] = hi[t] = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 g0 = _mm512_loadu_ps(g + i), g1 = _mm512_loadu_ps(g + i + 16);
        for (int t = 0; t < k; t++) {
            lo[t] = _mm512_fmadd_ps(g0, _mm512_loadu_ps(x[t] + i), lo[t]);
            hi[t] = _mm512_fmadd_ps(g1, _mm512_loadu_ps(x[t] + i + 16), hi[t]);
        }
    }
    for (int t = 0; t < k; t++) {
        __m256 a0 = _mm512_castps512_ps256(lo[t]);
        __m256 a1 = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(lo[t]), 1));
        __m256 a2 = _mm512_castps512_ps256(hi[t]);
        __m256 a3 = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(hi[t]), 1));
        out[t] = dot_finish_avx2(a0, a1, a2, a3, g, x[t], i, n);
    }
}

__attribute__((target("avx512f,fma"))) static void dot_group_avx512(const float *g, int n, int k,
                                                                   const float *const *x, float *out)
{
    switch (k) {
    case 4: dot_group_avx512_k(g, n, 4, x, out); break;
    case 3: dot_group_avx512_k(g, n, 3, x, out); break;
    case 2: dot_group_avx512_k(g, n, 2, x, out); break;
    default: dot_group_avx512_k(g, n, 1, x, out); break;
    }
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

/* Positive entries of a row, compressed in a register and written with a masked store
 * (the compressing store to memory is microcoded and slow on some CPUs). Compares as
 * the scalar loop does: NaN and -0 are not positive. */
__attribute__((target("avx512f,popcnt"))) static size_t positive_avx512(const float *r, int n, int32_t *col,
                                                                       float *val)
{
    size_t c = 0;
    __m512i jv = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i step = _mm512_set1_epi32(16);
    const __m512 zero = _mm512_setzero_ps();
    int j = 0;
    for (; j + 16 <= n; j += 16, jv = _mm512_add_epi32(jv, step)) {
        __m512 v = _mm512_loadu_ps(r + j);
        __mmask16 m = _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ);
        if (m) {
            int k = __builtin_popcount(m);
            __mmask16 out = (__mmask16)((1u << k) - 1);
            _mm512_mask_storeu_ps(val + c, out, _mm512_maskz_compress_ps(m, v));
            _mm512_mask_storeu_epi32(col + c, out, _mm512_maskz_compress_epi32(m, jv));
            c += (size_t)k;
        }
    }
    for (; j < n; j++)
        if (r[j] > 0.0f) {
            col[c] = j;
            val[c++] = r[j];
        }
    return c;
}

__attribute__((target("avx512f,popcnt"))) static size_t relu_count_avx512(float *r, int n)
{
    size_t c = 0;
    const __m512 zero = _mm512_setzero_ps();
    int j = 0;
    for (; j + 16 <= n; j += 16) {
        __m512 v = _mm512_loadu_ps(r + j);
        __mmask16 m = _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ);
        _mm512_storeu_ps(r + j, _mm512_maskz_mov_ps(m, v));
        c += (size_t)__builtin_popcount(m);
    }
    return c + relu_count_scalar(r + j, n - j);
}

/* In-register 16x16 transpose: r[i] holds row i on entry and column i on return. */
__attribute__((target("avx512f"), always_inline)) static inline void transpose16_avx512(__m512 r[16])
{
    __m512 t[16];
    for (int k = 0; k < 8; k++) {
        t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
    for (int k = 0; k < 4; k++) {
        r[4 * k + 0] = _mm512_shuffle_ps(t[4 * k + 0], t[4 * k + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[4 * k + 1] = _mm512_shuffle_ps(t[4 * k + 0], t[4 * k + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[4 * k + 2] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[4 * k + 3] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int k = 0; k < 2; k++)
        for (int m = 0; m < 4; m++) {
            t[8 * k + m] = _mm512_shuffle_f32x4(r[8 * k + m], r[8 * k + 4 + m], 0x88);
            t[8 * k + 4 + m] = _mm512_shuffle_f32x4(r[8 * k + m], r[8 * k + 4 + m], 0xDD);
        }
    for (int m = 0; m < 8; m++) {
        r[m] = _mm512_shuffle_f32x4(t[m], t[8 + m], 0x88);
        r[m + 8] = _mm512_shuffle_f32x4(t[m], t[8 + m], 0xDD);
    }
}

static void transpose_scalar(float *o, size_t ldo, const float *s, size_t lds, int rows, int cols, int accumulate);

/* Whole 16x16 blocks in registers, written 16 floats at a time: one scalar store per
 * float kept the store buffer full of stores waiting for their cache lines, one output
 * row at a time. The edges go through the scalar loop. */
__attribute__((target("avx512f"))) static void transpose_avx512(float *o, size_t ldo, const float *s, size_t lds,
                                                               int rows, int cols, int accumulate)
{
    int r16 = rows / 16 * 16, c16 = cols / 16 * 16;
    for (int i = 0; i < c16; i += 16)
        for (int r = 0; r < r16; r += 16) {
            __m512 v[16];
            for (int q = 0; q < 16; q++)
                v[q] = _mm512_loadu_ps(s + (size_t)(r + q) * lds + i);
            transpose16_avx512(v);
            for (int q = 0; q < 16; q++) {
                float *d = o + (size_t)(i + q) * ldo + r;
                _mm512_storeu_ps(d, accumulate ? _mm512_add_ps(_mm512_loadu_ps(d), v[q]) : v[q]);
            }
        }
    if (r16 < rows)
        transpose_scalar(o + r16, ldo, s + (size_t)r16 * lds, lds, rows - r16, c16, accumulate);
    if (c16 < cols)
        transpose_scalar(o + (size_t)c16 * ldo, ldo, s + c16, lds, rows, cols - c16, accumulate);
}
#endif

static void transpose_scalar(float *o, size_t ldo, const float *s, size_t lds, int rows, int cols, int accumulate)
{
    for (int i = 0; i < cols; i++) {
        float *d = o + (size_t)i * ldo;
        if (accumulate)
            for (int r = 0; r < rows; r++)
                d[r] += s[(size_t)r * lds + i];
        else
            for (int r = 0; r < rows; r++)
                d[r] = s[(size_t)r * lds + i];
    }
}

static size_t positive_scalar(const float *r, int n, int32_t *col, float *val)
{
    size_t c = 0;
    for (int j = 0; j < n; j++)
        if (r[j] > 0.0f) {
            col[c] = j;
            val[c++] = r[j];
        }
    return c;
}

/* Without AVX-512 the groups run entry after entry through the selected single kernels. */
static void axpy_group_seq(float *y, int n, int k, const float *a, const float *const *x);
static void dot_group_seq(const float *g, int n, int k, const float *const *x, float *out);

static void (*adam_impl)(float *, const float *, float *, float *, size_t, const ct_cck_adam_coef *) = adam_scalar;
static void (*axpy_impl)(float *, float, const float *, int) = axpy_scalar;
static float (*dot_impl)(const float *, const float *, int) = dot_scalar;
static void (*axpy_group_impl)(float *, int, int, const float *, const float *const *) = axpy_group_seq;
static void (*dot_group_impl)(const float *, int, int, const float *const *, float *) = dot_group_seq;
static size_t (*positive_impl)(const float *, int, int32_t *, float *) = positive_scalar;
static size_t (*relu_count_impl)(float *, int) = relu_count_scalar;
static void (*transpose_impl)(float *, size_t, const float *, size_t, int, int, int) = transpose_scalar;

static void axpy_group_seq(float *y, int n, int k, const float *a, const float *const *x)
{
    for (int t = 0; t < k; t++)
        axpy_impl(y, a[t], x[t], n);
}

static void dot_group_seq(const float *g, int n, int k, const float *const *x, float *out)
{
    for (int t = 0; t < k; t++)
        out[t] = dot_impl(g, x[t], n);
}

__attribute__((constructor)) static void ct_cck_vec_select(void)
{
#ifdef CT_CCK_HAVE_AVX2_BUILD
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        axpy_impl = axpy_avx2;
        dot_impl = dot_avx2;
        adam_impl = adam_avx2;
        if (__builtin_cpu_supports("avx512f")) {
            axpy_group_impl = axpy_group_avx512;
            dot_group_impl = dot_group_avx512;
            positive_impl = positive_avx512;
            transpose_impl = transpose_avx512;
            relu_count_impl = relu_count_avx512;
        }
    }
#endif
}

void ct_cck_axpy(float *y, float a, const float *x, int n) { axpy_impl(y, a, x, n); }
float ct_cck_dot(const float *x, const float *y, int n) { return dot_impl(x, y, n); }
void ct_cck_adam_span(float *p, const float *g, float *m, float *v, size_t n, const ct_cck_adam_coef *k)
{
    adam_impl(p, g, m, v, n, k);
}

void ct_cck_axpy_gather(float *y, int n, const float *X, size_t ld, const int32_t *idx, const float *val,
                        const size_t *pos, size_t cnt)
{
    for (size_t t0 = 0; t0 < cnt; t0 += CT_CCK_AXPY_GROUP) {
        int k = cnt - t0 < CT_CCK_AXPY_GROUP ? (int)(cnt - t0) : CT_CCK_AXPY_GROUP;
        float a[CT_CCK_AXPY_GROUP];
        const float *x[CT_CCK_AXPY_GROUP];
        for (int t = 0; t < k; t++) {
            a[t] = val[pos ? pos[t0 + t] : t0 + t];
            x[t] = X + (size_t)idx[t0 + t] * ld;
        }
        axpy_group_impl(y, n, k, a, x);
    }
}

void ct_cck_dot_gather(const float *g, int n, const float *X, size_t ld, const int32_t *idx, size_t cnt, float *out)
{
    for (size_t t0 = 0; t0 < cnt; t0 += CT_CCK_DOT_GROUP) {
        int k = cnt - t0 < CT_CCK_DOT_GROUP ? (int)(cnt - t0) : CT_CCK_DOT_GROUP;
        const float *x[CT_CCK_DOT_GROUP];
        for (int t = 0; t < k; t++)
            x[t] = X + (size_t)idx[t0 + t] * ld;
        dot_group_impl(g, n, k, x, out + t0);
    }
}

size_t ct_cck_positive(const float *r, int n, int32_t *col, float *val) { return positive_impl(r, n, col, val); }

void ct_cck_transpose(float *o, size_t ldo, const float *s, size_t lds, int rows, int cols, int accumulate)
{
    transpose_impl(o, ldo, s, lds, rows, cols, accumulate);
}

size_t ct_cck_relu_count_row(float *r, int n) { return relu_count_impl(r, n); }

/* Causal softmax attention on the CPU. Each (sequence, head, query tile) is one task;
 * the two products per tile are single-threaded SGEMMs (OpenBLAS is held at one thread
 * while the OpenMP tasks run, so the partition of work never depends on the thread
 * count) and only the keys up to the tile's last query are computed. */
/* Float compares may be if-converted (vectorised): nothing here relies on FP traps. */
#pragma GCC optimize("no-trapping-math")

#include "kernels/backend.h"
#include "common/error.h"
#include "kernels/cpu/vecmath.h"

#include "kernels/cpu/blas_threads.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define QTILE 64

/* softmax of s[0..n) in place after adding slope*j; zero s[n..ld) */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void softmax_row(float *s, int n, int ld, float slope)
{
    float mx = -INFINITY;
    if (slope != 0.0f)
#pragma omp simd
        for (int j = 0; j < n; j++)
            s[j] += slope * (float)j;
#pragma omp simd reduction(max : mx)
    for (int j = 0; j < n; j++)
        mx = s[j] > mx ? s[j] : mx;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < n; j++) {
        s[j] = ct_vexpf(s[j] - mx);
        sum += s[j];
    }
    float inv = 1.0f / sum;
#pragma omp simd
    for (int j = 0; j < n; j++)
        s[j] *= inv;
    for (int j = n; j < ld; j++)
        s[j] = 0.0f;
}

int ct_kcpu_attention_fwd(float *out, float *probs, const float *q, const float *kk,
                          const float *v, const float *slopes, int B, int T, int nh, int hd,
                          float scale)
{
    int C = nh * hd, ntile = (T + QTILE - 1) / QTILE;
    size_t ntask = (size_t)B * nh * ntile;
    int saved = ct_blas_single_begin(), oom = 0;
#pragma omp parallel
    {
        float *S = malloc(sizeof(float) * (size_t)QTILE * T);
        if (!S) {
#pragma omp atomic write
            oom = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (size_t task = 0; task < ntask; task++) {
            if (!S)
                continue;
            /* Last tiles first: they hold the most keys, so dynamic scheduling balances. */
            int tile = ntile - 1 - (int)(task % ntile);
            size_t bh = task / ntile;
            int b = (int)(bh / nh), h = (int)(bh % nh);
            int i0 = tile * QTILE, i1 = i0 + QTILE < T ? i0 + QTILE : T, M = i1 - i0;
            const float *Q = q + bh * T * hd, *K = kk + bh * T * hd, *V = v + bh * T * hd;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, i1, hd, scale,
                        Q + (size_t)i0 * hd, hd, K, hd, 0.0f, S, i1);
            for (int i = i0; i < i1; i++) {
                float *s = S + (size_t)(i - i0) * i1;
                softmax_row(s, i + 1, i1, slopes ? slopes[h] : 0.0f);
                if (probs) {
                    float *pr = probs + (bh * T + i) * T;
                    memcpy(pr, s, sizeof(float) * (i + 1));
                    memset(pr + i + 1, 0, sizeof(float) * (T - i - 1));
                }
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, hd, i1, 1.0f, S, i1, V, hd,
                        0.0f, out + ((size_t)b * T + i0) * C + (size_t)h * hd, C);
        }
        free(S);
    }
    ct_blas_single_end(saved);
    if (oom)
        return ct_error_set(CT_ENOMEM, "attention: cannot allocate %zu bytes of scratch",
                            sizeof(float) * (size_t)QTILE * T);
    return 0;
}

int ct_kcpu_attention_bwd(float *dq, float *dk, float *dv, const float *dout,
                          const float *probs, const float *q, const float *kk, const float *v,
                          int B, int T, int nh, int hd, float scale)
{
    int C = nh * hd;
    size_t nbh = (size_t)B * nh;
    int saved = ct_blas_single_begin(), oom = 0;
#pragma omp parallel
    {
        float *dS = malloc(sizeof(float) * (size_t)T * T);
        if (!dS) {
#pragma omp atomic write
            oom = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (size_t bh = 0; bh < nbh; bh++) {
            if (!dS)
                continue;
            int b = (int)(bh / nh), h = (int)(bh % nh);
            const float *Q = q + bh * T * hd, *K = kk + bh * T * hd, *V = v + bh * T * hd;
            const float *P = probs + bh * T * T, *G = dout + (size_t)b * T * C + (size_t)h * hd;
            /* dP = dO Vᵀ ; dV = Pᵀ dO */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, 1.0f, G, C, V, hd, 0.0f,
                        dS, T);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1.0f, P, T, G, C, 0.0f,
                        dv + bh * T * hd, hd);
            for (int i = 0; i < T; i++) {
                float *g = dS + (size_t)i * T;
                const float *p = P + (size_t)i * T;
                float dot = 0.0f;
                for (int j = 0; j <= i; j++)
                    dot += p[j] * g[j];
                for (int j = 0; j <= i; j++)
                    g[j] = p[j] * (g[j] - dot) * scale;
                for (int j = i + 1; j < T; j++)
                    g[j] = 0.0f;
            }
            /* dQ = dS K ; dK = dSᵀ Q */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, dS, T, K, hd,
                        0.0f, dq + bh * T * hd, hd);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1.0f, dS, T, Q, hd, 0.0f,
                        dk + bh * T * hd, hd);
        }
        free(dS);
    }
    ct_blas_single_end(saved);
    if (oom)
        return ct_error_set(CT_ENOMEM, "attention backward: cannot allocate %zu bytes of scratch",
                            sizeof(float) * (size_t)T * T);
    return 0;
}

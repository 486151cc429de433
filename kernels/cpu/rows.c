/* Row operations on the CPU: embedding lookup, row gather/scatter, log-softmax and
 * cross-entropy (max-shifted; the vectorised sums have a fixed order per binary). */
/* Float compares may be if-converted (vectorised): nothing here relies on FP traps. */
#pragma GCC optimize("no-trapping-math")

#include "kernels/backend.h"
#include "kernels/cpu/vecmath.h"

#include <math.h>
#include <string.h>

int ct_kcpu_embedding_fwd(float *out, const int32_t *ids, const float *wte, int N, int C)
{
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        memcpy(out + (size_t)n * C, wte + (size_t)ids[n] * C, (size_t)C * sizeof(float));
    return 0;
}

int ct_kcpu_gather_rows(float *out, const float *inp, const int32_t *rows, int R, int C)
{
    for (int r = 0; r < R; r++)
        memcpy(out + (size_t)r * C, inp + (size_t)rows[r] * C, (size_t)C * sizeof(float));
    return 0;
}

int ct_kcpu_scatter_add_rows(float *dst, const float *src, const int32_t *rows, int R, int C)
{
    for (int r = 0; r < R; r++) {
        float *d = dst + (size_t)rows[r] * C;
        const float *s = src + (size_t)r * C;
        for (int c = 0; c < C; c++)
            d[c] += s[c];
    }
    return 0;
}

__attribute__((target_clones("avx512f", "avx2", "default")))
static float row_logsumexp(const float *x, int V)
{
    float mx = x[0];
#pragma omp simd reduction(max : mx)
    for (int i = 1; i < V; i++)
        mx = x[i] > mx ? x[i] : mx;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < V; i++)
        s += ct_vexpf(x[i] - mx);
    return mx + logf(s);
}

int ct_kcpu_logsoftmax(float *out, const float *logits, int N, int V)
{
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float *o = out + (size_t)n * V;
        float lse = row_logsumexp(x, V);
        for (int i = 0; i < V; i++)
            o[i] = x[i] - lse;
    }
    return 0;
}

int ct_kcpu_cross_entropy(float *loss, const float *logits, const int32_t *targets, int N,
                          int V)
{
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        int t = targets[n];
        loss[n] = (t >= 0 && t < V) ? row_logsumexp(x, V) - x[t] : 0.0f;
    }
    return 0;
}

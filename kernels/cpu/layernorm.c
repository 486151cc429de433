/* LayerNorm on the CPU (parametric or not), statistics in double per row. */
#include "kernels/backend.h"

#include <math.h>

int ct_kcpu_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp,
                          const float *w, const float *b, int N, int C, float eps)
{
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        double s = 0;
        for (int i = 0; i < C; i++)
            s += x[i];
        float m = (float)(s / C);
        double v = 0;
        for (int i = 0; i < C; i++) {
            double d = (double)x[i] - m;
            v += d * d;
        }
        float r = (float)(1.0 / sqrt(v / C + (double)eps));
        for (int i = 0; i < C; i++) {
            float y = (x[i] - m) * r;
            if (w)
                y *= w[i];
            if (b)
                y += b[i];
            o[i] = y;
        }
        mean[n] = m;
        rstd[n] = r;
    }
    return 0;
}

int ct_kcpu_layernorm_bwd(float *dinp, float *dw, float *db, const float *dout,
                          const float *inp, const float *w, const float *mean,
                          const float *rstd, int N, int C)
{
    if (dinp) {
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
            float *dx = dinp + (size_t)n * C;
            float m = mean[n], r = rstd[n];
            double s1 = 0, s2 = 0;
            for (int i = 0; i < C; i++) {
                float dn = w ? g[i] * w[i] : g[i];
                s1 += dn;
                s2 += (double)dn * ((x[i] - m) * r);
            }
            float a = (float)(s1 / C), c = (float)(s2 / C);
            for (int i = 0; i < C; i++) {
                float dn = w ? g[i] * w[i] : g[i];
                float xh = (x[i] - m) * r;
                dx[i] += (dn - a - xh * c) * r;
            }
        }
    }
    if (dw || db) {
        int nb = (C + 63) / 64;
#pragma omp parallel for schedule(static)
        for (int bi = 0; bi < nb; bi++) {
            int i0 = bi * 64, i1 = i0 + 64 < C ? i0 + 64 : C;
            float aw[64] = {0}, ab[64] = {0};
            for (int n = 0; n < N; n++) {
                const float *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
                float m = mean[n], r = rstd[n];
                for (int i = i0; i < i1; i++) {
                    aw[i - i0] += g[i] * ((x[i] - m) * r);
                    ab[i - i0] += g[i];
                }
            }
            for (int i = i0; i < i1; i++) {
                if (dw)
                    dw[i] += aw[i - i0];
                if (db)
                    db[i] += ab[i - i0];
            }
        }
    }
    return 0;
}

/* Linear layers on the CPU: OpenBLAS SGEMM, bias sums in a fixed row order. */
#include "kernels/backend.h"

#include <cblas.h>

void ct_kcpu_matmul_fwd(float *out, const float *inp, const float *w, const float *bias, int N,
                        int C, int OC, int accumulate)
{
    if (N <= 0 || OC <= 0)
        return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, w, C,
                accumulate ? 1.0f : 0.0f, out, OC);
    if (bias) {
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++) {
            float *o = out + (size_t)n * OC;
            for (int j = 0; j < OC; j++)
                o[j] += bias[j];
        }
    }
}

void ct_kcpu_matmul_bwd(float *dinp, float *dw, float *dbias, const float *dout,
                        const float *inp, const float *w, int N, int C, int OC, int accumulate)
{
    if (N <= 0)
        return;
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, w, C,
                    accumulate ? 1.0f : 0.0f, dinp, C);
    if (dw)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C,
                    1.0f, dw, C);
    if (dbias) {
        /* Column blocks per thread, rows summed in order: independent of thread count. */
        int nb = (OC + 63) / 64;
#pragma omp parallel for schedule(static)
        for (int bi = 0; bi < nb; bi++) {
            int j0 = bi * 64, j1 = j0 + 64 < OC ? j0 + 64 : OC;
            float acc[64] = {0};
            for (int n = 0; n < N; n++) {
                const float *d = dout + (size_t)n * OC;
                for (int j = j0; j < j1; j++)
                    acc[j - j0] += d[j];
            }
            for (int j = j0; j < j1; j++)
                dbias[j] += acc[j - j0];
        }
    }
}

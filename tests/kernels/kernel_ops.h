/* Shared by the kernel tests: random data and a scalar probe L = Σ out·R of one op, so
 * that an op's backward (given dout = R) can be checked against finite differences,
 * and CPU and CUDA results compared op by op. */
#ifndef CT_TEST_KERNEL_OPS_H
#define CT_TEST_KERNEL_OPS_H

#include "kernels/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static inline float *kt_rand(size_t n, unsigned *seed, float scale)
{
    float *p = malloc(n * sizeof(float) + 4);
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        p[i] = scale * ((float)(*seed >> 8) / 16777216.0f * 2.0f - 1.0f);
    }
    return p;
}

static inline double kt_maxdiff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m))
            m = d;
    }
    return m;
}

static inline double kt_maxabs(const float *a, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

#endif

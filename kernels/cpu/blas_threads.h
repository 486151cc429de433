/* Holding OpenBLAS at one thread while OpenMP threads each run their own SGEMM
 * (internal to kernels/cpu/). With the pthreads build of OpenBLAS its thread count is
 * lowered for the duration; the OpenMP build already runs single-threaded inside a
 * parallel region, and changing its count would shrink our own OpenMP teams. */
#ifndef CT_KERNELS_CPU_BLAS_THREADS_H
#define CT_KERNELS_CPU_BLAS_THREADS_H

#include <cblas.h>

/* Returns what ct_blas_single_end needs to restore (0: nothing changed). */
static inline int ct_blas_single_begin(void)
{
    if (openblas_get_parallel() != 1)
        return 0;
    int saved = openblas_get_num_threads();
    openblas_set_num_threads(1);
    return saved;
}

static inline void ct_blas_single_end(int saved)
{
    if (saved > 0)
        openblas_set_num_threads(saved);
}

#endif

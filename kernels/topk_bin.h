/* The step of a radix selection shared by the CPU and CUDA BatchTopK code (a header so
 * that the CUDA plugin, which links nothing of the host library, compiles the same
 * lines): given a histogram of a digit's values over the candidates, find the bin that
 * holds the K-th largest candidate. */
#ifndef CT_KERNELS_TOPK_BIN_H
#define CT_KERNELS_TOPK_BIN_H

#include <stddef.h>
#include <stdint.h>

/* Scanning hist[nbins] from the top, the bin holding the K-th entry (1 ≤ K ≤ the total);
 * *rest = K − the entries in the bins above it, the rank to look for inside the bin. */
static inline int ct_cck_topk_bin(const uint32_t *hist, int nbins, size_t K, size_t *rest)
{
    size_t above = 0;
    int b = nbins - 1;
    while (b > 0 && above + hist[b] < K)
        above += hist[b--];
    *rest = K - above;
    return b;
}

#endif

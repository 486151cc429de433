/* The BatchTopK crosscoder's selections on the CPU (METHOD §2): the batch-wide top k·B,
 * the inference threshold and AuxK's per-row choice among dead latents. They are the
 * references of the CUDA selections (kernels/cuda/crosscoder_topk.cu), which must pick
 * exactly the same entries.
 *
 * Scores are s = f·n_j ≥ 0, and non-negative floats order like their bit patterns, so
 * the K-th largest score is found exactly by radix selection over those bits: histogram
 * one digit, find the bin holding the K-th entry from the top (ct_cck_topk_bin), recurse
 * into it. The digit widths do not change the answer, so the CPU (two 16-bit digits)
 * and the GPU (11, 11 and 10 bits, histograms that fit shared memory) agree by
 * construction; ties at the threshold are resolved by position, never by scheduling. */
#include "kernels/crosscoder_kernels.h"
#include "kernels/topk_bin.h"

#include "common/error.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static inline uint32_t fbits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

/* Scores of row b into the caller's view: one multiply, as on the GPU (__fmul_rn). */
static inline float score(const float *F, const float *ns, int H, int b, int j)
{
    return F[(size_t)b * H + j] * ns[j];
}

/* hist[] = the histogram of the 16-bit digit (bits >> shift) & 0xffff over the positive
 * scores whose bits match (bits & mmask) == mval; returns how many there are. Threads
 * fill partial histograms that are then added: integer counts, so the result does not
 * depend on the split. */
static size_t score_hist(const float *F, const float *ns, int B, int H, uint32_t mmask, uint32_t mval, int shift,
                         uint32_t *hist)
{
    int T = omp_get_max_threads();
    /* Without memory for the partials, one thread counts straight into hist. */
    uint32_t *part = T > 1 ? calloc((size_t)T * CT_CCK_TOPK_BINS, sizeof *part) : NULL;
    size_t total = 0;
    memset(hist, 0, CT_CCK_TOPK_BINS * sizeof *hist);
#pragma omp parallel if (part) reduction(+ : total)
    {
        uint32_t *h = part ? part + (size_t)omp_get_thread_num() * CT_CCK_TOPK_BINS : hist;
#pragma omp for schedule(static)
        for (int b = 0; b < B; b++)
            for (int j = 0; j < H; j++) {
                float s = score(F, ns, H, b, j);
                uint32_t u = fbits(s);
                if (s > 0.0f && (u & mmask) == mval) {
                    h[(u >> shift) & 0xffffu]++;
                    total++;
                }
            }
    }
    if (part) {
        for (size_t t = 0; t < (size_t)T; t++)
            for (int i = 0; i < CT_CCK_TOPK_BINS; i++)
                hist[i] += part[t * CT_CCK_TOPK_BINS + i];
        free(part);
    }
    return total;
}

float ct_cck_batch_topk(float *F, const float *ns, int B, int H, size_t K, uint32_t *hist, size_t *rowcnt)
{
    size_t npos = score_hist(F, ns, B, H, 0u, 0u, 16, hist);
    if (K > npos)
        K = npos; /* keep every positive score: the threshold is the smallest of them */
    if (K == 0) {
        memset(F, 0, (size_t)B * H * sizeof *F);
        return 0.0f;
    }
    /* The high digit's bin holding the K-th score, then the rank inside it. */
    size_t r, ties_keep;
    uint32_t hb = (uint32_t)ct_cck_topk_bin(hist, CT_CCK_TOPK_BINS, K, &r);
    score_hist(F, ns, B, H, 0xffff0000u, hb << 16, 0, hist);
    int lb = ct_cck_topk_bin(hist, CT_CCK_TOPK_BINS, r, &ties_keep);
    uint32_t tbits = hb << 16 | (uint32_t)lb;
    float tval;
    memcpy(&tval, &tbits, sizeof tval);
    if (ties_keep == hist[lb]) {
        /* All the ties are kept (the usual case): keep s >= tval, which for floats is
         * s > the next float below tval. */
        ct_cck_threshold_mask(F, ns, B, H, nextafterf(tval, 0.0f));
        return tval;
    }
    /* Ties per row, then a prefix so that each row knows how many of its ties to keep:
     * the batch keeps the first ties_keep of them in row-major order. */
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        size_t c = 0;
        for (int j = 0; j < H; j++)
            c += score(F, ns, H, b, j) == tval;
        rowcnt[b] = c;
    }
    size_t before = 0;
    for (int b = 0; b < B; b++) {
        size_t c = rowcnt[b];
        rowcnt[b] = before;
        before += c;
    }
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        size_t tie = rowcnt[b];
        float *row = F + (size_t)b * H;
        for (int j = 0; j < H; j++) {
            float s = row[j] * ns[j];
            int keep = s > tval || (s == tval && tie++ < ties_keep);
            if (!keep)
                row[j] = 0.0f;
        }
    }
    return tval;
}

void ct_cck_threshold_mask(float *F, const float *ns, int B, int H, float threshold)
{
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        float *row = F + (size_t)b * H;
        for (int j = 0; j < H; j++)
            if (!(row[j] * ns[j] > threshold))
                row[j] = 0.0f;
    }
}

typedef struct { float s; int32_t j; } scored;

/* Larger score first, then lower latent index. */
static int cmp_scored(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->s != y->s)
        return x->s > y->s ? -1 : 1;
    return (x->j > y->j) - (x->j < y->j);
}

int ct_cck_aux_select(const float *R, const float *ns, const uint8_t *dead, int B, int H, int kk,
                      size_t *rowcnt, ct_cck_csr *out)
{
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        size_t c = 0;
        for (int j = 0; j < H; j++)
            c += dead[j] && R[(size_t)b * H + j] > 0.0f;
        rowcnt[b + 1] = c < (size_t)kk ? c : (size_t)kk;
    }
    rowcnt[0] = 0;
    for (int b = 0; b < B; b++)
        rowcnt[b + 1] += rowcnt[b];
    int rc = ct_cck_csr_reserve(out, B, H, rowcnt[B]);
    if (rc)
        return rc;
    memcpy(out->row_ptr, rowcnt, ((size_t)B + 1) * sizeof *rowcnt);
    out->nnz = rowcnt[B];
    int fail = 0;
#pragma omp parallel
    {
        scored *buf = malloc((size_t)H * sizeof *buf);
        if (!buf) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(static)
        for (int b = 0; b < B; b++) {
            if (!buf)
                continue;
            int c = 0;
            for (int j = 0; j < H; j++) {
                float v = R[(size_t)b * H + j];
                if (dead[j] && v > 0.0f)
                    buf[c++] = (scored){v * ns[j], j};
            }
            if (c > kk)
                qsort(buf, (size_t)c, sizeof *buf, cmp_scored);
            int take = c < kk ? c : kk;
            /* CSR columns ascend within a row: order the chosen ones by latent. */
            int32_t *col = out->col + rowcnt[b];
            for (int t = 0; t < take; t++)
                col[t] = buf[t].j;
            for (int t = 1; t < take; t++) { /* insertion sort; take <= k_aux */
                int32_t v = col[t];
                int u = t - 1;
                while (u >= 0 && col[u] > v) {
                    col[u + 1] = col[u];
                    u--;
                }
                col[u + 1] = v;
            }
            for (int t = 0; t < take; t++)
                out->val[rowcnt[b] + t] = R[(size_t)b * H + col[t]];
        }
        free(buf);
    }
    if (fail)
        return ct_error_set(CT_ENOMEM, "crosscoder: out of memory selecting AuxK latents");
    return 0;
}

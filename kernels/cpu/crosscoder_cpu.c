/* CPU crosscoder kernels: SGEMM for the dense path, CSR/CSC gathers for the sparse
 * path, and the fused elementwise passes (Adam, sums of squares, column sums).
 *
 * Determinism: every parallel loop writes disjoint outputs, each computed in a fixed
 * order, so no result depends on which thread ran what; float sums across threads are
 * never combined with atomics. SGEMMs are split over output blocks only (sgemm_par), so
 * they are reproducible for a fixed thread count. */
#include "kernels/crosscoder_kernels.h"

#include "common/error.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define CT_CCK_HAVE_MXCSR 1
#endif

int ct_cck_csr_reserve(ct_cck_csr *a, int rows, int cols, size_t nnz)
{
    if (a->rows != rows || !a->row_ptr) {
        size_t *rp = realloc(a->row_ptr, ((size_t)rows + 1) * sizeof *rp);
        if (!rp)
            return ct_error_set(CT_ENOMEM, "crosscoder kernels: out of memory for %d CSR rows", rows);
        a->row_ptr = rp;
    }
    a->rows = rows;
    a->cols = cols;
    if (nnz > a->cap || !a->col) {
        size_t cap = nnz > a->cap * 3 / 2 ? nnz : a->cap * 3 / 2;
        if (cap == 0)
            cap = 1;
        int32_t *c = realloc(a->col, cap * sizeof *c);
        if (c)
            a->col = c;
        float *v = c ? realloc(a->val, cap * sizeof *v) : NULL;
        if (!c || !v)
            return ct_error_set(CT_ENOMEM, "crosscoder kernels: out of memory for %zu CSR entries", cap);
        a->val = v;
        a->cap = cap;
    }
    return 0;
}

void ct_cck_csr_free(ct_cck_csr *a)
{
    if (!a)
        return;
    free(a->row_ptr);
    free(a->col);
    free(a->val);
    memset(a, 0, sizeof *a);
}

int ct_cck_csc_reserve(ct_cck_csc *a, int rows, int cols, size_t nnz)
{
    if (a->cols != cols || !a->col_ptr) {
        size_t *cp = realloc(a->col_ptr, ((size_t)cols + 1) * sizeof *cp);
        if (!cp)
            return ct_error_set(CT_ENOMEM, "crosscoder kernels: out of memory for %d CSC columns", cols);
        a->col_ptr = cp;
    }
    a->rows = rows;
    a->cols = cols;
    if (nnz > a->cap || !a->row) {
        size_t cap = nnz > a->cap * 3 / 2 ? nnz : a->cap * 3 / 2;
        if (cap == 0)
            cap = 1;
        int32_t *r = realloc(a->row, cap * sizeof *r);
        if (r)
            a->row = r;
        size_t *p = r ? realloc(a->pos, cap * sizeof *p) : NULL;
        if (!r || !p)
            return ct_error_set(CT_ENOMEM, "crosscoder kernels: out of memory for %zu CSC entries", cap);
        a->pos = p;
        a->cap = cap;
    }
    return 0;
}

void ct_cck_csc_free(ct_cck_csc *a)
{
    if (!a)
        return;
    free(a->col_ptr);
    free(a->row);
    free(a->pos);
    memset(a, 0, sizeof *a);
}

/* Denormals: latents that stop firing leave Adam moments and decoder gradients decaying
 * geometrically toward zero, and x86 handles subnormal operands through a microcode
 * assist that is ~100x slower, so a run would slow down unpredictably as more latents
 * go quiet. Flushing them changes values only below 1.2e-38 and is applied for the whole
 * step on every thread, so runs stay reproducible. The previous mode is restored so
 * other code sharing the OpenMP pool keeps IEEE behaviour. */
#ifdef CT_CCK_HAVE_MXCSR
static _Thread_local unsigned ct_cck_saved_csr;
static _Thread_local int ct_cck_csr_depth;

static void fpmode_enter_one(void)
{
    if (ct_cck_csr_depth++ == 0) {
        ct_cck_saved_csr = _mm_getcsr();
        _mm_setcsr(ct_cck_saved_csr | 0x8040u); /* FTZ (bit 15) | DAZ (bit 6) */
    }
}

static void fpmode_restore_one(void)
{
    if (ct_cck_csr_depth > 0 && --ct_cck_csr_depth == 0)
        _mm_setcsr(ct_cck_saved_csr);
}
#else
static void fpmode_enter_one(void) {}
static void fpmode_restore_one(void) {}
#endif

void ct_cck_fpmode_enter(void)
{
    fpmode_enter_one();
#pragma omp parallel
    {
        if (omp_get_thread_num() != 0)
            fpmode_enter_one();
    }
}

void ct_cck_fpmode_restore(void)
{
#pragma omp parallel
    {
        if (omp_get_thread_num() != 0)
            fpmode_restore_one();
    }
    fpmode_restore_one();
}


/* SGEMM parallelised by OpenMP over blocks of the output, each block one
 * single-threaded OpenBLAS call. OpenBLAS's own pthread pool keeps its workers
 * spinning for a while after every call; interleaved with OpenMP loops on the same
 * cores the two pools steal time from each other (elementwise passes ran 10-20x slower
 * in measurements), so all threading here goes through OpenMP and OpenBLAS runs at one
 * thread for the duration. Each output element is still reduced over K by one call in
 * one order. */
static void sgemm_par(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K, float alpha,
                      const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    int saved = openblas_get_num_threads();
    if (saved != 1)
        openblas_set_num_threads(1);
    if (nt <= 1 || (M < 64 && N < 64)) {
        cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    } else {
        int split_n = N >= M;
        int len = split_n ? N : M;
        int chunk = (len + nt - 1) / nt;
        chunk = (chunk + 15) / 16 * 16;
        int nchunks = (len + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int t = 0; t < nchunks; t++) {
            int o = t * chunk, n = len - o < chunk ? len - o : chunk;
            if (split_n) {
                const float *Bp = tb == CblasNoTrans ? B + o : B + (size_t)o * ldb;
                cblas_sgemm(CblasRowMajor, ta, tb, M, n, K, alpha, A, lda, Bp, ldb, beta, C + o, ldc);
            } else {
                const float *Ap = ta == CblasNoTrans ? A + (size_t)o * lda : A + o;
                cblas_sgemm(CblasRowMajor, ta, tb, n, N, K, alpha, Ap, lda, B, ldb, beta, C + (size_t)o * ldc, ldc);
            }
        }
    }
    if (saved != 1)
        openblas_set_num_threads(saved);
}

void ct_cck_encode(const float *X, const float *W_enc, const float *b_enc, float *pre,
                   int B, int D, int H)
{
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        memcpy(pre + (size_t)b * H, b_enc, (size_t)H * sizeof(float));
    sgemm_par(CblasNoTrans, CblasNoTrans, B, H, D, 1.0f, X, D, W_enc, H, 1.0f, pre, H);
}

void ct_cck_relu(float *F, size_t n)
{
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++)
        F[i] = F[i] > 0.0f ? F[i] : 0.0f;
}

void ct_cck_decode_dense(const float *F, const float *W_dec, const float *b_dec, float *Xh,
                         int B, int H, int D)
{
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        if (b_dec)
            memcpy(Xh + (size_t)b * D, b_dec, (size_t)D * sizeof(float));
        else
            memset(Xh + (size_t)b * D, 0, (size_t)D * sizeof(float));
    }
    sgemm_par(CblasNoTrans, CblasNoTrans, B, D, H, 1.0f, F, H, W_dec, D, 1.0f, Xh, D);
}

size_t ct_cck_relu_count(float *F, int B, int H, size_t *row_ptr)
{
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        row_ptr[b + 1] = ct_cck_relu_count_row(F + (size_t)b * H, H);
    row_ptr[0] = 0;
    for (int b = 0; b < B; b++)
        row_ptr[b + 1] += row_ptr[b];
    return row_ptr[B];
}

int ct_cck_csr_fill(const float *F, int B, int H, const size_t *row_ptr, ct_cck_csr *out)
{
    int rc = ct_cck_csr_reserve(out, B, H, row_ptr[B]);
    if (rc)
        return rc;
    memcpy(out->row_ptr, row_ptr, ((size_t)B + 1) * sizeof *row_ptr);
    out->nnz = row_ptr[B];
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        size_t e = row_ptr[b];
        ct_cck_positive(F + (size_t)b * H, H, out->col + e, out->val + e);
    }
    return 0;
}

int ct_cck_csr_from_dense(const float *F, int B, int H, ct_cck_csr *out)
{
    int rc = ct_cck_csr_reserve(out, B, H, 0);
    if (rc)
        return rc;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        const float *r = F + (size_t)b * H;
        size_t c = 0;
        for (int j = 0; j < H; j++)
            c += r[j] > 0.0f;
        out->row_ptr[b + 1] = c;
    }
    out->row_ptr[0] = 0;
    for (int b = 0; b < B; b++)
        out->row_ptr[b + 1] += out->row_ptr[b];
    size_t nnz = out->row_ptr[B];
    rc = ct_cck_csr_reserve(out, B, H, nnz);
    if (rc)
        return rc;
    out->nnz = nnz;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        size_t e = out->row_ptr[b];
        ct_cck_positive(F + (size_t)b * H, H, out->col + e, out->val + e);
    }
    return 0;
}

/* ct_cck_csc_from_csr over blocks of rows, one per thread: each block counts its
 * columns, the counts are laid out column by column in block order, and each block fills
 * its own slots, so every column still lists its rows ascending and the arrays are those
 * of the sequential pass. 0, or 1 when the counts do not fit in memory. */
static int csc_fill_par(const ct_cck_csr *a, ct_cck_csc *out, int nt)
{
    size_t cols = (size_t)a->cols;
    size_t *cur = calloc((size_t)nt * cols, sizeof *cur);
    if (!cur)
        return 1;
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        int b0 = (int)((long long)a->rows * t / T), b1 = (int)((long long)a->rows * (t + 1) / T);
        size_t *c = cur + (size_t)t * cols;
        for (size_t e = a->row_ptr[b0]; e < a->row_ptr[b1]; e++)
            c[a->col[e]]++;
#pragma omp barrier
#pragma omp single
        {
            size_t run = 0;
            for (size_t j = 0; j < cols; j++) {
                out->col_ptr[j] = run;
                for (int u = 0; u < T; u++) {
                    size_t n = cur[(size_t)u * cols + j];
                    cur[(size_t)u * cols + j] = run;
                    run += n;
                }
            }
            out->col_ptr[cols] = run;
        }
        for (int b = b0; b < b1; b++)
            for (size_t e = a->row_ptr[b]; e < a->row_ptr[b + 1]; e++) {
                size_t k = c[a->col[e]]++;
                out->row[k] = b;
                out->pos[k] = e;
            }
    }
    free(cur);
    return 0;
}

int ct_cck_csc_from_csr(const ct_cck_csr *a, ct_cck_csc *out)
{
    int rc = ct_cck_csc_reserve(out, a->rows, a->cols, a->nnz);
    if (rc)
        return rc;
    out->nnz = a->nnz;
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (nt > a->rows)
        nt = a->rows;
    /* below a few thousand entries the thread start-up costs more than it saves */
    if (nt > 1 && a->nnz >= 4096 && csc_fill_par(a, out, nt) == 0)
        return 0;
    size_t *cp = out->col_ptr;
    memset(cp, 0, ((size_t)a->cols + 1) * sizeof *cp);
    for (size_t e = 0; e < a->nnz; e++)
        cp[a->col[e] + 1]++;
    for (int j = 0; j < a->cols; j++)
        cp[j + 1] += cp[j];
    /* Fill by walking rows in order so every column lists its rows ascending; the
     * write cursor borrows col_ptr[j] and is shifted back afterwards. */
    for (int b = 0; b < a->rows; b++)
        for (size_t e = a->row_ptr[b]; e < a->row_ptr[b + 1]; e++) {
            size_t k = cp[a->col[e]]++;
            out->row[k] = b;
            out->pos[k] = e;
        }
    for (int j = a->cols; j > 0; j--)
        cp[j] = cp[j - 1];
    cp[0] = 0;
    return 0;
}

/* Budget for the slice of a dense operand (rows x chunk floats) that one pass of a
 * sparse kernel keeps hot: half the L3 of the machines this was tuned on. */
#define CT_CCK_SLICE_BYTES (16u << 20)

int ct_cck_sparse_chunk(int rows, int D)
{
    size_t per_col = (size_t)(rows > 0 ? rows : 1) * sizeof(float);
    if (per_col * (size_t)D <= CT_CCK_SLICE_BYTES)
        return D;
    size_t c = CT_CCK_SLICE_BYTES / per_col / 64 * 64;
    if (c < 256)
        c = 256;
    return c < (size_t)D ? (int)c : D;
}

/* The sparse kernels below read whole rows of a dense operand per active entry. When
 * that operand is larger than the cache they walk the columns in slices
 * (ct_cck_sparse_chunk), so each slice of the operand is fetched from memory about once
 * per pass instead of once per entry; a slice result is always summed in the same
 * order, so the output is fixed for a given shape. */
void ct_cck_decode_sparse(const ct_cck_csr *a, const float *W_dec, const float *b_dec,
                          float *Xh, int D)
{
    int C = ct_cck_sparse_chunk(a->cols, D);
    for (int i0 = 0; i0 < D; i0 += C) {
        int n = D - i0 < C ? D - i0 : C;
#pragma omp parallel for schedule(dynamic, 16)
        for (int b = 0; b < a->rows; b++) {
            float *y = Xh + (size_t)b * D + i0;
            if (b_dec)
                memcpy(y, b_dec + i0, (size_t)n * sizeof(float));
            else
                memset(y, 0, (size_t)n * sizeof(float));
            size_t e0 = a->row_ptr[b];
            ct_cck_axpy_gather(y, n, W_dec + i0, (size_t)D, a->col + e0, a->val + e0, NULL, a->row_ptr[b + 1] - e0);
        }
    }
}

void ct_cck_sddmm(const ct_cck_csr *a, const float *G, const float *W_dec, int D,
                  const float *add, float *out)
{
    int C = ct_cck_sparse_chunk(a->cols, D);
    for (int i0 = 0; i0 < D; i0 += C) {
        int n = D - i0 < C ? D - i0 : C, last = i0 + n >= D;
#pragma omp parallel for schedule(dynamic, 16)
        for (int b = 0; b < a->rows; b++) {
            const float *g = G + (size_t)b * D + i0;
            for (size_t f = a->row_ptr[b]; f < a->row_ptr[b + 1]; f += 32) {
                size_t cnt = a->row_ptr[b + 1] - f < 32 ? a->row_ptr[b + 1] - f : 32;
                float part[32];
                ct_cck_dot_gather(g, n, W_dec + i0, (size_t)D, a->col + f, cnt, part);
                for (size_t t = 0; t < cnt; t++) {
                    size_t e = f + t;
                    float s = i0 > 0 ? out[e] + part[t] : part[t];
                    out[e] = last && add ? s + add[a->col[e]] : s;
                }
            }
        }
    }
}

void ct_cck_gather_rows(const ct_cck_csc *c, const float *vals, const float *A, int D,
                        float *dW, int accumulate)
{
    int C = ct_cck_sparse_chunk(c->rows, D);
    for (int i0 = 0; i0 < D; i0 += C) {
        int n = D - i0 < C ? D - i0 : C;
#pragma omp parallel for schedule(dynamic, 8)
        for (int j = 0; j < c->cols; j++) {
            float *y = dW + (size_t)j * D + i0;
            if (!accumulate)
                memset(y, 0, (size_t)n * sizeof(float));
            size_t k0 = c->col_ptr[j];
            ct_cck_axpy_gather(y, n, A + i0, (size_t)D, c->row + k0, vals, c->pos + k0, c->col_ptr[j + 1] - k0);
        }
    }
}

/* Latents per tile of the transposed gather: 64 floats make each strided write-back a
 * 256-byte run, so the pass over dWt touches whole cache lines and few pages per float
 * (with 16 the page-strided writes thrashed the TLB); the tile (64·D floats) stays in L2. */
#define CT_CCK_TILE 64

void ct_cck_gather_cols(const ct_cck_csc *c, const float *vals, const float *A, int D,
                        float *dWt, float *colsum, int accumulate)
{
    int H = c->cols;
    int ntiles = (H + CT_CCK_TILE - 1) / CT_CCK_TILE;
    int C = ct_cck_sparse_chunk(c->rows, D);
    /* Tile rows are padded by one cache line: with a stride of exactly D floats (often a
     * multiple of 4 KiB) the column reads of the write-back all map to one cache set. */
    size_t ld = (size_t)C + 16;
    for (int i0 = 0; i0 < D; i0 += C) {
        int n = D - i0 < C ? D - i0 : C;
        float *cs_out = i0 == 0 ? colsum : NULL;
#pragma omp parallel
        {
            float *s = malloc((size_t)CT_CCK_TILE * ld * sizeof(float));
#pragma omp for schedule(dynamic, 1)
            for (int t = 0; t < ntiles; t++) {
                int j0 = t * CT_CCK_TILE;
                int nt = H - j0 < CT_CCK_TILE ? H - j0 : CT_CCK_TILE;
                if (!s) { /* out of memory for the tile: same sums, element by element */
                    for (int jj = 0; jj < nt; jj++) {
                        int j = j0 + jj;
                        for (int i = i0; i < i0 + n; i++) {
                            float acc = 0.0f;
                            for (size_t k = c->col_ptr[j]; k < c->col_ptr[j + 1]; k++)
                                acc += vals[c->pos[k]] * A[(size_t)c->row[k] * D + i];
                            dWt[(size_t)i * H + j] = accumulate ? dWt[(size_t)i * H + j] + acc : acc;
                        }
                        if (cs_out) {
                            float cs = 0.0f;
                            for (size_t k = c->col_ptr[j]; k < c->col_ptr[j + 1]; k++)
                                cs += vals[c->pos[k]];
                            cs_out[j] = accumulate ? cs_out[j] + cs : cs;
                        }
                    }
                    continue;
                }
                memset(s, 0, (size_t)nt * ld * sizeof(float));
                for (int jj = 0; jj < nt; jj++) {
                    int j = j0 + jj;
                    size_t k0 = c->col_ptr[j], k1 = c->col_ptr[j + 1];
                    ct_cck_axpy_gather(s + (size_t)jj * ld, n, A + i0, (size_t)D, c->row + k0, vals, c->pos + k0,
                                       k1 - k0);
                    if (cs_out) {
                        float cs = 0.0f;
                        for (size_t k = k0; k < k1; k++)
                            cs += vals[c->pos[k]];
                        cs_out[j] = accumulate ? cs_out[j] + cs : cs;
                    }
                }
                ct_cck_transpose(dWt + (size_t)i0 * H + j0, (size_t)H, s, ld, nt, n, accumulate);
            }
            free(s);
        }
    }
}

void ct_cck_grad_f_dense(const float *G, const float *W_dec, float *dF, int B, int D, int H)
{
    sgemm_par(CblasNoTrans, CblasTrans, B, H, D, 1.0f, G, D, W_dec, D, 0.0f, dF, H);
}

void ct_cck_grad_dec_dense(const float *F, const float *G, float *dW_dec, int B, int H, int D)
{
    sgemm_par(CblasTrans, CblasNoTrans, H, D, B, 1.0f, F, H, G, D, 0.0f, dW_dec, D);
}

void ct_cck_grad_enc_dense(const float *X, const float *dPre, float *dW_enc, int B, int D, int H)
{
    sgemm_par(CblasTrans, CblasNoTrans, D, H, B, 1.0f, X, D, dPre, H, 0.0f, dW_enc, H);
}

#define CT_CCK_COLBLOCK 256

void ct_cck_colsum(const float *A, int B, int N, float *out)
{
    int nblk = (N + CT_CCK_COLBLOCK - 1) / CT_CCK_COLBLOCK;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < nblk; t++) {
        int j0 = t * CT_CCK_COLBLOCK, j1 = j0 + CT_CCK_COLBLOCK < N ? j0 + CT_CCK_COLBLOCK : N;
        for (int j = j0; j < j1; j++)
            out[j] = 0.0f;
        for (int b = 0; b < B; b++) {
            const float *r = A + (size_t)b * N;
            for (int j = j0; j < j1; j++)
                out[j] += r[j];
        }
    }
}

/* Block of the fixed-order sum of squares: partial sums of this many elements are
 * combined in index order, whatever the thread count. */
#define CT_CCK_SUMSQ_BLOCK 65536

double ct_cck_sumsq(const float *x, size_t n)
{
    size_t nblk = (n + CT_CCK_SUMSQ_BLOCK - 1) / CT_CCK_SUMSQ_BLOCK;
    double stackpart[64];
    double *part = nblk <= 64 ? stackpart : malloc(nblk * sizeof *part);
    if (!part) { /* out of memory: one sequential pass gives the same fixed order */
        double s = 0.0;
        for (size_t i = 0; i < n; i++)
            s += (double)x[i] * x[i];
        return s;
    }
#pragma omp parallel for schedule(static)
    for (size_t t = 0; t < nblk; t++) {
        size_t i0 = t * CT_CCK_SUMSQ_BLOCK, i1 = i0 + CT_CCK_SUMSQ_BLOCK < n ? i0 + CT_CCK_SUMSQ_BLOCK : n;
        double a[4] = {0, 0, 0, 0};
        size_t i = i0;
        for (; i + 4 <= i1; i += 4)
            for (int k = 0; k < 4; k++)
                a[k] += (double)x[i + k] * x[i + k];
        for (; i < i1; i++)
            a[0] += (double)x[i] * x[i];
        part[t] = (a[0] + a[1]) + (a[2] + a[3]);
    }
    double s = 0.0;
    for (size_t t = 0; t < nblk; t++)
        s += part[t];
    if (part != stackpart)
        free(part);
    return s;
}

void ct_cck_adam(float *p, const float *g, float *m, float *v, size_t n, float gscale,
                 double lr, double b1, double b2, double eps, long t)
{
    /* The scalar factors are computed in double and rounded once, as torch does with
     * Python floats; the per-element arithmetic is fp32. */
    double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
    ct_cck_adam_coef k = {
        .gscale = gscale, .b1 = (float)b1, .b2 = (float)b2, .one_minus_b1 = (float)(1.0 - b1),
        .one_minus_b2 = (float)(1.0 - b2), .step_size = (float)(lr / bc1), .bc2_sqrt = (float)sqrt(bc2),
        .eps = (float)eps};
    /* Chunks of a fixed size, so each element's arithmetic is the same whatever the
     * thread count (the vector body and scalar tail split at fixed offsets). */
    size_t chunk = 1 << 16, nchunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < nchunks; c++) {
        size_t o = c * chunk, len = n - o < chunk ? n - o : chunk;
        ct_cck_adam_span(p + o, g + o, m + o, v + o, len, &k);
    }
}

/* The active-latent (sparse) kernels of a crosscoder step on the GPU. After the ReLU or
 * the top-K selection only a small fraction P of the [B,H] activations is nonzero, so
 * the decoder forward, the gradient with respect to the active pre-activations, and
 * the two weight gradients cost P times the dense products when they loop over the
 * active entries only. The lists of active entries are built once per step: per row
 * the latents in ascending order (CSR), per latent the rows in ascending order (CSC).
 *
 * They compute what the CPU's sparse path (crosscoder/loss.c) computes, to fp32
 * rounding. Each output element is accumulated by one thread over its entries in list
 * order, one fused multiply-add each (the dot products in a fixed per-lane order, then a
 * fixed butterfly across the warp); the lists come from integer counts and scans. No
 * float atomics, so results repeat bit for bit on a given GPU. */
#include "kernels/cuda/crosscoder_cuda.cuh"
#include "kernels/cuda/cuda_common.cuh"

#include <limits.h>

#define SP_THREADS 256
#define SP_COLS 4       /* output columns per thread in the row-list products */
#define SCAN_THREADS 1024

/* out[0..n] = exclusive prefix sums of in[0..n), out[n] the total, in one block: each
 * thread sums a contiguous segment, the segment sums are scanned in shared memory, then
 * each thread writes its segment's prefixes. Integers, so the order does not matter. */
template <typename T> __global__ static void exclusive_scan_kernel(const T *in, int n, int *out)
{
    __shared__ long long sh[SCAN_THREADS];
    int per = (n + SCAN_THREADS - 1) / SCAN_THREADS;
    int lo = threadIdx.x * per, hi = lo + per < n ? lo + per : n;
    long long s = 0;
    for (int i = lo; i < hi; i++)
        s += (long long)in[i];
    sh[threadIdx.x] = s;
    __syncthreads();
    for (int o = 1; o < SCAN_THREADS; o <<= 1) { /* inclusive Hillis–Steele scan */
        long long add = threadIdx.x >= o ? sh[threadIdx.x - o] : 0;
        __syncthreads();
        sh[threadIdx.x] += add;
        __syncthreads();
    }
    long long run = sh[threadIdx.x] - s;
    for (int i = lo; i < hi; i++) {
        out[i] = (int)run;
        run += (long long)in[i];
    }
    if (threadIdx.x == SCAN_THREADS - 1)
        out[n] = (int)sh[SCAN_THREADS - 1];
}

/* CSR: one block per row writes the row's positive latents in ascending order from
 * rowptr[b], a chunk of SP_THREADS latents at a time. */
__global__ static void csr_fill_kernel(const float *F, int H, const int *rowptr, int *rcol)
{
    __shared__ unsigned wcount[SP_THREADS / 32];
    __shared__ unsigned long long base;
    const float *r = F + (size_t)blockIdx.x * H;
    if (threadIdx.x == 0)
        base = (unsigned long long)rowptr[blockIdx.x];
    __syncthreads();
    for (int c0 = 0; c0 < H; c0 += SP_THREADS) {
        int j = c0 + threadIdx.x;
        int on = j < H && r[j] > 0.0f;
        unsigned long long idx = ct_cck_ordered_index(on, &base, wcount);
        if (on)
            rcol[idx] = j;
    }
}

/* CSC, step 1: part[c,j] = positives of latent j in the rows of chunk c. */
__global__ static void csc_count_kernel(const float *F, int B, int H, int *part)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= H)
        return;
    int b0, b1, n = 0;
    ct_cck_row_chunk(B, &b0, &b1);
    for (int b = b0; b < b1; b++)
        n += F[(size_t)b * H + j] > 0.0f;
    part[(size_t)blockIdx.y * H + j] = n;
}

/* CSC, step 2: per latent, the chunk counts become offsets within the latent's list
 * and count[j] the latent's total. */
__global__ static void csc_offsets_kernel(int *part, int chunks, int H, int *count)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= H)
        return;
    int run = 0;
    for (int c = 0; c < chunks; c++) {
        int n = part[(size_t)c * H + j];
        part[(size_t)c * H + j] = run;
        run += n;
    }
    count[j] = run;
}

/* CSC, step 3: each (latent, chunk) writes its rows in ascending order. */
__global__ static void csc_fill_kernel(const float *F, int B, int H, const int *part, const int *colptr,
                                       int *crow)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= H)
        return;
    int b0, b1;
    ct_cck_row_chunk(B, &b0, &b1);
    int pos = colptr[j] + part[(size_t)blockIdx.y * H + j];
    for (int b = b0; b < b1; b++)
        if (F[(size_t)b * H + j] > 0.0f)
            crow[pos++] = b;
}

/* out[o, i] = init[i] (or 0) + Σ_e V[e] · Y[idx[e], i] over the list of o (ptr[o] ..
 * ptr[o+1]), entries in list order, one fused multiply-add each. V[e] is read from the
 * dense [B,H] matrix: at (o, idx[e]) for row lists, at (idx[e], o) for latent lists.
 * Grid (lists, column tiles of SP_THREADS·SP_COLS); each thread owns SP_COLS columns
 * and the block stages a tile of entries in shared memory. */
template <bool ROWS>
__global__ static void list_product_kernel(const int *ptr, const int *idx, const float *V, int H,
                                           const float *Y, int N, const float *init, float *out)
{
    __shared__ int si[SP_THREADS];
    __shared__ float sv[SP_THREADS];
    int o = blockIdx.x;
    int i0 = blockIdx.y * SP_THREADS * SP_COLS + threadIdx.x;
    float acc[SP_COLS];
#pragma unroll
    for (int u = 0; u < SP_COLS; u++) {
        int i = i0 + u * SP_THREADS;
        acc[u] = init && i < N ? init[i] : 0.0f;
    }
    int e0 = ptr[o], e1 = ptr[o + 1];
    for (int t0 = e0; t0 < e1; t0 += SP_THREADS) {
        int n = e1 - t0 < SP_THREADS ? e1 - t0 : SP_THREADS;
        if ((int)threadIdx.x < n) {
            int k = idx[t0 + threadIdx.x];
            si[threadIdx.x] = k;
            sv[threadIdx.x] = ROWS ? V[(size_t)o * H + k] : V[(size_t)k * H + o];
        }
        __syncthreads();
#pragma unroll 4 /* independent loads of several entries in flight */
        for (int t = 0; t < n; t++) {
            const float *y = Y + (size_t)si[t] * N;
            float v = sv[t];
#pragma unroll
            for (int u = 0; u < SP_COLS; u++) {
                int i = i0 + u * SP_THREADS;
                if (i < N)
                    acc[u] = __fmaf_rn(v, y[i], acc[u]);
            }
        }
        __syncthreads(); /* the tile is rewritten next */
    }
#pragma unroll
    for (int u = 0; u < SP_COLS; u++) {
        int i = i0 + u * SP_THREADS;
        if (i < N)
            out[(size_t)o * N + i] = acc[u];
    }
}

/* dF[b,j] = Σ_i G[b,i] W[j,i] (+ addv[j]) for every active (b, j); one block per row,
 * one warp per entry: lane l sums i ≡ l (mod 32) in order (four at a time when VEC),
 * then a fixed butterfly adds the lanes. The row of G is reused by all its entries from
 * the L1 cache. */
template <bool VEC>
__global__ static void active_dot_kernel(const int *rowptr, const int *rcol, const float *G, const float *W, int N,
                                         const float *addv, int H, float *dF)
{
    int b = blockIdx.x, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const float *g = G + (size_t)b * N;
    for (int e = rowptr[b] + warp; e < rowptr[b + 1]; e += SP_THREADS / 32) {
        int j = rcol[e];
        const float *w = W + (size_t)j * N;
        float s = 0.0f;
        if (VEC) {
            const float4 *g4 = (const float4 *)g, *w4 = (const float4 *)w;
#pragma unroll 4
            for (int i = lane; i < N / 4; i += 32) {
                float4 a = g4[i], c = w4[i];
                s = __fmaf_rn(a.x, c.x, s);
                s = __fmaf_rn(a.y, c.y, s);
                s = __fmaf_rn(a.z, c.z, s);
                s = __fmaf_rn(a.w, c.w, s);
            }
        } else {
#pragma unroll 4
            for (int i = lane; i < N; i += 32)
                s = __fmaf_rn(g[i], w[i], s);
        }
        s = ct_warp_sum(s);
        if (lane == 0)
            dF[(size_t)b * H + j] = addv ? __fadd_rn(s, addv[j]) : s;
    }
}

/* O[c, r] = S[r, c] for S [rows, cols], through 32×32 tiles in shared memory. */
__global__ static void transpose_kernel(const float *S, int rows, int cols, float *O)
{
    __shared__ float tile[32][33];
    int c = blockIdx.x * 32 + threadIdx.x;
    for (int k = threadIdx.y; k < 32; k += blockDim.y) {
        int r = blockIdx.y * 32 + k;
        if (r < rows && c < cols)
            tile[k][threadIdx.x] = S[(size_t)r * cols + c];
    }
    __syncthreads();
    int r = blockIdx.y * 32 + threadIdx.x;
    for (int k = threadIdx.y; k < 32; k += blockDim.y) {
        int cc = blockIdx.x * 32 + k;
        if (r < rows && cc < cols)
            O[(size_t)cc * rows + r] = tile[threadIdx.x][k];
    }
}

cudaError_t ct_cck_sparse_alloc(ct_cck_sparse *s, int max_batch, int H)
{
    size_t chunks = ct_cck_row_chunks(max_batch);
    cudaError_t e = cudaMalloc((void **)&s->rowptr, ((size_t)max_batch + 1) * sizeof(int));
    if (e == cudaSuccess) e = cudaMalloc((void **)&s->colptr, ((size_t)H + 1) * sizeof(int));
    if (e == cudaSuccess) e = cudaMalloc((void **)&s->count, (size_t)H * sizeof(int));
    if (e == cudaSuccess) e = cudaMalloc((void **)&s->part, chunks * (size_t)H * sizeof(int));
    return e;
}

void ct_cck_sparse_free(ct_cck_sparse *s)
{
    cudaFree(s->rowptr);
    cudaFree(s->colptr);
    cudaFree(s->count);
    cudaFree(s->part);
    cudaFree(s->rcol);
    cudaFree(s->crow);
    *s = ct_cck_sparse{};
}

int ct_cck_sparse_count(ct_cck_sparse *s, const unsigned long long *count, int B, int H, size_t *nnz)
{
    if ((long long)B * H > INT_MAX)
        return ct_error_set(CT_EINVAL, "cuda crosscoder: the sparse kernels index at most %d entries, not %d x %d",
                            INT_MAX, B, H);
    exclusive_scan_kernel<unsigned long long><<<1, SCAN_THREADS>>>(count, B, s->rowptr);
    CT_CUDA_LAUNCHED();
    int total = 0;
    CT_CUDA_TRY(cudaMemcpy(&total, s->rowptr + B, sizeof total, cudaMemcpyDeviceToHost));
    *nnz = (size_t)total;
    s->B = B;
    s->nnz = (size_t)total;
    s->have_rows = s->have_cols = 0;
    return 0;
}

/* Entry arrays for at least nnz entries (a quarter more, so slowly growing counts do not
 * reallocate every step). */
static int reserve(ct_cck_sparse *s, size_t nnz)
{
    if (nnz <= s->cap)
        return 0;
    cudaFree(s->rcol);
    cudaFree(s->crow);
    s->rcol = s->crow = NULL;
    s->cap = 0;
    size_t cap = nnz + nnz / 4 + 1024;
    cudaError_t e = cudaMalloc((void **)&s->rcol, cap * sizeof(int));
    if (e == cudaSuccess)
        e = cudaMalloc((void **)&s->crow, cap * sizeof(int));
    if (e != cudaSuccess) {
        cudaGetLastError();
        cudaFree(s->rcol);
        s->rcol = NULL;
        return ct_error_set(CT_ENOMEM, "cuda crosscoder: cannot allocate lists for %zu active entries: %s", nnz,
                            cudaGetErrorString(e));
    }
    s->cap = cap;
    return 0;
}

int ct_cck_sparse_rows(ct_cck_sparse *s, const float *F, int H)
{
    int rc = reserve(s, s->nnz);
    if (rc)
        return rc;
    csr_fill_kernel<<<(unsigned)s->B, SP_THREADS>>>(F, H, s->rowptr, s->rcol);
    CT_CUDA_LAUNCHED();
    s->have_rows = 1;
    return 0;
}

int ct_cck_sparse_cols(ct_cck_sparse *s, const float *F, int H)
{
    int rc = reserve(s, s->nnz);
    if (rc)
        return rc;
    int B = s->B;
    dim3 grid(ct_cuda_blocks((size_t)H, SP_THREADS), ct_cck_row_chunks(B));
    csc_count_kernel<<<grid, SP_THREADS>>>(F, B, H, s->part);
    CT_CUDA_LAUNCHED();
    csc_offsets_kernel<<<ct_cuda_blocks((size_t)H, SP_THREADS), SP_THREADS>>>(s->part, (int)grid.y, H, s->count);
    CT_CUDA_LAUNCHED();
    exclusive_scan_kernel<int><<<1, SCAN_THREADS>>>(s->count, H, s->colptr);
    CT_CUDA_LAUNCHED();
    csc_fill_kernel<<<grid, SP_THREADS>>>(F, B, H, s->part, s->colptr, s->crow);
    CT_CUDA_LAUNCHED();
    s->have_cols = 1;
    return 0;
}

static dim3 column_tiles(int lists, int N)
{
    return dim3((unsigned)lists, (unsigned)((N + SP_THREADS * SP_COLS - 1) / (SP_THREADS * SP_COLS)));
}

int ct_cck_sparse_decode(const ct_cck_sparse *s, const float *F, int H, const float *W, int N, const float *bias,
                         float *Y)
{
    if (!s->have_rows)
        return ct_error_set(CT_EINVAL, "cuda crosscoder: the row lists of the active entries are not built");
    list_product_kernel<true><<<column_tiles(s->B, N), SP_THREADS>>>(s->rowptr, s->rcol, F, H, W, N, bias, Y);
    CT_CUDA_LAUNCHED();
    return 0;
}

int ct_cck_sparse_active_dot(const ct_cck_sparse *s, const float *G, const float *W, int N, const float *addv, int H,
                             float *dF)
{
    if (!s->have_rows)
        return ct_error_set(CT_EINVAL, "cuda crosscoder: the row lists of the active entries are not built");
    CT_CUDA_TRY(cudaMemsetAsync(dF, 0, (size_t)s->B * H * sizeof(float)));
    bool vec = N % 4 == 0 && ((uintptr_t)G | (uintptr_t)W) % 16 == 0;
    if (vec)
        active_dot_kernel<true><<<(unsigned)s->B, SP_THREADS>>>(s->rowptr, s->rcol, G, W, N, addv, H, dF);
    else
        active_dot_kernel<false><<<(unsigned)s->B, SP_THREADS>>>(s->rowptr, s->rcol, G, W, N, addv, H, dF);
    CT_CUDA_LAUNCHED();
    return 0;
}

int ct_cck_sparse_latent_product(const ct_cck_sparse *s, const float *V, int H, const float *Y, int N, float *T)
{
    if (!s->have_cols)
        return ct_error_set(CT_EINVAL, "cuda crosscoder: the latent lists of the active entries are not built");
    list_product_kernel<false><<<column_tiles(H, N), SP_THREADS>>>(s->colptr, s->crow, V, H, Y, N, NULL, T);
    CT_CUDA_LAUNCHED();
    return 0;
}

int ct_cck_cuda_transpose(const float *S, int rows, int cols, float *O)
{
    dim3 grid((unsigned)((cols + 31) / 32), (unsigned)((rows + 31) / 32));
    transpose_kernel<<<grid, dim3(32, 8)>>>(S, rows, cols, O);
    CT_CUDA_LAUNCHED();
    return 0;
}

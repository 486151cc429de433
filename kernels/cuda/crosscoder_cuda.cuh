/* Launchers shared between the crosscoder's CUDA files (internal to kernels/cuda/). */
#ifndef CT_KERNELS_CUDA_CROSSCODER_CUH
#define CT_KERNELS_CUDA_CROSSCODER_CUH

#include <cuda_runtime.h>
#include <stdint.h>

/* Fixed-order tree sum over a block: each of the n threads (n == blockDim.x, a power of
 * two) has written its value to sh[threadIdx.x]; afterwards sh[0] holds the total, summed
 * in an order that depends on n only. Every thread of the block must call it. */
template <typename T> __device__ static inline void ct_cck_block_sum(T *sh, int n)
{
    __syncthreads();
    for (int s = n / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s)
            sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
}

/* Walks a row in column order, blockDim.x columns at a time, numbering the entries for
 * which flag holds: returns *base plus the number of such entries before this thread's
 * in the chunk, and advances *base past the chunk. base and wcount (one per warp) are
 * shared; blockDim.x is a multiple of the warp. Every thread of the block must call it
 * for every chunk. */
__device__ static inline unsigned long long ct_cck_ordered_index(int flag, unsigned long long *base,
                                                                 unsigned *wcount)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    unsigned bal = __ballot_sync(0xffffffffu, flag);
    if (lane == 0)
        wcount[warp] = __popc(bal);
    __syncthreads();
    unsigned long long idx = *base + __popc(bal & ((1u << lane) - 1u));
    for (int w = 0; w < warp; w++)
        idx += wcount[w];
    __syncthreads();
    if (threadIdx.x == 0) {
        unsigned t = 0;
        for (int w = 0; w < (int)(blockDim.x >> 5); w++)
            t += wcount[w];
        *base += t;
    }
    __syncthreads();
    return idx;
}

/* Column-wise passes over a [B,N] matrix split its rows into chunks of CT_CCK_CHUNK_ROWS
 * (grid.y = chunks), so that a column gets many threads at once; a pass over all B rows
 * with one thread per column would leave most of the GPU idle at N of a few thousand.
 * Rows [*b0, *b1) are those of the calling block's chunk. */
#define CT_CCK_CHUNK_ROWS 64
static inline unsigned ct_cck_row_chunks(int B) { return (unsigned)((B + CT_CCK_CHUNK_ROWS - 1) / CT_CCK_CHUNK_ROWS); }
__device__ static inline void ct_cck_row_chunk(int B, int *b0, int *b1)
{
    *b0 = (int)blockIdx.y * CT_CCK_CHUNK_ROWS;
    *b1 = *b0 + CT_CCK_CHUNK_ROWS < B ? *b0 + CT_CCK_CHUNK_ROWS : B;
}

/* In place F = relu(F) over [B,H] on the default stream; count[b] (device) receives the
 * number of positives of row b. Reports the launch status. */
cudaError_t ct_cck_cuda_launch_relu_count(float *F, int B, int H, unsigned long long *count);

/* Scratch of the BatchTopK selections (kernels/cuda/crosscoder_topk.cu), owned by the
 * training handle: a radix histogram on the device and its host copy, per-row tie
 * counts, and the dead-latent mask of AuxK. */
#define CT_CCK_CUDA_TOPK_BINS 2048
#define CT_CCK_CUDA_TOPK_PASSES 3
/* Radix digit p of a score's bits u is (u >> shift(p)) & mask(p): 11, 11 and 10 bits,
 * so that a histogram fits shared memory. */
__host__ __device__ static inline int ct_cck_cuda_topk_shift(int p) { return p == 0 ? 21 : p == 1 ? 10 : 0; }
__host__ __device__ static inline uint32_t ct_cck_cuda_topk_mask(int p) { return p < 2 ? 2047u : 1023u; }

struct ct_cck_topk_scratch {
    unsigned *hist;               /* device [CT_CCK_CUDA_TOPK_BINS] */
    unsigned *hhist;              /* host, same */
    unsigned long long *rowties;  /* device [max_batch] */
    unsigned long long *hrowties; /* host, same */
    unsigned char *dead;          /* device [H] */
};
cudaError_t ct_cck_topk_scratch_alloc(ct_cck_topk_scratch *s, int max_batch, int H);
void ct_cck_topk_scratch_free(ct_cck_topk_scratch *s);

/* ct_cck_batch_topk on the device (F, ns device [B,H], [H]); returns 0 or an error code
 * with the message set. */
int ct_cck_cuda_topk_run(const ct_cck_topk_scratch *s, float *F, const float *ns, int B, int H, size_t K,
                         float *min_kept);
/* ct_cck_aux_select on the device, writing the chosen entries of R into A[B,H] densely
 * (zero elsewhere); dead is host [H]. */
int ct_cck_cuda_aux_run(const ct_cck_topk_scratch *s, const float *R, const float *ns, const uint8_t *dead,
                        int B, int H, int kk, float *A);

/* Lists of the active (positive) entries of a [B,H] activation matrix F, for the
 * sparse kernels of kernels/cuda/crosscoder_sparse.cu; owned by the training handle.
 * Rows list their latents in ascending order (CSR: rowptr, rcol), latents their rows
 * in ascending order (CSC: colptr, crow). */
struct ct_cck_sparse {
    int *rowptr;      /* device [max_batch + 1] */
    int *colptr;      /* device [H + 1] */
    int *count;       /* device [H] entries per latent */
    int *part;        /* device [row chunks × H] per-chunk counts, then offsets */
    int *rcol, *crow; /* device [cap] each */
    size_t cap;       /* entries rcol and crow hold */
    int B;            /* rows of the matrix the lists describe */
    size_t nnz;       /* its active entries */
    int have_rows, have_cols;
};
cudaError_t ct_cck_sparse_alloc(ct_cck_sparse *s, int max_batch, int H);
void ct_cck_sparse_free(ct_cck_sparse *s);
/* The row pointers from per-row counts (device [B], e.g. relu_count's) and *nnz on the
 * host: waits for the queued work. Forgets the previous lists. */
int ct_cck_sparse_count(ct_cck_sparse *s, const unsigned long long *count, int B, int H, size_t *nnz);
/* The row lists, then the latent lists, of F [B,H] after ct_cck_sparse_count. */
int ct_cck_sparse_rows(ct_cck_sparse *s, const float *F, int H);
int ct_cck_sparse_cols(ct_cck_sparse *s, const float *F, int H);
/* Y[b,:] = bias + Σ_j F[b,j] W[j,:] over the active j of row b, W [H,N], bias [N] or
 * NULL (the decoder forward). */
int ct_cck_sparse_decode(const ct_cck_sparse *s, const float *F, int H, const float *W, int N, const float *bias,
                         float *Y);
/* dF [B,H] = G[b,:]·W[j,:] (+ addv[j] when not NULL) at the active (b, j), 0 elsewhere:
 * the gradient reaching the active pre-activations. */
int ct_cck_sparse_active_dot(const ct_cck_sparse *s, const float *G, const float *W, int N, const float *addv, int H,
                             float *dF);
/* T[j,:] = Σ_b V[b,j] Y[b,:] over the active b of latent j, V [B,H], Y [B,N], T [H,N]:
 * the weight gradients (f with the residual's gradient for W_dec, the pre-activations'
 * gradient with the input rows for W_enc, transposed). */
int ct_cck_sparse_latent_product(const ct_cck_sparse *s, const float *V, int H, const float *Y, int N, float *T);
/* O [cols, rows] = S [rows, cols] transposed. */
int ct_cck_cuda_transpose(const float *S, int rows, int cols, float *O);

#endif

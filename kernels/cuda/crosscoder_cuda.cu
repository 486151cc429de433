/* CUDA versions of the crosscoder's elementwise training kernels (Adam, the
 * fixed-order sum of squares for gradient clipping, ReLU with per-row active counts),
 * each checked against its CPU reference in kernels/cpu/ by tests/crosscoder. Pointers
 * passed to these functions are device pointers unless named otherwise. */
extern "C" {
#include "common/error.h"
#include "kernels/crosscoder_kernels.h"
}
#include "kernels/cuda/crosscoder_cuda.cuh"

#include <cuda_runtime.h>

#include <math.h>
#include <stdlib.h>

#define CCK_TRY(call)                                                                        \
    do {                                                                                     \
        cudaError_t e_ = (call);                                                             \
        if (e_ != cudaSuccess)                                                               \
            return ct_error_set(CT_EIO, "cuda crosscoder: %s: %s", #call, cudaGetErrorString(e_)); \
    } while (0)

/* Same operations in the same order as adam_scalar on the CPU, with the _rn intrinsics
 * so that nvcc cannot contract them into FMAs: the two agree bit for bit. */
__global__ void cck_adam_kernel(float *p, const float *g, float *m, float *v, size_t n, ct_cck_adam_coef k)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    float gi = __fmul_rn(g[i], k.gscale);
    float mi = __fadd_rn(__fmul_rn(k.b1, m[i]), __fmul_rn(k.one_minus_b1, gi));
    float vi = __fadd_rn(__fmul_rn(k.b2, v[i]), __fmul_rn(k.one_minus_b2, __fmul_rn(gi, gi)));
    m[i] = mi;
    v[i] = vi;
    float den = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), k.bc2_sqrt), k.eps);
    p[i] = __fsub_rn(p[i], __fmul_rn(k.step_size, __fdiv_rn(mi, den)));
}

/* One block per 65536-element chunk; a fixed shared-memory tree in double, so the result
 * depends on n only. */
#define CCK_SUMSQ_CHUNK 65536
#define CCK_SUMSQ_THREADS 256

__global__ void cck_sumsq_kernel(const float *x, size_t n, double *part)
{
    __shared__ double sh[CCK_SUMSQ_THREADS];
    size_t base = (size_t)blockIdx.x * CCK_SUMSQ_CHUNK;
    size_t end = base + CCK_SUMSQ_CHUNK < n ? base + CCK_SUMSQ_CHUNK : n;
    double a = 0.0;
    for (size_t i = base + threadIdx.x; i < end; i += CCK_SUMSQ_THREADS)
        a += (double)x[i] * (double)x[i];
    sh[threadIdx.x] = a;
    ct_cck_block_sum(sh, CCK_SUMSQ_THREADS);
    if (threadIdx.x == 0)
        part[blockIdx.x] = sh[0];
}

/* One block per row: ReLU in place and the row's count of positives (integers: exact). */
__global__ void cck_relu_count_kernel(float *F, int H, unsigned long long *count)
{
    __shared__ unsigned long long sh[256];
    float *r = F + (size_t)blockIdx.x * H;
    unsigned long long c = 0;
    for (int j = threadIdx.x; j < H; j += blockDim.x) {
        float v = r[j] > 0.0f ? r[j] : 0.0f;
        r[j] = v;
        c += v > 0.0f;
    }
    sh[threadIdx.x] = c;
    ct_cck_block_sum(sh, (int)blockDim.x);
    if (threadIdx.x == 0)
        count[blockIdx.x] = sh[0];
}

cudaError_t ct_cck_cuda_launch_relu_count(float *F, int B, int H, unsigned long long *count)
{
    cck_relu_count_kernel<<<(unsigned)B, 256>>>(F, H, count);
    return cudaGetLastError();
}

extern "C" int ct_cck_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky "no device" error */
        return 0;
    }
    return n;
}

extern "C" int ct_cck_cuda_alloc(void **p, size_t bytes)
{
    CCK_TRY(cudaMalloc(p, bytes ? bytes : 1));
    return 0;
}

extern "C" void ct_cck_cuda_free(void *p)
{
    if (p)
        cudaFree(p);
}

extern "C" int ct_cck_cuda_host_alloc(void **p, size_t bytes)
{
    CCK_TRY(cudaMallocHost(p, bytes ? bytes : 1));
    return 0;
}

extern "C" void ct_cck_cuda_host_free(void *p)
{
    if (p)
        cudaFreeHost(p);
}

extern "C" int ct_cck_cuda_copy(void *dst, const void *src, size_t bytes, int to_device)
{
    CCK_TRY(cudaMemcpy(dst, src, bytes, to_device ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost));
    return 0;
}

extern "C" int ct_cck_cuda_adam(float *p, const float *g, float *m, float *v, size_t n, float gscale, double lr,
                                double b1, double b2, double eps, long t)
{
    if (n == 0)
        return 0;
    double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
    ct_cck_adam_coef k;
    k.gscale = gscale;
    k.b1 = (float)b1;
    k.b2 = (float)b2;
    k.one_minus_b1 = (float)(1.0 - b1);
    k.one_minus_b2 = (float)(1.0 - b2);
    k.step_size = (float)(lr / bc1);
    k.bc2_sqrt = (float)sqrt(bc2);
    k.eps = (float)eps;
    cck_adam_kernel<<<(unsigned)((n + 255) / 256), 256>>>(p, g, m, v, n, k);
    CCK_TRY(cudaGetLastError());
    return 0;
}

extern "C" int ct_cck_cuda_sumsq(const float *x, size_t n, double *out)
{
    *out = 0.0;
    if (n == 0)
        return 0;
    size_t nb = (n + CCK_SUMSQ_CHUNK - 1) / CCK_SUMSQ_CHUNK;
    double *d_part = NULL;
    double *h_part = (double *)malloc(nb * sizeof(double));
    if (!h_part)
        return ct_error_set(CT_ENOMEM, "cuda crosscoder: out of memory for %zu partial sums", nb);
    cudaError_t e = cudaMalloc((void **)&d_part, nb * sizeof(double));
    if (e == cudaSuccess) {
        cck_sumsq_kernel<<<(unsigned)nb, CCK_SUMSQ_THREADS>>>(x, n, d_part);
        e = cudaGetLastError();
    }
    if (e == cudaSuccess)
        e = cudaMemcpy(h_part, d_part, nb * sizeof(double), cudaMemcpyDeviceToHost);
    cudaFree(d_part);
    if (e != cudaSuccess) {
        free(h_part);
        return ct_error_set(CT_EIO, "cuda crosscoder: sum of squares: %s", cudaGetErrorString(e));
    }
    double s = 0.0;
    for (size_t i = 0; i < nb; i++) /* chunk sums in index order, as on the CPU */
        s += h_part[i];
    free(h_part);
    *out = s;
    return 0;
}

extern "C" int ct_cck_cuda_relu_count(float *F, int B, int H, size_t *row_ptr)
{
    row_ptr[0] = 0;
    if (B <= 0)
        return 0;
    unsigned long long *d_c = NULL;
    unsigned long long *h_c = (unsigned long long *)malloc((size_t)B * sizeof *h_c);
    if (!h_c)
        return ct_error_set(CT_ENOMEM, "cuda crosscoder: out of memory for %d row counts", B);
    cudaError_t e = cudaMalloc((void **)&d_c, (size_t)B * sizeof *d_c);
    if (e == cudaSuccess)
        e = ct_cck_cuda_launch_relu_count(F, B, H, d_c);
    if (e == cudaSuccess)
        e = cudaMemcpy(h_c, d_c, (size_t)B * sizeof *d_c, cudaMemcpyDeviceToHost);
    cudaFree(d_c);
    if (e != cudaSuccess) {
        free(h_c);
        return ct_error_set(CT_EIO, "cuda crosscoder: relu: %s", cudaGetErrorString(e));
    }
    for (int b = 0; b < B; b++)
        row_ptr[b + 1] = row_ptr[b] + (size_t)h_c[b];
    free(h_c);
    return 0;
}

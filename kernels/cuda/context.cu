/* CUDA backend context: device memory, copies and the cuBLAS handle. */
#include "kernels/cuda/cuda_common.cuh"

#include <stdlib.h>

extern "C" int ct_kcuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky "no device" status */
        return 0;
    }
    return n;
}

extern "C" int ct_kcuda_create(ct_kcuda **out)
{
    *out = NULL;
    if (ct_kcuda_device_count() <= 0)
        return ct_error_set(CT_EUNSUPPORTED, "cuda: no CUDA device is available");
    ct_kcuda *c = (ct_kcuda *)calloc(1, sizeof *c);
    if (!c)
        return ct_error_set(CT_ENOMEM, "cuda: out of memory");
    if (cudaStreamCreate(&c->stream) != cudaSuccess) {
        free(c);
        return ct_error_set(CT_EIO, "cuda: cannot create a stream");
    }
    if (cublasCreate(&c->blas) != CUBLAS_STATUS_SUCCESS) {
        cudaStreamDestroy(c->stream);
        free(c);
        return ct_error_set(CT_EIO, "cublas: cannot create a handle");
    }
    cublasSetStream(c->blas, c->stream);
    /* Plain fp32, no TF32 (results must match the CPU within 1e-4); atomics stay off, so
     * a given GPU gives bit-identical results run after run. */
    cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH);
    cublasSetAtomicsMode(c->blas, CUBLAS_ATOMICS_NOT_ALLOWED);
    *out = c;
    return 0;
}

extern "C" void ct_kcuda_free(ct_kcuda *c)
{
    if (!c)
        return;
    cudaStreamSynchronize(c->stream);
    for (int i = 0; i < 3; i++)
        cudaFree(c->scratch[i]);
    cublasDestroy(c->blas);
    cudaStreamDestroy(c->stream);
    free(c);
}

extern "C" int ct_kcuda_alloc(ct_kcuda *c, size_t bytes, void **out)
{
    void *p = NULL;
    if (cudaMalloc(&p, bytes) != cudaSuccess) {
        cudaGetLastError();
        return ct_error_set(CT_ENOMEM, "cuda: cannot allocate %zu bytes of device memory", bytes);
    }
    CT_CUDA_TRY(cudaMemsetAsync(p, 0, bytes, c->stream));
    *out = p;
    return 0;
}

extern "C" void ct_kcuda_release(ct_kcuda *c, void *p)
{
    cudaStreamSynchronize(c->stream);
    cudaFree(p);
}

extern "C" int ct_kcuda_memcpy(ct_kcuda *c, void *dst, const void *src, size_t bytes, int kind)
{
    cudaMemcpyKind k = kind == 0 ? cudaMemcpyHostToDevice
                       : kind == 1 ? cudaMemcpyDeviceToHost
                                   : cudaMemcpyDeviceToDevice;
    CT_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, k, c->stream));
    /* Host buffers may be pageable and reused at once by the caller. */
    if (kind != 2)
        CT_CUDA_TRY(cudaStreamSynchronize(c->stream));
    return 0;
}

extern "C" int ct_kcuda_zero(ct_kcuda *c, void *dst, size_t bytes)
{
    CT_CUDA_TRY(cudaMemsetAsync(dst, 0, bytes, c->stream));
    return 0;
}

extern "C" int ct_kcuda_sync(ct_kcuda *c)
{
    CT_CUDA_TRY(cudaStreamSynchronize(c->stream));
    CT_CUDA_TRY(cudaGetLastError());
    return 0;
}

int ct_kcuda_scratch(ct_kcuda *c, int i, size_t bytes, void **out)
{
    if (c->scratch_bytes[i] < bytes) {
        cudaStreamSynchronize(c->stream);
        cudaFree(c->scratch[i]);
        c->scratch[i] = NULL;
        c->scratch_bytes[i] = 0;
        if (cudaMalloc(&c->scratch[i], bytes) != cudaSuccess) {
            cudaGetLastError();
            return ct_error_set(CT_ENOMEM, "cuda: cannot allocate %zu bytes of scratch", bytes);
        }
        c->scratch_bytes[i] = bytes;
    }
    *out = c->scratch[i];
    return 0;
}

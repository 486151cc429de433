/* The kernel context and the dispatch of each op to the CPU or CUDA backend. */
#include "kernels/kernels.h"

#include "common/error.h"
#include "kernels/backend.h"

#include <stdlib.h>
#include <string.h>

struct ct_kern {
    ct_device dev;
#ifdef CT_HAVE_CUDA
    ct_kcuda *cuda;
#endif
};

int ct_device_parse(const char *name, ct_device *out)
{
    if (name && strcmp(name, "cpu") == 0) {
        *out = CT_DEVICE_CPU;
        return 0;
    }
    if (name && strcmp(name, "cuda") == 0) {
        *out = CT_DEVICE_CUDA;
        return 0;
    }
    return ct_error_set(CT_EINVAL, "device '%s': expected cpu or cuda", name ? name : "(null)");
}

const char *ct_device_name(ct_device dev)
{
    return dev == CT_DEVICE_CUDA ? "cuda" : "cpu";
}

int ct_kern_cuda_available(void)
{
#ifdef CT_HAVE_CUDA
    return ct_kcuda_device_count() > 0;
#else
    return 0;
#endif
}

int ct_kern_create(ct_device dev, ct_kern **out)
{
    *out = NULL;
    if (dev != CT_DEVICE_CPU && dev != CT_DEVICE_CUDA)
        return ct_error_set(CT_EINVAL, "kernels: unknown device %d", (int)dev);
#ifndef CT_HAVE_CUDA
    if (dev == CT_DEVICE_CUDA)
        return ct_error_set(CT_EUNSUPPORTED, "kernels: this build has no CUDA backend");
#endif
    ct_kern *k = calloc(1, sizeof *k);
    if (!k)
        return ct_error_set(CT_ENOMEM, "kernels: out of memory");
    k->dev = dev;
#ifdef CT_HAVE_CUDA
    if (dev == CT_DEVICE_CUDA) {
        int rc = ct_kcuda_create(&k->cuda);
        if (rc) {
            free(k);
            return rc;
        }
    }
#endif
    *out = k;
    return 0;
}

void ct_kern_free(ct_kern *k)
{
    if (!k)
        return;
#ifdef CT_HAVE_CUDA
    if (k->cuda) /* a CPU context never touches the CUDA plugin */
        ct_kcuda_free(k->cuda);
#endif
    free(k);
}

ct_device ct_kern_device(const ct_kern *k)
{
    return k->dev;
}

int ct_kern_alloc(ct_kern *k, size_t bytes, void **out)
{
    *out = NULL;
    if (bytes == 0)
        return 0;
#ifdef CT_HAVE_CUDA
    if (k->dev == CT_DEVICE_CUDA)
        return ct_kcuda_alloc(k->cuda, bytes, out);
#endif
    /* 64-byte alignment keeps SIMD loads and BLAS packing on whole cache lines. */
    size_t rounded = (bytes + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, rounded);
    if (!p)
        return ct_error_set(CT_ENOMEM, "kernels: cannot allocate %zu bytes", bytes);
    memset(p, 0, rounded);
    *out = p;
    return 0;
}

void ct_kern_release(ct_kern *k, void *p)
{
    if (!p)
        return;
#ifdef CT_HAVE_CUDA
    if (k->dev == CT_DEVICE_CUDA) {
        ct_kcuda_release(k->cuda, p);
        return;
    }
#endif
    free(p);
}

static int mem(ct_kern *k, void *dst, const void *src, size_t bytes, int kind)
{
    if (bytes == 0)
        return 0;
#ifdef CT_HAVE_CUDA
    if (k->dev == CT_DEVICE_CUDA)
        return ct_kcuda_memcpy(k->cuda, dst, src, bytes, kind);
#endif
    (void)kind;
    memmove(dst, src, bytes);
    return 0;
}

int ct_kern_upload(ct_kern *k, void *dst, const void *src, size_t bytes)
{
    return mem(k, dst, src, bytes, 0);
}

int ct_kern_download(ct_kern *k, void *dst, const void *src, size_t bytes)
{
    return mem(k, dst, src, bytes, 1);
}

int ct_kern_copy(ct_kern *k, void *dst, const void *src, size_t bytes)
{
    return mem(k, dst, src, bytes, 2);
}

int ct_kern_zero(ct_kern *k, void *dst, size_t bytes)
{
    if (bytes == 0)
        return 0;
#ifdef CT_HAVE_CUDA
    if (k->dev == CT_DEVICE_CUDA)
        return ct_kcuda_zero(k->cuda, dst, bytes);
#endif
    memset(dst, 0, bytes);
    return 0;
}

int ct_kern_sync(ct_kern *k)
{
#ifdef CT_HAVE_CUDA
    if (k->dev == CT_DEVICE_CUDA)
        return ct_kcuda_sync(k->cuda);
#endif
    (void)k;
    return 0;
}

#ifdef CT_HAVE_CUDA
#define CT_KERN_DISPATCH(P, R, name, params, args)                                           \
    int ct_kern_##name(ct_kern *k, CT_KERN_UNPAREN params                                    \
    {                                                                                        \
        if (k->dev == CT_DEVICE_CUDA)                                                        \
            return ct_kcuda_##name(k->cuda, CT_KERN_UNPAREN args;                            \
        return ct_kcpu_##name args;                                                          \
    }
#else
#define CT_KERN_UNPAREN(...) __VA_ARGS__)
#define CT_KERN_DISPATCH(P, R, name, params, args)                                           \
    int ct_kern_##name(ct_kern *k, CT_KERN_UNPAREN params                                    \
    {                                                                                        \
        (void)k;                                                                             \
        return ct_kcpu_##name args;                                                          \
    }
#endif
CT_KERN_OPS(_, _, CT_KERN_DISPATCH)

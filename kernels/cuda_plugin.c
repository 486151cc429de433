/* The CUDA backend lives in a plugin, libcrosstime_cuda.so (the .cu files of kernels/cuda), loaded
 * with dlopen the first time a CUDA function is called. Linking cuBLAS into every
 * binary would cost each `crosstime` start ~100 ms and 200 MB of mappings, and make
 * the binary refuse to start on machines without the CUDA libraries; as a plugin, a
 * CPU run never loads it and a CUDA build still runs where no GPU or driver exists.
 *
 * This file defines the backend's C entry points (declared in kernels/backend.h and
 * kernels/crosscoder_kernels.h) as thin forwarders to the plugin's symbols of the
 * same names. The plugin is linked with -Bsymbolic so its own calls never come back
 * here. Search order: $CROSSTIME_CUDA_PLUGIN, the executable's directory, ../lib
 * beside it, then the build tree's copy (CT_CUDA_PLUGIN_BUILD_PATH). */
#ifdef CT_HAVE_CUDA

#include "common/error.h"
#include "kernels/backend.h"
#include "kernels/crosscoder_kernels.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CT_CUDA_PLUGIN_NAME "libcrosstime_cuda.so"

static void *g_handle;
static char g_why[512] = "not loaded";
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void *try_open(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(g_why, sizeof g_why, "%s", e ? e : path);
    }
    return h;
}

static void load(void)
{
    const char *env = getenv("CROSSTIME_CUDA_PLUGIN");
    char exe[PATH_MAX];
    ssize_t n = env && *env ? 0 : readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (env && *env)
        g_handle = try_open(env);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            char path[PATH_MAX + 64];
            snprintf(path, sizeof path, "%s/%s", exe, CT_CUDA_PLUGIN_NAME);
            if (access(path, R_OK) == 0)
                g_handle = try_open(path);
            snprintf(path, sizeof path, "%s/../lib/%s", exe, CT_CUDA_PLUGIN_NAME);
            if (!g_handle && access(path, R_OK) == 0)
                g_handle = try_open(path);
        }
    }
#ifdef CT_CUDA_PLUGIN_BUILD_PATH
    if (!g_handle && !(env && *env) && access(CT_CUDA_PLUGIN_BUILD_PATH, R_OK) == 0)
        g_handle = try_open(CT_CUDA_PLUGIN_BUILD_PATH);
#endif
    if (g_handle) {
        /* the plugin reports errors through this process's per-thread message */
        void (*init)(int (*)(int, const char *, va_list)) =
            (void (*)(int (*)(int, const char *, va_list)))dlsym(g_handle, "ct_cuda_plugin_init");
        if (init)
            init(ct_error_setv);
        return;
    }
    if (strcmp(g_why, "not loaded") == 0)
        snprintf(g_why, sizeof g_why, "%s not found beside the executable, in ../lib, or at "
                 "$CROSSTIME_CUDA_PLUGIN", CT_CUDA_PLUGIN_NAME);
}

/* The plugin's symbol `name`, or NULL with a recorded error. */
static void *plugin_sym(const char *name)
{
    pthread_once(&g_once, load);
    void *s = g_handle ? dlsym(g_handle, name) : NULL;
    if (!s)
        ct_error_set(CT_EUNSUPPORTED, "CUDA backend unavailable: %s", g_handle ? dlerror() : g_why);
    return s;
}

/* Forwarders. An unavailable plugin makes every int function fail with
 * CT_EUNSUPPORTED (device counts report 0: no usable device). */
#define FORWARD_INT(name, params, args, fallback)                                       \
    int name params                                                                        \
    {                                                                                      \
        static int(*fn) params;                                                            \
        if (!fn && !(fn = (int(*) params)plugin_sym(#name)))                               \
            return fallback;                                                               \
        return fn args;                                                                    \
    }
#define FORWARD_VOID(name, params, args)                                                \
    void name params                                                                       \
    {                                                                                      \
        static void(*fn) params;                                                           \
        if (!fn && !(fn = (void(*) params)plugin_sym(#name)))                              \
            return;                                                                        \
        fn args;                                                                           \
    }

FORWARD_INT(ct_cuda_runtime_version, (void), (), 0)

/* the transformer backend (kernels/backend.h) */
FORWARD_INT(ct_kcuda_device_count, (void), (), 0)
FORWARD_INT(ct_kcuda_create, (ct_kcuda **out), (out), CT_EUNSUPPORTED)
FORWARD_VOID(ct_kcuda_free, (ct_kcuda *c), (c))
FORWARD_INT(ct_kcuda_alloc, (ct_kcuda *c, size_t bytes, void **out), (c, bytes, out), CT_EUNSUPPORTED)
FORWARD_VOID(ct_kcuda_release, (ct_kcuda *c, void *p), (c, p))
FORWARD_INT(ct_kcuda_memcpy, (ct_kcuda *c, void *dst, const void *src, size_t bytes, int kind),
            (c, dst, src, bytes, kind), CT_EUNSUPPORTED)
FORWARD_INT(ct_kcuda_zero, (ct_kcuda *c, void *dst, size_t bytes), (c, dst, bytes), CT_EUNSUPPORTED)
FORWARD_INT(ct_kcuda_sync, (ct_kcuda *c), (c), CT_EUNSUPPORTED)
#define FORWARD_OP(P, R, name, params, args)                                            \
    int ct_kcuda_##name(ct_kcuda *c, CT_KERN_UNPAREN params                                \
    {                                                                                      \
        static int (*fn)(ct_kcuda *, CT_KERN_UNPAREN params;                               \
        if (!fn && !(fn = (int (*)(ct_kcuda *, CT_KERN_UNPAREN params)plugin_sym("ct_kcuda_" #name))) \
            return CT_EUNSUPPORTED;                                                        \
        return fn(c, CT_KERN_UNPAREN args;                                                 \
    }
CT_KERN_OPS(_, _, FORWARD_OP)

/* the crosscoder's training kernels (kernels/crosscoder_kernels.h) */
FORWARD_INT(ct_cck_cuda_device_count, (void), (), 0)
FORWARD_INT(ct_cck_cuda_alloc, (void **p, size_t bytes), (p, bytes), CT_EUNSUPPORTED)
FORWARD_VOID(ct_cck_cuda_free, (void *p), (p))
FORWARD_INT(ct_cck_cuda_copy, (void *dst, const void *src, size_t bytes, int to_device),
            (dst, src, bytes, to_device), CT_EUNSUPPORTED)
FORWARD_INT(ct_cck_cuda_host_alloc, (void **p, size_t bytes), (p, bytes), CT_EUNSUPPORTED)
FORWARD_VOID(ct_cck_cuda_host_free, (void *p), (p))
FORWARD_INT(ct_cck_cuda_adam,
            (float *p, const float *g, float *m, float *v, size_t n, float gscale, double lr, double b1,
             double b2, double eps, long t),
            (p, g, m, v, n, gscale, lr, b1, b2, eps, t), CT_EUNSUPPORTED)
FORWARD_INT(ct_cck_cuda_sumsq, (const float *x, size_t n, double *out), (x, n, out), CT_EUNSUPPORTED)
FORWARD_INT(ct_cck_cuda_relu_count, (float *F, int B, int H, size_t *row_ptr), (F, B, H, row_ptr),
            CT_EUNSUPPORTED)
FORWARD_INT(ct_cck_cuda_cc_create, (int M, int d, int H, int max_batch, ct_cck_cuda_cc **out),
            (M, d, H, max_batch, out), CT_EUNSUPPORTED)
FORWARD_VOID(ct_cck_cuda_cc_free, (ct_cck_cuda_cc *w), (w))
FORWARD_INT(ct_cck_cuda_cc_forward,
            (ct_cck_cuda_cc *w, const float *params, const float *X, int B, const ct_cck_cuda_select *sel,
             ct_cck_cuda_forward_info *info),
            (w, params, X, B, sel, info), CT_EUNSUPPORTED)
FORWARD_INT(ct_cck_cuda_cc_results,
            (ct_cck_cuda_cc *w, int B, double *rowacc, float *fsum, float *nsum, size_t *nnz),
            (w, B, rowacc, fsum, nsum, nnz), CT_EUNSUPPORTED)
FORWARD_INT(ct_cck_cuda_cc_aux,
            (ct_cck_cuda_cc *w, const float *params, const float *X, int B, const uint8_t *dead, int kk,
             double *num, double *den),
            (w, params, X, B, dead, kk, num, den), CT_EUNSUPPORTED)
FORWARD_INT(ct_cck_cuda_cc_backward,
            (ct_cck_cuda_cc *w, const float *params, const float *X, int B, float lambda, float aux_scale,
             float *grad),
            (w, params, X, B, lambda, aux_scale, grad), CT_EUNSUPPORTED)
FORWARD_INT(ct_cck_cuda_cc_activations, (ct_cck_cuda_cc *w, int B, float *f, float *f_aux), (w, B, f, f_aux),
            CT_EUNSUPPORTED)
FORWARD_INT(ct_cck_cuda_batch_topk,
            (ct_cck_cuda_cc *w, float *F, const float *ns, int B, size_t K, float *min_kept),
            (w, F, ns, B, K, min_kept), CT_EUNSUPPORTED)
FORWARD_INT(ct_cck_cuda_threshold_mask, (float *F, const float *ns, int B, int H, float threshold),
            (F, ns, B, H, threshold), CT_EUNSUPPORTED)
FORWARD_INT(ct_cck_cuda_aux_select,
            (ct_cck_cuda_cc *w, const float *R, const float *ns, const uint8_t *dead, int B, int kk, float *A),
            (w, R, ns, dead, B, kk, A), CT_EUNSUPPORTED)

#endif /* CT_HAVE_CUDA */

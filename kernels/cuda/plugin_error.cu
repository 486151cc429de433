// Error reporting inside the CUDA plugin: the loading process hands over its
// ct_error_setv at load (kernels/cuda_plugin.c), so a message recorded here is the one
// ct_error_message() returns in the caller's thread.
#include <cstdarg>

static int (*g_setv)(int, const char *, va_list);

extern "C" void ct_cuda_plugin_init(int (*setv)(int, const char *, va_list)) { g_setv = setv; }

extern "C" int ct_error_set(int code, const char *fmt, ...)
{
    if (!g_setv)
        return code;
    va_list ap;
    va_start(ap, fmt);
    int rc = g_setv(code, fmt, ap);
    va_end(ap);
    return rc;
}

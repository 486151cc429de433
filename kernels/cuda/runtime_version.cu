// The CUDA runtime version for provenance records (e.g. 13000 for 13.0); 0 when the
// runtime cannot say (no driver).
#include <cuda_runtime.h>

extern "C" int ct_cuda_runtime_version(void)
{
    int v = 0;
    return cudaRuntimeGetVersion(&v) == cudaSuccess ? v : 0;
}

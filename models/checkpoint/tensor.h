/* Element types and read-only tensor views shared by the checkpoint readers and the
 * safetensors writer. */
#ifndef CT_TENSOR_VIEW_H
#define CT_TENSOR_VIEW_H

#include <stddef.h>
#include <stdint.h>

/* The safetensors dtype set; PyTorch storages map onto it. */
typedef enum {
    CT_DT_BOOL = 1,
    CT_DT_U8,
    CT_DT_I8,
    CT_DT_I16,
    CT_DT_U16,
    CT_DT_F16,
    CT_DT_BF16,
    CT_DT_I32,
    CT_DT_U32,
    CT_DT_F32,
    CT_DT_F64,
    CT_DT_I64,
    CT_DT_U64,
    CT_DT_F8_E4M3,
    CT_DT_F8_E5M2,
} ct_dtype;

#define CT_TENSOR_MAX_DIM 8

/* A tensor in row-major contiguous layout. `data` points into memory owned by the
 * object it came from (a mapped file or a loaded archive) and stays valid until that
 * object is closed. It is aligned only as the file aligns it: use
 * ct_ckpt_tensor_f32 / ct_dtype_to_f32 for an aligned fp32 copy. */
typedef struct {
    const char *name;
    ct_dtype dtype;
    int ndim;
    int64_t shape[CT_TENSOR_MAX_DIM];
    size_t numel;
    size_t nbytes;
    const void *data;
} ct_tensor_view;

/* Bytes per element (0 for an invalid value). */
size_t ct_dtype_size(ct_dtype dt);
/* safetensors name ("F32", "BF16", ...); "?" for an invalid value. */
const char *ct_dtype_name(ct_dtype dt);
/* Parses a safetensors dtype name; CT_EFORMAT when unknown. */
int ct_dtype_parse(const char *name, ct_dtype *out);
/* Widens n elements of F32/F16/BF16/F64 at `src` (any alignment, little-endian) to
 * fp32; CT_EFORMAT for other dtypes. */
int ct_dtype_to_f32(ct_dtype dt, const void *src, size_t n, float *dst);

#endif

/* safetensors files: a validating, zero-copy (mmap) reader and a deterministic writer.
 *
 * Format: u64 little-endian header length N, N bytes of JSON
 * {"__metadata__": {str: str}, NAME: {"dtype", "shape", "data_offsets": [begin, end]}},
 * then the data; offsets are relative to the end of the header. */
#ifndef CT_SAFETENSORS_H
#define CT_SAFETENSORS_H

#include "models/checkpoint/tensor.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ct_safetensors ct_safetensors; /* opaque: one mapped file */

/* Maps and validates the whole header against the file size: header length, JSON,
 * dtypes, shapes, offsets in range, byte sizes == numel * dtype size, no overlap and no
 * gap (as the reference library requires). Errors name the file and the tensor. */
int ct_safetensors_open(const char *path, ct_safetensors **out);
void ct_safetensors_close(ct_safetensors *st); /* NULL ok; invalidates every view */

/* Tensors in name order. The view's pointers live until ct_safetensors_close. */
size_t ct_safetensors_count(const ct_safetensors *st);
void ct_safetensors_at(const ct_safetensors *st, size_t i, ct_tensor_view *out);
/* CT_ENOTFOUND when absent. */
int ct_safetensors_find(const ct_safetensors *st, const char *name, ct_tensor_view *out);
/* Value of a "__metadata__" key, or NULL. */
const char *ct_safetensors_meta(const ct_safetensors *st, const char *key);

/* One tensor to write: `data` holds numel(shape) * ct_dtype_size(dtype) bytes. */
typedef struct {
    const char *name;
    ct_dtype dtype;
    int ndim;
    const int64_t *shape;
    const void *data;
} ct_st_tensor;

/* Writes `n` tensors (and optional string metadata, `n_meta` key/value pairs) to
 * `path` atomically (temporary file, fsync, rename), byte-identical for identical
 * inputs: laid out as the reference library does (tensors sorted by alignment, then
 * name; header padded with spaces to 8 bytes; metadata keys sorted). Nothing is
 * copied: data are streamed from the callers' buffers. */
int ct_safetensors_write(const char *path, const ct_st_tensor *tensors, size_t n,
                         const char *const *meta_keys, const char *const *meta_values,
                         size_t n_meta);

#endif

/* NumPy .npy files (format 1.0, little-endian float32, C order): enough to hand
 * activations and logits to Python. */
#ifndef CT_NPY_H
#define CT_NPY_H

#include <stddef.h>
#include <stdint.h>

/* Writes data (the product of shape[0..ndim) floats) to path, through a temporary
 * file renamed into place. ndim is 1..8. */
int ct_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape);

/* Reads a '<f4' C-order array: *data (caller frees), *ndim and shape[0..8). */
int ct_npy_read_f32(const char *path, float **data, int *ndim, int64_t shape[8]);

#endif

/* PyTorch's torch.save zip format (pytorch_model.bin): <prefix>/data.pkl holds the
 * state dict's pickle, <prefix>/data/<key> the raw little-endian storages. The
 * storages a state dict references are read into memory (libarchive streams zip
 * members); a non-contiguous tensor is gathered into its own row-major buffer. */
#ifndef CT_TORCHBIN_H
#define CT_TORCHBIN_H

#include "models/checkpoint/tensor.h"

#include <stddef.h>

typedef struct ct_torchbin ct_torchbin; /* opaque */

/* Errors name the file and what is wrong: not a zip, a refused pickle global, a
 * missing storage member, a tensor outside its storage. */
int ct_torchbin_open(const char *path, ct_torchbin **out);
void ct_torchbin_close(ct_torchbin *tb); /* NULL ok; invalidates every view */

/* Tensors in pickle order; views live until ct_torchbin_close. */
size_t ct_torchbin_count(const ct_torchbin *tb);
void ct_torchbin_at(const ct_torchbin *tb, size_t i, ct_tensor_view *out);

#endif

/* A restricted unpickler for the data.pkl of a torch.save'd state dict (internal to
 * the checkpoint module). It interprets only the opcodes and the handful of globals a
 * state dict uses and never executes anything: any other global is refused by name. */
#ifndef CT_TORCH_PICKLE_H
#define CT_TORCH_PICKLE_H

#include "models/checkpoint/tensor.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *key; /* zip member <prefix>/data/<key> */
    ct_dtype dtype;
    size_t numel; /* elements, as the persistent id records them */
} ct_pk_storage;

typedef struct {
    char *name;
    int storage;   /* index into storages */
    size_t offset; /* in elements */
    int ndim;
    int64_t size[CT_TENSOR_MAX_DIM];
    int64_t stride[CT_TENSOR_MAX_DIM];
} ct_pk_tensor;

typedef struct {
    ct_pk_storage *storages;
    size_t n_storages;
    ct_pk_tensor *tensors;
    size_t n_tensors;
} ct_pk_state_dict;

/* Interprets `buf` (the bytes of data.pkl; `path` names it in errors). */
int ct_pk_parse_state_dict(const char *path, const unsigned char *buf, size_t len,
                           ct_pk_state_dict *out);
void ct_pk_state_dict_free(ct_pk_state_dict *sd);

#endif

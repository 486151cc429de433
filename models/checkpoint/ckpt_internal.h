/* Shared between the checkpoint module's files; not part of the public API. */
#ifndef CT_CKPT_INTERNAL_H
#define CT_CKPT_INTERNAL_H

#include "models/checkpoint/checkpoint.h"

#include <jansson.h>
#include <stddef.h>

/* The weight files a directory provides, in the order they are read. */
typedef struct {
    int pytorch;        /* 0: safetensors, 1: pytorch_model.bin */
    char **paths;       /* full paths */
    const char **names; /* base names (point into paths) */
    size_t n;
    json_t *weight_map; /* index.json "weight_map" when sharded, else NULL */
    char *index_path;   /* the index.json path when sharded */
} ct_ckpt_files;

int ct_ckpt_list_weights(const char *dir, ct_ckpt_weights pref, ct_ckpt_files *out);
void ct_ckpt_files_free(ct_ckpt_files *f);

/* The digest of ct_ckpt_digest over a directory and its chosen weight files. */
int ct_ckpt_dir_digest(const char *dir, const ct_ckpt_files *f, char hex[CT_SHA256_HEX_LEN + 1]);

/* The download command for an "hf:" source, for error messages ("" otherwise). */
void ct_ckpt_hub_hint(const char *source, char *buf, size_t n);

#endif

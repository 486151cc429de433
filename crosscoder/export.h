/* Export of a trained crosscoder for Python users: safetensors with the reference's
 * tensor names and shapes, plus a JSON config carrying the normalisation factors. */
#ifndef CT_CROSSCODER_EXPORT_H
#define CT_CROSSCODER_EXPORT_H

#include "crosscoder/crosscoder.h"

/* Writes W_enc [M,d,H], b_enc [H], W_dec [H,M,d], b_dec [M,d] (F32) to `st_path` and
 * the config (shape, type, hyperparameters, normalisation_factors, folded, threshold)
 * to `json_path`; the same JSON is stored under the safetensors metadata key "config".
 * Both files are written atomically and byte-identically for identical inputs. */
int ct_cc_export_safetensors(const ct_crosscoder *cc, const char *st_path, const char *json_path);

/* The reverse: a crosscoder from a file written by ct_cc_export_safetensors (the config
 * comes from the safetensors metadata). Shapes, dtypes and the config are checked;
 * errors name the file. Re-exporting the result gives identical bytes. */
int ct_cc_import_safetensors(const char *st_path, ct_crosscoder **out);

/* The config JSON of ct_cc_export_safetensors (malloc'd, caller frees). */
int ct_cc_config_json(const ct_crosscoder *cc, char **json);

#endif

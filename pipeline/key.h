/* Cache keys of pipeline steps.
 *
 * A step's key is SHA-256 over a canonical, versioned encoding of its key material:
 *
 *     {"inputs": {NAME: HEX | [HEX, ...]}, "kind": KIND, "params": {...},
 *      "v": CT_KEY_ENCODING, "version": STEP_IMPLEMENTATION_VERSION}
 *
 * Inputs are the keys of upstream steps, or content digests of source files (a
 * Merkle DAG). The encoding is canonical JSON: object members sorted by key bytes, no
 * whitespace, integers in decimal, reals in their shortest round-trip form (always
 * with a '.' or an exponent, so 2 and 2.0 differ as their types do), strings with only
 * the escapes JSON requires. The digest input is "crosstime-key\n" followed by that
 * text. Changing anything here changes every key: bump CT_KEY_ENCODING and the golden
 * keys in tests/pipeline/test_key.c together. */
#ifndef CT_KEY_H
#define CT_KEY_H

#include "cache/cache.h"

#include <jansson.h>
#include <stdint.h>

#define CT_KEY_ENCODING 1
#define CT_KEY_HEX_LEN (2 * CT_KEY_LEN)

/* Canonical JSON text of `v` (malloc'd, NUL-terminated). CT_EINVAL for NaN/Inf. */
int ct_canonical_json(const json_t *v, char **text, size_t *len);

/* New key material object (caller owns). `params` and `inputs` are borrowed and
 * copied; either may be NULL (empty object). */
int ct_key_material(const char *kind, int version, const json_t *params, const json_t *inputs,
                    json_t **material);

/* Key of the given material. */
int ct_key_of(const json_t *material, uint8_t key[CT_KEY_LEN]);

/* Hex form (CT_KEY_HEX_LEN + 1 bytes). */
void ct_key_hex(const uint8_t key[CT_KEY_LEN], char *hex);

#endif

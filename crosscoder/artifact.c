/* The trained crosscoder as one binary blob:
 *   "CTCCMODL" | u32 version | config | f32 scale[M] | f32 threshold | u32 folded |
 *   u64 n_params | f32 params[n_params] | SHA-256 of all preceding bytes. */
#include "crosscoder/crosscoder.h"

#include "common/error.h"
#include "common/io.h"
#include "crosscoder/binio.h"

#include <stdlib.h>
#include <string.h>

#define CT_CC_MODEL_MAGIC "CTCCMODL"
#define CT_CC_MODEL_VERSION 1u

int ct_cc_save(const ct_crosscoder *cc, void **buf, size_t *len)
{
    ct_cc_wbuf w = {0};
    ct_cc_put(&w, CT_CC_MODEL_MAGIC, 8);
    ct_cc_put_u32(&w, CT_CC_MODEL_VERSION);
    ct_cc_put_config(&w, &cc->cfg);
    ct_cc_put_f32s(&w, cc->scale, (size_t)cc->cfg.M);
    ct_cc_put_f32(&w, cc->threshold);
    ct_cc_put_u32(&w, (uint32_t)cc->folded);
    ct_cc_put_u64(&w, cc->n_params);
    ct_cc_put_f32s(&w, cc->mem, cc->n_params);
    ct_cc_put_digest(&w);
    if (w.failed) {
        free(w.data);
        return ct_error_set(CT_ENOMEM, "crosscoder save: out of memory for %zu parameters", cc->n_params);
    }
    *buf = w.data;
    *len = w.len;
    return 0;
}

int ct_cc_load(const void *buf, size_t len, const char *name, ct_crosscoder **out)
{
    *out = NULL;
    if (!name)
        name = "crosscoder";
    ct_cc_rbuf r = {.data = buf, .len = len};
    if (len < 12 || memcmp(buf, CT_CC_MODEL_MAGIC, 8) != 0)
        return ct_error_set(CT_EFORMAT, "%s: not a crosscoder file (bad magic)", name);
    int rc = ct_cc_check_digest(&r, name);
    if (rc)
        return rc;
    r.off = 8;
    uint32_t ver = ct_cc_get_u32(&r);
    if (ver != CT_CC_MODEL_VERSION)
        return ct_error_set(CT_EFORMAT, "%s: crosscoder format version %u, this build reads %u", name, ver,
                            CT_CC_MODEL_VERSION);
    ct_cc_config cfg;
    ct_cc_get_config(&r, &cfg);
    if (r.short_read)
        return ct_error_set(CT_ECORRUPT, "%s: truncated crosscoder header", name);
    if ((rc = ct_cc_config_resolve(&cfg)))
        return ct_error_wrap(rc, "%s", name);
    /* Check the payload size before allocating what the header claims. */
    size_t np_cfg = ct_cc_param_count(cfg.M, cfg.d, cfg.H);
    if (r.len - r.off != (size_t)cfg.M * 4 + 4 + 4 + 8 + np_cfg * 4)
        return ct_error_set(CT_ECORRUPT, "%s: %zu payload bytes, the config implies %zu", name, r.len - r.off,
                            (size_t)cfg.M * 4 + 16 + np_cfg * 4);
    ct_crosscoder *cc;
    if ((rc = ct_cc_create(&cfg, &cc)))
        return rc;
    ct_cc_get_f32s(&r, cc->scale, (size_t)cfg.M);
    cc->threshold = ct_cc_get_f32(&r);
    cc->folded = ct_cc_get_u32(&r) != 0;
    uint64_t np = ct_cc_get_u64(&r);
    if (r.short_read || np != cc->n_params) {
        ct_cc_free(cc);
        return ct_error_set(CT_ECORRUPT, "%s: parameter count %llu does not match the config (%zu)", name,
                            (unsigned long long)np, cc->n_params);
    }
    ct_cc_get_f32s(&r, cc->mem, cc->n_params);
    if (r.short_read || r.off != r.len) {
        ct_cc_free(cc);
        return ct_error_set(CT_ECORRUPT, "%s: crosscoder payload has the wrong size", name);
    }
    *out = cc;
    return 0;
}

int ct_cc_save_file(const ct_crosscoder *cc, const char *path)
{
    void *buf;
    size_t len;
    int rc = ct_cc_save(cc, &buf, &len);
    if (rc)
        return rc;
    rc = ct_write_file_atomic(path, buf, len);
    free(buf);
    return rc;
}

int ct_cc_load_file(const char *path, ct_crosscoder **out)
{
    char *data;
    size_t len;
    int rc = ct_read_file(path, &data, &len);
    if (rc)
        return rc;
    rc = ct_cc_load(data, len, path, out);
    free(data);
    return rc;
}

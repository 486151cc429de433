/* Building a model straight from a checkpoint (models/checkpoint). */
#include "models/checkpoint/checkpoint.h"
#include "models/forward/model.h"

#include "common/error.h"

int ct_model_get_from_checkpoint(void *checkpoint, const char *hf_name, float *dst,
                                 size_t n_expected)
{
    return ct_ckpt_tensor_f32(checkpoint, hf_name, dst, n_expected);
}

int ct_model_load(const char *source, const ct_model_options *opts, ct_model **out)
{
    *out = NULL;
    ct_checkpoint *ck = NULL;
    int rc = ct_ckpt_open(source, &ck);
    if (rc)
        return rc;
    rc = ct_model_create(ct_ckpt_config(ck), ct_model_get_from_checkpoint, ck, opts, out);
    if (rc)
        ct_error_wrap(rc, "%s", source);
    ct_ckpt_close(ck);
    return rc;
}

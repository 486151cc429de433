/* safetensors + JSON export of a crosscoder (models/checkpoint writes the file). */
#include "crosscoder/export.h"

#include "common/error.h"
#include "common/io.h"
#include "models/checkpoint/safetensors.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

int ct_cc_config_json(const ct_crosscoder *cc, char **json)
{
    const ct_cc_config *c = &cc->cfg;
    json_t *o = json_object(), *s = json_array();
    for (int m = 0; m < c->M; m++)
        json_array_append_new(s, json_real(cc->scale[m]));
    json_object_set_new(o, "format", json_string("crosstime-crosscoder"));
    json_object_set_new(o, "format_version", json_integer(1));
    json_object_set_new(o, "type", json_string(c->type == CT_CC_L1 ? "l1" : "batchtopk"));
    json_object_set_new(o, "n_models", json_integer(c->M));
    json_object_set_new(o, "d_in", json_integer(c->d));
    json_object_set_new(o, "dict_size", json_integer(c->H));
    /* Training inputs are x_m · s_m; folded weights take raw activations instead. */
    json_object_set_new(o, "normalisation_factors", s);
    json_object_set_new(o, "folded", json_boolean(cc->folded));
    json_object_set_new(o, "threshold", cc->threshold >= 0.0f ? json_real(cc->threshold) : json_null());
    json_object_set_new(o, "batch_size", json_integer(c->batch));
    json_object_set_new(o, "steps", json_integer(c->steps));
    json_object_set_new(o, "lr", json_real(c->lr));
    json_object_set_new(o, "beta1", json_real(c->beta1));
    json_object_set_new(o, "beta2", json_real(c->beta2));
    json_object_set_new(o, "l1_coeff", json_real(c->l1_coeff));
    json_object_set_new(o, "l1_warmup", json_real(c->l1_warmup));
    json_object_set_new(o, "lr_decay_start", json_real(c->lr_decay_start));
    json_object_set_new(o, "dec_init_norm", json_real(c->dec_init_norm));
    json_object_set_new(o, "seed", json_integer((json_int_t)c->seed));
    if (c->type == CT_CC_BATCHTOPK) {
        json_object_set_new(o, "k", json_integer(c->k_end));
        json_object_set_new(o, "k_start", json_integer(c->k_start));
        json_object_set_new(o, "k_anneal_steps", json_integer(c->k_anneal_steps));
        json_object_set_new(o, "aux_coeff", json_real(c->aux_coeff));
        json_object_set_new(o, "k_aux", json_integer(c->k_aux));
    }
    *json = json_dumps(o, JSON_SORT_KEYS | JSON_INDENT(2) | JSON_REAL_PRECISION(9));
    json_decref(o);
    if (!*json)
        return ct_error_set(CT_ENOMEM, "crosscoder export: out of memory formatting the config");
    return 0;
}

int ct_cc_export_safetensors(const ct_crosscoder *cc, const char *st_path, const char *json_path)
{
    const ct_cc_config *c = &cc->cfg;
    int64_t s_enc[3] = {c->M, c->d, c->H}, s_benc[1] = {c->H}, s_dec[3] = {c->H, c->M, c->d},
            s_bdec[2] = {c->M, c->d};
    ct_st_tensor t[4] = {
        {.name = "W_enc", .dtype = CT_DT_F32, .ndim = 3, .shape = s_enc, .data = cc->p.W_enc},
        {.name = "b_enc", .dtype = CT_DT_F32, .ndim = 1, .shape = s_benc, .data = cc->p.b_enc},
        {.name = "W_dec", .dtype = CT_DT_F32, .ndim = 3, .shape = s_dec, .data = cc->p.W_dec},
        {.name = "b_dec", .dtype = CT_DT_F32, .ndim = 2, .shape = s_bdec, .data = cc->p.b_dec},
    };
    char *json;
    int rc = ct_cc_config_json(cc, &json);
    if (rc)
        return rc;
    const char *key = "config";
    const char *val = json;
    rc = ct_safetensors_write(st_path, t, 4, &key, &val, 1);
    if (!rc && json_path) {
        size_t n = strlen(json);
        json[n] = '\n'; /* the terminator becomes the file's final newline */
        rc = ct_write_file_atomic(json_path, json, n + 1);
    }
    free(json);
    return rc;
}

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

/* --- import ------------------------------------------------------------------------- */

static int cfg_int(json_t *o, const char *k, long long *v)
{
    json_t *x = json_object_get(o, k);
    if (!x)
        return 0; /* not exported for this type: keep the default */
    if (!json_is_integer(x))
        return -1;
    *v = json_integer_value(x);
    return 0;
}

static int cfg_num(json_t *o, const char *k, double *v)
{
    json_t *x = json_object_get(o, k);
    if (!x)
        return 0;
    if (!json_is_number(x))
        return -1;
    *v = json_number_value(x);
    return 0;
}

/* The config of an exported file back into a ct_cc_config (fields the export does not
 * write keep the paper's defaults; they only matter for training). */
static int config_from_json(json_t *o, const char *path, ct_cc_config *c)
{
    ct_cc_config init = CT_CC_CONFIG_INIT;
    *c = init;
    const char *format = json_string_value(json_object_get(o, "format"));
    if (!format || strcmp(format, "crosstime-crosscoder") != 0 ||
        json_integer_value(json_object_get(o, "format_version")) != 1)
        return ct_error_set(CT_EFORMAT, "%s: the config is not a version 1 crosstime crosscoder", path);
    const char *type = json_string_value(json_object_get(o, "type"));
    if (!type || (strcmp(type, "l1") && strcmp(type, "batchtopk")))
        return ct_error_set(CT_EFORMAT, "%s: config type must be 'l1' or 'batchtopk'", path);
    c->type = strcmp(type, "l1") == 0 ? CT_CC_L1 : CT_CC_BATCHTOPK;
    long long M = 0, d = 0, H = 0, batch = c->batch, steps = 0, seed = 0, k = c->k_end, k_start = c->k_start,
              k_anneal = c->k_anneal_steps, k_aux = c->k_aux;
    double lr = c->lr, b1 = c->beta1, b2 = c->beta2, l1 = c->l1_coeff, l1w = c->l1_warmup,
           lrd = c->lr_decay_start, din = c->dec_init_norm, aux = c->aux_coeff;
    if (cfg_int(o, "n_models", &M) || cfg_int(o, "d_in", &d) || cfg_int(o, "dict_size", &H) ||
        cfg_int(o, "batch_size", &batch) || cfg_int(o, "steps", &steps) || cfg_int(o, "seed", &seed) ||
        cfg_int(o, "k", &k) || cfg_int(o, "k_start", &k_start) || cfg_int(o, "k_anneal_steps", &k_anneal) ||
        cfg_int(o, "k_aux", &k_aux) || cfg_num(o, "lr", &lr) || cfg_num(o, "beta1", &b1) ||
        cfg_num(o, "beta2", &b2) || cfg_num(o, "l1_coeff", &l1) || cfg_num(o, "l1_warmup", &l1w) ||
        cfg_num(o, "lr_decay_start", &lrd) || cfg_num(o, "dec_init_norm", &din) ||
        cfg_num(o, "aux_coeff", &aux))
        return ct_error_set(CT_EFORMAT, "%s: a config field has the wrong type", path);
    if (M < 2 || d < 1 || H < 1 || M > 1024 || d > (1 << 20) || H > (1 << 24))
        return ct_error_set(CT_EFORMAT, "%s: config shape n_models=%lld d_in=%lld dict_size=%lld is invalid",
                            path, M, d, H);
    c->M = (int)M, c->d = (int)d, c->H = (int)H, c->batch = (int)batch, c->steps = (long)steps;
    c->tokens = 0; /* steps are given */
    c->seed = (uint64_t)seed, c->k_end = (int)k, c->k_start = (int)k_start;
    c->k_anneal_steps = (long)k_anneal, c->k_aux = (int)k_aux;
    c->lr = (float)lr, c->beta1 = (float)b1, c->beta2 = (float)b2, c->l1_coeff = (float)l1;
    c->l1_warmup = l1w, c->lr_decay_start = lrd, c->dec_init_norm = (float)din, c->aux_coeff = (float)aux;
    int rc = ct_cc_config_resolve(c);
    return rc ? ct_error_wrap(rc, "%s", path) : 0;
}

/* Copies tensor `name` of the expected shape (F32) into dst. */
static int take(const ct_safetensors *st, const char *path, const char *name, int ndim, const int64_t *shape,
                float *dst)
{
    ct_tensor_view v;
    if (ct_safetensors_find(st, name, &v))
        return ct_error_set(CT_EFORMAT, "%s: no tensor %s", path, name);
    int ok = v.dtype == CT_DT_F32 && v.ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = v.shape[i] == shape[i];
    if (!ok)
        return ct_error_set(CT_EFORMAT, "%s: tensor %s is not F32 of the shape the config gives", path, name);
    return ct_dtype_to_f32(CT_DT_F32, v.data, v.numel, dst);
}

int ct_cc_import_safetensors(const char *st_path, ct_crosscoder **out)
{
    ct_safetensors *st;
    int rc = ct_safetensors_open(st_path, &st);
    if (rc)
        return rc;
    const char *text = ct_safetensors_meta(st, "config");
    json_error_t jerr;
    json_t *o = text ? json_loads(text, 0, &jerr) : NULL;
    ct_cc_config c;
    ct_crosscoder *cc = NULL;
    if (!o)
        rc = ct_error_set(CT_EFORMAT, "%s: no crosscoder config in the safetensors metadata", st_path);
    if (!rc)
        rc = config_from_json(o, st_path, &c);
    if (!rc)
        rc = ct_cc_create(&c, &cc);
    if (!rc) {
        int64_t s_enc[3] = {c.M, c.d, c.H}, s_benc[1] = {c.H}, s_dec[3] = {c.H, c.M, c.d}, s_bdec[2] = {c.M, c.d};
        rc = take(st, st_path, "W_enc", 3, s_enc, cc->p.W_enc);
        if (!rc)
            rc = take(st, st_path, "b_enc", 1, s_benc, cc->p.b_enc);
        if (!rc)
            rc = take(st, st_path, "W_dec", 3, s_dec, cc->p.W_dec);
        if (!rc)
            rc = take(st, st_path, "b_dec", 2, s_bdec, cc->p.b_dec);
    }
    if (!rc) {
        json_t *s = json_object_get(o, "normalisation_factors");
        if (!json_is_array(s) || json_array_size(s) != (size_t)c.M)
            rc = ct_error_set(CT_EFORMAT, "%s: normalisation_factors must hold %d numbers", st_path, c.M);
        for (int m = 0; !rc && m < c.M; m++) {
            json_t *x = json_array_get(s, (size_t)m);
            if (!json_is_number(x) || !(json_number_value(x) > 0))
                rc = ct_error_set(CT_EFORMAT, "%s: normalisation factor %d is not a positive number", st_path, m);
            else
                cc->scale[m] = (float)json_number_value(x);
        }
        json_t *th = json_object_get(o, "threshold");
        cc->folded = json_is_true(json_object_get(o, "folded"));
        cc->threshold = json_is_number(th) ? (float)json_number_value(th) : -1.0f;
    }
    json_decref(o);
    ct_safetensors_close(st);
    if (rc) {
        ct_cc_free(cc);
        return rc;
    }
    *out = cc;
    return 0;
}

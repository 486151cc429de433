/* Tiny worlds for the analysis tests: GPT-NeoX models built in memory from seeded
 * random weights (checkpoint B is checkpoint A plus a small perturbation, as two
 * checkpoints of one run would be), random folded crosscoders, and minimal pairs of
 * random token ids. */
#ifndef CT_TEST_ANALYSIS_FIXTURE_H
#define CT_TEST_ANALYSIS_FIXTURE_H

#include "common/error.h"
#include "crosscoder/crosscoder.h"
#include "models/forward/model.h"
#include "models/forward/pretrain.h"
#include "models/tasks/tasks.h"
#include "tests/support/testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define AX_D 32
#define AX_LAYERS 3
#define AX_VOCAB 50
#define AX_LAYER 1 /* the crosscoder's site */

static inline uint64_t ax_hash(const char *s, uint64_t seed)
{
    uint64_t h = 1469598103934665603ull ^ seed;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Weights by name: the shared "run" (seed 1) plus `perturb` times noise of the
 * checkpoint's own seed. */
typedef struct {
    uint64_t seed;
    double perturb;
} ax_weights;

static inline int ax_getter(void *user, const char *name, float *dst, size_t n)
{
    const ax_weights *w = user;
    int norm_w = strstr(name, "layernorm.weight") != NULL || strstr(name, "final_layer_norm.weight") != NULL;
    int bias = strstr(name, ".bias") != NULL;
    double mean = norm_w ? 1.0 : 0.0;
    double std = norm_w || bias ? 0.1 : strstr(name, "embed_in") ? 1.0 : strstr(name, "embed_out") ? 0.5 : 0.2;
    uint64_t a = ax_hash(name, 1), b = ax_hash(name, w->seed);
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)(mean + std * (ct_test_normal(&a) + w->perturb * ct_test_normal(&b)));
    return 0;
}

static inline ct_model *ax_model_on(uint64_t seed, double perturb, ct_device dev)
{
    ct_model_config c;
    ct_pretrain_neox_config(&c, AX_VOCAB, AX_D, AX_LAYERS, 4, 0, 64, 0.5f, 1);
    c.bos_token_id = c.eos_token_id = -1;
    ax_weights w = {seed, perturb};
    ct_model_options o = CT_MODEL_OPTIONS_INIT;
    o.device = dev;
    ct_model *m = NULL;
    ck_assert_msg(ct_model_create(&c, ax_getter, &w, &o, &m) == 0, "%s", ct_error_message());
    return m;
}

static inline ct_model *ax_model(uint64_t seed, double perturb)
{
    return ax_model_on(seed, perturb, CT_DEVICE_CPU);
}

/* An unfolded crosscoder of M checkpoints with zero parameters and scale 1. */
static inline ct_crosscoder *ax_cc_empty(int M, int H)
{
    ct_cc_config cfg = CT_CC_CONFIG_INIT;
    cfg.M = M;
    cfg.d = AX_D;
    cfg.H = H;
    cfg.batch = 16;
    ck_assert_int_eq(ct_cc_config_resolve(&cfg), 0);
    ct_crosscoder *cc = NULL;
    ck_assert_int_eq(ct_cc_create(&cfg, &cc), 0);
    return cc;
}

/* A random crosscoder, folded with factors that are not 1. About half of the latents
 * fire on a typical residual. */
static inline ct_crosscoder *ax_cc_random(int M, int H, uint64_t seed)
{
    ct_crosscoder *cc = ax_cc_empty(M, H);
    uint64_t s = seed;
    double enc = 1.0 / sqrt((double)M * AX_D);
    for (size_t i = 0; i < (size_t)M * AX_D * H; i++)
        cc->p.W_enc[i] = (float)(enc * ct_test_normal(&s));
    for (int j = 0; j < H; j++)
        cc->p.b_enc[j] = (float)(0.1 * ct_test_normal(&s));
    for (size_t i = 0; i < (size_t)H * M * AX_D; i++)
        cc->p.W_dec[i] = (float)(0.3 * ct_test_normal(&s));
    for (size_t i = 0; i < (size_t)M * AX_D; i++)
        cc->p.b_dec[i] = (float)(ct_test_normal(&s)); /* like a mean residual: the baseline stays far from 0 */
    for (int m = 0; m < M; m++)
        cc->scale[m] = 0.8f + 0.3f * (float)m;
    ck_assert_int_eq(ct_cc_fold(cc), 0);
    return cc;
}

/* n minimal pairs of random ids with prefixes of 2 to 9 tokens. ids must hold 9*n. */
static inline void ax_examples(ct_task_example *ex, int32_t *ids, size_t n, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        ex[i].prefix = ids + 9 * i;
        ex[i].n_prefix = 2 + (size_t)(ct_test_splitmix(&s) % 8);
        for (size_t t = 0; t < ex[i].n_prefix; t++)
            ids[9 * i + t] = (int32_t)(ct_test_splitmix(&s) % AX_VOCAB);
        ex[i].good = (int32_t)(ct_test_splitmix(&s) % AX_VOCAB);
        do
            ex[i].bad = (int32_t)(ct_test_splitmix(&s) % AX_VOCAB);
        while (ex[i].bad == ex[i].good);
        ex[i].pair = i;
    }
}

#endif

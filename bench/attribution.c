/* Attribution throughput: examples per second of ct_attr_ig (integrated gradients,
 * METHOD §5) for a Pythia-70M-shaped checkpoint pair (hidden 512, 6 layers, 8 heads,
 * vocab 50304, random weights) at layer 3 with a random folded crosscoder, on
 * BLiMP-like prefixes of 12 tokens.
 *
 *   bench_attribution [--threads N] [--dict H] [--examples N] [--batch B] [--steps S]
 *                     [--prefix T] [--device cpu|cuda]
 *
 * Defaults: H = 4096, 16 examples, batch 4, 10 steps. Prints key=value lines ending in
 * examples_per_s=N. Compare with bench/reference/attribution_torch.py at the same
 * thread count. */
#include "analysis/attribution.h"
#include "common/progress.h"
#include "common/error.h"
#include "models/forward/pretrain.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HIDDEN 512
#define LAYERS 6
#define HEADS 8
#define VOCAB 50304
#define LAYER 3

static uint64_t mix(uint64_t *s)
{
    uint64_t x = (*s += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* uniform in [-1, 1) */
static float uni(uint64_t *s)
{
    return (float)((double)(mix(s) >> 11) / 4503599627370496.0 - 1.0);
}

/* Random weights keyed by the tensor name and the checkpoint's seed: norms near 1,
 * the rest small, so activations stay in a trained model's range. */
static int weights(void *user, const char *name, float *dst, size_t n)
{
    uint64_t s = *(const uint64_t *)user;
    for (const char *p = name; *p; p++)
        s = (s ^ (unsigned char)*p) * 0x100000001b3ull;
    int norm = strstr(name, "layernorm.weight") || strstr(name, "final_layer_norm.weight");
    for (size_t i = 0; i < n; i++)
        dst[i] = norm ? 1.0f + 0.05f * uni(&s) : 0.04f * uni(&s);
    return 0;
}

int main(int argc, char **argv)
{
    int threads = 0, H = 4096, n = 16, batch = 4, steps = 10, T = 12;
    const char *dev = "cpu";
    for (int i = 1; i < argc; i++) {
        int more = i + 1 < argc;
        if (!strcmp(argv[i], "--threads") && more)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dict") && more)
            H = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--examples") && more)
            n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && more)
            batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && more)
            steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--prefix") && more)
            T = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--device") && more)
            dev = argv[++i];
        else {
            fprintf(stderr, "usage: bench_attribution [--threads N] [--dict H] [--examples N] [--batch B] "
                            "[--steps S] [--prefix T] [--device cpu|cuda]\n");
            return 2;
        }
    }
    if (H < 1 || n < 1 || batch < 1 || steps < 1 || T < 1 || T > 2048) {
        fprintf(stderr, "bench attribution: sizes must be positive (prefix at most 2048)\n");
        return 2;
    }
    if (threads > 0) {
        omp_set_num_threads(threads);
        openblas_set_num_threads(threads);
    }
    ct_model_options mo = CT_MODEL_OPTIONS_INIT;
    if (ct_device_parse(dev, &mo.device)) {
        fprintf(stderr, "bench attribution: %s\n", ct_error_message());
        return 2;
    }
    ct_model_config cfg; /* Pythia-70M's shape */
    ct_pretrain_neox_config(&cfg, VOCAB, HIDDEN, LAYERS, HEADS, 0, 2048, 0.25f, 1);
    cfg.bos_token_id = cfg.eos_token_id = -1;

    ct_model *models[2] = {NULL, NULL};
    ct_crosscoder *cc = NULL;
    ct_cc_config cc_cfg = CT_CC_CONFIG_INIT;
    cc_cfg.M = 2;
    cc_cfg.d = HIDDEN;
    cc_cfg.H = H;
    cc_cfg.batch = 64;
    int rc = 0;
    for (int m = 0; m < 2 && !rc; m++) {
        uint64_t seed = 1000 + (uint64_t)m;
        rc = ct_model_create(&cfg, weights, &seed, &mo, &models[m]);
    }
    if (!rc)
        rc = ct_cc_config_resolve(&cc_cfg);
    if (!rc)
        rc = ct_cc_create(&cc_cfg, &cc);
    int32_t *ids = malloc((size_t)n * T * sizeof *ids);
    ct_task_example *ex = malloc((size_t)n * sizeof *ex);
    if (!rc && (!ids || !ex))
        rc = ct_error_set(CT_ENOMEM, "bench attribution: out of memory");
    if (!rc) {
        /* random folded crosscoder: encoder ~ U·1/sqrt(M d), decoder rows small,
         * b_enc 0 (about half the latents fire: the dense worst case) */
        uint64_t s = 7;
        float enc = 1.0f / sqrtf(2.0f * HIDDEN);
        for (size_t i = 0; i < (size_t)2 * HIDDEN * H; i++)
            cc->p.W_enc[i] = enc * uni(&s);
        for (size_t i = 0; i < (size_t)H * 2 * HIDDEN; i++)
            cc->p.W_dec[i] = 0.01f * uni(&s);
        for (size_t i = 0; i < (size_t)2 * HIDDEN; i++)
            cc->p.b_dec[i] = 0.1f * uni(&s);
        rc = ct_cc_fold(cc);
        for (int e = 0; e < n; e++) {
            for (int t = 0; t < T; t++)
                ids[(size_t)e * T + t] = (int32_t)(mix(&s) % VOCAB);
            ex[e] = (ct_task_example){ids + (size_t)e * T, (size_t)T, (int32_t)(mix(&s) % VOCAB), 0, (size_t)e};
            do
                ex[e].bad = (int32_t)(mix(&s) % VOCAB);
            while (ex[e].bad == ex[e].good);
        }
    }
    ct_attr_options o = CT_ATTR_OPTIONS_INIT;
    o.steps = steps;
    o.batch = batch;
    ct_attr_result r;
    double t_warm = 0, t = 0;
    if (!rc) { /* one batch first: allocation and caches */
        double t0 = ct_seconds();
        rc = ct_attr_ig(models, 2, cc, LAYER, ex, (size_t)(batch < n ? batch : n), &o, &r);
        t_warm = ct_seconds() - t0;
        ct_attr_result_free(&r);
    }
    if (!rc) {
        double t0 = ct_seconds();
        rc = ct_attr_ig(models, 2, cc, LAYER, ex, (size_t)n, &o, &r);
        t = ct_seconds() - t0;
    }
    if (rc) {
        fprintf(stderr, "bench attribution: %s\n", ct_error_message());
    } else {
        size_t active = 0;
        for (size_t i = 0; i < (size_t)2 * H; i++)
            active += r.ie[i] != 0.0f;
        printf("impl=crosstime\ndevice=%s\nthreads=%d\n", dev, omp_get_max_threads());
        printf("hidden=%d\nlayers=%d\nheads=%d\nvocab=%d\nlayer=%d\ndict=%d\n", HIDDEN, LAYERS, HEADS, VOCAB, LAYER,
               H);
        printf("prefix=%d\nbatch=%d\nsteps=%d\nexamples=%d\n", T, batch, steps, n);
        printf("nonzero_ie=%zu\nwarmup_s=%.3f\nseconds=%.3f\n", active, t_warm, t);
        printf("examples_per_s=%.2f\n", n / t);
        ct_attr_result_free(&r);
    }
    free(ids);
    free(ex);
    ct_cc_free(cc);
    ct_model_free(models[0]);
    ct_model_free(models[1]);
    return rc ? 1 : 0;
}

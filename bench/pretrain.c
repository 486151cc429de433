/* Training throughput of GPT-NeoX pretraining on the CPU: a tiny-en-sized random model
 * (hidden 256, 4 layers, 4 heads, vocab 4096, context 128, batch 32 sequences) taking
 * full steps (forward, backward to every parameter, clipping, AdamW) on random tokens.
 * Compare with bench/reference/pretrain_torch.py at the same thread count.
 *
 *   bench_pretrain [--hidden N] [--layers N] [--heads N] [--vocab N] [--ctx N]
 *                  [--batch N] [--steps N]
 * Prints key=value lines, the last one tokens_per_s=N. */
#include "common/error.h"
#include "common/progress.h"
#include "models/forward/pretrain.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    int hidden = 256, layers = 4, heads = 4, vocab = 4096, ctx = 128, batch = 32, steps = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--hidden"))
            hidden = v;
        else if (!strcmp(argv[i], "--layers"))
            layers = v;
        else if (!strcmp(argv[i], "--heads"))
            heads = v;
        else if (!strcmp(argv[i], "--vocab"))
            vocab = v;
        else if (!strcmp(argv[i], "--ctx"))
            ctx = v;
        else if (!strcmp(argv[i], "--batch"))
            batch = v;
        else if (!strcmp(argv[i], "--steps"))
            steps = v;
        else {
            fprintf(stderr, "bench_pretrain: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    ct_model_config mc;
    ct_pretrain_neox_config(&mc, vocab, hidden, layers, heads, 0, ctx, 0.25f, 1);
    ct_pretrain_config cfg = CT_PRETRAIN_CONFIG_INIT;
    cfg.batch_sequences = batch;
    cfg.ctx = ctx;
    cfg.steps = 1000;
    ct_pretrain *t = NULL;
    if (ct_pretrain_create(&cfg, &mc, &t)) {
        fprintf(stderr, "bench_pretrain: %s\n", ct_error_message());
        return 1;
    }
    size_t n = (size_t)batch * (ctx + 1);
    int32_t *tok = malloc(n * sizeof(int32_t));
    uint64_t s = 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        tok[i] = (int32_t)((s >> 33) % (uint64_t)vocab);
    }
    size_t params = 0;
    for (size_t i = 0; i < ct_pretrain_n_tensors(t); i++)
        params += ct_pretrain_tensor_at(t, i)->numel;
    printf("model=gpt-neox hidden=%d layers=%d heads=%d vocab=%d ctx=%d batch=%d params=%zu\n",
           hidden, layers, heads, vocab, ctx, batch, params);
    printf("threads=%d device=cpu\n", omp_get_max_threads());
    ct_pretrain_stats st;
    if (ct_pretrain_step(t, tok, &st)) { /* warm-up: arena allocation, page faults */
        fprintf(stderr, "bench_pretrain: %s\n", ct_error_message());
        return 1;
    }
    double t0 = ct_seconds();
    for (int i = 0; i < steps; i++)
        if (ct_pretrain_step(t, tok, &st)) {
            fprintf(stderr, "bench_pretrain: %s\n", ct_error_message());
            return 1;
        }
    double dt = (ct_seconds() - t0) / steps;
    printf("loss=%.4f\n", st.loss);
    printf("ms_per_step=%.1f\n", 1e3 * dt);
    printf("tokens_per_s=%.0f\n", (double)batch * ctx / dt);
    free(tok);
    ct_pretrain_free(t);
    return 0;
}

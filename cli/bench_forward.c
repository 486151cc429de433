/* `crosstime bench forward`: forward throughput of a random-weight model of a given
 * shape, with the FLOPs of every matmul (attention included) and, on the CPU, the
 * machine's measured SGEMM peak for comparison. Prints key=value lines, the last one
 * tokens_per_s=N. */
#include "common/error.h"
#include "common/progress.h"
#include "kernels/kernels.h"
#include "models/forward/model.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* CPU time of the whole process (all threads): on a shared machine it shows how much
 * of the wall time this process actually ran. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Deterministic small random weights: LayerNorm weights near 1, the rest ~N(0, 0.02)-ish. */
static int random_getter(void *user, const char *name, float *dst, size_t n)
{
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (const char *p = name; *p; p++)
        s = (s ^ (unsigned char)*p) * 0x100000001b3ull;
    int is_norm = strstr(name, "layernorm.weight") || strstr(name, "layer_norm.weight") ||
                  strstr(name, "ln_f.weight");
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        float u = (float)(s >> 40) / 16777216.0f - 0.5f;
        dst[i] = is_norm ? 1.0f + 0.1f * u : 0.07f * u;
    }
    (void)user;
    return 0;
}

/* Best SGEMM rate on square 2048 matrices over 8 runs (after one warm-up), in GFLOP/s:
 * the machine may be shared, so the best run is the closest to its peak. */
static double sgemm_peak(void)
{
    int n = 2048;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n);
    float *c = malloc(sizeof(float) * n * n);
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return 0;
    }
    for (size_t i = 0; i < (size_t)n * n; i++)
        a[i] = b[i] = (float)(i % 7) * 0.1f;
    double best = 1e30;
    for (int r = 0; r < 9; r++) {
        double t0 = ct_seconds();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c,
                    n);
        double t = ct_seconds() - t0;
        if (r > 0 && t < best)
            best = t;
    }
    free(a), free(b), free(c);
    return 2.0 * n * n * (double)n / best / 1e9;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: crosstime bench forward [--arch neox|bloom|olmo] [--hidden 512] [--layers 6]\n"
            "       [--heads 8] [--vocab 50304] [--ctx 1024] [--batch 4] [--stop-at L]\n"
            "       [--iters 3] [--device cpu|cuda]\n");
    return 2;
}

int ct_cmd_bench_forward(int argc, char **argv)
{
    int hidden = 512, layers = 6, heads = 8, vocab = 50304, ctx = 1024, batch = 4, stop = -1;
    int iters = 3;
    const char *arch = "neox", *dev = "cpu";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int *ip = !strcmp(a, "--hidden")  ? &hidden
                  : !strcmp(a, "--layers") ? &layers
                  : !strcmp(a, "--heads")  ? &heads
                  : !strcmp(a, "--vocab")  ? &vocab
                  : !strcmp(a, "--ctx")    ? &ctx
                  : !strcmp(a, "--batch")  ? &batch
                  : !strcmp(a, "--stop-at") ? &stop
                  : !strcmp(a, "--iters")  ? &iters
                                           : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return usage(), 0;
        if (!v)
            return usage();
        if (ip) {
            char *end;
            long x = strtol(v, &end, 10);
            if (*end || x < (ip == &stop ? -1 : 1) || x > 1 << 20) {
                fprintf(stderr, "bench forward: %s: bad value '%s'\n", a, v);
                return 2;
            }
            *ip = (int)x;
        } else if (!strcmp(a, "--arch")) {
            arch = v;
        } else if (!strcmp(a, "--device")) {
            dev = v;
        } else {
            return usage();
        }
        i++;
    }
    ct_model_options mo = CT_MODEL_OPTIONS_INIT;
    if (ct_device_parse(dev, &mo.device)) {
        fprintf(stderr, "bench forward: %s\n", ct_error_message());
        return 2;
    }
    if (stop >= layers) {
        fprintf(stderr, "bench forward: --stop-at %d needs fewer than --layers %d\n", stop, layers);
        return 2;
    }
    ct_model_config cfg = {0};
    cfg.n_layer = layers;
    cfg.n_head = heads;
    cfg.hidden = hidden;
    cfg.vocab = vocab;
    cfg.max_positions = ctx;
    cfg.norm_eps = 1e-5f;
    cfg.rotary_base = 10000;
    cfg.bos_token_id = cfg.eos_token_id = cfg.pad_token_id = -1;
    if (!strcmp(arch, "neox")) { /* Pythia */
        cfg.arch = CT_ARCH_GPT_NEOX;
        cfg.intermediate = 4 * hidden;
        cfg.act = CT_ACT_GELU_ERF;
        cfg.rotary_pct = 0.25f;
        cfg.parallel_residual = 1;
        cfg.attention_bias = 1;
    } else if (!strcmp(arch, "bloom")) {
        cfg.arch = CT_ARCH_BLOOM;
        cfg.intermediate = 4 * hidden;
        cfg.act = CT_ACT_GELU_TANH;
        cfg.tie_embeddings = 1;
    } else if (!strcmp(arch, "olmo")) {
        cfg.arch = CT_ARCH_OLMO;
        cfg.intermediate = 8 * hidden / 3;
        cfg.act = CT_ACT_SILU;
        cfg.rotary_pct = 1;
        cfg.clip_qkv = 8;
    } else {
        return usage();
    }
    ct_model *m = NULL;
    if (ct_model_create(&cfg, random_getter, NULL, &mo, &m)) {
        fprintf(stderr, "bench forward: %s\n", ct_error_message());
        return 1;
    }
    size_t N = (size_t)batch * ctx;
    int32_t *ids = malloc(N * sizeof *ids);
    float *ce = malloc(N * sizeof *ce), *cap = malloc(N * hidden * sizeof(float));
    if (!ids || !ce || !cap) {
        fprintf(stderr, "bench forward: out of memory\n");
        free(ids), free(ce), free(cap), ct_model_free(m);
        return 1;
    }
    uint32_t s = 12345;
    for (size_t i = 0; i < N; i++) {
        s = s * 1664525u + 1013904223u;
        ids[i] = (int32_t)((s >> 8) % (uint32_t)vocab);
    }
    ct_forward_args a = CT_FORWARD_ARGS_INIT;
    a.n_seq = batch;
    a.seq_len = ctx;
    a.ids = ids;
    int cap_layer = stop;
    if (stop >= 0) {
        a.n_capture = 1;
        a.capture_layers = &cap_layer;
        a.capture = &cap;
    } else {
        a.ce = ce; /* full forward: logits at every position, reduced to the CE */
    }
    double best = 1e30, total = 0, cpu_best = 1e30;
    int rc = 0;
    for (int it = 0; it <= iters && !rc; it++) {
        double t0 = ct_seconds(), c0 = cpu_now();
        rc = ct_model_forward(m, &a);
        double t = ct_seconds() - t0, c = cpu_now() - c0;
        if (it > 0) { /* the first run allocates and warms up */
            total += t;
            best = t < best ? t : best;
            cpu_best = c < cpu_best ? c : cpu_best;
        }
    }
    if (rc) {
        fprintf(stderr, "bench forward: %s\n", ct_error_message());
        free(ids), free(ce), free(cap), ct_model_free(m);
        return 1;
    }
    int nb = stop >= 0 ? stop + 1 : layers, hd = hidden / heads;
    double C = hidden, FI = cfg.intermediate;
    double per_tok_layer = 2 * C * 3 * C + 2 * C * C + 2 * C * FI * (cfg.arch == CT_ARCH_OLMO ? 3 : 2);
    /* causal attention: T(T+1)/2 query-key pairs per head, for q·k and p·v */
    double att = 4.0 * batch * heads * hd * ((double)ctx * (ctx + 1) / 2);
    double flops = nb * (per_tok_layer * N + att) + (stop >= 0 ? 0 : 2 * C * vocab * N);
    double peak = mo.device == CT_DEVICE_CPU ? sgemm_peak() : 0;
    printf("device=%s\narch=%s\nhidden=%d\nlayers=%d\nheads=%d\nvocab=%d\nctx=%d\nbatch=%d\n",
           dev, arch, hidden, layers, heads, vocab, ctx, batch);
    printf("stop_at=%d\nthreads=%d\nparams=%zu\nactivation_bytes=%zu\n", stop,
           omp_get_max_threads(), ct_model_param_bytes(m) / 4, ct_model_activation_bytes(m));
    printf("forward_s_best=%.4f\nforward_s_mean=%.4f\ncpu_s_best=%.4f\ngflop_per_forward=%.2f\n",
           best, total / iters, cpu_best, flops / 1e9);
    printf("achieved_gflops=%.1f\n", flops / best / 1e9);
    if (peak > 0)
        printf("sgemm_peak_gflops=%.1f\npct_of_sgemm_peak=%.1f\n", peak,
               100.0 * flops / best / 1e9 / peak);
    printf("tokens_per_s=%.0f\n", N / best);
    free(ids), free(ce), free(cap);
    ct_model_free(m);
    return 0;
}

/* Training-throughput benchmark of the crosscoder on synthetic rows, shared by
 * `crosstime bench crosscoder` and bench/crosscoder_train.c. */
#ifndef CT_CROSSCODER_BENCH_H
#define CT_CROSSCODER_BENCH_H

#include <stdint.h>
#include <stdio.h>

typedef struct ct_cc_bench_opts {
    int type;        /* ct_cc_type */
    int M, d, H, batch;
    long steps;      /* timed steps (one untimed warm-up step runs first) */
    double density;  /* target fraction of active latents after the ReLU */
    int threads;     /* 0 = leave OpenMP/OpenBLAS defaults */
    int path;        /* ct_cc_path */
    int device;      /* ct_device: where the steps run (CUDA: dense kernels, either model) */
    uint64_t seed;
} ct_cc_bench_opts;

#define CT_CC_BENCH_OPTS_INIT { .type = 0, .M = 2, .d = 512, .H = 4096, .batch = 1024, .steps = 20, \
                                .density = 0.5, .threads = 0, .path = 0, .device = 0, .seed = 124 }

typedef struct ct_cc_bench_result {
    double rows_per_s, sec_per_step;
    double density;       /* mean measured fraction of active latents */
    double sparse_steps;  /* fraction of timed steps that ran the sparse kernels */
} ct_cc_bench_result;

/* Trains on N(0,1) rows from the paper's init, with b_enc set so that a fraction
 * `density` of latents is active (per latent: the negated (1 − density) quantile of its
 * pre-activation on the first batch), and prints key=value lines to `out`, the last
 * being rows_per_s=N. *res (may be NULL) receives the figures. */
int ct_cc_bench_run(const ct_cc_bench_opts *o, FILE *out, ct_cc_bench_result *res);

#endif

/* Crosscoder training throughput (rows/s) at the shapes that matter, with the
 * machine's measured SGEMM peak for scale.
 *
 *   crosscoder_train [--threads N] [--steps N] [--big-steps N] [--skip-big | --only-big]
 *
 * Runs the L1 crosscoder at (M=2, d=512, H=4096, batch 1024) with densities 0.5 and
 * 0.02 (the latter also on the dense path alone, to show what the sparse path buys), the
 * BatchTopK crosscoder there with k = 200, and the L1 crosscoder at (M=3, d=2048,
 * H=16384, batch 4096) with density 0.02. Compare with bench/reference/crosscoder_torch.py
 * at the same shapes and thread count. */
#include "common/error.h"
#include "common/progress.h"
#include "crosscoder/bench.h"
#include "crosscoder/crosscoder.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Best of three 4096³ SGEMMs with OpenBLAS's own threading. */
static double sgemm_peak_gflops(int threads)
{
    int n = 4096;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n), *c = malloc(sizeof(float) * n * n);
    if (!a || !b || !c) {
        free(a);
        free(b);
        free(c);
        return 0;
    }
    for (size_t i = 0; i < (size_t)n * n; i++) {
        a[i] = (float)((i * 7) % 13) * 0.1f;
        b[i] = (float)((i * 5) % 11) * 0.1f;
    }
    openblas_set_num_threads(threads);
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        double t0 = ct_seconds();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double t = ct_seconds() - t0;
        if (t < best)
            best = t;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * n * (double)n * n / best * 1e-9;
}

/* One benchmark; *rows_per_s (may be NULL) receives its rate. */
static int run(const char *label, int type, int path, int M, int d, int H, int B, double P, long steps, int threads,
               double peak, double *rows_per_s)
{
    ct_cc_bench_opts o = CT_CC_BENCH_OPTS_INIT;
    o.type = type;
    o.path = path;
    o.M = M;
    o.d = d;
    o.H = H;
    o.batch = B;
    o.density = P;
    o.steps = steps;
    o.threads = threads;
    printf("== %s\n", label);
    fflush(stdout);
    ct_cc_bench_result r;
    if (ct_cc_bench_run(&o, stdout, &r)) {
        fprintf(stderr, "crosscoder_train: %s\n", ct_error_message());
        return 1;
    }
    /* FLOPs actually executed: the dense path runs five [B,D,H] products; the sparse
     * path one (the encoder) plus four passes of 2·D FLOPs per active entry. */
    double D = (double)M * d, gemm = 2.0 * B * D * H;
    double nnz = r.density * B * H;
    double flops = r.sparse_steps * (gemm + 4 * 2.0 * nnz * D) + (1 - r.sparse_steps) * 5 * gemm;
    double gf = flops / r.sec_per_step * 1e-9;
    printf("achieved_gflops=%.2f\npct_of_sgemm_peak=%.1f\n", gf, peak > 0 ? 100.0 * gf / peak : 0.0);
    fflush(stdout);
    if (rows_per_s)
        *rows_per_s = r.rows_per_s;
    return 0;
}

int main(int argc, char **argv)
{
    int threads = 0, skip_big = 0, only_big = 0;
    long steps = 10, big_steps = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atol(argv[++i]);
        else if (!strcmp(argv[i], "--big-steps") && i + 1 < argc)
            big_steps = atol(argv[++i]);
        else if (!strcmp(argv[i], "--skip-big"))
            skip_big = 1;
        else if (!strcmp(argv[i], "--only-big"))
            only_big = 1;
        else {
            fprintf(stderr, "usage: crosscoder_train [--threads N] [--steps N] [--big-steps N] [--skip-big | --only-big]\n");
            return 2;
        }
    }
    if (threads <= 0)
        threads = omp_get_max_threads();
    double peak = sgemm_peak_gflops(threads);
    printf("threads=%d\nsgemm_peak_gflops=%.2f\n", threads, peak);
    int rc = 0;
    if (!only_big) {
        double sparse = 0.0, dense = 0.0;
        rc |= run("l1 m=2 d=512 h=4096 batch=1024 density=0.5", CT_CC_L1, CT_CC_PATH_AUTO, 2, 512, 4096, 1024, 0.5,
                  steps, threads, peak, NULL);
        rc |= run("l1 m=2 d=512 h=4096 batch=1024 density=0.02", CT_CC_L1, CT_CC_PATH_AUTO, 2, 512, 4096, 1024, 0.02,
                  steps, threads, peak, &sparse);
        rc |= run("l1 m=2 d=512 h=4096 batch=1024 density=0.02 dense path only", CT_CC_L1, CT_CC_PATH_DENSE, 2, 512,
                  4096, 1024, 0.02, steps, threads, peak, &dense);
        if (!rc && dense > 0.0)
            printf("sparse_path_speedup_at_0.02=%.2f\n", sparse / dense);
        rc |= run("batchtopk k=200 m=2 d=512 h=4096 batch=1024", CT_CC_BATCHTOPK, CT_CC_PATH_AUTO, 2, 512, 4096, 1024,
                  0.5, steps, threads, peak, NULL);
    }
    if (!skip_big)
        rc |= run("l1 m=3 d=2048 h=16384 batch=4096 density=0.02", CT_CC_L1, CT_CC_PATH_AUTO, 3, 2048, 16384, 4096,
                  0.02, big_steps, threads, peak, NULL);
    return rc;
}

/* Synthetic training benchmark: the same trainer and kernels as real runs, fed from an
 * in-memory source of N(0,1) rows. */
#include "crosscoder/bench.h"
#include "common/progress.h"

#include "common/error.h"
#include "crosscoder/crosscoder.h"
#include "crosscoder/rng.h"
#include "crosscoder/source.h"
#include "crosscoder/train.h"
#include "kernels/crosscoder_kernels.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The training source with the time spent reading batches counted, so the figures can
 * tell the host's share of a step (reading and scaling rows) from the kernels'. The
 * reads run on the trainer's prefetch thread when it reads ahead, hence the atomic. */
typedef struct {
    ct_cc_source *inner;
    _Atomic unsigned long long nanos;
} timed_source;

static int timed_next(void *ctx, float *rows, size_t n)
{
    timed_source *ts = ctx;
    double t0 = ct_seconds();
    int rc = ts->inner->next(ts->inner->ctx, rows, n);
    atomic_fetch_add(&ts->nanos, (unsigned long long)((ct_seconds() - t0) * 1e9));
    return rc;
}

static int timed_tell(void *ctx, ct_cc_cursor *cur)
{
    timed_source *ts = ctx;
    return ts->inner->tell(ts->inner->ctx, cur);
}

static int timed_seek(void *ctx, const ct_cc_cursor *cur)
{
    timed_source *ts = ctx;
    return ts->inner->seek(ts->inner->ctx, cur);
}

int ct_cc_bench_run(const ct_cc_bench_opts *o, FILE *out, ct_cc_bench_result *res)
{
    if (o->steps < 1 || !(o->density > 0.0 && o->density <= 1.0))
        return ct_error_set(CT_EINVAL, "bench crosscoder: need steps >= 1 and density in (0, 1]");
    if (o->threads > 0) {
        omp_set_num_threads(o->threads);
        openblas_set_num_threads(o->threads);
    }
    ct_cc_config c = CT_CC_CONFIG_INIT;
    c.type = o->type;
    c.M = o->M;
    c.d = o->d;
    c.H = o->H;
    c.batch = o->batch;
    c.steps = o->steps + 1;
    c.seed = o->seed;
    c.path = o->path;
    c.log_every = 0;
    c.checkpoint_every = 0;
    /* BatchTopK: keep k at its final value so the measured density is k/H throughout. */
    c.k_anneal_steps = 0;
    int rc = ct_cc_config_resolve(&c);
    if (rc)
        return ct_error_wrap(rc, "bench crosscoder");
    size_t D = (size_t)c.M * c.d, nrows = 2 * (size_t)c.batch;
    float *rows = malloc(nrows * D * sizeof(float));
    if (!rows)
        return ct_error_set(CT_ENOMEM, "bench crosscoder: out of memory for %zu rows", nrows);
    ct_cc_rng r;
    ct_cc_rng_seed(&r, o->seed ^ 0xbe4c11ULL);
    for (size_t i = 0; i < nrows * D; i += 2) {
        double a, b;
        ct_cc_rng_normal2(&r, &a, &b);
        rows[i] = (float)a;
        if (i + 1 < nrows * D)
            rows[i + 1] = (float)b;
    }
    ct_cc_source src;
    ct_cc_trainer *t = NULL;
    float *pre = NULL, *col = NULL;
    if ((rc = ct_cc_memsource_open(rows, nrows, c.M, c.d, NULL, 0, 0, &src))) {
        free(rows);
        return rc;
    }
    timed_source ts = {.inner = &src};
    atomic_init(&ts.nanos, 0);
    ct_cc_source tsrc = {.M = c.M, .d = c.d, .ctx = &ts, .next = timed_next, .tell = timed_tell, .seek = timed_seek};
    if ((rc = ct_cc_trainer_create(&c, &tsrc, NULL, NULL, &t)))
        goto out;
    ct_crosscoder *cc = ct_cc_trainer_model(t);
    pre = malloc((size_t)c.batch * c.H * sizeof(float));
    col = malloc((size_t)c.batch * sizeof(float));
    float *zero = calloc((size_t)c.H, sizeof(float));
    if (!pre || !col || !zero) {
        free(zero);
        rc = ct_error_set(CT_ENOMEM, "bench crosscoder: out of memory for the first batch");
        goto out;
    }
    ct_cck_encode(rows, cc->p.W_enc, zero, pre, c.batch, (int)D, c.H);
    free(zero);
    size_t q = (size_t)((1.0 - o->density) * c.batch);
    if (q >= (size_t)c.batch)
        q = (size_t)c.batch - 1;
    for (int j = 0; j < c.H; j++) {
        for (int b = 0; b < c.batch; b++)
            col[b] = pre[(size_t)b * c.H + j];
        qsort(col, (size_t)c.batch, sizeof *col, cmp_float);
        cc->p.b_enc[j] = -col[q];
    }
    /* After b_enc is set: the device takes a copy of the host parameters. */
    if (o->device != CT_DEVICE_CPU && (rc = ct_cc_trainer_set_device(t, (ct_device)o->device)))
        goto out;
    ct_cc_losses l;
    double t0 = ct_seconds();
    if ((rc = ct_cc_trainer_step(t, &l)))
        goto out;
    double t1 = ct_seconds();
    atomic_store(&ts.nanos, 0);
    double first_loss = l.loss, dens = 0.0, sparse = 0.0;
    for (long s = 0; s < o->steps; s++) {
        if ((rc = ct_cc_trainer_step(t, &l)))
            goto out;
        dens += l.density;
        sparse += l.sparse;
    }
    double t2 = ct_seconds();
    double per = (t2 - t1) / (double)o->steps;
    double gemm = 2.0 * c.batch * (double)D * c.H; /* one [B,D]x[D,H] product */
    double rps = (double)c.batch / per;
    fprintf(out, "device=%s\n", ct_device_name((ct_device)o->device));
    fprintf(out, "type=%s\n", c.type == CT_CC_L1 ? "l1" : "batchtopk");
    fprintf(out, "m=%d\nd=%d\nh=%d\nbatch=%d\nsteps=%ld\n", c.M, c.d, c.H, c.batch, o->steps);
    fprintf(out, "threads=%d\n", omp_get_max_threads());
    fprintf(out, "density_target=%.4f\ndensity_measured=%.4f\n", o->density, dens / (double)o->steps);
    fprintf(out, "path=%s\nsparse_steps=%.2f\n", c.path == CT_CC_PATH_DENSE ? "dense" : c.path == CT_CC_PATH_SPARSE ? "sparse" : "auto",
            sparse / (double)o->steps);
    fprintf(out, "loss_first=%.6g\nloss_last=%.6g\n", first_loss, l.loss);
    fprintf(out, "warmup_s=%.4f\nsec_per_step=%.5f\n", t1 - t0, per);
    /* With prefetch on (the default on CUDA) the reads overlap the steps. */
    fprintf(out, "batch_read_s_per_step=%.5f\n", 1e-9 * (double)atomic_load(&ts.nanos) / (double)o->steps);
    fprintf(out, "prefetch=%s\n", o->device != CT_DEVICE_CPU ? "on" : "off");
    /* Dense-equivalent rate: the five [B,D,H] products a dense step performs. */
    fprintf(out, "dense_equiv_gflops=%.2f\n", 5.0 * gemm / per * 1e-9);
    fprintf(out, "rows_per_s=%.1f\n", rps);
    if (res) {
        res->rows_per_s = rps;
        res->sec_per_step = per;
        res->density = dens / (double)o->steps;
        res->sparse_steps = sparse / (double)o->steps;
    }
out:
    free(pre);
    free(col);
    ct_cc_trainer_free(t);
    ct_cc_source_close(&src);
    free(rows);
    return rc;
}

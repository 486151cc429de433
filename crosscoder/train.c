/* The crosscoder trainer: batches from a ct_cc_source, ct_cc_forward_backward, global
 * gradient-norm clipping, Adam, schedules, BatchTopK bookkeeping, metrics, checkpoints.
 *
 * The optimiser follows the reference loop (torch): loss.backward();
 * clip_grad_norm_(params, 1.0); Adam.step(); LambdaLR.step() — so step t (0-based)
 * uses lr·lr_lambda(t) and λ(t), and Adam's bias correction counts t+1. */
#include "crosscoder/train.h"

#include "common/error.h"
#include "common/io.h"
#include "common/progress.h"
#include "crosscoder/binio.h"
#include "crosscoder/prefetch.h"
#include "crosscoder/rng.h"
#include "crosscoder/train_cuda.h"
#include "kernels/crosscoder_kernels.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CT_CC_STATE_MAGIC "CTCCSTAT"
#define CT_CC_STATE_VERSION 1u

/* Log10 density histogram: bins of width 0.5 from 10^-8 to 10^0; densities below the
 * first edge fall in bin 0, dead latents are counted separately. */
#define HIST_LO (-8.0)
#define HIST_W 0.5
#define HIST_N 16

struct ct_cc_trainer {
    ct_cc_config cfg;
    ct_crosscoder *cc;
    ct_cc_source *train, *val;
    ct_cc_workspace *ws;
    float *X;            /* [batch, M*d]: X_cpu, or the device's page-locked buffer 0 */
    float *X_cpu;        /* also the scratch of evaluations */
    float *X_alt;        /* the CPU's second batch buffer for prefetching (lazy) */
    int prefetch;        /* ct_cc_trainer_set_prefetch's mode */
    ct_cc_prefetch *pf;  /* running prefetcher, or NULL: then the trainer reads itself */
    float *grad;         /* [n_params] */
    float *opt;          /* [2*n_params]: Adam first then second moments */
    uint64_t *since_fired; /* [H] tokens since the latent last fired (BatchTopK) */
    ct_cc_rng rng;       /* reserved for stochastic steps; saved with the state */
    long step;
    ct_cc_callbacks cb;
    int progress;
    /* Accumulators of the current logging interval: training metrics are means over
     * the interval's steps, each step's value computed on its own batch. */
    long acc_n;
    double acc_loss, acc_l2, acc_l1, acc_aux, acc_l0, acc_sparse;
    double *acc_ev, *ev;  /* [M] each */
    uint8_t *acc_fired, *fired; /* [H] each */
    ct_cc_cuda *dev;     /* NULL on the CPU; else the device holds the live parameters and
                          * moments, and cc->mem / opt are copies refreshed by sync_host */
};

double ct_cc_lr_at(const ct_cc_config *c, long step)
{
    double T = (double)c->steps, s0 = c->lr_decay_start * T;
    if ((double)step < s0 || T - s0 <= 0.0)
        return c->lr;
    double f = 1.0 - ((double)step - s0) / (T - s0);
    return c->lr * (f > 0.0 ? f : 0.0);
}

double ct_cc_lambda_at(const ct_cc_config *c, long step)
{
    double w = c->l1_warmup * (double)c->steps;
    if ((double)step < w)
        return c->l1_coeff * (double)step / w;
    return c->l1_coeff;
}

int ct_cc_k_at(const ct_cc_config *c, long step)
{
    if (c->k_anneal_steps <= 0 || step >= c->k_anneal_steps)
        return c->k_end;
    double p = (double)step / (double)c->k_anneal_steps;
    double k = (double)c->k_start - (double)(c->k_start - c->k_end) * p;
    /* Python's round(), which the reference uses, rounds halves to even, as rint does
     * in the default rounding mode. */
    double r = rint(k);
    return r < 1.0 ? 1 : (int)r;
}

void ct_cc_trainer_free(ct_cc_trainer *t)
{
    if (!t)
        return;
    ct_cc_prefetch_stop(t->pf);
    ct_cc_cuda_close(t->dev);
    ct_cc_free(t->cc);
    ct_cc_workspace_free(t->ws);
    free(t->X_cpu);
    free(t->X_alt);
    free(t->grad);
    free(t->opt);
    free(t->since_fired);
    free(t->acc_ev);
    free(t->ev);
    free(t->acc_fired);
    free(t->fired);
    free(t);
}

static void reset_acc(ct_cc_trainer *t)
{
    t->acc_n = 0;
    t->acc_loss = t->acc_l2 = t->acc_l1 = t->acc_aux = t->acc_l0 = t->acc_sparse = 0.0;
    memset(t->acc_ev, 0, (size_t)t->cfg.M * sizeof(double));
    memset(t->acc_fired, 0, (size_t)t->cfg.H);
}

int ct_cc_trainer_create(const ct_cc_config *cfg_in, ct_cc_source *train, ct_cc_source *val,
                         const float *scale, ct_cc_trainer **out)
{
    *out = NULL;
    ct_cc_config cfg = *cfg_in;
    int rc = ct_cc_config_resolve(&cfg);
    if (rc)
        return rc;
    if (!train || !train->next || !train->tell || !train->seek)
        return ct_error_set(CT_EINVAL, "crosscoder trainer: the training source lacks next/tell/seek");
    if (train->M != cfg.M || train->d != cfg.d)
        return ct_error_set(CT_EINVAL, "crosscoder trainer: training rows are %dx%d, config wants %dx%d",
                            train->M, train->d, cfg.M, cfg.d);
    if (val && (val->M != cfg.M || val->d != cfg.d || !val->next || !val->seek))
        return ct_error_set(CT_EINVAL, "crosscoder trainer: validation source does not match the config");
    ct_cc_trainer *t = calloc(1, sizeof *t);
    if (!t)
        return ct_error_set(CT_ENOMEM, "crosscoder trainer: out of memory");
    t->cfg = cfg;
    t->train = train;
    t->val = val;
    t->prefetch = -1;
    if ((rc = ct_cc_create(&cfg, &t->cc)) || (rc = ct_cc_workspace_create(&cfg, cfg.batch, &t->ws))) {
        ct_cc_trainer_free(t);
        return rc;
    }
    size_t np = t->cc->n_params, D = (size_t)cfg.M * cfg.d;
    t->X = t->X_cpu = malloc((size_t)cfg.batch * D * sizeof(float));
    t->grad = malloc(np * sizeof(float));
    t->opt = calloc(2 * np, sizeof(float));
    t->since_fired = calloc((size_t)cfg.H, sizeof(uint64_t));
    t->acc_ev = calloc((size_t)cfg.M, sizeof(double));
    t->ev = calloc((size_t)cfg.M, sizeof(double));
    t->acc_fired = calloc((size_t)cfg.H, 1);
    t->fired = calloc((size_t)cfg.H, 1);
    if (!t->X || !t->grad || !t->opt || !t->since_fired || !t->acc_ev || !t->ev || !t->acc_fired || !t->fired) {
        ct_cc_trainer_free(t);
        return ct_error_set(CT_ENOMEM, "crosscoder trainer: out of memory for %zu parameters", np);
    }
    ct_cc_init(t->cc, cfg.seed);
    if (scale)
        memcpy(t->cc->scale, scale, (size_t)cfg.M * sizeof(float));
    ct_cc_rng_seed(&t->rng, cfg.seed ^ 0x7472616e73ULL);
    *out = t;
    return 0;
}

void ct_cc_trainer_set_callbacks(ct_cc_trainer *t, const ct_cc_callbacks *cb)
{
    if (cb)
        t->cb = *cb;
    else
        memset(&t->cb, 0, sizeof t->cb);
}

void ct_cc_trainer_set_progress(ct_cc_trainer *t, int on) { t->progress = on; }
long ct_cc_trainer_steps_done(const ct_cc_trainer *t) { return t->step; }

/* Brings the host copies of the parameters and moments up to date with the device. */
static int sync_host(const ct_cc_trainer *t)
{
    return t->dev ? ct_cc_cuda_download(t->dev, t->cc->mem, t->opt) : 0;
}

/* Stops the prefetcher, leaving the training source at the first row not yet used. */
static int stop_prefetch(ct_cc_trainer *t)
{
    int rc = ct_cc_prefetch_stop(t->pf);
    t->pf = NULL;
    return rc;
}

void ct_cc_trainer_set_prefetch(ct_cc_trainer *t, int mode)
{
    t->prefetch = mode;
}

/* The next training batch: from the prefetcher when it is wanted, else read here. */
static int next_batch(ct_cc_trainer *t, float **X)
{
    int B = t->cfg.batch;
    int want = t->prefetch < 0 ? t->dev != NULL : t->prefetch;
    if (!want) {
        int rc = stop_prefetch(t);
        *X = t->X;
        return rc ? rc : t->train->next(t->train->ctx, t->X, (size_t)B);
    }
    if (!t->pf) {
        float *buf[2] = {t->X, NULL};
        if (t->dev) {
            buf[1] = ct_cc_cuda_batch_buffer(t->dev, 1);
        } else {
            if (!t->X_alt && !(t->X_alt = malloc((size_t)B * t->cfg.M * t->cfg.d * sizeof(float))))
                return ct_error_set(CT_ENOMEM, "crosscoder trainer: out of memory for a second batch buffer");
            buf[1] = t->X_alt;
        }
        int rc = ct_cc_prefetch_start(t->train, buf, (size_t)B, &t->pf);
        if (rc)
            return rc;
    }
    return ct_cc_prefetch_next(t->pf, X);
}

int ct_cc_trainer_set_device(ct_cc_trainer *t, ct_device dev)
{
    /* The batch buffers change with the device. */
    int rc = stop_prefetch(t);
    if (rc)
        return rc;
    if (dev == CT_DEVICE_CPU) {
        rc = sync_host(t);
        if (rc)
            return rc;
        ct_cc_cuda_close(t->dev);
        t->dev = NULL;
        t->X = t->X_cpu;
        return 0;
    }
    if (dev != CT_DEVICE_CUDA)
        return ct_error_set(CT_EINVAL, "crosscoder trainer: unknown device %d", (int)dev);
    if (t->dev)
        return 0;
    ct_cc_cuda *d;
    rc = ct_cc_cuda_open(&t->cfg, &d);
    if (rc)
        return rc;
    if ((rc = ct_cc_cuda_upload(d, t->cc->mem, t->opt))) {
        ct_cc_cuda_close(d);
        return rc;
    }
    t->dev = d;
    t->X = ct_cc_cuda_batch_buffer(d, 0);
    return 0;
}

ct_crosscoder *ct_cc_trainer_model(ct_cc_trainer *t)
{
    /* A failed copy leaves the error recorded; the next step, save or run reports it. */
    sync_host(t);
    return t->cc;
}
const ct_cc_config *ct_cc_trainer_config(const ct_cc_trainer *t) { return &t->cfg; }

static void hist_json(json_t *o, const uint32_t *count, size_t rows, int H)
{
    long bins[HIST_N] = {0};
    int dead = 0;
    for (int j = 0; j < H; j++) {
        if (count[j] == 0) {
            dead++;
            continue;
        }
        double lg = log10((double)count[j] / (double)rows);
        int b = (int)floor((lg - HIST_LO) / HIST_W);
        bins[b < 0 ? 0 : b >= HIST_N ? HIST_N - 1 : b]++;
    }
    json_t *h = json_object(), *arr = json_array();
    for (int b = 0; b < HIST_N; b++)
        json_array_append_new(arr, json_integer(bins[b]));
    json_object_set_new(h, "log10_lo", json_real(HIST_LO));
    json_object_set_new(h, "bin_width", json_real(HIST_W));
    json_object_set_new(h, "counts", arr);
    json_object_set_new(o, "density_hist", h);
    json_object_set_new(o, "dead", json_integer(dead));
}

static json_t *ev_json(const double *ev, int M)
{
    json_t *a = json_array();
    for (int m = 0; m < M; m++)
        json_array_append_new(a, json_real(ev[m]));
    return a;
}

static int emit(ct_cc_trainer *t, json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(o);
    if (!s)
        return ct_error_set(CT_ENOMEM, "crosscoder trainer: out of memory formatting metrics");
    int rc = t->cb.on_metrics ? t->cb.on_metrics(t->cb.ctx, s) : 0;
    free(s);
    return rc;
}

int ct_cc_trainer_evaluate(ct_cc_trainer *t, ct_cc_source *src, size_t rows, char **json)
{
    *json = NULL;
    if (!src || rows == 0)
        return ct_error_set(CT_EINVAL, "crosscoder evaluate: need a source and rows >= 1");
    ct_cc_cursor zero = {0, 0};
    int rc = src == t->train ? stop_prefetch(t) : 0; /* the reading thread must let go of it */
    if (!rc)
        rc = src->seek(src->ctx, &zero);
    if (rc)
        return rc;
    if ((rc = sync_host(t)))
        return rc;
    const ct_cc_config *c = &t->cfg;
    uint32_t *count = calloc((size_t)c->H, sizeof *count);
    double *evs = calloc((size_t)c->M, sizeof *evs);
    if (!count || !evs) {
        free(count);
        free(evs);
        return ct_error_set(CT_ENOMEM, "crosscoder evaluate: out of memory");
    }
    double l2 = 0, l1 = 0, l0 = 0;
    ct_cc_lossopt opt = CT_CC_LOSSOPT_INIT;
    opt.path = c->path;
    opt.lambda = (float)ct_cc_lambda_at(c, t->step);
    opt.k = ct_cc_k_at(c, t->step);
    opt.use_threshold = c->type == CT_CC_BATCHTOPK && t->cc->threshold >= 0.0f;
    opt.threshold = t->cc->threshold;
    for (size_t done = 0; done < rows;) {
        int nb = rows - done < (size_t)c->batch ? (int)(rows - done) : c->batch;
        if ((rc = src->next(src->ctx, t->X_cpu, (size_t)nb)))
            break;
        ct_cc_losses l = {.ev = t->ev, .fire_count = count};
        if ((rc = ct_cc_forward_backward(t->cc, t->X_cpu, nb, &opt, t->ws, &l, NULL)))
            break;
        l2 += l.l2 * nb;
        l1 += l.l1 * nb;
        l0 += l.l0 * nb;
        for (int m = 0; m < c->M; m++)
            evs[m] += t->ev[m] * nb;
        done += (size_t)nb;
    }
    if (!rc) {
        for (int m = 0; m < c->M; m++)
            evs[m] /= (double)rows;
        json_t *o = json_object();
        json_object_set_new(o, "split", json_string("val"));
        json_object_set_new(o, "step", json_integer(t->step));
        json_object_set_new(o, "rows", json_integer((json_int_t)rows));
        json_object_set_new(o, "l2", json_real(l2 / rows));
        json_object_set_new(o, "l1", json_real(l1 / rows));
        json_object_set_new(o, "l0", json_real(l0 / rows));
        json_object_set_new(o, "ev", ev_json(evs, c->M));
        hist_json(o, count, rows, c->H);
        *json = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9));
        json_decref(o);
        if (!*json)
            rc = ct_error_set(CT_ENOMEM, "crosscoder evaluate: out of memory formatting metrics");
    }
    free(count);
    free(evs);
    return rc;
}

static int log_interval(ct_cc_trainer *t)
{
    const ct_cc_config *c = &t->cfg;
    if (t->acc_n > 0) {
        double n = (double)t->acc_n;
        json_t *o = json_object();
        json_object_set_new(o, "split", json_string("train"));
        json_object_set_new(o, "step", json_integer(t->step));
        json_object_set_new(o, "steps_in_interval", json_integer(t->acc_n));
        json_object_set_new(o, "loss", json_real(t->acc_loss / n));
        json_object_set_new(o, "l2", json_real(t->acc_l2 / n));
        json_object_set_new(o, "l1", json_real(t->acc_l1 / n));
        json_object_set_new(o, "l0", json_real(t->acc_l0 / n));
        double ev[64], *evp = c->M <= 64 ? ev : malloc((size_t)c->M * sizeof *evp);
        if (evp) {
            for (int m = 0; m < c->M; m++)
                evp[m] = t->acc_ev[m] / n;
            json_object_set_new(o, "ev", ev_json(evp, c->M));
            if (evp != ev)
                free(evp);
        }
        int nf = 0;
        for (int j = 0; j < c->H; j++)
            nf += !t->acc_fired[j];
        json_object_set_new(o, "not_fired_in_interval", json_integer(nf));
        json_object_set_new(o, "lr", json_real(ct_cc_lr_at(c, t->step - 1)));
        json_object_set_new(o, "sparse_steps", json_real(t->acc_sparse / n));
        if (c->type == CT_CC_L1) {
            json_object_set_new(o, "lambda", json_real(ct_cc_lambda_at(c, t->step - 1)));
        } else {
            json_object_set_new(o, "aux", json_real(t->acc_aux / n));
            json_object_set_new(o, "k", json_integer(ct_cc_k_at(c, t->step - 1)));
            json_object_set_new(o, "threshold", json_real(t->cc->threshold));
            int dead = 0;
            for (int j = 0; j < c->H; j++)
                dead += t->since_fired[j] >= (uint64_t)c->dead_tokens;
            json_object_set_new(o, "running_dead", json_integer(dead));
        }
        int rc = emit(t, o);
        reset_acc(t);
        if (rc)
            return rc;
    }
    if (t->val && c->val_rows > 0) {
        char *s;
        int rc = ct_cc_trainer_evaluate(t, t->val, (size_t)c->val_rows, &s);
        if (rc)
            return rc;
        rc = t->cb.on_metrics ? t->cb.on_metrics(t->cb.ctx, s) : 0;
        free(s);
        if (rc)
            return rc;
    }
    return 0;
}

int ct_cc_trainer_step(ct_cc_trainer *t, ct_cc_losses *out)
{
    const ct_cc_config *c = &t->cfg;
    int B = c->batch;
    float *X;
    int rc = next_batch(t, &X);
    if (rc)
        return ct_error_wrap(rc, "crosscoder trainer: reading batch %ld", t->step);
    ct_cc_lossopt opt = CT_CC_LOSSOPT_INIT;
    opt.path = c->path;
    opt.lambda = (float)ct_cc_lambda_at(c, t->step);
    opt.k = ct_cc_k_at(c, t->step);
    opt.since_fired = c->type == CT_CC_BATCHTOPK ? t->since_fired : NULL;
    ct_cc_losses l = {.ev = t->ev, .fired = t->fired};
    ct_cck_fpmode_enter();
    if (t->dev)
        rc = ct_cc_cuda_forward_backward(t->dev, X, B, &opt, &l);
    else
        rc = ct_cc_forward_backward(t->cc, X, B, &opt, t->ws, &l, t->grad);
    if (rc) {
        ct_cck_fpmode_restore();
        return rc;
    }
    if (!isfinite(l.loss)) {
        ct_cck_fpmode_restore();
        return ct_error_set(CT_EINVAL, "crosscoder trainer: loss is %g at step %ld (diverged)", l.loss, t->step);
    }
    if (c->type == CT_CC_BATCHTOPK) {
        for (int j = 0; j < c->H; j++)
            t->since_fired[j] = t->fired[j] ? 0 : t->since_fired[j] + (uint64_t)B;
        if (t->step > c->threshold_start_step) {
            /* The reference seeds θ with the first observed minimum (θ < 0 means unset),
             * then follows θ ← β θ + (1 − β) min. */
            float mn = l.min_kept;
            if (t->cc->threshold < 0.0f)
                t->cc->threshold = mn;
            else
                t->cc->threshold = c->threshold_beta * t->cc->threshold + (1.0f - c->threshold_beta) * mn;
        }
    }
    /* torch.nn.utils.clip_grad_norm_: total = ‖g‖₂ over all parameters, then
     * g *= min(1, max_norm / (total + 1e-6)); the factor is applied inside Adam. */
    size_t np = t->cc->n_params;
    float gscale = 1.0f;
    if (c->grad_clip > 0.0f) {
        double ss = 0.0;
        if (!t->dev)
            ss = ct_cck_sumsq(t->grad, np);
        else if ((rc = ct_cc_cuda_grad_sumsq(t->dev, &ss))) {
            ct_cck_fpmode_restore();
            return rc;
        }
        float total = (float)sqrt(ss);
        float coef = c->grad_clip / (total + 1e-6f);
        if (coef < 1.0f)
            gscale = coef;
    }
    if (t->dev) {
        rc = ct_cc_cuda_adam(t->dev, gscale, ct_cc_lr_at(c, t->step), c->beta1, c->beta2, c->eps, t->step + 1);
        if (rc) {
            ct_cck_fpmode_restore();
            return rc;
        }
    } else {
        ct_cck_adam(t->cc->mem, t->grad, t->opt, t->opt + np, np, gscale, ct_cc_lr_at(c, t->step), c->beta1,
                    c->beta2, c->eps, t->step + 1);
    }
    ct_cck_fpmode_restore();
    t->step++;
    if (t->step >= c->steps && (rc = stop_prefetch(t))) /* nothing more to read */
        return rc;

    t->acc_n++;
    t->acc_loss += l.loss;
    t->acc_l2 += l.l2;
    t->acc_l1 += l.l1;
    t->acc_aux += l.aux;
    t->acc_l0 += l.l0;
    t->acc_sparse += l.sparse;
    for (int m = 0; m < c->M; m++)
        t->acc_ev[m] += t->ev[m];
    for (int j = 0; j < c->H; j++)
        t->acc_fired[j] |= t->fired[j];
    if (out) {
        *out = l;
        out->ev = NULL;
        out->fired = NULL;
    }
    if (t->cb.on_step && (rc = t->cb.on_step(t->cb.ctx, t->step, &l)))
        return rc;
    if ((c->log_every > 0 && t->step % c->log_every == 0) || t->step == c->steps)
        if ((rc = log_interval(t)))
            return rc;
    if (c->checkpoint_every > 0 && t->step % c->checkpoint_every == 0 && t->cb.on_checkpoint) {
        void *buf;
        size_t len;
        if ((rc = ct_cc_trainer_save(t, &buf, &len)))
            return rc;
        rc = t->cb.on_checkpoint(t->cb.ctx, t->step, buf, len);
        free(buf);
        if (rc)
            return rc;
    }
    return 0;
}

int ct_cc_trainer_run(ct_cc_trainer *t)
{
    ct_progress *p = t->progress ? ct_progress_start("train crosscoder", (double)t->cfg.steps, "steps") : NULL;
    int rc = 0;
    while (t->step < t->cfg.steps) {
        ct_cc_losses l;
        if ((rc = ct_cc_trainer_step(t, &l)))
            break;
        if (p) {
            char note[96];
            snprintf(note, sizeof note, "loss=%.4g L0=%.1f", l.loss, l.l0);
            ct_progress_note(p, note);
            ct_progress_update(p, (double)t->step);
        }
    }
    ct_progress_finish(p);
    if (!rc)
        rc = sync_host(t);
    return rc;
}

int ct_cc_trainer_save(ct_cc_trainer *t, void **buf, size_t *len)
{
    const ct_cc_config *c = &t->cfg;
    size_t np = t->cc->n_params;
    ct_cc_cursor cur;
    /* The caller may write to where the rows come from next (the cache): nothing reads
     * ahead until the next step. */
    int rc = stop_prefetch(t);
    if (!rc)
        rc = sync_host(t);
    if (!rc)
        rc = t->train->tell(t->train->ctx, &cur);
    if (rc)
        return rc;
    ct_cc_wbuf w = {0};
    ct_cc_put(&w, CT_CC_STATE_MAGIC, 8);
    ct_cc_put_u32(&w, CT_CC_STATE_VERSION);
    ct_cc_put_config(&w, c);
    ct_cc_put_u64(&w, (uint64_t)t->step);
    ct_cc_put_u64s(&w, t->rng.s, 4);
    ct_cc_put_u64(&w, cur.epoch);
    ct_cc_put_u64(&w, cur.index);
    ct_cc_put_f32(&w, t->cc->threshold);
    ct_cc_put_f32s(&w, t->cc->scale, (size_t)c->M);
    ct_cc_put_u64s(&w, t->since_fired, (size_t)c->H);
    ct_cc_put_u64(&w, np);
    ct_cc_put_f32s(&w, t->cc->mem, np);
    ct_cc_put_f32s(&w, t->opt, 2 * np);
    ct_cc_put_u64(&w, (uint64_t)t->acc_n);
    double acc[6] = {t->acc_loss, t->acc_l2, t->acc_l1, t->acc_aux, t->acc_l0, t->acc_sparse};
    for (int i = 0; i < 6; i++)
        ct_cc_put_f64(&w, acc[i]);
    for (int m = 0; m < c->M; m++)
        ct_cc_put_f64(&w, t->acc_ev[m]);
    ct_cc_put(&w, t->acc_fired, (size_t)c->H);
    ct_cc_put_digest(&w);
    if (w.failed) {
        free(w.data);
        return ct_error_set(CT_ENOMEM, "crosscoder trainer: out of memory saving the state");
    }
    *buf = w.data;
    *len = w.len;
    return 0;
}

int ct_cc_trainer_restore(ct_cc_trainer *t, const void *buf, size_t len, const char *name)
{
    if (!name)
        name = "crosscoder state";
    const ct_cc_config *c = &t->cfg;
    ct_cc_rbuf r = {.data = buf, .len = len};
    if (len < 12 || memcmp(buf, CT_CC_STATE_MAGIC, 8) != 0)
        return ct_error_set(CT_EFORMAT, "%s: not a crosscoder training state (bad magic)", name);
    int rc = ct_cc_check_digest(&r, name);
    if (rc)
        return rc;
    r.off = 8;
    uint32_t ver = ct_cc_get_u32(&r);
    if (ver != CT_CC_STATE_VERSION)
        return ct_error_set(CT_EFORMAT, "%s: training state version %u, this build reads %u", name, ver,
                            CT_CC_STATE_VERSION);
    /* The config must match byte for byte: resuming with other hyperparameters would
     * silently produce a run that no single config describes. */
    ct_cc_wbuf mine = {0};
    ct_cc_put_config(&mine, c);
    size_t cfg_off = r.off;
    ct_cc_config saved;
    ct_cc_get_config(&r, &saved);
    int same = !mine.failed && !r.short_read && r.off - cfg_off == mine.len &&
               memcmp(r.data + cfg_off, mine.data, mine.len) == 0;
    free(mine.data);
    if (!same)
        return ct_error_set(CT_EINVAL, "%s: state was saved with a different crosscoder config", name);
    uint64_t step = ct_cc_get_u64(&r);
    ct_cc_rng rng;
    ct_cc_get_u64s(&r, rng.s, 4);
    ct_cc_cursor cur;
    cur.epoch = ct_cc_get_u64(&r);
    cur.index = ct_cc_get_u64(&r);
    float threshold = ct_cc_get_f32(&r);
    size_t np = t->cc->n_params;
    /* Read into the live buffers only after the sizes check out. */
    size_t need = (size_t)c->M * 4 + (size_t)c->H * 8 + 8 + np * 12 + 8 + 48 + (size_t)c->M * 8 + (size_t)c->H;
    if (r.short_read || r.len - r.off != need || step > (uint64_t)c->steps)
        return ct_error_set(CT_ECORRUPT, "%s: training state has the wrong size for its config", name);
    stop_prefetch(t); /* its position is about to be replaced */
    if ((rc = t->train->seek(t->train->ctx, &cur)))
        return ct_error_wrap(rc, "%s", name);
    ct_cc_get_f32s(&r, t->cc->scale, (size_t)c->M);
    ct_cc_get_u64s(&r, t->since_fired, (size_t)c->H);
    uint64_t np_saved = ct_cc_get_u64(&r);
    if (np_saved != np)
        return ct_error_set(CT_ECORRUPT, "%s: parameter count %llu, config implies %zu", name,
                            (unsigned long long)np_saved, np);
    ct_cc_get_f32s(&r, t->cc->mem, np);
    ct_cc_get_f32s(&r, t->opt, 2 * np);
    t->acc_n = (long)ct_cc_get_u64(&r);
    t->acc_loss = ct_cc_get_f64(&r);
    t->acc_l2 = ct_cc_get_f64(&r);
    t->acc_l1 = ct_cc_get_f64(&r);
    t->acc_aux = ct_cc_get_f64(&r);
    t->acc_l0 = ct_cc_get_f64(&r);
    t->acc_sparse = ct_cc_get_f64(&r);
    for (int m = 0; m < c->M; m++)
        t->acc_ev[m] = ct_cc_get_f64(&r);
    ct_cc_get(&r, t->acc_fired, (size_t)c->H);
    t->step = (long)step;
    t->rng = rng;
    t->cc->threshold = threshold;
    t->cc->folded = 0;
    return t->dev ? ct_cc_cuda_upload(t->dev, t->cc->mem, t->opt) : 0;
}

int ct_cc_trainer_save_file(ct_cc_trainer *t, const char *path)
{
    void *buf;
    size_t len;
    int rc = ct_cc_trainer_save(t, &buf, &len);
    if (rc)
        return rc;
    rc = ct_write_file_atomic(path, buf, len);
    free(buf);
    return rc;
}

int ct_cc_trainer_restore_file(ct_cc_trainer *t, const char *path)
{
    char *data;
    size_t len;
    int rc = ct_read_file(path, &data, &len);
    if (rc)
        return rc;
    rc = ct_cc_trainer_restore(t, data, len, path);
    free(data);
    return rc;
}

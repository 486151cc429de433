#include "pipeline/runner.h"
#include "common/error.h"
#include "common/progress.h"
#include "common/sha256.h"
#include "pipeline/key.h"
#include "pipeline/plan_internal.h"
#include "pipeline/provenance.h"
#include "pipeline/results.h"

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t g_stop;

void ct_run_request_stop(void) { g_stop = 1; }
int ct_run_stop_requested(void) { return g_stop != 0; }

static void on_signal(int sig)
{
    if (g_stop) {
        signal(sig, SIG_DFL);
        raise(sig);
    }
    g_stop = 1;
}

void ct_run_install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static double thread_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void iso_now(char *buf, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* --- the step context ---------------------------------------------------------------- */

struct ct_step_ctx {
    ct_plan *plan;
    ct_cache *cache;
    const ct_plan_step *step;
    const ct_run_options *opts;
    json_t *inputs;  /* name -> label | [labels] */
    ct_blob_writer *writer;
    json_t *summary;
    json_t *input_records; /* label -> record, loaded on demand */
    ct_progress *progress;
    char *log;
    size_t log_len, log_cap;
};

json_t *ct_step_params(ct_step_ctx *c) { return json_object_get(c->step->material, "params"); }
json_t *ct_step_options(ct_step_ctx *c) { return ct_plan_step_options(c->plan, c->step->index); }
const char *ct_step_label(ct_step_ctx *c) { return c->step->label; }
const char *ct_step_device(ct_step_ctx *c) { return c->opts->device ? c->opts->device : "cpu"; }
const char *ct_step_cache_dir(ct_step_ctx *c) { return ct_cache_dir(c->cache); }
int ct_step_interrupted(ct_step_ctx *c) { return g_stop != 0; }

size_t ct_step_input_count(ct_step_ctx *c, const char *name)
{
    json_t *v = json_object_get(c->inputs, name);
    return !v ? 0 : json_is_array(v) ? json_array_size(v) : 1;
}

static int input_step(ct_step_ctx *c, const char *name, size_t i, const ct_plan_step **out)
{
    json_t *v = json_object_get(c->inputs, name);
    json_t *label = json_is_array(v) ? json_array_get(v, i) : (i == 0 ? v : NULL);
    size_t idx;
    if (!json_is_string(label) || ct_plan_find(c->plan, json_string_value(label), &idx))
        return ct_error_set(CT_EINVAL, "step %s has no input %s[%zu]", c->step->label, name, i);
    *out = ct_plan_get(c->plan, idx);
    return 0;
}

int ct_step_input(ct_step_ctx *c, const char *name, size_t i, ct_blob_reader **out)
{
    const ct_plan_step *s = NULL;
    int rc = input_step(c, name, i, &s);
    if (rc)
        return rc;
    if (s->source_path)
        return ct_error_set(CT_EINVAL, "step %s: input %s is a source file (%s), not an artifact",
                            c->step->label, name, s->source_path);
    return ct_blob_reader_open(c->cache, s->key, out);
}

int ct_step_input_record(ct_step_ctx *c, const char *name, size_t i, json_t **record)
{
    const ct_plan_step *s = NULL;
    int rc = input_step(c, name, i, &s);
    if (rc)
        return rc;
    json_t *r = json_object_get(c->input_records, s->label);
    if (!r) {
        if ((rc = ct_cache_get(c->cache, s->key, &r)))
            return rc;
        json_object_set_new(c->input_records, s->label, r);
    }
    *record = r;
    return 0;
}

const char *ct_step_input_path(ct_step_ctx *c, const char *name, size_t i)
{
    const ct_plan_step *s = NULL;
    return input_step(c, name, i, &s) == 0 ? s->source_path : NULL;
}

int ct_step_output(ct_step_ctx *c, ct_blob_writer **out)
{
    if (!c->writer) {
        int rc = ct_blob_writer_open(c->cache, &c->writer);
        if (rc)
            return rc;
    }
    *out = c->writer;
    return 0;
}

int ct_step_results(ct_step_ctx *c, const char *table, json_t **out)
{
    return ct_results_build(c->plan, c->cache, table, out);
}

void ct_step_set_summary(ct_step_ctx *c, json_t *summary)
{
    json_decref(c->summary);
    c->summary = summary;
}

void ct_step_log(ct_step_ctx *c, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line)
        n = sizeof line - 1;
    if (c->log_len + (size_t)n + 2 > c->log_cap) {
        size_t cap = c->log_cap ? c->log_cap * 2 : 4096;
        while (cap < c->log_len + (size_t)n + 2)
            cap *= 2;
        char *log = realloc(c->log, cap);
        if (!log)
            return;
        c->log = log;
        c->log_cap = cap;
    }
    memcpy(c->log + c->log_len, line, (size_t)n);
    c->log_len += (size_t)n;
    c->log[c->log_len++] = '\n';
    c->log[c->log_len] = '\0';
    if (c->opts->verbose)
        ct_log("  [%s] %s", c->step->label, line);
}

ct_progress *ct_step_progress(ct_step_ctx *c, double total, const char *unit)
{
    if (c->progress)
        ct_progress_finish(c->progress);
    c->progress = ct_progress_start(c->step->label, total, unit);
    return c->progress;
}

/* Resume state lives in two slots derived from the step's key; a save overwrites the
 * older slot, so a crash during a save always leaves the previous state intact. */
static void resume_key(const uint8_t key[CT_KEY_LEN], int slot, uint8_t out[CT_KEY_LEN])
{
    char buf[32 + CT_KEY_HEX_LEN];
    char hex[CT_KEY_HEX_LEN + 1];
    ct_key_hex(key, hex);
    int n = snprintf(buf, sizeof buf, "crosstime-resume-%d\n%s", slot, hex);
    ct_sha256_buf(buf, (size_t)n, out);
}

static json_int_t resume_seq(ct_cache *cache, const uint8_t key[CT_KEY_LEN])
{
    json_t *rec;
    if (ct_cache_get(cache, key, &rec))
        return -1;
    json_int_t seq = json_integer_value(json_object_get(rec, "resume_seq"));
    json_decref(rec);
    return seq;
}

int ct_step_resume_save(ct_step_ctx *c, const void *data, size_t len)
{
    uint8_t k[2][CT_KEY_LEN];
    resume_key(c->step->key, 0, k[0]);
    resume_key(c->step->key, 1, k[1]);
    json_int_t s0 = resume_seq(c->cache, k[0]), s1 = resume_seq(c->cache, k[1]);
    int slot = s0 <= s1 ? 0 : 1;
    json_int_t seq = (s0 > s1 ? s0 : s1) + 1;
    ct_cache_delete(c->cache, k[slot]);
    ct_error_clear();
    json_t *rec = json_pack("{s:{s:s, s:s}, s:I}", "material", "kind", "resume", "step", c->step->label,
                            "resume_seq", seq);
    int rc = ct_cache_put(c->cache, k[slot], rec, data, len);
    json_decref(rec);
    return rc;
}

int ct_step_resume_load(ct_step_ctx *c, void **data, size_t *len)
{
    uint8_t k[2][CT_KEY_LEN];
    resume_key(c->step->key, 0, k[0]);
    resume_key(c->step->key, 1, k[1]);
    json_int_t s0 = resume_seq(c->cache, k[0]), s1 = resume_seq(c->cache, k[1]);
    if (s0 < 0 && s1 < 0)
        return CT_ENOTFOUND;
    return ct_cache_read_all(c->cache, k[s0 > s1 ? 0 : 1], (char **)data, len);
}

static void resume_clear(ct_cache *cache, const uint8_t key[CT_KEY_LEN])
{
    for (int slot = 0; slot < 2; slot++) {
        uint8_t k[CT_KEY_LEN];
        resume_key(key, slot, k);
        ct_cache_delete(cache, k);
    }
    ct_error_clear();
}

/* --- scheduling ----------------------------------------------------------------------- */

enum { ST_WAITING, ST_READY, ST_RUNNING, ST_DONE, ST_FAILED, ST_SKIPPED };

typedef struct {
    ct_plan *plan;
    ct_cache *cache;
    const ct_run_options *opts;
    json_t *provenance;
    size_t n;
    int *state;
    size_t *waiting_on;            /* unfinished inputs per step */
    size_t **consumers, *n_consumers;
    size_t *queue, q_head, q_tail; /* ready steps, FIFO in plan order */
    size_t running, finished, to_run;
    ct_run_stats *stats;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    double t0;
    ct_progress *progress; /* the run's own line: steps done of steps to run */
} scheduler;

static void on_wait(void *user)
{
    ct_log("waiting: another crosstime process is computing %s", (const char *)user);
}

static int compute(scheduler *s, const ct_plan_step *step, int *picked_up)
{
    *picked_up = 0;
    ct_cache_lock *lock;
    int rc = ct_cache_lock_key(s->cache, step->key, on_wait, (void *)step->label, &lock);
    if (rc)
        return rc;
    if (ct_cache_get(s->cache, step->key, NULL) == 0) { /* finished elsewhere meanwhile */
        ct_cache_unlock(lock);
        *picked_up = 1;
        return 0;
    }
    ct_step_ctx ctx = {.plan = s->plan, .cache = s->cache, .step = step, .opts = s->opts,
                       .inputs = ct_plan_step_inputs(s->plan, step->index),
                       .input_records = json_object()};
    char started[32];
    iso_now(started, sizeof started);
    double w0 = ct_seconds(), c0 = thread_cpu_now();
    ct_error_clear();
    rc = step->kind->run(&ctx);
    if (!rc && !ctx.writer)
        rc = ct_step_output(&ctx, &ctx.writer); /* a step may produce an empty artifact */
    if (!rc) {
        json_t *record = json_pack("{s:O, s:s, s:s, s:O, s:{s:s, s:f, s:f}, s:O}", "material",
                                   step->material, "label", step->label, "recipe",
                                   ct_recipe_name(ct_plan_recipe(s->plan)), "summary",
                                   ctx.summary ? ctx.summary : json_null(), "time", "started", started,
                                   "wall_s", ct_seconds() - w0, "cpu_s", thread_cpu_now() - c0,
                                   "provenance", s->provenance);
        rc = ct_blob_commit(ctx.writer, step->key, record);
        ctx.writer = NULL;
        json_decref(record);
        if (!rc)
            resume_clear(s->cache, step->key);
    }
    if (rc) {
        char msg[2048];
        snprintf(msg, sizeof msg, "%s", ct_error_message());
        ct_blob_abort(ctx.writer);
        ct_log("FAILED %s (%s): %s", step->label, step->kind->name, msg[0] ? msg : ct_error_name(rc));
        if (ctx.log_len && !s->opts->verbose)
            ct_log("--- log of %s ---\n%s--- end of log ---", step->label, ctx.log);
        ct_error_set(rc, "%s", msg);
    }
    if (ctx.progress)
        ct_progress_finish(ctx.progress);
    json_decref(ctx.summary);
    json_decref(ctx.input_records);
    free(ctx.log);
    ct_cache_unlock(lock);
    return rc;
}

static void skip_downstream(scheduler *s, size_t i)
{
    for (size_t k = 0; k < s->n_consumers[i]; k++) {
        size_t c = s->consumers[i][k];
        if (s->state[c] == ST_WAITING) {
            s->state[c] = ST_SKIPPED;
            s->stats->skipped++;
            s->finished++;
            skip_downstream(s, c);
        }
    }
}

static void finish_locked(scheduler *s, size_t i, int ok)
{
    s->state[i] = ok ? ST_DONE : ST_FAILED;
    s->finished++;
    if (!ok) {
        skip_downstream(s, i);
        return;
    }
    for (size_t k = 0; k < s->n_consumers[i]; k++) {
        size_t c = s->consumers[i][k];
        if (s->state[c] == ST_WAITING && --s->waiting_on[c] == 0) {
            s->state[c] = ST_READY;
            s->queue[s->q_tail++] = c;
        }
    }
}

static void *worker(void *arg)
{
    scheduler *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (s->q_head == s->q_tail && s->finished < s->to_run && !g_stop)
            pthread_cond_wait(&s->cond, &s->lock);
        if (g_stop || s->q_head == s->q_tail)
            break;
        size_t i = s->queue[s->q_head++];
        s->state[i] = ST_RUNNING;
        s->running++;
        pthread_mutex_unlock(&s->lock);

        const ct_plan_step *step = ct_plan_get(s->plan, i);
        int picked_up;
        double t = ct_seconds();
        int rc = compute(s, step, &picked_up);

        pthread_mutex_lock(&s->lock);
        s->running--;
        if (rc == 0) {
            ct_plan_set_cached(s->plan, i, 1);
            if (picked_up)
                s->stats->picked_up++;
            else
                s->stats->computed++;
            if (!s->opts->quiet) {
                char hex[CT_KEY_HEX_LEN + 1];
                ct_key_hex(step->key, hex);
                ct_log("[%zu/%zu] %s %s (%s) %.12s in %.2fs", s->finished + 1, s->to_run,
                       picked_up ? "picked up" : "computed", step->label, step->kind->name, hex,
                       ct_seconds() - t);
            }
        } else if (rc != CT_EINTR || !g_stop) {
            /* CT_EINTR counts as a stop only when the user asked for one */
            s->stats->failed++;
        }
        finish_locked(s, i, rc == 0);
        ct_progress_update(s->progress, (double)s->finished);
        pthread_cond_broadcast(&s->cond);
    }
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static int selected(const ct_run_options *o, const ct_plan_step *st)
{
    for (size_t k = 0; k < o->n_only; k++)
        if (strcmp(o->only[k], st->label) == 0)
            return 1;
    return 0;
}

/* With --only, a step's inputs must already be cached (imported from bundles). */
static int inputs_present(ct_plan *plan, const ct_plan_step *st)
{
    for (size_t d = 0; d < st->n_deps; d++) {
        const ct_plan_step *in = ct_plan_get(plan, st->deps[d]);
        if (!in->cached)
            return ct_error_set(CT_ENOTFOUND, "step %s: input %s is not in the cache (import its "
                                "bundle first, or run without --only)", st->label, in->label);
    }
    return 0;
}

int ct_run(ct_plan *plan, ct_cache *cache, const ct_run_options *opts_in, ct_run_stats *stats)
{
    ct_run_options opts = opts_in ? *opts_in : (ct_run_options)CT_RUN_OPTIONS_INIT;
    ct_run_stats local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    scheduler s = {.plan = plan, .cache = cache, .opts = &opts, .stats = stats, .t0 = ct_seconds()};
    s.n = ct_plan_size(plan);
    s.state = calloc(s.n + 1, sizeof *s.state);
    s.waiting_on = calloc(s.n + 1, sizeof *s.waiting_on);
    s.consumers = calloc(s.n + 1, sizeof *s.consumers);
    s.n_consumers = calloc(s.n + 1, sizeof *s.n_consumers);
    s.queue = calloc(s.n + 1, sizeof *s.queue);
    int rc = 0;
    if (!s.state || !s.waiting_on || !s.consumers || !s.n_consumers || !s.queue) {
        rc = ct_error_set(CT_ENOMEM, "out of memory");
        goto out;
    }
    /* consumers lists and the initial ready set (plan order is a topological order) */
    for (size_t i = 0; i < s.n; i++) {
        const ct_plan_step *st = ct_plan_get(plan, i);
        for (size_t d = 0; d < st->n_deps; d++) {
            size_t p = st->deps[d];
            size_t *c = realloc(s.consumers[p], (s.n_consumers[p] + 1) * sizeof *c);
            if (!c) {
                rc = ct_error_set(CT_ENOMEM, "out of memory");
                goto out;
            }
            c[s.n_consumers[p]++] = i;
            s.consumers[p] = c;
        }
    }
    for (size_t i = 0; i < s.n; i++) {
        const ct_plan_step *st = ct_plan_get(plan, i);
        if (!st->source_path)
            stats->steps++;
        if (!st->cached && opts.n_only && !selected(&opts, st)) {
            s.state[i] = ST_SKIPPED; /* not asked for: neither run nor counted */
            continue;
        }
        if (!st->cached && opts.n_only && (rc = inputs_present(plan, st)))
            goto out;
        if (st->cached) {
            s.state[i] = ST_DONE;
            if (!st->source_path)
                stats->cached++;
            continue;
        }
        s.to_run++;
        for (size_t d = 0; d < st->n_deps; d++)
            if (!ct_plan_get(plan, st->deps[d])->cached)
                s.waiting_on[i]++;
        if (opts.n_only)
            s.waiting_on[i] = 0; /* inputs checked above */
        if (s.waiting_on[i] == 0) {
            s.state[i] = ST_READY;
            s.queue[s.q_tail++] = i;
        }
    }
    if (s.to_run) {
        s.provenance = ct_provenance_collect(ct_recipe_path(ct_plan_recipe(plan)), opts.device);
        pthread_mutex_init(&s.lock, NULL);
        pthread_cond_init(&s.cond, NULL);
        int jobs = opts.jobs > 0 ? opts.jobs : 1;
        s.progress = ct_progress_start(ct_recipe_name(ct_plan_recipe(plan)), (double)s.to_run, "steps");
        pthread_t *threads = calloc((size_t)jobs, sizeof *threads);
        int started = 0;
        for (int j = 0; j < jobs && threads; j++, started++)
            if (pthread_create(&threads[j], NULL, worker, &s) != 0)
                break;
        if (started == 0)
            worker(&s);
        for (int j = 0; j < started; j++)
            pthread_join(threads[j], NULL);
        free(threads);
        ct_progress_finish(s.progress);
        pthread_cond_destroy(&s.cond);
        pthread_mutex_destroy(&s.lock);
    }
    rc = ct_plan_save_manifest(plan, cache);
    if (rc)
        ct_log("warning: cannot save the recipe's manifest: %s", ct_error_message());
    rc = 0;
    if (g_stop)
        rc = ct_error_set(CT_EINTR, "stopped by the user; completed steps are kept, rerun to continue");
    else if (stats->failed)
        rc = ct_error_set(CT_ESTEP, "%zu step(s) failed, %zu skipped downstream of them", stats->failed,
                          stats->skipped);
out:
    stats->wall_s = ct_seconds() - s.t0;
    json_decref(s.provenance);
    for (size_t i = 0; i < s.n && s.consumers; i++)
        free(s.consumers[i]);
    free(s.consumers);
    free(s.n_consumers);
    free(s.state);
    free(s.waiting_on);
    free(s.queue);
    return rc;
}

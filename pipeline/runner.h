/* The runner: executes a plan in dependency order.
 *
 * Steps whose artifact is cached are skipped. Every other step is computed at most
 * once across all processes sharing the cache: the runner takes the step's key lock,
 * re-checks the cache (another process may have finished it meanwhile), computes,
 * and commits the artifact with its record (key material, summary, timings,
 * provenance) in one transaction. A failed step stores nothing; its log is printed
 * and the steps downstream of it are skipped, while independent steps go on.
 * `jobs` steps run in parallel (threads). Ctrl-C (ct_run_request_stop) stops
 * cleanly: no new step starts, running steps are asked to stop (and save their
 * resume state), nothing partial becomes visible. */
#ifndef CT_RUNNER_H
#define CT_RUNNER_H

#include "cache/cache.h"
#include "pipeline/plan.h"

typedef struct {
    int jobs;           /* parallel steps; <= 0 means 1 */
    const char *device; /* "cpu" or "cuda" */
    int verbose;        /* echo step logs to stderr as they are written */
    int quiet;          /* no per-step lines, only failures and the summary */
    /* When set, only the steps with these labels run (one job per step on a cluster):
     * their inputs must already be in the cache, else the step fails naming them. */
    const char *const *only;
    size_t n_only;
} ct_run_options;

#define CT_RUN_OPTIONS_INIT {1, "cpu", 0, 0, NULL, 0}

typedef struct {
    size_t steps;     /* steps in the plan (sources excluded) */
    size_t cached;    /* already in the cache before the run */
    size_t computed;  /* computed by this process */
    size_t picked_up; /* finished by another process while this one waited */
    size_t failed, skipped;
    double wall_s;
} ct_run_stats;

/* Runs the plan; saves the recipe's manifest and root when done (also after a
 * failure, so `plan` can explain). CT_ESTEP when a step failed, CT_EINTR when
 * stopped by the user. */
int ct_run(ct_plan *plan, ct_cache *cache, const ct_run_options *opts, ct_run_stats *stats);

/* Async-signal-safe: ask the current run to stop. */
void ct_run_request_stop(void);
/* Installs SIGINT/SIGTERM handlers that call ct_run_request_stop(); a second signal
 * kills the process the default way. */
void ct_run_install_signal_handlers(void);
/* Non-zero once a stop was requested. */
int ct_run_stop_requested(void);

#endif

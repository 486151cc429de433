/* Progress reporting for long work: on a terminal, one live line (label, done/total,
 * rate, ETA) redrawn at most 10 times a second; elsewhere (logs, CI), plain lines at
 * most every 10 seconds and at the end. Thread-safe: parallel jobs share one line. */
#ifndef CT_PROGRESS_H
#define CT_PROGRESS_H

#include <stdio.h>

typedef struct ct_progress ct_progress; /* opaque */

/* `total` may be 0 when unknown (no ETA then). `unit` names what is counted
 * ("tokens", "steps", "B"). Output goes to stderr. Returns NULL only when out of
 * memory, and every function accepts NULL. */
ct_progress *ct_progress_start(const char *label, double total, const char *unit);
void ct_progress_update(ct_progress *p, double done);
/* A short free-form status shown after the rate ("loss=0.123 L0=88"). */
void ct_progress_note(ct_progress *p, const char *note);
/* Prints the final line and frees `p`. */
void ct_progress_finish(ct_progress *p);

/* Seconds on the monotonic clock, for measuring durations (rates, ETAs, benchmarks). */
double ct_seconds(void);

/* Prints a log line without garbling a live progress line. */
void ct_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Force plain-line mode (tests) or live mode; default: live when stderr is a tty. */
void ct_progress_set_live(int live);

#endif

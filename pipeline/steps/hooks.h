/* Test hooks of the long, resumable steps (train, pretrain): the resume tests need a
 * stop at a known step, and a signal sent from outside would land anywhere.
 * <PREFIX>_INTERRUPT_AT=<n> raises SIGINT (as if the user pressed Ctrl-C) and
 * <PREFIX>_KILL_AT=<n> raises SIGKILL (as if the machine went away) when the step
 * count reaches n. Unset: no effect. */
#ifndef CT_STEPS_HOOKS_H
#define CT_STEPS_HOOKS_H

typedef struct {
    long stop_at, kill_at; /* -1: never */
} ct_steps_stop_hooks;

/* Reads <prefix>_INTERRUPT_AT and <prefix>_KILL_AT, e.g. prefix "CT_TRAIN". */
void ct_steps_stop_hooks_read(ct_steps_stop_hooks *h, const char *prefix);
/* Raises the signal whose step count is `done`, if any. */
void ct_steps_stop_hooks_check(const ct_steps_stop_hooks *h, long done);

#endif

/* Test hooks of the long steps (pipeline/steps/hooks.h). */
#include "pipeline/steps/hooks.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static long step_from_env(const char *prefix, const char *suffix)
{
    char name[128];
    snprintf(name, sizeof name, "%s_%s", prefix, suffix);
    const char *e = getenv(name);
    return e && *e ? atol(e) : -1;
}

void ct_steps_stop_hooks_read(ct_steps_stop_hooks *h, const char *prefix)
{
    h->stop_at = step_from_env(prefix, "INTERRUPT_AT");
    h->kill_at = step_from_env(prefix, "KILL_AT");
}

void ct_steps_stop_hooks_check(const ct_steps_stop_hooks *h, long done)
{
    if (h->stop_at >= 0 && done == h->stop_at)
        raise(SIGINT);
    if (h->kill_at >= 0 && done == h->kill_at)
        raise(SIGKILL);
}

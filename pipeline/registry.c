#include "common/error.h"
#include "pipeline/step.h"

#include <pthread.h>
#include <string.h>

#define CT_MAX_STEP_KINDS 64

static const ct_step_kind *g_kinds[CT_MAX_STEP_KINDS];
static size_t g_n_kinds;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

int ct_step_register(const ct_step_kind *kind)
{
    pthread_mutex_lock(&g_lock);
    int rc = 0;
    for (size_t i = 0; i < g_n_kinds; i++)
        if (strcmp(g_kinds[i]->name, kind->name) == 0) {
            rc = g_kinds[i] == kind ? 0 : ct_error_set(CT_EINVAL, "step kind '%s' registered twice", kind->name);
            goto out;
        }
    if (g_n_kinds == CT_MAX_STEP_KINDS) {
        rc = ct_error_set(CT_ENOMEM, "too many step kinds");
        goto out;
    }
    g_kinds[g_n_kinds++] = kind;
out:
    pthread_mutex_unlock(&g_lock);
    return rc;
}

const ct_step_kind *ct_step_find(const char *name)
{
    for (size_t i = 0; i < g_n_kinds; i++)
        if (strcmp(g_kinds[i]->name, name) == 0)
            return g_kinds[i];
    return NULL;
}

const ct_step_kind *const *ct_step_kinds(size_t *n)
{
    *n = g_n_kinds;
    return g_kinds;
}

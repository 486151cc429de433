/* The batch prefetcher (see prefetch.h): one producer thread, two slots, a mutex and a
 * condition variable. A slot is FREE (the producer may fill it), READY (filled, with the
 * source position after it, or the source's error) or HELD (returned to the trainer). The producer
 * fills the slots in turn, so batches come out in the source's order. */
#include "crosscoder/prefetch.h"

#include "common/error.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SLOT_FREE, SLOT_READY, SLOT_HELD };

typedef struct slot {
    int state, rc;
    ct_cc_cursor after;              /* source position after this batch */
    char msg[512];                   /* the source's error message (thread-local there) */
} slot;

struct ct_cc_prefetch {
    ct_cc_source *src;
    float *buf[2];
    size_t rows;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    slot slots[2];
    int next_slot;                   /* the slot the consumer takes next */
    int held;                        /* the slot the consumer holds, or -1 */
    ct_cc_cursor pos;                /* first row not yet returned */
};

static void *producer(void *arg)
{
    ct_cc_prefetch *p = arg;
    int i = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->slots[i].state != SLOT_FREE)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop)
            break;
        pthread_mutex_unlock(&p->mu);
        slot *s = &p->slots[i];
        int rc = p->src->next(p->src->ctx, p->buf[i], p->rows);
        if (!rc)
            rc = p->src->tell(p->src->ctx, &s->after);
        if (rc)
            snprintf(s->msg, sizeof s->msg, "%s", ct_error_message());
        pthread_mutex_lock(&p->mu);
        s->rc = rc;
        s->state = SLOT_READY;
        pthread_cond_broadcast(&p->cv);
        if (rc)
            break; /* the source is in an unknown state: read no further */
        i ^= 1;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int ct_cc_prefetch_start(ct_cc_source *src, float *const buf[2], size_t rows, ct_cc_prefetch **out)
{
    *out = NULL;
    ct_cc_prefetch *p = calloc(1, sizeof *p);
    if (!p)
        return ct_error_set(CT_ENOMEM, "crosscoder: out of memory for the batch prefetcher");
    int rc = src->tell(src->ctx, &p->pos);
    if (rc) {
        free(p);
        return rc;
    }
    p->src = src;
    p->buf[0] = buf[0];
    p->buf[1] = buf[1];
    p->rows = rows;
    p->held = -1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (pthread_create(&p->thread, NULL, producer, p) != 0) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
        free(p);
        return ct_error_set(CT_EIO, "crosscoder: cannot start the batch prefetch thread");
    }
    *out = p;
    return 0;
}

int ct_cc_prefetch_next(ct_cc_prefetch *p, float **batch)
{
    *batch = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->held >= 0) {
        p->slots[p->held].state = SLOT_FREE;
        p->held = -1;
        pthread_cond_broadcast(&p->cv);
    }
    int i = p->next_slot;
    slot *s = &p->slots[i];
    while (s->state != SLOT_READY)
        pthread_cond_wait(&p->cv, &p->mu);
    int rc = s->rc;
    if (!rc) {
        s->state = SLOT_HELD;
        p->held = i;
        p->next_slot = i ^ 1;
        p->pos = s->after;
        *batch = p->buf[i];
    }
    pthread_mutex_unlock(&p->mu);
    if (rc)
        return ct_error_set(rc, "%s", s->msg);
    return 0;
}

void ct_cc_prefetch_tell(const ct_cc_prefetch *p, ct_cc_cursor *cur) { *cur = p->pos; }

int ct_cc_prefetch_stop(ct_cc_prefetch *p)
{
    if (!p)
        return 0;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    int rc = p->src->seek(p->src->ctx, &p->pos);
    free(p);
    return rc;
}

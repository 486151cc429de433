/* The activation arena: one device allocation laid out for (B, T, head rows,
 * grad_layer), grown when a forward needs more. */
#include "models/forward/model_internal.h"

#include "common/error.h"

#include <stdlib.h>

/* Head rows per chunk: large enough for SGEMM efficiency, small enough that the
 * [rows, vocab] logits scratch stays near 128 MiB even for BLOOM's 250k vocabulary. */
static int head_chunk(int V)
{
    int c = (1 << 25) / V;
    return c < 64 ? 64 : (c > 512 ? 512 : c);
}

int ct_model_res_slot(const ct_model *m, int l)
{
    int g = m->grad_layer;
    return (g >= 0 && l >= g) ? 2 + (l - g) : ((l + 1) & 1);
}

int ct_model_act_slot(const ct_model *m, int l)
{
    int g = m->grad_layer;
    return (g >= 0 && l > g) ? 1 + (l - g - 1) : 0;
}

typedef struct {
    void **p;
    size_t n; /* 4-byte elements */
} item;

typedef struct {
    item *it;
    size_t n, cap;
    int oom;
} plan;

static void add(plan *pl, void *pp, size_t n)
{
    if (pl->n == pl->cap) {
        size_t cap = pl->cap ? pl->cap * 2 : 64;
        item *it = realloc(pl->it, cap * sizeof *it);
        if (!it) {
            pl->oom = 1;
            return;
        }
        pl->it = it;
        pl->cap = cap;
    }
    pl->it[pl->n].p = (void **)pp;
    pl->it[pl->n].n = n;
    pl->n++;
}

int ct_model_arena_plan(ct_model *m, int B, int T, int R, int grad_layer)
{
    size_t N = (size_t)B * T, C = m->C, V = m->V;
    int rc = 0;
    m->grad_layer = grad_layer;
    int n_slots = 1 + (grad_layer >= 0 ? m->L - 1 - grad_layer : 0);
    int n_res = 2 + (grad_layer >= 0 ? m->L - grad_layer : 0);
    ct_layer_act *la = calloc((size_t)n_slots, sizeof *la);
    float **res = calloc((size_t)n_res, sizeof *res);
    plan pl = {0};
    if (!la || !res) {
        free(la);
        free(res);
        return ct_error_set(CT_ENOMEM, "model: out of memory");
    }
    free(m->la);
    free(m->res);
    m->la = la;
    m->res = res;
    m->n_slots = n_slots;
    m->n_res = n_res;
    m->chunk_rows = R < head_chunk(m->V) ? R : head_chunk(m->V);

    for (int r = 0; r < n_res; r++)
        add(&pl, &res[r], N * C);
    for (int s = 0; s < n_slots; s++) {
        ct_layer_act *a = &la[s];
        add(&pl, &a->ln1, N * C);
        add(&pl, &a->ln1_mean, N);
        add(&pl, &a->ln1_rstd, N);
        add(&pl, &a->qkv, N * 3 * C);
        add(&pl, &a->q, N * C);
        add(&pl, &a->k, N * C);
        add(&pl, &a->v, N * C);
        if (s > 0 || m->keep_all)
            add(&pl, &a->probs, (size_t)B * m->nh * T * T);
        add(&pl, &a->atty, N * C);
        if (!m->parallel)
            add(&pl, &a->mid, N * C);
        add(&pl, &a->ln2, N * C);
        add(&pl, &a->ln2_mean, N);
        add(&pl, &a->ln2_rstd, N);
        add(&pl, &a->fch, N * m->FI);
        add(&pl, &a->fca, N * m->I);
    }
    add(&pl, &m->ids, N);
    if (m->rot) {
        add(&pl, &m->cos, (size_t)T * m->rot / 2);
        add(&pl, &m->sin, (size_t)T * m->rot / 2);
    }
    if (R > 0) {
        add(&pl, &m->rows, (size_t)R);
        add(&pl, &m->targets, (size_t)R);
        add(&pl, &m->ce, (size_t)R);
        add(&pl, &m->xr, (size_t)R * C);
        add(&pl, &m->lnf, (size_t)R * C);
        add(&pl, &m->lnf_mean, (size_t)R);
        add(&pl, &m->lnf_rstd, (size_t)R);
        add(&pl, &m->chunk, (size_t)m->chunk_rows * V);
    }
    if (grad_layer >= 0) {
        add(&pl, &m->dres[0], N * C);
        add(&pl, &m->dres[1], N * C);
        add(&pl, &m->dmid, N * C);
        add(&pl, &m->dln, N * C);
        add(&pl, &m->datty, N * C);
        add(&pl, &m->dq, N * C);
        add(&pl, &m->dk, N * C);
        add(&pl, &m->dv, N * C);
        add(&pl, &m->dqkv, N * 3 * C);
        add(&pl, &m->dfch, N * m->FI);
        add(&pl, &m->dfca, N * m->I);
        add(&pl, &m->dlnf, (size_t)R * C);
        add(&pl, &m->dxr, (size_t)R * C);
    } else {
        m->dres[0] = m->dres[1] = NULL;
    }
    if (pl.oom) {
        free(pl.it);
        return ct_error_set(CT_ENOMEM, "model: out of memory");
    }
    size_t total = 0;
    for (size_t i = 0; i < pl.n; i++)
        total += (pl.it[i].n + 15) & ~(size_t)15;
    size_t bytes = total * 4;
    if (bytes > m->arena_bytes) {
        ct_kern_release(m->k, m->arena);
        m->arena = NULL;
        m->arena_bytes = 0;
        m->rope_T = -1;
        if ((rc = ct_kern_alloc(m->k, bytes, &m->arena))) {
            free(pl.it);
            return ct_error_wrap(rc, "model: activations for %d x %d tokens", B, T);
        }
        m->arena_bytes = bytes;
    }
    size_t off = 0;
    for (size_t i = 0; i < pl.n; i++) {
        *pl.it[i].p = (char *)m->arena + off * 4;
        off += (pl.it[i].n + 15) & ~(size_t)15;
    }
    free(pl.it);
    return 0;
}

/* Internal to analysis/: the batch of prefixes (or sequences) that the IG, ablation
 * and ΔCE passes share. One batch holds right-padded token ids, the residual of every
 * checkpoint at the crosscoder's layer, and the shared latent code f of each real
 * position. All buffers are sized once for the largest batch and reused. */
#ifndef CT_ANALYSIS_BATCH_H
#define CT_ANALYSIS_BATCH_H

#include "analysis/attribution.h"

typedef struct {
    ct_model *const *models;
    const ct_crosscoder *cc;
    int M, d, H, layer, vocab;
    int cap_B, cap_T; /* capacity */
    int B, T;         /* the current batch: B sequences right-padded to T tokens */
    int32_t *ids;     /* [B*T] */
    int32_t *rows;    /* [B]: flat row of each sequence's last real position */
    int32_t *good, *bad; /* [B] (examples only) */
    int *len;         /* [B]: real positions */
    float *x;         /* [M][cap_B*cap_T*d]: residual of checkpoint m at `layer` */
    float *f;         /* [B*T*H] (or [T*H]): latents of real rows, 0 on pads */
    float *stack;     /* [cap_T*M*d]: one sequence's rows stacked for the encoder */
    float *head;      /* [cap_B*vocab]: logits or log-probs of the head rows ... */
    int head_stride;  /* ... in rows of the last forward's model vocabulary */
    void *mem;
} ct_an_batch;

/* Checks models, crosscoder and layer against each other; `what` names the caller in
 * messages. */
int ct_an_check(const char *what, ct_model *const *models, int M, const ct_crosscoder *cc, int layer);
/* Checks prefix ids, answers and lengths against every model; *max_len receives the
 * longest prefix. */
int ct_an_check_examples(const char *what, ct_model *const *models, int M, const ct_task_example *ex,
                         size_t n, int *max_len);

/* whole_f: room in f for every row of a batch (ct_an_encode); otherwise for one
 * sequence (ct_an_encode_seq), which keeps long sequences affordable. */
int ct_an_batch_init(ct_an_batch *b, ct_model *const *models, int M, const ct_crosscoder *cc, int layer,
                     int cap_B, int cap_T, int whole_f);
void ct_an_batch_free(ct_an_batch *b);

/* Loads examples ex[0..B) (prefixes, answers, last rows). Pads repeat the last real
 * token: any valid id works since a pad never reaches a real position. */
void ct_an_batch_examples(ct_an_batch *b, const ct_task_example *ex, int B);
/* Loads B full sequences of T tokens (no padding). */
void ct_an_batch_sequences(ct_an_batch *b, const int32_t *ids, int B, int T);

typedef enum { CT_AN_HEAD_NONE, CT_AN_HEAD_LOGITS, CT_AN_HEAD_LOGPROBS, CT_AN_HEAD_CE } ct_an_head;

/* One forward of checkpoint m on the batch: capture (x[m] receives the residual at
 * the layer), patch (the residual at the layer is replaced; NULL: none), grad (keep
 * what a backward to the layer needs), head: logits/log-probs of the last real rows
 * into b->head, or the next-token CE of every row into ce [B*T]. */
int ct_an_forward(ct_an_batch *b, int m, int capture, const float *patch, int grad, ct_an_head head, float *ce);

/* f of the real rows of every sequence, each sequence encoded on its own so that the
 * code of a row never depends on which other sequences share its batch (BatchTopK
 * without a tracked threshold ranks over the encoded rows). Pad rows get f = 0. */
int ct_an_encode(ct_an_batch *b);
/* f [len, H] of the real rows of sequence s alone. */
int ct_an_encode_seq(ct_an_batch *b, int s, float *f);

/* out[n, d] = f[rows] · W_dec[:, m] (no b_dec) for the n rows of f starting at `f`. */
void ct_an_decode_m(const ct_an_batch *b, int m, const float *f, int n, float *out);

#endif

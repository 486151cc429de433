/* Scores and selections over indirect effects (METHOD.md §5–§7): RelIE (2-way,
 * one-vs-all and pairwise), its classes, the top-k selection of latents, Spearman's
 * rank correlation for the ablation validation, and the overlap of top latents
 * between languages. Pure functions over caller-owned arrays; no allocation unless
 * stated. Per-checkpoint-and-latent arrays are [M*H], index m*H + j. */
#ifndef CT_RELIE_H
#define CT_RELIE_H

#include <stddef.h>
#include <stdint.h>

/* 2-way RelIE from A_m = |IE_m|: b / (a + b), 0.5 when both are 0. */
double ct_relie2(double a, double b);
/* One-vs-all: out[m] = A_m / Σ_k A_k (1/M when all are 0). */
void ct_relie_ova(const double *abs_ie, int M, double *out);
/* Pairwise for three checkpoints A, B, C: [B/(A+B), C/(B+C), C/(A+C)], 0.5 for 0/0. */
void ct_relie_pairwise3(const double *abs_ie, double out[3]);

/* Classes of METHOD §5. Two checkpoints: SPECIFIC with which = 0 ("A-specific",
 * discontinued, RelIE < 0.3) or 1 ("B-specific", emerged, > 0.7), else SHARED.
 * Three: SPECIFIC(which) when that one-vs-all value is > 0.7 and the maximum; else
 * SHARED when all three are >= 0.3; else PAIR(which, other) when two are >= 0.3;
 * else OTHER. */
typedef enum { CT_RELIE_SPECIFIC, CT_RELIE_SHARED, CT_RELIE_PAIR, CT_RELIE_OTHER } ct_relie_kind;
typedef struct {
    ct_relie_kind kind;
    int which, other; /* checkpoints involved (SPECIFIC: which; PAIR: which < other) */
} ct_relie_class;
ct_relie_class ct_relie_classify(const double *abs_ie, int M);
/* A stable name: "A-specific", "B-specific", "shared", "C-specific", "pair:AB",
 * "other" (letters are checkpoint positions in the tuple). Static storage. */
const char *ct_relie_class_name(ct_relie_class c, int M);

/* Feature selection: per checkpoint the top_k latents by |IE| among those with
 * IE != 0, then the union, ascending. out needs room for M*top_k; *n_out receives the
 * count. Ties are broken by the lower latent index. */
void ct_relie_select(const float *ie, int M, int H, int top_k, int32_t *out, size_t *n_out);

/* Spearman's ρ with average ranks for ties. Pairs with a NaN on either side are left
 * out (pandas' pairwise-complete rule); NaN when fewer than 2 pairs remain or either
 * side is constant. Allocates O(n) scratch (NaN when that fails). */
double ct_spearman(const double *x, const double *y, size_t n);

/* Overlap of two top-k sets of latents (each given as ascending latent ids):
 * |a ∩ b|. */
size_t ct_overlap_count(const int32_t *a, size_t na, const int32_t *b, size_t nb);

#endif

/* An independent, straightforward double-precision crosscoder for the tests: loss by
 * plain loops (METHOD §2), BatchTopK by sorting, AuxK with a caller-fixed residual. */
#ifndef CT_TEST_CC_REF_H
#define CT_TEST_CC_REF_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct ref_cfg {
    int M, d, H, topk;
    double lambda;       /* L1 */
    int k;               /* BatchTopK: keep k*B */
    double aux_coeff;
    int k_aux;
    const uint8_t *dead; /* [H] or NULL */
} ref_cfg;

typedef struct ref_out {
    double loss, l2, l1, aux, l0;
    double ev[8];
} ref_out;

typedef struct { double s; long idx; } ref_sc;

static inline int ref_cmp(const void *a, const void *b)
{
    const ref_sc *x = a, *y = b;
    if (x->s != y->s)
        return x->s > y->s ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* params in the library layout (W_enc[D,H], b_enc[H], W_dec[H,D], b_dec[D]).
 * e_fix[B*D] (or NULL): the detached AuxK residual; den_fix its detached variance. */
static inline void ref_forward(const ref_cfg *c, const double *P, const double *X, int B,
                        const double *e_fix, double den_fix, ref_out *o, double *xh_out,
                        double *f_out)
{
    int M = c->M, d = c->d, H = c->H, D = M * d;
    const double *We = P, *be = We + (size_t)D * H, *Wd = be + H, *bd = Wd + (size_t)H * D;
    double *f = calloc((size_t)B * H, sizeof *f), *R = calloc((size_t)B * H, sizeof *R);
    double *xh = calloc((size_t)B * D, sizeof *xh), *n = calloc((size_t)H, sizeof *n);
    for (int j = 0; j < H; j++)
        for (int m = 0; m < M; m++) {
            double s = 0;
            for (int i = 0; i < d; i++)
                s += Wd[(size_t)j * D + m * d + i] * Wd[(size_t)j * D + m * d + i];
            n[j] += sqrt(s);
        }
    for (int b = 0; b < B; b++)
        for (int j = 0; j < H; j++) {
            double p = be[j];
            for (int i = 0; i < D; i++)
                p += X[(size_t)b * D + i] * We[(size_t)i * H + j];
            R[(size_t)b * H + j] = p > 0 ? p : 0;
            f[(size_t)b * H + j] = R[(size_t)b * H + j];
        }
    if (c->topk) {
        ref_sc *sc = malloc(sizeof *sc * (size_t)B * H);
        long np = 0;
        for (long e = 0; e < (long)B * H; e++)
            if (f[e] * n[e % H] > 0)
                sc[np++] = (ref_sc){f[e] * n[e % H], e};
        qsort(sc, (size_t)np, sizeof *sc, ref_cmp);
        long K = (long)c->k * B;
        memset(f, 0, sizeof *f * (size_t)B * H);
        for (long t = 0; t < np && t < K; t++)
            f[sc[t].idx] = R[sc[t].idx];
        free(sc);
    }
    memset(o, 0, sizeof *o);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < D; i++) {
            double s = bd[i];
            for (int j = 0; j < H; j++)
                s += f[(size_t)b * H + j] * Wd[(size_t)j * D + i];
            xh[(size_t)b * D + i] = s;
            o->l2 += (s - X[(size_t)b * D + i]) * (s - X[(size_t)b * D + i]) / B;
        }
    for (int b = 0; b < B; b++)
        for (int j = 0; j < H; j++) {
            o->l1 += f[(size_t)b * H + j] * n[j] / B;
            o->l0 += (f[(size_t)b * H + j] > 0) / (double)B;
        }
    for (int m = 0; m < M; m++) {
        double acc = 0;
        int cnt = 0;
        for (int b = 0; b < B; b++) {
            double res = 0, var = 0;
            for (int i = m * d; i < (m + 1) * d; i++) {
                double mu = 0;
                for (int bb = 0; bb < B; bb++)
                    mu += X[(size_t)bb * D + i] / B;
                res += pow(xh[(size_t)b * D + i] - X[(size_t)b * D + i], 2);
                var += pow(X[(size_t)b * D + i] - mu, 2);
            }
            if (var > 0) {
                acc += 1 - res / var;
                cnt++;
            }
        }
        o->ev[m] = cnt ? acc / cnt : 0;
    }
    o->loss = o->l2 + (c->topk ? 0 : c->lambda * o->l1);
    if (c->topk && c->dead && e_fix) {
        /* per row: top k_aux dead latents by scaled relu(pre), positive only */
        double num = 0;
        ref_sc *sc = malloc(sizeof *sc * (size_t)H);
        double *fa = calloc((size_t)H, sizeof *fa);
        for (int b = 0; b < B; b++) {
            int cnt = 0;
            for (int j = 0; j < H; j++)
                if (c->dead[j] && R[(size_t)b * H + j] > 0)
                    sc[cnt++] = (ref_sc){R[(size_t)b * H + j] * n[j], j};
            qsort(sc, (size_t)cnt, sizeof *sc, ref_cmp);
            memset(fa, 0, sizeof *fa * (size_t)H);
            for (int t = 0; t < cnt && t < c->k_aux; t++)
                fa[sc[t].idx] = R[(size_t)b * H + sc[t].idx];
            for (int i = 0; i < D; i++) {
                double s = 0;
                for (int j = 0; j < H; j++)
                    s += fa[j] * Wd[(size_t)j * D + i];
                num += pow(s - e_fix[(size_t)b * D + i], 2) / B;
            }
        }
        free(sc);
        free(fa);
        o->aux = den_fix > 0 ? num / den_fix : 0;
        o->loss += c->aux_coeff * o->aux;
    }
    if (xh_out)
        memcpy(xh_out, xh, sizeof *xh * (size_t)B * D);
    if (f_out)
        memcpy(f_out, f, sizeof *f * (size_t)B * H);
    free(f);
    free(R);
    free(xh);
    free(n);
}

/* e = X − x̂ and its batch variance mean_b ‖e_b − mean(e)‖². */
static inline double ref_residual(const ref_cfg *c, const double *P, const double *X, int B, double *e)
{
    int D = c->M * c->d;
    ref_out o;
    double *xh = malloc(sizeof *xh * (size_t)B * D);
    ref_cfg c2 = *c;
    c2.dead = NULL;
    ref_forward(&c2, P, X, B, NULL, 0, &o, xh, NULL);
    for (long i = 0; i < (long)B * D; i++)
        e[i] = X[i] - xh[i];
    double den = 0;
    for (int i = 0; i < D; i++) {
        double mu = 0;
        for (int b = 0; b < B; b++)
            mu += e[(size_t)b * D + i] / B;
        for (int b = 0; b < B; b++)
            den += pow(e[(size_t)b * D + i] - mu, 2) / B;
    }
    free(xh);
    return den;
}

#endif

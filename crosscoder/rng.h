/* The crosscoder's seeded generators (internal): splitmix64 to expand a seed, and
 * xoshiro256** for streams. Plain integer arithmetic, so streams are identical on
 * every platform. */
#ifndef CT_CROSSCODER_RNG_H
#define CT_CROSSCODER_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct ct_cc_rng { uint64_t s[4]; } ct_cc_rng;

static inline uint64_t ct_cc_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline void ct_cc_rng_seed(ct_cc_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = ct_cc_splitmix64(&x);
}

static inline uint64_t ct_cc_rng_next(ct_cc_rng *r)
{
    uint64_t *s = r->s;
    uint64_t v = s[1] * 5;
    uint64_t res = ((v << 7) | (v >> 57)) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return res;
}

/* Uniform in [0,1) with 53 random bits. */
static inline double ct_cc_rng_uniform(ct_cc_rng *r)
{
    return (double)(ct_cc_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform integer in [0,n) without modulo bias (n > 0). */
static inline uint64_t ct_cc_rng_below(ct_cc_rng *r, uint64_t n)
{
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t v;
    do
        v = ct_cc_rng_next(r);
    while (v >= lim);
    return v % n;
}

/* Standard normal pairs by Box–Muller in double. */
static inline void ct_cc_rng_normal2(ct_cc_rng *r, double *a, double *b)
{
    double u1 = ct_cc_rng_uniform(r), u2 = ct_cc_rng_uniform(r);
    double rad = sqrt(-2.0 * log(1.0 - u1));
    *a = rad * cos(6.283185307179586 * u2);
    *b = rad * sin(6.283185307179586 * u2);
}

#endif

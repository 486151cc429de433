/* Branch-free float math that the compiler can vectorise (internal to kernels/cpu/).
 * ct_vexpf: Cody-Waite range reduction and the Cephes degree-6 polynomial, relative
 * error about 2e-7 over the float range; inputs below -87 flush towards 0. */
#ifndef CT_KERNELS_CPU_VECMATH_H
#define CT_KERNELS_CPU_VECMATH_H

#include <stdint.h>
#include <string.h>

static inline float ct_vexpf(float x)
{
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    /* n = round(x / ln 2) with the 1.5 * 2^23 trick (no rounding instruction needed) */
    float t = x * 1.44269504088896341f + 12582912.0f;
    float n = t - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * r * r + r + 1.0f;
    int32_t e = ((int32_t)n + 127) << 23;
    float s;
    memcpy(&s, &e, sizeof s);
    return y * s;
}

/* erf by Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7, about erff's own
 * rounding at this scale). */
static inline float ct_verff(float x)
{
    float ax = x < 0 ? -x : x;
    float t = 1.0f / (1.0f + 0.3275911f * ax);
    float p = 1.061405429f;
    p = p * t - 1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t - 0.284496736f;
    p = p * t + 0.254829592f;
    float r = 1.0f - p * t * ct_vexpf(-ax * ax);
    return x < 0 ? -r : r;
}

/* tanh through exp: 1 - 2 / (e^{2x} + 1), absolute error about 1e-7. */
static inline float ct_vtanhf(float x)
{
    return 1.0f - 2.0f / (ct_vexpf(2.0f * x) + 1.0f);
}

#endif

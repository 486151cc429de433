/* Splitting fused q/k/v into heads (with OLMo's clamp) and rotary embeddings on the CPU. */
#include "kernels/backend.h"

static inline float clampf(float x, float c)
{
    return x < -c ? -c : (x > c ? c : x);
}

int ct_kcpu_qkv_split_fwd(float *q, float *kk, float *v, const float *qkv, int B, int T,
                          int nh, int hd, float clip)
{
    int C = nh * hd;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *src = qkv + ((size_t)b * T + t) * 3 * C;
            for (int h = 0; h < nh; h++) {
                size_t o = (((size_t)b * nh + h) * T + t) * hd;
                for (int d = 0; d < hd; d++) {
                    float a = src[h * hd + d], c = src[C + h * hd + d], e = src[2 * C + h * hd + d];
                    if (clip > 0) {
                        a = clampf(a, clip);
                        c = clampf(c, clip);
                        e = clampf(e, clip);
                    }
                    q[o + d] = a;
                    kk[o + d] = c;
                    v[o + d] = e;
                }
            }
        }
    return 0;
}

int ct_kcpu_qkv_split_bwd(float *dqkv, const float *dq, const float *dk, const float *dv,
                          const float *qkv, int B, int T, int nh, int hd, float clip)
{
    int C = nh * hd;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t row = ((size_t)b * T + t) * 3 * C;
            for (int h = 0; h < nh; h++) {
                size_t o = (((size_t)b * nh + h) * T + t) * hd;
                for (int d = 0; d < hd; d++) {
                    const float *g[3] = {dq, dk, dv};
                    for (int s = 0; s < 3; s++) {
                        size_t i = row + (size_t)s * C + h * hd + d;
                        float x = qkv[i];
                        /* torch.clamp passes the gradient where min <= x <= max. */
                        int pass = !(clip > 0) || (x >= -clip && x <= clip);
                        dqkv[i] = pass ? g[s][o + d] : 0.0f;
                    }
                }
            }
        }
    return 0;
}

static void rope(float *x, const float *cos, const float *sin, int B, int nh, int T, int hd,
                 int rot, float dir)
{
    int half = rot / 2;
#pragma omp parallel for collapse(2) schedule(static)
    for (int bh = 0; bh < B * nh; bh++)
        for (int t = 0; t < T; t++) {
            float *p = x + ((size_t)bh * T + t) * hd;
            const float *c = cos + (size_t)t * half, *s = sin + (size_t)t * half;
            for (int i = 0; i < half; i++) {
                float x1 = p[i], x2 = p[i + half], sn = dir * s[i];
                p[i] = x1 * c[i] - x2 * sn;
                p[i + half] = x2 * c[i] + x1 * sn;
            }
        }
}

int ct_kcpu_rope_fwd(float *x, const float *cos, const float *sin, int B, int nh, int T, int hd,
                     int rot)
{
    rope(x, cos, sin, B, nh, T, hd, rot, 1.0f);
    return 0;
}

int ct_kcpu_rope_bwd(float *dx, const float *cos, const float *sin, int B, int nh, int T,
                     int hd, int rot)
{
    rope(dx, cos, sin, B, nh, T, hd, rot, -1.0f);
    return 0;
}

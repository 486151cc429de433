#include "models/checkpoint/tensor.h"
#include "common/error.h"

#include <string.h>

static const struct {
    ct_dtype dt;
    const char *name;
    size_t size;
} k_dtypes[] = {
    {CT_DT_BOOL, "BOOL", 1}, {CT_DT_U8, "U8", 1},           {CT_DT_I8, "I8", 1},
    {CT_DT_I16, "I16", 2},   {CT_DT_U16, "U16", 2},         {CT_DT_F16, "F16", 2},
    {CT_DT_BF16, "BF16", 2}, {CT_DT_I32, "I32", 4},         {CT_DT_U32, "U32", 4},
    {CT_DT_F32, "F32", 4},   {CT_DT_F64, "F64", 8},         {CT_DT_I64, "I64", 8},
    {CT_DT_U64, "U64", 8},   {CT_DT_F8_E4M3, "F8_E4M3", 1}, {CT_DT_F8_E5M2, "F8_E5M2", 1},
};
#define N_DTYPES (sizeof k_dtypes / sizeof k_dtypes[0])

size_t ct_dtype_size(ct_dtype dt)
{
    for (size_t i = 0; i < N_DTYPES; i++)
        if (k_dtypes[i].dt == dt)
            return k_dtypes[i].size;
    return 0;
}

const char *ct_dtype_name(ct_dtype dt)
{
    for (size_t i = 0; i < N_DTYPES; i++)
        if (k_dtypes[i].dt == dt)
            return k_dtypes[i].name;
    return "?";
}

int ct_dtype_parse(const char *name, ct_dtype *out)
{
    for (size_t i = 0; i < N_DTYPES; i++)
        if (strcmp(k_dtypes[i].name, name) == 0) {
            *out = k_dtypes[i].dt;
            return 0;
        }
    return CT_EFORMAT;
}

/* Branch-light widening (the exponent is rebiased with integer adds; subnormals are
 * renormalised by one float subtraction), so the loop below vectorises. */
static float f16_to_f32(uint16_t h)
{
    const uint32_t shifted_exp = 0x7c00u << 13;
    uint32_t o = (uint32_t)(h & 0x7fff) << 13;
    uint32_t exp = o & shifted_exp;
    o += (uint32_t)(127 - 15) << 23;
    float f;
    if (exp == shifted_exp) {
        o += (uint32_t)(128 - 16) << 23; /* inf / nan */
        memcpy(&f, &o, 4);
    } else if (exp == 0) {
        o += 1u << 23; /* subnormal: let the FPU normalise */
        memcpy(&f, &o, 4);
        const uint32_t magic_bits = 113u << 23;
        float magic;
        memcpy(&magic, &magic_bits, 4);
        f -= magic;
    } else {
        memcpy(&f, &o, 4);
    }
    uint32_t bits;
    memcpy(&bits, &f, 4);
    bits |= (uint32_t)(h & 0x8000) << 16;
    memcpy(&f, &bits, 4);
    return f;
}

int ct_dtype_to_f32(ct_dtype dt, const void *src, size_t n, float *dst)
{
    const unsigned char *p = src;
    switch (dt) {
    case CT_DT_F32: memcpy(dst, src, n * 4); return 0;
    case CT_DT_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = f16_to_f32(h);
        }
        return 0;
    case CT_DT_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16;
            memcpy(dst + i, &bits, 4);
        }
        return 0;
    case CT_DT_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            dst[i] = (float)d;
        }
        return 0;
    default:
        return ct_error_set(CT_EFORMAT, "dtype %s cannot be converted to F32", ct_dtype_name(dt));
    }
}

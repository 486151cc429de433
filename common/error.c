#include "common/error.h"

#include <stdio.h>
#include <string.h>

#define CT_ERROR_MAX 2048

static _Thread_local char tl_message[CT_ERROR_MAX];
static _Thread_local int tl_code;

int ct_error_setv(int code, const char *fmt, va_list ap)
{
    vsnprintf(tl_message, sizeof tl_message, fmt, ap);
    tl_code = code;
    return code;
}

int ct_error_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ct_error_setv(code, fmt, ap);
    va_end(ap);
    return code;
}

int ct_error_wrap(int code, const char *fmt, ...)
{
    char prefix[CT_ERROR_MAX], old[CT_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, tl_message, sizeof old);
    snprintf(tl_message, sizeof tl_message, "%s: %s", prefix, old);
    tl_code = code;
    return code;
}

const char *ct_error_message(void) { return tl_message; }
int ct_error_code(void) { return tl_code; }

void ct_error_clear(void)
{
    tl_message[0] = '\0';
    tl_code = CT_OK;
}

const char *ct_error_name(int code)
{
    switch (code) {
    case CT_OK: return "CT_OK";
    case CT_EIO: return "CT_EIO";
    case CT_ENOMEM: return "CT_ENOMEM";
    case CT_EINVAL: return "CT_EINVAL";
    case CT_ENOTFOUND: return "CT_ENOTFOUND";
    case CT_ECORRUPT: return "CT_ECORRUPT";
    case CT_EBUSY: return "CT_EBUSY";
    case CT_EFORMAT: return "CT_EFORMAT";
    case CT_EINTR: return "CT_EINTR";
    case CT_EUNSUPPORTED: return "CT_EUNSUPPORTED";
    case CT_ESTEP: return "CT_ESTEP";
    default: return "CT_E?";
    }
}

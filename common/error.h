/* Error codes and the per-thread error message.
 *
 * Every public crosstime function that can fail returns an int: 0 on success, a
 * negative CT_E* code on failure. The failing function records a human-readable
 * message (naming the file and what is wrong) that ct_error_message() returns until
 * the next failure on the same thread. */
#ifndef CT_ERROR_H
#define CT_ERROR_H

#include <stdarg.h>

enum {
    CT_OK = 0,
    CT_EIO = -1,        /* a file or system call failed */
    CT_ENOMEM = -2,     /* allocation failed */
    CT_EINVAL = -3,     /* bad argument or malformed input */
    CT_ENOTFOUND = -4,  /* key, file, tensor or name does not exist */
    CT_ECORRUPT = -5,   /* stored data fails its digest or format check */
    CT_EBUSY = -6,      /* held by another process */
    CT_EFORMAT = -7,    /* unsupported format, version or field value */
    CT_EINTR = -8,      /* interrupted by the user (SIGINT/SIGTERM) */
    CT_EUNSUPPORTED = -9, /* feature or device not available in this build */
    CT_ESTEP = -10,     /* a pipeline step failed */
};

/* Record `code` with a printf-style message for this thread; returns `code` so a
 * failing function can `return ct_error_set(CT_EINVAL, "...")`. */
int ct_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ct_error_setv(int code, const char *fmt, va_list ap);

/* Prepend context to the current message ("while loading X: <old message>"). */
int ct_error_wrap(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The last message recorded on this thread ("" when none). Valid until the next
 * ct_error_* call on this thread. */
const char *ct_error_message(void);

/* The last recorded code on this thread (CT_OK when none). */
int ct_error_code(void);

/* A short name for a code ("CT_EIO"). */
const char *ct_error_name(int code);

void ct_error_clear(void);

#endif

/* Helpers shared by the checkpoint tests (header-only). */
#ifndef CT_CKPT_TESTUTIL_H
#define CT_CKPT_TESTUTIL_H

#include "../support/testutil.h"
#include "common/error.h"
#include "models/checkpoint/tensor.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/stat.h>

/* A fresh directory for the whole run (outside any test, where Check asserts cannot
 * be used). */
static inline void make_run_tmpdir(char *buf, size_t n, const char *tag)
{
    const char *base = getenv("TMPDIR");
    snprintf(buf, n, "%s/ct-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    if (!mkdtemp(buf)) {
        perror(buf);
        exit(EXIT_FAILURE);
    }
}

static inline void remove_run_tmpdir(const char *dir)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static inline unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    ck_assert_uint_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return b;
}

static inline void spit(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

static inline void spit_str(const char *path, const char *s)
{
    spit(path, s, strlen(s));
}

static inline void copy_file(const char *from, const char *to)
{
    size_t n;
    unsigned char *b = slurp(from, &n);
    spit(to, b, n);
    free(b);
}

/* The error message contains every one of the NULL-terminated needles. */
static inline void assert_msg_has(const char *first, ...)
{
    const char *msg = ct_error_message();
    va_list ap;
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        ck_assert_msg(strstr(msg, s) != NULL, "error message \"%s\" lacks \"%s\"", msg, s);
    va_end(ap);
}

/* One row of tests/fixtures/checkpoints/expected.tsv (values computed by the fixture
 * script from the in-memory tensors or, for the GPT-2 files, by numpy from raw bytes). */
typedef struct {
    char fixture[32], tensor[160];
    int ndim;
    int64_t shape[8];
    double sum;
    int n_first;
    float first[4];
} exp_row;

/* Rows of `fixture`; returns the count, *rows malloc'd. */
static inline size_t load_expected(const char *fixture, exp_row **rows)
{
    char path[4096];
    ct_test_src(path, sizeof path, "tests/fixtures/checkpoints/expected.tsv");
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char line[8192];
    size_t n = 0, cap = 0;
    *rows = NULL;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#')
            continue;
        char *save, *fx = strtok_r(line, "\t\n", &save), *tn = strtok_r(NULL, "\t\n", &save),
                    *sh = strtok_r(NULL, "\t\n", &save), *sum = strtok_r(NULL, "\t\n", &save),
                    *first = strtok_r(NULL, "\t\n", &save);
        ck_assert_ptr_nonnull(first);
        if (strcmp(fx, fixture) != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            *rows = realloc(*rows, cap * sizeof **rows);
        }
        exp_row *r = &(*rows)[n++];
        memset(r, 0, sizeof *r);
        snprintf(r->fixture, sizeof r->fixture, "%s", fx);
        snprintf(r->tensor, sizeof r->tensor, "%s", tn);
        if (strcmp(sh, "-") != 0)
            for (char *s2, *t = strtok_r(sh, ",", &s2); t; t = strtok_r(NULL, ",", &s2))
                r->shape[r->ndim++] = atoll(t);
        r->sum = strtod(sum, NULL);
        for (char *s2, *t = strtok_r(first, ",", &s2); t && r->n_first < 4;
             t = strtok_r(NULL, ",", &s2))
            r->first[r->n_first++] = strtof(t, NULL);
    }
    fclose(f);
    ck_assert_msg(n > 0, "no expected rows for %s", fixture);
    return n;
}

/* The view matches an expected row: shape, first values exactly, sum closely. */
static inline void check_view_against(const ct_tensor_view *v, const exp_row *r)
{
    ck_assert_msg(v->ndim == r->ndim, "%s: ndim %d, expected %d", r->tensor, v->ndim, r->ndim);
    for (int d = 0; d < r->ndim; d++)
        ck_assert_msg(v->shape[d] == r->shape[d], "%s: shape[%d]", r->tensor, d);
    float *x = malloc((v->numel ? v->numel : 1) * sizeof *x);
    ck_assert_int_eq(ct_dtype_to_f32(v->dtype, v->data, v->numel, x), 0);
    double s = 0, a = 0;
    for (size_t i = 0; i < v->numel; i++) {
        s += x[i];
        a += fabs(x[i]);
    }
    for (int i = 0; i < r->n_first; i++)
        ck_assert_msg(x[i] == r->first[i], "%s[%d]: %.9g, expected %.9g", r->tensor, i, x[i],
                      r->first[i]);
    ck_assert_msg(fabs(s - r->sum) <= 1e-9 * (a + 1), "%s: sum %.17g, expected %.17g", r->tensor, s,
                  r->sum);
    free(x);
}

#endif

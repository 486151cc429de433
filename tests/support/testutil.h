/* Small helpers shared by the Check tests (header-only so each test links alone). */
#ifndef CT_TESTUTIL_H
#define CT_TESTUTIL_H

#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* splitmix64: the tests' deterministic stream of 64-bit values from seed state *s. */
static inline uint64_t ct_test_splitmix(uint64_t *s)
{
    uint64_t x = (*s += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* A standard normal draw (Box-Muller over two splitmix64 values). */
static inline double ct_test_normal(uint64_t *s)
{
    double u1 = ((double)(ct_test_splitmix(s) >> 11) + 0.5) / 9007199254740992.0;
    double u2 = ((double)(ct_test_splitmix(s) >> 11) + 0.5) / 9007199254740992.0;
    return sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
}

/* A fresh empty directory under $TMPDIR (or /tmp); the path is static per call site
 * buffer given by the caller. */
static inline void ct_test_tmpdir(char *buf, size_t n, const char *tag)
{
    const char *base = getenv("TMPDIR");
    snprintf(buf, n, "%s/ct-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    ck_assert_ptr_nonnull(mkdtemp(buf));
}

/* Path of a file in the source tree: $CT_SOURCE_DIR/<rel>. */
static inline const char *ct_test_src(char *buf, size_t n, const char *rel)
{
    const char *root = getenv("CT_SOURCE_DIR");
    snprintf(buf, n, "%s/%s", root ? root : ".", rel);
    return buf;
}

/* Runs the suite with Check and returns the process exit status; with fork_each = 0 every test runs in this process (needed once
 * main has initialised CUDA: a CUDA context does not survive fork()). */
static inline int ct_test_run_forking(Suite *s, int fork_each)
{
    SRunner *sr = srunner_create(s);
    if (!fork_each)
        srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

static inline int ct_test_run(Suite *s) { return ct_test_run_forking(s, 1); }

#endif

/* Running one CLI subcommand function in a child process with redirected streams, so
 * tests see its exit status, stdout and stderr exactly (header-only). */
#ifndef CT_TEST_SUBCOMMAND_H
#define CT_TEST_SUBCOMMAND_H

#include "common/io.h"
#include "tests/support/testutil.h"

#include <sys/wait.h>

/* Runs fn(argc, argv) in a child with `input` (NULL: /dev/null) on stdin; files go in
 * `dir`. Returns the exit status; *out and *err receive stdout and stderr (malloc'd). */
static inline int ct_test_subcommand(int (*fn)(int, char **), char **argv, int argc, const char *input,
                                     const char *dir, char **out, char **err)
{
    char in_path[PATH_MAX + 16], out_path[PATH_MAX + 16], err_path[PATH_MAX + 16];
    snprintf(in_path, sizeof in_path, "%s/in", dir);
    snprintf(out_path, sizeof out_path, "%s/out", dir);
    snprintf(err_path, sizeof err_path, "%s/err", dir);
    if (input)
        ck_assert_int_eq(ct_write_file_atomic(in_path, input, strlen(input)), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (!freopen(input ? in_path : "/dev/null", "r", stdin) || !freopen(out_path, "w", stdout) ||
            !freopen(err_path, "w", stderr))
            _exit(99);
        int rc = fn(argc, argv);
        fflush(stdout);
        fflush(stderr);
        _exit(rc);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    size_t len;
    ck_assert_int_eq(ct_read_file(out_path, out, &len), 0);
    ck_assert_int_eq(ct_read_file(err_path, err, &len), 0);
    return WEXITSTATUS(status);
}

#endif

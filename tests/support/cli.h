/* Running the crosstime CLI from tests ($CT_CLI, set by ct_test()). */
#ifndef CT_TEST_CLI_H
#define CT_TEST_CLI_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* Runs `crosstime <args>` through the shell with stderr merged into stdout; returns
 * the exit status and stores up to cap-1 bytes of output (NUL-terminated). */
static inline int ct_cli(char *out, size_t cap, const char *fmt, ...)
{
    char args[4096], cmd[4600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    const char *cli = getenv("CT_CLI");
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", cli ? cli : "crosstime", args);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = 0;
    char sink[4096];
    if (!out || !cap) {
        out = sink;
        cap = sizeof sink;
    }
    for (;;) {
        size_t got = fread(n < cap - 1 ? out + n : sink, 1, n < cap - 1 ? cap - 1 - n : sizeof sink, p);
        if (got == 0)
            break;
        if (n < cap - 1)
            n += got;
    }
    out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Number of lines of `path` equal to `line` (0 when the file is missing). */
static inline int ct_count_lines(const char *path, const char *line)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char buf[1024];
    int n = 0;
    while (fgets(buf, sizeof buf, f)) {
        buf[strcspn(buf, "\n")] = '\0';
        n += strcmp(buf, line) == 0;
    }
    fclose(f);
    return n;
}

static inline int ct_count_all_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

#endif

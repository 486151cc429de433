/* Wall time of a no-op `crosstime run`: a recipe of ~200 steps, all cached.
 * Target: <= 50 ms. Prints key=value lines.
 *
 *   build/bench/bench_noop_run [--steps 200] [--repeat 20] */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int run(const char *recipe, const char *cache)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        execl(CT_CLI_PATH, "crosstime", "run", recipe, "--cache", cache, "-q", (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int steps = 200, repeat = 20;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--steps") == 0)
            steps = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--repeat") == 0)
            repeat = atoi(argv[i + 1]);
    }
    char dir[] = "/tmp/ct-bench-noop-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char recipe[PATH_MAX], cache[PATH_MAX];
    snprintf(recipe, sizeof recipe, "%s/recipe.yaml", dir);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    FILE *f = fopen(recipe, "w");
    fprintf(f, "name: bench-noop\ntoy:\n  inputs:\n");
    for (int i = 0; i < steps - 1; i++) /* steps-1 transforms + the join */
        fprintf(f, "    - text number %d\n", i);
    fclose(f);
    double t = now();
    if (run(recipe, cache) != 0) {
        fprintf(stderr, "first run failed\n");
        return 1;
    }
    printf("steps=%d\nfirst_run_s=%.3f\n", steps, now() - t);
    double *times = calloc((size_t)repeat, sizeof *times);
    for (int i = 0; i < repeat; i++) {
        t = now();
        if (run(recipe, cache) != 0)
            return 1;
        times[i] = now() - t;
    }
    qsort(times, (size_t)repeat, sizeof *times, cmp);
    printf("noop_run_min_ms=%.1f\nnoop_run_median_ms=%.1f\n", times[0] * 1e3, times[repeat / 2] * 1e3);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    system(cmd);
    free(times);
    return 0;
}

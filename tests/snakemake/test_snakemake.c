/* The Snakefile on a toy recipe: one job per step on node-local caches, results
 * passed as bundles, then imported into a final cache that must hold the same keys,
 * blob digests and join artifact as a plain `crosstime run`. */
#include "tests/support/cli.h"
#include "tests/support/testutil.h"

#include <jansson.h>
#include <sys/wait.h>

static char out[1 << 16];

static const char toy_recipe[] = "name: toy-snake\n"
                                 "toy:\n"
                                 "  inputs: [alpha, beta, gamma]\n"
                                 "  rounds: 2\n"
                                 "  transform: rot13\n";

/* Runs a shell command with output captured into `out`; returns the exit status. */
static int sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    strncat(cmd, " 2>&1", sizeof cmd - strlen(cmd) - 1);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    char sink[4096];
    while (fread(sink, 1, sizeof sink, p) > 0) {
    }
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* "key sha256" lines of a cache's entries, in key order, leaving out the memos of
 * source-file digests (keyed by path and stat identity: local bookkeeping of the
 * planner, not results). */
static char *entries_of(const char *cache)
{
    static char ls[1 << 22];
    int rc = ct_cli(ls, sizeof ls, "cache ls --json --cache %s", cache);
    ck_assert_msg(rc == 0, "%s", ls);
    ck_assert_msg(strlen(ls) + 1 < sizeof ls, "cache ls output too long for the test's buffer");
    char *res = calloc(1, 1 << 18);
    size_t len = 0;
    for (char *line = strtok(ls, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *j = json_loads(line, 0, NULL);
        ck_assert_msg(j != NULL, "not JSON: %s", line);
        const char *kind =
            json_string_value(json_object_get(json_object_get(json_object_get(j, "record"), "material"), "kind"));
        if (kind && strcmp(kind, "source_digest_memo") == 0) {
            json_decref(j);
            continue;
        }
        const char *k = json_string_value(json_object_get(j, "key"));
        const char *sha =
            json_string_value(json_object_get(json_object_get(json_object_get(j, "record"), "blob"), "sha256"));
        ck_assert_ptr_nonnull(k);
        ck_assert_ptr_nonnull(sha);
        len += (size_t)snprintf(res + len, (1 << 18) - len, "%s %s\n", k, sha);
        json_decref(j);
    }
    return res;
}

static void join_of(const char *recipe, const char *cache, char *text, size_t cap)
{
    static char plan[1 << 16];
    ck_assert_int_eq(ct_cli(plan, sizeof plan, "plan %s --cache %s", recipe, cache), 0);
    ck_assert_msg(strstr(plan, "7 steps: 7 cached, 0 to run"), "%s", plan);
    char *line = strstr(plan, "toy/join");
    ck_assert_ptr_nonnull(line);
    while (line > plan && line[-1] != '\n')
        line--;
    char st[16], key[32];
    ck_assert_int_eq(sscanf(line, "%15s %31s", st, key), 2);
    ck_assert_int_eq(ct_cli(text, cap, "cache cat %s --cache %s", key, cache), 0);
}

START_TEST(snakefile_matches_plain_run)
{
    char dir[PATH_MAX], recipe[PATH_MAX + 16], snakefile[PATH_MAX];
    ct_test_tmpdir(dir, sizeof dir, "snake");
    snprintf(recipe, sizeof recipe, "%s/toy.yaml", dir);
    FILE *f = fopen(recipe, "w");
    ck_assert_ptr_nonnull(f);
    fputs(toy_recipe, f);
    fclose(f);
    ct_test_src(snakefile, sizeof snakefile, "Snakefile");
    unsetenv("CT_TOY_WITNESS");
    const char *cli = getenv("CT_CLI");
    ck_assert_ptr_nonnull(cli);

    int rc = sh("cd '%s' && snakemake -s '%s' --cores 2 --config recipe=toy.yaml crosstime='%s' cache=final",
                dir, snakefile, cli);
    ck_assert_msg(rc == 0, "snakemake failed:\n%s", out);
    /* one job per step, one bundle each */
    rc = sh("ls '%s'/bundles/*.tar.zst | wc -l", dir);
    ck_assert_int_eq(atoi(out), 7);

    char plain[PATH_MAX + 16], final[PATH_MAX + 16];
    snprintf(plain, sizeof plain, "%s/plain", dir);
    snprintf(final, sizeof final, "%s/final", dir);
    ck_assert_int_eq(ct_cli(out, sizeof out, "run %s --cache %s -q", recipe, plain), 0);
    char *a = entries_of(plain), *b = entries_of(final);
    ck_assert_str_eq(a, b); /* same keys and blob digests, the plan manifest included */
    ck_assert_int_ge((int)strlen(a), 8 * 130);
    free(a);
    free(b);
    char ja[256], jb[256];
    join_of(recipe, plain, ja, sizeof ja);
    join_of(recipe, final, jb, sizeof jb);
    ck_assert_str_eq(ja, jb);
    ck_assert_str_eq(jb, "alpha\nbeta\ngamma\n"); /* rot13 twice */

    /* everything is up to date: a second invocation runs nothing */
    rc = sh("cd '%s' && snakemake -s '%s' --cores 2 --config recipe=toy.yaml crosstime='%s' cache=final",
            dir, snakefile, cli);
    ck_assert_msg(rc == 0 && strstr(out, "Nothing to be done"), "%s", out);
    /* one changed input: only its chain and the join get new bundles */
    rc = sh("cd '%s' && snakemake -s '%s' --cores 2 --config recipe=toy.yaml crosstime='%s' cache=final "
            "'set=[\"toy.inputs=[alpha, delta, gamma]\"]'",
            dir, snakefile, cli);
    ck_assert_msg(rc == 0, "%s", out);
    rc = sh("ls '%s'/bundles/*.tar.zst | wc -l", dir);
    ck_assert_int_eq(atoi(out), 10);
    sh("rm -rf '%s'", dir);
}
END_TEST

/* `crosstime results --table NAME --format csv` of a cache. */
static char *table_of(const char *recipe, const char *cache, const char *name)
{
    static char csv[1 << 22];
    int rc = ct_cli(csv, sizeof csv, "results %s --cache %s --table %s --format csv", recipe, cache, name);
    ck_assert_msg(rc == 0, "%s", csv);
    ck_assert_msg(strlen(csv) + 1 < sizeof csv, "table %s too long for the test's buffer", name);
    return strdup(csv);
}

/* The shrunken tiny recipe (pretraining, activations, crosscoders, attribution,
 * report): the Snakefile's cache holds the same entries and gives the same tables. */
START_TEST(snakefile_matches_plain_run_tiny)
{
    char dir[PATH_MAX], recipe[PATH_MAX], snakefile[PATH_MAX];
    ct_test_tmpdir(dir, sizeof dir, "snake-tiny");
    ct_test_src(recipe, sizeof recipe, "tests/fixtures/recipes/tiny-ci.yaml");
    ct_test_src(snakefile, sizeof snakefile, "Snakefile");
    const char *cli = getenv("CT_CLI");
    ck_assert_ptr_nonnull(cli);

    int rc = sh("cd '%s' && snakemake -s '%s' --cores 2 --config recipe='%s' crosstime='%s' cache=final", dir,
                snakefile, recipe, cli);
    ck_assert_msg(rc == 0, "snakemake failed:\n%s", out);
    char plain[PATH_MAX + 16], final[PATH_MAX + 16];
    snprintf(plain, sizeof plain, "%s/plain", dir);
    snprintf(final, sizeof final, "%s/final", dir);
    ck_assert_int_eq(ct_cli(out, sizeof out, "run %s --cache %s -q", recipe, plain), 0);
    char *a = entries_of(plain), *b = entries_of(final);
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
    static const char *const tables[] = {"accuracy", "crosscoders", "latents", "validation"};
    for (size_t i = 0; i < sizeof tables / sizeof *tables; i++) {
        char *ta = table_of(recipe, plain, tables[i]), *tb = table_of(recipe, final, tables[i]);
        /* the tiny models' effects may all stay under the |IE| threshold: latents may be empty */
        if (strcmp(tables[i], "latents") != 0)
            ck_assert_msg(strchr(ta, '\n') && strchr(ta, '\n')[1] != '\0', "table %s is empty:\n%s", tables[i], ta);
        ck_assert_msg(strcmp(ta, tb) == 0, "table %s differs:\n%s\n---\n%s", tables[i], ta, tb);
        free(ta);
        free(tb);
    }
    sh("rm -rf '%s'", dir);
}
END_TEST

int main(void)
{
    if (system("snakemake --version > /dev/null 2>&1") != 0) {
        printf("SKIP: snakemake is not installed (apt-get install snakemake)\n");
        return 77;
    }
    Suite *s = suite_create("snakemake");
    TCase *t = tcase_create("snakemake");
    tcase_set_timeout(t, 560);
    tcase_add_test(t, snakefile_matches_plain_run);
    tcase_add_test(t, snakefile_matches_plain_run_tiny);
    suite_add_tcase(s, t);
    return ct_test_run(s);
}

/* The runner end to end through the CLI, on the test-only toy step kinds:
 * no-op reruns, exact downstream reruns with explanations, failures, concurrency
 * between processes, corruption recovery, Ctrl-C, gc and provenance. */
#include "tests/support/cli.h"
#include "tests/support/testutil.h"

#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

typedef struct {
    char dir[PATH_MAX], cache[PATH_MAX + 16], recipe[PATH_MAX + 16], witness[PATH_MAX + 16];
} env;

static char out[1 << 16];

static void setup(env *e, const char *tag, const char *recipe_body)
{
    ct_test_tmpdir(e->dir, sizeof e->dir, tag);
    snprintf(e->cache, sizeof e->cache, "%s/cache", e->dir);
    snprintf(e->recipe, sizeof e->recipe, "%s/toy.yaml", e->dir);
    snprintf(e->witness, sizeof e->witness, "%s/witness", e->dir);
    FILE *f = fopen(e->recipe, "w");
    ck_assert_ptr_nonnull(f);
    fputs(recipe_body, f);
    fclose(f);
    setenv("CT_TOY_WITNESS", e->witness, 1);
}

static void reset_witness(env *e) { unlink(e->witness); }

static const char toy_recipe[] = "name: toy-test\n"
                                 "toy:\n"
                                 "  inputs: [alpha, beta, gamma]\n"
                                 "  rounds: 2\n";

START_TEST(second_run_is_noop)
{
    env e;
    setup(&e, "noop", toy_recipe);
    int rc = ct_cli(out, sizeof out, "run %s --cache %s", e.recipe, e.cache);
    ck_assert_msg(rc == 0, "run failed: %s", out);
    /* 3 items + 3 round-1 steps + join */
    ck_assert_int_eq(ct_count_all_lines(e.witness), 7);
    ck_assert_int_eq(ct_count_lines(e.witness, "toy/join"), 1);
    reset_witness(&e);
    rc = ct_cli(out, sizeof out, "run %s --cache %s", e.recipe, e.cache);
    ck_assert_msg(rc == 0, "second run failed: %s", out);
    ck_assert_int_eq(ct_count_all_lines(e.witness), 0);
    ck_assert_msg(strstr(out, "7 cached, 0 computed"), "%s", out);
    rc = ct_cli(out, sizeof out, "plan %s --cache %s", e.recipe, e.cache);
    ck_assert_int_eq(rc, 0);
    ck_assert_msg(strstr(out, "7 steps: 7 cached, 0 to run"), "%s", out);
}
END_TEST

static const char *find_key(const char *plan_text, const char *label, char *key12)
{
    /* plan lines: "  cached 0123456789ab  toy/item/0   toy_transform" */
    const char *p = plan_text;
    while ((p = strstr(p, label))) {
        const char *line = p;
        while (line > plan_text && line[-1] != '\n')
            line--;
        char status[16], k[32], lab[256];
        if (sscanf(line, "%15s %31s %255s", status, k, lab) == 3 && strcmp(lab, label) == 0) {
            snprintf(key12, 13, "%s", k);
            return key12;
        }
        p++;
    }
    return NULL;
}

START_TEST(changing_one_input_reruns_exactly_downstream)
{
    env e;
    setup(&e, "down", toy_recipe);
    ck_assert_int_eq(ct_cli(out, sizeof out, "run %s --cache %s", e.recipe, e.cache), 0);
    reset_witness(&e);
    const char *set = "--set 'toy.inputs=[alpha, BETA2, gamma]'";
    int rc = ct_cli(out, sizeof out, "plan %s --cache %s %s", e.recipe, e.cache, set);
    ck_assert_int_eq(rc, 0);
    ck_assert_msg(strstr(out, "7 steps: 4 cached, 3 to run"), "%s", out);
    ck_assert_msg(strstr(out, "parameter text: \"beta\" -> \"BETA2\""), "%s", out);
    ck_assert_msg(strstr(out, "input 'prev' changed (toy/item/1)"), "%s", out);
    ck_assert_msg(strstr(out, "input 'parts' changed (toy/round1/0, ...)"), "%s", out);
    rc = ct_cli(out, sizeof out, "run %s --cache %s %s", e.recipe, e.cache, set);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_int_eq(ct_count_all_lines(e.witness), 3);
    ck_assert_int_eq(ct_count_lines(e.witness, "toy/item/1"), 1);
    ck_assert_int_eq(ct_count_lines(e.witness, "toy/round1/1"), 1);
    ck_assert_int_eq(ct_count_lines(e.witness, "toy/join"), 1);
    /* the join's artifact holds the new text, transformed twice (upper) */
    char key[13];
    rc = ct_cli(out, sizeof out, "plan %s --cache %s %s", e.recipe, e.cache, set);
    ck_assert_ptr_nonnull(find_key(out, "toy/join", key));
    rc = ct_cli(out, sizeof out, "cache cat %s --cache %s", key, e.cache);
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(out, "ALPHA\nBETA2\nGAMMA\n");
}
END_TEST

START_TEST(failed_step_stores_nothing_and_reports_log)
{
    env e;
    setup(&e, "fail", toy_recipe);
    int rc = ct_cli(out, sizeof out, "run %s --cache %s --set toy.fail_at=toy/round1/0", e.recipe, e.cache);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(out, "FAILED toy/round1/0"), "%s", out);
    ck_assert_msg(strstr(out, "fails on purpose (toy.fail_at)"), "log not shown: %s", out);
    ck_assert_msg(strstr(out, "1 failed, 1 skipped"), "%s", out);
    ck_assert_int_eq(ct_count_lines(e.witness, "toy/join"), 0);
    ck_assert_int_eq(ct_count_lines(e.witness, "toy/round1/1"), 1); /* independent steps went on */
    rc = ct_cli(out, sizeof out, "plan %s --cache %s --set toy.fail_at=toy/round1/0", e.recipe, e.cache);
    ck_assert_msg(strstr(out, "7 steps: 5 cached, 2 to run"), "%s", out);
    char key[13];
    ck_assert_ptr_nonnull(find_key(out, "toy/round1/0", key));
    ck_assert_int_ne(ct_cli(out, sizeof out, "why %s --cache %s", key, e.cache), 0);
}
END_TEST

START_TEST(four_processes_compute_each_step_once)
{
    env e;
    setup(&e, "conc", "name: toy-conc\n"
                      "toy:\n"
                      "  inputs: [a, b, c, d, e, f]\n"
                      "  rounds: 3\n"
                      "  sleep_ms: 40\n");
    char cmd[4 * PATH_MAX];
    snprintf(cmd, sizeof cmd,
             "for i in 1 2 3 4; do '%s' run %s --cache %s --jobs 2 -q > %s/out.$i 2>&1 & done; wait",
             getenv("CT_CLI"), e.recipe, e.cache, e.dir);
    ck_assert_int_eq(system(cmd), 0);
    /* 6 items x 3 rounds + join, each computed by exactly one process */
    ck_assert_int_eq(ct_count_all_lines(e.witness), 19);
    const char *labels[] = {"toy/item/0", "toy/round1/3", "toy/round2/5", "toy/join"};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(ct_count_lines(e.witness, labels[i]), 1);
    /* all four see the same, complete results */
    int rc = ct_cli(out, sizeof out, "plan %s --cache %s", e.recipe, e.cache);
    ck_assert_msg(strstr(out, "19 steps: 19 cached, 0 to run"), "%s", out);
    char key[13];
    ck_assert_ptr_nonnull(find_key(out, "toy/join", key));
    rc = ct_cli(out, sizeof out, "cache cat %s --cache %s", key, e.cache);
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(out, "A\nB\nC\nD\nE\nF\n");
    for (int i = 1; i <= 4; i++) {
        char path[PATH_MAX + 16];
        snprintf(path, sizeof path, "%s/out.%d", e.dir, i);
        char *text = NULL;
        FILE *f = fopen(path, "r");
        ck_assert_ptr_nonnull(f);
        size_t cap = 1 << 16;
        text = calloc(1, cap);
        fread(text, 1, cap - 1, f);
        fclose(f);
        ck_assert_msg(strstr(text, "0 failed"), "process %d: %s", i, text);
        free(text);
    }
}
END_TEST

/* Flips one byte of every occurrence of `pattern` in the file (LMDB may keep stale
 * copies in free pages; the live one is among them). Returns the count. */
static int flip_pattern(const char *path, const char *pattern)
{
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    struct stat st;
    fstat(fd, &st);
    char *map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ck_assert_ptr_ne(map, MAP_FAILED);
    int hits = 0;
    size_t len = strlen(pattern);
    for (char *p = map, *end = map + st.st_size; (p = memmem(p, (size_t)(end - p), pattern, len)); p += len) {
        p[0] ^= 0x20;
        hits++;
    }
    munmap(map, (size_t)st.st_size);
    close(fd);
    return hits;
}

START_TEST(corrupt_blob_is_reported_and_recomputed)
{
    env e;
    setup(&e, "corrupt", "name: toy-corrupt\n"
                         "toy:\n"
                         "  inputs: [plainword, zebracrossing]\n"
                         "  transform: reverse\n"
                         "  rounds: 2\n");
    ck_assert_int_eq(ct_cli(out, sizeof out, "run %s --cache %s", e.recipe, e.cache), 0);
    reset_witness(&e);
    char data[PATH_MAX + 32];
    snprintf(data, sizeof data, "%s/data.mdb", e.cache);
    /* only toy/item/1 holds the reversed text (round 1 and the join hold it re-reversed) */
    ck_assert(flip_pattern(data, "gnissorcarbez"));
    int rc = ct_cli(out, sizeof out, "cache verify --cache %s", e.cache);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(out, "1 corrupt entry"), "%s", out);
    rc = ct_cli(out, sizeof out, "cache verify --cache %s", e.cache);
    ck_assert_msg(rc == 0 && strstr(out, "0 corrupt entries"), "%s", out);
    rc = ct_cli(out, sizeof out, "run %s --cache %s", e.recipe, e.cache);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_int_eq(ct_count_all_lines(e.witness), 1);
    ck_assert_int_eq(ct_count_lines(e.witness, "toy/item/1"), 1);
}
END_TEST

START_TEST(ctrl_c_stops_cleanly_and_rerun_completes)
{
    env e;
    setup(&e, "intr", "name: toy-intr\n"
                      "toy:\n"
                      "  inputs: [a, b, c, d, e, f, g, h]\n"
                      "  sleep_ms: 150\n");
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execl(getenv("CT_CLI"), "crosstime", "run", e.recipe, "--cache", e.cache, (char *)NULL);
        _exit(127);
    }
    struct timespec ts = {0, 500 * 1000000L};
    nanosleep(&ts, NULL);
    kill(pid, SIGINT);
    int status;
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 130);
    int done = ct_count_all_lines(e.witness);
    ck_assert_int_lt(done, 9);
    int rc = ct_cli(out, sizeof out, "cache verify --cache %s", e.cache);
    ck_assert_msg(rc == 0, "%s", out);
    rc = ct_cli(out, sizeof out, "run %s --cache %s", e.recipe, e.cache);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_int_eq(ct_count_lines(e.witness, "toy/join"), 1);
    for (int i = 0; i < 8; i++) {
        char label[32];
        snprintf(label, sizeof label, "toy/item/%d", i);
        ck_assert_int_eq(ct_count_lines(e.witness, label), 1);
    }
}
END_TEST

START_TEST(why_shows_material_and_provenance)
{
    env e;
    setup(&e, "why", toy_recipe);
    /* the recipe is committed in a repository; the cache and witness files beside it
     * are untracked, which does not make the repository dirty */
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd,
             "cd %s && git init -q . && git -c user.email=t@t -c user.name=t add toy.yaml && "
             "git -c user.email=t@t -c user.name=t commit -qm recipe", e.dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(ct_cli(out, sizeof out, "run %s --cache %s", e.recipe, e.cache), 0);
    char key[13];
    ct_cli(out, sizeof out, "plan %s --cache %s", e.recipe, e.cache);
    ck_assert_ptr_nonnull(find_key(out, "toy/round1/2", key));
    int rc = ct_cli(out, sizeof out, "why %s --cache %s", key, e.cache);
    ck_assert_int_eq(rc, 0);
    json_error_t err;
    json_t *rec = json_loads(out, 0, &err);
    ck_assert_msg(rec != NULL, "why printed no JSON: %s", out);
    json_t *m = json_object_get(rec, "material");
    ck_assert_str_eq(json_string_value(json_object_get(m, "kind")), "toy_transform");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(m, "params"), "transform")), "upper");
    ck_assert_int_eq(strlen(json_string_value(json_object_get(json_object_get(m, "inputs"), "prev"))), 64);
    json_t *prov = json_object_get(rec, "provenance");
    ck_assert_ptr_nonnull(json_string_value(json_object_get(prov, "crosstime")));
    ck_assert_ptr_nonnull(json_string_value(json_object_get(json_object_get(prov, "libraries"), "lmdb")));
    ck_assert_ptr_nonnull(json_string_value(json_object_get(json_object_get(prov, "libraries"), "openblas")));
    json_t *git = json_object_get(prov, "recipe_git");
    ck_assert_int_eq(strlen(json_string_value(json_object_get(git, "commit"))), 40);
    ck_assert(json_is_false(json_object_get(git, "dirty")));
    ck_assert_str_eq(json_string_value(json_object_get(prov, "device")), "cpu");
    ck_assert(json_real_value(json_object_get(json_object_get(rec, "time"), "wall_s")) >= 0);
    /* round1/2 holds upper(upper("gamma")); its digest is SHA-256("GAMMA") */
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(rec, "blob"), "sha256")),
                     "9b192f676f7bc594d854a85019729dfde8e77b2c37eeb5a4e47b514fcfb5986c");
    json_decref(rec);

    /* an edited recipe in the repository is recorded as dirty */
    FILE *f = fopen(e.recipe, "a");
    fputs("# edited\n  transform: rot13\n", f);
    fclose(f);
    ck_assert_int_eq(ct_cli(out, sizeof out, "run %s --cache %s", e.recipe, e.cache), 0);
    ct_cli(out, sizeof out, "plan %s --cache %s", e.recipe, e.cache);
    ck_assert_ptr_nonnull(find_key(out, "toy/item/0", key));
    ct_cli(out, sizeof out, "why %s --cache %s", key, e.cache);
    rec = json_loads(out, 0, &err);
    ck_assert_ptr_nonnull(rec);
    ck_assert(json_is_true(json_object_get(json_object_get(json_object_get(rec, "provenance"), "recipe_git"), "dirty")));
    json_decref(rec);
}
END_TEST

START_TEST(gc_keeps_what_the_recipe_root_reaches)
{
    env e;
    setup(&e, "gc", toy_recipe);
    ck_assert_int_eq(ct_cli(out, sizeof out, "run %s --cache %s", e.recipe, e.cache), 0);
    ck_assert_int_eq(ct_cli(out, sizeof out, "run %s --cache %s --set toy.transform=rot13", e.recipe, e.cache), 0);
    /* the root now holds the rot13 run: the upper run's 7 entries and its manifest are
     * unreachable */
    int rc = ct_cli(out, sizeof out, "cache gc --cache %s", e.cache);
    ck_assert_msg(rc == 0 && strstr(out, "removed 8 entries"), "%s", out);
    rc = ct_cli(out, sizeof out, "plan %s --cache %s --set toy.transform=rot13", e.recipe, e.cache);
    ck_assert_msg(strstr(out, "7 steps: 7 cached, 0 to run"), "%s", out);
    rc = ct_cli(out, sizeof out, "plan %s --cache %s", e.recipe, e.cache);
    ck_assert_msg(strstr(out, "7 steps: 0 cached, 7 to run"), "%s", out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("runner");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, second_run_is_noop);
    tcase_add_test(tc, changing_one_input_reruns_exactly_downstream);
    tcase_add_test(tc, failed_step_stores_nothing_and_reports_log);
    tcase_add_test(tc, four_processes_compute_each_step_once);
    tcase_add_test(tc, corrupt_blob_is_reported_and_recomputed);
    tcase_add_test(tc, ctrl_c_stops_cleanly_and_rerun_completes);
    tcase_add_test(tc, why_shows_material_and_provenance);
    tcase_add_test(tc, gc_keeps_what_the_recipe_root_reaches);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

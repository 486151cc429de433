/* The report page in headless Chromium: it loads with no console error, the browser's
 * DOM holds every section and every plot of the file, and a screenshot is taken into
 * $CT_BINARY_DIR/test-artifacts/report/. The page is the one test_report leaves there.
 *
 * Without a `chromium` on PATH (or $CT_CHROMIUM) the test is skipped (exit 77), unless
 * CT_REQUIRE_CHROMIUM=1, which makes that a failure. A page with a deliberate console
 * error is loaded first, to show the log check catches one. */
#include "common/io.h"
#include "tests/support/testutil.h"

#include <sys/stat.h>
#include <sys/wait.h>

static const char flags[] = "--headless --no-sandbox --disable-gpu --disable-background-networking "
                            "--disable-component-update --disable-sync --no-first-run --enable-logging=stderr --v=0";

static char browser[PATH_MAX], dir[PATH_MAX], profile[PATH_MAX];

static int find_browser(void)
{
    const char *env = getenv("CT_CHROMIUM");
    if (env && *env) {
        snprintf(browser, sizeof browser, "%s", env);
        return access(browser, X_OK) == 0;
    }
    const char *path = getenv("PATH");
    char *copy = strdup(path ? path : "/usr/bin:/bin");
    int found = 0;
    for (char *save = NULL, *d = strtok_r(copy, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
        snprintf(browser, sizeof browser, "%s/chromium", d);
        found = access(browser, X_OK) == 0;
    }
    free(copy);
    return found;
}

/* Runs chromium with `args` on file://page; stdout to out_path, stderr to log_path. */
static int chromium(const char *args, const char *page, const char *out_path, const char *log_path)
{
    char cmd[4 * PATH_MAX + 1024];
    snprintf(cmd, sizeof cmd, "timeout 120 '%s' %s --user-data-dir='%s' %s 'file://%s' >'%s' 2>'%s'", browser, flags,
             profile, args, page, out_path, log_path);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

__attribute__((noinline)) static char *slurp(const char *path)
{
    char *data;
    size_t len;
    ck_assert_msg(ct_read_file(path, &data, &len) == 0, "cannot read %s", path);
    return data;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Lines of the browser log that report a page error. */
static size_t console_errors(const char *log) { return count(log, "CONSOLE") + count(log, "Uncaught"); }

START_TEST(console_errors_are_detected)
{
    char page[PATH_MAX + 32], dom[PATH_MAX + 32], log[PATH_MAX + 32];
    snprintf(page, sizeof page, "%s/broken.html", profile);
    snprintf(dom, sizeof dom, "%s/broken.dom", profile);
    snprintf(log, sizeof log, "%s/broken.log", profile);
    static const char html[] = "<!DOCTYPE html><html><body><p>x</p><script>undefinedFunction();</script></body></html>";
    ck_assert_int_eq(ct_write_file_atomic(page, html, sizeof html - 1), 0);
    ck_assert_int_eq(chromium("--dump-dom", page, dom, log), 0);
    char *text = slurp(log);
    ck_assert_msg(console_errors(text) > 0, "the log check misses a script error; log:\n%s", text);
    free(text);
}
END_TEST

START_TEST(report_page_renders_without_errors)
{
    char page[PATH_MAX + 32], dom[PATH_MAX + 32], log[PATH_MAX + 32], png[PATH_MAX + 32], arg[PATH_MAX + 64];
    snprintf(page, sizeof page, "%s/tiny.html", dir);
    snprintf(dom, sizeof dom, "%s/tiny.dom.html", dir);
    snprintf(log, sizeof log, "%s/chromium.log", dir);
    snprintf(png, sizeof png, "%s/tiny.png", dir);
    ck_assert_msg(access(page, R_OK) == 0, "%s is missing: run test_report first", page);
    char *src = slurp(page);

    ck_assert_int_eq(chromium("--dump-dom", page, dom, log), 0);
    char *text = slurp(log), *tree = slurp(dom);
    ck_assert_msg(console_errors(text) == 0, "console errors while loading the report:\n%s", text);
    static const char *const ids[] = {"accuracy", "crosscoders", "relie", "validation",
                                      "overlap", "latents", "provenance"};
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
        char id[64];
        snprintf(id, sizeof id, "<section id=\"%s\">", ids[i]);
        ck_assert_msg(strstr(tree, id), "the browser's DOM has no section %s", ids[i]);
    }
    /* every plot of the file was parsed into an <svg> element */
    size_t n_svg = count(src, "<svg");
    ck_assert_uint_ge(n_svg, 9);
    ck_assert_uint_eq(count(tree, "<svg"), n_svg);
    ck_assert_uint_eq(count(tree, "<circle"), count(src, "<circle"));
    ck_assert_ptr_nonnull(strstr(tree, "<mark>"));
    free(text);
    free(tree);
    free(src);

    unlink(png);
    snprintf(arg, sizeof arg, "--screenshot='%s' --window-size=1280,4000 --hide-scrollbars", png);
    char shot_log[PATH_MAX + 32], shot_out[PATH_MAX + 32];
    snprintf(shot_log, sizeof shot_log, "%s/chromium-screenshot.log", dir);
    snprintf(shot_out, sizeof shot_out, "%s/chromium-screenshot.out", profile);
    ck_assert_int_eq(chromium(arg, page, shot_out, shot_log), 0);
    text = slurp(shot_log);
    ck_assert_msg(console_errors(text) == 0, "console errors while taking the screenshot:\n%s", text);
    free(text);
    struct stat st;
    ck_assert_msg(stat(png, &st) == 0, "no screenshot at %s", png);
    ck_assert_int_gt(st.st_size, 20000); /* a blank 1280x4000 PNG is a few KB */
    FILE *f = fopen(png, "rb");
    unsigned char magic[8];
    ck_assert_uint_eq(fread(magic, 1, 8, f), 8);
    fclose(f);
    ck_assert(memcmp(magic, "\x89PNG\r\n\x1a\n", 8) == 0);
}
END_TEST

int main(void)
{
    if (!find_browser()) {
        const char *req = getenv("CT_REQUIRE_CHROMIUM");
        if (req && strcmp(req, "1") == 0) {
            fprintf(stderr, "test_report_chromium: CT_REQUIRE_CHROMIUM=1 but no chromium on PATH "
                            "(apt-get install chromium, or set CT_CHROMIUM)\n");
            return EXIT_FAILURE;
        }
        fprintf(stderr, "test_report_chromium: no chromium on PATH: skipped\n");
        return 77;
    }
    const char *bin = getenv("CT_BINARY_DIR");
    snprintf(dir, sizeof dir, "%s/test-artifacts/report", bin && *bin ? bin : ".");
    const char *tmp = getenv("TMPDIR");
    snprintf(profile, sizeof profile, "%s/ct-chromium-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(profile)) {
        perror("test_report_chromium: mkdtemp");
        return EXIT_FAILURE;
    }
    Suite *s = suite_create("report_chromium");
    TCase *tc = tcase_create("chromium");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, console_errors_are_detected);
    tcase_add_test(tc, report_page_renders_without_errors);
    suite_add_tcase(s, tc);
    int status = ct_test_run(s);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", profile); /* the browser profile */
    if (system(cmd) != 0)
        fprintf(stderr, "test_report_chromium: could not remove %s\n", profile);
    return status;
}

/* The committed fuzz corpus (fuzz/corpus/bundle_import) as a regression test: every
 * input goes through the fuzz entry point (no crash, sanitizer-clean), and the
 * corpus still reaches both outcomes, accepted bundles and refusals. */
#include "cache/cache.h"
#include "common/error.h"
#include "pipeline/bundle/bundle.h"
#include "tests/support/testutil.h"

#include <dirent.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

START_TEST(corpus_runs_clean)
{
    char dir[PATH_MAX], tmp[PATH_MAX];
    ct_test_src(dir, sizeof dir, "fuzz/corpus/bundle_import");
    ct_test_tmpdir(tmp, sizeof tmp, "bcorpus");
    ct_cache_options o = CT_CACHE_OPTIONS_INIT;
    o.dir = tmp;
    ct_cache *cache;
    ck_assert_int_eq(ct_cache_open(&o, &cache), 0);
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "no corpus at %s", dir);
    int files = 0, accepted = 0, refused = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[PATH_MAX + 256];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        size_t len;
        char *data = slurp(path, &len);
        LLVMFuzzerTestOneInput((const uint8_t *)data, len);
        ct_bundle_import_stats st;
        int rc = ct_bundle_import_buffer(data, len, de->d_name, cache, &st);
        if (rc == 0) {
            accepted++;
        } else {
            refused++;
            /* a refusal always says why */
            ck_assert_msg(ct_error_message()[0] != '\0', "%s: refused without a message", de->d_name);
        }
        free(data);
        files++;
    }
    closedir(d);
    ct_cache_close(cache);
    ck_assert_int_ge(files, 10);
    ck_assert_int_ge(accepted, 1);
    ck_assert_int_ge(refused, 1);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bundle_corpus");
    TCase *t = tcase_create("corpus");
    tcase_set_timeout(t, 300);
    tcase_add_test(t, corpus_runs_clean);
    suite_add_tcase(s, t);
    return ct_test_run(s);
}

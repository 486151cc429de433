/* Throughput of `bundle export` and `bundle import` on one large artifact (as with
 * --with activations): zstd at the pinned level on one thread, then the checking
 * pass and the streaming import. Prints key=value lines.
 *
 *   build/bench_bundle_throughput [--mib 256] */
#include "cache/cache.h"
#include "common/progress.h"
#include "common/error.h"
#include "pipeline/bundle/bundle.h"
#include "pipeline/plan.h"
#include "pipeline/recipe/recipe.h"
#include "pipeline/step.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int fail(const char *what)
{
    fprintf(stderr, "bench_bundle_throughput: %s: %s\n", what, ct_error_message());
    return 1;
}

int main(int argc, char **argv)
{
    size_t mib = 256;
    for (int i = 1; i + 1 < argc; i += 2)
        if (strcmp(argv[i], "--mib") == 0)
            mib = (size_t)atol(argv[i + 1]);
    ct_steps_register_builtin();
    char dir[] = "/tmp/ct-bench-bundle-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char a_dir[64], b_dir[64], out[80];
    snprintf(a_dir, sizeof a_dir, "%s/a", dir);
    snprintf(b_dir, sizeof b_dir, "%s/b", dir);
    snprintf(out, sizeof out, "%s/bundle.tar.zst", dir);
    ct_recipe *recipe;
    ct_cache *a, *b;
    ct_plan *plan;
    ct_cache_options oa = CT_CACHE_OPTIONS_INIT, ob = CT_CACHE_OPTIONS_INIT;
    oa.dir = a_dir;
    ob.dir = b_dir;
    if (ct_recipe_load_string("bench.yaml", "name: bench-bundle\ntoy:\n  inputs: [x]\n  rounds: 1\n", NULL,
                              &recipe) ||
        ct_cache_open(&oa, &a) || ct_cache_open(&ob, &b) || ct_plan_build(recipe, a, &plan))
        return fail("setup");
    /* Activation-like bytes: bf16 values of one sign and a narrow exponent range,
     * random mantissas, so zstd finds about as much to squeeze as in real shards. */
    const ct_plan_step *s = ct_plan_get(plan, 0);
    ct_blob_writer *w;
    if (ct_blob_writer_open(a, &w))
        return fail("writer");
    size_t block = 1 << 20;
    uint16_t *buf = malloc(block);
    uint64_t x = 88172645463325252ull;
    for (size_t m = 0; m < mib; m++) {
        for (size_t i = 0; i < block / 2; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = (uint16_t)(0x3c00 | (x & 0x03ff) | ((x >> 20) & 1) << 8);
        }
        if (ct_blob_write(w, buf, block))
            return fail("write");
    }
    free(buf);
    json_t *rec = json_pack("{s:O, s:s}", "material", s->material, "label", s->label);
    if (ct_blob_commit(w, s->key, rec))
        return fail("commit");
    json_decref(rec);
    ct_plan_free(plan);
    if (ct_plan_build(recipe, a, &plan))
        return fail("plan");

    const char *labels[] = {ct_plan_get(plan, 0)->label};
    ct_bundle_export_options eo = CT_BUNDLE_EXPORT_OPTIONS_INIT;
    eo.labels = labels;
    eo.n_labels = 1;
    double t0 = ct_seconds();
    if (ct_bundle_export(plan, a, out, &eo, NULL))
        return fail("export");
    double t_export = ct_seconds() - t0;
    struct stat st;
    stat(out, &st);
    t0 = ct_seconds();
    ct_bundle_import_stats is;
    if (ct_bundle_import(out, b, &is) || is.imported != 1)
        return fail("import");
    double t_import = ct_seconds() - t0;
    double bytes = (double)mib * (1 << 20);
    printf("artifact_mib=%zu\n", mib);
    printf("zstd_level=%d\n", CT_BUNDLE_ZSTD_LEVEL);
    printf("bundle_bytes=%lld\n", (long long)st.st_size);
    printf("compression_ratio=%.3f\n", bytes / (double)st.st_size);
    printf("export_s=%.3f\nexport_mib_per_s=%.1f\n", t_export, mib / t_export);
    printf("import_s=%.3f\nimport_mib_per_s=%.1f\n", t_import, mib / t_import);
    ct_plan_free(plan);
    ct_cache_close(a);
    ct_cache_close(b);
    ct_recipe_free(recipe);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}

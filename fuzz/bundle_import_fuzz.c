/* libFuzzer target: `bundle import` of arbitrary bytes into a scratch cache.
 * Every input must be refused cleanly or imported; nothing may crash, leak or read
 * out of bounds. Built with CT_FUZZ=ON (clang); tests/bundle runs the corpus. */
#include "cache/cache.h"
#include "common/error.h"
#include "pipeline/bundle/bundle.h"

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static ct_cache *g_cache;
static char g_dir[4096];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void cleanup(void)
{
    ct_cache_close(g_cache);
    g_cache = NULL;
    if (g_dir[0])
        nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_cache) {
        const char *tmp = getenv("TMPDIR");
        snprintf(g_dir, sizeof g_dir, "%s/crosstime-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        ct_cache_options o = CT_CACHE_OPTIONS_INIT;
        o.dir = mkdtemp(g_dir);
        /* a small map: the fuzzer runs many processes' worth of inputs */
        o.initial_map_size = (size_t)64 << 20;
        if (!o.dir || ct_cache_open(&o, &g_cache) != 0)
            abort();
        atexit(cleanup);
    }
    ct_bundle_import_stats st;
    ct_bundle_import_buffer(data, size, "fuzz-input", g_cache, &st);
    ct_error_clear();
    return 0;
}

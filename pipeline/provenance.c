#include "pipeline/provenance.h"
#include "cache/cache.h"
#include "ct_version.h"

#include <archive.h>
#include <git2.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

/* OpenBLAS exports these; declared here to avoid depending on its cblas.h variant. */
extern char *openblas_get_config(void);
extern int openblas_get_num_threads(void);

#ifdef CT_HAVE_CUDA
extern int ct_cuda_runtime_version(void); /* kernels/cuda: 0 when no runtime */
#endif

static int count_status(const char *path, unsigned int flags, void *payload)
{
    (void)path;
    if (flags != GIT_STATUS_CURRENT && !(flags & GIT_STATUS_IGNORED))
        (*(int *)payload)++;
    return 0;
}

json_t *ct_provenance_git(const char *path)
{
    char abs[PATH_MAX];
    if (!path || !realpath(path, abs))
        return json_null();
    git_libgit2_init();
    git_repository *repo = NULL;
    json_t *out = json_null();
    if (git_repository_open_ext(&repo, abs, 0, NULL) == 0) {
        git_oid oid;
        char hex[GIT_OID_HEXSZ + 1] = "";
        int has_head = git_reference_name_to_id(&oid, repo, "HEAD") == 0;
        if (has_head)
            git_oid_tostr(hex, sizeof hex, &oid);
        int dirty = 0;
        git_status_options opts;
        git_status_options_init(&opts, GIT_STATUS_OPTIONS_VERSION);
        /* dirty = tracked files differ from HEAD (as `git describe --dirty`); untracked
         * files such as a cache beside the recipe do not count */
        opts.flags = GIT_STATUS_OPT_EXCLUDE_SUBMODULES;
        git_status_foreach_ext(repo, &opts, count_status, &dirty);
        const char *workdir = git_repository_workdir(repo);
        json_decref(out);
        out = json_pack("{s:o, s:b, s:s}", "commit", has_head ? json_string(hex) : json_null(), "dirty",
                        dirty > 0, "path", workdir ? workdir : "");
        git_repository_free(repo);
    }
    git_libgit2_shutdown();
    return out;
}

static json_t *libraries(const char *device)
{
    int maj, min, rev;
    git_libgit2_version(&maj, &min, &rev);
    char git[32];
    snprintf(git, sizeof git, "%d.%d.%d", maj, min, rev);
    json_t *libs = json_pack("{s:s, s:s, s:s, s:s}", "lmdb", ct_cache_lmdb_version(), "libgit2", git,
                             "libarchive", archive_version_details(), "openblas", openblas_get_config());
#ifdef CT_HAVE_CUDA
    if (device && strcmp(device, "cuda") == 0) {
        int v = ct_cuda_runtime_version();
        char cuda[32];
        snprintf(cuda, sizeof cuda, "%d.%d", v / 1000, (v % 1000) / 10);
        json_object_set_new(libs, "cuda_runtime", v ? json_string(cuda) : json_null());
    }
#endif
    return libs;
}

json_t *ct_provenance_collect(const char *recipe_path, const char *device)
{
    struct utsname u;
    char host[256] = "unknown";
    gethostname(host, sizeof host - 1);
    int have_uname = uname(&u) == 0;
    json_t *system = json_pack("{s:s, s:s, s:s, s:I}", "hostname", host, "os",
                               have_uname ? u.sysname : "unknown", "kernel",
                               have_uname ? u.release : "unknown", "cpus",
                               (json_int_t)sysconf(_SC_NPROCESSORS_ONLN));
    if (have_uname)
        json_object_set_new(system, "machine", json_string(u.machine));
    return json_pack("{s:s, s:o, s:o, s:s, s:o}", "crosstime", CT_VERSION, "recipe_git",
                     ct_provenance_git(recipe_path), "libraries", libraries(device), "device",
                     device ? device : "cpu", "host", system);
}

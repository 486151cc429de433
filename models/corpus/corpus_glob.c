/* Expansion of corpus file patterns. glob(3) sorts with the locale's collation, which
 * differs between machines, so matches are taken unsorted and ordered with strcmp. */
#include "models/corpus/corpus.h"

#include <glob.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

static int is_pattern(const char *s) { return strpbrk(s, "*?[") != NULL; }

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int push(char ***v, size_t *n, size_t *cap, const char *s)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        char **p = realloc(*v, c * sizeof *p);
        if (!p)
            return ct_error_set(CT_ENOMEM, "out of memory expanding corpus files");
        *v = p;
        *cap = c;
    }
    char *d = strdup(s);
    if (!d)
        return ct_error_set(CT_ENOMEM, "out of memory expanding corpus files");
    (*v)[(*n)++] = d;
    return 0;
}

int ct_corpus_expand(const char *const *patterns, size_t n, char ***paths, size_t *npaths)
{
    char **v = NULL;
    size_t nv = 0, cap = 0;
    int rc = 0;
    *paths = NULL;
    *npaths = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const char *p = patterns[i];
        if (!p || !*p) {
            rc = ct_error_set(CT_EINVAL, "corpus file #%zu: empty name", i + 1);
            break;
        }
        if (!is_pattern(p)) {
            rc = push(&v, &nv, &cap, p);
            continue;
        }
        glob_t g = {0};
        int grc = glob(p, GLOB_NOSORT | GLOB_ERR, NULL, &g);
        if (grc == GLOB_NOMATCH) {
            rc = ct_error_set(CT_ENOTFOUND, "%s: the corpus pattern matches no file", p);
        } else if (grc != 0) {
            rc = ct_error_set(grc == GLOB_NOSPACE ? CT_ENOMEM : CT_EIO, "%s: cannot expand the corpus pattern",
                              p);
        } else {
            qsort(g.gl_pathv, g.gl_pathc, sizeof *g.gl_pathv, cmp_str);
            for (size_t k = 0; k < g.gl_pathc && !rc; k++)
                rc = push(&v, &nv, &cap, g.gl_pathv[k]);
        }
        globfree(&g);
    }
    if (rc) {
        ct_corpus_paths_free(v, nv);
        return rc;
    }
    *paths = v;
    *npaths = nv;
    return 0;
}

void ct_corpus_paths_free(char **paths, size_t npaths)
{
    if (!paths)
        return;
    for (size_t i = 0; i < npaths; i++)
        free(paths[i]);
    free(paths);
}

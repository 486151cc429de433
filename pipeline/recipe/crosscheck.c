#include "pipeline/recipe/check.h"

#include "common/error.h"
#include "models/corpus/corpus.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int err_path(const ct_rlocs *locs, const char *path, const char *fmt, const char *a,
                    const char *b)
{
    const ct_rloc *l = ct_rlocs_find(locs, path);
    char msg[1024];
    snprintf(msg, sizeof msg, fmt, a, b);
    return ct_rerror_at(l ? l->file : "<recipe>", l ? l->line : 0, l ? l->col : 0, path, "%s", msg);
}

static long find_checkpoint(const json_t *cps, const char *name)
{
    for (size_t i = 0; i < json_array_size(cps); i++)
        if (strcmp(json_string_value(json_object_get(json_array_get(cps, i), "name")), name) == 0)
            return (long)i;
    return -1;
}

static int check_checkpoints(const json_t *root, const ct_rlocs *locs)
{
    const json_t *cps = json_object_get(json_object_get(root, "model"), "checkpoints");
    const json_t *pre = json_object_get(root, "pretrain");
    char path[128], a[256], b[256];
    for (size_t i = 0; i < json_array_size(cps); i++) {
        const json_t *cp = json_array_get(cps, i);
        const char *name = json_string_value(json_object_get(cp, "name"));
        long first = find_checkpoint(cps, name);
        if ((size_t)first != i) {
            snprintf(path, sizeof path, "model.checkpoints.%zu.name", i);
            snprintf(b, sizeof b, "model.checkpoints.%ld", first);
            return err_path(locs, path, "duplicate checkpoint name '%s' (also %s)", name, b);
        }
        if (i > 0) {
            const json_t *prev = json_array_get(cps, i - 1);
            json_int_t t = json_integer_value(json_object_get(cp, "tokens"));
            json_int_t tp = json_integer_value(json_object_get(prev, "tokens"));
            if (t <= tp) {
                snprintf(path, sizeof path, "model.checkpoints.%zu.tokens", i);
                snprintf(a, sizeof a, "'%s' (%lld tokens)", name, (long long)t);
                snprintf(b, sizeof b, "'%s' (%lld tokens)",
                         json_string_value(json_object_get(prev, "name")), (long long)tp);
                return err_path(locs, path,
                                "checkpoints must be in strictly increasing order of tokens: "
                                "%s comes after %s", a, b);
            }
        }
        const char *src = json_string_value(json_object_get(cp, "source"));
        if (strncmp(src, "pretrain:", 9) == 0) {
            snprintf(path, sizeof path, "model.checkpoints.%zu.source", i);
            if (!pre)
                return err_path(locs, path, "'%s' needs a 'pretrain' section%s", src, "");
            long long step = strtoll(src + 9, NULL, 10);
            const json_t *saves = json_object_get(pre, "save_steps");
            int found = 0;
            for (size_t k = 0; k < json_array_size(saves); k++)
                found |= json_integer_value(json_array_get(saves, k)) == step;
            if (!found)
                return err_path(locs, path, "'%s': step is not in pretrain.save_steps%s", src, "");
        }
    }
    return 0;
}

static int check_tuples(const json_t *root, const ct_rlocs *locs)
{
    const json_t *cps = json_object_get(json_object_get(root, "model"), "checkpoints");
    const json_t *tuples = json_object_get(root, "tuples");
    char path[128], known[512];
    size_t k = 0;
    known[0] = '\0';
    for (size_t i = 0; i < json_array_size(cps) && k < sizeof known; i++)
        k += (size_t)snprintf(known + k, sizeof known - k, "%s%s", i ? ", " : "",
                              json_string_value(json_object_get(json_array_get(cps, i), "name")));
    for (size_t t = 0; t < json_array_size(tuples); t++) {
        const json_t *tu = json_array_get(tuples, t);
        long prev = -1;
        for (size_t j = 0; j < json_array_size(tu); j++) {
            const char *name = json_string_value(json_array_get(tu, j));
            long at = find_checkpoint(cps, name);
            snprintf(path, sizeof path, "tuples.%zu.%zu", t, j);
            if (at < 0)
                return err_path(locs, path, "unknown checkpoint '%s' (checkpoints: %s)", name, known);
            for (size_t q = 0; q < j; q++)
                if (strcmp(json_string_value(json_array_get(tu, q)), name) == 0)
                    return err_path(locs, path, "checkpoint '%s' appears twice in the tuple%s", name, "");
            if (at < prev)
                return err_path(locs, path,
                                "a tuple lists checkpoints in training order, but '%s' comes "
                                "after '%s'", name, json_string_value(json_array_get(tu, j - 1)));
            prev = at;
        }
        if (json_array_size(tu) < 2) {
            snprintf(path, sizeof path, "tuples.%zu", t);
            return err_path(locs, path, "a tuple needs at least 2 distinct checkpoints, got %s%s",
                            json_array_size(tu) ? "1" : "0", "");
        }
    }
    return 0;
}

static int check_numbers(const json_t *root, const ct_rlocs *locs)
{
    const json_t *relie = json_object_get(root, "relie");
    double low = json_real_value(json_object_get(relie, "low"));
    double high = json_real_value(json_object_get(relie, "high"));
    char a[64];
    if (!(low < high)) {
        /* Point at the bound the recipe wrote, not at a default. */
        const ct_rloc *hl = ct_rlocs_find(locs, "relie.high");
        if (hl && hl->line == 0) {
            snprintf(a, sizeof a, "%g", high);
            return err_path(locs, "relie.low", "must be less than relie.high (%s)%s", a, "");
        }
        snprintf(a, sizeof a, "%g", low);
        return err_path(locs, "relie.high", "must be greater than relie.low (%s)%s", a, "");
    }
    const json_t *m = json_object_get(json_object_get(root, "pretrain"), "model");
    if (m) {
        json_int_t hidden = json_integer_value(json_object_get(m, "hidden"));
        json_int_t heads = json_integer_value(json_object_get(m, "heads"));
        if (heads > 0 && hidden % heads != 0) {
            snprintf(a, sizeof a, "%lld", (long long)hidden);
            return err_path(locs, "pretrain.model.heads", "must divide pretrain.model.hidden (%s)%s",
                            a, "");
        }
    }
    return 0;
}

/* Exactly one of corpus.files and corpus.mix, and a mix of 1 to CT_CORPUS_MAX_LANGS
 * languages with weights > 0. */
static int check_corpus(const json_t *root, const ct_rlocs *locs)
{
    const json_t *corpus = json_object_get(root, "corpus");
    if (!corpus)
        return 0; /* toy recipes */
    const json_t *files = json_object_get(corpus, "files"), *mix = json_object_get(corpus, "mix"), *lang;
    if (files && mix)
        return err_path(locs, "corpus.mix", "give corpus.files or corpus.mix, not both%s%s", "", "");
    if (!files && !mix)
        return err_path(locs, "corpus", "needs corpus.files (one stream) or corpus.mix (languages)%s%s", "", "");
    char a[64], b[64];
    if (mix && (json_object_size(mix) == 0 || json_object_size(mix) > CT_CORPUS_MAX_LANGS)) {
        snprintf(a, sizeof a, "%d", CT_CORPUS_MAX_LANGS);
        snprintf(b, sizeof b, "%zu", json_object_size(mix));
        return err_path(locs, "corpus.mix", "expected 1 to %s languages, got %s", a, b);
    }
    const char *code;
    json_object_foreach((json_t *)mix, code, lang) {
        double w = json_number_value(json_object_get(lang, "weight"));
        if (!(w > 0)) {
            char path[256];
            snprintf(path, sizeof path, "corpus.mix.%s.weight", code);
            snprintf(a, sizeof a, "%g", w);
            return err_path(locs, path, "expected a weight > 0, got %s%s", a, "");
        }
    }
    return 0;
}

int ct_rcheck_cross(const json_t *root, const ct_rlocs *locs)
{
    int rc = check_checkpoints(root, locs);
    if (!rc)
        rc = check_tuples(root, locs);
    if (!rc)
        rc = check_numbers(root, locs);
    if (!rc)
        rc = check_corpus(root, locs);
    return rc;
}

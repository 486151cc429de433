#include "pipeline/recipe/embedded.h"

#include "common/error.h"

#include <stdio.h>
#include <string.h>

/* Defined in the generated recipes_embedded.c. */
extern const ct_embedded_file ct_recipe_embedded_table[];
extern const size_t ct_recipe_embedded_count;

const ct_embedded_file *ct_recipe_embedded(size_t *n)
{
    if (n)
        *n = ct_recipe_embedded_count;
    return ct_recipe_embedded_table;
}

/* Resolves "." and ".." segments; -1 when the path leaves recipes/ or is too long. */
static int normalize(const char *in, char *out, size_t cap)
{
    size_t k = 0;
    const char *p = in;
    if (*p == '/')
        return -1;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0 || (len == 1 && p[0] == '.')) {
            /* skip */
        } else if (len == 2 && p[0] == '.' && p[1] == '.') {
            if (k == 0)
                return -1;
            while (k > 0 && out[k - 1] != '/')
                k--;
            if (k > 0)
                k--; /* the separator */
        } else {
            if (k + len + 2 > cap)
                return -1;
            if (k)
                out[k++] = '/';
            memcpy(out + k, p, len);
            k += len;
        }
        p += len + (slash != NULL);
    }
    out[k] = '\0';
    return k ? 0 : -1;
}

const ct_embedded_file *ct_rembedded_find(const char *path)
{
    char norm[1024];
    if (normalize(path, norm, sizeof norm))
        return NULL;
    size_t n = strlen(norm);
    for (size_t i = 0; i < ct_recipe_embedded_count; i++) {
        const char *e = ct_recipe_embedded_table[i].name;
        if (strcmp(e, norm) == 0 || (strncmp(e, norm, n) == 0 && strcmp(e + n, ".yaml") == 0))
            return &ct_recipe_embedded_table[i];
    }
    return NULL;
}

int ct_rembedded_find_recipe(const char *name, const ct_embedded_file **out)
{
    *out = ct_rembedded_find(name);
    if (*out)
        return 0;
    size_t n = strlen(name), found = 0;
    char names[512] = "";
    size_t k = 0;
    if (strchr(name, '/'))
        return CT_ENOTFOUND;
    for (size_t i = 0; i < ct_recipe_embedded_count; i++) {
        const char *e = ct_recipe_embedded_table[i].name;
        const char *base = strrchr(e, '/') ? strrchr(e, '/') + 1 : e;
        if (strncmp(base, name, n) == 0 && strcmp(base + n, ".yaml") == 0) {
            if (!found++)
                *out = &ct_recipe_embedded_table[i];
            if (k < sizeof names)
                k += (size_t)snprintf(names + k, sizeof names - k, "%s%s", k ? ", " : "", e);
        }
    }
    if (found > 1) {
        *out = NULL;
        return ct_error_set(CT_EINVAL, "%s: ambiguous embedded recipe name (%s)", name, names);
    }
    return found ? 0 : CT_ENOTFOUND;
}

void ct_rembedded_list(char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < ct_recipe_embedded_count && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%s", i ? ", " : "", ct_recipe_embedded_table[i].name);
    if (ct_recipe_embedded_count == 0)
        snprintf(buf, cap, "none");
}

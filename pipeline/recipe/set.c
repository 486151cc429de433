#include "pipeline/recipe/load.h"

#include "common/error.h"
#include "pipeline/recipe/check.h"
#include "pipeline/recipe/yaml.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMDLINE "<command line>"
#define MAX_SEGMENTS 32

static int parse_index(const char *s, size_t *out)
{
    if (!*s || strlen(s) > 9)
        return -1;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            return -1;
    *out = (size_t)strtoul(s, NULL, 10);
    return 0;
}

int ct_rset_apply(ct_rarena *a, ct_rnode *root, const char *spec, int index)
{
    const int line = index + 1;
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec)
        return ct_rerror_at(CMDLINE, line, 1, NULL, "--set '%s': expected PATH=VALUE", spec);
    char *path = ct_rarena_strndup(a, spec, (size_t)(eq - spec));
    if (!path)
        return ct_error_set(CT_ENOMEM, "out of memory");
    /* Split into segments; `prefix` keeps the path up to the current segment for messages. */
    char *segs[MAX_SEGMENTS];
    size_t nseg = 0;
    for (char *p = path;;) {
        char *dot = strchr(p, '.');
        if (dot)
            *dot = '\0';
        if (!*p || nseg == MAX_SEGMENTS)
            return ct_rerror_at(CMDLINE, line, 1, NULL, "--set '%s': malformed path", spec);
        segs[nseg++] = p;
        if (!dot)
            break;
        p = dot + 1;
    }
    if (strcmp(segs[0], "include") == 0)
        return ct_rerror_at(CMDLINE, line, 1, NULL,
                            "--set '%s': includes cannot be changed from the command line", spec);
    ct_rnode *v;
    const char *text = eq + 1;
    int rc = ct_ryaml_parse(a, CMDLINE, text, strlen(text), index, (int)(eq - spec) + 1, &v);
    if (rc)
        return rc;
    if (!v && !(v = ct_rnode_scalar(a, CMDLINE, line, (int)(eq - spec) + 2, "", 0, 0)))
        return ct_error_set(CT_ENOMEM, "out of memory");

    char prefix[1024] = "";
    size_t plen = 0;
    ct_rnode *cur = root;
    for (size_t s = 0; s < nseg; s++) {
        const char *seg = segs[s];
        int last = s + 1 == nseg;
        ct_rnode **slot = NULL;
        if (cur->kind == CT_RN_MAP) {
            long at = ct_rnode_find(cur, seg);
            if (at < 0) {
                if (last && ct_rnode_is_null(v))
                    return 0;
                ct_rnode *key = ct_rnode_scalar(a, CMDLINE, line, (int)(seg - path) + 1, seg, strlen(seg), 1);
                ct_rnode *child = last ? v : ct_rnode_new(a, CT_RN_MAP, CMDLINE, line, 1);
                if (!key || !child || ct_rnode_append(a, cur, key, child))
                    return ct_error_set(CT_ENOMEM, "out of memory");
                at = (long)cur->n - 1;
            } else if (last && ct_rnode_is_null(v)) {
                ct_rnode_remove(cur, (size_t)at);
                return 0;
            }
            slot = &cur->items[at];
        } else if (cur->kind == CT_RN_SEQ) {
            size_t i;
            if (parse_index(seg, &i))
                return ct_rerror_at(CMDLINE, line, 1, NULL,
                                    "--set '%s': '%s' is not an index into the list %s", spec,
                                    seg, prefix);
            if (i >= cur->n)
                return ct_rerror_at(CMDLINE, line, 1, NULL,
                                    "--set '%s': index %zu is out of range (%s has %zu element%s)",
                                    spec, i, prefix, cur->n, cur->n == 1 ? "" : "s");
            slot = &cur->items[i];
        } else {
            char got[128];
            ct_rnode_describe(cur, got, sizeof got);
            return ct_rerror_at(CMDLINE, line, 1, NULL, "--set '%s': %s is %s, not a map or list",
                                spec, prefix, got);
        }
        plen += (size_t)snprintf(prefix + plen, sizeof prefix - plen, "%s%s", plen ? "." : "", seg);
        if (plen >= sizeof prefix)
            plen = sizeof prefix - 1;
        if (last) {
            *slot = v;
            return 0;
        }
        /* Copy before changing: the child may be shared (YAML aliases). A null child is
         * absent, so a map is made in its place. */
        ct_rnode *child = *slot;
        if (ct_rnode_is_null(child))
            child = ct_rnode_new(a, CT_RN_MAP, CMDLINE, line, 1);
        else if (child->kind != CT_RN_SCALAR)
            child = ct_rnode_clone(a, child);
        if (!child)
            return ct_error_set(CT_ENOMEM, "out of memory");
        *slot = child;
        cur = child;
    }
    return 0;
}

/* What of a cache record travels in a bundle, and bundle class names. */
#include "pipeline/bundle/bundle_internal.h"
#include "pipeline/step.h"

#include <string.h>

json_t *bundle_portable_record(const json_t *record)
{
    /* The chunking, blob id and creation time belong to one cache: leaving them out
     * makes the manifest (and the bundle's bytes) the same whichever cache holds
     * the entries. */
    json_t *r = json_deep_copy(record);
    if (!r)
        return NULL;
    json_object_del(r, "cache");
    json_t *blob = json_object_get(record, "blob");
    if (json_is_object(blob))
        json_object_set_new(r, "blob", json_pack("{s:O, s:O}", "sha256", json_object_get(blob, "sha256"),
                                                 "size", json_object_get(blob, "size")));
    return r;
}

json_t *bundle_user_record(const json_t *record)
{
    json_t *r = json_deep_copy(record);
    if (!r)
        return NULL;
    json_object_del(r, "cache");
    json_object_del(r, "blob");
    return r;
}

static const char *const class_names[] = {
    [CT_BUNDLE_NEVER] = "never",
    [CT_BUNDLE_RESULT] = "result",
    [CT_BUNDLE_ARTIFACT] = "artifact",
    [CT_BUNDLE_ACTIVATION] = "activation",
};
#define N_CLASSES (sizeof class_names / sizeof *class_names)

const char *bundle_class_name(int c)
{
    return c >= 0 && (size_t)c < N_CLASSES ? class_names[c] : "source";
}

int bundle_class_parse(const char *name)
{
    for (size_t i = 0; i < N_CLASSES; i++)
        if (strcmp(name, class_names[i]) == 0)
            return (int)i;
    return strcmp(name, "source") == 0 ? (int)N_CLASSES : -1;
}

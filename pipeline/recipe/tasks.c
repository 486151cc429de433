/* Language sets in a recipe's task list (check.h: ct_rexpand_tasks). `lang/fr` stands
 * for every task of French the installed data has, so a multilingual recipe names its
 * languages instead of listing CLAMS and MultiBLiMP files; the expanded list is what
 * keys, plans and tables see. */
#include "common/error.h"
#include "models/tasks/tasks.h"
#include "pipeline/recipe/check.h"

#include <stdio.h>
#include <string.h>

static int has(const json_t *list, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        if (strcmp(json_string_value(v), name) == 0)
            return 1;
    }
    return 0;
}

int ct_rexpand_tasks(json_t *root, const ct_rlocs *locs)
{
    json_t *tasks = json_object_get(root, "tasks"), *out = json_array(), *v;
    size_t i;
    int rc = out ? 0 : ct_error_set(CT_ENOMEM, "out of memory");
    json_array_foreach(tasks, i, v) {
        const char *name = json_string_value(v);
        if (rc)
            break;
        if (strncmp(name, "lang/", 5) != 0) {
            if (!has(out, name))
                json_array_append(out, v);
            continue;
        }
        const char *code = name + 5;
        char **names = NULL, path[32], why[512];
        size_t n = 0;
        if ((rc = ct_tasks_for_languages(&code, 1, NULL, &names, &n)) != 0) {
            snprintf(why, sizeof why, "%s", ct_error_message());
            snprintf(path, sizeof path, "tasks.%zu", i);
            const ct_rloc *at = ct_rlocs_find(locs, path);
            rc = ct_rerror_at(at ? at->file : "<recipe>", at ? at->line : 0, at ? at->col : 0, path, "%s", why);
            break;
        }
        for (size_t k = 0; k < n; k++)
            if (!has(out, names[k]))
                json_array_append_new(out, json_string(names[k]));
        ct_task_names_free(names);
    }
    if (!rc && tasks)
        rc = json_object_set(root, "tasks", out) == 0 ? 0 : ct_error_set(CT_ENOMEM, "out of memory");
    json_decref(out);
    return rc;
}

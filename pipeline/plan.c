#include "pipeline/plan.h"
#include "common/error.h"
#include "common/sha256.h"
#include "pipeline/key.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* One node of the DAG: the public view plus what the planner owns. */
typedef struct {
    ct_plan_step pub;
    char *label;
    uint8_t key[CT_KEY_LEN];
    json_t *material;
    json_t *inputs; /* name -> label | [labels] (as given by the plan function) */
    json_t *options; /* not part of the key: see ct_plan_set_options */
    char *source_path;
    char *why;
    size_t *deps;
} node;

struct ct_plan {
    const ct_recipe *recipe;
    ct_cache *cache;
    node *nodes;
    size_t n, cap;
    /* open-addressing index label -> node index + 1 */
    size_t *slots;
    size_t n_slots;
    char **notes;
    size_t n_notes;
    size_t n_missing; /* notes of inputs that are not there (ct_plan_missing) */
    json_t *previous;  /* steps of the last run's manifest: label -> {key, material} */
    uint8_t (*memo_keys)[CT_KEY_LEN]; /* source-digest memos this plan used */
    size_t n_memo;
};

/* --- label index ------------------------------------------------------------------- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int index_insert(ct_plan *p, const char *label, size_t idx)
{
    if ((p->n + 1) * 2 > p->n_slots) {
        size_t n_slots = p->n_slots ? p->n_slots * 2 : 64;
        size_t *slots = calloc(n_slots, sizeof *slots);
        if (!slots)
            return ct_error_set(CT_ENOMEM, "out of memory");
        for (size_t i = 0; i < p->n_slots; i++)
            if (p->slots[i]) {
                size_t j = hash_str(p->nodes[p->slots[i] - 1].label) & (n_slots - 1);
                while (slots[j])
                    j = (j + 1) & (n_slots - 1);
                slots[j] = p->slots[i];
            }
        free(p->slots);
        p->slots = slots;
        p->n_slots = n_slots;
    }
    size_t j = hash_str(label) & (p->n_slots - 1);
    while (p->slots[j])
        j = (j + 1) & (p->n_slots - 1);
    p->slots[j] = idx + 1;
    return 0;
}

int ct_plan_find(const ct_plan *p, const char *label, size_t *index)
{
    if (p->n_slots) {
        size_t j = hash_str(label) & (p->n_slots - 1);
        for (; p->slots[j]; j = (j + 1) & (p->n_slots - 1))
            if (strcmp(p->nodes[p->slots[j] - 1].label, label) == 0) {
                *index = p->slots[j] - 1;
                return 0;
            }
    }
    return CT_ENOTFOUND;
}

/* --- adding nodes ------------------------------------------------------------------- */

static int new_node(ct_plan *p, const char *label, node **out)
{
    size_t dummy;
    if (ct_plan_find(p, label, &dummy) == 0)
        return ct_error_set(CT_EINVAL, "two steps are labelled '%s'", label);
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        node *nodes = realloc(p->nodes, cap * sizeof *nodes);
        if (!nodes)
            return ct_error_set(CT_ENOMEM, "out of memory");
        p->nodes = nodes;
        p->cap = cap;
    }
    node *n = &p->nodes[p->n];
    memset(n, 0, sizeof *n);
    n->label = strdup(label);
    int rc = index_insert(p, label, p->n);
    if (rc)
        return rc;
    p->n++;
    *out = n;
    return 0;
}

/* Resolves one input label to its node; appends the dependency and returns its hex key. */
static int resolve_input(ct_plan *p, const char *step, const char *name, json_t *label,
                         size_t **deps, size_t *n_deps, json_t **hex)
{
    size_t idx;
    if (!json_is_string(label))
        return ct_error_set(CT_EINVAL, "step '%s': input '%s' must name a step label", step, name);
    if (ct_plan_find(p, json_string_value(label), &idx))
        return ct_error_set(CT_EINVAL, "step '%s': input '%s' names unknown step '%s'", step, name,
                            json_string_value(label));
    size_t *d = realloc(*deps, (*n_deps + 1) * sizeof *d);
    if (!d)
        return ct_error_set(CT_ENOMEM, "out of memory");
    d[(*n_deps)++] = idx;
    *deps = d;
    char h[CT_KEY_HEX_LEN + 1];
    ct_key_hex(p->nodes[idx].key, h);
    *hex = json_string(h);
    return 0;
}

int ct_plan_add(ct_plan *p, const char *kind_name, const char *label, json_t *params, json_t *inputs)
{
    int rc = 0;
    json_t *input_keys = json_object();
    size_t *deps = NULL, n_deps = 0;
    const ct_step_kind *kind = ct_step_find(kind_name);
    if (!params)
        params = json_object();
    if (!inputs)
        inputs = json_object();
    if (!kind) {
        rc = ct_error_set(CT_EINVAL, "step '%s': unknown step kind '%s'", label, kind_name);
        goto fail;
    }
    const char *name;
    json_t *v;
    json_object_foreach(inputs, name, v) {
        json_t *hex;
        if (json_is_array(v)) {
            json_t *list = json_array();
            size_t i;
            json_t *item;
            json_array_foreach(v, i, item) {
                if ((rc = resolve_input(p, label, name, item, &deps, &n_deps, &hex))) {
                    json_decref(list);
                    goto fail;
                }
                json_array_append_new(list, hex);
            }
            json_object_set_new(input_keys, name, list);
        } else {
            if ((rc = resolve_input(p, label, name, v, &deps, &n_deps, &hex)))
                goto fail;
            json_object_set_new(input_keys, name, hex);
        }
    }
    json_t *material;
    ct_key_material(kind->name, kind->version, params, input_keys, &material);
    node *n;
    if ((rc = new_node(p, label, &n))) {
        json_decref(material);
        goto fail;
    }
    n->material = material;
    n->inputs = inputs;
    n->deps = deps;
    n->pub.n_deps = n_deps;
    n->pub.kind = kind;
    json_decref(params);
    json_decref(input_keys);
    return ct_key_of(material, n->key);
fail:
    free(deps);
    json_decref(params);
    json_decref(inputs);
    json_decref(input_keys);
    return rc;
}

int ct_plan_source_digest(ct_plan *p, const char *label, const char *path,
                          const uint8_t digest[CT_KEY_LEN])
{
    size_t idx;
    if (ct_plan_find(p, label, &idx) == 0)
        return memcmp(p->nodes[idx].key, digest, CT_KEY_LEN) == 0
                   ? 0
                   : ct_error_set(CT_EINVAL, "source '%s' added twice with different digests", label);
    node *n;
    int rc = new_node(p, label, &n);
    if (rc)
        return rc;
    memcpy(n->key, digest, CT_KEY_LEN);
    n->source_path = strdup(path);
    char hex[CT_KEY_HEX_LEN + 1];
    ct_key_hex(digest, hex);
    n->material = json_pack("{s:s, s:s, s:s}", "kind", "source", "path", path, "digest", hex);
    return 0;
}

int ct_plan_memo_digest(ct_plan *p, const char *identity, int (*compute)(void *user, uint8_t digest[CT_KEY_LEN]),
                        void *user, uint8_t digest[CT_KEY_LEN])
{
    if (!p->cache)
        return compute(user, digest);
    char *id = NULL;
    if (asprintf(&id, "source-digest-memo\n%s", identity) < 0)
        return ct_error_set(CT_ENOMEM, "out of memory");
    uint8_t memo[CT_KEY_LEN];
    ct_sha256_buf(id, strlen(id), memo);
    free(id);
    uint8_t (*keys)[CT_KEY_LEN] = realloc(p->memo_keys, (p->n_memo + 1) * sizeof *keys);
    if (!keys)
        return ct_error_set(CT_ENOMEM, "out of memory");
    p->memo_keys = keys;
    memcpy(p->memo_keys[p->n_memo++], memo, CT_KEY_LEN);

    json_t *record;
    if (ct_cache_get(p->cache, memo, &record) == 0) {
        const char *hex = json_string_value(json_object_get(record, "digest"));
        int rc = hex ? ct_hex_decode(hex, digest, CT_KEY_LEN) : CT_ECORRUPT;
        json_decref(record);
        if (rc == 0)
            return 0;
    }
    int rc = compute(user, digest);
    if (rc)
        return rc;
    char hex[CT_KEY_HEX_LEN + 1];
    ct_key_hex(digest, hex);
    record = json_pack("{s:{s:s, s:s}, s:s}", "material", "kind", "source_digest_memo", "identity",
                       identity, "digest", hex);
    rc = ct_cache_put(p->cache, memo, record, "", 0);
    json_decref(record);
    return rc;
}

void ct_plan_stat_identity(const char *path, const struct stat *st, char *out, size_t n)
{
    snprintf(out, n, "%s %llu:%llu:%lld:%lld.%09ld:%lld.%09ld", path, (unsigned long long)st->st_dev,
             (unsigned long long)st->st_ino, (long long)st->st_size, (long long)st->st_mtim.tv_sec,
             st->st_mtim.tv_nsec, (long long)st->st_ctim.tv_sec, st->st_ctim.tv_nsec);
}

static int hash_file(void *path, uint8_t digest[CT_KEY_LEN]) { return ct_sha256_file(path, digest); }

int ct_plan_source_file(ct_plan *p, const char *path, const char **label)
{
    char abs[PATH_MAX];
    struct stat st;
    if (!realpath(path, abs) || stat(abs, &st) != 0)
        return ct_error_set(CT_ENOTFOUND, "%s: source file not found", path);
    if (!S_ISREG(st.st_mode))
        return ct_error_set(CT_EINVAL, "%s: source is not a regular file", path);
    char lab[PATH_MAX + 8];
    snprintf(lab, sizeof lab, "source:%s", abs);
    size_t idx;
    if (ct_plan_find(p, lab, &idx) == 0) {
        *label = p->nodes[idx].label;
        return 0;
    }
    /* memoised by the file's identity on disk, so a no-op run does not re-read large
     * corpora */
    char identity[PATH_MAX + 128];
    ct_plan_stat_identity(abs, &st, identity, sizeof identity);
    uint8_t digest[CT_KEY_LEN];
    int rc = ct_plan_memo_digest(p, identity, hash_file, abs, digest);
    if (rc)
        return rc;
    if ((rc = ct_plan_source_digest(p, lab, abs, digest)))
        return rc;
    *label = p->nodes[p->n - 1].label;
    return 0;
}

/* Adds a note unless the same one is there; 1 when added. Notes carry download
 * commands, hence the room. */
static int add_note(ct_plan *p, const char *fmt, va_list ap)
{
    char buf[2048];
    vsnprintf(buf, sizeof buf, fmt, ap);
    for (size_t i = 0; i < p->n_notes; i++) /* several kinds may say the same thing */
        if (strcmp(p->notes[i], buf) == 0)
            return 0;
    char **notes = realloc(p->notes, (p->n_notes + 1) * sizeof *notes);
    if (!notes)
        return 0;
    p->notes = notes;
    p->notes[p->n_notes++] = strdup(buf);
    return 1;
}

void ct_plan_note(ct_plan *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_note(p, fmt, ap);
    va_end(ap);
}

void ct_plan_missing(ct_plan *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    p->n_missing += (size_t)add_note(p, fmt, ap);
    va_end(ap);
}

size_t ct_plan_n_missing(const ct_plan *p) { return p->n_missing; }

size_t ct_plan_notes(const ct_plan *p, const char *const **notes)
{
    *notes = (const char *const *)p->notes;
    return p->n_notes;
}

/* --- explanations ---------------------------------------------------------------- */

static void append(char *buf, size_t cap, const char *fmt, ...)
{
    size_t len = strlen(buf);
    if (len + 4 >= cap)
        return;
    if (len)
        snprintf(buf + len, cap - len, "; "), len += 2;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
}

static char *value_text(const json_t *v)
{
    char *t = NULL;
    if (v)
        ct_canonical_json(v, &t, NULL);
    if (t && strlen(t) > 60)
        strcpy(t + 57, "...");
    return t ? t : strdup("(absent)");
}

/* Lists the parameters that differ between two params objects, by dotted path. */
static void diff_params(const json_t *old, const json_t *cur, const char *prefix, char *buf, size_t cap)
{
    if (json_is_object(old) && json_is_object(cur)) {
        const char *k;
        json_t *v;
        char path[256];
        json_object_foreach((json_t *)cur, k, v) {
            snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", k);
            diff_params(json_object_get(old, k), v, path, buf, cap);
        }
        json_object_foreach((json_t *)old, k, v) if (!json_object_get(cur, k)) {
            snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", k);
            diff_params(v, NULL, path, buf, cap);
        }
        return;
    }
    if (old && cur && json_equal(old, cur))
        return;
    char *a = value_text(old), *b = value_text(cur);
    append(buf, cap, "parameter %s: %s -> %s", *prefix ? prefix : "(all)", a, b);
    free(a);
    free(b);
}

static void explain(ct_plan *p, node *n)
{
    char buf[1024] = "";
    json_t *prev = p->previous ? json_object_get(p->previous, n->label) : NULL;
    const char *prev_hex = json_string_value(json_object_get(prev, "key"));
    char hex[CT_KEY_HEX_LEN + 1];
    ct_key_hex(n->key, hex);
    if (!prev) {
        snprintf(buf, sizeof buf, "new step: not in the last run of this recipe");
    } else if (prev_hex && strcmp(prev_hex, hex) == 0) {
        snprintf(buf, sizeof buf, "same key as the last run, but not in the cache "
                                  "(never finished, removed by gc, or found corrupt)");
    } else {
        json_t *old = json_object_get(prev, "material");
        json_int_t ov = json_integer_value(json_object_get(old, "version"));
        json_int_t nv = json_integer_value(json_object_get(n->material, "version"));
        if (ov != nv)
            append(buf, sizeof buf, "implementation version %lld -> %lld", (long long)ov, (long long)nv);
        diff_params(json_object_get(old, "params"), json_object_get(n->material, "params"), "", buf,
                    sizeof buf);
        const char *name;
        json_t *v;
        json_t *old_inputs = json_object_get(old, "inputs");
        json_object_foreach(json_object_get(n->material, "inputs"), name, v) {
            if (json_equal(v, json_object_get(old_inputs, name)))
                continue;
            json_t *labels = json_object_get(n->inputs, name);
            const char *first = json_is_array(labels) ? json_string_value(json_array_get(labels, 0))
                                                      : json_string_value(labels);
            append(buf, sizeof buf, "input '%s' changed (%s%s)", name, first ? first : "?",
                   json_is_array(labels) && json_array_size(labels) > 1 ? ", ..." : "");
        }
        if (!buf[0])
            snprintf(buf, sizeof buf, "key encoding changed");
    }
    n->why = strdup(buf);
}

/* --- building ------------------------------------------------------------------------ */

static const char *root_name(const ct_recipe *r, char *buf, size_t n)
{
    snprintf(buf, n, "recipe:%s", ct_recipe_name(r));
    return buf;
}

static void load_previous(ct_plan *p)
{
    char name[256];
    uint8_t (*keys)[CT_KEY_LEN] = NULL;
    size_t n = 0;
    if (!p->cache || ct_cache_root_get(p->cache, root_name(p->recipe, name, sizeof name), &keys, &n) || !n) {
        free(keys);
        return;
    }
    char *text = NULL;
    size_t len;
    if (ct_cache_read_all(p->cache, keys[0], &text, &len) == 0) {
        json_t *m = json_loadb(text, len, 0, NULL);
        if (m && json_is_object(json_object_get(m, "steps")))
            p->previous = json_incref(json_object_get(m, "steps"));
        json_decref(m);
    }
    free(text);
    free(keys);
    ct_error_clear(); /* a missing or unreadable manifest only loses explanations */
}

/* Recipe sections and the step kinds that plan them: a section whose kind this build
 * lacks is reported by `plan` and `run` instead of being silently ignored. */
static void note_unplanned_sections(ct_plan *p)
{
    static const struct {
        const char *section, *kind;
    } planned_by[] = {
        {"pretrain", "pretrain"},   {"corpus", "tokenize"}, {"tuples", "train"},
        {"tasks", "accuracy"},      {"tasks", "attribute"},
    };
    for (size_t i = 0; i < sizeof planned_by / sizeof *planned_by; i++) {
        json_t *v = ct_recipe_get(p->recipe, planned_by[i].section);
        if (v && !(json_is_array(v) && json_array_size(v) == 0) && !ct_step_find(planned_by[i].kind))
            ct_plan_note(p, "section '%s' is not planned: this build has no '%s' step kind",
                         planned_by[i].section, planned_by[i].kind);
    }
}

int ct_plan_build(const ct_recipe *recipe, ct_cache *cache, ct_plan **out)
{
    ct_plan *p = calloc(1, sizeof *p);
    if (!p)
        return ct_error_set(CT_ENOMEM, "out of memory");
    p->recipe = recipe;
    p->cache = cache;
    load_previous(p);
    size_t n_kinds;
    const ct_step_kind *const *kinds = ct_step_kinds(&n_kinds);
    for (size_t i = 0; i < n_kinds; i++) {
        if (!kinds[i]->plan)
            continue;
        int rc = kinds[i]->plan(p, recipe);
        if (rc) {
            ct_plan_free(p);
            return rc;
        }
    }
    note_unplanned_sections(p);
    for (size_t i = 0; i < p->n; i++) {
        node *n = &p->nodes[i];
        n->pub.cached = n->source_path ? 1 : cache && ct_cache_get(cache, n->key, NULL) == 0;
        if (!n->pub.cached)
            explain(p, n);
    }
    ct_error_clear();
    *out = p;
    return 0;
}

void ct_plan_free(ct_plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++) {
        node *n = &p->nodes[i];
        free(n->label);
        json_decref(n->material);
        json_decref(n->inputs);
        json_decref(n->options);
        free(n->source_path);
        free(n->why);
        free(n->deps);
    }
    for (size_t i = 0; i < p->n_notes; i++)
        free(p->notes[i]);
    free(p->notes);
    free(p->nodes);
    free(p->slots);
    free(p->memo_keys);
    json_decref(p->previous);
    free(p);
}

size_t ct_plan_size(const ct_plan *p) { return p->n; }
const ct_recipe *ct_plan_recipe(const ct_plan *p) { return p->recipe; }

const ct_plan_step *ct_plan_get(const ct_plan *p, size_t i)
{
    if (i >= p->n)
        return NULL;
    node *n = &p->nodes[i];
    /* The public view is refreshed on access: the node array moves while building. */
    n->pub.index = i;
    n->pub.label = n->label;
    n->pub.key = n->key;
    n->pub.material = n->material;
    n->pub.source_path = n->source_path;
    n->pub.why = n->why ? n->why : "";
    n->pub.deps = n->deps;
    return &n->pub;
}

/* Inputs of step i as given by its plan function (name -> label | [labels]). */
json_t *ct_plan_step_inputs(const ct_plan *p, size_t i) { return p->nodes[i].inputs; }

json_t *ct_plan_step_options(const ct_plan *p, size_t i)
{
    node *n = &p->nodes[i];
    if (!n->options)
        n->options = json_object();
    return n->options;
}

int ct_plan_set_options(ct_plan *p, const char *label, json_t *options)
{
    size_t i;
    if (ct_plan_find(p, label, &i)) {
        json_decref(options);
        return ct_error_set(CT_EINVAL, "options for unknown step '%s'", label);
    }
    json_decref(p->nodes[i].options);
    p->nodes[i].options = options;
    return 0;
}

void ct_plan_set_cached(ct_plan *p, size_t i, int cached) { p->nodes[i].pub.cached = cached; }

json_t *ct_plan_to_json(const ct_plan *p)
{
    json_t *steps = json_array();
    for (size_t i = 0; i < p->n; i++) {
        const ct_plan_step *s = ct_plan_get(p, i);
        char hex[CT_KEY_HEX_LEN + 1];
        ct_key_hex(s->key, hex);
        json_t *deps = json_array();
        for (size_t d = 0; d < s->n_deps; d++)
            json_array_append_new(deps, json_string(p->nodes[s->deps[d]].label));
        json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:o}", "label", s->label, "kind",
                              s->kind ? s->kind->name : "source", "key", hex, "cached", s->cached,
                              "deps", deps);
        if (!s->cached)
            json_object_set_new(o, "why", json_string(s->why));
        if (s->source_path)
            json_object_set_new(o, "path", json_string(s->source_path));
        else
            json_object_set(o, "inputs", p->nodes[i].inputs);
        json_array_append_new(steps, o);
    }
    json_t *notes = json_array();
    for (size_t i = 0; i < p->n_notes; i++)
        json_array_append_new(notes, json_string(p->notes[i]));
    return json_pack("{s:s, s:o, s:o}", "recipe", ct_recipe_name(p->recipe), "steps", steps, "notes",
                     notes);
}

int ct_plan_save_manifest(ct_plan *p, ct_cache *cache)
{
    json_t *steps = json_object();
    size_t n_keys = 1 + p->n_memo;
    uint8_t (*keys)[CT_KEY_LEN] = calloc(p->n + p->n_memo + 1, CT_KEY_LEN);
    if (!keys)
        return ct_error_set(CT_ENOMEM, "out of memory");
    for (size_t i = 0; i < p->n; i++) {
        node *n = &p->nodes[i];
        if (n->source_path)
            continue;
        char hex[CT_KEY_HEX_LEN + 1];
        ct_key_hex(n->key, hex);
        json_object_set_new(steps, n->label, json_pack("{s:s, s:O}", "key", hex, "material", n->material));
        memcpy(keys[n_keys++], n->key, CT_KEY_LEN);
    }
    if (p->n_memo)
        memcpy(keys + 1, p->memo_keys, p->n_memo * CT_KEY_LEN);
    json_t *manifest = json_pack("{s:s, s:o}", "recipe", ct_recipe_name(p->recipe), "steps", steps);
    char *text;
    size_t len;
    int rc = ct_canonical_json(manifest, &text, &len);
    json_decref(manifest);
    if (rc) {
        free(keys);
        return rc;
    }
    ct_sha256 *c;
    static const char prefix[] = "crosstime-manifest\n";
    if (!(rc = ct_sha256_new(&c))) {
        ct_sha256_update(c, prefix, sizeof prefix - 1);
        ct_sha256_update(c, text, len);
        rc = ct_sha256_final(c, keys[0]);
    }
    if (!rc && ct_cache_get(cache, keys[0], NULL) != 0) {
        json_t *record = json_pack("{s:{s:s, s:s}}", "material", "kind", "manifest", "recipe",
                                   ct_recipe_name(p->recipe));
        rc = ct_cache_put(cache, keys[0], record, text, len);
        json_decref(record);
    }
    free(text);
    char name[256];
    if (!rc)
        rc = ct_cache_root_set(cache, root_name(p->recipe, name, sizeof name),
                               (const uint8_t(*)[CT_KEY_LEN])keys, n_keys);
    free(keys);
    return rc;
}

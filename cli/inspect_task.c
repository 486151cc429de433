/* crosstime inspect task TASK [--tokenizer PATH] [--examples] [--max N] [--data DIRS]
 * crosstime inspect task --list [--languages L1,L2,...] [--data DIRS]
 *
 * Prints one JSON object describing the task (pairs, kept, dropped by reason, its file
 * and content digest), then with --examples one JSON line per kept example. Without
 * --tokenizer only the loader's drops are applied and examples carry texts, no ids.
 * --list prints task names, one per line. Exit status: 0 ok, 1 error, 2 usage. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "common/error.h"
#include "models/tasks/tasks.h"
#include "models/tokenizer/tokenizer.h"

static int usage(void)
{
    fprintf(stderr,
            "usage: crosstime inspect task TASK [--tokenizer PATH] [--examples] [--max N] [--data DIRS]\n"
            "       crosstime inspect task --list [--languages L1,L2,...] [--data DIRS]\n"
            "  TASK: blimp/<paradigm>, clams/<lang>/<phenomenon>, multiblimp/<lang>[/<phenomenon>]\n"
            "  prints {\"task\", \"pairs\", \"kept\", \"dropped\": {reason: n}, ...} and with --examples\n"
            "  one JSON line per kept example ({\"prefix\": [ids], \"good\": id, \"bad\": id, ...});\n"
            "  --max N caps the examples (spread over the file); --data adds task data folders\n"
            "  (':'-separated) before $CROSSTIME_DATA and the shipped data.\n");
    return 2;
}

static int fail(const char *what)
{
    fprintf(stderr, "crosstime inspect task: %s\n", what ? what : ct_error_message());
    return 1;
}

/* Prints `o` as one compact JSON line and releases it. */
static int emit(json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!s) {
        fprintf(stderr, "crosstime inspect task: cannot encode JSON\n");
        return 1;
    }
    puts(s);
    free(s);
    return 0;
}

static int print_names(char **names)
{
    for (char **p = names; *p; p++)
        puts(*p);
    return 0;
}

static int list(const char *data, const char *languages)
{
    char **names;
    int rc;
    if (!languages) {
        rc = ct_task_list(data, &names, NULL);
    } else {
        char *copy = strdup(languages);
        const char *langs[64];
        size_t n = 0;
        for (char *save = NULL, *tokp = copy ? strtok_r(copy, ",", &save) : NULL; tokp && n < 64;
             tokp = strtok_r(NULL, ",", &save))
            langs[n++] = tokp;
        rc = copy ? ct_tasks_for_languages(langs, n, data, &names, NULL)
                  : ct_error_set(CT_ENOMEM, "out of memory");
        free(copy);
    }
    if (rc)
        return fail(NULL);
    print_names(names);
    ct_task_names_free(names);
    return 0;
}

static json_t *ids_json(const int32_t *ids, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_integer(ids[i]));
    return a;
}

static void add_texts(json_t *o, const ct_task_pair *p)
{
    json_object_set_new(o, "prefix_text", json_string(p->prefix));
    json_object_set_new(o, "good_text", json_string(p->good));
    json_object_set_new(o, "bad_text", json_string(p->bad));
    json_object_set_new(o, "sentence_good", json_string(p->sentence_good));
    json_object_set_new(o, "sentence_bad", json_string(p->sentence_bad));
    if (p->phenomenon[0])
        json_object_set_new(o, "phenomenon", json_string(p->phenomenon));
}

static int inspect(const char *name, const char *data, const char *tok_path, int examples, size_t max)
{
    ct_task *t;
    if (ct_task_load_from(name, data, &t))
        return fail(NULL);
    ct_tokenizer *tok = NULL;
    ct_task_examples *ex = NULL;
    if (tok_path && (ct_tok_load(tok_path, &tok) || ct_task_tokenize(t, tok, max, &ex))) {
        int rc = fail(NULL);
        ct_tok_free(tok);
        ct_task_free(t);
        return rc;
    }
    size_t n = ct_task_size(t), dropped[CT_TASK_N_REASONS] = {0}, kept = 0;
    if (ex) {
        kept = ct_task_examples_kept(ex);
        for (int r = 1; r < CT_TASK_N_REASONS; r++)
            dropped[r] = ct_task_examples_dropped(ex, (ct_task_drop)r);
    } else {
        for (size_t i = 0; i < n; i++) {
            ct_task_pair p;
            ct_task_pair_get(t, i, &p);
            if (p.drop == CT_TASK_KEEP)
                kept++;
            else
                dropped[p.drop]++;
        }
    }
    json_t *o = json_object(), *d = json_object();
    json_object_set_new(o, "task", json_string(ct_task_name(t)));
    json_object_set_new(o, "pairs", json_integer((json_int_t)n));
    json_object_set_new(o, "kept", json_integer((json_int_t)kept));
    for (int r = 1; r < CT_TASK_N_REASONS; r++)
        if (dropped[r])
            json_object_set_new(d, ct_task_drop_name((ct_task_drop)r), json_integer((json_int_t)dropped[r]));
    json_object_set_new(o, "dropped", d);
    size_t shown = ex ? ct_task_examples_size(ex) : (max && max < kept ? max : kept);
    json_object_set_new(o, "examples", json_integer((json_int_t)shown));
    json_object_set_new(o, "tokenized", json_boolean(ex != NULL));
    json_object_set_new(o, "file", json_string(ct_task_file(t)));
    json_object_set_new(o, "digest", json_string(ct_task_digest(t)));
    int rc = emit(o);
    for (size_t i = 0; !rc && examples && ex && i < shown; i++) {
        const ct_task_example *e = ct_task_examples_get(ex, i);
        ct_task_pair p;
        ct_task_pair_get(t, e->pair, &p);
        json_t *x = json_object();
        json_object_set_new(x, "prefix", ids_json(e->prefix, e->n_prefix));
        json_object_set_new(x, "good", json_integer(e->good));
        json_object_set_new(x, "bad", json_integer(e->bad));
        json_object_set_new(x, "pair", json_integer((json_int_t)e->pair));
        json_object_set_new(x, "line", json_integer((json_int_t)p.line));
        add_texts(x, &p);
        rc = emit(x);
    }
    if (!rc && examples && !ex && shown) {
        /* the loader's pairs, spread over the file as ct_task_tokenize spreads a cap */
        size_t *idx = malloc(kept * sizeof *idx), k = 0;
        if (!idx)
            rc = fail("out of memory");
        for (size_t i = 0; idx && i < n; i++) {
            ct_task_pair p;
            ct_task_pair_get(t, i, &p);
            if (p.drop == CT_TASK_KEEP)
                idx[k++] = i;
        }
        for (size_t j = 0; idx && !rc && j < shown; j++) {
            ct_task_pair p;
            size_t i = idx[shown == kept ? j : j * kept / shown];
            ct_task_pair_get(t, i, &p);
            json_t *x = json_object();
            json_object_set_new(x, "pair", json_integer((json_int_t)i));
            json_object_set_new(x, "line", json_integer((json_int_t)p.line));
            add_texts(x, &p);
            rc = emit(x);
        }
        free(idx);
    }
    ct_task_examples_free(ex);
    ct_tok_free(tok);
    ct_task_free(t);
    if (!rc && (fflush(stdout) || ferror(stdout))) {
        fprintf(stderr, "crosstime inspect task: cannot write to stdout\n");
        rc = 1;
    }
    return rc;
}

int ct_cmd_inspect_task(int argc, char **argv)
{
    const char *name = NULL, *tok = NULL, *data = NULL, *languages = NULL;
    int examples = 0, do_list = 0;
    size_t max = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--tokenizer") && i + 1 < argc)
            tok = argv[++i];
        else if (!strncmp(a, "--tokenizer=", 12))
            tok = a + 12;
        else if (!strcmp(a, "--data") && i + 1 < argc)
            data = argv[++i];
        else if (!strncmp(a, "--data=", 7))
            data = a + 7;
        else if (!strcmp(a, "--languages") && i + 1 < argc)
            languages = argv[++i];
        else if (!strncmp(a, "--languages=", 12))
            languages = a + 12;
        else if ((!strcmp(a, "--max") && i + 1 < argc) || !strncmp(a, "--max=", 6)) {
            const char *v = a[5] == '=' ? a + 6 : argv[++i];
            char *end;
            errno = 0;
            unsigned long long m = strtoull(v, &end, 10);
            if (!*v || *end || errno || v[0] == '-')
                return usage();
            max = (size_t)m;
        } else if (!strcmp(a, "--examples"))
            examples = 1;
        else if (!strcmp(a, "--list"))
            do_list = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            return 0;
        } else if (a[0] != '-' && !name)
            name = a;
        else
            return usage();
    }
    if (do_list)
        return name || tok || examples ? usage() : list(data, languages);
    if (!name || languages)
        return usage();
    return inspect(name, data, tok, examples, max);
}
